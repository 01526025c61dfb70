"""Remote sources over SSH: one multiplexed connection per host, host keys
checked, files served to the tailing state machine, commands run quoted.

Owns: `SshHost` (the connection to one `[user@]host[:port]`: asyncssh with the
user's ~/.ssh/config, agent, keys and known_hosts; reconnecting on demand;
host-key and authentication failures turned into one-line errors that name the
fix), `RemoteFs` (the `tail.LocalFs` operations over SFTP, so
`tail.FileFollower` follows remote files with exactly the local state machine),
`host_key_status` / `trust_host` for `soc-tui ssh-trust`.

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
from pathlib import Path
from typing import Any, BinaryIO, Coroutine, TypeVar

import asyncssh

from soc_tui.sources.base import ConnectionDown, SourceSpec, SshRefused
from soc_tui.sources.tail import LocalFs, Stat

T = TypeVar("T")

STAT_TTL = 5.0  # re-read a path's inode at least this often even if unchanged
CALL_TIMEOUT = 20.0  # one remote operation; longer means the link is dead
CONNECT_TIMEOUT = 15.0


def known_hosts_path() -> str:
    return str(Path("~", ".ssh", "known_hosts").expanduser())


def _options(host: str, port: int | None, user: str | None) -> asyncssh.SSHClientConnectionOptions:
    """The connection options as ~/.ssh/config resolves them (HostName, Port, User)."""
    return asyncssh.SSHClientConnectionOptions(
        host=host, port=port if port is not None else (), username=user if user is not None else (),
        config=(),  # () = the user's ~/.ssh/config (None would skip it)
    )


def _label(user: str | None, host: str, port: int | None) -> str:
    return f"{user + '@' if user else ''}{host}{':' + str(port) if port else ''}"


async def host_key_status(host: str, port: int | None = None, user: str | None = None) -> tuple[str, asyncssh.SSHKey, str, int]:
    """Fetch the server's host key and compare it with ~/.ssh/known_hosts.

    Returns (status, key, resolved host, resolved port) with status "trusted",
    "unknown" or "changed" (known_hosts lists other keys for this host)."""
    opts = await asyncio.to_thread(_options, host, port, user)
    rhost, rport = opts.host, opts.port
    try:
        key = await asyncio.wait_for(asyncssh.get_server_host_key(host, port if port is not None else ()),
                                     CONNECT_TIMEOUT)
    except (OSError, asyncssh.Error, asyncio.TimeoutError) as exc:
        raise ConnectionDown(f"{_label(user, host, port)}: cannot reach the server: {_reason(exc)}") from None
    if key is None:
        raise ConnectionDown(f"{_label(user, host, port)}: the server presented no host key")
    try:
        addr = await asyncio.to_thread(socket.gethostbyname, rhost)
    except OSError:
        addr = rhost
    try:
        with open(known_hosts_path(), encoding="utf-8") as fh:
            known = asyncssh.import_known_hosts(fh.read())
    except FileNotFoundError:
        return "unknown", key, rhost, rport
    except (OSError, ValueError) as exc:
        raise SshRefused(f"cannot read {known_hosts_path()}: {exc}") from None
    trusted = known.match(rhost, addr, rport)[0]
    mine = key.public_data
    if any(k.public_data == mine for k in trusted):
        return "trusted", key, rhost, rport
    return ("changed" if trusted else "unknown"), key, rhost, rport


def describe_key(key: asyncssh.SSHKey) -> str:
    return f"{key.get_algorithm()} {key.get_fingerprint('sha256')}"


def known_hosts_line(key: asyncssh.SSHKey, host: str, port: int) -> str:
    name = host if port == 22 else f"[{host}]:{port}"
    return f"{name} {key.export_public_key('openssh').decode().strip()}\n"


def trust_host(key: asyncssh.SSHKey, host: str, port: int) -> str:
    """Append the key to ~/.ssh/known_hosts (created 0600); returns the file."""
    path = known_hosts_path()
    os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    with os.fdopen(fd, "a", encoding="utf-8") as fh:
        fh.write(known_hosts_line(key, host, port))
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
        self._lock = asyncio.Lock()
        # path -> ((size, mtime s), Stat, when) from the last `stat` command
        self._idents: dict[str, tuple[tuple[int, int], Stat, float]] = {}
        # The `stat` argument forms still worth trying on this host.
        self._stat_forms: list[list[str]] = [["-c", "%d %i %s %Y"], ["-f", "%d %i %z %m"]]

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
            if self._conn is not None and self._sftp is not None and not self._closed():
                return self._gen, self._conn, self._sftp
            self._reset()
            try:
                conn = await asyncio.wait_for(
                    asyncssh.connect(
                        self.host,
                        self.port if self.port is not None else (),
                        username=self.user if self.user is not None else (),
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
        if self._conn is not None:
            self._conn.close()
        self._conn = self._sftp = None
        self._idents.clear()

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
            status, key, rhost, rport = await host_key_status(self.host, self.port, self.user)
        except (ConnectionDown, SshRefused) as exc:
            return f"{self.label}: the host key is not trusted ({exc})"
        trust = f"soc-tui ssh-trust {shlex.quote(self.host)}" + (f" --port {self.port}" if self.port else "")
        if status == "changed":
            return (
                f"{self.label}: HOST KEY CHANGED: the server now presents {describe_key(key)}, which "
                f"{known_hosts_path()} does not list for {rhost}; someone may be intercepting the "
                "connection, so soc-tui refuses it. If the server was reinstalled, confirm the new key "
                f"with its admin, remove the old one (ssh-keygen -R {shlex.quote(rhost)}) and run: {trust}"
            )
        return (
            f"{self.label}: unknown host key {describe_key(key)} (not in {known_hosts_path()}); "
            f"compare it with the server's (ssh-keygen -lf /etc/ssh/ssh_host_*_key.pub) and run: {trust}"
        )

    # -- remote operations (coroutines; RemoteFs calls them from a thread) ------

    async def guarded(self, coro: Coroutine[Any, Any, T], path: str = "") -> T:
        """Run one remote operation, mapping its errors: no such file and
        permission denied become OSErrors, the rest ConnectionDown."""
        gen = self._gen
        try:
            return await asyncio.wait_for(coro, CALL_TIMEOUT)
        except (asyncssh.SFTPNoSuchFile, asyncssh.SFTPNoSuchPath):
            raise FileNotFoundError(errno.ENOENT, "no such file", path) from None
        except asyncssh.SFTPPermissionDenied:
            raise PermissionError(errno.EACCES, "permission denied", path) from None
        except (asyncssh.SFTPConnectionLost, asyncssh.SFTPNoConnection, asyncssh.SFTPBadMessage) as exc:
            self.drop(gen)
            raise ConnectionDown(f"{self.label}: connection lost: {_reason(exc)}") from None
        except asyncssh.SFTPError as exc:
            raise OSError(errno.EIO, _reason(exc), path) from None
        except (OSError, asyncssh.Error, asyncio.TimeoutError, EOFError) as exc:
            self.drop(gen)
            raise ConnectionDown(f"{self.label}: connection lost: {_reason(exc)}") from None

    async def run(self, argv: list[str], timeout: float = CALL_TIMEOUT) -> tuple[int, bytes, bytes]:
        """Run a command, each argument quoted; (exit status, stdout, stderr)."""
        gen, conn, _ = await self.connect()
        try:
            res = await asyncio.wait_for(conn.run(shlex.join(argv), encoding=None, check=False), timeout)
        except (OSError, asyncssh.Error, asyncio.TimeoutError) as exc:
            self.drop(gen)
            raise ConnectionDown(f"{self.label}: connection lost: {_reason(exc)}") from None
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
        busybox form, else BSD's), in the C locale so errors read the same."""
        forms = self._stat_forms
        while forms:
            fmt = forms[0]
            status, out, err = await self.run(["env", "LC_ALL=C", "stat", "-L", *fmt, "--", path])
            if status == 0:
                try:
                    dev, ino, size, mtime = (int(x) for x in out.split())
                    return Stat(dev, ino, size, mtime * 1_000_000_000)
                except ValueError:
                    pass
            if status == 127:  # no stat at all (env says "No such file" for it)
                break
            text = err.decode("utf-8", "replace").lower()
            if "no such file" in text:
                raise FileNotFoundError(errno.ENOENT, "no such file", path)
            if "permission denied" in text:
                raise PermissionError(errno.EACCES, "permission denied", path)
            forms = self._stat_forms = forms[1:]  # this form does not work here
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

    async def open(self, path: str) -> tuple[asyncssh.SFTPClientFile, Stat]:
        """Open for reading, with the identity of the file opened."""
        _, _, sftp = await self.connect()
        for _attempt in range(5):
            before = await self.ident(path)
            fh = await self.guarded(sftp.open(path, "rb"), path)
            after = await self.ident(path)
            if (before.st_dev, before.st_ino) == (after.st_dev, after.st_ino):
                return fh, after
            await self.guarded(fh.close(), path)  # replaced meanwhile: again
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
            self._host.drop(self._gen)
            raise ConnectionDown(f"{self._host.label}: connection lost: {_reason(exc)}") from None


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

    def __init__(self, fs: RemoteFs, fh: asyncssh.SFTPClientFile, ident: Stat, path: str) -> None:
        self._fs = fs
        self._fh = fh
        self.ident = ident
        self.path = path
        self.pos = 0
        self.closed = False

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def read(self, n: int = -1) -> bytes:
        data = self._fs.call(self._fs.host.guarded(self._fh.read(n, self.pos), self.path))
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
        attrs = self._fs.call(self._fs.host.guarded(self._fh.stat(), self.path))
        return Stat(self.ident.st_dev, self.ident.st_ino, attrs.size or 0, (attrs.mtime or 0) * 1_000_000_000)

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        try:
            self._fs.call(self._fh.close(), timeout=2.0)
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

    def call(self, coro: Coroutine[Any, Any, T], timeout: float = CALL_TIMEOUT + 5) -> T:
        fut = asyncio.run_coroutine_threadsafe(coro, self.loop)
        try:
            return fut.result(timeout)
        except concurrent.futures.TimeoutError:
            fut.cancel()
            raise ConnectionDown(f"{self.host.label}: no answer in {timeout:.0f} s") from None

    def open(self, path: str) -> BinaryIO:
        fh, ident = self.call(self.host.open(path))
        raw = RemoteFile(self, fh, ident, path)
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
