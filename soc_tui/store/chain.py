"""Tamper evidence: the hash chain over events, alerts, notes and the audit trail.

(Being written: see the helper's task. Interface used by the rest of the store:
create_chain_tables, seal_events, seal_rows, verify.)
"""

from __future__ import annotations

import sqlite3
from typing import Iterable


def create_chain_tables(conn: sqlite3.Connection) -> None:
    conn.execute(
        "CREATE TABLE chain (seq INTEGER PRIMARY KEY, kind TEXT NOT NULL, first_id INTEGER NOT NULL,"
        " last_id INTEGER NOT NULL, digest TEXT NOT NULL, prev_hash TEXT NOT NULL, hash TEXT NOT NULL,"
        " created_at INTEGER NOT NULL)"
    )


def seal_events(conn: sqlite3.Connection, first_id: int, last_id: int) -> None:
    pass


def seal_rows(conn: sqlite3.Connection, table: str, ids: Iterable[int]) -> None:
    pass
