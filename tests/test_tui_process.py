"""`soc-tui` as a user runs it: the real command in a pseudo-terminal, collecting
the configured sources while the TUI is up, and ending cleanly (everything read
is stored) on ctrl+q, SIGTERM, SIGHUP or a terminal that goes away."""

from __future__ import annotations

import fcntl
import os
import pty
import select
import signal
import sqlite3
import struct
import subprocess
import sys
import termios
import time
from pathlib import Path
from typing import Any

import pytest

from soc_tui.child import alive, children

pytestmark = pytest.mark.slow

LINE = "Nov 20 00:{m:02d}:{s:02d} bastion sshd[{pid}]: Failed password for root from 198.51.100.{ip} port {port} ssh2\n"


def _lines(start: int, n: int) -> str:
    return "".join(LINE.format(m=(i // 60) % 60, s=i % 60, pid=1000 + i, ip=i % 250 + 1, port=40000 + i)
                   for i in range(start, start + n))


class Tui:
    """soc-tui in a pty of 100x30, reading its output in the background."""

    def __init__(self, tmp: Path, *args: str) -> None:
        self.log = tmp / "auth.log"
        self.log.write_text(_lines(0, 200))
        self.db = tmp / "soc.db"
        cfg = tmp / "config.yaml"
        cfg.write_text(f"sources:\n  - path: {self.log}\n    tz: UTC\n")
        self.master, slave = pty.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 30, 100, 0, 0))
        env = {**os.environ, "TERM": "xterm-256color", "SOC_TUI_CONFIG": str(cfg)}
        env.pop("TEXTUAL", None)
        # (Textual draws on stderr: all three are the terminal)
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "soc_tui", "--db", str(self.db), *args],
            stdin=slave, stdout=slave, stderr=slave, env=env, start_new_session=True, close_fds=True,
        )
        os.close(slave)
        self.out = b""

    def read(self, seconds: float) -> None:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            r, _, _ = select.select([self.master], [], [], 0.05)
            if r:
                try:
                    data = os.read(self.master, 65536)
                except OSError:
                    return
                if not data:
                    return
                self.out += data

    def wait_for(self, text: bytes, seconds: float = 20) -> None:
        end = time.monotonic() + seconds
        while text not in self.out and time.monotonic() < end and self.proc.poll() is None:
            self.read(0.2)
        assert text in self.out, self.out[-3000:]

    def send(self, data: bytes) -> None:
        os.write(self.master, data)

    def finish(self, seconds: float = 30) -> int:
        end = time.monotonic() + seconds
        while self.proc.poll() is None and time.monotonic() < end:
            self.read(0.1)
        if self.proc.poll() is None:
            self.proc.kill()
            raise AssertionError(f"soc-tui did not exit: {self.out[-3000:]!r}")
        try:
            os.close(self.master)
        except OSError:
            pass
        return self.proc.returncode

    def stored(self) -> int:
        conn = sqlite3.connect(self.db)
        try:
            return conn.execute("SELECT count(*) FROM events").fetchone()[0]
        finally:
            conn.close()


@pytest.fixture
def running() -> Any:
    """The Tui objects a test starts: killed at the end whatever happened."""
    started: list[Tui] = []
    yield started
    for tui in started:
        if tui.proc.poll() is None:
            os.killpg(tui.proc.pid, signal.SIGKILL)
            tui.proc.wait(10)


def _run_until_live(tmp: Path, running: list[Tui]) -> Tui:
    tui = Tui(tmp)
    running.append(tui)
    tui.wait_for(b"Overview")
    with open(tui.log, "a") as fh:  # appended while the TUI is up: the collector takes them
        fh.write(_lines(200, 300))
    end = time.monotonic() + 20
    while time.monotonic() < end:
        tui.read(0.2)
        if os.path.exists(tui.db) and tui.stored() == 500:
            break
    return tui


@pytest.mark.parametrize("how", ["ctrl+q", "SIGTERM", "SIGHUP", "terminal closed"])
def test_tui_collects_and_exits_cleanly(tmp_path: Path, how: str, running: list[Tui]) -> None:
    tui = _run_until_live(tmp_path, running)
    if how == "ctrl+q":
        tui.send(b"\x11")
    elif how == "SIGTERM":
        tui.proc.send_signal(signal.SIGTERM)
    elif how == "SIGHUP":
        tui.proc.send_signal(signal.SIGHUP)
    else:
        os.close(tui.master)  # the SSH session dropped
        tui.master = os.open(os.devnull, os.O_RDONLY)
    rc = tui.finish()
    err = tui.out.decode("utf-8", "replace")[-3000:]
    assert tui.stored() == 500, err
    assert rc == (1 if how == "terminal closed" else 0), (rc, err)
    assert "collected" in err or how == "terminal closed", err
    assert "Traceback" not in err, err
    # The terminal was given back: the alternate screen left (unless it went away).
    if how != "terminal closed":
        assert b"\x1b[?1049l" in tui.out


def test_tui_refuses_without_sources_or_terminal(tmp_path: Path) -> None:
    cfg = tmp_path / "empty.yaml"
    cfg.write_text("rules: []\n")
    env = {**os.environ, "SOC_TUI_CONFIG": str(cfg)}
    proc = subprocess.run([sys.executable, "-m", "soc_tui", "--db", str(tmp_path / "x.db")],
                          capture_output=True, text=True, env=env, stdin=subprocess.DEVNULL)
    assert proc.returncode != 0
    assert proc.stderr.count("\n") == 1 and "terminal" in proc.stderr
    proc = subprocess.run([sys.executable, "-m", "soc_tui", "--db", str(tmp_path / "none.db"), "--attach"],
                          capture_output=True, text=True, env=env, stdin=subprocess.DEVNULL)
    assert proc.returncode != 0 and "database not found" in proc.stderr
    proc = subprocess.run([sys.executable, "-m", "soc_tui", "--theme", "nosuch"],
                          capture_output=True, text=True, env=env, stdin=subprocess.DEVNULL)
    assert proc.returncode != 0 and "unknown theme" in proc.stderr and "nord" in proc.stderr


def _count(db: Path) -> int:
    conn = sqlite3.connect(db)
    try:
        return conn.execute("SELECT count(*) FROM events").fetchone()[0]
    finally:
        conn.close()


def test_collector_process_reports_health_and_stops_in_order(tmp_path: Path) -> None:
    """The TUI's collector in its own process: health and counters come back
    from it, and stop() ends it (and its rule process) with everything stored
    and evaluated."""
    from soc_tui.cli import shipped_rules_dir
    from soc_tui.collector import CollectorProcess
    from soc_tui.config import SourceConfig
    from soc_tui.store.reader import StoreReader

    log, db = tmp_path / "auth.log", tmp_path / "soc.db"
    log.write_text(_lines(0, 200))
    StoreReader(str(db)).close()
    collector = CollectorProcess(str(db), [SourceConfig(str(log), tz="UTC")],
                                 rule_dirs=[shipped_rules_dir()], poll_interval=0.1).start()
    try:
        end = time.monotonic() + 20
        while time.monotonic() < end and sum(h.lines for h in collector.health()) < 200:
            time.sleep(0.1)
        assert [h.name for h in collector.health()] == [str(log)]
        assert sum(h.lines for h in collector.health()) == 200
        assert collector.running and collector.worker is not None
        kids = children(collector.pid)  # the rule process (and a parse worker, if any)
        assert kids
        with open(log, "a") as fh:
            fh.write(_lines(200, 300))
        while time.monotonic() < end + 10 and sum(h.lines for h in collector.health()) < 500:
            time.sleep(0.05)  # read (the report lags the reading by up to STATUS_EVERY)
    finally:
        collector.stop(drain=True)
    assert not collector.running and not alive(collector.pid)
    assert not any(alive(k) for k in kids)
    assert collector.pipeline.events_written == 500 == _count(db)
    assert collector.worker.evaluated == 500  # the rules drained before it ended
    assert collector.failure is None and collector.rule_status() is not None


def test_collector_process_outlives_no_parent(tmp_path: Path) -> None:
    """A TUI killed by SIGKILL: its collector process sees the pipe close,
    commits what it read and ends, and so does its rule process."""
    log, db = tmp_path / "auth.log", tmp_path / "soc.db"
    log.write_text(_lines(0, 200))
    script = (
        "import sys, time\n"
        "from soc_tui.cli import shipped_rules_dir\n"
        "from soc_tui.collector import CollectorProcess\n"
        "from soc_tui.config import SourceConfig\n"
        "from soc_tui.store.reader import StoreReader\n"
        f"StoreReader({str(db)!r}).close()\n"
        f"c = CollectorProcess({str(db)!r}, [SourceConfig({str(log)!r}, tz='UTC')],"
        " rule_dirs=[shipped_rules_dir()], poll_interval=0.1).start()\n"
        "print(c.pid, flush=True)\n"
        "time.sleep(600)\n"
    )
    parent = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True,
                              cwd=Path(__file__).resolve().parent.parent)
    try:
        child = int(parent.stdout.readline())  # type: ignore[union-attr]
        end = time.monotonic() + 20
        while time.monotonic() < end and (not db.exists() or _count(db) < 200):
            time.sleep(0.1)
        with open(log, "a") as fh:
            fh.write(_lines(200, 300))
        grandchildren = children(child)
        assert alive(child) and grandchildren
        time.sleep(1.5)
    finally:
        parent.kill()
        parent.wait()
    end = time.monotonic() + 30
    while time.monotonic() < end and (alive(child) or any(alive(k) for k in grandchildren)):
        time.sleep(0.1)
    assert not alive(child) and not any(alive(k) for k in grandchildren)
    assert _count(db) == 500  # what it had read was committed on the way out
