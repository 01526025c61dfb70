"""Raw blocks: the raw lines, message offsets, `extra` and ingest times of events.

Owns: the `raw_blocks` table's content. A block covers up to BLOCK_EVENTS
events with contiguous ids, `id` (its first event id) .. `id + n - 1`. Its
`data` is zlib (level 6) of UTF-8 JSON, column-wise:

    {"raw": [line, ...], "msg_off": [offset or null, ...],
     "extra": [json text or null, ...], "ingested": [[count, µs], ...]}

`msg_off` is where the message starts in the raw line when the events row
stores no message of its own (most lines: the message is the raw line's tail).

JSON escapes every character a log line can hold (NUL, newlines, U+FFFD; lone
surrogates pass through as `surrogatepass` UTF-8), and a column of similar
lines compresses well. `ingested` is run-length: each committed batch adds one
run, so every event keeps the exact time its batch was stored. The writer
appends to the newest block while it has fewer than BLOCK_EVENTS events
(decode, extend, re-compress, in the batch's transaction), so a tailed
database written in tiny batches ends up in full blocks too. The block row's
own `ingested_at` is the newest of its runs.

Also owns the per-connection cache of decoded blocks that readers and the
`event_raw(id)` and `event_message(id)` SQL functions share.
Must not: know about the other columns of an event.
"""

from __future__ import annotations

import json
import sqlite3
import zlib
from dataclasses import dataclass
from itertools import groupby

BLOCK_EVENTS = 256
ZLIB_LEVEL = 6
CACHED_BLOCKS = 8


@dataclass(slots=True)
class Block:
    """One decoded block: parallel lists, index = event id - first."""

    first: int
    raw: list[str]
    msg_off: list[int | None]
    extra: list[str | None]
    ingested: list[int]

    def __len__(self) -> int:
        return len(self.raw)


def block_text(
    raw: list[str], msg_off: list[int | None], extra: list[str | None], ingested: list[int]
) -> bytes:
    """A block's content before compression (UTF-8 JSON): what `data` holds
    zlib'ed, and what the hash chain hashes (the same values give the same
    bytes however the blob was compressed)."""
    runs = [[len(list(group)), us] for us, group in groupby(ingested)]
    text = json.dumps(
        {"raw": raw, "msg_off": msg_off, "extra": extra, "ingested": runs},
        ensure_ascii=False, separators=(",", ":"),
    )
    return text.encode("utf-8", "surrogatepass")


def encode_block(
    raw: list[str], msg_off: list[int | None], extra: list[str | None], ingested: list[int],
    texts: dict[int, bytes] | None = None, first: int = 0,
) -> bytes:
    """The `data` of a block; with `texts`, also sets texts[first] to its block_text."""
    text = block_text(raw, msg_off, extra, ingested)
    if texts is not None:
        texts[first] = text
    return zlib.compress(text, ZLIB_LEVEL)


def decode_block(first: int, data: bytes) -> Block:
    doc = json.loads(zlib.decompress(data).decode("utf-8", "surrogatepass"))
    ingested = [us for count, us in doc["ingested"] for _ in range(count)]
    block = Block(first, doc["raw"], doc["msg_off"], doc["extra"], ingested)
    if not len(block) == len(block.msg_off) == len(block.extra) == len(block.ingested):
        raise ValueError(f"raw block {first} is inconsistent")
    return block


def append_raw(
    conn: sqlite3.Connection,
    first_id: int,
    raw: list[str],
    msg_off: list[int | None],
    extra: list[str | None],
    ingested: list[int],
    texts: dict[int, bytes] | None = None,
) -> None:
    """Store raw, msg_off, extra and ingest time of the events first_id, first_id + 1, ...

    Inside the caller's write transaction. Fills the newest block first when
    it ends right before first_id, then writes new blocks. With `texts`, sets
    texts[block id] to the block_text of every block written (the hash chain's
    input: see soc_tui.store.chain)."""
    n = len(raw)
    pos = 0
    row = conn.execute("SELECT id, n, data FROM raw_blocks ORDER BY id DESC LIMIT 1").fetchone()
    if row is not None and row[1] < BLOCK_EVENTS and row[0] + row[1] == first_id:
        block = decode_block(row[0], row[2])
        pos = min(BLOCK_EVENTS - len(block), n)
        block.raw.extend(raw[:pos])
        block.msg_off.extend(msg_off[:pos])
        block.extra.extend(extra[:pos])
        block.ingested.extend(ingested[:pos])
        data = encode_block(block.raw, block.msg_off, block.extra, block.ingested, texts, block.first)
        conn.execute(
            "UPDATE raw_blocks SET n = ?, ingested_at = ?, data = ? WHERE id = ?",
            (len(block), max(block.ingested), data, block.first),
        )
    new = []
    for start in range(pos, n, BLOCK_EVENTS):
        end = min(start + BLOCK_EVENTS, n)
        times = ingested[start:end]
        data = encode_block(raw[start:end], msg_off[start:end], extra[start:end], times, texts,
                            first_id + start)
        new.append((first_id + start, end - start, max(times), data))
    conn.executemany("INSERT INTO raw_blocks (id, n, ingested_at, data) VALUES (?, ?, ?, ?)", new)


class BlockCache:
    """The few most recently used decoded blocks of one connection.

    Valid while event ids are not reused: a block only ever grows, so a cached
    one is right for every event it holds. StoreReader clears it at the start
    of each call, so one call decodes each block it needs once."""

    def __init__(self, conn: sqlite3.Connection, size: int = CACHED_BLOCKS) -> None:
        self._conn = conn
        self._size = size
        self._blocks: list[Block] = []  # most recently used first

    def clear(self) -> None:
        self._blocks.clear()

    def block(self, event_id: int) -> Block | None:
        """The block holding event_id, or None when no block holds it."""
        blocks = self._blocks
        for i, b in enumerate(blocks):
            if 0 <= event_id - b.first < len(b.raw):
                if i:
                    blocks.insert(0, blocks.pop(i))
                return b
        row = self._conn.execute(
            "SELECT id, n, data FROM raw_blocks WHERE id <= ? ORDER BY id DESC LIMIT 1", (event_id,)
        ).fetchone()
        if row is None or event_id >= row[0] + row[1]:
            return None
        b = decode_block(row[0], row[2])
        blocks.insert(0, b)
        del blocks[self._size:]
        return b

    def raw(self, event_id: int) -> str | None:
        """The raw line of an event (the `event_raw(id)` SQL function)."""
        b = self.block(event_id)
        return None if b is None else b.raw[event_id - b.first]

    def message(self, event_id: int) -> str | None:
        """The message of an event whose row stores none: the raw line from its
        offset on (the `event_message(id)` SQL function)."""
        b = self.block(event_id)
        if b is None:
            return None
        off = b.msg_off[event_id - b.first]
        return None if off is None else b.raw[event_id - b.first][off:]
