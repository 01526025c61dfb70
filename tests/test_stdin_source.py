"""`soc-tui collect -`: lines piped in are stored as they arrive, until the
end of input or SIGTERM (which must not wait for input that never comes)."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

from soc_tui.sources.tail import MAX_LINE
from storedb import stored_events

ROOT = Path(__file__).resolve().parent.parent


def collect_stdin(db: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "soc_tui", "--db", str(db), "collect", "--no-rules", "-"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=ROOT,
    )


def test_piped_lines_are_stored_until_end_of_input(tmp_path: Path) -> None:
    db = tmp_path / "soc.db"
    data = (
        b"Dec  3 10:00:01 web-01 sshd[10]: Failed password for root from 203.0.113.5 port 22 ssh2\r\n"
        b"Dec  3 10:00:02 web-01 sshd[11]: Invalid user \xff\xfeadmin from 203.0.113.6 port 23\n"
        + b"x" * (MAX_LINE + 100) + b"\n"
        + b"Dec  3 10:00:03 web-01 sudo: bob : TTY=pts/0 ; PWD=/ ; USER=root ; COMMAND=/bin/id\n"
        + b"last line without a newline"
    )
    proc = collect_stdin(db)
    _, err = proc.communicate(data, timeout=60)
    assert proc.returncode == 0, err.decode()
    events = stored_events(db)
    assert len(events) == 5
    assert events[0]["src_ip"] == "203.0.113.5" and events[0]["host"] == "web-01"
    assert "\ufffd" in events[1]["raw"] and events[1]["src_ip"] == "203.0.113.6"
    assert len(events[2]["raw"].encode()) == MAX_LINE  # cut, the rest skipped
    assert events[3]["user"] == "bob" and events[3]["app"] == "sudo"
    assert events[4]["raw"] == "last line without a newline"
    assert {e["source_id"] for e in events} == {"stdin"}
    assert "collected 5 events" in err.decode()


def test_sigterm_while_waiting_for_input_stores_what_arrived_and_exits(tmp_path: Path) -> None:
    db = tmp_path / "soc.db"
    proc = collect_stdin(db)
    assert proc.stdin is not None
    proc.stdin.write(b"Dec  3 10:00:01 web-01 sshd[10]: Connection closed by 198.51.100.4 port 22\n")
    proc.stdin.flush()
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and not stored_events(db):
        time.sleep(0.1)
    assert len(stored_events(db)) == 1  # stored while the pipe stays open
    proc.send_signal(signal.SIGTERM)  # the pipe stays open: nothing more will come
    try:
        code = proc.wait(timeout=20)
    finally:
        proc.stdin.close()
        err = proc.stderr.read() if proc.stderr else b""
    assert code == 0, err.decode()
    assert len(stored_events(db)) == 1
