"""The journald source: `journalctl -o json` as a stream, resumable by cursor.

Owns: building the journalctl command line for a `journald://`,
`journald:///PATH` or `journald+ssh://` source, running it through a runner
(a local subprocess here; an SSH runner elsewhere has the same shape, see
`Runner`), cutting its output into chunks whose checkpoint is the `__CURSOR`
of the chunk's last record, and restarting journalctl after the last emitted
cursor when it dies while following.

The command: `journalctl -o json --no-pager --all`, plus
- `-f --no-tail` when following. `--no-tail` always: with `-f`, journalctl
  shows only the last 10 records, even with `--after-cursor` (systemd 252);
- `--after-cursor=CURSOR` when resuming (the checkpoint's cursor at start,
  after a restart the cursor of the last chunk emitted);
- `--file PATH` (a journal file) or `-D PATH` (a directory) for `journald:///PATH`.
`--all`: without it journalctl writes any field over 4096 bytes as `null`, so
a long log message would arrive without its text (and a rule would not see it).

Records over MAX_LINE (64 KiB) bytes are flagged FLAG_TRUNCATED; one up to
MAX_HOLD bytes is re-serialised with its longest values cut so that it stays a
parseable journal record within MAX_LINE; a longer one keeps its first MAX_LINE
bytes. Either way its cursor is found, so nothing after it is read twice.

The cursor is read with a regex from the last record of each read block only
(one search per block; `json.loads` of every line would cost ~5 us a line, the
regex ~1 us once per ~100 lines).

Errors: journalctl missing -> JournaldError "journalctl not found: ...";
journalctl exiting non-zero before any output on its first start (bad file,
no permission, bad cursor) -> JournaldError with its first stderr line and the
fix; a runner's SshRefused ends a backfill, and while following puts the source
in state "error" and is retried every REFUSED_RETRY seconds. While following, journalctl
exiting or its stream ending (or a runner raising ConnectionDown or another
OSError, e.g. an SSH connection refused or lost) -> state "reconnecting",
backoff, restart after the last emitted cursor. Without following, EOF ends
the run (state "done"); a non-zero exit there raises, after what came before
it was emitted.

Must not: parse records beyond their cursor, touch the database, or import Textual.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shlex
import time
from typing import Awaitable, Protocol

from soc_tui.model import FLAG_TRUNCATED, Checkpoint
from soc_tui.sources.base import (
    Backoff,
    ConnectionDown,
    Emit,
    SourceHealth,
    SourceSpec,
    SshRefused,
    StreamSource,
    sleep_or_stop,
)
from soc_tui.sources.tail import MAX_LINE, Chunk

READ_BLOCK = 128 << 10  # bytes per stdout read
# After a read that got less than half a block, wait this long before the next:
# journalctl writes 4 KiB at a time, and a wake-up per 4 KiB cost ~12 us per
# record of event-loop time (as much as journalctl's own work); this way a
# read takes what arrived meanwhile (the local runner buffers up to 2 MiB).
COALESCE_SECONDS = 0.005
CHUNK_LINES = 2000  # a chunk closes at this many records...
CHUNK_BYTES = 4 << 20  # ...or this many bytes...
CHUNK_SECONDS = 0.05  # ...or this long after its first record arrived
MAX_HOLD = 1 << 20  # an over-long record up to this size is cut field by field
STDERR_KEEP = 4096  # bytes of journalctl's stderr kept for error messages
RESET_AFTER = 10.0  # a journalctl that ran this long resets the backoff
EARLY = 2.0  # journalctl failing within this long of its first start, silent, is fatal
REFUSED_RETRY = 60.0  # seconds between looks at a host that refused us (host key, login)

NOT_FOUND = "journalctl not found: install systemd or use a file source"
GROUP_FIX = ("add the user to group systemd-journal or adm "
             "(usermod -aG systemd-journal USER, then log in again)")
PARTIAL_VIEW = ("journalctl shows only this user's journal: " + GROUP_FIX)

_CURSOR = re.compile(r'"__CURSOR"\s*:\s*"([^"\\]*)"')
_CURSOR_B = re.compile(rb'"__CURSOR"\s*:\s*"([^"\\]*)"')


class JournaldError(OSError):
    """journalctl cannot run or refused this source; retrying will not help.
    str() and `strerror` are one line: what failed and the fix; `filename`
    is the source (its spec), as for a file that cannot be read."""

    def __init__(self, message: str, source: str | None = None) -> None:
        super().__init__(0, message)
        self.filename = source

    def __str__(self) -> str:
        return self.strerror


class ByteStream(Protocol):
    async def read(self, n: int = -1) -> bytes:
        """Up to n bytes (all until EOF when n < 0); b"" at EOF."""
        ...


class JournalProcess(Protocol):
    """A started journalctl. `stdout` and `stderr` are read with `read(n)` until
    b"" (EOF); after the connection carrying them is lost, `read` returns b""
    or raises ConnectionDown (or an OSError). `wait()` returns the exit status:
    127 means "command not found" (a shell's convention), a negative one a
    signal; once the connection is gone it returns (255 if there is no status)
    or raises ConnectionDown. `kill()`/`terminate()` never raise."""

    stdout: ByteStream
    stderr: ByteStream

    async def wait(self) -> int: ...

    def kill(self) -> None: ...

    def terminate(self) -> None: ...


class Runner(Protocol):
    """Starts `argv` (a list; a remote runner quotes it with shlex.join) and
    returns the process. Raise JournaldError or SshRefused for what retrying
    cannot fix (journalctl missing, host key mismatch, authentication refused):
    they end the source. Raise ConnectionDown or another OSError for what it
    may (connection refused or lost, timeout): a following source retries
    those with backoff; one that is not following ends with it."""

    def __call__(self, argv: list[str]) -> Awaitable[JournalProcess]: ...


class _LocalProcess:
    """asyncio's Process with kill/terminate that ignore an already dead child."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc
        self.stdout = proc.stdout
        self.stderr = proc.stderr

    async def wait(self) -> int:
        return await self.proc.wait()

    def kill(self) -> None:
        try:
            self.proc.kill()
        except (ProcessLookupError, OSError):
            pass

    def terminate(self) -> None:
        try:
            self.proc.terminate()
        except (ProcessLookupError, OSError):
            pass


async def local_runner(argv: list[str]) -> JournalProcess:
    """Run argv here (no shell), stdout and stderr piped, stdin /dev/null."""
    try:
        proc = await asyncio.create_subprocess_exec(
            *argv,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            limit=1 << 20,  # the pipe is read ahead up to twice this
        )
    except FileNotFoundError:
        raise JournaldError(NOT_FOUND) from None
    except OSError as exc:
        raise JournaldError(f"cannot run {argv[0]}: {exc.strerror or exc}") from None
    return _LocalProcess(proc)


def build_argv(spec: SourceSpec, *, follow: bool, cursor: str | None) -> list[str]:
    """The journalctl command line for `spec` (see the module docstring)."""
    argv = ["journalctl", "-o", "json", "--no-pager", "--all"]
    if follow:
        argv += ["-f", "--no-tail"]
    if cursor:
        argv.append(f"--after-cursor={cursor}")
    if spec.path:
        # A local path is looked at; a remote one is a file when it is named
        # like one (journald's files end in .journal or .journal~).
        if spec.kind == "journald":
            is_dir = os.path.isdir(spec.path)
        else:
            is_dir = not spec.path.rstrip("~").endswith(".journal")
        argv += ["-D", spec.path] if is_dir else ["--file", spec.path]
    return argv


# ------------------------------------------------------------ over-long records
def _dump(value) -> tuple[str, int]:
    """Compact JSON and its size in UTF-8 bytes (lone surrogates escaped, so the
    text always encodes)."""
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    try:
        return text, len(text.encode("utf-8"))
    except UnicodeEncodeError:
        text = json.dumps(value, separators=(",", ":"))
        return text, len(text)


def _shrink(raw: bytes) -> str | None:
    """The JSON record `raw` re-serialised within MAX_LINE bytes by cutting its
    longest values (strings keep their start; byte arrays too); None if it is
    not a JSON object or cannot be made to fit."""
    try:
        d = json.loads(raw)
    except (ValueError, RecursionError):
        return None
    if not isinstance(d, dict):
        return None
    for _ in range(2 * len(d) + 4):
        text, size = _dump(d)
        if size <= MAX_LINE:
            return text
        key, value, vsize = None, None, 0
        for k, v in d.items():
            if k == "__CURSOR" or not isinstance(v, (str, list)):
                continue
            n = _dump(v)[1]
            if n > vsize:
                key, value, vsize = k, v, n
        if key is None:
            return None
        keep = max(0, vsize - (size - MAX_LINE) - 64)
        if isinstance(value, str):
            # A character is at most 6 bytes in JSON (\uXXXX); cut by characters
            # so that the value fits, then re-measure on the next round.
            ratio = len(value) / vsize if vsize else 1.0
            d[key] = value[: int(keep * ratio)]
        else:  # an array of byte values, 1-4 characters each
            d[key] = value[: keep // 4]
    return None


def _finish_long(head: bytes, whole: bool, cursor: str | None) -> tuple[str, str | None]:
    """An over-long record as a line (FLAG_TRUNCATED) and its cursor. `head` is
    the whole record when `whole`, else its first bytes (cursor found already)."""
    if whole:
        shrunk = _shrink(head)
        if shrunk is not None:
            m = _CURSOR.search(shrunk)
            return shrunk, m.group(1) if m else cursor
        if cursor is None:
            m = _CURSOR_B.search(head)
            cursor = m.group(1).decode("ascii", "replace") if m else None
    return head[:MAX_LINE].decode("utf-8", "replace"), cursor


class RecordSplitter:
    """journalctl's stdout bytes -> complete records, each block's last cursor.

    `feed(data)` returns (lines, nbytes, cursor): the (text, flags) records
    completed by `data`, the bytes they took (newlines included), and the
    cursor of the last of them that has one (None when none has). A partial
    record waits for its newline; one that never gets it is never returned."""

    def __init__(self) -> None:
        self.carry = b""
        self.long: bytearray | None = None  # an over-long record being read
        self.long_size = 0
        self.long_whole = True  # `long` still holds all of it
        self.long_cursor: str | None = None
        self.long_tail = b""  # its last bytes, for a cursor cut by a read

    def _absorb(self, part: bytes) -> None:
        assert self.long is not None
        self.long_size += len(part)
        if self.long_whole and self.long_size <= MAX_HOLD:
            self.long += part
            return
        if self.long_whole:  # too long to re-serialise: keep the head, scan for the cursor
            seen = bytes(self.long) + part
            self.long_whole = False
            del self.long[MAX_LINE:]
        else:
            seen = self.long_tail + part
        if self.long_cursor is None:
            m = _CURSOR_B.search(seen)
            if m:
                self.long_cursor = m.group(1).decode("ascii", "replace")
        self.long_tail = seen[-256:]

    def _end_long(self) -> tuple[str, str | None, int]:
        assert self.long is not None
        text, cursor = _finish_long(bytes(self.long), self.long_whole, self.long_cursor)
        size = self.long_size + 1
        self.long, self.long_size, self.long_whole = None, 0, True
        self.long_cursor, self.long_tail = None, b""
        return text, cursor, size

    def feed(self, data: bytes) -> tuple[list[tuple[str, int]], int, str | None]:
        out: list[tuple[str, int]] = []
        nbytes = 0
        cursors: dict[int, str | None] = {}  # index in out -> cursor of a long record
        if self.long is not None:
            nl = data.find(b"\n")
            if nl < 0:
                self._absorb(data)
                return out, 0, None
            self._absorb(data[:nl])
            text, cursor, size = self._end_long()
            cursors[0] = cursor
            out.append((text, FLAG_TRUNCATED))
            nbytes += size
            data = data[nl + 1:]
        buf = self.carry + data if self.carry else data
        last = buf.rfind(b"\n")
        if last >= 0:
            text = buf[: last + 1].decode("utf-8", "replace")
            nbytes += last + 1
            for line in text.split("\n")[:-1]:
                if len(line) > MAX_LINE // 4:
                    raw = line.encode("utf-8")
                    if len(raw) > MAX_LINE:
                        long_text, cursor = _finish_long(raw, True, None)
                        cursors[len(out)] = cursor
                        out.append((long_text, FLAG_TRUNCATED))
                        continue
                out.append((line, 0))
            rest = buf[last + 1:]
        else:
            rest = buf
        if len(rest) > MAX_LINE:
            self.carry = b""
            self.long = bytearray()
            self._absorb(rest)
        else:
            self.carry = rest
        cursor = None
        for i in range(len(out) - 1, -1, -1):
            if i in cursors:
                cursor = cursors[i]
            else:
                m = _CURSOR.search(out[i][0])
                cursor = m.group(1) if m else None
            if cursor is not None:
                break
        return out, nbytes, cursor


# ------------------------------------------------------------ the source
def _first_line(text: str) -> str:
    for line in text.splitlines():
        if line.strip():
            return line.strip()
    return ""


class JournaldSource(StreamSource):
    """`journalctl -o json` for one journald source spec (see the module docstring)."""

    def __init__(self, spec: SourceSpec, *, follow: bool = True, runner: Runner | None = None) -> None:
        if spec.kind not in ("journald", "journald+ssh"):
            raise ValueError(f"{spec.spec}: not a journald source")
        self.spec = spec
        self.key = spec.spec
        self.fmt = "journald"
        self.follow = follow
        self.runner: Runner = runner or local_runner
        self.cursor: str | None = None  # the cursor of the last chunk emitted
        self.restarts = 0  # journalctl restarts after it exited while following
        self.backoff_first = 0.5  # seconds before the first restart (doubling up to the cap)
        self.backoff_cap = 30.0

    def argv(self, cursor: str | None) -> list[str]:
        return build_argv(self.spec, follow=self.follow, cursor=cursor)

    def _where(self) -> str:
        return f" on {self.spec.host}" if self.spec.kind == "journald+ssh" else ""

    def _failure(self, argv: list[str], rc: int, stderr: str) -> str:
        """One line: what journalctl said and what to do about it. (The
        pipeline puts the source's name in front.)"""
        if rc == 127:
            if self.spec.kind == "journald+ssh":
                return f"journalctl not found on {self.spec.host}: install systemd there or use an ssh:// file source"
            return NOT_FOUND
        said = _first_line(stderr) or f"exit status {rc}"
        low = stderr.lower()
        path = self.spec.path
        if path and "no such file" in low:
            return f"journalctl: {said}: no journal file or directory at {path}"
        if "permission denied" in low or "insufficient permissions" in low or "access denied" in low:
            return f"journalctl{self._where()}: {said}: {GROUP_FIX}"
        if "cursor" in low:
            return f"journalctl{self._where()}: {said} (the stored cursor does not fit this journal)"
        return f"journalctl{self._where()} failed: {said} (command: {shlex.join(argv)})"

    async def run(self, emit: Emit, health: SourceHealth, stop: asyncio.Event) -> None:
        cp = self.checkpoint
        self.cursor = cp.cursor if cp is not None and cp.cursor else None
        backoff = Backoff(self.backoff_first, self.backoff_cap)
        started_once = False  # a journalctl ran and gave output (or kept running)
        while not stop.is_set():
            argv = self.argv(self.cursor)
            try:
                proc = await self.runner(argv)
            except JournaldError as exc:
                if exc.filename is None:
                    exc.filename = self.key
                raise
            except SshRefused as exc:
                # An untrusted host key or refused login: the user must act
                # (soc-tui ssh-trust); while following, look again now and then.
                if not self.follow:
                    raise
                health.state, health.error = "error", str(exc)
                if await sleep_or_stop(stop, REFUSED_RETRY):
                    return
                continue
            except (OSError, ConnectionDown) as exc:
                if not self.follow:
                    raise
                said = exc.strerror if isinstance(exc, OSError) and exc.strerror else exc
                if await self._retry(health, backoff, f"{self.key}: {said}", stop):
                    return
                continue
            t0 = time.monotonic()
            health.state = "running"
            stderr_box: list[bytes] = []
            err_task = asyncio.create_task(self._drain_stderr(proc, stderr_box, health))
            rc: int | None = None
            try:
                got, stopped = await self._pump(proc, emit, health, stop)
                if stopped:
                    return
                rc = await self._exit_status(proc)
                await asyncio.wait({err_task}, timeout=2.0)  # the rest of stderr
            finally:
                if not err_task.done():
                    err_task.cancel()
                if rc is None:  # stopped, or an exception (incl. cancellation)
                    proc.kill()
                    await self._exit_status(proc)
            stderr = b"".join(stderr_box).decode("utf-8", "replace")
            if not self.follow:
                if rc == 0:
                    health.state = "done"
                    return
                raise JournaldError(self._failure(argv, rc, stderr), self.key)
            ran = time.monotonic() - t0
            if rc == 127 or (rc != 0 and not got and not started_once and ran < EARLY):
                raise JournaldError(self._failure(argv, rc, stderr), self.key)
            started_once = True
            if got or ran >= RESET_AFTER:
                backoff.reset()
            said = _first_line(stderr)
            reason = f"{self.key}: journalctl{self._where()} exited (status {rc})" + (f": {said}" if said else "")
            self.restarts += 1
            if await self._retry(health, backoff, reason, stop):
                return

    async def _retry(self, health: SourceHealth, backoff: Backoff, reason: str, stop: asyncio.Event) -> bool:
        """Wait out the backoff in state "reconnecting"; True when stopped meanwhile."""
        health.state = "reconnecting"
        health.error = reason
        return await sleep_or_stop(stop, backoff.next())

    @staticmethod
    async def _drain_stderr(proc: JournalProcess, box: list[bytes], health: SourceHealth) -> None:
        """Read stderr to EOF (a full pipe would block journalctl), keeping its start."""
        kept = 0
        while True:
            try:
                data = await proc.stderr.read(4096)
            except (OSError, EOFError, ConnectionDown):
                return
            if not data:
                return
            if kept < STDERR_KEEP:
                box.append(data[: STDERR_KEEP - kept])
                kept += len(box[-1])
                if b"not seeing messages from other users" in b"".join(box):
                    health.error = PARTIAL_VIEW

    @staticmethod
    async def _exit_status(proc: JournalProcess) -> int:
        """Wait for the process to end (killing it if its stdout ended but it
        lingers) and reap it; 255 when the connection went with it."""
        for _ in range(2):
            try:
                return await asyncio.wait_for(proc.wait(), 5.0)
            except asyncio.TimeoutError:
                proc.kill()
            except (OSError, ConnectionDown):
                return 255
        return -9

    async def _pump(
        self, proc: JournalProcess, emit: Emit, health: SourceHealth, stop: asyncio.Event
    ) -> tuple[bool, bool]:
        """Read stdout into chunks until EOF or stop: (got any record, stopped)."""
        splitter = RecordSplitter()
        lines: list[tuple[str, int]] = []
        nbytes = 0
        cursor: str | None = None
        deadline = 0.0
        got = False
        stopper = asyncio.ensure_future(stop.wait())
        reading: asyncio.Future[bytes] | None = None
        try:
            while True:
                if reading is None:
                    reading = asyncio.ensure_future(proc.stdout.read(READ_BLOCK))
                timeout = max(0.0, deadline - time.monotonic()) if lines else None
                done, _ = await asyncio.wait(
                    {reading, stopper}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED
                )
                if stopper in done:
                    return got, True  # the lines not emitted yet are read again next time
                eof = small = False
                if reading in done:
                    try:
                        data = reading.result()
                    except (OSError, EOFError, ConnectionDown):
                        data = b""  # the connection was lost: restarted like an exit
                    reading = None
                    small = len(data) < READ_BLOCK // 2
                    if data:
                        new, n, c = splitter.feed(data)
                        if new:
                            if not lines:
                                deadline = time.monotonic() + CHUNK_SECONDS
                            lines += new
                            nbytes += n
                            if c is not None:
                                cursor = c
                        elif n:
                            nbytes += n
                    else:
                        eof = True
                if lines and (eof or len(lines) >= CHUNK_LINES or nbytes >= CHUNK_BYTES
                              or time.monotonic() >= deadline):
                    if cursor is not None:
                        self.cursor = cursor
                    chunk = Chunk(self.key, lines, nbytes,
                                  Checkpoint(self.key, cursor=self.cursor) if self.cursor else None)
                    lines, nbytes, cursor = [], 0, None
                    got = True
                    await emit(chunk)
                    if health.state != "running" or health.error not in (None, PARTIAL_VIEW):
                        health.state = "running"
                        health.error = None
                    if stop.is_set():
                        return got, True
                if eof:
                    return got, False
                if small:
                    pause = COALESCE_SECONDS
                    if lines:
                        pause = min(pause, deadline - time.monotonic())
                    if pause > 0:
                        await asyncio.sleep(pause)
        finally:
            stopper.cancel()
            if reading is not None:
                reading.cancel()
                try:
                    await reading
                except (asyncio.CancelledError, Exception):
                    pass
