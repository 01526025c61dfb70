"""Read-side queries: checkpoints for the readers, event search and counts, stats.

Owns: every SELECT the collector, the CLI and (later) the TUI run against
events, and turning a stored row back into the event dict (codes decoded
through the connection's term cache; raw line, `extra` and ingest time from
its raw block; the message from its offset). A StoreReader holds its own
connection and is safe to share between threads (calls are serialised). Must not: write events (that is the writer).
"""

from __future__ import annotations

import json
import sqlite3
import threading
from typing import Any, Iterator

from soc_tui.model import FLAG_UNPARSED, Checkpoint
from soc_tui.store.alerts import StoredAlert, list_alerts, queue_ids_query
from soc_tui.store.db import CODED_COLUMNS, StoreError, open_db
from soc_tui.store.events import ROW_COLUMNS, TABLE_COLUMNS, checkpoints_for_inode, load_checkpoint
from soc_tui.store.search import CompiledQuery, compile_query

# Every field of an event a caller sees, in this order (msg_off is folded into
# message; source_id is the source's name).
EVENT_COLUMNS = ("id", "ingested_at") + tuple(c for c in ROW_COLUMNS if c != "msg_off")
# The events row (but its source id) and the source's name.
_SELECTED = tuple(c for c in TABLE_COLUMNS if c != "source")
_SELECT = ", ".join(f"e.{c}" for c in _SELECTED) + ", s.name"
_CODED = tuple(i for i, c in enumerate(_SELECTED) if c in CODED_COLUMNS)
# Events rows with their source's name (the FROM of every by-id read).
_EVENTS_FROM = "FROM events e LEFT JOIN sources s ON s.id = e.source"
_MESSAGE = _SELECTED.index("message")


def _from(q: CompiledQuery) -> tuple[str, list[object]]:
    """FROM ... WHERE ... for a compiled query, driven by FTS5 when it has text."""
    if q.fts is not None:
        return (
            "FROM events_fts f JOIN events e ON e.id = f.rowid"
            " LEFT JOIN sources s ON s.id = e.source"
            f" WHERE events_fts MATCH ? AND ({q.where})",
            [q.fts, *q.params],
        )
    return (
        f"{_EVENTS_FROM} WHERE ({q.where})",
        list(q.params),
    )


class StoreReader:
    def __init__(self, path: str, *, create: bool = True) -> None:
        self.path = path
        self._conn = open_db(path, create=create)
        self._lock = threading.Lock()

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    # -- checkpoints ----------------------------------------------------------

    def checkpoint(self, key: str) -> Checkpoint | None:
        with self._lock:
            return load_checkpoint(self._conn, key)

    def checkpoints_for_inode(self, dev: int, ino: int) -> list[Checkpoint]:
        with self._lock:
            return checkpoints_for_inode(self._conn, dev, ino)

    # -- search -----------------------------------------------------------------

    def search(self, query: str | CompiledQuery, *, limit: int | None = 100) -> list[dict[str, Any]]:
        """The newest `limit` matching events (None: all), oldest first."""
        q = compile_query(query) if isinstance(query, str) else query
        frm, params = _from(q)
        order = "f.rowid" if q.fts is not None else "e.id"
        sql = f"SELECT {_SELECT} {frm} ORDER BY {order} DESC"
        if limit is not None:
            sql += " LIMIT ?"
            params.append(limit)
        with self._lock:
            self._conn.blocks.clear()
            rows = self._run(sql, params).fetchall()
            rows.reverse()
            return [self._event(r) for r in rows]

    def iter_search(self, query: str | CompiledQuery) -> Iterator[dict[str, Any]]:
        """Every matching event, oldest first, streamed (for exports)."""
        q = compile_query(query) if isinstance(query, str) else query
        frm, params = _from(q)
        order = "f.rowid" if q.fts is not None else "e.id"
        sql = f"SELECT {_SELECT} {frm} ORDER BY {order}"
        with self._lock:
            self._conn.blocks.clear()
            cur = self._run(sql, params)
            while batch := cur.fetchmany(1000):
                for r in batch:
                    yield self._event(r)

    def count(self, query: str | CompiledQuery) -> int:
        """Matching events, a `message repeated N times` line counting N."""
        q = compile_query(query) if isinstance(query, str) else query
        frm, params = _from(q)
        with self._lock:
            self._conn.blocks.clear()
            row = self._run(f"SELECT coalesce(sum(e.repeat), 0) {frm}", params).fetchone()
        return int(row[0])

    def events_by_id(self, ids: list[int]) -> list[dict[str, Any]]:
        """The stored events with these ids, in id order (missing ids skipped)."""
        wanted = sorted(set(ids))
        out: list[dict[str, Any]] = []
        with self._lock:
            self._conn.blocks.clear()
            for i in range(0, len(wanted), 500):
                part = wanted[i:i + 500]
                marks = ",".join("?" * len(part))
                rows = self._run(
                    f"SELECT {_SELECT} {_EVENTS_FROM} WHERE e.id IN ({marks}) ORDER BY e.id", list(part)
                ).fetchall()
                out.extend(self._event(r) for r in rows)
        return out

    def events_after(self, after_id: int, limit: int) -> tuple[list[dict[str, Any]], int]:
        """The live tail: events with id > after_id, oldest first, at most the
        newest `limit` of them, and the highest id stored (so a caller that
        fell behind knows how many it skipped)."""
        with self._lock:
            self._conn.blocks.clear()
            top = self._last_id()
            if top <= after_id:
                return [], top
            rows = self._run(
                f"SELECT {_SELECT} {_EVENTS_FROM}"
                " WHERE e.id > ? AND e.id <= ? ORDER BY e.id DESC LIMIT ?",
                [max(after_id, top - limit), top, limit],
            ).fetchall()
            rows.reverse()
            return [self._event(r) for r in rows], top

    def events_around(self, event_id: int, before: int, after: int,
                      host: str | None = None) -> list[dict[str, Any]]:
        """Events stored right before and after `event_id` (on `host` only
        when given), in id order, the event itself included."""
        where: str = ""
        params: list[object] = []
        with self._lock:
            if host is not None:  # a reader never inserts terms: look the code up
                row = self._conn.execute("SELECT id FROM terms WHERE value = ?", (host,)).fetchone()
                if row is None:
                    return []
                where, params = " AND e.host = ?", [row[0]]
            sql = (f"SELECT {_SELECT} {_EVENTS_FROM}"
                   f" WHERE e.id {{op}} ?{where} ORDER BY e.id {{order}} LIMIT ?")
            self._conn.blocks.clear()
            older = self._run(sql.format(op="<", order="DESC"), [event_id, *params, before]).fetchall()
            newer = self._run(sql.format(op=">=", order="ASC"), [event_id, *params, after + 1]).fetchall()
            older.reverse()
            return [self._event(r) for r in older + newer]

    def event_shapes(self, after_id: int = 0) -> tuple[set[tuple[str | None, bool, bool]], int]:
        """The distinct (app, is a web request, unparsed) of the events with
        id > after_id (what logsource routing looks at), and the highest id
        read: callers keep the set and ask only for what is new."""
        with self._lock:
            top = self._last_id()
            if top <= after_id:
                return set(), after_id
            web = self._conn.execute("SELECT id FROM terms WHERE value = 'http_request'").fetchone()
            rows = self._conn.execute(
                "SELECT DISTINCT app, http_method IS NOT NULL OR action IS ?, flags & ?"
                " FROM events WHERE id > ? AND id <= ?",
                (web[0] if web else -1, FLAG_UNPARSED, after_id, top),
            ).fetchall()
            values = self._conn.terms.values
            return {(values[app], bool(w), bool(u)) for app, w, u in rows}, top

    def last_event_id(self) -> int:
        """The highest event id stored (0: none)."""
        with self._lock:
            return self._last_id()

    def _last_id(self) -> int:
        return int(self._conn.execute("SELECT max(id) FROM events").fetchone()[0] or 0)

    def run(self, query: Any) -> Any:
        """`query(conn)` on this reader's connection, serialised with its
        other calls: for the read functions of other store modules
        (triage.notes_of, stats, ...). Must only read."""
        with self._lock:
            return query(self._conn)

    def interrupt(self) -> None:
        """Abort the query running on this reader (from another thread): a
        superseded search stops at once with sqlite3.OperationalError."""
        self._conn.interrupt()

    # -- alerts -------------------------------------------------------------------

    def alerts(self, **filters: Any) -> list[StoredAlert]:
        """Alerts, most severe and newest first (filters: status, severity, rule, limit)."""
        with self._lock:
            return list_alerts(self._conn, **filters)

    def alert_queue(self, known: dict[int, StoredAlert], *, status: str | None = None,
                    rule: str | None = None, limit: int) -> list[StoredAlert]:
        """What `alerts(status=, rule=, limit=, with_events=False)` returns
        (the same alerts in the same order), reading in full only the alerts
        that are not in `known` (id -> alert, as a previous call returned it)
        or changed since (every change of an alert sets its updated_at).
        `known` is left holding exactly the alerts returned. (The queue is
        read every 2 s; turning 2,000 rows into alerts each time held the
        UI's GIL for tens of ms while ingesting.)"""
        sql, params = queue_ids_query(status=status, rule=rule, limit=limit)
        with self._lock:  # (also: two callers never update `known` at once)
            order = self._conn.execute(sql, params).fetchall()
            stale = [i for i, updated in order if (a := known.get(i)) is None or a.updated_at != updated]
            fresh = {a.id: a for a in list_alerts(self._conn, ids=stale, with_events=False)} if stale else {}
            out: list[StoredAlert] = []
            for i, _updated in order:
                a = fresh.get(i) or known.get(i)
                if a is not None:  # (None: deleted between the two reads)
                    out.append(a)
            known.clear()
            known.update((a.id, a) for a in out)
        return out

    def _run(self, sql: str, params: list[object]) -> sqlite3.Cursor:
        try:
            return self._conn.execute(sql, params)
        except sqlite3.OperationalError as exc:
            if "fts5" in str(exc).lower():
                raise StoreError(f"full-text query rejected: {exc}") from exc
            raise


    def _event(self, r: tuple[Any, ...]) -> dict[str, Any]:
        """The event dict of a selected row: codes decoded, raw block fields added."""
        event_id = r[0]
        block = self._conn.blocks.block(event_id)
        if block is None:
            raise StoreError(f"{self.path}: event {event_id} has no raw block (damaged database)")
        k = event_id - block.first
        raw = block.raw[k]
        fields = list(r)
        values = self._conn.terms.values
        try:
            for i in _CODED:
                fields[i] = values[fields[i]]
        except KeyError as exc:
            raise StoreError(f"{self.path}: event {event_id}: {exc.args[0]}") from None
        if fields[_MESSAGE] is None and (off := block.msg_off[k]) is not None:
            fields[_MESSAGE] = raw[off:]
        d = dict(zip(_SELECTED, fields))
        d["ingested_at"] = block.ingested[k]
        d["raw"] = raw
        extra = block.extra[k]
        if extra:
            try:
                extra = json.loads(extra)
            except ValueError:
                pass
        d["extra"] = extra
        event = {c: d[c] for c in EVENT_COLUMNS}
        event["source_id"] = r[-1]
        return event
