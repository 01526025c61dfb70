"""The rule worker in a process of its own, beside the collector's writer.

Owns: `RuleProcess`, the parent's handle on a child that runs a `RuleWorker`
over one database, and the child's loop (`_child_main`). In the collector's
process the worker's Python would share one GIL with the writer thread: every
time the writer came back from an SQLite step it waited for the worker, and a
backfill with rules ran at a little over half the speed of one without. Here
the writer only hands over what it committed (`pack_offer`: the matched rows,
still pickled as the parse process made them) and the child does the rest on
the other core.

Protocol, pickled over the two pipes of `soc_tui.child.spawn`: requests
`("offer", Offer)` and `("stop", drain)`; replies `("status", counters)` now and
then, and one `("done", counters)` or `("error", text)` at the end. Counters:
evaluated, alerts_raised, failures, last_failure, child_offers_dropped.

The child runs at a lower CPU priority than the collector (NICENESS).

Lifetime: the child ignores SIGINT and SIGTERM (the collector stops it with
"stop" once the writer has flushed) and, when the request pipe reaches EOF
without a "stop" (the collector died, even by SIGKILL), stops at once without
draining: the committed cursor says where the next run continues.

Must not: import Textual.
"""

from __future__ import annotations

import os
import pickle
import queue
import signal
import subprocess
import threading
import time
from multiprocessing.connection import Connection
from typing import Any

from soc_tui.child import from_child, spawn, tune_gc
from soc_tui.detect.loader import RuleSet, load_rules
from soc_tui.detect.worker import MAX_OFFERED, RuleWorker, pack_offer
from soc_tui.store.events import Batch

STATUS_EVERY = 0.5  # seconds between the child's status reports
# The child's CPU priority below the collector's (os.nice): on two cores the
# writer, the parse process and this one all want a core during a backfill,
# and the writer, which stores what nothing else keeps, is the one to keep
# going; the rules catch up from the offers held for them (MAX_OFFERED).
# Ingest with the shipped rules went from 65-75% to 74-85% of the store's
# limit in alternating runs. With CPU to spare (a live tail) it changes nothing.
NICENESS = 5


class RuleProcessError(Exception):
    """The rule process failed (its last words are the message)."""


class RuleProcess:
    """Runs the rules over `db` in a child process; the same surface as a
    started RuleWorker: `offer` (from the writer thread), `stop(drain)`,
    `close`, and the counters of the last status report."""

    def __init__(self, db: str, rule_dirs: list[str], ruleset: RuleSet, *,
                 poll_interval: float = 0.25) -> None:
        self.ruleset = ruleset  # the parent's copy: what is reported as loaded
        self._digest = ruleset.digest
        self.evaluated = 0
        self.alerts_raised = 0
        self.failures = 0
        self.last_failure = ""
        self.child_offers_dropped = 0
        self._dropped = 0
        self._error: str | None = None
        self._done = threading.Event()
        self._proc, self._send, self._recv = spawn(
            "soc_tui.detect.process._child_main", db, [str(d) for d in rule_dirs], poll_interval
        )
        # Offers wait here for the sender thread, so a busy child slows
        # neither the writer nor ingest; beyond MAX_OFFERED events waiting
        # they are dropped (the child reads those from the store).
        self._queue: queue.Queue[tuple[str, Any] | None] = queue.Queue()
        self._queued = 0
        self._queued_lock = threading.Lock()
        self._sender = threading.Thread(target=self._send_loop, name="soc-tui-rules-tx",
                                        daemon=True)
        self._receiver = threading.Thread(target=self._receive_loop, name="soc-tui-rules-rx",
                                          daemon=True)
        self._sender.start()
        self._receiver.start()

    @property
    def offers_dropped(self) -> int:
        """Committed batches the child had to read back from the store."""
        return self._dropped + self.child_offers_dropped

    @property
    def pid(self) -> int:
        return self._proc.pid

    def offer(self, first_id: int, batch: Batch) -> None:
        """A committed batch (called in the writer thread)."""
        offer = pack_offer(first_id, batch, self._digest)
        n = offer[1] - offer[0] + 1
        with self._queued_lock:
            if self._queued + n > MAX_OFFERED:
                self._dropped += 1
                return
            self._queued += n
        self._queue.put(("offer", offer))

    def stop(self, *, drain: bool = True, timeout: float | None = None) -> None:
        """Hand over what is queued, let the child evaluate what is stored
        (with drain) and end; raises RuleProcessError if it failed."""
        self._queue.put(("stop", drain))
        self._queue.put(None)
        if not self._done.wait(timeout):
            self._proc.kill()
            raise RuleProcessError("the rule process did not stop in time")
        if self._error is not None:
            raise RuleProcessError(self._error)

    def close(self, timeout: float = 10.0) -> None:
        self._queue.put(None)
        self._sender.join(timeout)
        try:
            self._send.close()
        except OSError:
            pass
        try:
            self._proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()
        self._receiver.join(timeout)
        try:
            self._recv.close()
        except OSError:
            pass

    def _send_loop(self) -> None:
        while True:
            msg = self._queue.get()
            if msg is None:
                return
            if msg[0] == "offer":
                with self._queued_lock:
                    self._queued -= msg[1][1] - msg[1][0] + 1
            try:
                self._send.send_bytes(pickle.dumps(msg, protocol=pickle.HIGHEST_PROTOCOL))
            except OSError:
                return  # the child is gone: the receiver reports it

    def _receive_loop(self) -> None:
        try:
            for kind, value in from_child(self._recv):
                if kind == "error":
                    self._error = str(value)
                    continue
                for k, v in value.items():
                    setattr(self, k, v)
                if kind == "done":
                    self._done.set()
            if not self._done.is_set():
                code = self._proc.wait()
                self._error = self._error or f"the rule process exited (status {code})"
        finally:
            self._done.set()


def _counters(worker: RuleWorker) -> dict[str, Any]:
    return {"evaluated": worker.evaluated, "alerts_raised": worker.alerts_raised,
            "failures": worker.failures, "last_failure": worker.last_failure,
            "child_offers_dropped": worker.offers_dropped}


def _child_main(req_fd: int, res_fd: int, db: str, rule_dirs: list[str],
                poll_interval: float) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    requests = Connection(req_fd, writable=False)
    replies = Connection(res_fd, readable=False)

    def reply(kind: str, value: Any) -> None:
        try:
            replies.send_bytes(pickle.dumps((kind, value)))
        except OSError:
            pass  # the parent is gone

    try:
        worker = RuleWorker(db, load_rules(rule_dirs), poll_interval=poll_interval)
    except Exception as exc:  # noqa: BLE001 - reported to the parent
        reply("error", f"cannot start the rule worker: {type(exc).__name__}: {exc}")
        return
    tune_gc()
    try:
        os.nice(NICENESS)
    except OSError:
        pass  # not allowed here: run at the collector's priority
    worker.start()
    drain = False
    reported = time.monotonic()
    try:
        while True:
            if requests.poll(STATUS_EVERY):
                try:
                    kind, value = pickle.loads(requests.recv_bytes())
                except (EOFError, OSError):
                    break  # the collector is gone: no drain
                if kind == "offer":
                    worker.take_offer(value)
                elif kind == "stop":
                    drain = bool(value)
                    break
            if time.monotonic() - reported >= STATUS_EVERY:
                reported = time.monotonic()
                reply("status", _counters(worker))
        worker.stop(drain=drain)
    except BaseException as exc:  # noqa: BLE001 - reported to the parent
        reply("error", f"rule worker: {type(exc).__name__}: {exc}")
        return
    finally:
        try:
            worker.close()
        except Exception:  # noqa: BLE001 - closing after a failure
            pass
    reply("done", _counters(worker))
