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
