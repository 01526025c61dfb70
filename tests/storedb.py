"""Reading a test database back through the store's own reader (raw lines live
compressed in raw_blocks, so plain SQL cannot list them)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from soc_tui.store.reader import StoreReader


def stored_events(db: Path, query: str = "") -> list[dict[str, Any]]:
    """Every stored event matching `query`, oldest first ([] without a database)."""
    if not db.exists():
        return []
    reader = StoreReader(str(db), create=False)
    try:
        return list(reader.iter_search(query))
    finally:
        reader.close()


def stored_count(db: Path) -> int:
    """How many events are stored (0 without a database)."""
    if not db.exists():
        return 0
    reader = StoreReader(str(db), create=False)
    try:
        return reader.count("")
    finally:
        reader.close()


def has_checkpoint(db: Path) -> bool:
    """Whether a collector has registered a file (committed its first checkpoint)."""
    import sqlite3

    if not db.exists():
        return False
    conn = sqlite3.connect(db)
    try:
        return conn.execute("SELECT count(*) FROM checkpoints").fetchone()[0] > 0
    except sqlite3.OperationalError:
        return False
    finally:
        conn.close()
