"""The syslog receiver: RFC 3164 / RFC 5424 messages over UDP and TCP (DESIGN
section 5, issue #7).

Owns: listening on `syslog+udp://ADDR:PORT` or `syslog+tcp://ADDR:PORT`,
cutting the byte stream into messages, refusing senders outside the allow
list, and handing the messages on in chunks (`SyslogSource`, a StreamSource).
Parsing is the pipeline's (format "syslog"); each line's meta is
`{"sender": "<ip>"}`, the address the message came from.

UDP: one datagram is one message (trailing CR, LF and NUL stripped; an
octet count in front that matches the datagram's length, as `logger -d
--octet-count` sends, is removed). Every wakeup of the loop reads all the
datagrams waiting (up to UDP_READS) into a bounded buffer (`udp_queue`
messages / `queue_bytes` bytes) where they wait while a chunk is being
emitted; when it is full, datagrams are dropped and counted in
`health.dropped`, together with what the kernel dropped on our socket (the
`drops` column of /proc/net/udp and /proc/net/udp6 for the socket's inode,
Linux only, read every second). The socket asks for a big kernel buffer
(UDP_RCVBUF) to ride out bursts.

TCP: RFC 6587 framing, decided per frame: a frame that starts with digits
followed by a space is octet-counted (`LEN SP MSG`, MSG may hold newlines);
anything else is newline-framed (LF or NUL ends it, a CR before the LF is
dropped). A frame starting with digits not followed by a space (an ISO
timestamp without `<PRI>`) is newline-framed. A count of 0 or above
MAX_OCTETS is a framing error: counted (`framing_errors`, and
health.error names the last one while the source stays running) and that frame
is read newline-framed instead, as rsyslog does. A connection closing mid-frame
emits what it has (flagged truncated when an octet-counted frame was cut).
TCP never drops: when the buffer is full, the connections stop reading
(`pause_reading`) until the pending chunk is taken, so senders block.

Messages longer than MAX_LINE bytes keep their first MAX_LINE bytes and are
flagged FLAG_TRUNCATED (the rest is skipped). Empty messages are skipped.
Bytes are decoded as UTF-8 with replacement characters.

Chunks hold up to `batch` messages and leave at most `linger` seconds after
their first message arrived, whichever comes first.

A sender outside `allow` (networks from `parse_allow`; None lets everyone in)
is refused: its datagram is ignored, its connection closed, and
`health.refused` counts it; the source stays running. IPv4-mapped IPv6
addresses (a dual-stack `::` socket) are treated and recorded as IPv4.

Must not: parse messages, touch the database, import Textual, or pass message
text to a shell, SQL or markup.
"""

from __future__ import annotations

import asyncio
import errno
import ipaddress
import os
import socket
import sys
import time
from typing import Any

from soc_tui.model import FLAG_TRUNCATED
from soc_tui.sources.base import Emit, SourceHealth, SourceSpec, StreamSource
from soc_tui.sources.tail import MAX_LINE, Chunk

BATCH = 2000  # messages per chunk at most
LINGER = 0.05  # seconds a chunk waits for more messages after its first one
UDP_QUEUE = 100_000  # messages waiting for the pipeline before UDP drops
TCP_QUEUE = 10_000  # messages waiting before TCP connections stop reading
QUEUE_BYTES = 64 << 20  # bytes waiting, either protocol
MAX_OCTETS = 16 << 20  # an octet count above this is a framing error
# The UDP socket's kernel buffer: it absorbs bursts while the loop is busy
# (the benchmark's 100k-datagram burst at ~130k/s loses nothing with 32 MiB,
# 19% with 8 MiB). Asked with SO_RCVBUFFORCE (needs CAP_NET_ADMIN), else
# SO_RCVBUF, which the kernel caps at net.core.rmem_max.
UDP_RCVBUF = 32 << 20
SO_RCVBUFFORCE = getattr(socket, "SO_RCVBUFFORCE", 33 if sys.platform.startswith("linux") else None)
UDP_READS = 512  # datagrams read per readiness callback at most
KERNEL_DROPS_EVERY = 1.0  # seconds between reads of /proc/net/udp*

_TERMINATORS = b"\n\x00"
_STRIP = b"\r\n\x00"
_ENDS = (b"\r", b"\n", b"\x00")


def _decode(data: bytes) -> tuple[str, int]:
    if len(data) > MAX_LINE:
        return data[:MAX_LINE].decode("utf-8", "replace"), FLAG_TRUNCATED
    return data.decode("utf-8", "replace"), 0


class Framer:
    """RFC 6587 framing of one TCP byte stream, decided frame by frame.

    `feed(data)` returns the complete messages as (text, flags, nbytes);
    `finish()` returns what a closed connection left mid-frame. `errors` counts
    framing errors and `last_error` describes the last one.
    """

    __slots__ = ("buf", "skip", "skip_line", "head", "errors", "last_error")

    def __init__(self) -> None:
        self.buf = b""
        self.skip = 0  # bytes of an over-long octet-counted frame still to discard
        self.skip_line = False  # discarding the rest of an over-long newline frame
        self.head = b""  # the first MAX_LINE bytes of the over-long frame being skipped
        self.errors = 0
        self.last_error = ""

    def feed(self, data: bytes) -> list[tuple[str, int, int]]:
        out: list[tuple[str, int, int]] = []
        if self.skip:
            n = min(self.skip, len(data))
            self.skip -= n
            data = data[n:]
            if self.skip:
                return out
            out.append((self.head.decode("utf-8", "replace"), FLAG_TRUNCATED, MAX_LINE))
            self.head = b""
        elif self.skip_line:
            i = _find_end(data, 0)
            if i < 0:
                return out
            data = data[i + 1:]
            self.skip_line = False
            out.append((self.head.decode("utf-8", "replace"), FLAG_TRUNCATED, MAX_LINE))
            self.head = b""
        buf = self.buf + data if self.buf else data
        n = len(buf)
        pos = 0
        while pos < n:
            if 48 <= buf[pos] <= 57:  # a digit: maybe an octet count
                j = pos + 1
                while j < n and j - pos < 20 and 48 <= buf[j] <= 57:
                    j += 1
                if j == n and j - pos < 20:
                    break  # the count is not complete yet
                if j < n and buf[j] == 32:  # digits then SP: octet counting
                    length = int(buf[pos:j])
                    if 0 < length <= MAX_OCTETS:
                        start = j + 1
                        end = start + length
                        if end <= n:
                            msg = buf[start:end]
                            pos = end
                            if msg[-1:] in _ENDS:
                                msg = msg.rstrip(_STRIP)
                            if msg:
                                text, flags = _decode(msg)
                                out.append((text, flags, length))
                            continue
                        if length > MAX_LINE and n - start >= MAX_LINE:
                            self.head = buf[start:start + MAX_LINE]
                            self.skip = end - n
                            pos = n
                        break  # wait for the rest of the frame
                    self.errors += 1
                    self.last_error = (
                        f"bad octet count {bytes(buf[pos:min(j, pos + 24)]).decode('ascii', 'replace')!r}"
                        " (read as a newline-framed message)"
                    )
                # not an octet count: a newline-framed message that starts with digits
            i = _find_end(buf, pos)
            if i < 0:
                if n - pos > MAX_LINE:
                    self.head = buf[pos:pos + MAX_LINE]
                    self.skip_line = True
                    pos = n
                break
            msg = buf[pos:i]
            pos = i + 1
            if msg[-1:] == b"\r":
                msg = msg[:-1]
            if msg:
                text, flags = _decode(msg)
                out.append((text, flags, len(msg)))
        self.buf = buf[pos:] if pos < n else b""
        return out

    def finish(self) -> list[tuple[str, int, int]]:
        """What is left when the connection closes: a frame cut short is emitted
        as it is (flagged truncated when its octet count promised more)."""
        out: list[tuple[str, int, int]] = []
        if self.skip or self.skip_line:
            out.append((self.head.decode("utf-8", "replace"), FLAG_TRUNCATED, MAX_LINE))
        elif self.buf:
            buf = self.buf
            flags = 0
            j = 0
            while j < len(buf) and j <= 10 and 48 <= buf[j] <= 57:
                j += 1
            if 0 < j <= 10 and j < len(buf) and buf[j] == 32 and 0 < int(buf[:j]) <= MAX_OCTETS:
                buf = buf[j + 1:]  # an octet-counted frame that did not get all its bytes
                flags = FLAG_TRUNCATED
            buf = buf.rstrip(_STRIP)
            if buf:
                text, f = _decode(buf)
                out.append((text, flags | f, len(buf)))
        self.buf = b""
        self.head = b""
        self.skip = 0
        self.skip_line = False
        return out


def _find_end(buf: bytes, pos: int) -> int:
    """Index of the first LF or NUL at or after pos, or -1."""
    i = buf.find(b"\n", pos)
    z = buf.find(b"\x00", pos, i if i >= 0 else len(buf))
    return z if z >= 0 else i


def _strip_count(data: bytes) -> bytes:
    """A datagram that starts with an RFC 6587 octet count equal to the rest of
    its length (`logger -d --octet-count` sends those) loses the count."""
    sp = data.find(b" ", 1, 12)
    if sp > 0 and data[:sp].isdigit() and int(data[:sp]) == len(data) - sp - 1:
        return data[sp + 1:]
    return data


def _bind_error(exc: OSError, host: str, port: int, proto: str) -> OSError:
    where = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    if exc.errno in (errno.EACCES, errno.EPERM):
        why = "permission denied" + (" (ports below 1024 need root)" if port < 1024 else "")
    elif exc.errno == errno.EADDRINUSE:
        why = "address already in use"
    elif exc.errno == errno.EADDRNOTAVAIL:
        why = "no such address on this machine"
    elif isinstance(exc, socket.gaierror):
        why = f"cannot resolve {host!r}"
    else:
        why = (exc.strerror or str(exc)).lower()
    err = OSError(f"cannot listen on {where} ({proto}): {why}")
    err.errno = exc.errno
    return err


def kernel_udp_drops(inodes: set[int], paths: tuple[str, ...] = ("/proc/net/udp", "/proc/net/udp6")) -> int | None:
    """Datagrams the kernel dropped on the sockets with these inodes (the last
    column of /proc/net/udp and udp6), or None where that cannot be read."""
    total = 0
    found = False
    for path in paths:
        try:
            with open(path, encoding="ascii", errors="replace") as fh:
                next(fh, None)
                for line in fh:
                    parts = line.split()
                    if len(parts) >= 13 and parts[9].isdigit() and int(parts[9]) in inodes:
                        found = True
                        if parts[-1].isdigit():
                            total += int(parts[-1])
        except OSError:
            continue
    return total if found else None


class _Udp(asyncio.DatagramProtocol):
    def __init__(self, src: SyslogSource) -> None:
        self.src = src

    def datagram_received(self, data: bytes, addr: Any) -> None:
        src = self.src
        sender = src.sender(addr[0])
        if sender is None:
            src.health.refused += 1
            return
        if len(src._lines) >= src.udp_queue or src._nbytes >= src.queue_bytes:
            src.dropped_queue += 1
            src.health.dropped += 1
            return
        if not data:
            return
        if 48 <= data[0] <= 57:
            data = _strip_count(data)
        if data[-1:] in _ENDS:
            data = data.rstrip(_STRIP)
            if not data:
                return
        if len(data) > MAX_LINE:
            src._add(data[:MAX_LINE].decode("utf-8", "replace"), FLAG_TRUNCATED, len(data), sender)
        else:
            src._add(data.decode("utf-8", "replace"), 0, len(data), sender)

    def error_received(self, exc: Exception) -> None:  # e.g. ICMP errors; nothing to do
        pass


def _read_datagrams(sock: socket.socket, proto: _Udp) -> None:
    recv = sock.recvfrom
    got = proto.datagram_received
    for _ in range(UDP_READS):
        try:
            data, addr = recv(1 << 16)  # a UDP payload is at most 65,527 bytes
        except OSError:  # BlockingIOError: nothing more waiting
            return
        got(data, addr)


class _Tcp(asyncio.Protocol):
    def __init__(self, src: SyslogSource) -> None:
        self.src = src
        self.transport: asyncio.Transport | None = None
        self.sender = ""
        self.framer = Framer()
        self.paused = False
        self.refused = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        src = self.src
        peer = transport.get_extra_info("peername")
        sender = src.sender(peer[0]) if peer else None
        if sender is None or src._closing:
            self.refused = True
            if sender is None:
                src.health.refused += 1
            transport.abort()
            return
        self.sender = sender
        src._conns.add(self)

    def data_received(self, data: bytes) -> None:
        if self.refused:
            return
        framer = self.framer
        errors = framer.errors
        msgs = framer.feed(data)
        if framer.errors != errors:
            self.src._framing_error(self.sender, framer, framer.errors - errors)
        if msgs:
            self.src._add_many(msgs, self.sender)
            self.src._maybe_pause(self)

    def eof_received(self) -> bool:
        return False  # close our side too

    def connection_lost(self, exc: Exception | None) -> None:
        src = self.src
        if self.refused:
            return
        src._conns.discard(self)
        src._paused.discard(self)
        msgs = self.framer.finish()
        if msgs:
            src._add_many(msgs, self.sender)


class SyslogSource(StreamSource):
    """Receives syslog messages on one UDP or TCP address (`spec.kind`
    "syslog+udp" or "syslog+tcp"); see the module docstring."""

    def __init__(
        self,
        spec: SourceSpec,
        allow: list[ipaddress.IPv4Network | ipaddress.IPv6Network] | None = None,
        *,
        batch: int = BATCH,
        linger: float = LINGER,
        udp_queue: int = UDP_QUEUE,
        tcp_queue: int = TCP_QUEUE,
        queue_bytes: int = QUEUE_BYTES,
    ) -> None:
        if spec.kind not in ("syslog+udp", "syslog+tcp"):
            raise ValueError(f"{spec.spec}: not a syslog source")
        self.spec = spec
        self.key = spec.spec
        self.fmt = "syslog"
        self.allow = allow
        self.batch = batch
        self.linger = linger
        self.udp_queue = udp_queue
        self.tcp_queue = tcp_queue
        self.queue_bytes = queue_bytes
        self.health = SourceHealth(self.key)
        self.dropped_queue = 0  # UDP messages dropped because the buffer was full
        self.dropped_kernel = 0  # UDP datagrams the kernel dropped on our sockets
        self.framing_errors = 0
        self.pauses = 0  # times a TCP connection stopped reading (backpressure)
        self.rcvbuf = 0  # the UDP socket's kernel buffer, bytes (as the kernel reports it)
        self.addresses: list[tuple[str, int]] = []  # where we listen (after binding)
        self._senders: dict[str, str | None] = {}
        self._lines: list[tuple[str, int]] = []
        self._meta: list[dict[str, Any]] = []
        self._nbytes = 0
        self._first = 0.0  # monotonic time of the oldest buffered message
        self._wake: asyncio.Event | None = None
        self._closing = False
        self._conns: set[_Tcp] = set()
        self._paused: set[_Tcp] = set()
        self._socks: list[socket.socket] = []
        self._inodes: set[int] = set()
        self._transports: list[asyncio.BaseTransport] = []
        self._servers: list[asyncio.AbstractServer] = []
        self._readers: list[tuple[asyncio.AbstractEventLoop, int]] = []

    # -- the allow list ---------------------------------------------------------

    def sender(self, host: str) -> str | None:
        """The address to record for a peer, or None when it is not allowed."""
        try:
            return self._senders[host]
        except KeyError:
            pass
        try:
            ip = ipaddress.ip_address(host)
        except ValueError:
            result: str | None = host if self.allow is None else None
        else:
            if ip.version == 6 and ip.ipv4_mapped is not None:
                ip = ip.ipv4_mapped
            ok = self.allow is None or any(ip in net for net in self.allow)
            result = str(ip) if ok else None
        if len(self._senders) >= 4096:
            self._senders.clear()
        self._senders[host] = result
        return result

    # -- the buffer -------------------------------------------------------------

    def _add(self, text: str, flags: int, nbytes: int, sender: str) -> None:
        lines = self._lines
        if not lines:
            self._first = time.monotonic()
            self._wake.set()  # type: ignore[union-attr]
        lines.append((text, flags))
        self._meta.append({"sender": sender})
        self._nbytes += nbytes
        if len(lines) == self.batch:
            self._wake.set()  # type: ignore[union-attr]

    def _add_many(self, msgs: list[tuple[str, int, int]], sender: str) -> None:
        lines = self._lines
        if not lines:
            self._first = time.monotonic()
        before = len(lines)
        meta = self._meta
        for text, flags, nbytes in msgs:
            lines.append((text, flags))
            meta.append({"sender": sender})
            self._nbytes += nbytes
        if before == 0 or (before < self.batch <= len(lines)):
            self._wake.set()  # type: ignore[union-attr]

    def _maybe_pause(self, conn: _Tcp) -> None:
        if (len(self._lines) >= self.tcp_queue or self._nbytes >= self.queue_bytes) and not conn.paused:
            conn.paused = True
            self.pauses += 1
            self._paused.add(conn)
            conn.transport.pause_reading()  # type: ignore[union-attr]

    def _resume(self) -> None:
        if not self._paused or self._closing:
            return
        if len(self._lines) < self.tcp_queue // 2 and self._nbytes < self.queue_bytes // 2:
            paused, self._paused = self._paused, set()
            for conn in paused:
                conn.paused = False
                if conn.transport is not None and not conn.transport.is_closing():
                    conn.transport.resume_reading()

    def _take(self) -> Chunk:
        n = self.batch
        if len(self._lines) <= n:
            lines, meta, nbytes = self._lines, self._meta, self._nbytes
            self._lines, self._meta, self._nbytes = [], [], 0
        else:
            lines, meta = self._lines[:n], self._meta[:n]
            del self._lines[:n]
            del self._meta[:n]
            # bytes are split in proportion: nbytes is a progress figure, not an offset
            nbytes = self._nbytes * n // (n + len(self._lines))
            self._nbytes -= nbytes
        return Chunk(self.key, lines, nbytes, None, [], meta)

    def _framing_error(self, sender: str, framer: Framer, n: int) -> None:
        self.framing_errors += n
        self.health.error = f"framing error from {sender}: {framer.last_error} ({self.framing_errors} so far)"

    # -- running ------------------------------------------------------------------

    async def run(self, emit: Emit, health: SourceHealth, stop: asyncio.Event) -> None:
        # Counters made before run (a refused sender during binding) carry over.
        health.dropped += self.health.dropped
        health.refused += self.health.refused
        self.health = health
        self._wake = asyncio.Event()
        self._closing = False
        loop = asyncio.get_running_loop()
        try:
            await self._bind(loop)
        except BaseException:
            self._close()
            for sock in self._socks:
                sock.close()
            self._socks.clear()
            raise
        health.state = "running"
        flusher = asyncio.create_task(self._flush(emit))
        stopper = asyncio.create_task(stop.wait())
        kdrops = asyncio.create_task(self._kernel_drops(stop)) if self._inodes else None
        try:
            await asyncio.wait({flusher, stopper}, return_when=asyncio.FIRST_COMPLETED)
            if flusher.done():
                flusher.result()  # emit failed: raise it
                return
            self._drain_udp()  # what the kernel holds for us is not lost on the way out
            self._update_kernel_drops()
            self._close()  # stop accepting; closed connections hand over their partial frames
            self._wake.set()
            await flusher
        finally:
            self._close()
            for task in (flusher, stopper, kdrops):
                if task is not None and not task.done():
                    task.cancel()
            for sock in self._socks:
                sock.close()
            self._socks.clear()

    async def _bind(self, loop: asyncio.AbstractEventLoop) -> None:
        spec = self.spec
        udp = spec.kind == "syslog+udp"
        proto = "udp" if udp else "tcp"
        host, port = spec.host, int(spec.port or 0)
        try:
            infos = await loop.getaddrinfo(
                host, port, type=socket.SOCK_DGRAM if udp else socket.SOCK_STREAM,
                flags=socket.AI_PASSIVE | socket.AI_NUMERICSERV,
            )
        except OSError as exc:
            raise _bind_error(exc, host, port, proto) from None
        seen = set()
        for family, type_, protocol, _, addr in infos:
            if (family, addr[0]) in seen:
                continue
            seen.add((family, addr[0]))
            sock = socket.socket(family, type_, protocol)
            self._socks.append(sock)
            try:
                if udp:
                    for opt in (SO_RCVBUFFORCE, socket.SO_RCVBUF):
                        if opt is None:
                            continue
                        try:
                            sock.setsockopt(socket.SOL_SOCKET, opt, UDP_RCVBUF)
                            break
                        except OSError:
                            continue
                else:
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                sock.bind(addr)
                sock.setblocking(False)
            except OSError as exc:
                raise _bind_error(exc, host, port, proto) from None
            bound = sock.getsockname()
            self.addresses.append((bound[0], bound[1]))
            if udp:
                try:
                    self._inodes.add(os.fstat(sock.fileno()).st_ino)
                except OSError:
                    pass
                self.rcvbuf = sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF)
                proto = _Udp(self)
                try:
                    # Read every waiting datagram per wakeup: the datagram
                    # transport reads one per loop iteration, which lost 3x
                    # more under load (benchmarks/syslog_load.py).
                    loop.add_reader(sock.fileno(), _read_datagrams, sock, proto)
                    self._readers.append((loop, sock.fileno()))
                except NotImplementedError:  # an event loop without add_reader
                    transport, _ = await loop.create_datagram_endpoint(lambda: proto, sock=sock)
                    self._transports.append(transport)
            else:
                server = await loop.create_server(lambda: _Tcp(self), sock=sock, backlog=128)
                self._servers.append(server)

    def _close(self) -> None:
        """Stop accepting and close every connection (their partial frames are
        buffered by connection_lost, which runs on the next loop iterations)."""
        self._closing = True
        for server in self._servers:
            server.close()
        for transport in self._transports:
            transport.close()
        for loop, fd in self._readers:
            loop.remove_reader(fd)
        self._readers.clear()
        for conn in list(self._conns):
            if conn.transport is not None:
                conn.transport.close()
        self._servers.clear()
        self._transports.clear()

    async def _flush(self, emit: Emit) -> None:
        loop = asyncio.get_running_loop()
        wake = self._wake
        assert wake is not None
        while True:
            if not self._lines:
                if self._closing:
                    # closed connections hand over their partial frames in
                    # connection_lost, a loop iteration or two after close()
                    for _ in range(100):
                        if not self._conns:
                            break
                        await asyncio.sleep(0 if _ < 2 else 0.01)
                    if not self._lines:
                        return
                    continue
                wake.clear()
                await wake.wait()
                continue
            if len(self._lines) < self.batch and not self._closing:
                remaining = self._first + self.linger - time.monotonic()
                if remaining > 0:
                    wake.clear()
                    handle = loop.call_later(remaining, wake.set)
                    try:
                        await wake.wait()
                    finally:
                        handle.cancel()
                    continue
            chunk = self._take()
            await emit(chunk)
            self._resume()

    def _drain_udp(self) -> None:
        """Read the datagrams already waiting in the kernel (on stop)."""
        if self.spec.kind != "syslog+udp":
            return
        proto = _Udp(self)
        for sock in self._socks:
            for _ in range(self.udp_queue):
                try:
                    data, addr = sock.recvfrom(1 << 18)
                except OSError:  # BlockingIOError: nothing more waiting
                    break
                proto.datagram_received(data, addr)

    async def _kernel_drops(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            await asyncio.sleep(KERNEL_DROPS_EVERY)
            self._update_kernel_drops()

    def _update_kernel_drops(self) -> None:
        if not self._inodes:
            return
        drops = kernel_udp_drops(self._inodes)
        if drops is not None and drops > self.dropped_kernel:
            self.health.dropped += drops - self.dropped_kernel
            self.dropped_kernel = drops
