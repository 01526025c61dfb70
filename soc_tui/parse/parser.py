"""`LineParser`: one per source; turns one log line into one `Event`, never raising."""

from __future__ import annotations

from time import time_ns

from soc_tui.model import FLAG_TS_GUESSED, FLAG_UNPARSED, Event

from . import audit, jsonlog, syslog, web
from .timeutil import TimeContext

FORMATS: tuple[str, ...] = ("auto", "syslog", "access", "json", "journald")

# Envelope families, most specific first. Each envelope is a function
# (parser, line, flags, now_us) -> Event | None that cheaply rejects lines whose
# first character cannot start its format.
_FAMILIES = {
    "journald": (jsonlog.env_journald,),
    "json": (jsonlog.env_json,),
    "syslog": (syslog.env_5424, syslog.env_3164, syslog.env_iso, syslog.env_bare),
    "access": (web.env_access, web.env_apache_error, web.env_nginx_error),
}
_AUTO_ORDER = (
    jsonlog.env_json_auto,
    syslog.env_5424,
    syslog.env_3164,
    syslog.env_iso,
    web.env_apache_error,
    web.env_nginx_error,
    web.env_access,
    audit.env_audit,
    syslog.env_bare,
)


def _now_us() -> int:
    """Wall-clock µs since the epoch (same value as soc_tui.model.now_us(), cheaper)."""
    return time_ns() // 1000


def _web_app_hint(source_id: str) -> str:
    s = source_id.lower()
    if "nginx" in s:
        return "nginx"
    if "apache" in s or "httpd" in s:
        return "apache"
    return "httpd"


class LineParser:
    """Parse lines of one source.

    fmt: one of FORMATS. "auto" tries every envelope (specific to generic) and
    sticks to the one that matched last, trying it first for the next line;
    a forced format only tries its family (auditd records are recognised
    by "auto" only).
    source_id: stored in every event. host: fallback host for lines without one.
    year: forces the year of syslog lines without one (else inferred so the
    time is not in the future relative to the ingest time). tz: IANA zone for
    times without an offset (default: the machine's local zone).
    """

    __slots__ = (
        "fmt", "source_id", "host", "tctx", "web_app", "access_cache", "off_cache",
        "_envs", "_last",
    )

    def __init__(
        self,
        fmt: str = "auto",
        source_id: str = "",
        host: str | None = None,
        year: int | None = None,
        tz: str | None = None,
    ) -> None:
        if fmt not in FORMATS:
            raise ValueError(f"unknown log format {fmt!r}; expected one of {', '.join(FORMATS)}")
        self.fmt = fmt
        self.source_id = source_id or ""
        self.host = host or None
        self.tctx = TimeContext(tz=tz, year=year)
        self.web_app = _web_app_hint(self.source_id)
        self.access_cache: dict[str, int] = {}
        self.off_cache: dict[str, int] = {}
        self._envs = _AUTO_ORDER if fmt == "auto" else _FAMILIES[fmt]
        self._last = None

    def parse(self, line: str, flags: int = 0, now_us: int | None = None) -> Event:
        """One line (no terminator; a trailing CR is dropped) -> one Event. Never raises."""
        try:
            if now_us is None:
                now_us = _now_us()
            return self._parse(line, flags, now_us)
        except Exception:  # noqa: BLE001 - nothing is ever dropped
            if isinstance(line, str) and line[-1:] == "\r":
                line = line[:-1]
            return self._unparsed(line, flags, now_us)

    def _parse(self, line: str, flags: int, now_us: int) -> Event:
        """The parse proper; may raise on a bug (tests call it to see errors)."""
        if line[-1:] == "\r":
            line = line[:-1]
        last = self._last
        if last is not None:
            ev = last(self, line, flags, now_us)
            if ev is not None:
                return ev
        for env in self._envs:
            if env is last:
                continue
            ev = env(self, line, flags, now_us)
            if ev is not None:
                self._last = env
                return ev
        return self._unparsed(line, flags, now_us)

    def _unparsed(self, line, flags: int, now) -> Event:
        if not isinstance(line, str):
            try:
                line = line.decode("utf-8", "replace") if isinstance(line, (bytes, bytearray)) else str(line)
            except Exception:  # noqa: BLE001
                line = ""
        if not isinstance(now, int):
            now = _now_us()
        if not isinstance(flags, int):
            flags = 0
        ev = Event(now, line, self.source_id, self.host)
        ev.message = line
        ev.flags = flags | FLAG_UNPARSED | FLAG_TS_GUESSED
        return ev
