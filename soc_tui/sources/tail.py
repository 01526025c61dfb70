"""Reading files crash-safely: the tailing state machine (DESIGN section 5).

Owns: turning a file path (and its rotated siblings) into complete lines plus
the checkpoint that covers them. Every source that reads files uses it: local
files here, remote files over SSH later.

The checkpoint is (device, inode, sha256 of the first min(1024, size) bytes and
that length, byte offset after the last complete line). The caller stores it in
the same transaction as the events, so a restart resumes exactly where the
committed data ends.

Per poll, after reading to EOF:
- a different inode at the path: rename rotation. The old handle keeps being
  drained until it has been quiet for `grace` seconds (late writes), then
  every file rotated after it (several rotations may have happened meanwhile),
  then the new file from 0;
- the same inode but smaller than the offset: copytruncate. Finish from the
  rotated sibling whose fingerprint matches, else record a gap; then read the
  file from 0;
- the same inode but different first bytes: the file was replaced in place;
  same as above (a sibling with our fingerprint, else a gap).
On restart: resume at the offset if the file still has our fingerprint; else
find the rotated sibling with it (inode first, then fingerprint), drain it,
then the siblings rotated after it (oldest first), then the current file from 0.

Lines are emitted only when complete (or, when backfilling a file that is not
followed, at its end). A line longer than MAX_LINE bytes keeps its first
MAX_LINE bytes and is flagged truncated; the rest of that line is skipped.
Bytes are decoded as UTF-8 with replacement characters; NUL bytes are kept.

Must not: parse lines, touch the database or import Textual.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import re
import time
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any, BinaryIO, Callable, NamedTuple

from soc_tui.model import FLAG_TRUNCATED, Checkpoint, Gap

MAX_LINE = 64 * 1024
FP_BYTES = 1024
READ_BYTES = 1 << 20


@dataclass(slots=True)
class Chunk:
    """Lines read in one step and the checkpoint that stands after them (None
    for a source that cannot resume, like a syslog receiver or stdin)."""

    source: str
    lines: list[tuple[str, int]]  # (text, flags)
    nbytes: int
    checkpoint: Checkpoint | None
    gaps: list[Gap] = field(default_factory=list)
    # One dict per line merged into its event's `extra` (the syslog sender), or None.
    meta: list[dict[str, Any]] | None = None


def fingerprint(fh: BinaryIO, length: int = FP_BYTES) -> tuple[str, int]:
    """sha256 hex and length of the first `length` bytes readable from fh."""
    fh.seek(0)
    head = fh.read(length)
    return hashlib.sha256(head).hexdigest(), len(head)


class Stat(NamedTuple):
    """What the state machine needs of a stat: identity, size and age."""

    st_dev: int
    st_ino: int
    st_size: int
    st_mtime_ns: int


class LocalFs:
    """The file operations the state machine uses, on the local filesystem.

    Another implementation (`soc_tui.sources.ssh.RemoteFs`) serves remote
    files with the same methods: open (gzip-decompressing `.gz`), stat,
    fstat of an open handle, listdir. Errors are OSError subclasses
    (FileNotFoundError, PermissionError); anything else (a dropped connection)
    propagates out of `FileFollower.poll` and the caller starts over from the
    last checkpoint it emitted.
    """

    def open(self, path: str) -> BinaryIO:
        if path.endswith(".gz"):
            return gzip.open(path, "rb")  # type: ignore[return-value]
        return open(path, "rb")  # noqa: SIM115 - kept open while following

    def stat(self, path: str) -> Stat | os.stat_result:
        return os.stat(path)

    def fstat(self, fh: BinaryIO) -> Stat | os.stat_result:
        return os.fstat(fh.fileno())

    def listdir(self, path: str) -> list[str]:
        return os.listdir(path)


LOCAL = LocalFs()
StatLike = Stat | os.stat_result


def _matches(path: str, cp: Checkpoint, fs: LocalFs = LOCAL) -> bool:
    """Does the file at `path` start with the bytes the checkpoint fingerprinted?"""
    if cp.fp_hash is None:
        return False
    try:
        with fs.open(path) as fh:
            digest, n = fingerprint(fh, cp.fp_len)
    except (OSError, EOFError, gzip.BadGzipFile):
        return False
    return n == cp.fp_len and digest == cp.fp_hash


_ROTATED_SUFFIX = re.compile(r"^[.-](\d+|\d{8}(\d{2})?|\d{4}-\d{2}-\d{2})(\.gz)?$")


def rotated_siblings(path: str, fs: LocalFs = LOCAL) -> list[str]:
    """Files next to `path` named like its rotations (`.1`, `.2.gz`, `-20261126`)."""
    p = PurePosixPath(path) if fs is not LOCAL else Path(path)
    try:
        names = fs.listdir(str(p.parent))
    except OSError:
        return []
    out = []
    for name in names:
        if name.startswith(p.name) and _ROTATED_SUFFIX.match(name[len(p.name):]):
            out.append(str(p.parent / name))
    return out


def _rotation_number(path: str, base: str) -> int | None:
    m = re.match(r"^\.(\d+)(\.gz)?$", os.path.basename(path)[len(base):])
    return int(m.group(1)) if m else None


def _snapshot(path: str, fs: LocalFs) -> list[tuple[str, StatLike]]:
    entries = []
    for s in rotated_siblings(path, fs):
        try:
            entries.append((s, fs.stat(s)))
        except OSError:
            continue
    return entries


def _same(a: list[tuple[str, StatLike]], b: list[tuple[str, StatLike]]) -> bool:
    return sorted((n, st.st_dev, st.st_ino) for n, st in a) == sorted(
        (n, st.st_dev, st.st_ino) for n, st in b
    )


def rotated_in_order(path: str, fs: LocalFs = LOCAL) -> list[tuple[str, StatLike]]:
    """Rotated siblings of `path`, oldest first, with their stat.

    Numbered rotations (`.1` newest) are ordered by number, which stays exact
    however close together they happened; other schemes by modification time.
    The directory is read until two readings agree, so a rotation that is
    shifting `.1` to `.2` meanwhile cannot hide a file or show one twice.
    """
    base = os.path.basename(path)
    entries = _snapshot(path, fs)
    for _ in range(50):
        again = _snapshot(path, fs)
        if _same(entries, again):
            break
        entries = again
        time.sleep(0.001)
    numbers = [_rotation_number(s, base) for s, _ in entries]
    if entries and all(n is not None for n in numbers):
        return [e for _, e in sorted(zip(numbers, entries), key=lambda x: -x[0])]  # type: ignore[operator]
    return sorted(entries, key=lambda e: (e[1].st_mtime_ns, e[0]))


def is_rotated_name(name: str, others: set[str]) -> bool:
    """Is `name` a rotation of one of `others` (used to keep globs off siblings)?"""
    for other in others:
        if other != name and name.startswith(other) and _ROTATED_SUFFIX.match(name[len(other):]):
            return True
    return False


class LineSplitter:
    """Bytes in, complete lines out, with the byte position after the last one.

    A line longer than MAX_LINE bytes keeps its first MAX_LINE bytes and is
    flagged truncated; the rest of it is skipped. Decoding is UTF-8 with
    replacement characters. Used by every reader of byte streams (files, stdin).
    """

    def __init__(self, offset: int = 0) -> None:
        self.pos = offset  # after the last emitted line
        self.read_pos = offset  # bytes consumed
        self.buf = b""  # stream[pos:read_pos] while not skipping
        self.long_head: bytes | None = None  # first MAX_LINE bytes of an over-long line

    def feed(self, data: bytes, out: list[tuple[str, int]]) -> None:
        """Append the complete lines in `data` (after what came before) to `out`."""
        n = len(data)
        if self.long_head is not None:
            i = data.find(b"\n")
            if i < 0:
                self.read_pos += n
                return
            self.read_pos += i + 1
            self.pos = self.read_pos
            out.append((_decode(self.long_head), FLAG_TRUNCATED))
            self.long_head = None
            data = data[i + 1 :]
            n = len(data)
        buf = self.buf + data if self.buf else data
        self.read_pos += n
        last = buf.rfind(b"\n")
        if last >= 0:
            text = buf[: last + 1].decode("utf-8", "replace")
            for line in text.split("\n")[:-1]:
                if len(line) > MAX_LINE // 4:
                    encoded = line.encode("utf-8", "surrogateescape")
                    if len(encoded) > MAX_LINE:
                        out.append((_decode(encoded[:MAX_LINE]), FLAG_TRUNCATED))
                        continue
                out.append((line, 0))
            rest = buf[last + 1 :]
        else:
            rest = buf
        self.pos = self.read_pos - len(rest)
        if len(rest) > MAX_LINE:
            self.long_head = rest[:MAX_LINE]
            self.buf = b""
        else:
            self.buf = rest

    def flush_partial(self, out: list[tuple[str, int]]) -> None:
        """At the end of a stream nobody writes to any more: emit the last partial line."""
        if self.long_head is not None:
            out.append((_decode(self.long_head), FLAG_TRUNCATED))
            self.long_head = None
        elif self.buf:
            out.append((_decode(self.buf), 0))
            self.buf = b""
        self.pos = self.read_pos


class _Reader(LineSplitter):
    """One open file: its identity, fingerprint and the line splitter."""

    def __init__(self, path: str, fh: BinaryIO, offset: int, compressed: bool, fs: LocalFs = LOCAL) -> None:
        super().__init__(offset)
        self.path = path
        self.fh = fh
        self.fs = fs
        self.compressed = compressed
        st = fs.fstat(fh)
        self.dev, self.ino = st.st_dev, st.st_ino
        self.fp_hash, self.fp_len = fingerprint(fh)
        fh.seek(offset)

    def close(self) -> None:
        try:
            self.fh.close()
        except OSError:
            pass

    def stat(self) -> StatLike:
        return self.fs.fstat(self.fh)

    def refresh_fingerprint(self) -> None:
        """Extend the fingerprint while the file is shorter than FP_BYTES."""
        if self.fp_len < FP_BYTES and not self.compressed:
            here = self.fh.tell()
            self.fp_hash, self.fp_len = fingerprint(self.fh)
            self.fh.seek(here)

    def still_ours(self) -> bool:
        """Do the first fp_len bytes on disk still hash to our fingerprint?"""
        if self.compressed:
            return True
        here = self.fh.tell()
        try:
            digest, n = fingerprint(self.fh, self.fp_len)
        finally:
            self.fh.seek(here)
        return n == self.fp_len and digest == self.fp_hash

    def still_ours_as(self, cp: Checkpoint) -> bool:
        """Does this open file start with the bytes `cp` fingerprinted?"""
        digest, n = fingerprint(self.fh, cp.fp_len)
        return n == cp.fp_len and digest == cp.fp_hash

    def seek(self, offset: int) -> None:
        self.fh.seek(offset)
        self.pos = self.read_pos = offset
        self.buf = b""
        self.long_head = None

    def checkpoint(self, key: str) -> Checkpoint:
        return Checkpoint(key, self.dev, self.ino, self.fp_hash, self.fp_len, self.pos)

    def read(self, budget: int, out: list[tuple[str, int]]) -> int:
        """Read up to `budget` bytes, append complete lines to `out`; bytes read."""
        data = self.fh.read(budget)
        if not data:
            return 0
        self.feed(data, out)
        return len(data)


def _decode(b: bytes) -> str:
    return b.decode("utf-8", "replace")


class FileFollower:
    """Follows one configured path across rotations; see the module docstring.

    `follow=False` is backfill: read to the end once, emit the last partial line,
    and report `done`. `find_inode` lets the caller offer checkpoints saved under
    other keys for the same (dev, ino), so a renamed file is not read twice.

    Rotated files still to be drained are opened as soon as they are found and
    kept open, so renames that shift `.1` to `.2` meanwhile change nothing.
    """

    def __init__(
        self,
        path: str,
        checkpoint: Checkpoint | None = None,
        *,
        follow: bool = True,
        grace: float = 1.0,
        read_bytes: int = READ_BYTES,
        find_inode: Callable[[int, int], list[Checkpoint]] | None = None,
        clock: Callable[[], float] = time.monotonic,
        fs: LocalFs = LOCAL,
        key: str | None = None,
    ) -> None:
        self.path = path  # what the filesystem calls the file
        self.key = key or path  # what checkpoints, chunks and gaps call it
        self.fs = fs
        self.checkpoint = checkpoint
        self.follow = follow and not path.endswith(".gz")
        self.grace = grace
        self.read_bytes = read_bytes
        self.find_inode = find_inode
        self.clock = clock
        self.reader: _Reader | None = None
        self.pending: list[_Reader] = []  # rotated files to drain, oldest first
        self.next_current: _Reader | None = None  # the file at `path`, once they are drained
        self.on_current = False  # reader is the file at `path` (not a drained sibling)
        self.rotated_seen: float | None = None
        self.done = False
        self.started = False
        self._gaps: list[Gap] = []
        # Emit a checkpoint as soon as a file is opened, even with no lines, so
        # that a restart knows which file it was (and finds it after rotation).
        self._announce = False

    # -- public -------------------------------------------------------------

    def poll(self) -> list[Chunk]:
        """Read what is available now (at most about `read_bytes`), return chunks."""
        if self.done:
            return []
        if not self.started:
            self._start()
        self._check_rewritten()
        chunks: list[Chunk] = []
        budget = self.read_bytes
        while budget > 0:
            if self.reader is None and not self._advance():
                break
            assert self.reader is not None
            lines: list[tuple[str, int]] = []
            n = self.reader.read(budget, lines)
            budget -= n
            if n:
                self.rotated_seen = None  # the old file is still being written: wait on
                chunks.append(self._chunk(lines, n))
                continue
            switched = self._at_eof(lines)
            if lines:
                chunks.append(self._chunk(lines, 0))
            if switched:
                continue
            if (self._gaps or self._announce) and self.reader is not None:
                chunks.append(self._chunk([], 0))
            break
        return chunks

    def close(self) -> None:
        for r in [self.reader, self.next_current, *self.pending]:
            if r is not None:
                r.close()
        self.reader = self.next_current = None
        self.pending = []

    def bytes_behind(self) -> int:
        """Bytes on disk not yet read (current file only)."""
        if self.reader is None:
            return 0
        try:
            st = self.fs.stat(self.path)
        except OSError:
            return 0
        if self.on_current and st.st_ino == self.reader.ino:
            return max(0, st.st_size - self.reader.pos)
        return st.st_size

    # -- state machine --------------------------------------------------------

    def _chunk(self, lines: list[tuple[str, int]], nbytes: int) -> Chunk:
        assert self.reader is not None
        self.reader.refresh_fingerprint()
        gaps, self._gaps = self._gaps, []
        self._announce = False
        return Chunk(self.key, lines, nbytes, self.reader.checkpoint(self.key), gaps)

    def _gap(self, reason: str, detail: str) -> None:
        self._gaps.append(Gap(self.key, reason, detail))

    def _start(self) -> None:
        self.started = True
        cp = self.checkpoint
        if cp is None and self.find_inode is not None:
            try:
                st = self.fs.stat(self.path)
            except OSError:
                st = None
            if st is not None:
                for other in self.find_inode(st.st_dev, st.st_ino):
                    if _matches(self.path, other, self.fs):
                        cp = Checkpoint(self.key, other.dev, other.ino, other.fp_hash,
                                        other.fp_len, other.offset)
                        break
        if cp is None:
            return  # _advance opens the path from 0
        try:
            st = self.fs.stat(self.path)
        except OSError:
            st = None
        if st is not None and _matches(self.path, cp, self.fs) and (
            self.path.endswith(".gz") or st.st_size >= cp.offset
        ):
            if (st.st_dev, st.st_ino) == (cp.dev, cp.ino) or not self.follow:
                self._open_current(cp.offset)
                return
        if not self.follow:
            # Backfill of a file that changed since it was read: read it whole.
            self._gap("replaced", f"{self.key} no longer matches its checkpoint; read from 0")
            return
        first = self._open_rotated(cp)
        if first is None:
            self._gap(
                "lost",
                f"the file read up to offset {cp.offset} was not found at {self.key} "
                "or among its rotated siblings; reading the current file from 0",
            )
            return
        self._plan_after(first)

    def _open_rotated(self, cp: Checkpoint) -> _Reader | None:
        """Open the rotated sibling holding the checkpointed file, at its offset."""
        entries = rotated_in_order(self.path, self.fs)
        candidates = [s for s, st in entries if (st.st_dev, st.st_ino) == (cp.dev, cp.ino)]
        if cp.fp_len > 0:  # an empty fingerprint matches anything: trust only the inode
            candidates += [s for s, _ in reversed(entries) if s not in candidates]
        for path in candidates:
            if not _matches(path, cp, self.fs):
                continue
            try:
                r = self._reader(path, self.fs.open(path))
            except (OSError, EOFError):
                continue
            if r.still_ours_as(cp):
                r.seek(cp.offset)
                return r
            r.close()
        return None

    def _plan_after(self, first: _Reader | None, after: tuple[int, int, int] | None = None) -> None:
        """Queue `first`, then every sibling rotated after it, then the current file.

        `after` = (dev, ino, mtime_ns) of the file just finished when `first` is
        None. The current file is opened first: whatever rotates after that
        point is found by the next rotation check.
        """
        if first is not None:
            st = first.stat()
            after = (first.dev, first.ino, st.st_mtime_ns)
        assert after is not None
        for _attempt in range(5):
            current = self._try_open(self.path)
            cur_id = (current.dev, current.ino) if current else None
            entries = rotated_in_order(self.path, self.fs)
            ids = [(st.st_dev, st.st_ino) for _, st in entries]
            if after[:2] in ids:
                between = entries[ids.index(after[:2]) + 1 :]
            else:  # the finished file is gone: go by time
                between = [e for e in entries if e[1].st_mtime_ns >= after[2]]
            between_ids = [(st.st_dev, st.st_ino) for _, st in between]
            if cur_id in between_ids:
                between = between[: between_ids.index(cur_id)]
            readers, moved = [], False
            for path, st in between:
                if (st.st_dev, st.st_ino) in (after[:2], cur_id):
                    continue
                r = self._try_open(path)
                if r is None or (r.dev, r.ino) != (st.st_dev, st.st_ino):
                    moved = True  # renamed while we looked: look again
                    if r is not None:
                        r.close()
                    break
                readers.append(r)
            if not moved:
                self.pending = ([first] if first is not None else []) + readers
                self.next_current = current
                return
            for r in readers + ([current] if current else []):
                r.close()
        self._gap("lost", f"{self.key} kept rotating while its rotated files were listed")
        self.pending = [first] if first is not None else []

    def _try_open(self, path: str) -> _Reader | None:
        try:
            return self._reader(path, self.fs.open(path))
        except (OSError, EOFError):
            return None

    def _open_current(self, offset: int) -> bool:
        try:
            fh = self.fs.open(self.path)
        except FileNotFoundError:
            if not self.follow:
                raise
            return False
        self.reader = self._reader(self.path, fh, offset)
        self._on_current()
        return True

    def _reader(self, path: str, fh: BinaryIO, offset: int = 0) -> _Reader:
        """A reader over an opened file; the file is closed if that fails
        (a remote handle would otherwise stay open on the server)."""
        try:
            return _Reader(path, fh, offset, path.endswith(".gz"), self.fs)
        except BaseException:
            fh.close()
            raise

    def _on_current(self) -> None:
        self.on_current = True
        self.rotated_seen = None
        self._announce = True

    def _advance(self) -> bool:
        """Switch to the next file: a pending rotated file, else the current one."""
        if self.pending:
            self.reader = self.pending.pop(0)
            self.on_current = False
            return True
        if self.done:
            return False
        if self.next_current is not None:
            self.reader, self.next_current = self.next_current, None
            self._on_current()
            return True
        return self._open_current(0)

    def _at_eof(self, lines: list[tuple[str, int]]) -> bool:
        """Handle EOF of the reader. True when another reader should be tried now."""
        r = self.reader
        assert r is not None
        if not self.follow:
            r.flush_partial(lines)
            self.done = True
            return False
        if not self.on_current:
            # A rotated file being drained: nobody appends to it any more.
            r.flush_partial(lines)
            if lines:
                return False  # emit these with this file's checkpoint first
            r.close()
            self.reader = None
            return True
        try:
            st = self.fs.stat(self.path)
        except OSError:
            return False  # path gone: rotation in progress; keep the old handle
        if (st.st_dev, st.st_ino) != (r.dev, r.ino):
            now = self.clock()
            if self.rotated_seen is None:
                self.rotated_seen = now
                return False
            if now - self.rotated_seen < self.grace:
                return False
            r.flush_partial(lines)
            if lines:
                return False
            after = (r.dev, r.ino, r.stat().st_mtime_ns)
            r.close()
            self.reader = None
            self._plan_after(None, after)
            return True
        return self._check_rewritten()

    def _check_rewritten(self) -> bool:
        """Truncated or replaced in place? Then switch readers; True when switched."""
        r = self.reader
        if r is None or not self.on_current or not self.follow:
            return False
        size = r.stat().st_size
        if size >= r.read_pos and r.still_ours():
            return False
        why = "truncated" if size < r.read_pos else "replaced"
        cp = r.checkpoint(self.key)
        r.close()
        self.reader = None
        copy = self._open_rotated(cp)  # copytruncate leaves a copy with our first bytes
        if copy is not None:
            self._plan_after(copy)
        else:
            self._gap(why, f"{self.key} was {why} at offset {cp.offset}; "
                      "no rotated copy found, data after that offset may be lost")
        return True
