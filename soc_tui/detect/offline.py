"""Rules over log files in memory, storing nothing (`soc-tui rules test`).

Owns: reading files (plain or .gz) line by line, parsing them with the same
parser the collector uses, and running the engine and deduplication on the
events, which get ids by position (1, 2, ... across the files). Must not:
touch SQLite or import Textual.
"""

from __future__ import annotations

import dataclasses
import gzip
import operator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Iterator

from soc_tui.detect.alerts import Alert, Deduper
from soc_tui.detect.engine import Engine, FirstSeen, Hit
from soc_tui.detect.loader import RuleSet
from soc_tui.model import Event
from soc_tui.parse import LineParser


_FIELDS = tuple(f.name for f in dataclasses.fields(Event))
_values = operator.attrgetter(*_FIELDS)  # all fields in one C call


def event_dict(ev: Event) -> dict[str, Any]:
    """An Event as the engine sees it: the keys and values the store's reader
    gives back for it (a line without a separate message reads back with the
    raw line as its message)."""
    d = dict(zip(_FIELDS, _values(ev)))
    if d["message"] is None:
        d["message"] = d["raw"]
    return d


def read_lines(path: str | Path) -> Iterator[str]:
    """Lines of a plain or gzip file without terminators; invalid UTF-8 replaced."""
    p = str(path)
    opener = gzip.open if p.endswith(".gz") else open
    with opener(p, "rb") as fh:  # type: ignore[operator]
        for raw in fh:
            yield raw.rstrip(b"\n").rstrip(b"\r").decode("utf-8", "replace")


@dataclass
class OfflineResult:
    alerts: list[Alert]
    hits: list[Hit]
    events: dict[int, dict[str, Any]] = field(default_factory=dict)  # evidence only

    def lines(self, alert: Alert) -> list[str]:
        return [self.events[i]["raw"] for i in sorted(alert.evidence) if i in self.events]


def run_events(
    ruleset: RuleSet, events: Iterable[dict[str, Any]], first_seen: FirstSeen | None = None
) -> OfflineResult:
    """Run the rules over event dicts (with ids) in order; `first_seen` is the
    new_value state to start from (default: empty, in memory)."""
    engine = Engine(ruleset, first_seen)
    dedup = Deduper()
    alerts: list[Alert] = []
    hits: list[Hit] = []
    recent: dict[int, dict[str, Any]] = {}
    keep: dict[int, dict[str, Any]] = {}
    listed: set[int] = set()
    for ev in events:
        recent[ev["id"]] = ev
        for hit in engine.process(ev):
            hits.append(hit)
            alert = dedup.add(hit)
            if alert is None:
                continue
            if id(alert) not in listed:
                listed.add(id(alert))
                alerts.append(alert)
            for i in hit.evidence:
                if i in recent:
                    keep[i] = recent[i]
        if len(recent) > 200_000:  # bound memory on long files: keep the newest
            for i in list(recent)[:100_000]:
                del recent[i]
    return OfflineResult(alerts, hits, keep)


def run_files(
    ruleset: RuleSet,
    paths: list[str],
    *,
    fmt: str = "auto",
    host: str | None = None,
    year: int | None = None,
    tz: str | None = None,
) -> OfflineResult:
    """Parse the files and run the rules on their lines in file order."""

    def events() -> Iterator[dict[str, Any]]:
        n = 0
        for path in paths:
            parser = LineParser(fmt=fmt, source_id=str(Path(path).resolve()), host=host, year=year, tz=tz)
            for line in read_lines(path):
                n += 1
                ev = event_dict(parser.parse(line))
                ev["id"] = n
                yield ev

    return run_events(ruleset, events())
