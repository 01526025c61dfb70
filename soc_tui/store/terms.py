"""The `terms` dictionary: low-cardinality text values stored once, as integer codes.

Owns: both directions of the mapping for one connection. The writer codes
values (host, app, action, user, ...) to `terms.id`, inserting the new ones in
its open transaction and forgetting them again if that transaction rolls
back; readers decode codes to values, re-reading the table when they meet a
code they have not seen (one another connection committed since).
Rows of `terms` are never changed or deleted, so a cached pair stays true.
Must not: know which columns are coded (that is the schema's, `db.py`).
"""

from __future__ import annotations

import sqlite3
from typing import Any, Callable


class _Cache(dict[Any, Any]):
    """A dict that asks `fill` for a key it does not hold; None maps to None."""

    def __init__(self, fill: Callable[[Any], Any]) -> None:
        super().__init__({None: None})
        self._fill = fill

    def __missing__(self, key: Any) -> Any:
        return self._fill(key)


class Terms:
    """The `terms` table of one connection, cached in both directions.

    `codes[value]` is the code of a value (None for None), inserting it when
    new: only inside the writer's transaction, followed by `commit()` or
    `rollback()`. `values[code]` is the value of a code (None for None).
    Both are plain dicts underneath, so a hit costs one C-level lookup."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn
        self.codes = _Cache(self._find_or_insert)  # value -> code
        self.values = _Cache(self._reload)  # code -> value
        self._loaded = 0  # the table has been read up to this code
        self._new: list[Any] = []  # values inserted in the open transaction

    def _find_or_insert(self, value: Any) -> int:
        row = self._conn.execute("SELECT id FROM terms WHERE value = ?", (value,)).fetchone()
        if row is not None:
            code = int(row[0])
        else:
            cur = self._conn.execute("INSERT INTO terms (value) VALUES (?)", (value,))
            code = int(cur.lastrowid)
            self._new.append(value)
        self.codes[value] = code
        self.values[code] = value
        return code

    def _reload(self, code: int) -> str:
        rows = self._conn.execute(
            "SELECT id, value FROM terms WHERE id > ? ORDER BY id", (self._loaded,)
        ).fetchall()
        for code_, value in rows:
            self.values[code_] = value
        if rows:
            self._loaded = rows[-1][0]
        if code not in self.values:
            raise KeyError(f"term {code} is not in the terms table")
        return self.values[code]

    def commit(self) -> None:
        """The transaction that inserted new values committed: they are real now."""
        self._new.clear()

    def rollback(self) -> None:
        """The transaction rolled back: forget the values it inserted."""
        for value in self._new:
            code = self.codes.pop(value, None)
            self.values.pop(code, None)
        self._new.clear()
