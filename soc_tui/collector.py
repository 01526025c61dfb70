"""The running collector: pipeline, rule process and pruner, started and stopped as one.

Owns: `Collector`, what `soc-tui collect` runs, and `CollectorProcess`, the
same Collector in a child process: what the TUI runs unless `--attach` (in a
thread of the TUI's process the pipeline's Python took the UI thread's GIL
for a quarter of the time at 10k lines/s). The pipeline gets a thread with its own
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


# -- the collector in a process of its own (the TUI's) -------------------------------------

STATUS_EVERY = 0.25  # seconds between the child's status reports (health, counters)


class _PipelineView:
    """What the parent knows of the child's pipeline (its last status report)."""

    def __init__(self) -> None:
        self.errors: list[str] = []
        self.events_written = 0
        self.health: dict[str, SourceHealth] = {}


class _WorkerView:
    """The rule process's counters as the child last reported them."""

    def __init__(self) -> None:
        self.failures = 0
        self.last_failure = ""
        self.evaluated = 0
        self.alerts_raised = 0


class CollectorProcess:
    """A Collector (pipeline thread, rule process) in a child process: the
    TUI's, so that the pipeline's Python never holds the UI's GIL.

    The same surface as a started `Collector` for its callers: `health()`,
    `rule_status()`, `running`, `failure`, `request_stop()`, `wait()`,
    `stop(drain)` (raises RuleProcessError after everything stopped, as
    Collector.stop), `pipeline.errors` / `pipeline.events_written`, `worker`
    (None without rules; its `failures` / `last_failure`) and `pruner` (the
    retention thread, kept in this process: it only runs SQL, now and then).

    Protocol, pickled over the two pipes of `soc_tui.child.spawn`: requests
    `("stop", drain)`; replies `("status", state)` every STATUS_EVERY seconds
    (the first one once the pipeline runs) and one `("done", state)` after the
    child stopped everything in order (the pipeline committed what it read,
    then the rule process evaluated what is stored). The child ignores
    SIGINT, SIGTERM and SIGHUP (a terminal that goes away signals the whole
    process group: the parent stops it once the UI is down) and, when the
    request pipe reaches EOF without a "stop" (the parent died, even by
    SIGKILL), stops too: the pipeline still commits what it read, the rules
    do not drain (their cursor says where the next run goes on)."""

    def __init__(self, db: str, sources: list[SourceConfig], *, rule_dirs: list[str] | None,
                 retention: Retention | None = None, poll_interval: float = 0.25,
                 rule_poll_interval: float = 0.1, actor: str = "collector") -> None:
        from dataclasses import asdict

        self.db = db
        self.rule_dirs = rule_dirs
        self.pipeline = _PipelineView()
        self.worker: _WorkerView | None = None
        self.pruner: Any = None
        if retention is not None and (retention.days is not None or retention.max_db_mb is not None):
            from soc_tui.store.retention import PeriodicPrune

            self.pruner = PeriodicPrune(db, actor, days=retention.days,
                                        max_db_mb=retention.max_db_mb)
        self.failure: BaseException | None = None
        self._args = (db, [asdict(s) for s in sources],
                      None if rule_dirs is None else [str(d) for d in rule_dirs],
                      poll_interval, rule_poll_interval)
        self._proc: Any = None
        self._send: Any = None
        self._recv: Any = None
        self._running = False
        self._rule_error: str | None = None
        self._ready = threading.Event()
        self._done = threading.Event()
        self._stop_sent = False
        self._stopped = False
        self._lock = threading.Lock()
        self._receiver = threading.Thread(target=self._receive_loop, name="soc-tui-collector-rx",
                                          daemon=True)

    # -- life cycle -----------------------------------------------------------

    def start(self) -> CollectorProcess:
        from soc_tui.child import spawn

        self._proc, self._send, self._recv = spawn("soc_tui.collector._child_main", *self._args)
        self._running = True
        self._receiver.start()
        self._ready.wait()
        if self.pruner is not None:
            self.pruner.start()
        return self

    def request_stop(self) -> None:
        """Ask the child to finish (safe from any thread)."""
        import pickle

        with self._lock:
            if self._stop_sent or self._send is None:
                return
            self._stop_sent = True
            try:
                self._send.send_bytes(pickle.dumps(("stop", True)))
            except OSError:
                pass  # the child is gone: the receiver has seen it

    def wait(self, timeout: float | None = None) -> bool:
        """Wait for the child to end; True when it has."""
        return self._done.wait(timeout)

    def stop(self, *, drain: bool = True) -> None:
        """Stop the child in order (see the class) and wait for it; raises
        RuleProcessError when the rule process failed."""
        import pickle

        from soc_tui.detect.process import RuleProcessError

        if self._stopped:
            return
        self._stopped = True
        with self._lock:
            if not self._stop_sent and self._send is not None:
                self._stop_sent = True
                try:
                    self._send.send_bytes(pickle.dumps(("stop", drain)))
                except OSError:
                    pass
        self._done.wait()
        if self.pruner is not None:
            self.pruner.stop()
        try:
            self._send.close()
        except OSError:
            pass
        self._proc.wait()
        self._receiver.join()
        try:
            self._recv.close()
        except OSError:
            pass
        if self._rule_error is not None:
            raise RuleProcessError(self._rule_error)

    def _receive_loop(self) -> None:
        from soc_tui.child import from_child

        try:
            for kind, state in from_child(self._recv):
                self._take(state)
                self._ready.set()
                if kind == "done":
                    self._running = False
                    self._done.set()
            if not self._done.is_set():
                code = self._proc.wait()
                if self.failure is None and code != 0:
                    self.failure = RuntimeError(f"the collector process exited (status {code})")
        finally:
            self._running = False
            self._ready.set()
            self._done.set()

    def _take(self, state: dict[str, Any]) -> None:
        p = self.pipeline
        p.health = {h.name: h for h in state["health"]}
        p.errors = state["errors"]
        p.events_written = state["events_written"]
        if state["failure"] and self.failure is None:
            self.failure = RuntimeError(state["failure"])
        w = state["worker"]
        if w is not None:
            if self.worker is None:
                self.worker = _WorkerView()
            for k, v in w.items():
                setattr(self.worker, k, v)
        if state.get("rule_error"):
            self._rule_error = state["rule_error"]
        self._running = state["running"]

    # -- state ----------------------------------------------------------------

    @property
    def running(self) -> bool:
        return self._running and not self._done.is_set()

    @property
    def pid(self) -> int:
        return int(self._proc.pid) if self._proc is not None else 0

    def health(self) -> list[SourceHealth]:
        """Every source's counters as of the child's last report (at most
        STATUS_EVERY seconds old)."""
        return list(self.pipeline.health.values())

    def rule_status(self) -> RuleStatus | None:
        w = self.worker
        if w is None:
            return None
        return RuleStatus(not self._stopped, int(w.failures), str(w.last_failure or ""))


def _child_main(req_fd: int, res_fd: int, db: str, sources: list[dict[str, Any]],
                rule_dirs: list[str] | None, poll_interval: float, rule_poll_interval: float) -> None:
    """The child of CollectorProcess: a Collector, and its reports."""
    import pickle
    import signal
    from multiprocessing.connection import Connection

    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, signal.SIG_IGN)
    requests = Connection(req_fd, writable=False)
    replies = Connection(res_fd, readable=False)

    def reply(kind: str, state: dict[str, Any]) -> None:
        try:
            replies.send_bytes(pickle.dumps((kind, state), protocol=pickle.HIGHEST_PROTOCOL))
        except OSError:
            pass  # the parent is gone

    worker = None
    if rule_dirs is not None:
        from soc_tui.detect.loader import load_rules
        from soc_tui.detect.process import RuleProcess

        ruleset = load_rules(rule_dirs)
        if any(r.enabled for r in ruleset.all()):
            worker = RuleProcess(db, rule_dirs, ruleset, poll_interval=rule_poll_interval)
    collector = Collector(db, [SourceConfig(**s) for s in sources], rule_dirs=rule_dirs,
                          worker=worker, poll_interval=poll_interval)

    def state(rule_error: str | None = None) -> dict[str, Any]:
        p = collector.pipeline
        w = collector.worker
        return {
            "health": collector.health(), "errors": list(p.errors),
            "events_written": p.events_written, "running": collector.running,
            "failure": (f"{type(collector.failure).__name__}: {collector.failure}"
                        if collector.failure is not None else ""),
            "worker": None if w is None else {
                "failures": w.failures, "last_failure": w.last_failure,
                "evaluated": w.evaluated, "alerts_raised": w.alerts_raised},
            "rule_error": rule_error,
        }

    from soc_tui.child import tune_gc

    collector.start()
    tune_gc()
    drain = False
    reply("status", state())
    while True:
        if requests.poll(STATUS_EVERY):
            try:
                kind, value = pickle.loads(requests.recv_bytes())
            except (EOFError, OSError):
                break  # the parent is gone: commit what was read, no drain
            if kind == "stop":
                drain = bool(value)
                break
        reply("status", state())  # (a pipeline that failed is reported, and waits for the stop)
    rule_error = None
    try:
        collector.stop(drain=drain)
    except Exception as exc:  # noqa: BLE001 - RuleProcessError, for the parent to raise
        rule_error = str(exc)
    reply("done", state(rule_error))
