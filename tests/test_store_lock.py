"""The database write lock: writers in different processes hand the database
over on a file lock instead of SQLite's sleeping busy handler."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import threading
from pathlib import Path

from soc_tui.store.db import open_db, write_transaction

# Another process: try the lock file without waiting, print what happened.
PROBE = (
    "import fcntl, os, sys\n"
    "fd = os.open(sys.argv[1], os.O_RDWR)\n"
    "try:\n"
    "    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)\n"
    "    print('free')\n"
    "except BlockingIOError:\n"
    "    print('held')\n"
)


def probe(lock_file: Path) -> str:
    out = subprocess.run([sys.executable, "-c", PROBE, str(lock_file)], capture_output=True,
                         text=True, timeout=30, check=True)
    return out.stdout.strip()


def test_a_write_transaction_holds_the_lock_file_against_other_processes(tmp_path: Path) -> None:
    db = tmp_path / "soc.db"
    conn = open_db(db)
    lock_file = Path(f"{db}-lock")
    seen: list[str] = []

    def action() -> None:
        conn.execute("INSERT INTO detect_state (name, value) VALUES ('probe', '1')")
        seen.append(probe(lock_file))

    write_transaction(conn, action)
    assert seen == ["held"]
    assert probe(lock_file) == "free"
    assert stat.S_IMODE(lock_file.stat().st_mode) == 0o600
    conn.close()


def test_writers_in_two_processes_both_commit_everything(tmp_path: Path) -> None:
    """Two processes and two threads insert 300 rows each, one transaction per
    row, through the lock: every row is there and none failed as locked."""
    db = tmp_path / "soc.db"
    open_db(db).close()
    script = (
        "import sys\n"
        "from soc_tui.store.db import open_db, write_transaction\n"
        "conn = open_db(sys.argv[1])\n"
        "for i in range(300):\n"
        "    write_transaction(conn, lambda: conn.execute(\n"
        "        'INSERT INTO detect_state (name, value) VALUES (?, ?)', (f'{sys.argv[2]}{i}', i)))\n"
    )
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    other = subprocess.Popen([sys.executable, "-c", script, str(db), "p"], env=env,
                             stderr=subprocess.PIPE, text=True)
    errors: list[BaseException] = []

    def insert(prefix: str) -> None:
        conn = open_db(db)
        try:
            for i in range(300):
                write_transaction(conn, lambda: conn.execute(
                    "INSERT INTO detect_state (name, value) VALUES (?, ?)", (f"{prefix}{i}", i)))
        except BaseException as exc:  # noqa: BLE001 - asserted below
            errors.append(exc)
        finally:
            conn.close()

    threads = [threading.Thread(target=insert, args=(p,)) for p in ("a", "b")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    _, err = other.communicate(timeout=120)
    assert other.returncode == 0, err
    assert errors == []
    conn = open_db(db)
    count = conn.execute(
        "SELECT count(*) FROM detect_state WHERE name GLOB '[abp][0-9]*'").fetchone()[0]
    assert count == 900
    conn.close()
