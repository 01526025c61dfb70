"""Time arithmetic for parsers, cached so that the hot path does no datetime work.

A `TimeContext` belongs to one `LineParser` (one source): it knows the source's
time zone (an IANA name, or the machine's local zone) and an optional forced
year, and turns broken-down wall-clock times into integer microseconds since
the epoch, UTC.

- Local times (no offset in the line) go through `local_us()`: the UTC instant
  of the start of the local hour is computed once per (year, month, day, hour)
  with zoneinfo (or the C library's mktime for the machine zone) and cached;
  minutes/seconds/fraction are added as plain integers. DST is handled because
  offsets only change on hour boundaries in every zone this tool will meet
  (a fold is resolved to its first occurrence).
- Times with an explicit offset go through `offset_us()`, which is pure integer
  arithmetic on a cached day number.
- RFC 3164 times without a year go through `yearless_us()`: the year is the one
  that puts the time not in the future relative to the ingest time (with one
  day of slack for skew), so a December line read in January is last year's.
"""

from __future__ import annotations

import re
from datetime import date, datetime, timezone
from zoneinfo import ZoneInfo

MONTHS: dict[str, int] = {
    m: i + 1
    for i, m in enumerate(
        ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
    )
}
# Tolerate upper/lower case month names too ("JAN", "jan").
for _m, _i in list(MONTHS.items()):
    MONTHS[_m.upper()] = _i
    MONTHS[_m.lower()] = _i

_US = 1_000_000
_DAY_US = 86_400 * _US
_SLACK_US = _DAY_US  # a syslog time may be up to one day "in the future" (skew, zones)
_EPOCH_ORD = date(1970, 1, 1).toordinal()

_day_cache: dict[tuple[int, int, int], int] = {}


def days_from_civil(y: int, m: int, d: int) -> int:
    """Days since 1970-01-01 of a proleptic Gregorian date (raises ValueError if invalid)."""
    key = (y, m, d)
    v = _day_cache.get(key)
    if v is None:
        v = date(y, m, d).toordinal() - _EPOCH_ORD
        if len(_day_cache) > 100_000:
            _day_cache.clear()
        _day_cache[key] = v
    return v


def frac_us(frac: str | None) -> int:
    """A decimal fraction of a second ("123", "954167", "123456789") as microseconds."""
    if not frac:
        return 0
    if len(frac) >= 6:
        return int(frac[:6])
    return int(frac) * (10 ** (6 - len(frac)))


def offset_seconds(off: str | None) -> int | None:
    """`Z`, `+0100`, `+01:00`, `-04:00`, `+01` as seconds east of UTC; None when absent."""
    if not off:
        return None
    if off == "Z" or off == "z":
        return 0
    sign = -1 if off[0] == "-" else 1
    digits = off[1:].replace(":", "")
    if len(digits) == 2:
        digits += "00"
    if len(digits) != 4 or not digits.isdigit():
        return None
    return sign * (int(digits[:2]) * 3600 + int(digits[2:]) * 60)


def offset_us(y: int, mo: int, d: int, h: int, mi: int, s: int, us: int, off_s: int) -> int:
    """UTC microseconds of a wall time with a known offset (seconds east of UTC)."""
    if s > 59:  # leap second: clamp
        s = 59
    return (
        (days_from_civil(y, mo, d) * 86_400 + h * 3600 + mi * 60 + s - off_s) * _US + us
    )


def resolve_zone(tz: str | None):
    """A tzinfo for an IANA zone name, or None for "the machine's local zone"."""
    if tz is None or tz == "" or tz.lower() == "local":
        return None
    if tz.upper() in ("UTC", "Z", "GMT"):
        return timezone.utc
    return ZoneInfo(tz)


class TimeContext:
    """Per-source time conversion with caches (see module docstring)."""

    __slots__ = ("zone", "year", "_hour_cache", "_yl_cache", "_yl_year", "_yl_lo", "_yl_hi")

    def __init__(self, tz: str | None = None, year: int | None = None) -> None:
        self.zone = resolve_zone(tz)
        self.year = year
        self._hour_cache: dict[tuple[int, int, int, int], int] = {}
        # Year-less cache: (month, day, hour) -> [base_us for candidate years...]
        self._yl_cache: dict[tuple[int, int, int], tuple[int | None, ...]] = {}
        self._yl_year = 0  # the "current year" the yearless cache was built for
        self._yl_lo = 0  # now_us range in which _yl_year stays valid
        self._yl_hi = -1

    # -- local wall-clock times -------------------------------------------------
    def hour_base(self, y: int, mo: int, d: int, h: int) -> int:
        """UTC µs of local y-mo-d h:00:00 in this zone (cached; ValueError if invalid)."""
        key = (y, mo, d, h)
        v = self._hour_cache.get(key)
        if v is None:
            if h > 23:
                raise ValueError("hour out of range")
            zone = self.zone
            if zone is None:
                # Naive datetime -> the C library's local time (honours TZ, DST).
                secs = datetime(y, mo, d, h).timestamp()
            else:
                secs = datetime(y, mo, d, h, tzinfo=zone).timestamp()
            v = int(round(secs)) * _US
            if len(self._hour_cache) > 50_000:
                self._hour_cache.clear()
            self._hour_cache[key] = v
        return v

    def local_us(self, y: int, mo: int, d: int, h: int, mi: int, s: int, us: int = 0) -> int:
        if s > 59:
            s = 59
        if mi > 59:
            raise ValueError("minute out of range")
        return self.hour_base(y, mo, d, h) + (mi * 60 + s) * _US + us

    # -- RFC 3164 times without a year -----------------------------------------
    def _reset_yearless(self, now_us: int) -> None:
        """Find the local calendar year of `now_us` and the µs range it covers."""
        if self.zone is None:
            dt = datetime.fromtimestamp(now_us / _US)
        else:
            dt = datetime.fromtimestamp(now_us / _US, tz=self.zone)
        y = dt.year
        self._yl_year = y
        self._yl_cache.clear()
        try:
            lo = self.hour_base(y, 1, 1, 0)
        except (ValueError, OverflowError):  # pragma: no cover - absurd clocks
            lo = now_us
        try:
            hi = self.hour_base(y + 1, 1, 1, 0)
        except (ValueError, OverflowError):  # pragma: no cover
            hi = now_us + 1
        self._yl_lo, self._yl_hi = lo, hi

    def yearless_us(
        self, mo: int, d: int, h: int, mi: int, s: int, us: int, now_us: int
    ) -> tuple[int, int]:
        """(ts_us, year) for a time without a year, as seen at `now_us`.

        Uses the forced year when one was given. Otherwise the most recent year
        in which the date exists and the time is not more than a day ahead of
        now (Feb 29 falls back to the last leap year).
        """
        if s > 59:
            s = 59
        if mi > 59:
            raise ValueError("minute out of range")
        rest = (mi * 60 + s) * _US + us
        if self.year is not None:
            return self.hour_base(self.year, mo, d, h) + rest, self.year
        if not (self._yl_lo <= now_us < self._yl_hi):
            self._reset_yearless(now_us)
        key = (mo, d, h)
        bases = self._yl_cache.get(key)
        if bases is None:
            y0 = self._yl_year + 1
            lst: list[int | None] = []
            for y in range(y0, y0 - 9, -1):  # next year (skew at New Year) .. 8 years back
                try:
                    lst.append(self.hour_base(y, mo, d, h))
                except (ValueError, OverflowError):
                    lst.append(None)
            if all(b is None for b in lst):
                raise ValueError("invalid month/day")
            bases = tuple(lst)
            if len(self._yl_cache) > 20_000:
                self._yl_cache.clear()
            self._yl_cache[key] = bases
        limit = now_us + _SLACK_US
        y = self._yl_year + 1
        for b in bases:
            if b is not None and b + rest <= limit:
                return b + rest, y
            y -= 1
        # Every candidate is in the future (cannot really happen): take the oldest valid.
        y = self._yl_year + 1
        last = None
        for b in bases:
            if b is not None:
                last = (b + rest, y)
            y -= 1
        assert last is not None
        return last


# ISO 8601 / RFC 3339 (also with a space instead of T, comma fractions, no seconds).
ISO_RE = re.compile(
    r"(\d{4})-(\d\d)-(\d\d)[T ](\d\d):(\d\d)(?::(\d\d)(?:[.,](\d{1,9}))?)?"
    r" ?(Z|z|[+-]\d\d(?::?\d\d)?)?$"
)


def parse_iso(text: str, tctx: TimeContext) -> int | None:
    """An ISO 8601 timestamp string as UTC µs, or None if it is not one."""
    m = ISO_RE.match(text)
    if m is None:
        return None
    y, mo, d, h, mi, s, fr, off = m.groups()
    try:
        us = frac_us(fr)
        sec = int(s) if s else 0
        off_s = offset_seconds(off)
        if off_s is None:
            return tctx.local_us(int(y), int(mo), int(d), int(h), int(mi), sec, us)
        return offset_us(int(y), int(mo), int(d), int(h), int(mi), sec, us, off_s)
    except (ValueError, OverflowError):
        return None


def epoch_number_us(v: float | int) -> int | None:
    """An epoch number in s, ms, µs or ns (guessed by magnitude) as µs; None if absurd."""
    try:
        v = float(v)
    except (TypeError, ValueError):
        return None
    if v != v or v <= 0:  # NaN or non-positive
        return None
    if v < 1e11:  # seconds (until year 5138)
        return int(round(v * _US))
    if v < 1e14:  # milliseconds
        return int(round(v * 1000))
    if v < 1e17:  # microseconds
        return int(v)
    if v < 1e20:  # nanoseconds
        return int(v // 1000)
    return None
