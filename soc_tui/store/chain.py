"""Tamper evidence: the hash chain over events, alerts, incidents, notes and the audit trail.

Owns: the `chain` and `chain_items` tables, the chain key (a secret kept
outside the database file: `key_path`), sealing (`seal_events`, `seal_rows`,
`anchor_events`, all run inside the caller's write transaction and never
BEGIN or COMMIT) and `verify`. Must not: parse logs, know the triage
workflow or print.

Every committed batch of events and every sealed set of rows gets one block
`(seq, kind, first_id, last_id, digest, prev_hash, hash)` where
`hash = HMAC-SHA256(key, f"{seq}|{kind}|{first_id}|{last_id}|{digest}|{prev_hash}")`
and `prev_hash` is the previous block's hash (64 zeros for the first).
Kinds:

- "events": `digest` covers every column of the events rows first_id..last_id
  (coded columns as their codes), their raw line, message offset, `extra` and
  ingest time (decoded from `raw_blocks`, so re-compressing a block changes
  nothing but editing it does), and the `terms` rows the batch added
  (`aux` is the highest term id then): editing a term's text is caught at the
  first block that used it.
- "audit", "notes" (append-only) and "alerts", "incidents" (mutable): one
  `chain_items` row per sealed row holds the digest of the row's after-image;
  the block's digest is over those items. `verify` checks every current row
  equals its latest sealed image, every sealed row still exists and no row
  was never sealed.
- "anchor": written before pruning (`anchor_events`): events blocks up to
  `last_id` may have lost their rows; `digest` is the hash of the last such
  block. The pruner must keep every raw block that holds an event above the
  anchor.

Only a seal recorded off the box (`verify(seal=(seq, hash))`) catches the
deletion of the newest blocks.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import sqlite3
import threading
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Sequence

from soc_tui.model import now_us
from soc_tui.store.blocks import block_text, decode_block
from soc_tui.store.db import StoreError

KEY_ENV = "SOC_TUI_KEY_FILE"
KEY_BYTES = 32
ZERO_HASH = "0" * 64
EVENTS = "events"
ANCHOR = "anchor"
APPEND_ONLY = ("audit", "notes")
MUTABLE = ("alerts", "incidents")
ROW_TABLES = APPEND_ONLY + MUTABLE  # the whitelist of tables seal_rows takes
# The events columns in the digest, in this order (coded ones as codes).
EVENT_COLUMNS = (
    "id", "ts", "source", "host", "app", "pid", "level", "action", "outcome", "user",
    "target_user", "src_ip", "src_port", "http_method", "url", "http_status", "bytes",
    "user_agent", "referrer", "message", "repeat", "flags",
)
# A rowid range scans in id order (a subquery with ORDER BY costs 20% more).
_EVENTS_JSON = (
    "SELECT json_group_array(json_array(" + ", ".join(EVENT_COLUMNS) + "))"
    " FROM events WHERE id BETWEEN ? AND ?"
)
_TERMS_JSON = (
    "SELECT json_group_array(json_array(id, value))"
    " FROM (SELECT id, value FROM terms WHERE id > ? AND id <= ? ORDER BY id)"
)


def create_chain_tables(conn: sqlite3.Connection) -> None:
    """Schema of the chain (a migration step; no transaction of its own)."""
    conn.execute(
        # digest, prev_hash, hash: 32-byte SHA-256 / HMAC values (a live tail
        # seals a block per commit, several a second: the row must stay small)
        "CREATE TABLE chain (seq INTEGER PRIMARY KEY, kind TEXT NOT NULL, first_id INTEGER NOT NULL,"
        " last_id INTEGER NOT NULL, digest BLOB NOT NULL, prev_hash BLOB NOT NULL, hash BLOB NOT NULL,"
        " created_at INTEGER NOT NULL,"
        " aux INTEGER)  -- events: highest terms.id sealed so far"
    )
    conn.execute(
        "CREATE TABLE chain_items (seq INTEGER NOT NULL, row_id INTEGER NOT NULL,"
        " digest BLOB NOT NULL, PRIMARY KEY (seq, row_id)) WITHOUT ROWID"
    )


# --- the key ------------------------------------------------------------------

_KEYS: dict[str, bytes] = {}
_KEYS_GUARD = threading.Lock()


def key_path() -> Path:
    """Where the chain key lives: env SOC_TUI_KEY_FILE, else chain.key next to
    the config ($XDG_CONFIG_HOME/soc-tui/ or ~/.config/soc-tui/)."""
    env = os.environ.get(KEY_ENV)
    if env:
        return Path(env)
    base = os.environ.get("XDG_CONFIG_HOME") or os.path.join(Path.home(), ".config")
    return Path(base) / "soc-tui" / "chain.key"


def load_key(*, create: bool) -> bytes:
    """The chain key, cached per process and path; with create=True a missing
    key file is created (mode 0600, 32 random bytes as hex)."""
    path = key_path()
    cache_key = os.path.abspath(path)
    with _KEYS_GUARD:
        key = _KEYS.get(cache_key)
        if key is None:
            key = _read_key(path) if not create or path.exists() else _create_key(path)
            _KEYS[cache_key] = key
        return key


def _read_key(path: Path) -> bytes:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise StoreError(
            f"cannot read the chain key {path}: {exc.strerror or exc} (set {KEY_ENV} to its file)"
        ) from exc
    text = data.strip()
    try:
        key = bytes.fromhex(text.decode("ascii"))
    except (UnicodeDecodeError, ValueError):
        key = data
    if len(key) < 16:
        raise StoreError(f"the chain key {path} is too short ({len(key)} bytes)")
    return key


def _create_key(path: Path) -> bytes:
    """Write a new key atomically (a temporary file linked into place, so a
    concurrent process reads either no file or the whole key)."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}")
    fd = os.open(tmp, os.O_CREAT | os.O_WRONLY | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w") as fh:
            fh.write(os.urandom(KEY_BYTES).hex() + "\n")
        try:
            os.link(tmp, path)
        except FileExistsError:
            pass  # another process won: use its key
    finally:
        tmp.unlink(missing_ok=True)
    return _read_key(path)


def _hex(value: Any) -> str:
    """A stored hash as hex (whatever type someone wrote into the column)."""
    if isinstance(value, bytes):
        return value.hex()
    return str(value).encode("utf-8", "surrogatepass").hex()


def block_hash(key: bytes, seq: int, kind: str, first_id: int, last_id: int, digest: str,
               prev_hash: str) -> str:
    msg = f"{seq}|{kind}|{first_id}|{last_id}|{digest}|{prev_hash}"
    return hmac.new(key, msg.encode("utf-8", "surrogateescape"), hashlib.sha256).hexdigest()


def _append(conn: sqlite3.Connection, kind: str, first_id: int, last_id: int, digest: str,
            aux: int | None = None) -> int:
    key = load_key(create=True)
    row = conn.execute("SELECT seq, CAST(hash AS BLOB) FROM chain ORDER BY seq DESC LIMIT 1").fetchone()
    seq, prev = (row[0] + 1, _hex(row[1])) if row else (1, ZERO_HASH)
    h = block_hash(key, seq, kind, first_id, last_id, digest, prev)
    conn.execute(
        "INSERT INTO chain (seq, kind, first_id, last_id, digest, prev_hash, hash, created_at, aux)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (seq, kind, first_id, last_id, bytes.fromhex(digest), bytes.fromhex(prev),
         bytes.fromhex(h), now_us(), aux),
    )
    return int(seq)


# --- events -------------------------------------------------------------------


def _stored_raw_image(conn: sqlite3.Connection, first_id: int, last_id: int) -> list[bytes]:
    """The raw blocks holding events first_id..last_id as write_batch hashed
    them: each block's block_text cut after last_id (a block a later batch
    appended to is read as it was when this batch committed)."""
    texts: list[bytes] = []
    rows = conn.execute(
        "SELECT id, n, data FROM raw_blocks WHERE id <= ? AND id + n > ? ORDER BY id",
        (last_id, first_id),
    )
    for bid, n, data in rows:
        try:
            b = decode_block(bid, data)
        except (ValueError, zlib.error, KeyError, TypeError) as exc:
            raise _BadRaw(f"raw block {bid} does not decode: {exc}") from exc
        if len(b) != n:
            raise _BadRaw(f"raw block {bid} holds {len(b)} events, its row says {n}")
        end = min(last_id, bid + n - 1) - bid + 1
        texts.append(block_text(b.raw[:end], b.msg_off[:end], b.extra[:end], b.ingested[:end]))
    return texts


class _BadRaw(Exception):
    """A raw block that cannot be read back."""


def _events_digest(conn: sqlite3.Connection, first_id: int, last_id: int, terms_from: int,
                   terms_to: int, raw: Sequence[bytes]) -> str:
    h = hashlib.sha256(f"events|{first_id}|{last_id}|terms|{terms_from}|{terms_to}\n".encode())
    h.update(conn.execute(_EVENTS_JSON, (first_id, last_id)).fetchone()[0].encode(
        "utf-8", "surrogatepass"))
    for text in raw:
        h.update(b"\n")
        h.update(text)
    h.update(b"\n")
    h.update(conn.execute(_TERMS_JSON, (terms_from, terms_to)).fetchone()[0].encode(
        "utf-8", "surrogatepass"))
    return h.hexdigest()


def _terms_sealed(conn: sqlite3.Connection, before_seq: int | None = None) -> int:
    """The highest terms id an events block sealed (before block before_seq)."""
    row = conn.execute(
        "SELECT aux FROM chain WHERE kind = ? AND seq < ? ORDER BY seq DESC LIMIT 1",
        (EVENTS, before_seq if before_seq is not None else 1 << 62),
    ).fetchone()
    return int(row[0] or 0) if row else 0


def seal_events(conn: sqlite3.Connection, first_id: int, last_id: int,
                raw: Sequence[bytes] | None = None) -> int | None:
    """Append the block of the events first_id..last_id (just written, in the
    caller's transaction); returns its seq (None: no events).

    `raw`: the block_text of every raw block the batch wrote, in id order,
    when the caller has them (write_batch: append_raw's `texts`); otherwise
    they are read back from raw_blocks."""
    if last_id < first_id:
        return None
    if raw is None:
        raw = _stored_raw_image(conn, first_id, last_id)
    terms_from = _terms_sealed(conn)
    terms_to = conn.execute("SELECT max(id) FROM terms").fetchone()[0] or 0
    digest = _events_digest(conn, first_id, last_id, terms_from, terms_to, raw)
    return _append(conn, EVENTS, first_id, last_id, digest, terms_to)


def anchor_events(conn: sqlite3.Connection, upto_id: int) -> int | None:
    """Before pruning: append an anchor saying the events blocks that end at or
    below `upto_id` may be gone. Deletes nothing. Returns the anchor's seq,
    or None when no events block ends at or below upto_id."""
    row = conn.execute(
        "SELECT last_id, CAST(hash AS BLOB) FROM chain WHERE kind = ? AND last_id <= ?"
        " ORDER BY seq DESC LIMIT 1",
        (EVENTS, upto_id),
    ).fetchone()
    if row is None:
        return None
    return _append(conn, ANCHOR, 1, int(row[0]), _hex(row[1]))


# --- other rows ---------------------------------------------------------------


def _columns(conn: sqlite3.Connection, table: str) -> list[str]:
    if table not in ROW_TABLES:
        raise ValueError(f"not a sealed table: {table}")
    return [r[1] for r in conn.execute(f"PRAGMA table_info({table})")]


def _row_images(conn: sqlite3.Connection, table: str, ids: Sequence[int] | None) -> dict[int, str]:
    """row id -> digest of the row's current after-image (every row when ids is None)."""
    cols = _columns(conn, table)  # also checks the whitelist
    sql = f"SELECT id, json_array({', '.join(cols)}) FROM {table}"
    if ids is None:
        rows: Iterable[tuple[int, str]] = conn.execute(sql)
    else:
        rows = []
        for i in range(0, len(ids), 500):
            part = ids[i:i + 500]
            rows.extend(conn.execute(f"{sql} WHERE id IN ({','.join('?' * len(part))})", part))
    return {
        int(rid): hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()
        for rid, text in rows
    }


def _items_digest(kind: str, items: Iterable[tuple[int, str]]) -> str:
    h = hashlib.sha256(kind.encode())
    for rid, digest in sorted(items):
        h.update(f"\n{rid}:{digest}".encode())
    return h.hexdigest()


def seal_rows(conn: sqlite3.Connection, table: str, ids: Iterable[int]) -> int | None:
    """Append a block with the after-images of rows `ids` of `table` (one of
    ROW_TABLES), written in the caller's transaction; returns its seq (None:
    no ids)."""
    wanted = sorted(set(int(i) for i in ids))
    if not wanted:
        return None
    images = _row_images(conn, table, wanted)
    missing = [i for i in wanted if i not in images]
    if missing:
        raise StoreError(f"cannot seal {table} rows that do not exist: {missing[:5]}")
    seq = _append(conn, table, wanted[0], wanted[-1], _items_digest(table, images.items()))
    conn.executemany(
        "INSERT INTO chain_items (seq, row_id, digest) VALUES (?, ?, ?)",
        [(seq, rid, bytes.fromhex(d)) for rid, d in images.items()],
    )
    return seq


# --- verify -------------------------------------------------------------------


@dataclass
class VerifyReport:
    """What `verify` found: `problems` (one line each, first bad block first;
    then database-level checks), the latest seal to record off the box."""

    ok: bool = True
    problems: list[str] = field(default_factory=list)
    latest: tuple[int, str] | None = None
    blocks: int = 0
    first_bad: int | None = None  # seq of the first bad block
    checked: dict[str, int] = field(default_factory=dict)  # kind -> blocks

    def lines(self) -> list[str]:
        kinds = ", ".join(f"{n} {k}" for k, n in sorted(self.checked.items()))
        out = [f"chain: {self.blocks} blocks" + (f" ({kinds})" if kinds else "")]
        if self.ok:
            out.append("verify: OK (chain, rows, SQLite integrity, FTS index)")
        else:
            out.append(f"verify: FAILED, {len(self.problems)} problem(s):")
            out.extend(f"  {p}" for p in self.problems)
        if self.latest is not None:
            seq, h = self.latest
            out.append(f"latest seal: {seq}:{h}  (record it off this machine;"
                       " check later with --seal)")
        return out


@dataclass
class _Block:
    seq: int
    kind: str
    first_id: int
    last_id: int
    digest: str
    prev_hash: str
    hash: str
    aux: int | None

    def name(self) -> str:
        if self.kind == ANCHOR:
            return f"block {self.seq} (anchor: events up to {self.last_id})"
        ids = str(self.first_id) if self.first_id == self.last_id else f"{self.first_id}-{self.last_id}"
        return f"block {self.seq} ({self.kind} {ids})"


class _Problems:
    """Problems keyed by the block they belong to (None: the database)."""

    def __init__(self) -> None:
        self.by_block: list[tuple[int, int, str]] = []  # (seq, order, text)
        self.general: list[str] = []

    def add(self, block: _Block | None, text: str) -> None:
        if block is None:
            self.general.append(text)
        else:
            self.by_block.append((block.seq, len(self.by_block), f"{block.name()}: {text}"))

    def sorted(self) -> list[str]:
        return [t for _, _, t in sorted(self.by_block)] + self.general


def verify(conn: sqlite3.Connection, *, seal: tuple[int, str] | None = None) -> VerifyReport:
    """Recompute the chain and check every sealed table against it, run
    SQLite's integrity check and the FTS index check, and compare the
    recorded `seal` (seq, hash) when given. Changes nothing (the FTS check
    is an INSERT of a command, run in autocommit)."""
    key = load_key(create=False)
    factory = conn.text_factory
    # Bytes an attacker wrote into a TEXT column need not be UTF-8: read them
    # anyway (they then hash differently and fail where they belong).
    conn.text_factory = lambda data: data.decode("utf-8", "surrogateescape")
    try:
        return _verify(conn, key, seal)
    finally:
        conn.text_factory = factory


def _verify(conn: sqlite3.Connection, key: bytes, seal: tuple[int, str] | None) -> VerifyReport:
    blocks = [_Block(seq, kind, first, last, _hex(d), _hex(p), _hex(h), aux)
              for seq, kind, first, last, d, p, h, aux in conn.execute(
                  "SELECT seq, kind, first_id, last_id, CAST(digest AS BLOB),"
                  " CAST(prev_hash AS BLOB), CAST(hash AS BLOB), aux"
                  " FROM chain ORDER BY seq")]
    found = _Problems()
    _check_links(key, blocks, found)
    _check_events(conn, blocks, found)
    for table in ROW_TABLES:
        _check_rows(conn, table, blocks, found)
    if seal is not None:
        _check_seal(blocks, seal, found)
    _check_sqlite(conn, found)
    report = VerifyReport(blocks=len(blocks))
    for b in blocks:
        report.checked[b.kind] = report.checked.get(b.kind, 0) + 1
    if blocks:
        report.latest = (blocks[-1].seq, blocks[-1].hash)
    report.problems = found.sorted()
    report.ok = not report.problems
    if found.by_block:
        report.first_bad = min(seq for seq, _, _ in found.by_block)
    return report


def _check_links(key: bytes, blocks: list[_Block], found: _Problems) -> None:
    prev_seq, prev_hash = 0, ZERO_HASH
    for b in blocks:
        if b.seq != prev_seq + 1:
            gone = (f"block {prev_seq + 1}" if b.seq == prev_seq + 2
                    else f"blocks {prev_seq + 1}-{b.seq - 1}")
            found.add(b, f"{gone} before it missing from the chain")
        elif b.prev_hash != prev_hash:
            found.add(b, "prev_hash does not match the previous block's hash")
        if b.hash != block_hash(key, b.seq, b.kind, b.first_id, b.last_id, b.digest, b.prev_hash):
            found.add(b, "hash mismatch: block record changed (or wrong key)")
        prev_seq, prev_hash = b.seq, b.hash


def _check_events(conn: sqlite3.Connection, blocks: list[_Block], found: _Problems) -> None:
    events = [b for b in blocks if b.kind == EVENTS]
    anchors = [b for b in blocks if b.kind == ANCHOR]
    pruned_upto = 0
    if anchors:
        a = anchors[-1]
        pruned_upto = a.last_id
        target = [b for b in events if b.last_id == a.last_id and b.seq < a.seq]
        if not target or target[-1].hash != a.digest:
            found.add(a, "does not match the events block it anchors")
    terms_from = 0
    expect = None
    for b in events:
        if expect is not None and b.first_id != expect:
            found.add(b, f"events do not continue the previous block (expected {expect} first)")
        expect = b.last_id + 1
        have = conn.execute("SELECT count(*) FROM events WHERE id BETWEEN ? AND ?",
                            (b.first_id, b.last_id)).fetchone()[0]
        if b.last_id <= pruned_upto and have == 0:
            terms_from = b.aux or 0
            continue  # pruned under the anchor
        try:
            raw = _stored_raw_image(conn, b.first_id, b.last_id)
        except _BadRaw as exc:
            found.add(b, str(exc))
            terms_from = b.aux or 0
            continue
        if _events_digest(conn, b.first_id, b.last_id, terms_from, b.aux or 0, raw) != b.digest:
            size = b.last_id - b.first_id + 1
            why = (f"{size - have} event row(s) deleted" if have < size else
                   "rows, raw lines or terms changed")
            found.add(b, f"digest mismatch: {why}")
        terms_from = b.aux or 0
    last = events[-1] if events else None
    lo, hi = (events[0].first_id, last.last_id) if last else (1, 0)
    stray, low = conn.execute(
        "SELECT count(*), min(id) FROM events WHERE id < ? OR id > ?", (lo, hi)
    ).fetchone()
    if stray:
        text = f"{stray} event row(s) never sealed (from id {low})"
        found.add(last, text)
    extra_terms = conn.execute("SELECT count(*) FROM terms WHERE id > ?", (terms_from,)).fetchone()[0]
    if extra_terms:
        text = f"{extra_terms} terms row(s) never sealed"
        found.add(last, text)


def _check_rows(conn: sqlite3.Connection, table: str, blocks: list[_Block], found: _Problems) -> None:
    mine = {b.seq: b for b in blocks if b.kind == table}
    items: dict[int, list[tuple[int, str]]] = {seq: [] for seq in mine}
    for seq, rid, digest in conn.execute(
        "SELECT i.seq, i.row_id, CAST(i.digest AS BLOB) FROM chain_items i JOIN chain c ON c.seq = i.seq"
        " WHERE c.kind = ? ORDER BY i.seq", (table,)
    ):
        items[seq].append((rid, _hex(digest)))
    latest: dict[int, tuple[_Block, str]] = {}
    for seq, b in mine.items():
        its = items[seq]
        ids = [rid for rid, _ in its]
        if not its or _items_digest(table, its) != b.digest or (min(ids), max(ids)) != (b.first_id, b.last_id):
            found.add(b, "digest mismatch: its sealed row images changed")
        for rid, digest in its:
            latest[rid] = (b, digest)
    current = _row_images(conn, table, None)
    for rid, (b, digest) in sorted(latest.items()):
        now = current.get(rid)
        if now is None:
            found.add(b, f"{table} row {rid} deleted")
        elif now != digest:
            found.add(b, f"{table} row {rid} changed since it was sealed")
    unsealed = sorted(set(current) - set(latest))
    if unsealed:
        after = [b for b in mine.values() if b.last_id >= unsealed[0]]
        owner = after[0] if after else (max(mine.values(), key=lambda x: x.seq) if mine else None)
        text = f"{len(unsealed)} {table} row(s) never sealed (ids {_ids(unsealed)})"
        found.add(owner, text)


def _ids(ids: list[int]) -> str:
    return ", ".join(map(str, ids[:5])) + (", ..." if len(ids) > 5 else "")


def _check_seal(blocks: list[_Block], seal: tuple[int, str], found: _Problems) -> None:
    seq, h = seal
    match = [b for b in blocks if b.seq == seq]
    if not match:
        newest = blocks[-1].seq if blocks else 0
        found.general.append(
            f"recorded seal {seq}: block {seq} is missing (the chain ends at {newest}):"
            " the newest rows were deleted")
    elif match[0].hash != h.lower():
        found.add(match[0], "hash differs from the recorded seal")


def _check_sqlite(conn: sqlite3.Connection, found: _Problems) -> None:
    rows = [r[0] for r in conn.execute("PRAGMA integrity_check")]
    if rows != ["ok"]:
        found.general.append("SQLite integrity_check: " + "; ".join(rows[:5]))
    try:
        # rank 1: also compare the index with its content (the default only from SQLite 3.44)
        conn.execute("INSERT INTO events_fts(events_fts, rank) VALUES('integrity-check', 1)")
    except sqlite3.DatabaseError as exc:
        found.general.append(f"FTS index check failed: {exc}")
