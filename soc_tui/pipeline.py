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
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Awaitable, Callable

from soc_tui.config import SourceConfig
from soc_tui.model import Checkpoint, Gap, now_us
from soc_tui.parse import LineParser
from soc_tui.parse_worker import ParseWorker, WorkerError, parse_rows
from soc_tui.sources.base import (
    Backoff,
    ConnectionDown,
    SourceError,
    SourceHealth,
    SourceSpec,
    StreamSource,
    SshRefused,
    parse_allow,
    parse_spec,
    sleep_or_stop,
)
from soc_tui.sources.tail import Chunk, FileFollower, is_rotated_name
from soc_tui.store.events import Batch, EventWriter, Rows
from soc_tui.store.reader import StoreReader

if TYPE_CHECKING:
    from soc_tui.sources.ssh import SshHost

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


@dataclass(slots=True)
class _Parsed:
    """One chunk, parsed: its rows and what the batch needs of the chunk."""

    source: str
    rows: Rows
    checkpoint: Checkpoint | None
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
        if item.checkpoint is not None:
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
        self._ssh: dict[tuple[str | None, str, int | None], SshHost] = {}
        self._remote_pool: ThreadPoolExecutor | None = None
        # The newest checkpoint queued per key: where a reconnect goes on from.
        self._emitted: dict[str, Checkpoint] = {}

    # -- running --------------------------------------------------------------

    async def run(self, stop: asyncio.Event | None = None) -> None:
        """Run until `stop` is set or every source has ended (backfill: every
        file read; stdin at its end; in follow mode files never end)."""
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
                pending = set(tasks)
                while pending and not self._stop.is_set():
                    done, pending = await asyncio.wait(
                        pending | {stopper}, return_when=asyncio.FIRST_COMPLETED
                    )
                    pending.discard(stopper)
                    if any(t is not stopper and t.exception() is not None for t in done):
                        break  # raised below, once every source has stopped
                self._stop.set()
                stopper.cancel()
                for host in self._ssh.values():
                    host.shut()  # remote reads blocked on a dead link fail now, not in 20 s
            # Every source ends before anything is closed under it; then the
            # first failure (a backfill's unreadable file) is raised.
            results = await asyncio.gather(*tasks, return_exceptions=True)
            for res in results:
                if isinstance(res, BaseException):
                    raise res
        finally:
            await self._queue.put(None)
            try:
                await batcher
                await asyncio.to_thread(self._writer.close)
            finally:
                self._reader.close()
                for host in self._ssh.values():
                    await host.close()
                if self._remote_pool is not None:
                    self._remote_pool.shutdown(wait=False, cancel_futures=True)
                if self._worker is not None:
                    await asyncio.to_thread(self._worker.close)

    async def _run_source(self, src: SourceConfig) -> None:
        spec = parse_spec(src.spec)
        if spec.kind == "file":
            await self._run_file(os.path.abspath(spec.path), src)
        elif spec.kind == "glob":
            await self._run_glob(src, spec)
        elif spec.kind == "ssh":
            if spec.remote_glob:
                await self._run_glob(src, spec)
            else:
                await self._run_remote(spec.path, src, spec)
        else:
            await self._run_stream(src, self._make_stream(spec, src))

    def _ssh_host(self, spec: SourceSpec) -> SshHost:
        """One connection per [user@]host[:port], shared by its sources."""
        from soc_tui.sources.ssh import SshHost  # asyncssh takes ~0.3 s to import

        host = SshHost.for_spec(spec)
        return self._ssh.setdefault(host.key, host)

    def _make_stream(self, spec: SourceSpec, src: SourceConfig) -> StreamSource:
        if spec.kind in ("syslog+udp", "syslog+tcp"):
            from soc_tui.sources.syslog_rx import SyslogSource

            return SyslogSource(spec, parse_allow(src.allow, src.spec))
        if spec.kind in ("journald", "journald+ssh"):
            from soc_tui.sources.journald import JournaldSource

            runner = self._ssh_host(spec).runner if spec.kind == "journald+ssh" else None
            return JournaldSource(spec, follow=self.follow, runner=runner)
        if spec.kind == "stdin":
            from soc_tui.sources.stdin import StdinSource

            return StdinSource()
        raise SourceError(f"{spec.spec}: no reader for sources of type {spec.kind}")

    async def _run_glob(self, src: SourceConfig, spec: SourceSpec) -> None:
        assert self._stop is not None
        host = self._ssh_host(spec) if spec.kind == "ssh" else None
        running: dict[str, asyncio.Task[None]] = {}
        while True:
            if host is None:
                matches = sorted(
                    os.path.abspath(p) for p in globmod.glob(spec.path) if os.path.isfile(p)
                )
            else:
                try:
                    matches = await host.glob(spec.path)
                    if not matches and not self.follow:
                        raise SourceError(f"{spec.spec}: no file matches")
                except (ConnectionDown, SshRefused, OSError) as exc:
                    if not self.follow:  # a backfill says why it read nothing
                        raise SourceError(str(exc)) from None
                    # Shown on the files' own health once they run; until then here.
                    health = self.health.setdefault(spec.spec, SourceHealth(spec.spec))
                    health.state = "error" if isinstance(exc, SshRefused) else "reconnecting"
                    health.error = str(exc)
                    matches = list(running)
                else:
                    self.health.pop(spec.spec, None)
            names = set(matches)
            for path in matches:
                if path in running or is_rotated_name(path, names):
                    continue
                if self.follow and path.endswith(".gz") and self._key(spec, path) in self.health:
                    continue
                if host is None:
                    running[path] = asyncio.create_task(self._run_file(path, src))
                else:
                    running[path] = asyncio.create_task(self._run_remote(path, src, spec))
            if not self.follow:
                break
            if await sleep_or_stop(self._stop, self.glob_interval):
                break
        await asyncio.gather(*running.values())

    @staticmethod
    def _key(spec: SourceSpec, path: str) -> str:
        """The name a file goes by: its path, or ssh://[user@]host[:port]/path."""
        if spec.kind != "ssh":
            return path
        return spec.spec[: spec.spec.index("/", len("ssh://"))] + path

    async def _run_file(self, path: str, src: SourceConfig) -> None:
        assert self._stop is not None and self._reader is not None
        health = self.health.setdefault(path, SourceHealth(path))
        reader = self._reader
        checkpoint = await asyncio.to_thread(reader.checkpoint, path)
        follower = FileFollower(
            path,
            checkpoint,
            follow=self.follow,
            grace=self.grace,
            read_bytes=self.read_bytes,
            find_inode=self._find_inode(None),
        )
        parser = LineParser(fmt=src.format, source_id=path, host=src.host, year=src.year, tz=src.tz)
        try:
            await self._tail(follower, parser, health)
        except OSError as exc:
            health.state = "error"
            health.error = f"{path}: {exc.strerror or exc}"
            self._error(health.error)
            if not self.follow:
                raise
        finally:
            follower.close()

    async def _run_remote(self, path: str, src: SourceConfig, spec: SourceSpec) -> None:
        """Tail a remote file; on a dropped connection reconnect with backoff and
        go on from the last checkpoint emitted (its chunks are queued to commit
        in order, so nothing is read twice or skipped)."""
        assert self._stop is not None and self._reader is not None
        key = self._key(spec, path)
        host = self._ssh_host(spec)
        health = self.health.setdefault(key, SourceHealth(key))
        checkpoint = await asyncio.to_thread(self._reader.checkpoint, key)
        parser = LineParser(fmt=src.format, source_id=key, host=src.host or spec.host,
                            year=src.year, tz=src.tz)
        from soc_tui.sources.ssh import RemoteFs

        fs = RemoteFs(host, asyncio.get_running_loop())
        backoff = Backoff(cap=30.0)
        reported = None
        pool = self._remote_executor()
        while not self._stop.is_set():
            follower: FileFollower | None = None
            try:
                if not await self._until_stop(host.connect()):
                    return
                follower = FileFollower(
                    path, self._emitted.get(key, checkpoint), follow=self.follow, grace=self.grace,
                    read_bytes=self.read_bytes, fs=fs, key=key,
                    find_inode=self._find_inode(self._key(spec, "/")),
                )
                await self._tail(follower, parser, health, on_progress=backoff.reset, use_worker=False,
                                 executor=pool)
                return
            except ConnectionDown as exc:
                health.state, health.error, delay = "reconnecting", str(exc), backoff.next()
            except SshRefused as exc:
                health.state, health.error, delay = "error", str(exc), 60.0
            except PermissionError:
                health.state, delay = "error", 60.0
                health.error = (
                    f"{key}: permission denied reading {path} as {host.user or 'the SSH user'}: add that "
                    "user to the group that owns the file (Debian's auth.log is root:adm 0640: "
                    "sudo usermod -aG adm USER, then log in again)"
                )
            except OSError as exc:
                health.state, delay = "error", backoff.next()
                health.error = f"{key}: {exc.strerror or exc}"
            except Exception as exc:  # noqa: BLE001 - a corrupt .gz, a bad config: this source only
                health.state, delay = "error", backoff.next()
                health.error = f"{key}: {type(exc).__name__}: {exc}"
            finally:
                if follower is not None:
                    await asyncio.get_running_loop().run_in_executor(pool, follower.close)
            if self._stop.is_set():
                return  # the stop dropped the connection: not a problem to report
            if health.error != reported:
                reported = health.error
                self._error(health.error or "")
            if not self.follow:
                raise SourceError(health.error or f"{key}: failed")
            if await sleep_or_stop(self._stop, delay):
                return

    async def _run_stream(self, src: SourceConfig, stream: StreamSource) -> None:
        """Run a source that produces its own chunks (syslog, journald, stdin)."""
        assert self._stop is not None and self._reader is not None
        key = stream.key
        health = self.health.setdefault(key, SourceHealth(key))
        stream.checkpoint = await asyncio.to_thread(self._reader.checkpoint, key)
        fmt = stream.fmt if src.format == "auto" else src.format
        parser = LineParser(fmt=fmt, source_id=key, host=src.host, year=src.year, tz=src.tz)

        async def emit(chunk: Chunk) -> None:
            rows = await asyncio.to_thread(
                parse_rows, parser, chunk.source, chunk.lines, now_us(), None, chunk.meta
            )
            await self._put(health, parsed_chunk(chunk, rows))

        try:
            await stream.run(emit, health, self._stop)
        except (OSError, SourceError, ConnectionDown, SshRefused) as exc:
            health.state = "error"
            health.error = f"{key}: {exc.strerror if isinstance(exc, OSError) and exc.strerror else exc}"
            self._error(health.error)
            if not self.follow:
                raise
            return
        if health.state != "error":
            health.state = "done" if not self._stop.is_set() else health.state

    async def _tail(
        self,
        follower: FileFollower,
        parser: LineParser,
        health: SourceHealth,
        *,
        on_progress: Callable[[], None] | None = None,
        use_worker: bool = True,
        executor: ThreadPoolExecutor | None = None,
    ) -> None:
        """Read a followed file until it is done (backfill) or `stop` is set.
        File work runs in `executor` (default: asyncio's pool)."""
        assert self._stop is not None
        loop = asyncio.get_running_loop()
        health.state = "running"
        health.error = None
        worker: ParseWorker | None = None
        # Chunks the worker is parsing, oldest first: results are queued in this order.
        inflight: deque[tuple[Chunk, int, asyncio.Future[Rows]]] = deque()
        full_reads = 0
        while True:
            if worker is None:
                parsed, behind = await loop.run_in_executor(executor, self._read_and_parse, follower, parser)
                for item in parsed:
                    await self._put(health, item)
                got = bool(parsed)
                nbytes = sum(item.nbytes for item in parsed)
            else:
                sent, behind = await asyncio.to_thread(self._read_and_submit, follower, parser, worker)
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
            if on_progress is not None:
                on_progress()
            if health.state != "running" and health.state != "lagging":
                health.state, health.error = "running", None
            if follower.done:
                health.state = "done"
                return
            if got:
                health.bytes_behind = behind
                health.state = "lagging" if behind > (1 << 20) else "running"
                if worker is None and use_worker and self.worker_backlog is not None:
                    # Backlog: bytes on disk not read yet, or (compressed files)
                    # bytes read in a row without catching up.
                    full_reads = full_reads + 1 if nbytes >= self.read_bytes else 0
                    backlog = max(behind, full_reads * self.read_bytes)
                    if backlog >= self.worker_backlog:
                        worker = await self._get_worker()
                if not self._stop.is_set():
                    continue
            if self._stop.is_set():
                return
            # Woken by a stop, the loop reads once more: lines written just
            # before it are stored now, not at the next start.
            await sleep_or_stop(self._stop, self.poll_interval)

    def _find_inode(self, prefix: str | None) -> Callable[[int, int], list[Checkpoint]]:
        """Checkpoints saved under another name for a (device, inode), so a
        file renamed into a glob is not read again: on this machine (prefix
        None) or on one SSH host (keys starting with `prefix`); inode numbers
        of different machines say nothing about each other."""
        reader = self._reader
        assert reader is not None

        def find(dev: int, ino: int) -> list[Checkpoint]:
            found = reader.checkpoints_for_inode(dev, ino)
            if prefix is None:
                return [c for c in found if "://" not in c.key]
            return [c for c in found if c.key.startswith(prefix)]

        return find

    def _remote_executor(self) -> ThreadPoolExecutor:
        """Threads for remote file work: a poll there waits on the network, and
        must not hold a thread of asyncio's pool that the writer, local files
        and asyncssh's own connecting need."""
        if self._remote_pool is None:
            self._remote_pool = ThreadPoolExecutor(max_workers=32, thread_name_prefix="soc-remote")
        return self._remote_pool

    async def _until_stop(self, coro: Awaitable[Any]) -> bool:
        """Await `coro` unless `stop` comes first (then cancel it): True if it ended."""
        assert self._stop is not None
        task = asyncio.ensure_future(coro)
        stopper = asyncio.ensure_future(self._stop.wait())
        await asyncio.wait([task, stopper], return_when=asyncio.FIRST_COMPLETED)
        stopper.cancel()
        if task.done():
            task.result()  # raises its failure
            return True
        task.cancel()
        return False

    def _error(self, text: str) -> None:
        """Keep a source's error for the end-of-run report (a flapping link
        repeats itself: the list stays bounded)."""
        if text not in self.errors:
            self.errors.append(text)
            del self.errors[:-100]

    async def _put(self, health: SourceHealth, item: _Parsed) -> None:
        assert self._queue is not None
        await self._queue.put(item)
        if item.checkpoint is not None:
            self._emitted[item.checkpoint.key] = item.checkpoint
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
    def _read_and_parse(follower: FileFollower, parser: LineParser) -> tuple[list[_Parsed], int]:
        """One read step, parsed; and the bytes still behind (all file work,
        local or remote, happens here, off the event loop)."""
        now = now_us()
        parsed = [
            parsed_chunk(chunk, parse_rows(parser, chunk.source, chunk.lines, now))
            for chunk in follower.poll()
        ]
        return parsed, (follower.bytes_behind() if parsed else 0)

    @staticmethod
    def _read_and_submit(
        follower: FileFollower, parser: LineParser, worker: ParseWorker
    ) -> tuple[list[tuple[Chunk, int, Future[Rows]]], int]:
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
        return out, (follower.bytes_behind() if out else 0)

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
