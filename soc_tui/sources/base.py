"""What every source shares: the source spec grammar, health counters, and the
interface of sources that produce lines themselves (not local files).

Owns: parsing a source string (`/var/log/auth.log`, `/var/log/*.log`,
`ssh://[user@]host[:port]/path`, `syslog+udp://ADDR:PORT`,
`syslog+tcp://ADDR:PORT`, `journald://` (the local journal), `journald:///PATH`
(a journal file or directory), `journald+ssh://[user@]host[:port][/PATH]`
(the remote host's journal, or a journal file or directory there), `-`) into a `SourceSpec`, with a one-line error for a bad one; `SourceHealth`;
`StreamSource`, the base class of the syslog receiver, journald and stdin.

Must not: import Textual, touch the database, or start anything.
"""

from __future__ import annotations

import asyncio
import ipaddress
import time
from dataclasses import dataclass, field
from typing import Awaitable, Callable
from urllib.parse import unquote

from soc_tui.model import Checkpoint
from soc_tui.sources.tail import Chunk

GLOB_CHARS = set("*?[")


class SourceError(ValueError):
    """A source string or option that cannot work; the message says why."""


class ConnectionDown(Exception):
    """A remote source's connection failed or dropped; retrying later may work.
    (Not an OSError: the tailing state machine must never take it for a
    missing file.)"""


class SshRefused(Exception):
    """An SSH server cannot be used as configured (unknown or changed host key,
    authentication refused): retrying will not help until the user acts."""


@dataclass(frozen=True)
class SourceSpec:
    """One parsed source string.

    kind: "file", "glob", "ssh", "syslog+udp", "syslog+tcp", "journald",
    "journald+ssh" or "stdin". `path` is the file path or glob (local or
    remote); `host`/`port`/`user` name the SSH server or the syslog bind address.
    """

    kind: str
    spec: str
    path: str = ""
    host: str = ""
    port: int | None = None
    user: str | None = None

    @property
    def remote_glob(self) -> bool:
        return self.kind == "ssh" and bool(GLOB_CHARS & set(self.path))


def _host_port(netloc: str, spec: str, default_port: int | None) -> tuple[str | None, str, int | None]:
    user = None
    if "@" in netloc:
        user, netloc = netloc.rsplit("@", 1)
        user = unquote(user)
        if not user:
            raise SourceError(f"{spec}: empty user name before '@'")
    port: int | None = default_port
    if netloc.startswith("["):  # [IPv6]:port
        end = netloc.find("]")
        if end < 0:
            raise SourceError(f"{spec}: unclosed '[' in the address")
        host, rest = netloc[1:end], netloc[end + 1:]
        if rest:
            if not rest.startswith(":"):
                raise SourceError(f"{spec}: expected ':PORT' after the address")
            port = _port(rest[1:], spec)
    elif netloc.count(":") == 1:
        host, p = netloc.split(":")
        port = _port(p, spec)
    else:
        host = netloc
    return user, host, port


def _port(text: str, spec: str) -> int:
    if not text.isdigit() or not 0 < int(text) < 65536:
        raise SourceError(f"{spec}: the port must be a number from 1 to 65535, not {text!r}")
    return int(text)


def parse_spec(spec: str) -> SourceSpec:
    """Parse a source string; SourceError names the problem."""
    if spec == "-":
        return SourceSpec("stdin", spec)
    scheme, sep, rest = spec.partition("://")
    if not sep:
        return SourceSpec("glob" if GLOB_CHARS & set(spec) else "file", spec, path=spec)
    scheme = scheme.lower()
    if scheme == "ssh":
        netloc, slash, path = rest.partition("/")
        if not slash or not path:
            raise SourceError(f"{spec}: give the remote file after the host: ssh://[user@]host[:port]/path")
        user, host, port = _host_port(netloc, spec, None)
        if not host:
            raise SourceError(f"{spec}: no host name")
        return SourceSpec("ssh", spec, path="/" + path, host=host, port=port, user=user)
    if scheme in ("syslog+udp", "syslog+tcp"):
        netloc = rest.rstrip("/")
        if "/" in netloc:
            raise SourceError(f"{spec}: a syslog source is ADDR:PORT, without a path")
        user, host, port = _host_port(netloc, spec, None)
        if user is not None:
            raise SourceError(f"{spec}: a syslog source takes no user name")
        if port is None:
            raise SourceError(f"{spec}: give the port to listen on, e.g. {scheme}://127.0.0.1:5514")
        host = host or "127.0.0.1"
        try:
            ipaddress.ip_address(host)
        except ValueError:
            if host != "localhost":
                raise SourceError(f"{spec}: listen on an IP address (127.0.0.1, 0.0.0.0, ::), not {host!r}") from None
        return SourceSpec(scheme, spec, host=host, port=port)
    if scheme == "journald":
        if rest and not rest.startswith("/"):
            raise SourceError(
                f"{spec}: journald:// reads the local journal; journald:///PATH a journal file or directory"
            )
        return SourceSpec("journald", spec, path=rest if rest.strip("/") else "")
    if scheme == "journald+ssh":
        netloc, slash, path = rest.partition("/")
        user, host, port = _host_port(netloc, spec, None)
        if not host:
            raise SourceError(f"{spec}: no host name: journald+ssh://[user@]host[:port]")
        return SourceSpec("journald+ssh", spec, path="/" + path if path else "", host=host, port=port, user=user)
    raise SourceError(
        f"{spec}: unknown source type {scheme!r} (files, globs, ssh://, syslog+udp://, "
        "syslog+tcp://, journald://, journald+ssh:// or - for stdin)"
    )


def parse_allow(allow: list[str] | None, where: str) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network] | None:
    """An `allow:` list of CIDRs (a bare address is a /32 or /128)."""
    if allow is None:
        return None
    nets = []
    for item in allow:
        try:
            nets.append(ipaddress.ip_network(str(item), strict=False))
        except ValueError:
            raise SourceError(f"{where}: allow: {item!r} is not an address or CIDR network") from None
    return nets


@dataclass
class SourceHealth:
    """Live counters for one source, read by the CLI progress bar and the TUI."""

    name: str
    state: str = "starting"  # starting, running, lagging, reconnecting, error, done
    lines: int = 0
    events: int = 0
    unparsed: int = 0
    bytes_read: int = 0
    bytes_behind: int = 0
    gaps: int = 0
    last_event_ts: int | None = None
    error: str | None = None
    rate: float = 0.0  # events/s over the last few seconds
    dropped: int = 0  # messages lost before parsing (UDP syslog under load)
    refused: int = 0  # messages from senders outside the source's allow list
    _window: list[tuple[float, int]] = field(default_factory=list, repr=False)

    def note(self, n: int) -> None:
        now = time.monotonic()
        self._window.append((now, n))
        while self._window and now - self._window[0][0] > 5.0:
            self._window.pop(0)
        span = max(1.0, now - self._window[0][0]) if self._window else 1.0
        self.rate = sum(k for _, k in self._window) / span

    def snapshot(self) -> SourceHealth:
        """A copy for another thread to read while this one keeps counting."""
        return SourceHealth(self.name, self.state, self.lines, self.events, self.unparsed,
                            self.bytes_read, self.bytes_behind, self.gaps, self.last_event_ts,
                            self.error, self.rate, self.dropped, self.refused)


Emit = Callable[[Chunk], Awaitable[None]]


class StreamSource:
    """A source that produces its own chunks (syslog receiver, journald, stdin).

    `key` names the source (its health entry, its row in `sources`, and the
    checkpoint key when it has a checkpoint); `fmt` is the parse format of its
    lines. `run` produces chunks until `stop` is set or the input ends, and
    awaits `emit(chunk)` for each: that await is the backpressure (it waits
    while the writer is behind). A chunk's `meta`, when set, is one dict per
    line merged into that event's `extra` (e.g. the syslog sender's address).
    `run` keeps `health.state` / `health.error` / `health.dropped` /
    `health.refused` current; the pipeline counts lines and events. An
    exception out of `run` puts the source in state "error" with its message.

    Before `run`, the pipeline sets `checkpoint` to the one last committed under
    `key` (None at first); a source that can resume (journald's cursor) starts
    after it, and after a reconnect starts after the last chunk it emitted.
    """

    key: str = ""
    fmt: str = "auto"
    checkpoint: Checkpoint | None = None

    async def run(self, emit: Emit, health: SourceHealth, stop: asyncio.Event) -> None:
        raise NotImplementedError


async def sleep_or_stop(stop: asyncio.Event, seconds: float) -> bool:
    """Wait `seconds` or until `stop` is set; True when stopped."""
    try:
        await asyncio.wait_for(stop.wait(), seconds)
        return True
    except asyncio.TimeoutError:
        return stop.is_set()


class Backoff:
    """Exponential reconnect delays: 0.5 s doubling up to `cap`, reset on success."""

    def __init__(self, first: float = 0.5, cap: float = 30.0) -> None:
        self.first = first
        self.cap = cap
        self.delay = first

    def next(self) -> float:
        d = self.delay
        self.delay = min(self.cap, self.delay * 2)
        return d

    def reset(self) -> None:
        self.delay = self.first
