"""The CLI contract: ingest, search, collect, and one-line errors with exit status 2."""

from __future__ import annotations

import gzip
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from storedb import stored_events

from soc_tui.cli import main

AUTH = """\
Nov 26 10:00:01 bastion sshd[100]: Failed password for root from 203.0.113.5 port 40001 ssh2
Nov 26 10:00:02 bastion sshd[100]: Failed password for root from 203.0.113.5 port 40002 ssh2
Nov 26 10:00:03 bastion sshd[101]: Invalid user oracle from 203.0.113.5 port 40003
Nov 26 10:00:09 bastion sshd[102]: Accepted password for root from 203.0.113.5 port 40004 ssh2
Nov 26 10:01:00 bastion sudo:     root : TTY=pts/0 ; PWD=/root ; USER=root ; COMMAND=/usr/sbin/useradd -m backup
this line matches no known format at all
"""


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def auth_log(tmp_path: Path) -> Path:
    p = tmp_path / "auth.log"
    p.write_text(AUTH)
    return p


def test_ingest_then_search_json(tmp_path: Path, auth_log: Path, capsys) -> None:
    db = str(tmp_path / "soc.db")
    code, out, _ = run(capsys, "--db", db, "ingest", str(auth_log), "--year", "2025", "--tz", "UTC")
    assert code == 0
    assert "lines read 6" in out and "events stored 6" in out and "unparsed 1" in out
    code, out, _ = run(capsys, "--db", db, "search", "user:root", "--format", "json")
    assert code == 0
    rows = [json.loads(line) for line in out.splitlines()]
    assert len(rows) == 4
    first = rows[0]
    for key in ("id", "ts", "host", "app", "pid", "action", "outcome", "user", "target_user",
                "src_ip", "src_port", "http_method", "url", "http_status", "message", "raw",
                "source_id"):
        assert key in first
    assert first["ts"] == "2025-11-26T10:00:01Z"
    assert first["host"] == "bastion" and first["app"] == "sshd" and first["pid"] == 100
    assert first["src_ip"] == "203.0.113.5" and first["src_port"] == 40001
    assert first["outcome"] == "failure"
    assert first["source_id"] == str(auth_log)
    assert first["raw"] == AUTH.splitlines()[0]


def test_ingest_again_stores_nothing_new(tmp_path: Path, auth_log: Path, capsys) -> None:
    db = str(tmp_path / "soc.db")
    assert run(capsys, "--db", db, "ingest", str(auth_log))[0] == 0
    code, out, _ = run(capsys, "--db", db, "ingest", str(auth_log))
    assert code == 0 and "events stored 0" in out
    assert run(capsys, "--db", db, "search", "--count")[1].strip() == "6"
    # Appended lines are picked up from the checkpoint on.
    with open(auth_log, "a") as fh:
        fh.write("Nov 26 10:02:00 bastion sshd[103]: Invalid user pi from 198.51.100.2 port 4\n")
    code, out, _ = run(capsys, "--db", db, "ingest", str(auth_log))
    assert "events stored 1" in out
    assert run(capsys, "--db", db, "search", "--count")[1].strip() == "7"


def test_ingest_gz_glob_and_env_db(tmp_path: Path, capsys, monkeypatch) -> None:
    logs = tmp_path / "logs"
    logs.mkdir()
    with gzip.open(logs / "auth.log.2.gz", "wt") as fh:
        fh.write(AUTH)
    (logs / "auth.log").write_text(AUTH.splitlines()[0] + "\n")
    monkeypatch.setenv("SOC_TUI_DB", str(tmp_path / "env.db"))
    code, out, _ = run(capsys, "ingest", str(logs / "auth.log*"))
    assert code == 0 and "files 2" in out and "events stored 7" in out
    assert (tmp_path / "env.db").exists()


def test_search_formats_and_count(tmp_path: Path, auth_log: Path, capsys) -> None:
    db = str(tmp_path / "soc.db")
    run(capsys, "--db", db, "ingest", str(auth_log))
    code, out, _ = run(capsys, "--db", db, "search", '"Failed password"', "--count")
    assert (code, out.strip()) == (0, "2")
    code, out, _ = run(capsys, "--db", db, "search", "src_ip:203.0.113.0/24", "--format", "csv")
    lines = out.splitlines()
    assert lines[0].startswith("id,ts,host") and len(lines) == 5
    code, out, _ = run(capsys, "--db", db, "search", "oracle")
    assert code == 0 and "oracle" in out and "TS" in out.splitlines()[0]
    code, out, _ = run(capsys, "--db", db, "search", "--limit", "2", "--format", "json")
    assert [json.loads(x)["id"] for x in out.splitlines()] == [5, 6]


def test_table_output_escapes_control_sequences(tmp_path: Path, capsys) -> None:
    log = tmp_path / "evil.log"
    log.write_bytes(b"Nov 26 10:00:01 web-01 app[1]: hi \x1b]0;owned\x07 \x1b[31mred\x9b\n")
    db = str(tmp_path / "soc.db")
    run(capsys, "--db", db, "ingest", str(log))
    out = run(capsys, "--db", db, "search", "hi")[1]
    assert "\x1b" not in out and "\x07" not in out and "\x9b" not in out
    assert "\\x1b]0;owned\\x07" in out


@pytest.mark.parametrize(
    "argv, message",
    [
        (["ingest", "/nonexistent/auth.log"], "file not found: /nonexistent/auth.log"),
        (["ingest", "/nonexistent/*.log"], "no file matches /nonexistent/*.log"),
        (["search", "foo:bar"], "bad query: unknown field 'foo'"),
        (["search", "(unclosed"], "at position 0"),
        (["ingest", "--tz", "Mars/Olympus", "x"], "unknown time zone"),
        (["ingest", "/"], "/ is a directory"),
        (["search", "--limit", "-1", "x"], "--limit must be"),
    ],
)
def test_errors_are_one_line_with_status_2(tmp_path: Path, capsys, argv, message) -> None:
    db = tmp_path / "soc.db"
    code, out, err = run(capsys, "--db", str(db), *argv)
    assert code == 2
    assert message in err
    assert len(err.strip().splitlines()) == 1
    assert not db.exists()  # nothing half-written


def test_unreadable_file(tmp_path: Path, capsys) -> None:
    if os.geteuid() == 0:
        pytest.skip("root can read files whatever their mode")
    p = tmp_path / "secret.log"
    p.write_text("x\n")
    p.chmod(0)
    code, _, err = run(capsys, "--db", str(tmp_path / "soc.db"), "ingest", str(p))
    assert code == 2 and "cannot read" in err


def test_corrupt_and_foreign_databases(tmp_path: Path, auth_log: Path, capsys) -> None:
    bad = tmp_path / "bad.db"
    bad.write_bytes(b"this is not sqlite at all" * 100)
    code, _, err = run(capsys, "--db", str(bad), "ingest", str(auth_log))
    assert code == 2 and "corrupt" in err and len(err.strip().splitlines()) == 1
    other = tmp_path / "other.db"
    conn = sqlite3.connect(other)
    conn.execute("CREATE TABLE t (x)")
    conn.commit()
    conn.close()
    code, _, err = run(capsys, "--db", str(other), "search", "x")
    assert code == 2 and "not a soc-tui database" in err


def test_locked_database(tmp_path: Path, auth_log: Path, capsys, monkeypatch) -> None:
    db = tmp_path / "soc.db"
    run(capsys, "--db", str(db), "ingest", str(auth_log))
    monkeypatch.setattr("soc_tui.store.db.BUSY_TIMEOUT_MS", 200)
    holder = sqlite3.connect(db, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        (tmp_path / "more.log").write_text(AUTH)
        code, _, err = run(capsys, "--db", str(db), "ingest", str(tmp_path / "more.log"))
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert code == 2 and "locked" in err


def test_bad_config(tmp_path: Path, capsys) -> None:
    cfg = tmp_path / "c.yaml"
    cfg.write_text("sources: [a\n")
    code, _, err = run(capsys, "--config", str(cfg), "search", "x")
    assert code == 2 and "invalid YAML" in err and str(cfg) in err
    cfg.write_text("bogus: 1\n")
    code, _, err = run(capsys, "--config", str(cfg), "search", "x")
    assert code == 2 and "unknown setting" in err


def test_search_on_missing_database(tmp_path: Path, capsys) -> None:
    code, _, err = run(capsys, "--db", str(tmp_path / "none.db"), "search", "x")
    assert code == 2 and "database not found" in err


def test_python_dash_m_and_console_script(tmp_path: Path) -> None:
    proc = subprocess.run([sys.executable, "-m", "soc_tui", "--help"], capture_output=True, text=True)
    assert proc.returncode == 0 and "ingest" in proc.stdout


def _wait_for(db: Path, n: int, timeout: float = 15.0) -> int:
    deadline = time.monotonic() + timeout
    count = 0
    while time.monotonic() < deadline:
        if db.exists():
            try:
                conn = sqlite3.connect(db)
                count = conn.execute("SELECT count(*) FROM events").fetchone()[0]
                conn.close()
            except sqlite3.OperationalError:
                count = 0
            if count >= n:
                return count
        time.sleep(0.1)
    return count


@pytest.mark.slow
def test_collect_follows_files_and_globs_until_sigterm(tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    logs.mkdir()
    (logs / "a.log").write_text(AUTH)
    db = tmp_path / "soc.db"
    proc = subprocess.Popen(
        [sys.executable, "-m", "soc_tui", "--db", str(db), "collect", str(logs / "*.log"),
         "--poll", "0.05"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )
    try:
        assert _wait_for(db, 6) == 6
        # A new file matching the glob is picked up; appends are followed.
        (logs / "b.log").write_text(AUTH.splitlines()[0] + "\n")
        with open(logs / "a.log", "a") as fh:
            fh.write(AUTH.splitlines()[1] + "\n")
        assert _wait_for(db, 8) == 8
        # A rotated sibling of a followed file is not read twice.
        os.rename(logs / "a.log", logs / "a.log.1")
        (logs / "a.log").write_text(AUTH.splitlines()[2] + "\n")
        assert _wait_for(db, 9) == 9
        time.sleep(2.5)
        assert _wait_for(db, 9) == 9
    finally:
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=20)
    assert proc.returncode == 0, err
    conn = sqlite3.connect(db)
    assert conn.execute("SELECT count(*) FROM events").fetchone()[0] == 9


def test_ingest_shows_progress_on_a_terminal(tmp_path: Path) -> None:
    import pty

    log = tmp_path / "big.log"
    with open(log, "w") as fh:
        for i in range(60000):
            fh.write(f"Nov 26 10:{i // 3600 % 60:02d}:{i % 60:02d} bastion sshd[{i}]: "
                     f"Failed password for root from 203.0.113.{i % 250} port {i} ssh2\n")
    master, slave = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "soc_tui", "--db", str(tmp_path / "soc.db"), "ingest", str(log)],
        stdout=subprocess.PIPE, stderr=slave,
    )
    os.close(slave)
    out, _ = proc.communicate(timeout=120)
    chunks = []
    while True:
        try:
            data = os.read(master, 65536)
        except OSError:
            break
        if not data:
            break
        chunks.append(data)
    os.close(master)
    tty = b"".join(chunks).decode()
    assert proc.returncode == 0
    assert "lines/s" in tty and "MB/s" in tty and "ETA" in tty
    assert "events stored 60000" in out.decode()


@pytest.mark.slow
def test_collect_uses_the_config_sources(tmp_path: Path) -> None:
    (tmp_path / "a.log").write_text(AUTH)
    cfg = tmp_path / "config.yaml"
    db = tmp_path / "cfg.db"
    cfg.write_text(f"db: {db}\nsources:\n  - path: {tmp_path / 'a.log'}\n    host: fallback\n    tz: UTC\n")
    proc = subprocess.Popen(
        [sys.executable, "-m", "soc_tui", "--config", str(cfg), "collect", "--poll", "0.05"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )
    try:
        assert _wait_for(db, 6) == 6
    finally:
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=20)
    assert proc.returncode == 0, err
    assert len(stored_events(db, "host:fallback")) == 1


def test_collect_without_sources_is_an_error(tmp_path: Path, capsys) -> None:
    code, _, err = run(capsys, "--db", str(tmp_path / "x.db"), "collect")
    assert code == 2 and "no sources" in err


def test_a_file_vanishing_during_ingest_is_a_one_line_error(tmp_path: Path, capsys, monkeypatch) -> None:
    gone = tmp_path / "gone.log"
    monkeypatch.setattr("soc_tui.cli._expand", lambda paths: [str(gone)])
    code, _, err = run(capsys, "--db", str(tmp_path / "soc.db"), "ingest", "whatever")
    assert code == 2
    assert err.strip() == f"soc-tui: error: cannot read {gone}: No such file or directory"
