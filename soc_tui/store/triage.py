"""Triage storage: the analyst's side of alerts, incidents, notes, analyst
suppressions and the audit trail.

Owns: the triage tables (created by `create_triage_tables` from the
migrations in `soc_tui.store.db`) and every statement that changes them.
Each analyst action is one write transaction that also appends its audit
row (actor, time, action, object, before, after) and seals that row into
the hash chain (`soc_tui.store.chain`), so an action and its record commit
together or not at all. Busy databases (another process writing) are
retried with backoff (`write`). Must not: evaluate rules or import Textual.

Rules of the workflow (DESIGN section 7): alert status
new -> acknowledged -> in_progress -> closed, closing needs a reason, a
closed alert may be reopened (back to acknowledged); incident status open,
contained, resolved, closed in any order (each change audited). Notes and
audit rows are append-only (triggers refuse UPDATE and DELETE; the chain
catches whoever drops the triggers): editing a note adds a version.
"""

from __future__ import annotations

import json
import random
import sqlite3
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Iterator, TypeVar

from soc_tui.model import now_us

ALERT_STATUSES = ("new", "acknowledged", "in_progress", "closed")
CLOSE_REASONS = ("true_positive", "benign", "false_positive", "duplicate")
INCIDENT_STATUSES = ("open", "contained", "resolved", "closed")
SEVERITIES = ("informational", "low", "medium", "high", "critical")
# Allowed alert status changes (reopen: closed -> acknowledged).
TRANSITIONS = {
    "new": ("acknowledged", "in_progress", "closed"),
    "acknowledged": ("in_progress", "closed"),
    "in_progress": ("closed",),
    "closed": ("acknowledged",),
}
SUPPRESS_FIELDS = ("host", "src_ip", "user")


class TriageError(Exception):
    """A refused analyst action (unknown id, invalid transition, ...): one line."""


def create_triage_tables(conn: sqlite3.Connection) -> None:
    """Schema of the triage tables (a migration step; no transaction of its own)."""
    for col in ("assignee TEXT", "labels TEXT NOT NULL DEFAULT '[]'", "incident_id INTEGER",
                "close_reason TEXT", "acked_at INTEGER", "closed_at INTEGER"):
        conn.execute(f"ALTER TABLE alerts ADD COLUMN {col}")
    conn.execute("CREATE INDEX idx_alerts_incident ON alerts (incident_id) WHERE incident_id IS NOT NULL")
    conn.execute(
        """
        CREATE TABLE incidents (
            id INTEGER PRIMARY KEY,
            title TEXT NOT NULL,
            severity TEXT NOT NULL,
            status TEXT NOT NULL DEFAULT 'open',
            owner TEXT,
            created_at INTEGER NOT NULL,
            updated_at INTEGER NOT NULL
        )
        """
    )
    conn.execute(
        "CREATE TABLE incident_events (incident_id INTEGER NOT NULL, event_id INTEGER NOT NULL,"
        " pinned_by TEXT NOT NULL, pinned_at INTEGER NOT NULL,"
        " PRIMARY KEY (incident_id, event_id)) WITHOUT ROWID"
    )
    conn.execute("CREATE INDEX idx_incident_events_event ON incident_events (event_id)")
    conn.execute(
        """
        CREATE TABLE notes (
            id INTEGER PRIMARY KEY,
            note_id INTEGER NOT NULL,          -- the first version's id
            version INTEGER NOT NULL,
            object_type TEXT NOT NULL CHECK (object_type IN ('incident', 'alert')),
            object_id INTEGER NOT NULL,
            author TEXT NOT NULL,
            created_at INTEGER NOT NULL,
            body TEXT NOT NULL,
            UNIQUE (note_id, version)
        )
        """
    )
    conn.execute("CREATE INDEX idx_notes_object ON notes (object_type, object_id)")
    conn.execute(
        """
        CREATE TABLE audit (
            id INTEGER PRIMARY KEY,
            ts INTEGER NOT NULL,
            actor TEXT NOT NULL,
            action TEXT NOT NULL,
            object_type TEXT NOT NULL,
            object_id TEXT NOT NULL,
            before TEXT,
            after TEXT
        )
        """
    )
    conn.execute("CREATE INDEX idx_audit_object ON audit (object_type, object_id)")
    conn.execute(
        """
        CREATE TABLE suppressions (
            id INTEGER PRIMARY KEY,
            rule TEXT,                         -- rule name or id; NULL: any rule
            fields TEXT NOT NULL DEFAULT '{}', -- {"src_ip": "...", ...}
            reason TEXT NOT NULL,
            author TEXT NOT NULL,
            created_at INTEGER NOT NULL,
            expires_at INTEGER,                -- NULL: until removed
            removed_at INTEGER,
            hits INTEGER NOT NULL DEFAULT 0,
            last_hit INTEGER
        )
        """
    )
    for table in ("notes", "audit"):
        for op in ("UPDATE", "DELETE"):
            conn.execute(
                f"CREATE TRIGGER {table}_no_{op.lower()} BEFORE {op} ON {table}"
                f" BEGIN SELECT RAISE(ABORT, '{table} are append-only'); END"
            )


# -- writing ---------------------------------------------------------------------

T = TypeVar("T")
BUSY_RETRIES = 8


def write(conn: Any, action: Callable[[], T]) -> T:
    """Run `action` in one write transaction under the process's write lock,
    retrying with jittered backoff while another process holds the database
    (beyond SQLite's own busy timeout), so an analyst never sees
    "database is locked" while a collector ingests."""
    delay = 0.05
    for attempt in range(BUSY_RETRIES + 1):
        try:
            with conn.write_lock:
                conn.execute("BEGIN IMMEDIATE")
                try:
                    result = action()
                    conn.execute("COMMIT")
                    return result
                except BaseException:
                    if conn.in_transaction:
                        conn.execute("ROLLBACK")
                    raise
        except sqlite3.OperationalError as exc:
            text = str(exc).lower()
            if attempt == BUSY_RETRIES or ("locked" not in text and "busy" not in text):
                raise
        time.sleep(delay * (1 + random.random()))
        delay = min(delay * 2, 2.0)
    raise AssertionError("unreachable")


def _audit(conn: Any, actor: str, action: str, object_type: str, object_id: Any,
           before: Any, after: Any, ts: int) -> int:
    from soc_tui.store.chain import seal_rows

    cur = conn.execute(
        "INSERT INTO audit (ts, actor, action, object_type, object_id, before, after)"
        " VALUES (?, ?, ?, ?, ?, ?, ?)",
        (ts, actor, action, object_type, str(object_id),
         None if before is None else json.dumps(before, sort_keys=True, ensure_ascii=False),
         None if after is None else json.dumps(after, sort_keys=True, ensure_ascii=False)),
    )
    audit_id = int(cur.lastrowid)
    seal_rows(conn, "audit", [audit_id])
    return audit_id
