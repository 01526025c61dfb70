"""Read-side queries: checkpoints for the readers, event search and counts, stats.

Owns: every SELECT the collector, the CLI and (later) the TUI run against
events. A StoreReader holds its own connection and is safe to share between
threads (calls are serialised). Must not: write events (that is the writer).
"""

from __future__ import annotations

import json
import sqlite3
import threading
from typing import Any, Iterator

from soc_tui.model import Checkpoint
from soc_tui.store.db import MESSAGE_SQL, StoreError, open_db
from soc_tui.store.events import ROW_COLUMNS, checkpoints_for_inode, load_checkpoint
from soc_tui.store.search import CompiledQuery, compile_query

# Every events column a caller sees (msg_off is folded into message).
EVENT_COLUMNS = ("id", "ingested_at") + tuple(c for c in ROW_COLUMNS if c != "msg_off")
_SELECT = ", ".join(MESSAGE_SQL if c == "message" else f"e.{c}" for c in EVENT_COLUMNS) + ", s.name"


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
        f"FROM events e LEFT JOIN sources s ON s.id = e.source WHERE ({q.where})",
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
            rows = self._run(sql, params).fetchall()
        rows.reverse()
        return [_row(r) for r in rows]

    def iter_search(self, query: str | CompiledQuery) -> Iterator[dict[str, Any]]:
        """Every matching event, oldest first, streamed (for exports)."""
        q = compile_query(query) if isinstance(query, str) else query
        frm, params = _from(q)
        order = "f.rowid" if q.fts is not None else "e.id"
        sql = f"SELECT {_SELECT} {frm} ORDER BY {order}"
        with self._lock:
            cur = self._run(sql, params)
            while batch := cur.fetchmany(1000):
                for r in batch:
                    yield _row(r)

    def count(self, query: str | CompiledQuery) -> int:
        """Matching events, a `message repeated N times` line counting N."""
        q = compile_query(query) if isinstance(query, str) else query
        frm, params = _from(q)
        with self._lock:
            row = self._run(f"SELECT coalesce(sum(e.repeat), 0) {frm}", params).fetchone()
        return int(row[0])

    def _run(self, sql: str, params: list[object]) -> sqlite3.Cursor:
        try:
            return self._conn.execute(sql, params)
        except sqlite3.OperationalError as exc:
            if "fts5" in str(exc).lower():
                raise StoreError(f"full-text query rejected: {exc}") from exc
            raise


def _row(r: tuple[Any, ...]) -> dict[str, Any]:
    d = dict(zip(EVENT_COLUMNS, r))
    d["source_id"] = r[-1]
    if d["extra"]:
        try:
            d["extra"] = json.loads(d["extra"])
        except ValueError:
            pass
    return d
