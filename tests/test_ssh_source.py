"""Remote files over SSH against a real OpenSSH server on localhost.

The collector runs as its own process with a test HOME (its ~/.ssh/config
alias, key and known_hosts), like a user's. Every line carries a sequence
number, so "every line exactly once" is checked line by line.
"""

from __future__ import annotations

import gzip
import os
import pwd
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from sshd import SshServer, keygen, missing
from storedb import stored_events
from test_journald import needs_journal, story, write_journal


ROOT = Path(__file__).resolve().parent.parent


def line(i: int) -> str:
    return f"Dec  3 10:{(i // 60) % 60:02d}:{i % 60:02d} web-01 sshd[{1000 + i}]: Failed password for root from 203.0.113.{i % 250} port {20000 + i} ssh2 seq={i}\n"


def collect(db: Path, server: SshServer, *specs: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "soc_tui", "--db", str(db), "collect", "--no-rules", "--poll", "0.1", *specs],
        env=server.env(), cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )


def stop(proc: subprocess.Popen[bytes]) -> str:
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err.decode()
    return err.decode()


def seqs(db: Path) -> list[int]:
    """The sequence numbers of the stored lines, in storage order."""
    return [int(e["raw"].rsplit("seq=", 1)[1]) for e in stored_events(db) if "seq=" in e["raw"]]


def wait_for(db: Path, n: int, timeout: float = 30.0) -> list[int]:
    deadline = time.monotonic() + timeout
    got: list[int] = []
    while time.monotonic() < deadline:
        try:
            got = seqs(db)
        except sqlite3.OperationalError:
            got = []
        if len(got) >= n:
            return got
        time.sleep(0.1)
    return got


@pytest.fixture
def server(tmp_path: Path):
    if missing() is not None:
        pytest.skip(missing() or "")
    srv = SshServer(tmp_path)
    srv.start()
    yield srv
    srv.kill()


WRITER = r"""
import os, shutil, sys, time
path, start, end, rotate_every = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
sys.path.insert(0, sys.argv[5])
from test_ssh_source import line
for i in range(start, end):
    with open(path, "a") as fh:
        fh.write(line(i))
    if rotate_every and i % rotate_every == rotate_every - 1:
        for k in range(9, 0, -1):  # keep every rotated file (.1 newest)
            if os.path.exists(f"{path}.{k}"):
                os.replace(f"{path}.{k}", f"{path}.{k + 1}")
        if (i // rotate_every) % 2:  # logrotate's copytruncate: same inode, now empty
            shutil.copyfile(path, f"{path}.1")
            os.truncate(path, 0)
        else:  # rename rotation: a new file at the path
            os.replace(path, f"{path}.1")
    time.sleep(0.004)
"""


@pytest.mark.slow
def test_remote_file_every_line_once_through_rotations_server_crash_and_restart(tmp_path: Path, server: SshServer) -> None:
    logdir = tmp_path / "remote"
    logdir.mkdir()
    log = logdir / "auth.log"
    log.write_text("".join(line(i) for i in range(200)))
    db = tmp_path / "soc.db"
    spec = f"ssh://testhost{log}"  # the ~/.ssh/config alias: host, port and user from there
    proc = collect(db, server, spec)
    try:
        first = wait_for(db, 200)
        if first != list(range(200)):
            pytest.fail(f"got {len(first)} lines; collector said: {stop(proc)}; sshd: {server.log.read_text()[-2000:]}")
        # Another process appends and rotates meanwhile: rename, then copytruncate, ...
        writer = subprocess.Popen([sys.executable, "-c", WRITER, str(log), "200", "1400", "300",
                                   str(Path(__file__).parent)])
        time.sleep(1.0)
        server.kill()  # mid-stream: the connection drops, the server is gone
        time.sleep(1.5)
        server.start()
        writer.wait(60)
        got = wait_for(db, 1400, timeout=60)
    finally:
        err = stop(proc)
    assert sorted(got) == list(range(1400)), f"missing {sorted(set(range(1400)) - set(got))[:10]}; {err}"
    assert len(got) == len(set(got)), "a line was stored twice"
    # A restart of the collector resumes at the committed checkpoint.
    with open(log, "a") as fh:
        fh.writelines(line(i) for i in range(1400, 1450))
    proc = collect(db, server, spec)
    try:
        got = wait_for(db, 1450)
    finally:
        stop(proc)
    assert sorted(got) == list(range(1450)) and len(got) == 1450
    events = stored_events(db)
    assert {e["source_id"] for e in events} == {f"ssh://testhost{log}"}
    assert {e["host"] for e in events} == {"web-01"} and events[0]["app"] == "sshd"


def test_changed_host_key_is_refused_loudly(tmp_path: Path, server: SshServer) -> None:
    log = tmp_path / "auth.log"
    log.write_text(line(0))
    other = keygen(tmp_path / "other_key")
    server.trust(other)  # known_hosts now lists a different key for this server
    db = tmp_path / "soc.db"
    out = subprocess.run(
        [sys.executable, "-m", "soc_tui", "--db", str(db), "ingest", "--no-rules", f"ssh://testhost{log}"],
        env=server.env(), cwd=ROOT, capture_output=True, text=True, timeout=60,
    )
    assert out.returncode == 2
    err = out.stderr.strip()
    assert "HOST KEY CHANGED" in err and "SHA256:" in err, err
    assert len(err.splitlines()) == 1, err
    assert not seqs(db)


def test_unknown_host_is_refused_with_fingerprint_then_trusted_with_ssh_trust(tmp_path: Path, server: SshServer) -> None:
    log = tmp_path / "auth.log"
    log.write_text(line(0) + line(1))
    (server.home / ".ssh" / "known_hosts").unlink()
    db = tmp_path / "soc.db"
    cmd = [sys.executable, "-m", "soc_tui", "--db", str(db), "ingest", "--no-rules", f"ssh://testhost{log}"]
    out = subprocess.run(cmd, env=server.env(), cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert out.returncode == 2
    fingerprint = subprocess.run(["ssh-keygen", "-lf", str(server.dir / "host_key.pub")],
                                 capture_output=True, text=True, check=True).stdout.split()[1]
    assert "unknown host key" in out.stderr and fingerprint in out.stderr, out.stderr
    assert "soc-tui ssh-trust testhost" in out.stderr
    trust = subprocess.run([sys.executable, "-m", "soc_tui", "ssh-trust", "testhost", "--yes"],
                           env=server.env(), cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert trust.returncode == 0, trust.stderr
    assert fingerprint in trust.stdout
    out = subprocess.run(cmd, env=server.env(), cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert seqs(db) == [0, 1]
    # Trusting again changes nothing; a changed key is refused by ssh-trust too.
    again = subprocess.run([sys.executable, "-m", "soc_tui", "ssh-trust", "testhost", "--yes"],
                           env=server.env(), cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert again.returncode == 0 and "already trusted" in again.stdout
    server.trust(keygen(tmp_path / "other_key"))
    changed = subprocess.run([sys.executable, "-m", "soc_tui", "ssh-trust", "testhost", "--yes"],
                             env=server.env(), cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert changed.returncode == 2 and "HOST KEY CHANGED" in changed.stderr


def test_remote_glob_and_hostile_file_names(tmp_path: Path, server: SshServer) -> None:
    """A glob picks up each file (a .gz one decompressed); a name made to break
    a shell command is read as a name (the marker file it would create never
    appears)."""
    logdir = tmp_path / "logs"
    logdir.mkdir()
    marker = f"soc-tui-pwned-{os.getpid()}"  # created in the login directory if a name ran
    names = ["a.log", f"b; touch {marker}; .log", f"c $(touch {marker}).log", "d'quote`touch x`.log"]
    for k, name in enumerate(names):
        (logdir / name).write_text(line(k))
    with gzip.open(logdir / "old.log.gz", "wt") as fh:  # compressed: read once, decompressed here
        fh.write(line(4) + line(5))
    names.append("old.log.gz")
    db = tmp_path / "soc.db"
    out = subprocess.run(
        [sys.executable, "-m", "soc_tui", "--db", str(db), "ingest", "--no-rules", f"ssh://testhost{logdir}/*.log*"],
        env=server.env(), cwd=ROOT, capture_output=True, text=True, timeout=60,
    )
    assert out.returncode == 0, out.stderr
    assert sorted(seqs(db)) == [0, 1, 2, 3, 4, 5]
    assert not (Path(pwd.getpwuid(os.getuid()).pw_dir) / marker).exists()
    with sqlite3.connect(db) as conn:
        keys = {r[0] for r in conn.execute("SELECT key FROM checkpoints")}
    assert keys == {f"ssh://testhost{logdir}/{n}" for n in names}


def test_permission_denied_is_a_source_error_naming_the_fix(tmp_path: Path, server: SshServer) -> None:
    """The server refuses to open files (sftp-server -P open: the same
    SSH_FX_PERMISSION_DENIED a root:adm 0640 auth.log gives a user outside adm)."""
    cfg = server.config.read_text().replace("sftp-server\n", "sftp-server -P open\n")
    server.config.write_text(cfg)
    server.kill()
    server.start()
    log = tmp_path / "auth.log"
    log.write_text(line(0))
    db = tmp_path / "soc.db"
    out = subprocess.run(
        [sys.executable, "-m", "soc_tui", "--db", str(db), "ingest", "--no-rules", f"ssh://testhost{log}"],
        env=server.env(), cwd=ROOT, capture_output=True, text=True, timeout=60,
    )
    assert out.returncode == 2
    assert "permission denied" in out.stderr and "usermod -aG adm" in out.stderr, out.stderr
    assert len(out.stderr.strip().splitlines()) == 1


@needs_journal
@pytest.mark.slow
def test_journald_over_ssh_resumes_after_its_cursor_through_a_server_crash(tmp_path: Path, server: SshServer) -> None:
    """journald+ssh:// runs journalctl on the server (quoted, through the shared
    connection); a dropped connection resumes after the last cursor."""
    journal = tmp_path / "remote.journal"
    write_journal(journal, story(0, 300))
    db = tmp_path / "soc.db"
    spec = f"journald+ssh://testhost{journal}"
    proc = collect(db, server, spec)

    def messages() -> list[str]:
        return [e["message"] for e in stored_events(db)]

    def wait_messages(n: int) -> list[str]:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and len(messages()) < n:
            time.sleep(0.1)
        return messages()

    try:
        assert wait_messages(300) == [r["MESSAGE"] for r in story(0, 300)]
        server.kill()
        write_journal(journal, story(300, 200))
        time.sleep(1.0)
        server.start()
        got = wait_messages(500)
    finally:
        stop(proc)
    assert got == [r["MESSAGE"] for r in story(0, 500)]
    events = stored_events(db)
    assert {e["host"] for e in events} == {"bastion", "db-01"} and events[0]["app"] == "sshd"


async def test_a_host_without_stat_is_a_clear_error_and_bsd_stat_is_used() -> None:
    """Without a `stat` command a rotated file cannot be told from a new one:
    refuse with the reason instead of silently missing rotations. BSD's
    `stat -f` serves where GNU's `-c` does not."""
    from soc_tui.sources.base import SshRefused
    from soc_tui.sources.ssh import SshHost

    class NoStat(SshHost):
        def __init__(self, replies: list[tuple[int, bytes, bytes]]) -> None:
            super().__init__("web-02")
            self.replies = replies
            self.argvs: list[list[str]] = []

        async def run(self, argv: list[str], timeout: float = 0) -> tuple[int, bytes, bytes]:
            self.argvs.append(argv)
            return self.replies.pop(0)

    none = NoStat([(127, b"", b"env: 'stat': No such file or directory\n")])
    with pytest.raises(SshRefused, match="no usable `stat` command"):
        await none.ident("/var/log/auth.log")
    bsd = NoStat([(1, b"", b"stat: illegal option -- c\nusage: stat [-FLnq] [-f format]\n"),
                  (0, b"motd noise\nsoc-tui-stat 89 1234 500 1767261302\n", b"")])
    st = await bsd.ident("/var/log/auth.log")
    assert (st.st_dev, st.st_ino, st.st_size) == (89, 1234, 500)
    assert bsd.argvs[1][:5] == ["env", "LC_ALL=C", "stat", "-L", "-f"]
    missing = NoStat([(1, b"", b"stat: cannot statx '/x': No such file or directory\n")])
    with pytest.raises(FileNotFoundError):
        await missing.ident("/x")
    # Any other failure is about that path: the host keeps its working form.
    stale = NoStat([(1, b"", b"stat: cannot statx '/nfs/x': Stale file handle\n"),
                    (0, b"soc-tui-stat 1 2 3 4\n", b"")])
    with pytest.raises(OSError, match="Stale file handle"):
        await stale.ident("/nfs/x")
    assert (await stale.ident("/nfs/x")).st_ino == 2 and stale.argvs[1][4] == "-c"


@pytest.mark.slow
def test_many_files_on_one_host_share_one_connection(tmp_path: Path, server: SshServer) -> None:
    """A glob of 12 files, followed at once through one connection, with sshd's
    default limit of 10 sessions per connection: every line arrives once."""
    logdir = tmp_path / "many"
    logdir.mkdir()
    files = [logdir / f"app{k:02d}.log" for k in range(12)]
    for k, f in enumerate(files):
        f.write_text(line(k * 1000))
    db = tmp_path / "soc.db"
    proc = collect(db, server, f"ssh://testhost{logdir}/*.log")
    try:
        assert len(wait_for(db, 12)) == 12
        for rnd in range(1, 6):
            for k, f in enumerate(files):
                with open(f, "a") as fh:
                    fh.write(line(k * 1000 + rnd))
            time.sleep(0.2)
        got = wait_for(db, 72)
    finally:
        said = stop(proc)
    assert sorted(got) == sorted(k * 1000 + r for k in range(12) for r in range(6))
    assert server.log.read_text().count("Accepted publickey") == 1, said


def test_config_turning_host_key_checking_off_is_refused(tmp_path: Path, server: SshServer) -> None:
    config = server.home / ".ssh" / "config"
    config.write_text(config.read_text() + "  UserKnownHostsFile none\n")
    log = tmp_path / "auth.log"
    log.write_text(line(0))
    out = subprocess.run(
        [sys.executable, "-m", "soc_tui", "--db", str(tmp_path / "soc.db"), "ingest", "--no-rules",
         f"ssh://testhost{log}"],
        env=server.env(), cwd=ROOT, capture_output=True, text=True, timeout=60,
    )
    assert out.returncode == 2
    assert "host key checking off" in out.stderr, out.stderr
    assert "Accepted publickey" not in server.log.read_text()


def test_a_trusted_key_of_another_algorithm_is_not_taken_for_a_changed_one(tmp_path: Path, server: SshServer) -> None:
    """The server has ed25519 and ECDSA host keys; known_hosts lists only the
    ECDSA one. That is trusted, not "changed", for ssh-trust and for reading."""
    ecdsa = server.dir / "host_ecdsa"
    subprocess.run(["ssh-keygen", "-q", "-t", "ecdsa", "-N", "", "-f", str(ecdsa)], check=True)
    server.config.write_text(server.config.read_text() + f"HostKey {ecdsa}\n")
    server.kill()
    server.start()
    server.trust(Path(f"{ecdsa}.pub").read_text().strip())
    trust = subprocess.run([sys.executable, "-m", "soc_tui", "ssh-trust", "testhost", "--yes"],
                           env=server.env(), cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert trust.returncode == 0 and "already trusted" in trust.stdout, trust.stdout + trust.stderr
    assert "ecdsa" in trust.stdout
    log = tmp_path / "auth.log"
    log.write_text(line(0))
    out = subprocess.run(
        [sys.executable, "-m", "soc_tui", "--db", str(tmp_path / "soc.db"), "ingest", "--no-rules",
         f"ssh://testhost{log}"],
        env=server.env(), cwd=ROOT, capture_output=True, text=True, timeout=60,
    )
    assert out.returncode == 0, out.stderr


@pytest.mark.slow
def test_remote_file_renamed_within_its_glob_is_not_read_twice(tmp_path: Path, server: SshServer) -> None:
    logdir = tmp_path / "glob"
    logdir.mkdir()
    first = logdir / "app.log"
    first.write_text("".join(line(i) for i in range(3)))
    db = tmp_path / "soc.db"
    spec = f"ssh://testhost{logdir}/*.log"
    proc = collect(db, server, spec)
    try:
        assert wait_for(db, 3) == [0, 1, 2]
    finally:
        said = stop(proc)
    assert "warning" not in said, said  # a stop is not a lost connection
    first.rename(logdir / "app-2026-12-03.log")  # renamed while nobody collects
    with open(logdir / "app-2026-12-03.log", "a") as fh:
        fh.write(line(3))
    proc = collect(db, server, spec)
    try:
        got = wait_for(db, 4)
        time.sleep(1.0)  # a second reading would show up by now
        got = seqs(db)
    finally:
        stop(proc)
    assert got == [0, 1, 2, 3]


def test_remote_glob_backfill_that_reads_nothing_says_why(tmp_path: Path, server: SshServer) -> None:
    def ingest(spec: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "soc_tui", "--db", str(tmp_path / "soc.db"), "ingest", "--no-rules", spec],
            env=server.env(), cwd=ROOT, capture_output=True, text=True, timeout=60,
        )

    out = ingest(f"ssh://testhost{tmp_path}/nothing-*.log")
    assert out.returncode == 2 and "no file matches" in out.stderr, out.stderr
    (server.home / ".ssh" / "known_hosts").unlink()  # now the host is not trusted
    out = ingest(f"ssh://testhost{tmp_path}/*.log")
    assert out.returncode == 2 and "unknown host key" in out.stderr, out.stderr
