"""Writing events: one transaction per batch, checkpoint in the same transaction.

Owns: the hot insert path (events rows with their text columns coded
through `terms`, their raw lines in `raw_blocks`, their FTS5 index rows,
source checkpoints, per-source counters and gaps) and the single writer
thread that applies batches in order. A batch is atomic: after a crash
either all of its events and the checkpoint that covers them are in the
database, or none.
Must not: read files or parse lines.
"""

from __future__ import annotations

import json
import json.encoder
import operator
import pickle
import queue
import sqlite3
import threading
from dataclasses import dataclass, field
from itertools import repeat as repeat_
from typing import Any, Callable, Iterable

from soc_tui.model import FLAG_TRUNCATED, FLAG_UNPARSED, Checkpoint, Event, Gap, now_us
from soc_tui.store.blocks import append_raw
from soc_tui.store.chain import seal_events
from soc_tui.store.db import StoreConnection, StoreError, open_db

# Binding None costs CPython's sqlite3 (3.11) a failed `__adapt__` lookup that
# formats and drops an AttributeError, per NULL parameter, with the GIL held:
# ~0.13 µs each, and a row has about a dozen NULLs (~+15% ingest without it).
# An adapter registered for NoneType is found by a dict lookup instead;
# `{}.get(None)` is None, so NULL is still bound.
sqlite3.register_adapter(type(None), {}.get)

# What a parser decides about one line (DESIGN section 3): every field of an
# event but id, ingested_at and source, which the writer fills per batch.
# `insert_rows` unpacks these tuples in this order.
ROW_COLUMNS: tuple[str, ...] = (
    "ts", "host", "app", "pid", "level", "action", "outcome", "user", "target_user",
    "src_ip", "src_port", "http_method", "url", "http_status", "bytes", "user_agent",
    "referrer", "message", "raw", "msg_off", "repeat", "flags", "extra",
)


@dataclass(slots=True)
class Rows:
    """Pre-built `events` rows of one source, in order, with their counters.

    Plain tuples (ROW_COLUMNS) so that they cross a process boundary cheaply
    and the writer does no per-row Python work. Built by `build_rows`.
    `rows` may also be that list pickled (`packed()`): a parse process sends
    it so, and only the writer thread unpickles it, right before inserting,
    instead of a reader thread contending with the writer for the GIL.
    """

    source: str
    rows: list[tuple[Any, ...]] | bytes
    count: int = 0
    unparsed: int = 0
    truncated: int = 0
    max_ts: int = 0
    # Detection rules that matched each row (row index -> rule ids; rows that
    # matched none are absent), when the parse step ran them; None when it did
    # not. `rules_digest` names the rule set (RuleSet.digest) they came from.
    matches: dict[int, tuple[str, ...]] | None = None
    rules_digest: str = ""
    # In packed form, `matches` travels as `matched`: the matched rows alone,
    # pickled [(index, rule ids, row)], what the rule worker takes as is.
    matched: bytes | None = None
    # The columns `matched` keeps of each row (what the rule worker reads of
    # an event whose rules are known; see `row_columns`); None: all of them.
    matched_columns: tuple[str, ...] | None = None

    def __len__(self) -> int:
        return self.count

    @property
    def prematched(self) -> bool:
        """Whether the parse step ran the detection rules on these rows."""
        return self.matches is not None or self.matched is not None

    def packed(self) -> Rows:
        if isinstance(self.rows, bytes):
            return self
        dumps = pickle.dumps
        proto = pickle.HIGHEST_PROTOCOL
        rows = self.rows
        matched = None
        cols = self.matched_columns
        if self.matches is not None:
            if cols is None:
                kept = [(i, ids, rows[i]) for i, ids in self.matches.items()]
            else:
                pick = _picker(cols)
                kept = [(i, ids, pick(rows[i])) for i, ids in self.matches.items()]
            matched = dumps(kept, protocol=proto)
        return Rows(self.source, dumps(rows, protocol=proto), self.count, self.unparsed,
                    self.truncated, self.max_ts, None, self.rules_digest, matched, cols)

    def unpacked(self) -> list[tuple[Any, ...]]:
        rows = self.rows
        return pickle.loads(rows) if isinstance(rows, bytes) else rows


def row_columns(keys: Iterable[str]) -> tuple[str, ...]:
    """The ROW_COLUMNS that give an event dict's `keys` (as `row_event` makes
    it): a message may be stored as an offset into raw, so either needs
    message, raw and msg_off."""
    want = set(keys)
    if want & {"message", "raw"}:
        want |= {"message", "raw", "msg_off"}
    return tuple(c for c in ROW_COLUMNS if c in want)


def _picker(cols: tuple[str, ...]) -> Callable[[tuple[Any, ...]], tuple[Any, ...]]:
    """row -> the tuple of its `cols` (ROW_COLUMNS names, in that order)."""
    idx = [ROW_COLUMNS.index(c) for c in cols]
    if len(idx) == 1:
        (i,) = idx
        return lambda row: (row[i],)
    return operator.itemgetter(*idx)


def _extra_encoder() -> Callable[[Any], str]:
    """`json.dumps(v, ensure_ascii=False, separators=(",", ":"))`, the same
    text, without building an encoder per call: json.dumps makes a new C
    encoder each time, about two thirds of its cost on our small dicts (and
    extra is encoded for most events). Extra values are trees from the
    parsers, never circular, so the circular check is left out."""
    make = getattr(json.encoder, "c_make_encoder", None)
    if make is None:  # a Python without the C accelerator
        return lambda v: json.dumps(v, ensure_ascii=False, separators=(",", ":"))
    enc = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))
    encode = make(None, enc.default, json.encoder.encode_basestring, None, ":", ",", False, False, True)
    join = "".join
    return lambda v: join(encode(v, 0))


dump_extra = _extra_encoder()


def build_rows(
    source: str,
    events: Iterable[Event],
    match: Callable[[Event], tuple[str, ...]] | None = None,
) -> Rows:
    """Rows (and counters) for `events` of one source, in order. With `match`
    (event -> ids of the detection rules it matches) the rows carry `matches`.

    Equal strings of the repetitive columns (host, app, action, user, src_ip,
    extra) become one object within the call: rows pickled together then carry
    each such value once, which nearly halves the unpickling work of the
    process that receives them (the writer's, which shares its GIL), and their
    memory."""
    rows: list[tuple[Any, ...]] = []
    append = rows.append
    unparsed = truncated = 0
    max_ts = 0
    dumps = dump_extra
    one = {}.setdefault  # one(value, value): the first equal object seen
    matches: dict[int, tuple[str, ...]] | None = {} if match is not None else None
    for ev in events:
        if match is not None:
            got = match(ev)
            if got:
                matches[len(rows)] = got  # type: ignore[index]
        raw = ev.raw
        message = ev.message
        if message is None:
            message = raw
        # Store the message as an offset into raw when it is raw's tail.
        if raw.endswith(message):
            msg_off = len(raw) - len(message)
            message = None
        else:
            msg_off = None
        flags = ev.flags
        if flags:
            if flags & FLAG_UNPARSED:
                unparsed += 1
            if flags & FLAG_TRUNCATED:
                truncated += 1
        ts = ev.ts
        if ts > max_ts:
            max_ts = ts
        extra = ev.extra
        if extra:
            extra = dumps(extra)
            extra = one(extra, extra)
        else:
            extra = None
        append((
            ts, one(ev.host, ev.host), one(ev.app, ev.app), ev.pid, ev.level,
            one(ev.action, ev.action), one(ev.outcome, ev.outcome), one(ev.user, ev.user),
            ev.target_user, one(ev.src_ip, ev.src_ip), ev.src_port, ev.http_method, ev.url,
            ev.http_status, ev.bytes, ev.user_agent, ev.referrer, message, raw, msg_off,
            ev.repeat, flags, extra,
        ))
    return Rows(source, rows, len(rows), unparsed, truncated, max_ts, matches)


def row_event(
    row: tuple[Any, ...], event_id: int, source: str, ingested: int, *, parse_extra: bool = True,
    columns: tuple[str, ...] = ROW_COLUMNS,
) -> dict[str, Any]:
    """The event dict of a row `build_rows` made, once stored with `event_id`:
    the same keys and values `StoreReader` gives back for it (only those of
    `columns` when the row holds only those, see `row_columns`). With
    parse_extra=False `extra` stays the JSON text (the rule engine parses it
    only for the events whose rules read it)."""
    d = dict(zip(columns, row))
    off = d.pop("msg_off", None)
    if off is not None and d["message"] is None:
        d["message"] = d["raw"][off:]
    extra = d.get("extra")
    if extra and parse_extra:
        try:
            d["extra"] = json.loads(extra)
        except ValueError:
            pass
    d["id"] = event_id
    d["ingested_at"] = ingested
    d["source_id"] = source
    return d


@dataclass
class Batch:
    """Events plus the reader state that covers them, applied atomically.

    The events come as `parts` (pre-built rows, what the pipeline sends) and/or
    as `events` (Event objects; written before the parts, and given their `id`
    and `ingested_at`).
    """

    events: list[Event] = field(default_factory=list)
    parts: list[Rows] = field(default_factory=list)
    checkpoints: dict[str, tuple[str, Checkpoint]] = field(default_factory=dict)
    gaps: list[Gap] = field(default_factory=list)
    lines: dict[str, int] = field(default_factory=dict)  # source name -> lines read
    bytes: dict[str, int] = field(default_factory=dict)
    # Set by write_batch: when it was committed, and every part written (rows
    # unpacked) in id order from its first id.
    ingested_at: int = 0
    written: list[Rows] = field(default_factory=list)

    def add_checkpoint(self, source: str, cp: Checkpoint) -> None:
        self.checkpoints[cp.key] = (source, cp)

    def __len__(self) -> int:
        return len(self.events) + sum(p.count for p in self.parts)


# The columns of `events` in the order `insert_rows` builds its tuples.
TABLE_COLUMNS: tuple[str, ...] = (
    "id", "ts", "source", "host", "app", "pid", "level", "action", "outcome", "user",
    "target_user", "src_ip", "src_port", "http_method", "url", "http_status", "bytes",
    "user_agent", "referrer", "message", "repeat", "flags",
)
_INSERT_EVENTS = (
    f"INSERT INTO events ({', '.join(TABLE_COLUMNS)})"
    f" VALUES ({', '.join('?' * len(TABLE_COLUMNS))})"
)
_INSERT_FTS = "INSERT INTO events_fts (rowid, message) VALUES (?, ?)"


def insert_rows(
    conn: sqlite3.Connection,
    code: Callable[[Any], int | None],
    sid: int | None,
    first_id: int,
    rows: list[tuple[Any, ...]],
    ingested: list[int],
    texts: dict[int, bytes] | None = None,
) -> None:
    """Store `rows` (ROW_COLUMNS tuples of one source) as events first_id, first_id + 1, ...

    Inside the caller's write transaction: the events rows with their text
    columns coded by `code` (Terms.codes), their FTS5 rows (the message text,
    which is the one `events_text` gives back), and their raw lines, message
    offsets, `extra` and ingest times (`ingested`, one per row) in raw blocks
    (`texts`: see append_raw)."""
    # Column-wise, so that the per-row work runs in C (zip, map, dict lookups).
    (ts, host, app, pid, level, action, outcome, user, target_user, src_ip, src_port,
     http_method, url, http_status, nbytes, user_agent, referrer, message, raw, msg_off,
     repeat, flags, extra) = zip(*rows)
    ids = range(first_id, first_id + len(rows))
    conn.executemany(_INSERT_EVENTS, zip(
        ids, ts, repeat_(sid), map(code, host), map(code, app), pid, map(code, level),
        map(code, action), map(code, outcome), map(code, user), map(code, target_user), src_ip,
        src_port, map(code, http_method), url, http_status, nbytes, map(code, user_agent),
        referrer, message, repeat, flags,
    ))
    conn.executemany(_INSERT_FTS, zip(ids, [
        line[off:] if msg is None else msg for msg, line, off in zip(message, raw, msg_off)
    ]))
    append_raw(conn, first_id, list(raw), list(msg_off), list(extra), ingested, texts)


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


def _event_parts(events: list[Event]) -> list[Rows]:
    """Event objects as Rows, one per run of the same source."""
    parts: list[Rows] = []
    i = 0
    while i < len(events):
        source = events[i].source_id
        j = i + 1
        while j < len(events) and events[j].source_id == source:
            j += 1
        parts.append(build_rows(source, events[i:j]))
        i = j
    return parts


def write_batch(conn: StoreConnection, sources: SourceIds, batch: Batch) -> tuple[int, int]:
    """Apply one batch in one transaction; returns (first_id, last_id) of its events."""
    ingested = now_us()
    parts = _event_parts(batch.events) + batch.parts if batch.events else batch.parts
    code = conn.terms.codes.__getitem__
    for part in parts:
        # Rows from a parse process come pickled: unpickled before the lock,
        # while the rule process may hold it (kept unpacked for whoever is
        # told of the commit).
        part.rows = part.unpacked()
    with conn.write_lock:  # see store.db._write_lock
        conn.execute("BEGIN IMMEDIATE")
        try:
            first_id = (conn.execute("SELECT max(id) FROM events").fetchone()[0] or 0) + 1
            n = 0
            texts: dict[int, bytes] = {}  # raw block id -> its content (for the chain)
            per_source: dict[int, list[int]] = {}
            for part in parts:
                if not part.count:
                    continue
                sid = sources.get(part.source)
                rows = part.unpacked()
                if len(rows) != part.count:
                    raise StoreError(f"{part.source}: {len(rows)} rows for a count of {part.count}")
                insert_rows(conn, code, sid, first_id + n, rows, [ingested] * len(rows), texts)
                n += part.count
                stat = per_source.get(sid)
                if stat is None:
                    per_source[sid] = [part.count, part.unparsed, part.truncated, part.max_ts]
                else:
                    stat[0] += part.count
                    stat[1] += part.unparsed
                    stat[2] += part.truncated
                    stat[3] = max(stat[3], part.max_ts)
            last_id = first_id + n - 1
            for name in set(batch.lines) | {s for s, _ in batch.checkpoints.values()}:
                sources.get(name)
            for sid, (count, unparsed, truncated, last_ts) in per_source.items():
                _bump_stats(conn, sid, events=count, unparsed=unparsed, truncated=truncated,
                            last_ts=last_ts, now=ingested)
            for name, count in batch.lines.items():
                _bump_stats(conn, sources.get(name), lines=count, nbytes=batch.bytes.get(name, 0),
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
            if n:  # the batch's block in the hash chain
                seal_events(conn, first_id, last_id, [texts[k] for k in sorted(texts)])
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            conn.terms.rollback()
            raise
    conn.terms.commit()
    for i, ev in enumerate(batch.events):
        ev.id = first_id + i
        ev.ingested_at = ingested
    batch.ingested_at = ingested
    batch.written = [p for p in parts if p.count]
    return first_id, last_id


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

    def __init__(
        self,
        path: str,
        *,
        max_pending: int = 2,
        on_commit: Callable[[int, Batch], None] | None = None,
    ) -> None:
        self.path = path
        # Told (first id, batch) in the writer thread after each commit with
        # events; it must be quick (the rule worker queues the batch).
        self.on_commit = on_commit
        self._conn = open_db(path, writer=True)
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
                    n = len(item)
                    self.events_written += n
                    if n:
                        self.last_id = last
                        if self.on_commit is not None:
                            self.on_commit(first, item)
            except BaseException as exc:  # noqa: BLE001 - reported to the caller
                self._error = exc
            with self._done:
                self._applied += 1
                self._done.notify_all()
