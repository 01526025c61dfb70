"""Writing events: one transaction per batch, checkpoint in the same transaction.

Owns: the hot insert path (events rows, their FTS5 index rows, source
checkpoints, per-source counters and gaps) and the single writer thread that
applies batches in order. A batch is atomic: after a crash either all of its
events and the checkpoint that covers them are in the database, or none.
Must not: read files or parse lines.
"""

from __future__ import annotations

import json
import queue
import sqlite3
import threading
from dataclasses import dataclass, field

from soc_tui.model import FLAG_TRUNCATED, FLAG_UNPARSED, Checkpoint, Event, Gap, now_us
from soc_tui.store.db import StoreError, open_db


@dataclass
class Batch:
    """Events plus the reader state that covers them, applied atomically."""

    events: list[Event] = field(default_factory=list)
    checkpoints: dict[str, tuple[str, Checkpoint]] = field(default_factory=dict)
    gaps: list[Gap] = field(default_factory=list)
    lines: dict[str, int] = field(default_factory=dict)  # source name -> lines read
    bytes: dict[str, int] = field(default_factory=dict)

    def add_checkpoint(self, source: str, cp: Checkpoint) -> None:
        self.checkpoints[cp.key] = (source, cp)

    def __len__(self) -> int:
        return len(self.events)


_INSERT_EVENT = (
    "INSERT INTO events (id, ts, ingested_at, source, host, app, pid, level, action,"
    " outcome, user, target_user, src_ip, src_port, http_method, url, http_status,"
    " bytes, user_agent, referrer, message, raw, msg_off, repeat, flags, extra)"
    " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)"
)
_INSERT_FTS = "INSERT INTO events_fts (rowid, message) VALUES (?, ?)"


class SourceIds:
    """Maps source names (file paths, URLs) to their integer ids, creating rows."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn
        self._ids: dict[str, int] = {}

    def get(self, name: str, kind: str = "file") -> int:
        sid = self._ids.get(name)
        if sid is None:
            row = self._conn.execute("SELECT id FROM sources WHERE name = ?", (name,)).fetchone()
            if row is None:
                cur = self._conn.execute(
                    "INSERT INTO sources (name, kind) VALUES (?, ?)", (name, kind)
                )
                sid = int(cur.lastrowid)
            else:
                sid = int(row[0])
            self._ids[name] = sid
        return sid


def write_batch(conn: sqlite3.Connection, sources: SourceIds, batch: Batch) -> tuple[int, int]:
    """Apply one batch in one transaction; returns (first_id, last_id) of its events."""
    ingested = now_us()
    conn.execute("BEGIN IMMEDIATE")
    try:
        next_id = (conn.execute("SELECT max(id) FROM events").fetchone()[0] or 0) + 1
        first_id = next_id
        rows = []
        fts = []
        per_source: dict[int, list[int]] = {}
        for ev in batch.events:
            sid = sources.get(ev.source_id)
            stat = per_source.get(sid)
            if stat is None:
                stat = per_source[sid] = [0, 0, 0, 0]  # events, unparsed, truncated, last ts
            stat[0] += 1
            if ev.flags & FLAG_UNPARSED:
                stat[1] += 1
            if ev.flags & FLAG_TRUNCATED:
                stat[2] += 1
            if ev.ts > stat[3]:
                stat[3] = ev.ts
            raw = ev.raw
            message = ev.message if ev.message is not None else raw
            # Store the message as an offset into raw when it is raw's tail
            # (substr() counts characters like Python, but stops at NUL).
            stored: str | None = message
            msg_off = None
            if raw.endswith(message) and "\x00" not in raw:
                stored = None
                msg_off = len(raw) - len(message)
            rows.append(
                (
                    next_id, ev.ts, ingested, sid, ev.host, ev.app, ev.pid, ev.level,
                    ev.action, ev.outcome, ev.user, ev.target_user, ev.src_ip,
                    ev.src_port, ev.http_method, ev.url, ev.http_status, ev.bytes,
                    ev.user_agent, ev.referrer, stored, raw, msg_off, ev.repeat, ev.flags,
                    json.dumps(ev.extra, ensure_ascii=False) if ev.extra else None,
                )
            )
            fts.append((next_id, message))
            ev.id = next_id
            ev.ingested_at = ingested
            next_id += 1
        if rows:
            conn.executemany(_INSERT_EVENT, rows)
            conn.executemany(_INSERT_FTS, fts)
        for name in set(batch.lines) | {s for s, _ in batch.checkpoints.values()}:
            sources.get(name)
        for sid, (n, unparsed, truncated, last_ts) in per_source.items():
            _bump_stats(conn, sid, events=n, unparsed=unparsed, truncated=truncated,
                        last_ts=last_ts, now=ingested)
        for name, n in batch.lines.items():
            _bump_stats(conn, sources.get(name), lines=n, nbytes=batch.bytes.get(name, 0),
                        now=ingested)
        for gap in batch.gaps:
            sid = sources.get(gap.source)
            conn.execute(
                "INSERT INTO gaps (source, at, reason, detail) VALUES (?, ?, ?, ?)",
                (sid, ingested, gap.reason, gap.detail),
            )
            _bump_stats(conn, sid, gaps=1, now=ingested)
        for source, cp in batch.checkpoints.values():
            save_checkpoint(conn, sources.get(source), cp, ingested)
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    return first_id, next_id - 1


def _bump_stats(
    conn: sqlite3.Connection,
    sid: int,
    *,
    now: int,
    lines: int = 0,
    events: int = 0,
    unparsed: int = 0,
    truncated: int = 0,
    gaps: int = 0,
    nbytes: int = 0,
    last_ts: int | None = None,
) -> None:
    conn.execute(
        "INSERT INTO source_stats (source, lines, events, unparsed, truncated, gaps, bytes,"
        " last_event_ts, updated_at) VALUES (?,?,?,?,?,?,?,?,?)"
        " ON CONFLICT(source) DO UPDATE SET lines = lines + excluded.lines,"
        " events = events + excluded.events, unparsed = unparsed + excluded.unparsed,"
        " truncated = truncated + excluded.truncated, gaps = gaps + excluded.gaps,"
        " bytes = bytes + excluded.bytes,"
        " last_event_ts = max(coalesce(last_event_ts, 0), coalesce(excluded.last_event_ts, 0)),"
        " updated_at = excluded.updated_at",
        (sid, lines, events, unparsed, truncated, gaps, nbytes, last_ts, now),
    )


def save_checkpoint(conn: sqlite3.Connection, sid: int | None, cp: Checkpoint, now: int) -> None:
    conn.execute(
        "INSERT INTO checkpoints (key, source, dev, ino, fp_hash, fp_len, offset, cursor, updated_at)"
        " VALUES (?,?,?,?,?,?,?,?,?) ON CONFLICT(key) DO UPDATE SET source = excluded.source,"
        " dev = excluded.dev, ino = excluded.ino, fp_hash = excluded.fp_hash,"
        " fp_len = excluded.fp_len, offset = excluded.offset, cursor = excluded.cursor,"
        " updated_at = excluded.updated_at",
        (cp.key, sid, cp.dev, cp.ino, cp.fp_hash, cp.fp_len, cp.offset, cp.cursor, now),
    )


def load_checkpoint(conn: sqlite3.Connection, key: str) -> Checkpoint | None:
    row = conn.execute(
        "SELECT key, dev, ino, fp_hash, fp_len, offset, cursor FROM checkpoints WHERE key = ?",
        (key,),
    ).fetchone()
    return Checkpoint(*row) if row else None


def checkpoints_for_inode(conn: sqlite3.Connection, dev: int, ino: int) -> list[Checkpoint]:
    """Checkpoints of other keys that last read this very file (a renamed file)."""
    rows = conn.execute(
        "SELECT key, dev, ino, fp_hash, fp_len, offset, cursor FROM checkpoints"
        " WHERE dev = ? AND ino = ?",
        (dev, ino),
    ).fetchall()
    return [Checkpoint(*r) for r in rows]


_STOP = object()


class EventWriter:
    """The one writer thread: applies submitted batches in order, one transaction each.

    `submit` blocks when `max_pending` batches are waiting (back-pressure on the
    readers). A failed batch stops the writer; the error is re-raised by the next
    `submit`, `flush` or `close` so nothing is silently dropped.
    """

    def __init__(self, path: str, *, max_pending: int = 8) -> None:
        self.path = path
        self._conn = open_db(path)
        self._sources = SourceIds(self._conn)
        self._queue: queue.Queue[object] = queue.Queue(maxsize=max_pending)
        self._error: BaseException | None = None
        self._lock = threading.Lock()
        self._done = threading.Condition(self._lock)
        self._submitted = 0
        self._applied = 0
        self.events_written = 0
        self.last_id = 0
        self._thread = threading.Thread(target=self._run, name="soc-tui-writer", daemon=True)
        self._thread.start()

    def submit(self, batch: Batch) -> None:
        self._raise_if_failed()
        with self._lock:
            self._submitted += 1
        self._queue.put(batch)

    def flush(self, timeout: float | None = None) -> None:
        """Wait until every submitted batch is committed."""
        with self._done:
            target = self._submitted
            self._done.wait_for(lambda: self._applied >= target or self._error is not None, timeout)
        self._raise_if_failed()

    def close(self) -> None:
        if self._thread.is_alive():
            self._queue.put(_STOP)
            self._thread.join()
        try:
            self._conn.close()
        except sqlite3.Error:
            pass
        self._raise_if_failed()

    def _raise_if_failed(self) -> None:
        if self._error is not None:
            err = self._error
            if isinstance(err, sqlite3.DatabaseError):
                raise StoreError(f"writing to {self.path} failed: {err}") from err
            raise err

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is _STOP:
                return
            assert isinstance(item, Batch)
            try:
                if self._error is None:
                    first, last = write_batch(self._conn, self._sources, item)
                    self.events_written += len(item.events)
                    if item.events:
                        self.last_id = last
            except BaseException as exc:  # noqa: BLE001 - reported to the caller
                self._error = exc
            with self._done:
                self._applied += 1
                self._done.notify_all()
