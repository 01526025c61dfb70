"""Remote sources over SSH: one multiplexed connection per host, host keys
checked, files served to the tailing state machine, commands run quoted.

Owns: `SshHost` (the connection to one `[user@]host[:port]`: asyncssh with the
user's ~/.ssh/config, agent, keys and known_hosts; reconnecting on demand;
host-key and authentication failures turned into one-line errors that name the
fix), `RemoteFs` (the `tail.LocalFs` operations over SFTP, so
`tail.FileFollower` follows remote files with exactly the local state machine),
`check_host_key` / `trust_host` for `soc-tui ssh-trust`.

File identity: SFTP gives size and mtime but no inode, so `stat -L -c` runs
over the connection when a path's size or mtime changed (or every
STAT_TTL seconds); a handle gets the identity of its path from a stat before
and after the open that agree. Every argument of a remote command is quoted
with `shlex.quote`: no file name can inject a command.

A dropped connection surfaces as `ConnectionDown` (not an OSError, so the
state machine never mistakes it for a missing file); the pipeline then
reconnects with backoff and resumes from the last checkpoint it emitted.

Must not: disable host key checking, parse lines, touch the database or
import Textual.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import errno
import gzip
import os
import shlex
import socket
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, Coroutine, TypeVar

with warnings.catch_warnings():
    # asyncssh (2.24) names cryptography's DSA key types when it is imported,
    # and cryptography 51 deprecates each with a warning: ten lines on the
    # terminal of every command that reads an SSH source, before its own one
    # line, and nothing a user can act on.
    warnings.filterwarnings("ignore", message="DSA is deprecated", category=UserWarning)
    import asyncssh

from soc_tui.sources.base import ConnectionDown, SourceSpec, SshRefused
from soc_tui.sources.tail import LocalFs, Stat

T = TypeVar("T")

# `stat` argument forms: GNU coreutils and busybox, then BSD; the marker starts
# the answer (anything a login script prints before it is ignored).
STAT_FORMS = (("-c", "%d %i %s %Y"), ("-f", "%d %i %z %m"))
_MARK = "soc-tui-stat "
STAT_TTL = 5.0  # re-read a path's inode at least this often even if unchanged
CALL_TIMEOUT = 20.0  # one remote operation; longer means the link is dead
CONNECT_TIMEOUT = 15.0


def known_hosts_path() -> str:
    return str(Path("~", ".ssh", "known_hosts").expanduser())


def _options(host: str, port: int | None, user: str | None) -> asyncssh.SSHClientConnectionOptions:
    """The connection options as ~/.ssh/config resolves them (HostName, Port,
    User, UserKnownHostsFile, HostKeyAlias). A config asyncssh cannot read is
    an SshRefused naming the problem."""
    try:
        return asyncssh.SSHClientConnectionOptions(
            host=host, port=port if port is not None else (), username=user if user is not None else (),
            config=(),  # () = the user's ~/.ssh/config (None would skip it)
        )
    except (ValueError, OSError, asyncssh.Error) as exc:
        raise SshRefused(f"{_label(user, host, port)}: ~/.ssh/config: {_reason(exc)}") from None


def _label(user: str | None, host: str, port: int | None) -> str:
    return f"{user + '@' if user else ''}{host}{':' + str(port) if port else ''}"


@dataclass
class HostKeyCheck:
    """A server's host key against the known_hosts files ssh would use for it."""

    status: str  # "trusted", "unknown" or "changed" (other keys are listed for it)
    key: asyncssh.SSHKey
    name: str  # the name known_hosts lists it under (HostKeyAlias, else HostName)
    port: int
    files: list[str]  # the known_hosts files consulted; a new key goes to the first

    @property
    def entry(self) -> str:
        return self.name if self.port == 22 else f"[{self.name}]:{self.port}"

    def describe(self) -> str:
        return f"{self.key.get_algorithm()} {self.key.get_fingerprint('sha256')}"

    def changed_message(self, label: str, trust: str) -> str:
        return (
            f"{label}: HOST KEY CHANGED: the server now presents {self.describe()}, which "
            f"{self.files[0]} does not list for {self.entry}; someone may be intercepting the "
            "connection, so soc-tui refuses it. If the server was reinstalled, confirm the new key "
            f"with its admin, remove the old one (ssh-keygen -R {shlex.quote(self.entry)}) and run: {trust}"
        )


def _no_checking(label: str) -> SshRefused:
    return SshRefused(
        f"{label}: ~/.ssh/config turns host key checking off for this host (UserKnownHostsFile "
        "none); soc-tui never connects to a server it cannot verify"
    )


def _key_algs(trusted: list[asyncssh.SSHKey]) -> list[str]:
    """Host key algorithms that can present one of these keys (RSA keys sign
    with the SHA-2 algorithms too)."""
    algs: list[str] = []
    for k in trusted:
        alg = k.get_algorithm()
        algs += ["rsa-sha2-512", "rsa-sha2-256", "ssh-rsa"] if alg == "ssh-rsa" else [alg]
    return list(dict.fromkeys(algs))


async def check_host_key(host: str, port: int | None = None, user: str | None = None) -> HostKeyCheck:
    """Fetch the server's host key and compare it with the known_hosts files
    that ~/.ssh/config names for it (default ~/.ssh/known_hosts). When keys are
    listed, the server is asked for a key of those algorithms, so a server that
    also has, say, an ed25519 key is not taken for a changed one."""
    label = _label(user, host, port)
    opts = await asyncio.to_thread(_options, host, port, user)
    if opts.known_hosts is None:
        raise _no_checking(label)
    files = [str(Path(str(f)).expanduser()) for f in opts.known_hosts] or [known_hosts_path()]
    name, rport = opts.host_key_alias or opts.host, opts.port
    text = []
    for f in files:
        try:
            with open(f, encoding="utf-8") as fh:
                text.append(fh.read())
        except FileNotFoundError:
            continue
        except OSError as exc:
            raise SshRefused(f"cannot read {f}: {_reason(exc)}") from None
    try:
        known = asyncssh.import_known_hosts("\n".join(text))
    except ValueError as exc:
        raise SshRefused(f"{files[0]}: {exc}") from None
    try:
        addr = await asyncio.to_thread(socket.gethostbyname, opts.host)
    except OSError:
        addr = opts.host
    trusted = list(known.match(name, addr, rport if rport != 22 else None)[0])

    async def fetch(algs: list[str]) -> asyncssh.SSHKey | None:
        return await asyncio.wait_for(
            asyncssh.get_server_host_key(opts.host, rport, server_host_key_algs=algs or ()), CONNECT_TIMEOUT)

    try:
        try:
            key = await fetch(_key_algs(trusted))
        except asyncssh.KeyExchangeFailed:
            key = await fetch([])  # none of the listed kinds any more: show what it has
    except (OSError, asyncssh.Error, asyncio.TimeoutError) as exc:
        raise ConnectionDown(f"{label}: cannot reach the server: {_reason(exc)}") from None
    if key is None:
        raise ConnectionDown(f"{label}: the server presented no host key")
    mine = key.public_data
    if any(k.public_data == mine for k in trusted):
        status = "trusted"
    else:
        status = "changed" if trusted else "unknown"
    return HostKeyCheck(status, key, name, rport, files)


def trust_host(check: HostKeyCheck) -> str:
    """Append the key to the first known_hosts file (created 0600); returns it."""
    path = check.files[0]
    os.makedirs(os.path.dirname(path) or ".", mode=0o700, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o600)
    with os.fdopen(fd, "r+b") as fh:
        size = os.fstat(fh.fileno()).st_size
        sep = b""
        if size:
            fh.seek(size - 1)
            sep = b"" if fh.read(1) == b"\n" else b"\n"
        line = f"{check.entry} {check.key.export_public_key('openssh').decode().strip()}\n"
        fh.write(sep + line.encode())
    return path


def _reason(exc: BaseException) -> str:
    if isinstance(exc, asyncssh.Error) and exc.reason:
        return str(exc.reason)
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror.lower()
    if isinstance(exc, asyncio.TimeoutError):
        return "timed out"
    return str(exc) or type(exc).__name__


class SshHost:
    """One SSH connection (and its SFTP session) shared by every source on a host."""

    def __init__(self, host: str, port: int | None = None, user: str | None = None) -> None:
        self.host = host
        self.port = port
        self.user = user
        self.label = _label(user, host, port)
        self._conn: asyncssh.SSHClientConnection | None = None
        self._sftp: asyncssh.SFTPClient | None = None
        self._gen = 0
        self._shut = False
        self._lock = asyncio.Lock()
        # Command channels open at once (each `stat` is one): sshd allows 10
        # sessions per connection by default, and the SFTP session is one.
        self._channels = asyncio.Semaphore(4)
        # path -> ((size, mtime s), Stat, when) from the last `stat` command
        self._idents: dict[str, tuple[tuple[int, int], Stat, float]] = {}
        # The `stat` argument forms still worth trying on this host.
        self._stat_forms: list[tuple[str, str]] = list(STAT_FORMS)

    @classmethod
    def for_spec(cls, spec: SourceSpec) -> SshHost:
        return cls(spec.host, spec.port, spec.user)

    @property
    def key(self) -> tuple[str | None, str, int | None]:
        return (self.user, self.host, self.port)

    # -- the connection -------------------------------------------------------

    async def connect(self) -> tuple[int, asyncssh.SSHClientConnection, asyncssh.SFTPClient]:
        """The live connection (opened now if needed) and its generation."""
        async with self._lock:
            if self._shut:
                raise ConnectionDown(f"{self.label}: the collector is stopping")
            if self._conn is not None and self._sftp is not None and not self._closed():
                return self._gen, self._conn, self._sftp
            self._reset()
            opts = await asyncio.to_thread(_options, self.host, self.port, self.user)
            if opts.known_hosts is None:
                raise _no_checking(self.label)
            try:
                conn = await asyncio.wait_for(
                    asyncssh.connect(
                        self.host,
                        self.port if self.port is not None else (),
                        options=opts,
                        keepalive_interval=10,
                        keepalive_count_max=3,
                        connect_timeout=CONNECT_TIMEOUT,
                    ),
                    CONNECT_TIMEOUT + 5,
                )
            except asyncssh.HostKeyNotVerifiable:
                raise SshRefused(await self._host_key_problem()) from None
            except asyncssh.PermissionDenied as exc:
                raise SshRefused(
                    f"{self.label}: authentication refused ({_reason(exc)}); soc-tui logs in like ssh "
                    "does: keys from your ssh-agent and ~/.ssh, user and port from ~/.ssh/config"
                ) from None
            except (OSError, asyncssh.Error, asyncio.TimeoutError) as exc:
                raise ConnectionDown(f"{self.label}: cannot connect: {_reason(exc)}") from None
            try:
                sftp = await asyncio.wait_for(conn.start_sftp_client(), CALL_TIMEOUT)
            except (OSError, asyncssh.Error, asyncio.TimeoutError) as exc:
                conn.close()
                raise ConnectionDown(f"{self.label}: no SFTP session (is the sftp subsystem enabled?): "
                                     f"{_reason(exc)}") from None
            self._conn, self._sftp = conn, sftp
            self._gen += 1
            return self._gen, conn, sftp

    def _closed(self) -> bool:
        conn = self._conn
        return conn is None or conn.is_closed()

    def _reset(self) -> None:
        self._stat_forms = list(STAT_FORMS)  # the host may have changed
        if self._conn is not None:
            self._conn.close()
        self._conn = self._sftp = None
        self._idents.clear()

    def shut(self) -> None:
        """Close the connection for good (the collector is stopping): what is
        blocked on it fails now, and nothing connects again."""
        self._shut = True
        self._reset()

    def lost(self, exc: BaseException, gen: int) -> ConnectionDown:
        """The error for an operation that failed with the connection under
        it: that connection (generation `gen`) is dropped, the next use
        reconnects."""
        self.drop(gen)
        return ConnectionDown(f"{self.label}: connection lost: {_reason(exc)}")

    def drop(self, gen: int | None = None) -> None:
        """Forget a connection that failed (only that generation: another
        source may already have reconnected)."""
        if gen is None or gen == self._gen:
            self._reset()

    async def close(self) -> None:
        conn = self._conn
        self._reset()
        if conn is not None:
            try:
                await asyncio.wait_for(conn.wait_closed(), 2)
            except (asyncio.TimeoutError, OSError, asyncssh.Error):
                pass

    async def _host_key_problem(self) -> str:
        try:
            check = await check_host_key(self.host, self.port, self.user)
        except (ConnectionDown, SshRefused) as exc:
            return f"{self.label}: the host key is not trusted ({exc})"
        trust = f"soc-tui ssh-trust {shlex.quote(self.host)}" + (f" --port {self.port}" if self.port else "")
        if check.status == "changed":
            return check.changed_message(self.label, trust)
        return (
            f"{self.label}: unknown host key {check.describe()} (not in {check.files[0]}); "
            f"compare it with the server's (ssh-keygen -lf /etc/ssh/ssh_host_*_key.pub) and run: {trust}"
        )

    # -- remote operations (coroutines; RemoteFs calls them from a thread) ------

    async def guarded(self, coro: Coroutine[Any, Any, T], path: str = "", gen: int | None = None) -> T:
        """Run one remote operation, mapping its errors: no such file and
        permission denied become OSErrors, the rest ConnectionDown. `gen` is
        the connection the operation belongs to (a handle's), default the
        current one: only that one is dropped when it fails."""
        gen = self._gen if gen is None else gen
        try:
            return await asyncio.wait_for(coro, CALL_TIMEOUT)
        except (asyncssh.SFTPNoSuchFile, asyncssh.SFTPNoSuchPath):
            raise FileNotFoundError(errno.ENOENT, "no such file", path) from None
        except asyncssh.SFTPPermissionDenied:
            raise PermissionError(errno.EACCES, "permission denied", path) from None
        except (asyncssh.SFTPConnectionLost, asyncssh.SFTPNoConnection, asyncssh.SFTPBadMessage) as exc:
            raise self.lost(exc, gen) from None
        except asyncssh.SFTPError as exc:
            raise OSError(errno.EIO, _reason(exc), path) from None
        except (OSError, asyncssh.Error, asyncio.TimeoutError, EOFError) as exc:
            raise self.lost(exc, gen) from None

    async def run(self, argv: list[str], timeout: float = CALL_TIMEOUT) -> tuple[int, bytes, bytes]:
        """Run a command, each argument quoted; (exit status, stdout, stderr)."""
        gen, conn, _ = await self.connect()
        try:
            async with self._channels:
                res = await asyncio.wait_for(conn.run(shlex.join(argv), encoding=None, check=False), timeout)
        except asyncssh.ChannelOpenError as exc:
            # The server refused one more session (MaxSessions): the
            # connection itself is fine, and the other sources keep it.
            raise ConnectionDown(f"{self.label}: the server refused a session: {_reason(exc)}") from None
        except (OSError, asyncssh.Error, asyncio.TimeoutError) as exc:
            raise self.lost(exc, gen) from None
        status = res.exit_status if res.exit_status is not None else 255
        return status, bytes(res.stdout or b""), bytes(res.stderr or b"")

    async def runner(self, argv: list[str]) -> RemoteProcess:
        """Start a long-running command (journalctl -f), each argument quoted;
        the shape `journald.Runner` expects."""
        gen, conn, _ = await self.connect()
        try:
            proc = await asyncio.wait_for(
                conn.create_process(shlex.join(argv), encoding=None, stdin=asyncssh.DEVNULL),
                CALL_TIMEOUT,
            )
        except (OSError, asyncssh.Error, asyncio.TimeoutError) as exc:
            self.drop(gen)
            raise ConnectionDown(f"{self.label}: cannot start {argv[0]}: {_reason(exc)}") from None
        return RemoteProcess(self, gen, proc)

    async def ident(self, path: str) -> Stat:
        """dev, inode, size and mtime of `path` from the remote `stat` (GNU or
        busybox form, else BSD's), in the C locale so errors read the same.

        The output is looked for after a marker, so a login script printing
        to stdout cannot garble it. A form is given up on a host only when
        `stat` rejects its options; any other failure is about this path."""
        while self._stat_forms:
            fmt = self._stat_forms[0]
            status, out, err = await self.run(
                ["env", "LC_ALL=C", "stat", "-L", fmt[0], _MARK + fmt[1], "--", path])
            said = err.decode("utf-8", "replace").strip()
            text = said.lower()
            if status == 0:
                got = out.rsplit(_MARK.encode(), 1)
                try:
                    dev, ino, size, mtime = (int(x) for x in got[1].split())
                    return Stat(dev, ino, size, mtime * 1_000_000_000)
                except (IndexError, ValueError):
                    raise OSError(errno.EIO, "unreadable stat output", path) from None
            if status == 127:  # no stat at all (env says "No such file" for it)
                break
            if "no such file" in text:
                raise FileNotFoundError(errno.ENOENT, "no such file", path)
            if "permission denied" in text:
                raise PermissionError(errno.EACCES, "permission denied", path)
            if any(w in text for w in ("illegal option", "invalid option", "unrecognized option",
                                        "unknown option", "usage")):
                self._stat_forms = self._stat_forms[1:]  # not this host's stat: the next form
                continue
            first = said.splitlines()[0] if said else f"exit status {status}"
            raise OSError(errno.EIO, first, path)
        raise SshRefused(
            f"{self.label}: no usable `stat` command there (coreutils, busybox or BSD), so a "
            "rotated file cannot be told from a new one; install coreutils on the server"
        )

    async def stat(self, path: str) -> Stat:
        """Like os.stat: the cached identity while size and mtime stand still."""
        _, _, sftp = await self.connect()
        attrs = await self.guarded(sftp.stat(path), path)
        sig = (attrs.size or 0, attrs.mtime or 0)
        hit = self._idents.get(path)
        now = time.monotonic()
        if hit is not None and hit[0] == sig and now - hit[2] < STAT_TTL:
            return hit[1]
        st = await self.ident(path)
        self._idents[path] = ((st.st_size, st.st_mtime_ns // 1_000_000_000), st, now)
        return st

    async def open(self, path: str) -> tuple[asyncssh.SFTPClientFile, Stat, int]:
        """Open for reading: the handle, the identity of the file opened, and
        the connection generation the handle belongs to."""
        gen, _, sftp = await self.connect()
        for _attempt in range(5):
            before = await self.ident(path)
            fh = await self.guarded(sftp.open(path, "rb"), path, gen)
            try:
                after = await self.ident(path)
            except BaseException:
                await _quiet_close(fh)
                raise
            if (before.st_dev, before.st_ino) == (after.st_dev, after.st_ino):
                return fh, after, gen
            await _quiet_close(fh)  # replaced meanwhile: again
        raise OSError(errno.EAGAIN, "kept being replaced while opened", path)

    async def listdir(self, path: str) -> list[str]:
        _, _, sftp = await self.connect()
        names = await self.guarded(sftp.listdir(path), path)
        return [str(n) for n in names if n not in (".", "..")]

    async def glob(self, pattern: str) -> list[str]:
        """Regular files matching a remote glob (no shell involved)."""
        _, _, sftp = await self.connect()
        try:
            paths = await self.guarded(sftp.glob(pattern), pattern)
        except FileNotFoundError:
            return []
        out = []
        for p in paths:
            if await self.guarded(sftp.isfile(p), p):
                out.append(str(p))
        return sorted(out)


async def _quiet_close(fh: asyncssh.SFTPClientFile) -> None:
    """Close a remote handle; on a dead link there is nothing left to close."""
    try:
        await asyncio.wait_for(fh.close(), 2.0)
    except (OSError, asyncssh.Error, asyncio.TimeoutError):
        pass


class _RemoteStream:
    """A remote process's stdout or stderr: read(n) until b""; a lost
    connection raises ConnectionDown."""

    def __init__(self, host: SshHost, gen: int, reader: asyncssh.SSHReader[bytes]) -> None:
        self._host = host
        self._gen = gen
        self._reader = reader

    async def read(self, n: int = -1) -> bytes:
        try:
            return await self._reader.read(n)
        except (OSError, asyncssh.Error) as exc:
            raise self._host.lost(exc, self._gen) from None


class RemoteProcess:
    """A command running over SSH (see `SshHost.runner`)."""

    def __init__(self, host: SshHost, gen: int, proc: asyncssh.SSHClientProcess[bytes]) -> None:
        self._host = host
        self._proc = proc
        self.stdout = _RemoteStream(host, gen, proc.stdout)
        self.stderr = _RemoteStream(host, gen, proc.stderr)

    async def wait(self) -> int:
        try:
            res = await self._proc.wait(check=False)
        except (OSError, asyncssh.Error) as exc:
            raise ConnectionDown(f"{self._host.label}: connection lost: {_reason(exc)}") from None
        if res.exit_status is None:
            if res.exit_signal is not None:
                return -1
            raise ConnectionDown(f"{self._host.label}: connection lost before the command ended")
        return res.exit_status if res.exit_status >= 0 else 255

    def kill(self) -> None:
        try:
            self._proc.kill()
        except (OSError, asyncssh.Error):
            pass
        self._proc.close()

    def terminate(self) -> None:
        try:
            self._proc.terminate()
        except (OSError, asyncssh.Error):
            pass
        self._proc.close()


class RemoteFile:
    """A remote file handle for the state machine: blocking reads from a thread."""

    def __init__(self, fs: RemoteFs, fh: asyncssh.SFTPClientFile, ident: Stat, path: str, gen: int) -> None:
        self._fs = fs
        self._fh = fh
        self._gen = gen
        self.ident = ident
        self.path = path
        self.pos = 0
        self.closed = False

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def read(self, n: int = -1) -> bytes:
        data = self._fs.call(self._fs.host.guarded(self._fh.read(n, self.pos), self.path, self._gen))
        self.pos += len(data)
        return data

    def seek(self, pos: int, whence: int = 0) -> int:
        if whence == 0:
            self.pos = pos
        elif whence == 1:
            self.pos += pos
        else:
            self.pos = self.stat().st_size + pos
        return self.pos

    def tell(self) -> int:
        return self.pos

    def stat(self) -> Stat:
        attrs = self._fs.call(self._fs.host.guarded(self._fh.stat(), self.path, self._gen))
        return Stat(self.ident.st_dev, self.ident.st_ino, attrs.size or 0, (attrs.mtime or 0) * 1_000_000_000)

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        if self._fs.on_loop():
            # Dropped on the loop thread (a finalizer): blocking here would
            # wait on this very loop, so the close is only scheduled.
            self._fs.loop.create_task(_quiet_close(self._fh))
            return
        try:
            self._fs.call(_quiet_close(self._fh), timeout=2.0)
        except Exception:  # noqa: BLE001 - closing a handle on a dead link
            pass

    def __enter__(self) -> RemoteFile:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class _RemoteGzip(gzip.GzipFile):
    """A compressed remote file; closing it closes the remote handle too."""

    def __init__(self, raw: RemoteFile) -> None:
        super().__init__(fileobj=raw, mode="rb")  # type: ignore[arg-type]
        self.raw = raw

    def close(self) -> None:
        try:
            super().close()
        finally:
            self.raw.close()


class RemoteFs(LocalFs):
    """`tail.LocalFs` over SSH, for a `FileFollower` polled in a worker thread:
    each operation runs on the event loop that owns the connection."""

    def __init__(self, host: SshHost, loop: asyncio.AbstractEventLoop) -> None:
        self.host = host
        self.loop = loop

    def on_loop(self) -> bool:
        """Is this the thread running the connection's event loop?"""
        try:
            return asyncio.get_running_loop() is self.loop
        except RuntimeError:
            return False

    def call(self, coro: Coroutine[Any, Any, T], timeout: float = CALL_TIMEOUT + 5) -> T:
        if self.on_loop():
            coro.close()
            raise RuntimeError("RemoteFs used on its event loop's thread (it would wait on itself)")
        fut = asyncio.run_coroutine_threadsafe(coro, self.loop)
        try:
            return fut.result(timeout)
        except concurrent.futures.TimeoutError:
            fut.cancel()
            raise ConnectionDown(f"{self.host.label}: no answer in {timeout:.0f} s") from None

    def open(self, path: str) -> BinaryIO:
        fh, ident, gen = self.call(self.host.open(path))
        raw = RemoteFile(self, fh, ident, path, gen)
        if path.endswith(".gz"):
            return _RemoteGzip(raw)  # type: ignore[return-value]
        return raw  # type: ignore[return-value]

    def stat(self, path: str) -> Stat:
        return self.call(self.host.stat(path))

    def fstat(self, fh: BinaryIO) -> Stat:
        raw = fh.raw if isinstance(fh, _RemoteGzip) else fh
        return raw.stat()  # type: ignore[union-attr]

    def listdir(self, path: str) -> list[str]:
        return self.call(self.host.listdir(path))
