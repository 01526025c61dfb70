"""Backtest: one rule over stored history, storing nothing (`soc-tui rules backtest`, the Rules screen).

Owns: choosing the rule and the rules it is built on (a correlation needs
its inputs), reading the stored events of the window through StoreReader
and running them in memory (soc_tui.detect.offline), with new_value rules
starting from the values the store saw before the window. Must not: write
to the database or import Textual.
"""

from __future__ import annotations

from typing import Any

from soc_tui.detect.loader import RuleBase, RuleSet
from soc_tui.detect.offline import OfflineResult, run_events


def with_inputs(rule: Any) -> set[int]:
    """ids of `rule` and every rule it is built on."""
    out = {id(rule)}
    for inp in getattr(rule, "inputs", ()):
        out |= with_inputs(inp)
    return out


def backtest(ruleset: RuleSet, target: RuleBase, db: str, since: str) -> tuple[list[Any], OfflineResult]:
    """What `target` would have raised over the stored events of the window
    `since` (the search language's `since:` value: 7d, 24h, a date).
    Returns its alerts and the run (for their evidence lines). A bad
    `since` raises soc_tui.store.search.SearchError."""
    from soc_tui.detect.worker import PastFirstSeen
    from soc_tui.store.db import open_db
    from soc_tui.store.reader import StoreReader
    from soc_tui.store.search import compile_query

    query = compile_query(f"since:{since}")
    since_us = int(query.params[0]) if query.params else 0
    wanted = with_inputs(target)
    subset = RuleSet(
        [r for r in ruleset.rules if id(r) in wanted],
        [c for c in ruleset.correlations if id(c) in wanted],
        [],
    )
    reader = StoreReader(db, create=False)
    conn = open_db(db, create=False)
    try:
        # new_value rules know the values the store saw before the window.
        result = run_events(subset, reader.iter_search(query), PastFirstSeen(conn, since_us))
    finally:
        reader.close()
        conn.close()
    return [a for a in result.alerts if a.rule_id == target.rule_id], result
