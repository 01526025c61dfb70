"""Figures for the Overview, Rules and Sources screens: histograms, counts, top values.

Owns: the aggregate read queries over events, alerts and the per-source and
per-rule counters the writers keep (`source_stats`, `gaps`, `rule_stats`),
returned as plain dataclasses and lists. Every query over `events` is bounded
by a window on `ts` (event time, UTC microseconds) and runs on the ts index,
so it costs what the window holds, not what the database holds. Field names
are whitelisted: caller text never reaches SQL but as a parameter. Callers on
a StoreReader pass these functions to `StoreReader.run`. Must not: import
Textual, write.
"""

from __future__ import annotations

import json
from bisect import bisect_right
from dataclasses import dataclass, field
from typing import Any

from soc_tui.store.db import CODED_COLUMNS
from soc_tui.store.triage import ALERT_STATUSES

# The severities AlertCounts.by_severity always holds, most severe first.
COUNTED_SEVERITIES = ("critical", "high", "medium", "low")
# The fields top_values ranks (each has an index; the SQL names come from
# here, never from the caller).
TOP_FIELDS = ("src_ip", "user", "host")


def _bounds(since_us: int, until_us: int, buckets: int) -> list[int]:
    """The buckets+1 edges of `buckets` equal buckets over [since_us, until_us):
    bucket i is [edges[i], edges[i+1]), edges[i] = since + (until - since) * i // buckets
    (Python integers: no overflow however long the window)."""
    if buckets < 1:
        raise ValueError(f"buckets must be at least 1 (got {buckets})")
    span = until_us - since_us
    return [since_us + span * i // buckets for i in range(buckets + 1)]


def event_histogram(conn: Any, since_us: int, until_us: int, buckets: int) -> list[int]:
    """Events per equal time bucket of [since_us, until_us), oldest bucket
    first; a `message repeated N times` line counts N (as StoreReader.count).
    Bucket i covers since + span*i//buckets <= ts < since + span*(i+1)//buckets.
    Events whose time was guessed (unparsed lines) count at their stored ts,
    the time they were ingested.

    One statement (one snapshot): a range sum on the ts index per bucket,
    which needs no sort of the rows (a GROUP BY on the bucket number did,
    and took 2-3x as long over 1M events)."""
    edges = _bounds(since_us, until_us, buckets)
    if until_us <= since_us:
        return [0] * buckets
    pairs = json.dumps([[edges[i], edges[i + 1]] for i in range(buckets)])
    rows = conn.execute(
        "SELECT (SELECT coalesce(sum(e.repeat), 0) FROM events e"
        " WHERE e.ts >= json_extract(b.value, '$[0]') AND e.ts < json_extract(b.value, '$[1]'))"
        " FROM json_each(?) b ORDER BY b.key",
        (pairs,),
    ).fetchall()
    return [int(r[0]) for r in rows]


def alert_histogram(conn: Any, since_us: int, until_us: int, buckets: int) -> list[int]:
    """Alerts per equal time bucket of [since_us, until_us) by `first_seen`
    (the event time of the first hit, not when the row was written: a
    backfill's alerts land where their events are). Buckets as in
    event_histogram."""
    edges = _bounds(since_us, until_us, buckets)
    out = [0] * buckets
    if until_us <= since_us:
        return out
    # first_seen <= last_seen, so `last_seen >= since` loses nothing and lets
    # the planner skip old alerts on idx_alerts_last_seen.
    for (first_seen,) in conn.execute(
        "SELECT first_seen FROM alerts WHERE last_seen >= ? AND first_seen >= ? AND first_seen < ?",
        (since_us, since_us, until_us),
    ):
        out[bisect_right(edges, first_seen) - 1] += 1
    return out


@dataclass
class AlertCounts:
    """Alerts by severity (of those not closed) and by status (of all)."""

    by_severity: dict[str, int] = field(default_factory=dict)
    by_status: dict[str, int] = field(default_factory=dict)

    @property
    def open(self) -> int:
        """Alerts not closed."""
        return sum(self.by_severity.values())


def alert_counts(conn: Any) -> AlertCounts:
    """Alert counts for the Overview.

    `by_severity`: alerts that are NOT closed (new, acknowledged,
    in_progress), per severity; the keys critical, high, medium, low are
    always present (in that order), any other severity stored (informational)
    only when it counts something. `by_status`: all alerts per status; new,
    acknowledged, in_progress, closed always present. One pass over the
    covering index idx_alerts_status (status, severity)."""
    sev = {s: 0 for s in COUNTED_SEVERITIES}
    status = {s: 0 for s in ALERT_STATUSES}
    for st, severity, n in conn.execute(
        "SELECT status, severity, count(*) FROM alerts GROUP BY status, severity"
    ):
        status[st] = status.get(st, 0) + n
        if st != "closed":
            sev[severity] = sev.get(severity, 0) + n
    return AlertCounts(by_severity=sev, by_status=status)


def _term_code(conn: Any, value: str) -> int | None:
    """The code of a term, None when no event ever had it (a reader never inserts terms)."""
    row = conn.execute("SELECT id FROM terms WHERE value = ?", (value,)).fetchone()
    return None if row is None else int(row[0])


def top_values(
    conn: Any,
    field: str,
    since_us: int,
    until_us: int,
    limit: int = 10,
    *,
    failures_only: bool = False,
) -> list[tuple[str, int]]:
    """The `limit` most frequent values of `field` (src_ip, user or host;
    anything else: ValueError) among events with since_us <= ts < until_us,
    as (value, events), most first (ties: by value, coded fields by code),
    a repeated line counting its repeats, events without the field left out.
    Coded fields come back decoded. `failures_only`: only events with
    outcome = failure (none such ever stored: [])."""
    if field not in TOP_FIELDS:
        raise ValueError(f"top_values: unknown field {field!r} (one of {', '.join(TOP_FIELDS)})")
    if limit < 1 or until_us <= since_us:
        return []
    where = f"ts >= ? AND ts < ? AND {field} IS NOT NULL"
    params: list[Any] = [since_us, until_us]
    if failures_only:
        code = _term_code(conn, "failure")
        if code is None:
            return []
        where += " AND outcome = ?"
        params.append(code)
    rows = conn.execute(
        f"SELECT {field}, sum(repeat) AS n FROM events INDEXED BY idx_events_ts WHERE {where}"
        f" GROUP BY {field} ORDER BY n DESC, {field} LIMIT ?",
        [*params, limit],
    ).fetchall()
    if field in CODED_COLUMNS:
        values = conn.terms.values
        return [(str(values[v]), int(n)) for v, n in rows]
    return [(str(v), int(n)) for v, n in rows]


@dataclass
class RuleHits:
    """One rule's figures from the alerts table, and the rule worker's counters."""

    rule_id: str
    rule_name: str | None = None  # as stored on its newest alert
    alerts: int = 0  # alerts raised
    hits: int = 0  # sum of the alerts' `count`
    last_seen: int | None = None  # newest alert's last_seen (event time, us)
    open: int = 0  # alerts not closed
    # rule_stats: matches the rule worker counted (rules that raise no alert
    # of their own, correlation inputs, count here too) and the newest one
    matches: int = 0
    last_match: int | None = None


def rule_hits(conn: Any) -> dict[str, RuleHits]:
    """rule_id -> RuleHits, for every rule with an alert or a rule_stats row."""
    out: dict[str, RuleHits] = {}
    for rule_id, name, n, hits, last, open_ in conn.execute(
        "SELECT rule_id, rule_name, count(*), sum(count), max(last_seen),"
        " sum(status != 'closed') FROM alerts GROUP BY rule_id"
    ):
        # rule_name is a bare column of the max(last_seen) row (SQLite's rule)
        out[rule_id] = RuleHits(rule_id, name, int(n), int(hits or 0), last, int(open_ or 0))
    for rule_id, matches, last_hit in conn.execute("SELECT rule_id, hits, last_hit FROM rule_stats"):
        h = out.get(rule_id)
        if h is None:
            h = out[rule_id] = RuleHits(rule_id)
        h.matches = int(matches)
        h.last_match = last_hit
    return out


@dataclass
class SourceStat:
    """One source's counters as the writer keeps them (source_stats, gaps)."""

    id: int
    name: str
    kind: str | None
    lines: int = 0  # lines read
    events: int = 0  # rows stored (a repeated line is one)
    unparsed: int = 0
    truncated: int = 0
    gaps: int = 0  # data lost or skipped (rotation missed, truncation, ...)
    bytes: int = 0
    last_event_ts: int | None = None  # newest event time stored (us)
    last_ingest: int | None = None  # when its counters last changed (us)
    last_gap_at: int | None = None
    last_gap_reason: str | None = None


def source_stats(conn: Any) -> list[SourceStat]:
    """Every row of `sources` with its counters (zeros when it has none yet),
    in id order."""
    gaps = {
        source: (at, reason)
        for source, at, reason in conn.execute(
            # reason is a bare column of the max(at) row (SQLite's rule)
            "SELECT source, max(at), reason FROM gaps GROUP BY source"
        )
    }
    out: list[SourceStat] = []
    for row in conn.execute(
        "SELECT s.id, s.name, s.kind, st.lines, st.events, st.unparsed, st.truncated, st.gaps,"
        " st.bytes, st.last_event_ts, st.updated_at"
        " FROM sources s LEFT JOIN source_stats st ON st.source = s.id ORDER BY s.id"
    ):
        sid, name, kind, lines, events, unparsed, truncated, ngaps, nbytes, last_ts, updated = row
        gap_at, gap_reason = gaps.get(sid, (None, None))
        out.append(SourceStat(
            sid, name, kind, lines or 0, events or 0, unparsed or 0, truncated or 0, ngaps or 0,
            nbytes or 0,
            # the writer's max() over coalesce(.., 0) turns "no event yet" into 0
            last_ts or None, updated, gap_at, gap_reason,
        ))
    return out


def time_bounds(conn: Any) -> tuple[int | None, int | None]:
    """The oldest and newest event time stored (None, None: no events); two
    probes of the ts index."""
    row = conn.execute(
        "SELECT (SELECT ts FROM events ORDER BY ts LIMIT 1),"
        " (SELECT ts FROM events ORDER BY ts DESC LIMIT 1)"
    ).fetchone()
    return row[0], row[1]


class SlidingHistogram:
    """Events per bucket of a window that ends with the clock, kept current by
    reading only the events stored since the last call.

    The buckets are whole multiples of the bucket width (`span // buckets`
    microseconds) from the epoch, the last one the bucket that holds
    `until - 1` (the one in progress), so a bucket counted once stays right:
    the first call counts the window (one range scan of the ts index, as
    event_histogram), later calls add the events with a higher id than any
    counted before (a rowid range: what was stored meanwhile, whatever its
    time, future times too: they count once the window reaches them) and
    drop the buckets the window left. Counting starts over when the oldest
    stored id changed (retention deleted events) or the window moved back.
    (At 10k events/s the window of the last hour holds up to 36M events:
    counting it again on every refresh took seconds and kept growing.)"""

    def __init__(self, span_us: int, buckets: int) -> None:
        if buckets < 1 or span_us < buckets:
            raise ValueError(f"a window of {span_us} us cannot have {buckets} buckets")
        self.width = span_us // buckets
        self.buckets = buckets
        self._counts: dict[int, int] = {}  # bucket number (ts // width) -> events
        self._first: int | None = None  # the oldest bucket number kept
        self._upto = 0  # the highest event id counted
        self._floor: int | None = None  # the lowest event id stored when counting started

    def bounds(self, until_us: int) -> tuple[int, int]:
        """[since, until) of the window whose last bucket holds until_us - 1."""
        last = (until_us - 1) // self.width
        return (last - self.buckets + 1) * self.width, (last + 1) * self.width

    def histogram(self, conn: Any, until_us: int) -> tuple[int, int, list[int]]:
        """(since, until, events per bucket, oldest first) of that window; a
        repeated line counts its repeats (as event_histogram)."""
        w = self.width
        since, until = self.bounds(until_us)
        if since < 0:  # (SQLite's integer division truncates toward zero)
            return since, until, event_histogram(conn, since, until, self.buckets)
        first = since // w
        low, top = conn.execute(
            "SELECT (SELECT min(id) FROM events), (SELECT max(id) FROM events)").fetchone()
        top = top or 0
        if self._first is None or first < self._first or low != self._floor:
            self._counts = {int(b): int(n) for b, n in conn.execute(
                "SELECT ts / ?, sum(repeat) FROM events INDEXED BY idx_events_ts"
                " WHERE ts >= ? AND id <= ? GROUP BY 1", (w, since, top))}
            self._floor, self._upto = low, top
        elif top > self._upto:
            for b, n in conn.execute(
                "SELECT ts / ?, sum(repeat) FROM events NOT INDEXED WHERE id > ? AND id <= ? AND ts >= ?"
                " GROUP BY 1", (w, self._upto, top, since)):
                self._counts[int(b)] = self._counts.get(int(b), 0) + int(n)
            self._upto = top
        for b in [b for b in self._counts if b < first]:
            del self._counts[b]
        self._first = first
        return since, until, [self._counts.get(first + i, 0) for i in range(self.buckets)]
