"""Triage storage: the analyst's side of alerts, incidents, notes, analyst
suppressions and the audit trail.

Owns: the triage tables (created by `create_triage_tables` from the
migrations in `soc_tui.store.db`) and every statement that changes them.
Each analyst action is one write transaction that also appends its audit
row (actor, time, action, object, before, after) and seals that row into
the hash chain (`soc_tui.store.chain`), so an action and its record commit
together or not at all. Busy databases (another process writing) are
retried with backoff (`soc_tui.store.db.write_transaction`). Must not: evaluate rules or import Textual.

Rules of the workflow (DESIGN section 7): alert status
new -> acknowledged -> in_progress -> closed, closing needs a reason, a
closed alert may be reopened (back to acknowledged); incident status open,
contained, resolved, closed in any order (each change audited). Notes and
audit rows are append-only (triggers refuse UPDATE and DELETE; the chain
catches whoever drops the triggers): editing a note adds a version.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable

from soc_tui.model import now_us
from soc_tui.store.db import write_transaction

ALERT_STATUSES = ("new", "acknowledged", "in_progress", "closed")
CLOSE_REASONS = ("true_positive", "benign", "false_positive", "duplicate")
INCIDENT_STATUSES = ("open", "contained", "resolved", "closed")
SEVERITIES = ("informational", "low", "medium", "high", "critical")
# Allowed alert status changes (forward only; `reopen`: closed -> acknowledged).
TRANSITIONS = {
    "new": ("acknowledged", "in_progress", "closed"),
    "acknowledged": ("in_progress", "closed"),
    "in_progress": ("closed",),
    "closed": (),  # reopen() is the way back
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
    conn.execute(
        "CREATE TABLE rule_settings (rule_id TEXT PRIMARY KEY, enabled INTEGER NOT NULL,"
        " actor TEXT NOT NULL, at INTEGER NOT NULL)"
    )
    for table in ("notes", "audit"):
        for op in ("UPDATE", "DELETE"):
            conn.execute(
                f"CREATE TRIGGER {table}_no_{op.lower()} BEFORE {op} ON {table}"
                f" BEGIN SELECT RAISE(ABORT, '{table} are append-only'); END"
            )


# -- writing ---------------------------------------------------------------------

def audit(conn: Any, actor: str, action: str, object_type: str, object_id: Any,
           before: Any, after: Any, ts: int) -> int:
    """Append one audit row (in the caller's transaction) and seal it."""
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


def _seal(conn: Any, table: str, ids: Iterable[int]) -> None:
    from soc_tui.store.chain import seal_rows

    seal_rows(conn, table, list(ids))


def _placeholders(n: int) -> str:
    return ",".join("?" * n)


# -- alerts ----------------------------------------------------------------------------

_TRIAGE_COLS = "id, status, assignee, labels, incident_id, close_reason, acked_at, closed_at"


def _alert_states(conn: Any, ids: list[int]) -> dict[int, dict[str, Any]]:
    out: dict[int, dict[str, Any]] = {}
    for i in range(0, len(ids), 500):
        part = ids[i:i + 500]
        for row in conn.execute(
            f"SELECT {_TRIAGE_COLS} FROM alerts WHERE id IN ({_placeholders(len(part))})", part
        ):
            out[row[0]] = {"status": row[1], "assignee": row[2], "labels": json.loads(row[3] or "[]"),
                           "incident_id": row[4], "close_reason": row[5], "acked_at": row[6],
                           "closed_at": row[7]}
    missing = [i for i in ids if i not in out]
    if missing:
        raise TriageError(f"no such alert: {', '.join(map(str, missing))}")
    return out


def _update_alerts(conn: Any, actor: str, action: str, ids: Iterable[int],
                   change: Callable[[int, dict[str, Any]], dict[str, Any] | None]) -> list[int]:
    """Apply `change` (alert id, triage state -> the columns to set, or None
    to leave it) to each alert, auditing each change; all or nothing: the
    first refusal (TriageError) rolls every alert back."""
    ids = list(dict.fromkeys(int(i) for i in ids))
    if not ids:
        raise TriageError("no alert given")

    def apply() -> list[int]:
        now = now_us()
        states = _alert_states(conn, ids)
        changed = []
        for i in ids:
            before = states[i]
            cols = change(i, before)
            if not cols:
                continue
            after = {**before, **cols}
            sets = dict(cols)
            if "labels" in sets:
                sets["labels"] = json.dumps(sets["labels"], ensure_ascii=False)
            sets["updated_at"] = now
            conn.execute(
                f"UPDATE alerts SET {', '.join(f'{k} = ?' for k in sets)} WHERE id = ?",
                [*sets.values(), i],
            )
            audit(conn, actor, action, "alert", i,
                   {k: before[k] for k in cols}, {k: after[k] for k in cols}, now)
            changed.append(i)
        _seal(conn, "alerts", changed)
        return changed

    return write_transaction(conn, apply)


def set_status(conn: Any, ids: Iterable[int], status: str, actor: str,
               reason: str | None = None) -> list[int]:
    """Move alerts forward to `status` (closing needs a reason in
    CLOSE_REASONS). Alerts already there are left as they are; an invalid
    transition (backwards, or from closed: `reopen` first) refuses the whole
    call. Returns the ids changed."""
    if status not in ALERT_STATUSES or status == "new":
        raise TriageError(f"unknown status {status!r} (one of acknowledged, in_progress, closed)")
    if status == "closed" and reason not in CLOSE_REASONS:
        raise TriageError(f"closing needs a reason: --reason {'|'.join(CLOSE_REASONS)}")
    if status != "closed" and reason is not None:
        raise TriageError("only closing takes a reason")
    action = {"acknowledged": "ack", "in_progress": "start", "closed": "close"}[status]
    now = now_us()

    def change(i: int, st: dict[str, Any]) -> dict[str, Any] | None:
        if st["status"] == status:
            return None
        if status not in TRANSITIONS[st["status"]]:
            hint = " (reopen it first)" if st["status"] == "closed" else ""
            raise TriageError(f"alert {i} is {st['status']}: it cannot become {status}{hint}")
        cols: dict[str, Any] = {"status": status}
        if st["acked_at"] is None:
            cols["acked_at"] = now  # any first move out of `new` acknowledges
        if status == "closed":
            cols["close_reason"] = reason
            cols["closed_at"] = now
        return cols

    return _update_alerts(conn, actor, action, ids, change)


def reopen(conn: Any, ids: Iterable[int], actor: str) -> list[int]:
    """Reopen closed alerts (closed -> acknowledged); others are refused."""

    def change(i: int, st: dict[str, Any]) -> dict[str, Any] | None:
        if st["status"] != "closed":
            raise TriageError(f"alert {i} is {st['status']}, not closed: nothing to reopen")
        return {"status": "acknowledged", "close_reason": None, "closed_at": None}

    return _update_alerts(conn, actor, "reopen", ids, change)


def assign(conn: Any, ids: Iterable[int], assignee: str | None, actor: str) -> list[int]:
    """Give alerts to an analyst (None: unassign)."""
    if assignee is not None and not assignee.strip():
        raise TriageError("an assignee needs a name")

    def change(i: int, st: dict[str, Any]) -> dict[str, Any] | None:
        return None if st["assignee"] == assignee else {"assignee": assignee}

    return _update_alerts(conn, actor, "assign", ids, change)


def tag(conn: Any, ids: Iterable[int], add: Iterable[str] = (), remove: Iterable[str] = (),
        *, actor: str) -> list[int]:
    """Add and remove an analyst's labels on alerts (the rule's ATT&CK tags stay)."""
    add = [t.strip() for t in add if t.strip()]
    remove = {t.strip() for t in remove}
    if not add and not remove:
        raise TriageError("no tag given")

    def change(i: int, st: dict[str, Any]) -> dict[str, Any] | None:
        labels = [t for t in st["labels"] if t not in remove]
        labels += [t for t in add if t not in labels]
        return None if labels == st["labels"] else {"labels": labels}

    return _update_alerts(conn, actor, "tag", ids, change)


MANUAL_RULE = "manual"  # rule_id and rule_name of the alerts an analyst raises


def raise_alert(conn: Any, event_ids: Iterable[int], title: str, severity: str, actor: str) -> int:
    """An alert an analyst raises by hand on stored events (rule `manual`),
    with those events as evidence; the group fields (host, src_ip, user)
    are taken from the events when they all agree."""
    ids = sorted({int(i) for i in event_ids})
    title = title.strip()
    if not ids:
        raise TriageError("an alert needs at least one event")
    if not title:
        raise TriageError("an alert needs a title")
    _check_severity(severity)

    def apply() -> int:
        marks = ",".join("?" * len(ids))
        rows = conn.execute(
            f"SELECT e.id, e.ts, h.value, e.src_ip, u.value FROM events e"  # src_ip is not coded
            f" LEFT JOIN terms h ON h.id = e.host"
            f" LEFT JOIN terms u ON u.id = e.user WHERE e.id IN ({marks})", ids).fetchall()
        if len(rows) != len(ids):
            missing = sorted(set(ids) - {r[0] for r in rows})
            raise TriageError(f"no such event: {', '.join(map(str, missing[:5]))}")
        now = now_us()

        def same(k: int) -> Any:
            values = {r[k] for r in rows}
            return values.pop() if len(values) == 1 else None

        cur = conn.execute(
            "INSERT INTO alerts (rule_id, rule_name, title, severity, status, count, first_seen,"
            " last_seen, host, src_ip, user, tags, dedup_key, created_at, updated_at)"
            " VALUES (?, ?, ?, ?, 'new', ?, ?, ?, ?, ?, ?, '[]', ?, ?, ?)",
            (MANUAL_RULE, MANUAL_RULE, title, severity, len(rows), min(r[1] for r in rows),
             max(r[1] for r in rows), same(2), same(3), same(4), f"manual:{now}:{ids[0]}", now, now))
        aid = int(cur.lastrowid)
        conn.executemany("INSERT INTO alert_events (alert_id, event_id) VALUES (?, ?)",
                         [(aid, i) for i in ids])
        audit(conn, actor, "raise", "alert", aid, None,
              {"title": title, "severity": severity, "event_ids": ids}, now)
        _seal(conn, "alerts", [aid])
        return aid

    return write_transaction(conn, apply)


# -- incidents ---------------------------------------------------------------------------


def _incident_state(conn: Any, incident_id: int) -> dict[str, Any]:
    row = conn.execute(
        "SELECT title, severity, status, owner FROM incidents WHERE id = ?", (incident_id,)
    ).fetchone()
    if row is None:
        raise TriageError(f"no such incident: {incident_id}")
    return {"title": row[0], "severity": row[1], "status": row[2], "owner": row[3]}


def _check_severity(severity: str) -> None:
    if severity not in SEVERITIES:
        raise TriageError(f"unknown severity {severity!r} (one of {', '.join(SEVERITIES)})")


def create_incident(conn: Any, title: str, actor: str, *, severity: str | None = None,
                    alert_ids: Iterable[int] = (), owner: str | None = None) -> int:
    """A new open incident, with alerts linked; without a severity it takes
    the highest of its alerts' (medium when none)."""
    title = title.strip()
    if not title:
        raise TriageError("an incident needs a title")
    if severity is not None:
        _check_severity(severity)
    alert_ids = list(dict.fromkeys(int(i) for i in alert_ids))

    def apply() -> int:
        now = now_us()
        sev = severity
        if sev is None:
            states = _alert_states(conn, alert_ids) if alert_ids else {}
            sevs = [r[0] for r in conn.execute(
                f"SELECT severity FROM alerts WHERE id IN ({_placeholders(len(states))})",
                list(states))] if states else []
            sev = max(sevs, key=SEVERITIES.index) if sevs else "medium"
        cur = conn.execute(
            "INSERT INTO incidents (title, severity, status, owner, created_at, updated_at)"
            " VALUES (?, ?, 'open', ?, ?, ?)", (title, sev, owner, now, now))
        iid = int(cur.lastrowid)
        audit(conn, actor, "create", "incident", iid, None,
               {"title": title, "severity": sev, "status": "open", "owner": owner}, now)
        _seal(conn, "incidents", [iid])
        if alert_ids:
            _link(conn, iid, alert_ids, actor, now)
        return iid

    return write_transaction(conn, apply)


def _link(conn: Any, incident_id: int, alert_ids: list[int], actor: str, now: int) -> list[int]:
    _incident_state(conn, incident_id)
    states = _alert_states(conn, alert_ids)
    changed = []
    for i in alert_ids:
        before = states[i]["incident_id"]
        if before == incident_id:
            continue
        conn.execute("UPDATE alerts SET incident_id = ?, updated_at = ? WHERE id = ?",
                     (incident_id, now, i))
        audit(conn, actor, "link", "alert", i, {"incident_id": before},
               {"incident_id": incident_id}, now)
        changed.append(i)
    _seal(conn, "alerts", changed)
    return changed


def link_alerts(conn: Any, incident_id: int, alert_ids: Iterable[int], actor: str) -> list[int]:
    """Link alerts to an incident (an alert belongs to at most one: linking
    moves it, and the audit row keeps where it was)."""
    ids = list(dict.fromkeys(int(i) for i in alert_ids))
    if not ids:
        raise TriageError("no alert given")
    return write_transaction(conn, lambda: _link(conn, incident_id, ids, actor, now_us()))


def unlink_alerts(conn: Any, alert_ids: Iterable[int], actor: str) -> list[int]:
    def change(i: int, st: dict[str, Any]) -> dict[str, Any] | None:
        return None if st["incident_id"] is None else {"incident_id": None}

    return _update_alerts(conn, actor, "unlink", alert_ids, change)


def _update_incident(conn: Any, incident_id: int, actor: str, action: str,
                     cols: dict[str, Any]) -> bool:
    def apply() -> bool:
        now = now_us()
        before = _incident_state(conn, incident_id)
        diff = {k: v for k, v in cols.items() if before[k] != v}
        if not diff:
            return False
        conn.execute(
            f"UPDATE incidents SET {', '.join(f'{k} = ?' for k in diff)}, updated_at = ? WHERE id = ?",
            [*diff.values(), now, incident_id])
        audit(conn, actor, action, "incident", incident_id,
               {k: before[k] for k in diff}, diff, now)
        _seal(conn, "incidents", [incident_id])
        return True

    return write_transaction(conn, apply)


def set_incident_status(conn: Any, incident_id: int, status: str, actor: str) -> bool:
    if status not in INCIDENT_STATUSES:
        raise TriageError(f"unknown incident status {status!r} (one of {', '.join(INCIDENT_STATUSES)})")
    return _update_incident(conn, incident_id, actor, "status", {"status": status})


def update_incident(conn: Any, incident_id: int, actor: str, *, title: str | None = None,
                    severity: str | None = None, owner: str | None = None) -> bool:
    cols: dict[str, Any] = {}
    if title is not None:
        if not title.strip():
            raise TriageError("an incident needs a title")
        cols["title"] = title.strip()
    if severity is not None:
        _check_severity(severity)
        cols["severity"] = severity
    if owner is not None:
        cols["owner"] = owner or None
    if not cols:
        raise TriageError("nothing to change")
    return _update_incident(conn, incident_id, actor, "update", cols)


def pin_events(conn: Any, incident_id: int, event_ids: Iterable[int], actor: str) -> list[int]:
    """Pin events to an incident (kept by retention, shown on its timeline)."""
    ids = list(dict.fromkeys(int(i) for i in event_ids))
    if not ids:
        raise TriageError("no event given")

    def apply() -> list[int]:
        now = now_us()
        _incident_state(conn, incident_id)
        found = {r[0] for r in conn.execute(
            f"SELECT id FROM events WHERE id IN ({_placeholders(len(ids))})", ids)}
        missing = [i for i in ids if i not in found]
        if missing:
            raise TriageError(f"no such event: {', '.join(map(str, missing))}")
        pinned = []
        for i in ids:
            cur = conn.execute(
                "INSERT OR IGNORE INTO incident_events (incident_id, event_id, pinned_by, pinned_at)"
                " VALUES (?, ?, ?, ?)", (incident_id, i, actor, now))
            if cur.rowcount:
                audit(conn, actor, "pin", "incident", incident_id, None, {"event_id": i}, now)
                pinned.append(i)
        return pinned

    return write_transaction(conn, apply)


# -- notes -------------------------------------------------------------------------------


def add_note(conn: Any, object_type: str, object_id: int, body: str, actor: str) -> int:
    """An append-only Markdown note on an incident or an alert; returns its id."""
    if object_type not in ("incident", "alert"):
        raise TriageError(f"notes go on an incident or an alert, not {object_type!r}")
    _check_body(body)

    def apply() -> int:
        if object_type == "incident":
            _incident_state(conn, object_id)
        else:
            _alert_states(conn, [object_id])
        return _insert_note(conn, None, 1, object_type, object_id, body, actor)

    return write_transaction(conn, apply)


def edit_note(conn: Any, note_id: int, body: str, actor: str) -> int:
    """A new version of a note (the earlier ones stay); returns its version."""
    _check_body(body)

    def apply() -> int:
        row = conn.execute(
            "SELECT max(version), object_type, object_id FROM notes WHERE note_id = ?", (note_id,)
        ).fetchone()
        if row is None or row[0] is None:
            raise TriageError(f"no such note: {note_id}")
        _insert_note(conn, note_id, row[0] + 1, row[1], row[2], body, actor)
        return row[0] + 1

    return write_transaction(conn, apply)


def _check_body(body: str) -> None:
    if not body.strip():
        raise TriageError("a note needs some text")


def _insert_note(conn: Any, note_id: int | None, version: int, object_type: str,
                 object_id: int, body: str, actor: str) -> int:
    now = now_us()
    # Rows are never deleted (append-only), so the next id is max + 1; a new
    # note is named by its first version's id.
    row_id = conn.execute("SELECT coalesce(max(id), 0) + 1 FROM notes").fetchone()[0]
    note = row_id if note_id is None else note_id
    conn.execute(
        "INSERT INTO notes (id, note_id, version, object_type, object_id, author, created_at, body)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        (row_id, note, version, object_type, object_id, actor, now, body))
    audit(conn, actor, "note" if version == 1 else "edit_note", object_type, object_id, None,
           {"note_id": note, "version": version}, now)
    _seal(conn, "notes", [row_id])
    return note


# -- rules ---------------------------------------------------------------------------------


def set_rule_enabled(conn: Any, rule_id: str, rule_name: str | None, enabled: bool,
                     actor: str) -> bool:
    """Switch a rule on or off for this database (overrides its file's
    `x-soc.enabled`; the rule worker picks it up at its next chunk).
    Returns whether anything changed."""

    def apply() -> bool:
        now = now_us()
        row = conn.execute("SELECT enabled FROM rule_settings WHERE rule_id = ?",
                           (rule_id,)).fetchone()
        before = None if row is None else bool(row[0])
        if before == enabled:
            return False
        conn.execute(
            "INSERT INTO rule_settings (rule_id, enabled, actor, at) VALUES (?, ?, ?, ?)"
            " ON CONFLICT (rule_id) DO UPDATE SET enabled = excluded.enabled,"
            " actor = excluded.actor, at = excluded.at", (rule_id, int(enabled), actor, now))
        audit(conn, actor, "enable" if enabled else "disable", "rule", rule_name or rule_id,
              {"enabled": before}, {"enabled": enabled, "rule_id": rule_id}, now)
        return True

    return write_transaction(conn, apply)


def rule_settings(conn: Any) -> dict[str, bool]:
    """rule_id -> enabled, for the rules an analyst switched."""
    return {r[0]: bool(r[1]) for r in conn.execute("SELECT rule_id, enabled FROM rule_settings")}


def rule_settings_mark(conn: Any) -> tuple[int, int | None]:
    """Changes whenever a rule is switched (for workers to notice)."""
    row = conn.execute("SELECT count(*), max(at) FROM rule_settings").fetchone()
    return int(row[0]), row[1]


# -- analyst suppressions ----------------------------------------------------------------


@dataclass
class Suppression:
    id: int
    rule: str | None
    fields: dict[str, str]
    reason: str
    author: str
    created_at: int
    expires_at: int | None
    removed_at: int | None
    hits: int
    last_hit: int | None

    def active(self, now: int) -> bool:
        return self.removed_at is None and (self.expires_at is None or self.expires_at > now)

    def matches(self, rule_name: str, rule_id: str, group: dict[str, Any]) -> bool:
        if self.rule is not None and self.rule not in (rule_name, rule_id):
            return False
        return all(group.get(k) == v for k, v in self.fields.items())


def add_suppression(conn: Any, actor: str, *, rule: str | None, fields: dict[str, str],
                    reason: str, expires_at: int | None) -> int:
    """Stop raising matching hits (counted on the suppression instead) until
    `expires_at` (None: until removed). Needs a rule or a field, and a reason."""
    bad = [k for k in fields if k not in SUPPRESS_FIELDS]
    if bad:
        raise TriageError(f"cannot suppress on {', '.join(bad)} (fields: {', '.join(SUPPRESS_FIELDS)})")
    if rule is None and not fields:
        raise TriageError("a suppression needs a rule or a field")
    if not reason.strip():
        raise TriageError("a suppression needs a reason")

    def apply() -> int:
        now = now_us()
        if expires_at is not None and expires_at <= now:
            raise TriageError("the expiry is in the past")
        cur = conn.execute(
            "INSERT INTO suppressions (rule, fields, reason, author, created_at, expires_at)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            (rule, json.dumps(fields, sort_keys=True), reason, actor, now, expires_at))
        sid = int(cur.lastrowid)
        audit(conn, actor, "suppress", "suppression", sid, None,
               {"rule": rule, "fields": fields, "reason": reason, "expires_at": expires_at}, now)
        return sid

    return write_transaction(conn, apply)


def remove_suppression(conn: Any, sid: int, actor: str) -> None:
    def apply() -> None:
        now = now_us()
        row = conn.execute("SELECT removed_at FROM suppressions WHERE id = ?", (sid,)).fetchone()
        if row is None:
            raise TriageError(f"no such suppression: {sid}")
        if row[0] is not None:
            raise TriageError(f"suppression {sid} was already removed")
        conn.execute("UPDATE suppressions SET removed_at = ? WHERE id = ?", (now, sid))
        audit(conn, actor, "unsuppress", "suppression", sid, {"removed_at": None},
               {"removed_at": now}, now)

    write_transaction(conn, apply)


def list_suppressions(conn: Any, *, active_at: int | None = None) -> list[Suppression]:
    """Every suppression (newest first), or those active at `active_at`."""
    out = []
    for r in conn.execute(
        "SELECT id, rule, fields, reason, author, created_at, expires_at, removed_at, hits,"
        " last_hit FROM suppressions ORDER BY id DESC"
    ):
        s = Suppression(r[0], r[1], json.loads(r[2] or "{}"), *r[3:])
        if active_at is None or s.active(active_at):
            out.append(s)
    return out


def count_suppressed(conn: Any, counts: dict[int, tuple[int, int]]) -> None:
    """Add hits (suppression id -> (hits, last hit ts)) inside the caller's
    transaction (the rule worker's commit)."""
    for sid, (hits, last) in counts.items():
        conn.execute(
            "UPDATE suppressions SET hits = hits + ?, last_hit = max(coalesce(last_hit, 0), ?)"
            " WHERE id = ?", (hits, last, sid))


# -- reading -----------------------------------------------------------------------------


@dataclass
class Note:
    id: int
    note_id: int
    version: int
    object_type: str
    object_id: int
    author: str
    created_at: int
    body: str


@dataclass
class AuditRow:
    id: int
    ts: int
    actor: str
    action: str
    object_type: str
    object_id: str
    before: Any
    after: Any


def notes_of(conn: Any, object_type: str, object_id: int, *, history: bool = False) -> list[Note]:
    """Notes on an object in time order: each note's latest version, or with
    history every version."""
    rows = conn.execute(
        "SELECT id, note_id, version, object_type, object_id, author, created_at, body FROM notes"
        " WHERE object_type = ? AND object_id = ? ORDER BY id", (object_type, object_id)).fetchall()
    notes = [Note(*r) for r in rows]
    if history:
        return notes
    latest: dict[int, Note] = {}
    for n in notes:
        latest[n.note_id] = n
    return sorted(latest.values(), key=lambda n: n.note_id)


def audit_of(conn: Any, object_type: str | None = None, object_id: Any = None) -> list[AuditRow]:
    sql = "SELECT id, ts, actor, action, object_type, object_id, before, after FROM audit"
    params: list[Any] = []
    if object_type is not None:
        sql += " WHERE object_type = ? AND object_id = ?"
        params = [object_type, str(object_id)]
    out = []
    for r in conn.execute(sql + " ORDER BY id", params):
        out.append(AuditRow(*r[:6], *(None if v is None else json.loads(v) for v in r[6:])))
    return out


@dataclass
class Incident:
    id: int
    title: str
    severity: str
    status: str
    owner: str | None
    created_at: int
    updated_at: int
    alert_ids: list[int] = field(default_factory=list)
    pinned: list[int] = field(default_factory=list)


def get_incident(conn: Any, incident_id: int) -> Incident:
    row = conn.execute(
        "SELECT id, title, severity, status, owner, created_at, updated_at FROM incidents"
        " WHERE id = ?", (incident_id,)).fetchone()
    if row is None:
        raise TriageError(f"no such incident: {incident_id}")
    inc = Incident(*row)
    inc.alert_ids = [r[0] for r in conn.execute(
        "SELECT id FROM alerts WHERE incident_id = ? ORDER BY id", (incident_id,))]
    inc.pinned = [r[0] for r in conn.execute(
        "SELECT event_id FROM incident_events WHERE incident_id = ? ORDER BY event_id",
        (incident_id,))]
    return inc


def list_incidents(conn: Any, *, status: str | None = None) -> list[Incident]:
    sql = "SELECT id FROM incidents"
    params: list[Any] = []
    if status:
        sql += " WHERE status = ?"
        params.append(status)
    return [get_incident(conn, r[0]) for r in conn.execute(sql + " ORDER BY id DESC", params).fetchall()]


def rule_metrics(conn: Any) -> list[dict[str, Any]]:
    """Per rule: alerts raised, mean seconds to acknowledge and to close,
    and the false-positive rate among closed alerts."""
    out = []
    for r in conn.execute(
        "SELECT rule_name, count(*),"
        " avg(CASE WHEN acked_at IS NOT NULL THEN acked_at - created_at END),"
        " avg(CASE WHEN closed_at IS NOT NULL THEN closed_at - created_at END),"
        " sum(status = 'closed'), sum(close_reason = 'false_positive')"
        " FROM alerts GROUP BY rule_name ORDER BY count(*) DESC, rule_name"
    ):
        closed = r[4] or 0
        out.append({
            "rule_name": r[0], "alerts": r[1],
            "mean_time_to_ack_s": None if r[2] is None else round(r[2] / 1e6, 1),
            "mean_time_to_close_s": None if r[3] is None else round(r[3] / 1e6, 1),
            "closed": closed,
            "false_positive_rate": None if not closed else round((r[5] or 0) / closed, 3),
        })
    return out
