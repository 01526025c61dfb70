"""Fixes to Textual (8.x) that the UI applies once, at import: each says what
it changes and why. None changes what is drawn.

Owns: `apply()`.

- `Strip.divide` at a strip's own length: the compositor divides every line
  it draws at the edges of the regions over it; a line nothing overlaps is
  divided at its own length, and Textual then returns `[self]` and keeps
  that list in the strip's own divide cache, a reference cycle. Every such
  strip (its segments, its seven FIFOCaches) then outlives its last use
  until the garbage collector finds it: while ingesting, ~45,000 objects
  every few seconds, which made each collection of the middle generation a
  100-140 ms pause of the UI thread. The same answer is returned here
  without caching it, so the strip is freed as soon as nothing uses it.
- `LRUCache.clear`: the cache keeps its entries in a ring of linked lists;
  clearing it dropped the ring whole, a cycle holding every cached value
  (DataTable clears its caches of rendered cells, rows and lines on every
  sort, refill and style change: up to 10,000 entries at a time). The ring
  is unlinked first, so the values go when the cache lets them go.
"""

from __future__ import annotations

from typing import Any, Iterable

from textual.cache import LRUCache
from textual.strip import Strip

_applied = False


def apply() -> None:
    """Apply the fixes (once; later calls do nothing)."""
    global _applied
    if _applied:
        return
    _applied = True
    divide = Strip.divide

    def divide_without_self_cycle(self: Strip, cuts: Iterable[int]) -> Any:
        cuts = list(cuts)
        length = self.cell_length
        if [cut for cut in cuts if cut <= length] == [length]:
            return [self]  # what Textual returns, without caching self in self
        return divide(self, cuts)

    divide_without_self_cycle.__doc__ = divide.__doc__
    Strip.divide = divide_without_self_cycle  # type: ignore[method-assign]

    clear = LRUCache.clear

    def clear_unlinked(self: LRUCache[Any, Any]) -> None:
        for entry in self._cache.values():  # [prev, next, key, value]
            entry.clear()
        clear(self)

    clear_unlinked.__doc__ = clear.__doc__
    LRUCache.clear = clear_unlinked  # type: ignore[method-assign]
