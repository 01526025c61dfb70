"""Retention: pruning old events without breaking the hash chain.

Owns: `prune` (what `soc-tui prune` and the collector's periodic run call).
It removes whole sealed blocks of events from the oldest on: those whose
newest event is older than `retention.days`, then, while the database file is
bigger than `retention.max_db_mb`, the next oldest. A block that holds an
event an open alert or any incident cites (evidence of a linked alert, a
pinned event) is kept whole, so it still verifies. Each step first appends an
anchor to the chain (`chain.anchor_events`: blocks up to there may be gone),
then deletes the events rows, their FTS entries and the raw blocks no kept
event needs, in one write transaction, and records an audit row. Space goes
back to the file system with an incremental vacuum (the database is created
with auto_vacuum=INCREMENTAL). Must not: import Textual.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from typing import Any

from soc_tui.model import now_us
from soc_tui.store.blocks import BLOCK_EVENTS
from soc_tui.store.chain import EVENTS, anchor_events
from soc_tui.store.db import write_transaction
from soc_tui.store.triage import audit

STEP_EVENTS = 50_000  # events removed per write transaction (keeps the writer waiting briefly)


@dataclass
class PruneResult:
    events: int = 0  # event rows deleted
    blocks: int = 0  # chain blocks emptied
    kept: int = 0  # chain blocks kept because something cites them
    bytes_before: int = 0
    bytes_after: int = 0

    def line(self) -> str:
        mb = lambda n: f"{n / 1e6:.1f} MB"  # noqa: E731
        return (f"pruned {self.events} events in {self.blocks} blocks"
                f" ({self.kept} kept: cited by alerts or incidents);"
                f" database {mb(self.bytes_before)} -> {mb(self.bytes_after)}")


def db_bytes(conn: Any) -> int:
    """The database's size: its pages in use plus the WAL."""
    pages = conn.execute("PRAGMA page_count").fetchone()[0]
    free = conn.execute("PRAGMA freelist_count").fetchone()[0]
    size = conn.execute("PRAGMA page_size").fetchone()[0]
    wal = 0
    path = conn.execute("PRAGMA database_list").fetchone()[2]
    if path:
        try:
            wal = os.path.getsize(path + "-wal")
        except OSError:
            pass
    return (pages - free) * size + wal


def _cited(conn: Any, lo: int, hi: int) -> bool:
    """Whether an open alert or any incident cites an event in lo..hi."""
    row = conn.execute(
        "SELECT 1 FROM alert_events ae JOIN alerts a ON a.id = ae.alert_id"
        " WHERE ae.event_id BETWEEN ? AND ? AND (a.status != 'closed' OR a.incident_id IS NOT NULL)"
        " UNION ALL SELECT 1 FROM incident_events WHERE event_id BETWEEN ? AND ? LIMIT 1",
        (lo, hi, lo, hi)).fetchone()
    return row is not None


def _blocks(conn: Any) -> list[tuple[int, int, int]]:
    """The events blocks that still have rows: (first_id, last_id, newest ts), oldest first."""
    out = []
    for first, last in conn.execute(
        "SELECT first_id, last_id FROM chain WHERE kind = ? ORDER BY seq", (EVENTS,)
    ).fetchall():
        newest = conn.execute("SELECT max(ts) FROM events WHERE id BETWEEN ? AND ?",
                              (first, last)).fetchone()[0]
        if newest is not None:
            out.append((first, last, newest))
    return out


def prune(conn: Any, actor: str, *, before_ts: int | None = None,
          max_bytes: int | None = None) -> PruneResult:
    """Remove old blocks of events (see the module docstring); returns what was done."""
    res = PruneResult(bytes_before=db_bytes(conn))
    blocks = _blocks(conn)
    total = conn.execute("SELECT count(*) FROM events").fetchone()[0] or 1
    need = 0
    if max_bytes is not None and res.bytes_before > max_bytes:
        # Events to drop, at the database's average cost per event.
        need = int((res.bytes_before - max_bytes) / max(1, res.bytes_before / total)) + 1
    chosen: list[tuple[int, int]] = []
    dropped = 0
    for first, last, newest in blocks[:-1]:  # never the block being appended to
        old = before_ts is not None and newest < before_ts
        if not old and dropped >= need:
            break
        chosen.append((first, last))
        dropped += last - first + 1
    i = 0
    while i < len(chosen):
        step, n = [], 0
        while i < len(chosen) and n < STEP_EVENTS:
            step.append(chosen[i])
            n += chosen[i][1] - chosen[i][0] + 1
            i += 1
        _prune_step(conn, actor, step, res)
    if res.events:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        conn.execute("PRAGMA incremental_vacuum")
    res.bytes_after = db_bytes(conn)
    return res


def _prune_step(conn: Any, actor: str, step: list[tuple[int, int]], res: PruneResult) -> None:
    def apply() -> None:
        if anchor_events(conn, step[-1][1]) is None:
            return
        deleted = emptied = kept = 0
        for first, last in step:
            if _cited(conn, first, last):
                kept += 1
                continue
            conn.execute(
                "INSERT INTO events_fts (events_fts, rowid, message)"
                " SELECT 'delete', id, message FROM events_text WHERE id BETWEEN ? AND ?",
                (first, last))
            deleted += conn.execute("DELETE FROM events WHERE id BETWEEN ? AND ?",
                                    (first, last)).rowcount
            emptied += 1
        # A raw block goes when no event it holds is left.
        lo, hi = step[0][0] - BLOCK_EVENTS, step[-1][1]
        for bid, n in conn.execute(
            "SELECT id, n FROM raw_blocks WHERE id BETWEEN ? AND ?", (lo, hi)
        ).fetchall():
            if conn.execute("SELECT 1 FROM events WHERE id BETWEEN ? AND ? LIMIT 1",
                            (bid, bid + n - 1)).fetchone() is None:
                conn.execute("DELETE FROM raw_blocks WHERE id = ?", (bid,))
        audit(conn, actor, "prune", "events", f"{step[0][0]}-{step[-1][1]}", None,
              {"deleted": deleted, "blocks": emptied, "kept": kept}, now_us())
        res.events += deleted
        res.blocks += emptied
        res.kept += kept

    try:
        write_transaction(conn, apply)
    finally:
        conn.blocks.clear()



class PeriodicPrune:
    """Runs `prune` in a thread every `every` seconds (first after `first`)
    with its own connection: the collector's retention. Failures are kept in
    `last_error` and retried at the next period."""

    def __init__(self, db: str, actor: str, *, days: int | None, max_db_mb: int | None,
                 every: float = 3600.0, first: float = 60.0) -> None:
        self.db, self.actor, self.days, self.max_db_mb = db, actor, days, max_db_mb
        self.every, self.first = every, first
        self.runs = 0
        self.last: PruneResult | None = None
        self.last_error = ""
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="soc-tui-prune", daemon=True)

    def start(self) -> PeriodicPrune:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        from soc_tui.store.db import open_db

        wait = self.first
        while not self._stop.wait(wait):
            wait = self.every
            try:
                conn = open_db(self.db, create=False)
                try:
                    self.last = prune_by_policy(conn, self.actor, days=self.days,
                                                max_db_mb=self.max_db_mb)
                finally:
                    conn.close()
                self.runs += 1
            except Exception as exc:  # noqa: BLE001 - reported, retried next period
                self.last_error = f"{type(exc).__name__}: {exc}"


def prune_by_policy(conn: Any, actor: str, *, days: int | None,
                    max_db_mb: int | None) -> PruneResult:
    """`prune` with the config's terms: events older than `days`, and the
    database kept under `max_db_mb`."""
    before = None if days is None else now_us() - days * 86_400_000_000
    limit = None if max_db_mb is None else max_db_mb * 1_000_000
    return prune(conn, actor, before_ts=before, max_bytes=limit)
