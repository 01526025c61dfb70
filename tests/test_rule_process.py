"""The rule worker's own process: what the collector hands it is evaluated
once, what it could not hand over is read back from the store, a failure
is one clear line, and it never outlives the collector."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from storedb import has_checkpoint
from test_detect_worker import RULES, _attack, _line

import soc_tui.detect.process as rule_process
from soc_tui.child import alive, children
from soc_tui.config import SourceConfig
from soc_tui.detect.loader import load_rules
from soc_tui.detect.offline import run_files
from soc_tui.detect.process import RuleProcess, RuleProcessError
from soc_tui.pipeline import Pipeline
from soc_tui.store.reader import StoreReader


@pytest.fixture
def rules_dir(tmp_path: Path) -> Path:
    d = tmp_path / "rules"
    d.mkdir()
    (d / "ssh.yml").write_text(RULES)
    return d


def _story(tmp_path: Path) -> Path:
    lines: list[str] = []
    for k in range(40):
        ip = f"198.51.100.{k + 1}"
        lines += _attack(k * 30, ip, 3 + k % 6, login=k % 4 == 0, user=f"u{k % 7}")
        lines.append(_line(k * 30 + 20, f"Accepted publickey for admin{k % 5} from 192.0.2.9 port 5 ssh2"))
    log = tmp_path / "auth.log"
    log.write_text("\n".join(lines) + "\n")
    return log


def _ingest(db: Path, log: Path, rules_dir: Path) -> RuleProcess:
    StoreReader(str(db)).close()
    proc = RuleProcess(str(db), [str(rules_dir)], load_rules([rules_dir]))
    pipeline = Pipeline(str(db), [SourceConfig(str(log), None, "UTC", 2025, "auto")],
                        follow=False, worker_backlog=0, batch_size=40, read_bytes=1024,
                        on_commit=proc.offer, rule_paths=[str(rules_dir)])
    asyncio.run(pipeline.run())
    proc.stop(drain=True)
    proc.close()
    return proc


def _stored_alerts(db: Path) -> set[tuple]:
    reader = StoreReader(str(db), create=False)
    try:
        return {(a.rule_name, a.src_ip, a.user, a.count, tuple(reader_ids))
                for a in reader.alerts() for reader_ids in [sorted(a.event_ids)]}
    finally:
        reader.close()


def _reference(log: Path, rules_dir: Path, db: Path) -> set[tuple]:
    """The alerts of one in-memory pass, with evidence as stored event ids
    (line n of the file is event id n + 1)."""
    ref = run_files(load_rules([rules_dir]), [str(log)], tz="UTC")
    return {(a.rule_name, a.src_ip, a.user, a.count, tuple(sorted(a.evidence))) for a in ref.alerts}


@pytest.mark.parametrize("bound", [rule_process.MAX_OFFERED, 10])
def test_offered_or_read_back_the_alerts_are_those_of_one_pass(
    tmp_path: Path, rules_dir: Path, monkeypatch: pytest.MonkeyPatch, bound: int
) -> None:
    # With a tiny bound most batches are not handed over: the child reads
    # them back from the store and must raise the very same alerts.
    monkeypatch.setattr(rule_process, "MAX_OFFERED", bound)
    log = _story(tmp_path)
    db = tmp_path / "soc.db"
    proc = _ingest(db, log, rules_dir)
    assert proc.evaluated == len(log.read_text().splitlines())
    if bound < 40:  # smaller than any batch: nothing is handed over
        assert proc.offers_dropped > 0
    got = _stored_alerts(db)
    assert got and got == _reference(log, rules_dir, db)
    assert proc.alerts_raised == len(got)


def test_a_failure_is_reported_in_one_line(tmp_path: Path, rules_dir: Path) -> None:
    db = tmp_path / "not-a-db.db"
    db.write_bytes(b"this is not an SQLite database, just text" * 100)
    proc = RuleProcess(str(db), [str(rules_dir)], load_rules([rules_dir]))
    with pytest.raises(RuleProcessError) as err:
        proc.stop(drain=True, timeout=30)
    proc.close()
    msg = str(err.value)
    assert "\n" not in msg and "cannot start the rule worker" in msg and "not a" in msg




@pytest.mark.slow
def test_the_rule_process_does_not_outlive_a_killed_collector(
    tmp_path: Path, rules_dir: Path
) -> None:
    log = _story(tmp_path)
    db = tmp_path / "soc.db"
    proc = subprocess.Popen(
        [sys.executable, "-m", "soc_tui", "--db", str(db), "collect", str(log), "--poll", "0.05",
         "--tz", "UTC", "--rules", str(rules_dir)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and not (has_checkpoint(db) and children(proc.pid)):
            time.sleep(0.05)
        kids = children(proc.pid)
        assert kids, "collect started no rule process"
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and any(alive(k) for k in kids):
        time.sleep(0.05)
    assert not any(alive(k) for k in kids)


def test_the_rule_process_yields_the_cpu_to_the_collector(tmp_path: Path, rules_dir: Path) -> None:
    """On a busy machine the writer (what nothing else keeps) goes first: the
    rule process runs at a lower CPU priority than the collector."""
    import os

    db = tmp_path / "soc.db"
    StoreReader(str(db)).close()
    mine = os.getpriority(os.PRIO_PROCESS, 0)
    want = min(19, mine + rule_process.NICENESS)
    proc = RuleProcess(str(db), [str(rules_dir)], load_rules([rules_dir]))
    try:
        deadline = time.monotonic() + 20
        while os.getpriority(os.PRIO_PROCESS, proc.pid) != want and time.monotonic() < deadline:
            time.sleep(0.05)
        assert os.getpriority(os.PRIO_PROCESS, proc.pid) == want
        assert os.getpriority(os.PRIO_PROCESS, 0) == mine
    finally:
        proc.stop(drain=False)
        proc.close()
