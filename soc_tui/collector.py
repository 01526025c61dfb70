"""The running collector: pipeline, rule process and pruner, started and stopped as one.

Owns: `Collector`, what `soc-tui collect` and the TUI (which collects in its
own process unless `--attach`) run. The pipeline gets a thread with its own
asyncio loop, so that nothing it does (source tasks, batching) competes with
the caller's loop (the TUI's); the rule worker is its own process; the
pruner a thread. `stop()` ends them in order and loses nothing: the
pipeline commits what it read, then the rule process evaluates everything
stored. Must not: import Textual or run SQL itself.
"""

from __future__ import annotations

import asyncio
import threading
from dataclasses import dataclass
from typing import Any

from soc_tui.config import Retention, SourceConfig
from soc_tui.pipeline import Pipeline
from soc_tui.sources.base import SourceHealth


@dataclass
class RuleStatus:
    """The rule process as a screen shows it."""

    running: bool
    failures: int
    last_failure: str


class Collector:
    def __init__(self, db: str, sources: list[SourceConfig], *, rule_dirs: list[str] | None,
                 worker: Any = None, retention: Retention | None = None,
                 poll_interval: float = 0.25, actor: str = "collector") -> None:
        """`worker`: the started rule process the pipeline offers its commits
        to (None: no rules); `stop` stops it."""
        self.db = db
        self.rule_dirs = rule_dirs
        self.worker = worker
        self.pipeline = Pipeline(db, sources, follow=True, poll_interval=poll_interval,
                                 on_commit=self.worker.offer if self.worker else None,
                                 rule_paths=rule_dirs if self.worker else None)
        self.pruner: Any = None
        if retention is not None and (retention.days is not None or retention.max_db_mb is not None):
            from soc_tui.store.retention import PeriodicPrune

            self.pruner = PeriodicPrune(db, actor, days=retention.days,
                                        max_db_mb=retention.max_db_mb)
        self.failure: BaseException | None = None  # what ended the pipeline, if it failed
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop_event: asyncio.Event | None = None
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, name="soc-tui-collector", daemon=True)
        self._stopped = False

    # -- life cycle -----------------------------------------------------------

    def start(self) -> Collector:
        self._thread.start()
        self._ready.wait()
        if self.pruner is not None:
            self.pruner.start()
        return self

    def _run(self) -> None:
        async def main() -> None:
            self._loop = asyncio.get_running_loop()
            self._stop_event = asyncio.Event()
            self._ready.set()
            await self.pipeline.run(self._stop_event)

        try:
            asyncio.run(main())
        except BaseException as exc:  # noqa: BLE001 - kept for whoever stops us
            self.failure = exc
        finally:
            self._ready.set()

    def request_stop(self) -> None:
        """Ask the pipeline to finish (safe from any thread and from a signal handler)."""
        loop, event = self._loop, self._stop_event
        if loop is not None and event is not None and not loop.is_closed():
            try:
                loop.call_soon_threadsafe(event.set)
            except RuntimeError:
                pass  # the loop has just ended

    def wait(self, timeout: float | None = None) -> bool:
        """Wait for the pipeline to end; True when it has."""
        self._thread.join(timeout)
        return not self._thread.is_alive()

    def stop(self, *, drain: bool = True) -> None:
        """End everything in order: the pipeline commits what it read, the rule
        process then evaluates what is stored (with drain). Raises the rule
        process's failure (RuleProcessError) after everything is stopped."""
        if self._stopped:
            return
        self._stopped = True
        self.request_stop()
        self._thread.join()
        if self.pruner is not None:
            self.pruner.stop()
        if self.worker is not None:
            try:
                self.worker.stop(drain=drain)
            finally:
                self.worker.close()

    # -- state ----------------------------------------------------------------

    @property
    def running(self) -> bool:
        return self._thread.is_alive()

    def health(self) -> list[SourceHealth]:
        """A snapshot of every source's counters (copied: the pipeline keeps writing)."""
        return [h.snapshot() for h in list(self.pipeline.health.values())]

    def rule_status(self) -> RuleStatus | None:
        w = self.worker
        if w is None:
            return None
        return RuleStatus(not self._stopped, int(getattr(w, "failures", 0)),
                          str(getattr(w, "last_failure", "") or ""))
