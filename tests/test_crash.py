"""Crash safety end to end: SIGKILL the collector again and again while a writer
appends and rotates; the database must end up holding exactly the written lines."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from logfiles import rotate
from storedb import has_checkpoint, stored_events

KILLS = 20


class Writer(threading.Thread):
    def __init__(self, log: Path) -> None:
        super().__init__(daemon=True)
        self.log = log
        self.written: list[str] = []
        self.stop = threading.Event()
        self.rng = random.Random(int(os.environ.get("SOC_TUI_CRASH_SEED", "7")))

    def run(self) -> None:
        fh = open(self.log, "a", encoding="utf-8")
        n = 0
        while not self.stop.is_set():
            for _ in range(self.rng.randint(1, 60)):
                n += 1
                line = (
                    f"Nov 26 10:{(n // 60) % 60:02d}:{n % 60:02d} web-01 sshd[{1000 + n % 97}]: "
                    f"Failed password for user{n % 13} from 192.0.2.{n % 250} port {40000 + n} ssh2"
                )
                fh.write(line + "\n")
                self.written.append(line)
            fh.flush()
            if self.rng.random() < 0.08:
                fh.close()
                rotate(self.log)
                fh = open(self.log, "a", encoding="utf-8")
            time.sleep(self.rng.uniform(0.0, 0.02))
        fh.close()


def _stored(db: Path) -> list[str]:
    return [e["raw"] for e in stored_events(db)]


def _start(db: Path, log: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "soc_tui", "--db", str(db), "collect", str(log), "--poll", "0.05"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


@pytest.mark.slow
def test_sigkill_loses_nothing_and_duplicates_nothing(tmp_path: Path) -> None:
    log = tmp_path / "app.log"
    log.touch()
    db = tmp_path / "soc.db"
    writer = Writer(log)
    rng = random.Random(int(os.environ.get("SOC_TUI_CRASH_SEED", "11")))
    # The first collector registers the file (its first checkpoint) before the
    # writer starts: from then on nothing may be lost.
    proc = _start(db, log)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and not has_checkpoint(db):
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert has_checkpoint(db)
    writer.start()
    try:
        for _ in range(KILLS):
            proc = _start(db, log)
            time.sleep(rng.uniform(0.3, 1.2))
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            stored = _stored(db)
            written = list(writer.written)
            # Whatever was committed is an exact prefix of what was written.
            assert stored == written[: len(stored)], "duplicated or reordered lines after a kill"
    finally:
        writer.stop.set()
        writer.join()
    proc = _start(db, log)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and len(_stored(db)) < len(writer.written):
        time.sleep(0.2)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err.decode()
    stored = _stored(db)
    assert len(writer.written) > 1000
    assert stored == writer.written
