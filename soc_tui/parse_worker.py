"""Parsing in a helper process, so that a backfill's parsing overlaps its writing.

Owns: `parse_rows`, the one function that turns a chunk's lines into store rows
(`soc_tui.store.events.Rows`), and `ParseWorker`, a child process that runs it
for the pipeline. Parsing is pure Python (~5-7 µs a line) and would hold the
GIL that the writer thread needs between SQLite steps; in a child it runs on
the other core. The pipeline uses the child only for sources with a big
backlog; small and live work is parsed in-process (starting the child costs
~0.1 s).

Protocol: requests `(key, parser or None, lines, now_us)` and replies
`("ok", Rows)` / `("error", text)`, pickled over two pipes, answered strictly
in order. With rules, a reply's rows also carry the matched ones apart
(`Rows.matched`), which go to the rule worker as they are. The rows of a
reply stay pickled (`Rows.packed()`) until the writer
thread unpickles them: a reader thread doing it would hold the GIL while the
writer waits. The source's `LineParser` travels with its first request (state
included) and the child keeps it under `key`, so each source is parsed by one
parser object, in order, as in-process.

Lifetime (started by `soc_tui.child.spawn`): the child ignores SIGINT and
SIGTERM (the collector stops on those and still wants its in-flight chunks
parsed) and exits when its request pipe
closes: on `close()`, or when the parent dies, even by SIGKILL (EOF on the
request pipe, EPIPE on a reply), so it never outlives the collector. If the
child dies, pending and later requests fail with WorkerError and the caller
parses those chunks itself.

Must not: read log files, touch the database or checkpoints (the caller keeps
its chunks, their order and their checkpoints), or import Textual.
"""

from __future__ import annotations

import pickle
import signal
import subprocess
import threading
from collections import deque
from concurrent.futures import Future
from multiprocessing.connection import Connection
from typing import Any

from soc_tui.child import from_child, spawn, tune_gc
from soc_tui.model import Event
from soc_tui.parse import LineParser
from soc_tui.store.events import Rows, build_rows

def parse_rows(
    parser: LineParser,
    source: str,
    lines: list[tuple[str, int]],
    now: int,
    matcher: Matcher | None = None,
    meta: list[dict[str, Any]] | None = None,
) -> Rows:
    """Parse one chunk's (text, flags) lines of `source` into rows, in order;
    with a matcher, the rows also carry the detection rules each matches.
    `meta` (one dict per line, see `Chunk.meta`) is merged into each event's
    extra; a "sender" in it is also the event's host when the line names none."""
    parse = parser.parse
    if meta is None:
        events = (parse(text, flags, now) for text, flags in lines)
    else:
        events = (_with_meta(parse(text, flags, now), m) for (text, flags), m in zip(lines, meta))
    if matcher is None:
        return build_rows(source, events)
    rows = build_rows(source, events, matcher.match)
    rows.rules_digest = matcher.digest
    rows.matched_columns = matcher.columns
    return rows


def _with_meta(ev: Event, meta: dict[str, Any]) -> Event:
    if meta:
        ev.extra = {**ev.extra, **meta} if ev.extra else dict(meta)
        if ev.host is None and meta.get("sender"):
            ev.host = str(meta["sender"])
    return ev


class Matcher:
    """Stage 1 of the rule engine (which detection rules match an event), run
    where the events are parsed so the rule worker only continues from there."""

    def __init__(self, rule_paths: list[str]) -> None:
        from soc_tui.detect.engine import Engine
        from soc_tui.detect.fields import EventView
        from soc_tui.detect.loader import load_rules

        from soc_tui.detect.worker import stage2_columns

        ruleset = load_rules(list(rule_paths))
        self.digest = ruleset.digest
        self.columns = stage2_columns(ruleset)
        self._engine = Engine(ruleset)
        self._view = EventView

    def match(self, ev: Event) -> tuple[str, ...]:
        """The ids of the rules `ev` matches (its message is set to the raw
        line when it has none, which is how the store keeps it anyway)."""
        rules = self._engine.match(self._view(ev))
        if not rules:  # most events
            return ()
        return (rules[0].rule_id,) if len(rules) == 1 else tuple([r.rule_id for r in rules])


class WorkerError(Exception):
    """The parse worker could not parse a chunk (it is gone, or failed on it);
    the caller parses the chunk in-process instead."""


class ParseWorker:
    """One parse child process; `submit` from any thread, results come in order."""

    def __init__(self, rule_paths: list[str] | None = None) -> None:
        """With `rule_paths`, the child also matches each event against those
        rules (Rows.matches); it loads them itself."""
        self._proc, self._send, self._recv = spawn(
            "soc_tui.parse_worker._child_main", rule_paths
        )
        self._pending: deque[Future[Rows]] = deque()
        self._send_lock = threading.Lock()
        self._known: set[str] = set()
        self._dead: str | None = None
        self._closed = False
        self._thread = threading.Thread(target=self._receive, name="soc-tui-parse-rx", daemon=True)
        self._thread.start()

    @property
    def pid(self) -> int:
        return self._proc.pid

    def submit(
        self, key: str, parser: LineParser, lines: list[tuple[str, int]], now: int
    ) -> Future[Rows]:
        """Queue one chunk of source `key`. Blocks while the child is busy with
        earlier requests (call it off the event loop); never raises: a dead
        worker fails the returned future with WorkerError."""
        fut: Future[Rows] = Future()
        with self._send_lock:
            if self._dead is not None or self._closed:
                fut.set_exception(WorkerError(self._dead or "parse worker closed"))
                return fut
            first = key not in self._known
            try:
                data = pickle.dumps(
                    (key, parser if first else None, lines, now), protocol=pickle.HIGHEST_PROTOCOL
                )
            except Exception as exc:  # noqa: BLE001 - e.g. a parser that cannot be pickled
                fut.set_exception(WorkerError(f"cannot hand a chunk to the parse worker: {exc!r}"))
                return fut
            self._pending.append(fut)
            try:
                self._send.send_bytes(data)
            except OSError as exc:
                # The child never got this request whole, so no reply can be
                # meant for it; earlier ones are the receiver's to settle.
                self._dead = self._dead or f"parse worker gone: {exc}"
                self._pending.pop()
                fut.set_exception(WorkerError(self._dead))
                return fut
            self._known.add(key)
        return fut

    def close(self, timeout: float = 10.0) -> None:
        """Let the child finish what it was given, then end it."""
        with self._send_lock:
            self._closed = True
            try:
                self._send.close()
            except OSError:
                pass
        try:
            self._proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()
        self._thread.join(timeout)
        try:
            self._recv.close()
        except OSError:
            pass

    def _receive(self) -> None:
        try:
            for status, value in from_child(self._recv):
                fut = self._pending.popleft()
                if status == "ok":
                    fut.set_result(value)
                else:
                    fut.set_exception(WorkerError(f"parse worker: {value}"))
            self._dead = self._dead or "parse worker exited"
        except BaseException as exc:  # noqa: BLE001 - a bug here must not hang the pipeline
            self._dead = self._dead or f"parse worker failed: {exc!r}"
            self._proc.kill()  # unblocks a sender waiting on the child
        finally:
            with self._send_lock:
                self._fail_pending()

    def _fail_pending(self) -> None:
        while self._pending:
            fut = self._pending.popleft()
            if not fut.done():
                fut.set_exception(WorkerError(self._dead or "parse worker exited"))


def _child_main(req_fd: int, res_fd: int, paths: list[str] | None = None) -> None:
    """The child's loop: parse requests until the request pipe closes."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    requests = Connection(req_fd, writable=False)
    replies = Connection(res_fd, readable=False)
    parsers: dict[str, LineParser] = {}
    matcher: Matcher | None = None
    if paths:
        try:
            matcher = Matcher(paths)
        except Exception:  # noqa: BLE001 - the rule worker then matches these events itself
            matcher = None
    tune_gc()
    while True:
        try:
            data = requests.recv_bytes()
        except (EOFError, OSError):
            return
        try:
            key, parser, lines, now = pickle.loads(data)
            del data
            if parser is not None:
                parsers[key] = parser
            reply = pickle.dumps(
                ("ok", parse_rows(parsers[key], key, lines, now, matcher).packed()),
                protocol=pickle.HIGHEST_PROTOCOL,
            )
        except Exception as exc:  # noqa: BLE001 - reported to the parent
            reply = pickle.dumps(("error", f"{type(exc).__name__}: {exc}"))
        try:
            replies.send_bytes(reply)
        except OSError:  # the parent is gone
            return
