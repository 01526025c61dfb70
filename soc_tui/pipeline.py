"""Wiring sources -> parse -> store, with per-source health counters.

Owns: the collector loop used by `soc-tui collect`, `soc-tui ingest` and (later)
the TUI: one asyncio task per source reading (and, for small or live work,
parsing) in a worker thread, one batcher that groups parsed chunks into
transactions (up to `batch_size` events or `batch_interval` seconds, whichever
comes first) and hands them to the single writer thread. Each chunk carries its
checkpoint, so every transaction commits events and the reader state that
covers them together.

A source with a big backlog (a backfill) has its chunks parsed by the parse
worker process (`soc_tui.parse_worker`) so parsing runs on the other core,
overlapped with the writer; the source task keeps its chunks in order and
each chunk's checkpoint goes into the same batch as its rows. If the worker
dies, the chunks it had are parsed in-process.
Must not: import Textual or run SQL itself (that is `store/`).
"""

from __future__ import annotations

import asyncio
import glob as globmod
import os
import time
from collections import deque
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Callable

from soc_tui.config import SourceConfig
from soc_tui.model import Checkpoint, Gap, now_us
from soc_tui.parse import LineParser
from soc_tui.parse_worker import ParseWorker, WorkerError, parse_rows
from soc_tui.sources.tail import Chunk, FileFollower, is_rotated_name
from soc_tui.store.events import Batch, EventWriter, Rows
from soc_tui.store.reader import StoreReader

GLOB_CHARS = set("*?[")

BATCH_SIZE = 5000  # events per transaction (a batch closes once it has this many)
# Bytes per read step: one chunk, one checkpoint; ~5,200 auth.log lines, about
# a batch (batches are whole chunks and close once they reach BATCH_SIZE, so
# they stay near it). Fewer, bigger chunks cost the event loop less per line.
READ_BYTES = 512 << 10
# Parsed chunks waiting for the batcher, per pipeline: a few are enough to keep
# the writer busy (parsing outruns it); more would only hold memory.
QUEUE_CHUNKS = 4
# A source this far behind (or after this much read without a pause) is parsed
# by the parse worker process; below it, starting the process does not pay.
WORKER_BACKLOG = 8 << 20


@dataclass
class SourceHealth:
    """Live counters for one source, read by the CLI progress bar and the TUI."""

    name: str
    state: str = "starting"  # starting, running, lagging, reconnecting, error, done
    lines: int = 0
    events: int = 0
    unparsed: int = 0
    bytes_read: int = 0
    bytes_behind: int = 0
    gaps: int = 0
    last_event_ts: int | None = None
    error: str | None = None
    rate: float = 0.0  # events/s over the last few seconds
    _window: list[tuple[float, int]] = field(default_factory=list, repr=False)

    def note(self, n: int) -> None:
        now = time.monotonic()
        self._window.append((now, n))
        while self._window and now - self._window[0][0] > 5.0:
            self._window.pop(0)
        span = max(1.0, now - self._window[0][0]) if self._window else 1.0
        self.rate = sum(k for _, k in self._window) / span


@dataclass(slots=True)
class _Parsed:
    """One chunk, parsed: its rows and what the batch needs of the chunk."""

    source: str
    rows: Rows
    checkpoint: Checkpoint
    gaps: list[Gap]
    nlines: int
    nbytes: int


def parsed_chunk(chunk: Chunk, rows: Rows) -> _Parsed:
    """A chunk with its parsed rows, as the batcher takes it."""
    return _Parsed(chunk.source, rows, chunk.checkpoint, chunk.gaps, len(chunk.lines), chunk.nbytes)


class BatchBuilder:
    """Groups parsed chunks into batches: whole chunks, in arrival order; a batch
    is full once it holds `batch_size` events. (The ingest benchmark builds its
    reference batches with this too.)"""

    def __init__(self, batch_size: int = BATCH_SIZE) -> None:
        self.batch_size = batch_size
        self.batch = Batch()
        self.events = 0

    def add(self, item: _Parsed) -> bool:
        """Add one chunk; True when the batch is full."""
        batch = self.batch
        if item.rows.count:
            batch.parts.append(item.rows)
            self.events += item.rows.count
        batch.add_checkpoint(item.source, item.checkpoint)
        batch.gaps.extend(item.gaps)
        batch.lines[item.source] = batch.lines.get(item.source, 0) + item.nlines
        batch.bytes[item.source] = batch.bytes.get(item.source, 0) + item.nbytes
        return self.events >= self.batch_size

    def empty(self) -> bool:
        return not (self.batch.parts or self.batch.checkpoints)

    def take(self) -> Batch:
        batch, self.batch, self.events = self.batch, Batch(), 0
        return batch


class Pipeline:
    """Collects the given sources into the database at `db_path`."""

    def __init__(
        self,
        db_path: str,
        sources: list[SourceConfig],
        *,
        follow: bool = True,
        batch_size: int = BATCH_SIZE,
        batch_interval: float = 0.1,
        poll_interval: float = 0.25,
        grace: float = 1.0,
        glob_interval: float = 2.0,
        on_batch: Callable[[Batch], None] | None = None,
        read_bytes: int = READ_BYTES,
        worker_backlog: int | None = WORKER_BACKLOG,
        on_commit: Callable[[int, Batch], None] | None = None,
        rule_paths: list[str] | None = None,
    ) -> None:
        self.db_path = db_path
        self.sources = sources
        self.follow = follow
        self.batch_size = batch_size
        self.batch_interval = batch_interval
        self.poll_interval = poll_interval
        self.grace = grace
        self.glob_interval = glob_interval
        self.on_batch = on_batch
        self.read_bytes = read_bytes
        self.worker_backlog = worker_backlog  # None: never use the parse worker
        # Told (first id, batch) after each commit (the rule worker's `offer`).
        self.on_commit = on_commit
        # Rules the parse worker matches backlog events against (stage 1).
        self.rule_paths = rule_paths
        self.health: dict[str, SourceHealth] = {}
        self.errors: list[str] = []
        self.events_written = 0
        self._queue: asyncio.Queue[_Parsed | None] | None = None
        self._stop: asyncio.Event | None = None
        self._writer: EventWriter | None = None
        self._reader: StoreReader | None = None
        self._worker: ParseWorker | None = None
        self._worker_failed = False
        self._worker_lock: asyncio.Lock | None = None

    # -- running --------------------------------------------------------------

    async def run(self, stop: asyncio.Event | None = None) -> None:
        """Run until `stop` is set (follow mode) or every file is read (backfill)."""
        self._stop = stop or asyncio.Event()
        self._queue = asyncio.Queue(maxsize=QUEUE_CHUNKS)
        self._worker_lock = asyncio.Lock()
        self._writer = EventWriter(self.db_path, on_commit=self.on_commit)
        self._reader = StoreReader(self.db_path)
        batcher = asyncio.create_task(self._batcher())
        try:
            tasks = [asyncio.create_task(self._run_source(src)) for src in self.sources]
            if self.follow:
                stopper = asyncio.create_task(self._stop.wait())
                await asyncio.wait([stopper, *tasks], return_when=asyncio.FIRST_COMPLETED)
                self._stop.set()
                stopper.cancel()
            await asyncio.gather(*tasks, return_exceptions=False)
        finally:
            await self._queue.put(None)
            try:
                await batcher
                await asyncio.to_thread(self._writer.close)
            finally:
                self._reader.close()
                if self._worker is not None:
                    await asyncio.to_thread(self._worker.close)

    async def _run_source(self, src: SourceConfig) -> None:
        if GLOB_CHARS & set(src.spec):
            await self._run_glob(src)
        else:
            await self._run_file(os.path.abspath(src.spec), src)

    async def _run_glob(self, src: SourceConfig) -> None:
        pattern = src.spec
        assert self._stop is not None
        running: dict[str, asyncio.Task[None]] = {}
        while True:
            matches = sorted(
                os.path.abspath(p) for p in globmod.glob(pattern) if os.path.isfile(p)
            )
            names = set(matches)
            for path in matches:
                if path in running or is_rotated_name(path, names):
                    continue
                if self.follow and path.endswith(".gz") and path in self.health:
                    continue
                running[path] = asyncio.create_task(self._run_file(path, src))
            if not self.follow:
                break
            try:
                await asyncio.wait_for(self._stop.wait(), self.glob_interval)
                break
            except asyncio.TimeoutError:
                pass
        await asyncio.gather(*running.values())

    async def _run_file(self, path: str, src: SourceConfig) -> None:
        assert self._stop is not None and self._queue is not None and self._reader is not None
        health = self.health.setdefault(path, SourceHealth(path))
        reader = self._reader
        checkpoint = await asyncio.to_thread(reader.checkpoint, path)
        follower = FileFollower(
            path,
            checkpoint,
            follow=self.follow,
            grace=self.grace,
            read_bytes=self.read_bytes,
            find_inode=reader.checkpoints_for_inode,
        )
        parser = LineParser(fmt=src.format, source_id=path, host=src.host, year=src.year, tz=src.tz)
        health.state = "running"
        worker: ParseWorker | None = None
        # Chunks the worker is parsing, oldest first: results are queued in this order.
        inflight: deque[tuple[Chunk, int, asyncio.Future[Rows]]] = deque()
        full_reads = 0
        try:
            while True:
                if worker is None:
                    parsed = await asyncio.to_thread(self._read_and_parse, follower, parser)
                    for item in parsed:
                        await self._put(health, item)
                    got = bool(parsed)
                    nbytes = sum(item.nbytes for item in parsed)
                else:
                    sent = await asyncio.to_thread(self._read_and_submit, follower, parser, worker)
                    for chunk, now, fut in sent:
                        inflight.append((chunk, now, asyncio.wrap_future(fut)))
                    # While reading on, leave the newest chunk with the worker.
                    keep = 1 if sent and not follower.done and not self._stop.is_set() else 0
                    while len(inflight) > keep:
                        await self._put(health, await self._result(inflight.popleft(), parser))
                    if self._worker_failed:  # parse the rest here, in order
                        while inflight:
                            await self._put(health, await self._result(inflight.popleft(), parser))
                        worker = None
                    got = bool(sent)
                    nbytes = 0
                if follower.done:
                    health.state = "done"
                    return
                if got:
                    health.bytes_behind = follower.bytes_behind()
                    health.state = "lagging" if health.bytes_behind > (1 << 20) else "running"
                    if worker is None and self.worker_backlog is not None:
                        # Backlog: bytes on disk not read yet, or (compressed files)
                        # bytes read in a row without catching up.
                        full_reads = full_reads + 1 if nbytes >= self.read_bytes else 0
                        backlog = max(health.bytes_behind, full_reads * self.read_bytes)
                        if backlog >= self.worker_backlog:
                            worker = await self._get_worker()
                    if not self._stop.is_set():
                        continue
                if self._stop.is_set():
                    return
                try:
                    await asyncio.wait_for(self._stop.wait(), self.poll_interval)
                except asyncio.TimeoutError:
                    pass
        except OSError as exc:
            health.state = "error"
            health.error = f"{path}: {exc.strerror or exc}"
            self.errors.append(health.error)
            if not self.follow:
                raise
        finally:
            follower.close()

    async def _put(self, health: SourceHealth, item: _Parsed) -> None:
        assert self._queue is not None
        await self._queue.put(item)
        self._count(health, item)

    async def _get_worker(self) -> ParseWorker | None:
        """The pipeline's parse worker, started on first use; None if it cannot run."""
        assert self._worker_lock is not None
        async with self._worker_lock:
            if self._worker is None and not self._worker_failed:
                try:
                    self._worker = await asyncio.to_thread(ParseWorker, self.rule_paths)
                except OSError:
                    self._worker_failed = True
        return None if self._worker_failed else self._worker

    async def _result(
        self, entry: tuple[Chunk, int, asyncio.Future[Rows]], parser: LineParser
    ) -> _Parsed:
        chunk, now, fut = entry
        try:
            rows = await fut
        except WorkerError:
            self._worker_failed = True
            rows = await asyncio.to_thread(parse_rows, parser, chunk.source, chunk.lines, now)
        return parsed_chunk(chunk, rows)

    @staticmethod
    def _read_and_parse(follower: FileFollower, parser: LineParser) -> list[_Parsed]:
        now = now_us()
        return [
            parsed_chunk(chunk, parse_rows(parser, chunk.source, chunk.lines, now))
            for chunk in follower.poll()
        ]

    @staticmethod
    def _read_and_submit(
        follower: FileFollower, parser: LineParser, worker: ParseWorker
    ) -> list[tuple[Chunk, int, Future[Rows]]]:
        """Read a step and hand its chunks to the worker (blocks while it is busy)."""
        now = now_us()
        out = []
        for chunk in follower.poll():
            if chunk.lines:
                fut = worker.submit(chunk.source, parser, chunk.lines, now)
            else:
                fut = Future()
                fut.set_result(Rows(chunk.source, []))
            out.append((chunk, now, fut))
        return out

    def _count(self, health: SourceHealth, item: _Parsed) -> None:
        rows = item.rows
        n = rows.count
        health.lines += n
        health.events += n
        health.unparsed += rows.unparsed
        health.bytes_read += item.nbytes
        health.gaps += len(item.gaps)
        if rows.count:
            health.last_event_ts = max(health.last_event_ts or 0, rows.max_ts)
        health.note(n)

    async def _batcher(self) -> None:
        assert self._queue is not None and self._writer is not None
        builder = BatchBuilder(self.batch_size)
        deadline: float | None = None
        while True:
            timeout = None if deadline is None else max(0.0, deadline - time.monotonic())
            try:
                item = await asyncio.wait_for(self._queue.get(), timeout)
            except asyncio.TimeoutError:
                item = ...
            if item is None:
                if not builder.empty():
                    await self._submit(builder.take())
                await asyncio.to_thread(self._writer.flush)
                return
            if isinstance(item, _Parsed):
                if deadline is None:
                    deadline = time.monotonic() + self.batch_interval
                if not builder.add(item) and time.monotonic() < deadline:
                    continue
            if not builder.empty():
                await self._submit(builder.take())
            deadline = None

    async def _submit(self, batch: Batch) -> None:
        assert self._writer is not None
        await asyncio.to_thread(self._writer.submit, batch)
        self.events_written += len(batch)
        if self.on_batch is not None:
            self.on_batch(batch)
