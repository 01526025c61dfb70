"""Wiring sources -> parse -> store, with per-source health counters.

Owns: the collector loop used by `soc-tui collect`, `soc-tui ingest` and (later)
the TUI: one asyncio task per source reading and parsing in a worker thread,
one batcher that groups parsed chunks into transactions (up to `batch_size`
events or `batch_interval` seconds, whichever comes first) and hands them to
the single writer thread. Each chunk carries its checkpoint, so every
transaction commits events and the reader state that covers them together.
Must not: import Textual or run SQL itself (that is `store/`).
"""

from __future__ import annotations

import asyncio
import glob as globmod
import os
import time
from dataclasses import dataclass, field
from typing import Callable

from soc_tui.config import SourceConfig
from soc_tui.model import FLAG_UNPARSED, Event, now_us
from soc_tui.parse import LineParser
from soc_tui.sources.tail import Chunk, FileFollower, is_rotated_name
from soc_tui.store.events import Batch, EventWriter
from soc_tui.store.reader import StoreReader

GLOB_CHARS = set("*?[")


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


@dataclass
class _Parsed:
    source: str
    events: list[Event]
    chunk: Chunk


class Pipeline:
    """Collects the given sources into the database at `db_path`."""

    def __init__(
        self,
        db_path: str,
        sources: list[SourceConfig],
        *,
        follow: bool = True,
        batch_size: int = 5000,
        batch_interval: float = 0.1,
        poll_interval: float = 0.25,
        grace: float = 1.0,
        glob_interval: float = 2.0,
        on_batch: Callable[[Batch], None] | None = None,
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
        self.health: dict[str, SourceHealth] = {}
        self.errors: list[str] = []
        self.events_written = 0
        self._queue: asyncio.Queue[_Parsed | None] | None = None
        self._stop: asyncio.Event | None = None
        self._writer: EventWriter | None = None
        self._reader: StoreReader | None = None

    # -- running --------------------------------------------------------------

    async def run(self, stop: asyncio.Event | None = None) -> None:
        """Run until `stop` is set (follow mode) or every file is read (backfill)."""
        self._stop = stop or asyncio.Event()
        self._queue = asyncio.Queue(maxsize=16)
        self._writer = EventWriter(self.db_path)
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
            await batcher
            await asyncio.to_thread(self._writer.close)
            self._reader.close()

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
            find_inode=reader.checkpoints_for_inode,
        )
        parser = LineParser(fmt=src.format, source_id=path, host=src.host, year=src.year, tz=src.tz)
        health.state = "running"
        try:
            while True:
                parsed = await asyncio.to_thread(self._read_and_parse, follower, parser)
                for item in parsed:
                    await self._queue.put(item)
                    self._count(health, item)
                if follower.done:
                    health.state = "done"
                    return
                if parsed:
                    health.bytes_behind = follower.bytes_behind()
                    health.state = "lagging" if health.bytes_behind > (1 << 20) else "running"
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

    @staticmethod
    def _read_and_parse(follower: FileFollower, parser: LineParser) -> list[_Parsed]:
        out = []
        now = now_us()
        for chunk in follower.poll():
            parse = parser.parse
            events = [parse(text, flags, now) for text, flags in chunk.lines]
            out.append(_Parsed(chunk.source, events, chunk))
        return out

    def _count(self, health: SourceHealth, item: _Parsed) -> None:
        n = len(item.events)
        health.lines += n
        health.events += n
        health.bytes_read += item.chunk.nbytes
        health.gaps += len(item.chunk.gaps)
        for ev in item.events:
            if ev.flags & FLAG_UNPARSED:
                health.unparsed += 1
        if item.events:
            health.last_event_ts = max(health.last_event_ts or 0, item.events[-1].ts)
        health.note(n)

    async def _batcher(self) -> None:
        assert self._queue is not None and self._writer is not None
        batch = Batch()
        deadline: float | None = None
        while True:
            timeout = None if deadline is None else max(0.0, deadline - time.monotonic())
            try:
                item = await asyncio.wait_for(self._queue.get(), timeout)
            except asyncio.TimeoutError:
                item = ...
            if item is None:
                if batch.events or batch.checkpoints:
                    await self._submit(batch)
                await asyncio.to_thread(self._writer.flush)
                return
            if isinstance(item, _Parsed):
                if deadline is None:
                    deadline = time.monotonic() + self.batch_interval
                batch.events.extend(item.events)
                batch.add_checkpoint(item.source, item.chunk.checkpoint)
                batch.gaps.extend(item.chunk.gaps)
                batch.lines[item.source] = batch.lines.get(item.source, 0) + len(item.chunk.lines)
                batch.bytes[item.source] = batch.bytes.get(item.source, 0) + item.chunk.nbytes
                if len(batch.events) < self.batch_size and time.monotonic() < deadline:
                    continue
            if batch.events or batch.checkpoints:
                await self._submit(batch)
            batch = Batch()
            deadline = None

    async def _submit(self, batch: Batch) -> None:
        assert self._writer is not None
        await asyncio.to_thread(self._writer.submit, batch)
        self.events_written += len(batch.events)
        if self.on_batch is not None:
            self.on_batch(batch)
