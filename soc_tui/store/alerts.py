"""Alert storage: alerts, their evidence links, the rule worker's cursor and
`new_value` first-seen state.

Owns: the alert tables (schema created by `create_alert_tables`, run from the
migrations in `soc_tui.store.db`) and every statement that reads or writes
them. The rule worker commits a chunk's alert changes, first-seen values and
its cursor in one transaction (`commit_detection`), so a restart neither
misses nor repeats alerts. Must not: evaluate rules or import Textual.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass, field
from typing import Any, Iterable

from soc_tui.model import now_us
from soc_tui.store.chain import seal_rows


def create_alert_tables(conn: sqlite3.Connection) -> None:
    """Schema of the detection tables (a migration step; no transaction of its own)."""
    conn.execute(
        """
        CREATE TABLE alerts (
            id INTEGER PRIMARY KEY,
            rule_id TEXT NOT NULL,
            rule_name TEXT NOT NULL,
            title TEXT NOT NULL,
            severity TEXT NOT NULL,
            status TEXT NOT NULL DEFAULT 'new',
            count INTEGER NOT NULL,
            first_seen INTEGER NOT NULL,
            last_seen INTEGER NOT NULL,
            host TEXT, src_ip TEXT, user TEXT,
            tags TEXT NOT NULL DEFAULT '[]',
            dedup_key TEXT NOT NULL,
            created_at INTEGER NOT NULL,
            updated_at INTEGER NOT NULL
        )
        """
    )
    conn.execute("CREATE INDEX idx_alerts_open ON alerts (rule_id, dedup_key) WHERE status != 'closed'")
    conn.execute("CREATE INDEX idx_alerts_status ON alerts (status, severity)")
    conn.execute("CREATE INDEX idx_alerts_last_seen ON alerts (last_seen)")
    conn.execute(
        "CREATE TABLE alert_events (alert_id INTEGER NOT NULL, event_id INTEGER NOT NULL,"
        " PRIMARY KEY (alert_id, event_id)) WITHOUT ROWID"
    )
    conn.execute("CREATE INDEX idx_alert_events_event ON alert_events (event_id)")
    conn.execute("CREATE TABLE detect_state (name TEXT PRIMARY KEY, value INTEGER NOT NULL)")
    conn.execute(
        "CREATE TABLE first_seen (rule_id TEXT NOT NULL, value TEXT NOT NULL, ts INTEGER NOT NULL,"
        " PRIMARY KEY (rule_id, value)) WITHOUT ROWID"
    )
    conn.execute(
        "CREATE TABLE rule_stats (rule_id TEXT PRIMARY KEY, hits INTEGER NOT NULL DEFAULT 0,"
        " alerts INTEGER NOT NULL DEFAULT 0, last_hit INTEGER)"
    )


@dataclass
class StoredAlert:
    """An alert row as stored (the worker's Deduper works on detect.alerts.Alert)."""

    id: int
    rule_id: str
    rule_name: str
    title: str
    severity: str
    status: str
    count: int
    first_seen: int
    last_seen: int
    host: str | None
    src_ip: str | None
    user: str | None
    tags: list[str]
    dedup_key: str
    created_at: int
    updated_at: int
    # Triage (schema v4; see store/triage.py)
    assignee: str | None = None
    labels: list[str] = field(default_factory=list)
    incident_id: int | None = None
    close_reason: str | None = None
    acked_at: int | None = None
    closed_at: int | None = None
    event_ids: list[int] = field(default_factory=list)


_ALERT_COLS = (
    "id, rule_id, rule_name, title, severity, status, count, first_seen, last_seen,"
    " host, src_ip, user, tags, dedup_key, created_at, updated_at,"
    " assignee, labels, incident_id, close_reason, acked_at, closed_at"
)


def _alert(row: tuple[Any, ...]) -> StoredAlert:
    a = StoredAlert(*row)
    for name in ("tags", "labels"):
        value = getattr(a, name)
        try:
            setattr(a, name, json.loads(value) if isinstance(value, str) else [])
        except ValueError:
            setattr(a, name, [])
    return a


@dataclass
class DetectionChanges:
    """What one chunk of rule evaluation changes, applied atomically.

    `alerts` are objects with the fields of detect.alerts.Alert: those with
    id None are inserted (and get their id set), the others updated; their
    `new_evidence` ids are linked. `cursor` is the last event id evaluated."""

    cursor: int
    # The cursor this chunk started from: the commit refuses (CursorMoved)
    # when another worker moved the stored cursor meanwhile.
    expected: int = -1
    # The oldest event id the engine's correlation windows still hold (a
    # restart replays from there); None: they hold nothing.
    replay_from: int | None = None
    alerts: list[Any] = field(default_factory=list)
    first_seen: list[tuple[str, str, int]] = field(default_factory=list)
    rule_hits: dict[str, tuple[int, int]] = field(default_factory=dict)  # rule_id -> (hits, last ts)
    # analyst suppression id -> (hits it held back, last hit ts)
    suppressed: dict[int, tuple[int, int]] = field(default_factory=dict)


CURSOR = "cursor"
REPLAY_FROM = "replay_from"


class CursorMoved(Exception):
    """Another rule worker advanced the stored cursor: this worker's state is
    stale and its chunk was not committed."""


def replay_start(conn: sqlite3.Connection) -> int | None:
    """The oldest event id the correlation windows held at the last commit."""
    row = conn.execute("SELECT value FROM detect_state WHERE name = ?", (REPLAY_FROM,)).fetchone()
    return int(row[0]) if row else None


def detection_cursor(conn: sqlite3.Connection) -> int:
    row = conn.execute("SELECT value FROM detect_state WHERE name = ?", (CURSOR,)).fetchone()
    return int(row[0]) if row else 0


def commit_detection(conn: sqlite3.Connection, ch: DetectionChanges) -> None:
    """Apply a chunk's alert changes and advance the cursor, in one transaction.

    Refuses (CursorMoved) unless the stored cursor is still the one the chunk
    started from: a second worker on the same database would otherwise raise
    every alert twice."""
    now = now_us()
    inserted: list[Any] = []
    with conn.write_lock:  # see store.db._write_lock
        conn.execute("BEGIN IMMEDIATE")
        try:
            current = detection_cursor(conn)
            if (ch.expected >= 0 and current != ch.expected) or ch.cursor < current:
                raise CursorMoved(f"the rule cursor moved to {current} (this worker expected {ch.expected})")
            for a in ch.alerts:
                if a.id is None:
                    cur = conn.execute(
                        "INSERT INTO alerts (rule_id, rule_name, title, severity, status, count,"
                        " first_seen, last_seen, host, src_ip, user, tags, dedup_key, created_at, updated_at)"
                        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                        (a.rule_id, a.rule_name, a.title, a.severity, a.status, a.count,
                         a.first_seen, a.last_seen, a.host, a.src_ip, a.user, json.dumps(list(a.tags)),
                         a.dedup_key, now, now),
                    )
                    a.id = int(cur.lastrowid)
                    inserted.append(a)
                    conn.execute(
                        "INSERT INTO rule_stats (rule_id, alerts) VALUES (?, 1)"
                        " ON CONFLICT (rule_id) DO UPDATE SET alerts = alerts + 1",
                        (a.rule_id,),
                    )
                else:
                    conn.execute(
                        "UPDATE alerts SET count = ?, first_seen = ?, last_seen = ?, updated_at = ?"
                        " WHERE id = ?",
                        (a.count, a.first_seen, a.last_seen, now, a.id),
                    )
                if a.new_evidence:
                    conn.executemany(
                        "INSERT OR IGNORE INTO alert_events (alert_id, event_id) VALUES (?, ?)",
                        [(a.id, i) for i in a.new_evidence],
                    )
            if ch.first_seen:
                conn.executemany(
                    "INSERT OR IGNORE INTO first_seen (rule_id, value, ts) VALUES (?, ?, ?)", ch.first_seen
                )
            for rule_id, (hits, last) in ch.rule_hits.items():
                conn.execute(
                    "INSERT INTO rule_stats (rule_id, hits, last_hit) VALUES (?, ?, ?)"
                    " ON CONFLICT (rule_id) DO UPDATE SET hits = hits + excluded.hits,"
                    " last_hit = max(coalesce(last_hit, 0), excluded.last_hit)",
                    (rule_id, hits, last),
                )
            if ch.suppressed:
                from soc_tui.store.triage import count_suppressed

                count_suppressed(conn, ch.suppressed)
            conn.execute(
                "INSERT INTO detect_state (name, value) VALUES (?, ?)"
                " ON CONFLICT (name) DO UPDATE SET value = excluded.value",
                (CURSOR, ch.cursor),
            )
            conn.execute(
                "INSERT INTO detect_state (name, value) VALUES (?, ?)"
                " ON CONFLICT (name) DO UPDATE SET value = excluded.value",
                (REPLAY_FROM, ch.replay_from if ch.replay_from is not None else ch.cursor + 1),
            )
            if ch.alerts:  # their after-images, into the hash chain
                seal_rows(conn, "alerts", [a.id for a in ch.alerts])
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            for a in inserted:  # ids given inside the rolled-back transaction are void
                a.id = None
            raise
    for a in ch.alerts:
        a.new_evidence = []


def open_alerts(conn: sqlite3.Connection, since_last_seen: int) -> list[StoredAlert]:
    """Alerts not closed whose last hit is at or after `since_last_seen`."""
    rows = conn.execute(
        f"SELECT {_ALERT_COLS} FROM alerts WHERE status != 'closed' AND last_seen >= ?",
        (since_last_seen,),
    ).fetchall()
    return [_alert(r) for r in rows]


def alert_status(conn: sqlite3.Connection, ids: Iterable[int]) -> dict[int, str]:
    ids = list(ids)
    out: dict[int, str] = {}
    for i in range(0, len(ids), 500):
        part = ids[i:i + 500]
        q = ",".join("?" * len(part))
        out.update(conn.execute(f"SELECT id, status FROM alerts WHERE id IN ({q})", part).fetchall())
    return out


# The alert queue's order: most severe first, then the newest.
SEVERITY_RANK = ("(CASE severity WHEN 'critical' THEN 4 WHEN 'high' THEN 3 WHEN 'medium' THEN 2"
                 " WHEN 'low' THEN 1 ELSE 0 END)")
# The queue's order; idx_alerts_queue holds it (the same expression, for the
# planner to match), so the queue's first rows are read without a sort.
QUEUE_KEY = f"{SEVERITY_RANK} DESC, last_seen DESC, id DESC"
QUEUE_ORDER = " ORDER BY " + QUEUE_KEY


def create_queue_index(conn: sqlite3.Connection) -> None:
    """The alert queue's order as an index: sorting 10k alerts for the
    queue's refresh every 2 s took 14-18 ms; walking the index, 1-2 ms."""
    conn.execute(f"CREATE INDEX idx_alerts_queue ON alerts ({QUEUE_KEY})")


def queue_filters(where: list[str], params: list[Any], *, status: str | None = None,
                  severity: str | None = None, rule: str | None = None) -> None:
    """Add the queue's filters to a WHERE list: status ("open": not closed
    yet), severity, rule (by name or id)."""
    if status == "open":
        where.append("status != 'closed'")
    elif status:
        where.append("status = ?")
        params.append(status)
    if severity:
        where.append("severity = ?")
        params.append(severity)
    if rule:
        where.append("(rule_name = ? OR rule_id = ?)")
        params.extend([rule, rule])


def queue_ids_query(*, status: str | None = None, rule: str | None = None,
                    limit: int) -> tuple[str, list[Any]]:
    """The SQL (and its parameters) of the queue's first `limit` alerts as
    (id, updated_at), in the queue's order, filtered as `list_alerts` filters."""
    where: list[str] = []
    params: list[Any] = []
    queue_filters(where, params, status=status, rule=rule)
    sql = ("SELECT id, updated_at FROM alerts" + (" WHERE " + " AND ".join(where) if where else "")
           + QUEUE_ORDER + " LIMIT ?")
    return sql, [*params, limit]


def list_alerts(
    conn: sqlite3.Connection,
    *,
    status: str | None = None,
    severity: str | None = None,
    rule: str | None = None,
    assignee: str | None = None,
    incident: int | None = None,
    ids: Iterable[int] | None = None,
    limit: int | None = None,
    with_events: bool = True,
    after_id: int | None = None,
    order: str = "severity",
) -> list[StoredAlert]:
    """Alerts, most severe and newest first (order="id": newest id first
    with a limit, else in id order; after_id: only alerts with a higher id)."""
    where: list[str] = []
    params: list[Any] = []
    if after_id is not None:
        where.append("id > ?")
        params.append(after_id)
    if assignee:
        where.append("assignee = ?")
        params.append(assignee)
    if incident is not None:
        where.append("incident_id = ?")
        params.append(incident)
    if ids is not None:
        id_list = [int(i) for i in ids]
        where.append("id IN (SELECT value FROM json_each(?))")
        params.append(json.dumps(id_list))
    queue_filters(where, params, status=status, severity=severity, rule=rule)
    by = (" ORDER BY id DESC" if limit else " ORDER BY id") if order == "id" else QUEUE_ORDER
    sql = f"SELECT {_ALERT_COLS} FROM alerts" + (" WHERE " + " AND ".join(where) if where else "") + by
    if limit:
        sql += " LIMIT ?"
        params.append(limit)
    alerts = [_alert(r) for r in conn.execute(sql, params).fetchall()]
    if with_events:
        for a in alerts:
            a.event_ids = alert_event_ids(conn, a.id)
    return alerts


def alert_event_ids(conn: sqlite3.Connection, alert_id: int) -> list[int]:
    return [r[0] for r in conn.execute(
        "SELECT event_id FROM alert_events WHERE alert_id = ? ORDER BY event_id", (alert_id,)
    )]


def first_seen_ts(conn: sqlite3.Connection, rule_id: str, value: str) -> int | None:
    """When a new_value rule first saw `value` (None: never)."""
    row = conn.execute(
        "SELECT ts FROM first_seen WHERE rule_id = ? AND value = ?", (rule_id, value)
    ).fetchone()
    return None if row is None else int(row[0])


def rule_stats(conn: sqlite3.Connection) -> dict[str, tuple[int, int, int | None]]:
    """rule_id -> (hits, alerts, last hit time)."""
    return {r[0]: (r[1], r[2], r[3]) for r in conn.execute(
        "SELECT rule_id, hits, alerts, last_hit FROM rule_stats"
    )}
