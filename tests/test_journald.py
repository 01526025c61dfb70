"""The journald source with the real journalctl, on journal files this test
writes itself with systemd-journal-remote (export format in, a .journal file
out; a second run appends to the same file), plus fake runners for the command
line, a journalctl that dies mid-stream and odd output."""

from __future__ import annotations

import asyncio
import json
import os
import shlex
import shutil
import sqlite3
import struct
import subprocess
import sys
import time
from pathlib import Path

import pytest

from soc_tui.model import FLAG_TRUNCATED, Checkpoint
from soc_tui.parse import LineParser
from soc_tui.sources.base import ConnectionDown, SourceHealth, SshRefused, parse_spec
from soc_tui.sources.journald import (
    MAX_HOLD,
    NOT_FOUND,
    JournaldError,
    JournaldSource,
    RecordSplitter,
    local_runner,
)
from soc_tui.sources.tail import MAX_LINE, Chunk

JOURNALCTL = shutil.which("journalctl")
REMOTE = next(
    (p for p in (shutil.which("systemd-journal-remote"), "/lib/systemd/systemd-journal-remote",
                 "/usr/lib/systemd/systemd-journal-remote") if p and os.access(p, os.X_OK)),
    None,
)
needs_journal = pytest.mark.skipif(
    JOURNALCTL is None or REMOTE is None,
    reason="needs journalctl and systemd-journal-remote (apt-get install -y systemd systemd-journal-remote)",
)

BOOT = "0123456789abcdef0123456789abcdef"
T0 = 1_767_261_302_000_000  # 2026-01-01T09:55:02Z in µs


# ------------------------------------------------------------ fixtures
def export(records: list[dict[str, str | bytes]]) -> bytes:
    """systemd's journal export format (binary-safe form for values with newlines)."""
    out = bytearray()
    for rec in records:
        for key, value in rec.items():
            data = value.encode() if isinstance(value, str) else value
            if b"\n" in data:
                out += key.encode() + b"\n" + struct.pack("<Q", len(data)) + data + b"\n"
            else:
                out += key.encode() + b"=" + data + b"\n"
        out += b"\n"
    return bytes(out)


def record(i: int, host: str, app: str, pid: int, message: str | bytes) -> dict[str, str | bytes]:
    return {
        "__REALTIME_TIMESTAMP": str(T0 + i * 1_000_000 + 123),
        "__MONOTONIC_TIMESTAMP": str(1_000_000 + i * 1_000_000),
        "_BOOT_ID": BOOT,
        "_HOSTNAME": host,
        "SYSLOG_IDENTIFIER": app,
        "_PID": str(pid),
        "PRIORITY": "6",
        "_TRANSPORT": "syslog",
        "MESSAGE": message,
    }


def story(start: int, n: int) -> list[dict[str, str | bytes]]:
    """n records from index `start`: sshd failures from a few addresses and sudo."""
    out = []
    for i in range(start, start + n):
        if i % 5 == 4:
            out.append(record(i, "db-01", "sudo", 7000 + i,
                              f"alice : TTY=pts/0 ; PWD=/home/alice ; USER=root ; COMMAND=/usr/bin/id -u {i}"))
        else:
            ip = f"203.0.113.{i % 250 + 1}"
            out.append(record(i, "bastion", "sshd", 4000 + i,
                              f"Failed password for invalid user u{i} from {ip} port {40000 + i} ssh2"))
    return out


def write_journal(path: Path, records: list[dict[str, str | bytes]]) -> None:
    """Append `records` to the journal file `path` (created if missing)."""
    assert REMOTE is not None
    proc = subprocess.run([REMOTE, f"--output={path}", "-"], input=export(records),
                          capture_output=True, timeout=30)
    assert proc.returncode == 0, proc.stderr.decode()


def source(path: Path | str, *, follow: bool, runner=None, cursor: str | None = None) -> JournaldSource:
    src = JournaldSource(parse_spec(f"journald://{path}"), follow=follow, runner=runner)
    if cursor is not None:
        src.checkpoint = Checkpoint(src.key, cursor=cursor)
    src.backoff_first, src.backoff_cap = 0.05, 0.2
    return src


class Collected:
    def __init__(self) -> None:
        self.chunks: list[Chunk] = []

    async def __call__(self, chunk: Chunk) -> None:
        self.chunks.append(chunk)

    @property
    def lines(self) -> list[str]:
        return [t for c in self.chunks for t, _ in c.lines]

    def messages(self) -> list[str]:
        return [json.loads(t)["MESSAGE"] for t in self.lines]


async def backfill(src: JournaldSource) -> tuple[Collected, SourceHealth]:
    got, health = Collected(), SourceHealth(src.key)
    await asyncio.wait_for(src.run(got, health, asyncio.Event()), 20)
    return got, health


async def until(cond, timeout: float = 10.0) -> None:
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while not cond():
        assert loop.time() < end, "timed out"
        await asyncio.sleep(0.02)


def cursor_of(line: str) -> str:
    return json.loads(line)["__CURSOR"]


def cursors(lines: list[str]) -> list[str]:
    """Records by cursor (journalctl writes a record's fields in no fixed order)."""
    return [cursor_of(t) for t in lines]


# ------------------------------------------------------------ the command line
class FakeProc:
    """A journalctl that writes `out` and exits with `rc` (or runs until killed)."""

    def __init__(self, out: bytes = b"", rc: int = 0, err: bytes = b"", hang: bool = False) -> None:
        self.stdout = asyncio.StreamReader()
        self.stderr = asyncio.StreamReader()
        self.rc = rc
        self.killed = False
        self.done = asyncio.Event()
        self.stdout.feed_data(out)
        self.stderr.feed_data(err)
        if not hang:
            self._exit()

    def _exit(self) -> None:
        self.stdout.feed_eof()
        self.stderr.feed_eof()
        self.done.set()

    async def wait(self) -> int:
        await self.done.wait()
        return self.rc

    def kill(self) -> None:
        if not self.done.is_set():
            self.killed = True
            self.rc = -9
            self._exit()

    terminate = kill


def fake_line(i: int, cursor: str | None = None) -> bytes:
    cursor = cursor or f"s=abc;i={i:x};b={BOOT};m=1;t=2;x=3"
    return json.dumps({"__CURSOR": cursor, "MESSAGE": f"m{i}", "_HOSTNAME": "h"}).encode() + b"\n"


async def test_argv_file_directory_follow_and_cursor(tmp_path: Path) -> None:
    calls: list[list[str]] = []

    async def runner(argv: list[str]):
        calls.append(argv)
        return FakeProc()

    journal = tmp_path / "system.journal"
    journal.write_bytes(b"")
    odd = "s=1a2b;i=3c;b=4d;m=5e;t=6f;x=7'$(touch /tmp/x) \"q\""
    await backfill(source(journal, follow=False, runner=runner, cursor=odd))
    await backfill(source(tmp_path, follow=False, runner=runner))
    argv_file, argv_dir = calls
    assert argv_file[:4] == ["journalctl", "-o", "json", "--no-pager"]
    assert "--all" in argv_file  # else fields over 4096 bytes come as null
    assert "-f" not in argv_file and "--no-tail" not in argv_file
    assert f"--after-cursor={odd}" in argv_file
    assert argv_file[-2:] == ["--file", str(journal)]
    assert argv_dir[-2:] == ["-D", str(tmp_path)] and not any(a.startswith("--after-cursor") for a in argv_dir)
    # A remote runner quotes the list with shlex.join: the cursor stays one argument.
    assert shlex.split(shlex.join(argv_file)) == argv_file

    # Following, without and with a cursor: --no-tail both times (with -f alone,
    # journalctl starts at the last 10 records even after --after-cursor).
    calls.clear()
    src = source(journal, follow=True, runner=runner)
    lines = fake_line(1) + fake_line(2)

    async def runner2(argv: list[str]):
        calls.append(argv)
        if len(calls) == 1:
            return FakeProc(lines, rc=0)  # exits while following: restarted
        stop.set()
        return FakeProc(hang=True)

    src.runner = runner2
    stop = asyncio.Event()
    got = Collected()
    await asyncio.wait_for(src.run(got, SourceHealth(src.key), stop), 5)
    first, second = calls
    assert first[4:7] == ["--all", "-f", "--no-tail"] and not any("--after-cursor" in a for a in first)
    assert second[4:7] == ["--all", "-f", "--no-tail"]
    assert f"--after-cursor={cursor_of(fake_line(2).decode())}" in second
    assert got.chunks[-1].checkpoint == Checkpoint(src.key, cursor=cursor_of(fake_line(2).decode()))

    # journald+ssh: no --file/-D; the runner gets the same list.
    remote = JournaldSource(parse_spec("journald+ssh://admin@web-01:2222"), follow=True)
    argv = remote.argv("s=1;i=2")
    assert argv == ["journalctl", "-o", "json", "--no-pager", "--all", "-f", "--no-tail",
                    "--after-cursor=s=1;i=2"]


# ------------------------------------------------------------ the real journalctl
@needs_journal
async def test_backfill_all_records_with_fields(tmp_path: Path) -> None:
    journal = tmp_path / "a.journal"
    recs = story(0, 5000)
    recs[7]["MESSAGE"] = "Failed password for root from 198.51.100.9 port 2222 ssh2\nsecond line \x1b[31m"
    write_journal(journal, recs)
    got, health = await backfill(source(journal, follow=False))
    assert health.state == "done"
    assert len(got.lines) == 5000
    # Chunks of at most ~2000 records, each checkpointed at its last record's cursor.
    assert all(0 < len(c.lines) <= 2300 for c in got.chunks)
    for c in got.chunks:
        assert c.checkpoint == Checkpoint(f"journald://{journal}", cursor=cursor_of(c.lines[-1][0]))
        assert c.nbytes == sum(len(t.encode()) + 1 for t, _ in c.lines)
    parser = LineParser(fmt="journald", source_id=f"journald://{journal}")
    events = [parser.parse(t, f) for c in got.chunks for t, f in c.lines]
    for i, (ev, rec) in enumerate(zip(events, recs)):
        assert ev.ts == T0 + i * 1_000_000 + 123
        assert (ev.host, ev.app, ev.pid, ev.message) == (
            rec["_HOSTNAME"], rec["SYSLOG_IDENTIFIER"], int(rec["_PID"]), rec["MESSAGE"])
        assert not ev.unparsed
    assert events[0].src_ip == "203.0.113.1" and events[0].user == "u0"
    assert events[4].app == "sudo" and events[4].target_user == "root"


@needs_journal
async def test_resume_after_checkpoint_cursor(tmp_path: Path) -> None:
    journal = tmp_path / "a.journal"
    recs = story(0, 300)
    write_journal(journal, recs)
    got, _ = await backfill(source(journal, follow=False))
    lines = got.lines
    for k in (0, 136, 298, 299):
        again, _ = await backfill(source(journal, follow=False, cursor=cursor_of(lines[k])))
        assert cursors(again.lines) == cursors(lines[k + 1:])
    # Following from a cursor: everything after it, not journalctl's last 10 records.
    src = source(journal, follow=True, cursor=cursor_of(lines[100]))
    got2, stop = Collected(), asyncio.Event()
    task = asyncio.create_task(src.run(got2, SourceHealth(src.key), stop))
    await until(lambda: len(got2.lines) >= 199)
    await asyncio.sleep(0.2)
    stop.set()
    await asyncio.wait_for(task, 5)
    assert cursors(got2.lines) == cursors(lines[101:])


class Tracking:
    """Wraps local_runner: keeps every process and the health state at each start."""

    def __init__(self, health: SourceHealth | None = None) -> None:
        self.procs = []
        self.argvs: list[list[str]] = []
        self.states: list[str] = []
        self.health = health

    async def __call__(self, argv: list[str]):
        self.argvs.append(argv)
        if self.health is not None:
            self.states.append(self.health.state)
        proc = await local_runner(argv)
        self.procs.append(proc)
        return proc


@needs_journal
async def test_follow_appended_records_arrive_once_and_stop_kills(tmp_path: Path) -> None:
    journal = tmp_path / "a.journal"
    write_journal(journal, story(0, 50))
    tracking = Tracking()
    src = source(journal, follow=True, runner=tracking)
    got, health, stop = Collected(), SourceHealth(src.key), asyncio.Event()
    task = asyncio.create_task(src.run(got, health, stop))
    await until(lambda: len(got.lines) == 50)
    assert health.state == "running"
    await asyncio.to_thread(write_journal, journal, story(50, 30))
    await until(lambda: len(got.lines) == 80)
    await asyncio.to_thread(write_journal, journal, story(80, 1))
    await until(lambda: len(got.lines) == 81)
    await asyncio.sleep(0.3)
    stop.set()
    await asyncio.wait_for(task, 5)
    assert got.messages() == [r["MESSAGE"] for r in story(0, 81)]
    assert len(tracking.procs) == 1 and src.restarts == 0
    assert tracking.procs[0].proc.returncode is not None  # killed and reaped
    assert got.chunks[-1].checkpoint.cursor == cursor_of(got.lines[-1])


class Dying:
    """A journalctl that dies after `limits[k]` records in its k-th run: its
    stdout ends in the middle of the next record, and the process is killed."""

    def __init__(self, limits: list[int | None], health: SourceHealth) -> None:
        self.limits = limits
        self.tracking = Tracking(health)

    async def __call__(self, argv: list[str]):
        proc = await self.tracking(argv)
        limit = self.limits[len(self.tracking.procs) - 1] if len(self.tracking.procs) <= len(self.limits) else None
        if limit is None:
            return proc
        real = proc.stdout

        class Cut:
            seen = 0
            dead = False

            async def read(self, n: int = -1) -> bytes:
                if self.dead:
                    return b""
                data = await real.read(min(n, 4096))
                pos = -1
                for _ in range(limit - self.seen):
                    pos = data.find(b"\n", pos + 1)
                    if pos < 0:
                        self.seen += data.count(b"\n")
                        return data
                self.dead = True
                proc.kill()
                return data[: pos + 1 + 40]  # ends 40 bytes into the next record

        proc.stdout = Cut()
        return proc


@needs_journal
async def test_journalctl_dying_mid_stream_restarts_after_last_cursor(tmp_path: Path) -> None:
    journal = tmp_path / "a.journal"
    recs = story(0, 600)
    write_journal(journal, recs)
    key = f"journald://{journal}"
    health = SourceHealth(key)
    dying = Dying([137, 1, 250], health)
    src = source(journal, follow=True, runner=dying)
    got, stop = Collected(), asyncio.Event()
    task = asyncio.create_task(src.run(got, health, stop))
    await until(lambda: len(got.lines) >= 600)
    await asyncio.sleep(0.3)
    stop.set()
    await asyncio.wait_for(task, 5)
    # Nothing lost, nothing twice, in order.
    assert got.messages() == [r["MESSAGE"] for r in recs]
    assert src.restarts == 3 and len(dying.tracking.procs) == 4
    assert dying.tracking.states[1:] == ["reconnecting"] * 3
    # Each restart resumed after the last record emitted before the death.
    lines = got.lines
    for argv, k in zip(dying.tracking.argvs[1:], (137, 138, 388)):
        assert f"--after-cursor={cursor_of(lines[k - 1])}" in argv
    assert health.state == "running" and health.error is None
    assert all(p.proc.returncode is not None for p in dying.tracking.procs)


@needs_journal
async def test_long_records_whole_or_cut_and_flagged(tmp_path: Path) -> None:
    journal = tmp_path / "a.journal"
    recs = story(0, 4)
    recs[1]["MESSAGE"] = "A" * 5000 + " Failed password for root from 192.0.2.1 port 22 ssh2"
    recs[2]["MESSAGE"] = "B" * 100_000
    write_journal(journal, recs)
    got, _ = await backfill(source(journal, follow=False))
    (t0, f0), (t1, f1), (t2, f2), (t3, f3) = [line for c in got.chunks for line in c.lines]
    assert (f0, f1, f3) == (0, 0, 0)
    assert json.loads(t1)["MESSAGE"] == recs[1]["MESSAGE"]  # over 4096 bytes, not null
    assert f2 == FLAG_TRUNCATED and len(t2.encode()) <= MAX_LINE
    d = json.loads(t2)  # still a journal record: parsed, the message cut
    assert d["MESSAGE"].startswith("BBBB") and d["_HOSTNAME"] == "bastion"
    ev = LineParser(fmt="journald").parse(t2, f2)
    assert ev.truncated and not ev.unparsed and ev.app == "sshd"
    # Resuming after the long record skips exactly it.
    again, _ = await backfill(source(journal, follow=False, cursor=d["__CURSOR"]))
    assert cursors(again.lines) == cursors([t3])


def test_splitter_over_long_record_fed_in_pieces() -> None:
    cursor = f"s=feed;i=99;b={BOOT};m=1;t=2;x=3"
    huge = b'{"MESSAGE":"' + b"C" * (MAX_HOLD + 5000) + b'","__CURSOR":"' + cursor.encode() + b'","_PID":"1"}'
    mid = b'{"MESSAGE":"' + b"D" * (MAX_LINE + 10) + b'","__CURSOR":"s=mid","_PID":"2"}'
    data = fake_line(1) + huge + b"\n" + mid + b"\n" + fake_line(2) + b'{"MESSAGE":"partial'
    sp = RecordSplitter()
    out, total, cursors = [], 0, []
    for i in range(0, len(data), 1000):  # 1000-byte reads: the cursor is cut by reads
        lines, n, c = sp.feed(data[i:i + 1000])
        out += lines
        total += n
        if c:
            cursors.append(c)
    assert [f for _, f in out] == [0, FLAG_TRUNCATED, FLAG_TRUNCATED, 0]
    assert out[1][0].startswith('{"MESSAGE":"CCC') and len(out[1][0].encode()) == MAX_LINE
    assert json.loads(out[2][0])["__CURSOR"] == "s=mid"
    assert total == len(data) - len(b'{"MESSAGE":"partial')
    # Each feed reports the cursor of the last record it completed.
    assert cursors == [cursor_of(fake_line(1).decode()), cursor, cursor_of(fake_line(2).decode())]
    # The huge record's cursor was reported by the feed that completed it.
    sp2 = RecordSplitter()
    sp2.feed(huge[:MAX_HOLD + 100])
    lines, n, c = sp2.feed(huge[MAX_HOLD + 100:] + b"\n")
    assert c == cursor and lines[0][1] == FLAG_TRUNCATED and n == len(huge) + 1
    assert sp2.feed(mid + b"\n") == ([(lines2 := RecordSplitter().feed(mid + b"\n")[0])[0]], len(mid) + 1, "s=mid")
    assert lines2[0][1] == FLAG_TRUNCATED


# ------------------------------------------------------------ errors
@needs_journal
@pytest.mark.parametrize("follow", [True, False])
async def test_missing_journal_file_is_a_clear_error(tmp_path: Path, follow: bool) -> None:
    missing = tmp_path / "gone.journal"
    with pytest.raises(JournaldError) as info:
        await backfill(source(missing, follow=follow))
    msg = str(info.value)
    assert "\n" not in msg and "No such file or directory" in msg and str(missing) in msg


async def test_missing_journalctl_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(OSError) as info:
        await backfill(source("/var/log/journal", follow=True))
    assert str(info.value) == NOT_FOUND
    # Over SSH (status 127 from the remote shell) it names the host.
    src = JournaldSource(parse_spec("journald+ssh://web-01"), follow=True,
                         runner=lambda argv: _ret(FakeProc(rc=127, err=b"bash: journalctl: command not found\n")))
    with pytest.raises(JournaldError, match="journalctl not found on web-01"):
        await asyncio.wait_for(src.run(Collected(), SourceHealth(src.key), asyncio.Event()), 5)


async def _ret(value):
    return value


@needs_journal
@pytest.mark.skipif(os.geteuid() != 0 or shutil.which("setpriv") is None,
                    reason="needs root and setpriv to run journalctl as an unprivileged user")
async def test_no_permission_names_the_group_fix(tmp_path: Path) -> None:
    journal = tmp_path / "a.journal"
    write_journal(journal, story(0, 3))
    os.chmod(journal, 0o640)

    async def as_nobody(argv: list[str]):
        return await local_runner(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", *argv])

    with pytest.raises(JournaldError) as info:
        await backfill(source(journal, follow=True, runner=as_nobody))
    assert "Permission denied" in str(info.value) and "systemd-journal" in str(info.value)


async def test_stop_emits_nothing_partial_and_kills() -> None:
    procs: list[FakeProc] = []

    async def runner(argv: list[str]):
        procs.append(FakeProc(fake_line(1) + fake_line(2) + b'{"MESSAGE":"par', hang=True))
        return procs[-1]

    src = JournaldSource(parse_spec("journald://"), follow=True, runner=runner)
    got, stop = Collected(), asyncio.Event()
    task = asyncio.create_task(src.run(got, SourceHealth(src.key), stop))
    await until(lambda: len(got.lines) == 2)  # the 50 ms chunk timer emitted them
    stop.set()
    await asyncio.wait_for(task, 2)
    assert got.lines == [fake_line(1).decode()[:-1], fake_line(2).decode()[:-1]]
    assert len(procs) == 1 and procs[0].killed


async def test_failure_after_running_retries_with_backoff() -> None:
    """A journalctl that worked once and then fails (e.g. a lost SSH connection,
    a runner raising OSError) is retried, not fatal, while following."""
    calls = 0
    health = SourceHealth("j")
    stop = asyncio.Event()

    async def runner(argv: list[str]):
        nonlocal calls
        calls += 1
        if calls == 1:
            return FakeProc(fake_line(1), rc=0)
        if calls == 2:
            raise ConnectionRefusedError(111, "Connection refused")
        if calls == 3:
            raise ConnectionDown("web-01: connection lost: reset by peer")
        if calls == 4:
            assert health.state == "reconnecting" and "connection lost" in (health.error or "")
            return FakeProc(rc=1, err=b"Failed to open files: Input/output error\n")
        assert health.state == "reconnecting" and "Input/output error" in (health.error or "")
        return FakeProc(fake_line(2), rc=1)

    src = JournaldSource(parse_spec("journald://"), follow=True, runner=runner)
    src.backoff_first = 0.01
    got = Collected()

    async def emit(chunk: Chunk) -> None:
        await got(chunk)
        if len(got.lines) == 2:
            stop.set()

    await asyncio.wait_for(src.run(emit, health, stop), 5)
    assert got.lines == [fake_line(1).decode()[:-1], fake_line(2).decode()[:-1]]
    assert calls == 5 and health.state == "running" and health.error is None


async def test_ssh_refused_ends_a_backfill_and_is_retried_slowly_while_following(monkeypatch) -> None:
    calls: list[float] = []

    async def runner(argv: list[str]):
        calls.append(time.monotonic())
        raise SshRefused("web-01: host key changed: fix known_hosts")

    src = JournaldSource(parse_spec("journald+ssh://web-01"), follow=False, runner=runner)
    with pytest.raises(SshRefused):
        await asyncio.wait_for(src.run(Collected(), SourceHealth(src.key), asyncio.Event()), 2)
    # Following: the source shows the error and looks again later (after
    # `soc-tui ssh-trust` it recovers by itself), instead of ending.
    monkeypatch.setattr("soc_tui.sources.journald.REFUSED_RETRY", 0.2)
    calls.clear()
    src = JournaldSource(parse_spec("journald+ssh://web-01"), follow=True, runner=runner)
    health, stop = SourceHealth(src.key), asyncio.Event()
    task = asyncio.create_task(src.run(Collected(), health, stop))
    await asyncio.sleep(0.5)
    assert health.state == "error" and "host key changed" in (health.error or "")
    assert 2 <= len(calls) <= 4 and not task.done()
    stop.set()
    await asyncio.wait_for(task, 2)


# ------------------------------------------------------------ end to end
@needs_journal
@pytest.mark.slow
def test_cli_ingest_twice_stores_each_record_once(tmp_path: Path) -> None:
    journal = tmp_path / "a.journal"
    write_journal(journal, story(0, 1200))
    db = tmp_path / "soc.db"
    spec = f"journald://{journal}"

    def ingest() -> None:
        proc = subprocess.run([sys.executable, "-m", "soc_tui", "--db", str(db), "ingest", "--no-rules", spec],
                              capture_output=True, text=True, timeout=120)
        assert proc.returncode == 0, proc.stderr

    def stored() -> tuple[list[str], str | None]:
        con = sqlite3.connect(db)
        try:
            msgs = [r[0] for r in con.execute("SELECT message FROM events ORDER BY id")]
            row = con.execute("SELECT cursor FROM checkpoints WHERE key = ?", (spec,)).fetchone()
        finally:
            con.close()
        return msgs, row[0] if row else None

    ingest()
    msgs, cursor = stored()
    assert msgs == [r["MESSAGE"] for r in story(0, 1200)]
    assert cursor is not None and ";i=4b0;" in cursor  # the 1200th record's cursor
    ingest()  # nothing new: nothing stored twice
    assert stored()[0] == msgs
    write_journal(journal, story(1200, 300))
    ingest()  # only the new records
    msgs2, cursor2 = stored()
    assert msgs2 == [r["MESSAGE"] for r in story(0, 1500)]
    assert ";i=5dc;" in (cursor2 or "")


@needs_journal
@pytest.mark.slow
def test_cli_collect_sigterm_then_resume_stores_each_record_once(tmp_path: Path) -> None:
    import signal
    import time

    journal = tmp_path / "a.journal"
    write_journal(journal, story(0, 400))
    db = tmp_path / "soc.db"
    spec = f"journald://{journal}"

    def count() -> int:
        if not db.exists():
            return 0
        con = sqlite3.connect(db)
        try:
            return con.execute("SELECT count(*) FROM events").fetchone()[0]
        except sqlite3.OperationalError:  # schema not there yet
            return 0
        finally:
            con.close()

    def wait_for(n: int, timeout: float = 20.0) -> int:
        end = time.monotonic() + timeout
        while (got := count()) < n and time.monotonic() < end:
            time.sleep(0.05)
        return got

    proc = subprocess.Popen([sys.executable, "-m", "soc_tui", "--db", str(db), "collect", "--no-rules", spec],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        assert wait_for(400) == 400
        write_journal(journal, story(400, 100))  # appended while collect follows
        assert wait_for(500) == 500
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=20)
    assert proc.returncode == 0, err.decode()
    write_journal(journal, story(500, 50))  # while nothing ran
    run = subprocess.run([sys.executable, "-m", "soc_tui", "--db", str(db), "ingest", "--no-rules", spec],
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    con = sqlite3.connect(db)
    try:
        msgs = [r[0] for r in con.execute("SELECT message FROM events ORDER BY id")]
    finally:
        con.close()
    assert msgs == [r["MESSAGE"] for r in story(0, 550)]
