"""`soc-tui prune`: old blocks go, cited ones stay, the chain still
verifies, space comes back; and the collector prunes by itself."""

from __future__ import annotations

import json
import sqlite3
import time
from pathlib import Path

import pytest

from soc_tui.cli import main
from soc_tui.store.db import open_db
from soc_tui.store.retention import PeriodicPrune


def _lines(start: float, n: int, ip: str = "192.0.2.1", text: str | None = None) -> str:
    out = []
    for i in range(n):
        t = time.gmtime(start + i)
        stamp = time.strftime("%b %d %H:%M:%S", t).replace(" 0", "  ", 1) if t.tm_mday < 10 else \
            time.strftime("%b %d %H:%M:%S", t)
        msg = text or f"Failed password for user{i % 50} from {ip} port {1000 + i % 60000} ssh2"
        out.append(f"{stamp} bastion sshd[{100 + i % 900}]: {msg}")
    return "\n".join(out) + "\n"


def _ingest(db: Path, path: Path, year: int, *extra: str) -> None:
    assert main(["--db", str(db), "ingest", "--tz", "UTC", "--year", str(year), *extra, str(path)]) == 0


def _q(db: Path, sql: str, *params: object) -> list[tuple]:
    conn = sqlite3.connect(db)
    try:
        return conn.execute(sql, params).fetchall()
    finally:
        conn.close()


@pytest.fixture
def aged(tmp_path: Path) -> Path:
    """Three old files (2020), the middle one with a brute force whose alert
    stays open, then a recent one."""
    db = tmp_path / "soc.db"
    old = time.mktime((2020, 3, 1, 0, 0, 0, 0, 0, 0))
    for k in range(3):
        f = tmp_path / f"old{k}.log"
        quiet = "Accepted publickey for deploy from 192.0.2.1 port 22 ssh2"  # raises nothing
        f.write_text(_lines(old + k * 86400, 3000, ip="198.51.100.2", text=None if k == 1 else quiet))
        _ingest(db, f, 2020, *(() if k == 1 else ("--no-rules",)))
    recent = tmp_path / "recent.log"
    recent.write_text(_lines(time.time() - 3600, 500, text="Accepted publickey for deploy from 192.0.2.1 port 22 ssh2"))
    _ingest(db, recent, time.gmtime().tm_year, "--no-rules")
    return db


def test_prune_by_age_keeps_cited_blocks_and_verifies(aged: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = aged
    cited = {r[0] for r in _q(db, "SELECT event_id FROM alert_events")}
    assert cited
    before = _q(db, "SELECT count(*) FROM events")[0][0]
    capsys.readouterr()
    assert main(["--db", str(db), "--analyst", "ops", "prune", "--days", "30"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("pruned 6000 events in 2 blocks (1 kept")
    left = {r[0] for r in _q(db, "SELECT id FROM events")}
    assert len(left) == before - 6000
    assert cited <= left  # what the open alert cites is still there, raw text included
    assert main(["--db", str(db), "search", "--count", "src_ip:198.51.100.2"]) == 0
    assert int(capsys.readouterr().out) == 3000
    assert main(["--db", str(db), "verify"]) == 0
    text = capsys.readouterr().out
    assert "verify: OK" in text
    (actor, after), = _q(db, "SELECT actor, after FROM audit WHERE action = 'prune'")
    assert actor == "ops" and json.loads(after)["deleted"] == 6000
    # Pruning again finds nothing more by age; tampering is still caught.
    assert main(["--db", str(db), "prune", "--days", "30"]) == 0
    assert capsys.readouterr().out.startswith("pruned 0 events")
    conn = sqlite3.connect(db)
    conn.execute("DELETE FROM events WHERE id = (SELECT max(id) FROM events)")
    conn.commit()
    conn.close()
    assert main(["--db", str(db), "verify"]) == 1


def test_prune_by_size_gives_space_back(aged: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = aged
    conn = open_db(db, create=False)
    from soc_tui.store.retention import db_bytes

    size = db_bytes(conn)
    conn.close()
    target_mb = max(1, int(size * 0.6 / 1e6))
    capsys.readouterr()
    assert main(["--db", str(db), "prune", "--max-db-mb", str(target_mb)]) == 0
    line = capsys.readouterr().out
    assert "pruned" in line and " 0 events" not in line
    conn = open_db(db, create=False)
    assert db_bytes(conn) < size
    conn.close()
    assert db.stat().st_size < size + 1_000_000  # the file shrank too (incremental vacuum)
    assert main(["--db", str(db), "verify"]) == 0


def test_prune_needs_a_policy(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = tmp_path / "soc.db"
    f = tmp_path / "a.log"
    f.write_text(_lines(time.time(), 10))
    _ingest(db, f, time.gmtime().tm_year, "--no-rules")
    capsys.readouterr()
    assert main(["--db", str(db), "prune"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "retention" in err


def test_the_collector_prunes_periodically(aged: Path) -> None:
    pruner = PeriodicPrune(str(aged), "collector", days=30, max_db_mb=None, every=3600, first=0.05)
    pruner.start()
    deadline = time.monotonic() + 20
    while pruner.runs == 0 and time.monotonic() < deadline and not pruner.last_error:
        time.sleep(0.05)
    pruner.stop()
    assert not pruner.last_error and pruner.last is not None and pruner.last.events == 6000
    assert main(["--db", str(aged), "verify"]) == 0
