"""What every screen of the TUI works with: the database handles, the analyst, the collector.

Owns: `UiContext` (opened by the CLI, closed when the app ends): a reader
for the screens' queries, a second reader for searches (so a slow search,
which a new one interrupts, never holds up the live stream or the alert
queue), a third for the Overview's statistics (which scan the window's
events: up to seconds while ingesting) and one of the live feed's own (it
polls 10 times a second: a screen's query never waits for it, nor it for a
screen's), one connection for the analyst's writes (triage, run in thread
workers), the live feed, the embedded collector when there is one, the
rules as loaded, and the clock (frozen for snapshots and screenshots).
Must not: import Textual (it is built and tested without a terminal).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any, Callable

from soc_tui.model import now_us
from soc_tui.store.db import StoreConnection, open_db
from soc_tui.store.reader import StoreReader
from soc_tui.ui.feed import LiveFeed


@dataclass
class UiOptions:
    bell: bool = True
    theme: str | None = None
    backlog: int = 2000  # events already stored that the live stream starts with


@dataclass
class UiContext:
    db: str
    analyst: str
    reader: StoreReader
    search_reader: StoreReader
    writer: StoreConnection
    feed: LiveFeed
    stats_reader: StoreReader | None = None  # the Overview's (None: `reader`)
    rule_dirs: list[str] = field(default_factory=list)
    ruleset: Any = None  # soc_tui.detect.loader.RuleSet, or None without rules
    collector: Any = None  # soc_tui.collector.Collector when this process collects
    clock: Callable[[], int] = now_us  # UTC microseconds
    options: UiOptions = field(default_factory=UiOptions)
    replayer: Any = None  # soc_tui.demo.Replayer in demo mode
    quiz: Any = None  # soc_tui.training.Quiz in `demo --train`
    _write_guard: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @classmethod
    def open(cls, db: str, analyst: str, *, rule_dirs: list[str] | None = None,
             ruleset: Any = None, collector: Any = None,
             clock: Callable[[], int] | None = None,
             options: UiOptions | None = None, replayer: Any = None,
             quiz: Any = None) -> UiContext:
        reader = StoreReader(db)
        opts = options or UiOptions()
        return cls(
            db=db, analyst=analyst, reader=reader, search_reader=StoreReader(db),
            writer=open_db(db), feed=LiveFeed(StoreReader(db)), stats_reader=StoreReader(db),
            rule_dirs=list(rule_dirs or []),
            ruleset=ruleset, collector=collector, clock=clock or now_us, options=opts,
            replayer=replayer, quiz=quiz,
        )

    def reader_call(self, query: Callable[[Any], Any]) -> Any:
        """A read function of the store (`query(conn)`) on the screens' reader."""
        return self.reader.run(query)

    def stats_call(self, query: Callable[[Any], Any]) -> Any:
        """A read function of the store on the Overview's reader."""
        return (self.stats_reader or self.reader).run(query)

    def write(self, action: Callable[[StoreConnection], Any]) -> Any:
        """Run one triage call on the write connection (from a thread worker;
        calls are serialised so two quick key presses never interleave)."""
        with self._write_guard:
            return action(self.writer)

    def close(self) -> None:
        self.feed.stop()
        closers = [self.reader.close, self.search_reader.close, self.feed.reader.close, self.writer.close]
        if self.stats_reader is not None:
            closers.append(self.stats_reader.close)
        for closer in closers:
            try:
                closer()
            except Exception:  # noqa: BLE001 - closing on the way out
                pass
