"""The tailing state machine on real files: rotation, truncation, restarts, odd bytes."""

from __future__ import annotations

import gzip
import os
from pathlib import Path

from logfiles import rotate

from soc_tui.model import FLAG_TRUNCATED, Checkpoint
from soc_tui.sources.tail import MAX_LINE, FileFollower


class Clock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


def drain(f: FileFollower, clock: Clock | None = None, rounds: int = 6):
    """Poll until nothing more comes; returns (lines, flags, last checkpoint, gaps)."""
    texts, flags, gaps = [], [], []
    cp = None
    quiet = 0
    while quiet < rounds:
        chunks = f.poll()
        if clock is not None:
            clock.t += 0.5
        if not any(c.lines or c.gaps for c in chunks):
            quiet += 1
        for c in chunks:
            texts += [t for t, _ in c.lines]
            flags += [fl for _, fl in c.lines]
            gaps += c.gaps
            cp = c.checkpoint
    return texts, flags, cp, gaps


def read_then_stop(log: Path) -> Checkpoint:
    """Follow `log` to its end, stop, and return the checkpoint a restart gets."""
    f = FileFollower(str(log))
    cp = drain(f)[2]
    f.close()
    return cp


def write(path: Path, text: str | bytes, mode: str = "a") -> None:
    data = text.encode() if isinstance(text, str) else text
    with open(path, mode + "b") as fh:
        fh.write(data)


def test_partial_line_waits_until_complete(tmp_path: Path) -> None:
    log = tmp_path / "app.log"
    write(log, "one\ntw")
    f = FileFollower(str(log))
    lines, _, cp, _ = drain(f)
    assert lines == ["one"]
    assert cp.offset == 4
    write(log, "o\nthree\n")
    lines, _, cp, _ = drain(f)
    assert lines == ["two", "three"]
    assert cp.offset == log.stat().st_size


def test_backfill_emits_final_line_without_newline(tmp_path: Path) -> None:
    log = tmp_path / "app.log"
    write(log, "one\ntwo")
    f = FileFollower(str(log), follow=False)
    lines, _, cp, _ = drain(f)
    assert lines == ["one", "two"]
    assert cp.offset == 7
    assert f.done


def test_crlf_nul_and_invalid_utf8_survive(tmp_path: Path) -> None:
    log = tmp_path / "app.log"
    write(log, b"crlf line\r\nnul\x00byte\nbad \xff\xfe utf8\nok\n")
    lines, _, _, _ = drain(FileFollower(str(log)))
    assert lines == ["crlf line\r", "nul\x00byte", "bad \ufffd\ufffd utf8", "ok"]


def test_line_over_64k_is_kept_truncated(tmp_path: Path) -> None:
    log = tmp_path / "app.log"
    big = "x" * (MAX_LINE + 5000)
    f = FileFollower(str(log), read_bytes=8192)  # the long line arrives in many reads
    write(log, "before\n" + big[:30000])
    assert drain(f)[0] == ["before"]
    write(log, big[30000:] + "\nafter\n")
    lines, flags, cp, _ = drain(f)
    assert [len(x) for x in lines] == [MAX_LINE, 5]
    assert flags == [FLAG_TRUNCATED, 0]
    assert cp.offset == log.stat().st_size


def test_rename_rotation_with_late_writes(tmp_path: Path) -> None:
    log = tmp_path / "app.log"
    clock = Clock()
    write(log, "a1\na2\n")
    f = FileFollower(str(log), grace=1.0, clock=clock)
    assert drain(f, clock)[0] == ["a1", "a2"]
    old = open(log, "ab")
    os.rename(log, tmp_path / "app.log.1")
    write(log, "b1\n")  # the new file appears
    seen = [t for c in f.poll() for t, _ in c.lines]  # sees the new inode, waits
    old.write(b"a3 late\n")  # a daemon that has not reopened yet
    old.flush()
    clock.t += 0.5
    seen += [t for c in f.poll() for t, _ in c.lines]
    old.write(b"a4 late\n")
    old.close()
    write(log, "b2\n")
    lines, _, cp, _ = drain(f, clock)
    assert seen + lines == ["a3 late", "a4 late", "b1", "b2"]
    assert cp.ino == log.stat().st_ino and cp.offset == log.stat().st_size


def test_copytruncate_finishes_from_the_rotated_copy(tmp_path: Path) -> None:
    log = tmp_path / "app.log"
    write(log, "l1\nl2\n")
    f = FileFollower(str(log))
    assert drain(f)[0] == ["l1", "l2"]
    write(log, "l3\nl4\n")  # written, not yet read
    (tmp_path / "app.log.1").write_bytes(log.read_bytes())  # logrotate copytruncate
    with open(log, "r+b") as fh:
        fh.truncate(0)
    write(log, "n1\n")
    lines, _, cp, gaps = drain(f)
    assert lines == ["l3", "l4", "n1"]
    assert gaps == []
    assert cp.offset == 3


def test_copytruncate_without_copy_records_a_gap(tmp_path: Path) -> None:
    log = tmp_path / "app.log"
    write(log, "l1\nl2\n")
    f = FileFollower(str(log))
    drain(f)
    with open(log, "r+b") as fh:
        fh.truncate(0)
    write(log, "n1\n")
    lines, _, _, gaps = drain(f)
    assert lines == ["n1"]
    assert [g.reason for g in gaps] == ["truncated"]


def test_file_replaced_in_place_records_a_gap_and_restarts(tmp_path: Path) -> None:
    log = tmp_path / "app.log"
    write(log, "first version line\n")
    f = FileFollower(str(log))
    drain(f)
    ino = log.stat().st_ino
    write(log, "SECOND version, longer than before\nmore\n", mode="w")  # same inode
    assert log.stat().st_ino == ino
    lines, _, _, gaps = drain(f)
    assert lines == ["SECOND version, longer than before", "more"]
    assert [g.reason for g in gaps] == ["replaced"]


def test_restart_after_rotations_while_stopped(tmp_path: Path) -> None:
    log = tmp_path / "app.log"
    write(log, "a1\na2\n")
    cp = read_then_stop(log)
    # While we are stopped: more lines, then two rotations.
    write(log, "a3\n")
    os.rename(log, tmp_path / "app.log.1")
    write(log, "b1\nb2\n")
    os.rename(tmp_path / "app.log.1", tmp_path / "app.log.2")
    os.rename(log, tmp_path / "app.log.1")
    write(log, "c1\n")
    f = FileFollower(str(log), cp)
    lines, _, cp2, gaps = drain(f)
    assert lines == ["a3", "b1", "b2", "c1"]
    assert gaps == []
    assert cp2.ino == log.stat().st_ino


def test_restart_resumes_at_offset(tmp_path: Path) -> None:
    log = tmp_path / "app.log"
    write(log, "x1\nx2\n")
    cp = read_then_stop(log)
    write(log, "x3\n")
    assert drain(FileFollower(str(log), cp))[0] == ["x3"]


def test_restart_with_the_file_gone_records_a_gap(tmp_path: Path) -> None:
    log = tmp_path / "app.log"
    write(log, "x1\n")
    st = log.stat()
    cp = Checkpoint(str(log), st.st_dev, st.st_ino, "0" * 64, 3, 3)
    lines, _, _, gaps = drain(FileFollower(str(log), cp))
    assert lines == ["x1"]
    assert [g.reason for g in gaps] == ["lost"]


def test_gz_backfill_and_rerun_reads_nothing_new(tmp_path: Path) -> None:
    gz = tmp_path / "old.log.gz"
    with gzip.open(gz, "wb") as fh:
        fh.write(b"g1\ng2\ng3")
    f = FileFollower(str(gz))  # follow is ignored for .gz
    lines, _, cp, _ = drain(f)
    assert lines == ["g1", "g2", "g3"] and f.done
    again = FileFollower(str(gz), cp)
    assert drain(again)[0] == []


def test_several_rotations_while_waiting_out_the_grace(tmp_path: Path) -> None:
    """Rotations faster than the grace period: no rotated file is skipped."""
    log = tmp_path / "app.log"
    clock = Clock()
    write(log, "x1\n")
    f = FileFollower(str(log), grace=1.0, clock=clock)
    assert drain(f, clock, rounds=1)[0] == ["x1"]
    write(log, "x2\n")
    rotate(log)
    write(log, "y1\n")
    seen = [t for c in f.poll() for t, _ in c.lines]  # rotation seen; grace starts
    rotate(log)  # y moves to .1, x to .2
    write(log, "z1\n")
    rotate(log)
    write(log, "w1\n")
    lines, _, _, gaps = drain(f, clock)
    assert seen + lines == ["x2", "y1", "z1", "w1"]
    assert gaps == []


def test_restart_orders_numbered_rotations_even_with_equal_mtimes(tmp_path: Path) -> None:
    log = tmp_path / "app.log"
    write(log, "a1\n")
    cp = read_then_stop(log)
    write(log, "a2\n")
    rotate(log)
    for name in ("b", "c", "d"):
        write(log, f"{name}1\n")
        rotate(log)
    write(log, "e1\n")
    for p in tmp_path.iterdir():
        os.utime(p, ns=(1_700_000_000_000_000_000, 1_700_000_000_000_000_000))
    lines, _, _, gaps = drain(FileFollower(str(log), cp))
    assert lines == ["a2", "b1", "c1", "d1", "e1"]
    assert gaps == []


def test_rotated_gz_sibling_is_drained_on_restart(tmp_path: Path) -> None:
    log = tmp_path / "app.log"
    write(log, "a1\n")
    cp = read_then_stop(log)
    write(log, "a2\n")
    data = log.read_bytes()
    log.unlink()
    with gzip.open(tmp_path / "app.log.1.gz", "wb") as fh:  # rotated and compressed
        fh.write(data)
    write(log, "b1\n")
    lines, _, _, gaps = drain(FileFollower(str(log), cp))
    assert lines == ["a2", "b1"]
