"""The normalised event and the small value types shared by every layer.

Owns: the shape of an event (DESIGN section 3) and time helpers.
Must not: do I/O, import Textual, or know about SQL.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

# Bits of Event.flags.
FLAG_UNPARSED = 1  # no envelope format matched the line; only raw is reliable
FLAG_TRUNCATED = 2  # the line was longer than the cap; the rest was dropped
FLAG_TS_GUESSED = 4  # the line had no usable time; ts is the ingest time


@dataclass(slots=True)
class Event:
    """One stored log line.

    `ts` is event time in integer microseconds since the epoch, UTC.
    `repeat` is 1 for an ordinary line and N for a syslog
    `message repeated N times: [ msg ]` line: that line is stored once (raw kept,
    `message` = the inner msg, fields extracted from it) and weighs N in counts
    and in rules.
    """

    ts: int
    raw: str
    source_id: str = ""
    host: str | None = None
    app: str | None = None
    pid: int | None = None
    level: str | None = None
    action: str | None = None
    outcome: str | None = None
    user: str | None = None
    target_user: str | None = None
    src_ip: str | None = None
    src_port: int | None = None
    http_method: str | None = None
    url: str | None = None
    http_status: int | None = None
    bytes: int | None = None
    user_agent: str | None = None
    referrer: str | None = None
    message: str | None = None
    repeat: int = 1
    flags: int = 0
    extra: dict[str, Any] | None = field(default=None)
    id: int | None = None
    ingested_at: int | None = None

    @property
    def unparsed(self) -> bool:
        return bool(self.flags & FLAG_UNPARSED)

    @property
    def truncated(self) -> bool:
        return bool(self.flags & FLAG_TRUNCATED)


@dataclass(slots=True)
class Checkpoint:
    """Where a reader stands in one file (or journal): committed with the events."""

    key: str  # the configured path (or source name) the reader follows
    dev: int | None = None
    ino: int | None = None
    fp_hash: str | None = None  # sha256 hex of the first fp_len bytes
    fp_len: int = 0
    offset: int = 0
    cursor: str | None = None  # journald cursor, for sources that have one


@dataclass(slots=True)
class Gap:
    """Data a reader knows it could not read (truncation, replaced file)."""

    source: str
    reason: str
    detail: str = ""


def now_us() -> int:
    """Wall-clock time in integer microseconds since the epoch (UTC)."""
    return int(datetime.now(timezone.utc).timestamp() * 1_000_000)


def dt_to_us(dt: datetime) -> int:
    """An aware datetime as integer microseconds since the epoch."""
    delta = dt - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def us_to_iso(us: int) -> str:
    """Microseconds since the epoch as ISO 8601 UTC with a `Z` suffix."""
    dt = datetime.fromtimestamp(us / 1_000_000, tz=timezone.utc)
    if us % 1_000_000:
        return dt.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return dt.strftime("%Y-%m-%dT%H:%M:%SZ")


_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
