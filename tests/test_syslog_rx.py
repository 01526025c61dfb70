"""The syslog receiver (soc_tui.sources.syslog_rx): UDP and TCP, RFC 6587
framing, truncation, the allow list, backpressure, drops, stop; and the real
util-linux `logger` as a client, its messages parsed by the syslog parser."""

from __future__ import annotations

import asyncio
import errno
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from soc_tui.model import FLAG_TRUNCATED
from soc_tui.parse import LineParser
from soc_tui.sources.base import SourceHealth, SourceSpec, parse_allow
from soc_tui.sources.syslog_rx import Framer, SyslogSource, _bind_error, kernel_udp_drops
from soc_tui.sources.tail import MAX_LINE, Chunk

from storedb import stored_events

LOGGER = shutil.which("logger")
needs_logger = pytest.mark.skipif(LOGGER is None, reason="util-linux `logger` is not installed")


def _spec(kind: str, host: str = "127.0.0.1", port: int = 0) -> SourceSpec:
    # port 0: the kernel picks a free port (parse_spec wants 1-65535; tests read
    # the bound port from `addresses`, so there is no race for a "free" port)
    return SourceSpec(f"syslog+{kind}", f"syslog+{kind}://{host}:{port}", host=host, port=port)


class Rx:
    """A SyslogSource running in the test's loop, collecting its chunks."""

    def __init__(self, kind: str, allow=None, host: str = "127.0.0.1", delay: float = 0.0,
                 gate: asyncio.Event | None = None, **kw) -> None:
        self.src = SyslogSource(_spec(kind, host), allow, **kw)
        self.health = SourceHealth(self.src.key)
        self.stop = asyncio.Event()
        self.chunks: list[Chunk] = []
        self.delay = delay
        self.gate = gate
        self.task: asyncio.Task | None = None

    async def emit(self, chunk: Chunk) -> None:
        if self.delay:
            await asyncio.sleep(self.delay)
        if self.gate is not None:
            await self.gate.wait()
        self.chunks.append(chunk)

    async def __aenter__(self) -> Rx:
        self.task = asyncio.create_task(self.src.run(self.emit, self.health, self.stop))
        for _ in range(500):
            if self.health.state == "running" or self.task.done():  # bound and listening
                break
            await asyncio.sleep(0.01)
        if self.task.done():
            self.task.result()
        assert self.health.state == "running"
        return self

    async def __aexit__(self, *exc) -> None:
        await self.close()

    async def close(self) -> None:
        self.stop.set()
        if self.task is not None:
            await asyncio.wait_for(self.task, 10)

    @property
    def port(self) -> int:
        return self.src.addresses[0][1]

    @property
    def addr(self) -> tuple[str, int]:
        return self.src.addresses[0][:2]

    @property
    def lines(self) -> list[str]:
        return [text for c in self.chunks for text, _ in c.lines]

    @property
    def flags(self) -> list[int]:
        return [f for c in self.chunks for _, f in c.lines]

    async def wait_lines(self, n: int, timeout: float = 5.0) -> list[str]:
        deadline = time.monotonic() + timeout
        while len(self.lines) < n and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        return self.lines


async def _tcp_send(addr: tuple[str, int], *pieces: bytes, pause: float = 0.0, close: bool = True):
    reader, writer = await asyncio.open_connection(*addr)
    sock = writer.get_extra_info("socket")
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    for p in pieces:
        writer.write(p)
        await writer.drain()
        if pause:
            await asyncio.sleep(pause)
    if close:
        writer.close()
        await writer.wait_closed()
    return writer


def _udp_send(addr: tuple[str, int], *datagrams: bytes) -> None:
    family = socket.AF_INET6 if ":" in addr[0] else socket.AF_INET
    with socket.socket(family, socket.SOCK_DGRAM) as s:
        for d in datagrams:
            s.sendto(d, addr)


# -- UDP ----------------------------------------------------------------------------


async def test_udp_one_datagram_is_one_message():
    async with Rx("udp") as rx:
        _udp_send(rx.addr,
                  b"<13>Oct 11 22:14:15 web-01 app[1]: one\n",
                  b"<13>Oct 11 22:14:15 web-01 app[1]: two\r\n\x00",
                  b"<13>Oct 11 22:14:15 web-01 app[1]: three\nlines kept",
                  b"\n",  # empty: skipped
                  "<13>Oct 11 22:14:15 web-01 app[1]: caf\xe9 ".encode("latin-1") + "ü".encode())
        lines = await rx.wait_lines(4)
    assert lines == [
        "<13>Oct 11 22:14:15 web-01 app[1]: one",
        "<13>Oct 11 22:14:15 web-01 app[1]: two",
        "<13>Oct 11 22:14:15 web-01 app[1]: three\nlines kept",
        "<13>Oct 11 22:14:15 web-01 app[1]: caf\ufffd ü",
    ]
    for c in rx.chunks:
        assert c.source == rx.src.key and c.checkpoint is None and c.gaps == []
        assert c.meta == [{"sender": "127.0.0.1"}] * len(c.lines)
    assert rx.src.fmt == "syslog"
    assert rx.health.dropped == 0 and rx.health.refused == 0


async def test_udp_octet_count_prefix_is_removed_when_it_matches():
    msg = b"<13>1 2026-03-01T10:15:02Z h app 1 - - hello"
    async with Rx("udp") as rx:
        _udp_send(rx.addr, b"%d " % len(msg) + msg, b"12 not a count")
        lines = await rx.wait_lines(2)
    assert lines == [msg.decode(), "12 not a count"]


async def test_udp_ipv6():
    if not socket.has_ipv6:
        pytest.skip("no IPv6")
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as s:
            s.bind(("::1", 0))
    except OSError:
        pytest.skip("::1 is not available")
    async with Rx("udp", host="::1") as rx:
        _udp_send(rx.addr, b"<13>Oct 11 22:14:15 h a: v6")
        await rx.wait_lines(1)
    assert rx.lines == ["<13>Oct 11 22:14:15 h a: v6"]
    assert rx.chunks[0].meta == [{"sender": "::1"}]


async def test_udp_overflow_is_dropped_and_counted():
    gate = asyncio.Event()
    sent = 500
    async with Rx("udp", gate=gate, udp_queue=100, batch=10, linger=0.001) as rx:
        _udp_send(rx.addr, *(b"<13>Oct 11 22:14:15 h a: %d" % i for i in range(sent)))
        deadline = time.monotonic() + 5
        # emit is blocked on the first chunk: the buffer fills, then drops
        while rx.src.dropped_queue + len(rx.src._lines) + 10 < sent and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        gate.set()
    got = len(rx.lines)
    assert rx.src.dropped_queue > 0
    assert 100 <= got < sent
    # nothing is lost without being counted (what the kernel drops is in `dropped` too)
    assert got + rx.health.dropped == sent
    assert rx.health.state == "running" and rx.health.error is None


def test_kernel_udp_drops_reads_the_drops_column(tmp_path: Path):
    udp = tmp_path / "udp"
    udp.write_text(
        "   sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref pointer drops\n"
        "  123: 0100007F:14DA 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 4242 2 0000000000000000 17\n"
        "  124: 0100007F:14DB 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 999 2 0000000000000000 5\n"
    )
    assert kernel_udp_drops({4242}, (str(udp), str(tmp_path / "missing"))) == 17
    assert kernel_udp_drops({1}, (str(udp),)) is None
    # our real socket is found in /proc/net/udp (Linux)
    if os.path.exists("/proc/net/udp"):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.bind(("127.0.0.1", 0))
            assert kernel_udp_drops({os.fstat(s.fileno()).st_ino}) == 0


# -- TCP framing ---------------------------------------------------------------------


async def test_tcp_newline_framing():
    async with Rx("tcp") as rx:
        await _tcp_send(rx.addr, b"<13>Oct 11 22:14:15 h a: one\n<13>Oct 11 22:14:15 h a: two\r\n",
                        b"three\x00four\n\n\r\nno terminator at close")
        lines = await rx.wait_lines(5)
    assert lines == ["<13>Oct 11 22:14:15 h a: one", "<13>Oct 11 22:14:15 h a: two", "three", "four",
                     "no terminator at close"]
    assert rx.flags == [0] * 5
    assert all(c.meta == [{"sender": "127.0.0.1"}] * len(c.lines) for c in rx.chunks)
    assert rx.src.framing_errors == 0


async def test_tcp_octet_counting_keeps_newlines_inside_a_message():
    msg = "<13>1 2026-03-01T10:15:02Z h app 1 - - first line\nsecond line\ré"
    data = msg.encode()
    async with Rx("tcp") as rx:
        await _tcp_send(rx.addr, b"%d %s" % (len(data), data) + b"5 hello" + b"11 hello\nworld")
        lines = await rx.wait_lines(3)
    assert lines == [msg, "hello", "hello\nworld"]


async def test_tcp_iso_timestamp_without_pri_is_newline_framed():
    line = "2026-03-01T10:15:02.123456+00:00 web-01 sshd[1]: Accepted password for bob"
    async with Rx("tcp") as rx:
        await _tcp_send(rx.addr, line.encode() + b"\n" + b"12345 is not followed by enough bytes\n")
        await asyncio.sleep(0.1)
    # the second line looks like an octet count: it waits for 12345 bytes that
    # never come, and the connection's close emits what it has (truncated)
    assert rx.lines == [line, "is not followed by enough bytes"]
    assert rx.flags == [0, FLAG_TRUNCATED]
    assert rx.src.framing_errors == 0


MIXED = (
    b"<13>Oct 11 22:14:15 h a: newline one\n"
    b"21 <13>Oct 11 22:14:15 h"  # octet counted, 21 bytes
    b"<13>Oct 11 22:14:15 h a: crlf\r\n"
    b"14 two\nlines here"
    b"2026-03-01T10:15:02Z h a: iso\x00"
    b"3 end"
)
MIXED_LINES = [
    "<13>Oct 11 22:14:15 h a: newline one",
    "<13>Oct 11 22:14:15 h",
    "<13>Oct 11 22:14:15 h a: crlf",
    "two\nlines here",
    "2026-03-01T10:15:02Z h a: iso",
    "end",
]


def test_framer_mixed_frames_at_every_split_point():
    for cut in range(len(MIXED) + 1):
        for cut2 in range(cut, len(MIXED) + 1, 7):
            f = Framer()
            out = f.feed(MIXED[:cut]) + f.feed(MIXED[cut:cut2]) + f.feed(MIXED[cut2:]) + f.finish()
            assert [t for t, _, _ in out] == MIXED_LINES, (cut, cut2)
            assert f.errors == 0
    f = Framer()
    out = [m for b in MIXED for m in f.feed(bytes([b]))] + f.finish()
    assert [t for t, _, _ in out] == MIXED_LINES


async def test_tcp_mixed_frames_split_across_segments():
    pieces = [MIXED[i:i + 3] for i in range(0, len(MIXED), 3)]
    async with Rx("tcp") as rx:
        await _tcp_send(rx.addr, *pieces, pause=0.001)
        lines = await rx.wait_lines(len(MIXED_LINES))
    assert lines == MIXED_LINES


async def test_tcp_bad_octet_count_falls_back_to_newline_framing():
    async with Rx("tcp") as rx:
        await _tcp_send(rx.addr, b"99999999999 absurd count\n0 zero count\n5 hello<13>Oct 11 22:14:15 h a: after\n")
        lines = await rx.wait_lines(4)
    assert lines == ["99999999999 absurd count", "0 zero count", "hello", "<13>Oct 11 22:14:15 h a: after"]
    assert rx.src.framing_errors == 2
    assert "bad octet count" in rx.health.error and "127.0.0.1" in rx.health.error
    assert rx.health.state == "running"


async def test_tcp_connection_closing_mid_frame_emits_what_it_has():
    async with Rx("tcp") as rx:
        await _tcp_send(rx.addr, b"100 <13>Oct 11 22:14:15 h a: cut short")
        lines = await rx.wait_lines(1)
    assert lines == ["<13>Oct 11 22:14:15 h a: cut short"]
    assert rx.flags == [FLAG_TRUNCATED]


async def test_truncation_at_64_kib():
    big = b"x" * (MAX_LINE + 5000)
    async with Rx("tcp") as rx:
        await _tcp_send(rx.addr, b"<13>Oct 11 22:14:15 h a: " + big + b"\nnext\n",
                        b"%d " % len(big) + big + b"4 more", pause=0.01)
        lines = await rx.wait_lines(4)
    assert [len(x.encode()) for x in lines] == [MAX_LINE, 4, MAX_LINE, 4]
    assert lines[1] == "next" and lines[3] == "more"
    assert rx.flags == [FLAG_TRUNCATED, 0, FLAG_TRUNCATED, 0]
    # a datagram cannot be longer than 64 KiB on the wire; the cap holds anyway
    rx2 = SyslogSource(_spec("udp"))
    rx2._wake = asyncio.Event()
    from soc_tui.sources.syslog_rx import _Udp
    _Udp(rx2).datagram_received(big, ("127.0.0.1", 9))
    assert [(len(t), f) for t, f in rx2._lines] == [(MAX_LINE, FLAG_TRUNCATED)]


# -- allow list, backpressure, batching, stop -------------------------------------------


async def test_allow_list_refuses_and_counts_other_senders():
    outside = parse_allow(["10.0.0.0/8", "2001:db8::/32"], "test")
    async with Rx("udp", allow=outside) as rx:
        _udp_send(rx.addr, b"<13>Oct 11 22:14:15 h a: refused", b"<13>Oct 11 22:14:15 h a: refused too")
        await asyncio.sleep(0.15)
    assert rx.lines == [] and rx.health.refused == 2
    assert rx.health.state == "running" and rx.health.error is None

    async with Rx("tcp", allow=outside) as rx:
        reader, writer = await asyncio.open_connection(*rx.addr)
        try:
            data = await asyncio.wait_for(reader.read(), 2)
        except ConnectionResetError:
            data = b""
        assert data == b""  # closed by the receiver
        writer.close()
        await asyncio.sleep(0.1)
    assert rx.lines == [] and rx.health.refused == 1
    assert rx.health.state == "running" and rx.health.error is None

    inside = parse_allow(["127.0.0.1"], "test")
    async with Rx("tcp", allow=inside) as rx:
        await _tcp_send(rx.addr, b"welcome\n")
        await rx.wait_lines(1)
    assert rx.lines == ["welcome"] and rx.health.refused == 0


async def test_tcp_backpressure_slow_emit_loses_nothing():
    n = 20_000
    payload = b"".join(b"<13>Oct 11 22:14:15 h a: message %d\n" % i for i in range(n))
    async with Rx("tcp", delay=0.005, batch=200, tcp_queue=400) as rx:
        def send() -> None:
            with socket.create_connection(rx.addr) as s:
                s.sendall(payload)
        await asyncio.to_thread(send)
        lines = await rx.wait_lines(n, timeout=20)
    assert lines == [f"<13>Oct 11 22:14:15 h a: message {i}" for i in range(n)]
    assert rx.src.pauses > 0  # the connection did stop reading while emit was slow
    assert rx.health.dropped == 0
    assert max(len(c.lines) for c in rx.chunks) <= 200


async def test_chunks_are_batched_by_count_and_leave_soon_at_low_rates():
    async with Rx("tcp") as rx:
        t0 = time.monotonic()
        await _tcp_send(rx.addr, b"lonely\n", close=False)
        await rx.wait_lines(1)
        latency = time.monotonic() - t0
        await _tcp_send(rx.addr, b"".join(b"m %d\n" % i for i in range(5000)))
        await rx.wait_lines(5001)
    assert latency < 0.5
    assert len(rx.lines) == 5001
    assert max(len(c.lines) for c in rx.chunks) <= 2000
    assert len(rx.chunks) <= 8  # batched, not one chunk per message


async def test_stop_emits_what_is_buffered():
    async with Rx("udp", linger=30.0) as rx:
        _udp_send(rx.addr, b"a", b"b", b"c")
        await asyncio.sleep(0.1)
        assert rx.lines == []  # waiting for more (linger)
    assert rx.lines == ["a", "b", "c"]

    async with Rx("tcp", linger=30.0) as rx:
        writer = await _tcp_send(rx.addr, b"one\ntwo\npartial frame", close=False)
        await asyncio.sleep(0.1)
        assert rx.lines == []
        await rx.close()
        writer.close()
    assert rx.lines == ["one", "two", "partial frame"]


async def test_stop_reads_datagrams_still_in_the_kernel(monkeypatch):
    import soc_tui.sources.syslog_rx as rxmod
    monkeypatch.setattr(rxmod, "UDP_READS", 1)  # one datagram per wakeup: most are still waiting
    async with Rx("udp") as rx:
        _udp_send(rx.addr, *(b"d%d" % i for i in range(50)))
        rx.stop.set()
        await asyncio.wait_for(rx.task, 5)
    assert rx.lines == [f"d{i}" for i in range(50)]


async def test_bind_failure_is_one_line_naming_the_address():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        src = SyslogSource(_spec("tcp", port=port))
        with pytest.raises(OSError) as exc:
            await src.run(lambda c: None, SourceHealth(src.key), asyncio.Event())  # type: ignore[arg-type]
    assert str(exc.value) == f"cannot listen on 127.0.0.1:{port} (tcp): address already in use"
    assert exc.value.errno == errno.EADDRINUSE
    msg = str(_bind_error(PermissionError(errno.EACCES, "Permission denied"), "0.0.0.0", 514, "udp"))
    assert msg == "cannot listen on 0.0.0.0:514 (udp): permission denied (ports below 1024 need root)"
    assert "\n" not in msg
    assert str(_bind_error(OSError(errno.EADDRNOTAVAIL, "x"), "::1", 5514, "tcp")).startswith(
        "cannot listen on [::1]:5514 (tcp): ")


# -- the real logger -----------------------------------------------------------------


def _logger_args(port: int, proto: str, fmt: str, tag: str, pid: int) -> list[str]:
    args = [LOGGER, "-n", "127.0.0.1", "-P", str(port), "-d" if proto == "udp" else "-T",
            "-t", tag, f"--id={pid}"]
    if fmt == "octet":
        args += ["--rfc5424", "--octet-count"]
    else:
        args.append(f"--{fmt}")
    return args


@needs_logger
@pytest.mark.parametrize("proto", ["udp", "tcp"])
@pytest.mark.parametrize("fmt", ["rfc3164", "rfc5424", "octet"])
async def test_logger_messages_parse(proto: str, fmt: str):
    async with Rx(proto) as rx:
        sent = time.time()
        msg = f"hello from logger over {proto} as {fmt}: [ünïcode] <b>markup</b> $(not a shell)"
        p = await asyncio.create_subprocess_exec(*_logger_args(rx.port, proto, fmt, "soctest", 4321), msg,
                                                 stderr=asyncio.subprocess.PIPE)
        _, err = await p.communicate()
        assert p.returncode == 0, err
        await rx.wait_lines(1)
    assert len(rx.lines) == 1
    ev = LineParser(fmt="syslog").parse(rx.lines[0])
    name = socket.gethostname()
    assert ev.host in (name, name.split(".")[0])
    assert (ev.app, ev.pid, ev.message) == ("soctest", 4321, msg)
    assert abs(ev.ts / 1e6 - sent) < 5
    assert not ev.unparsed
    assert rx.chunks[0].meta == [{"sender": "127.0.0.1"}]


@needs_logger
async def test_logger_octet_count_keeps_a_multiline_message_whole():
    async with Rx("tcp") as rx:
        p = await asyncio.create_subprocess_exec(*_logger_args(rx.port, "tcp", "octet", "ml", 1),
                                                 "first\nsecond")
        await p.wait()
        await rx.wait_lines(1)
        p = await asyncio.create_subprocess_exec(*_logger_args(rx.port, "tcp", "rfc5424", "ml", 1),
                                                 "first\nsecond")
        await p.wait()
        await rx.wait_lines(3)
    parsed = [LineParser(fmt="syslog").parse(x) for x in rx.lines]
    assert parsed[0].message == "first\nsecond"
    # newline framing cuts it in two: that is what octet counting is for
    assert parsed[1].message == "first" and rx.lines[2] == "second"


# -- end to end: soc-tui collect ------------------------------------------------------------


def _free_port(kind: int) -> int:
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _udp_bound(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return True
        return False


def _tcp_listens(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
        return True
    except OSError:
        return False


@pytest.mark.slow
@needs_logger
def test_collect_stores_syslog_over_udp_and_tcp_once(tmp_path: Path):
    db = tmp_path / "e.db"
    uport, tport = _free_port(socket.SOCK_DGRAM), _free_port(socket.SOCK_STREAM)
    proc = subprocess.Popen(
        [sys.executable, "-m", "soc_tui", "--db", str(db), "collect", "--no-rules",
         f"syslog+udp://127.0.0.1:{uport}", f"syslog+tcp://127.0.0.1:{tport}"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        expected = {}
        deadline = time.monotonic() + 20
        # wait until both listen: the TCP port accepts, the UDP port is taken
        while time.monotonic() < deadline:
            assert proc.poll() is None, proc.communicate()
            if _udp_bound(uport) and _tcp_listens(tport):
                break
            time.sleep(0.05)
        pid = 1000
        for proto, port in (("udp", uport), ("tcp", tport)):
            for fmt in ("rfc3164", "rfc5424", "octet"):
                pid += 1
                msg = f"e2e {proto} {fmt} message"
                subprocess.run(_logger_args(port, proto, fmt, "e2etag", pid) + [msg], check=True, timeout=10)
                expected[msg] = pid
        while time.monotonic() < deadline:
            if len([e for e in stored_events(db) if e["app"] == "e2etag"]) >= len(expected):
                break
            time.sleep(0.1)
    finally:
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=20)
    assert proc.returncode == 0, err
    events = [e for e in stored_events(db) if e["app"] == "e2etag"]
    name = socket.gethostname()
    assert sorted(e["message"] for e in events) == sorted(expected)  # each exactly once
    for e in events:
        assert e["host"] in (name, name.split(".")[0])
        assert e["pid"] == expected[e["message"]]
        assert e["extra"]["sender"] == "127.0.0.1"
        assert abs(e["ts"] / 1e6 - time.time()) < 30


def test_collect_exits_1_with_one_line_when_its_only_source_cannot_listen(tmp_path: Path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        out = subprocess.run(
            [sys.executable, "-m", "soc_tui", "--db", str(tmp_path / "e.db"), "collect", "--no-rules",
             f"syslog+tcp://127.0.0.1:{port}"],
            capture_output=True, text=True, timeout=60,
        )
    assert out.returncode == 1, out.stderr
    problems = [ln for ln in out.stderr.splitlines() if "address already in use" in ln]
    assert len(problems) == 1 and f"127.0.0.1:{port}" in problems[0], out.stderr
