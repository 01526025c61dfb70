"""The hash chain (soc_tui.store.chain): an intact database verifies; any
change made behind the store's back with sqlite3 fails and names the block."""

from __future__ import annotations

import json
import sqlite3
import stat
import zlib
from pathlib import Path

import pytest

from soc_tui.cli import main
from soc_tui.store.chain import anchor_events, seal_rows, verify
from soc_tui.store.db import StoreConnection, StoreError, open_db

LINE = "Nov 20 00:{m:02d}:{s:02d} bastion sshd[{pid}]: Failed password for {user} from 198.51.100.{ip} port {port} ssh2"
RULE = """\
title: SSH authentication failure
name: t_auth_failure
id: 7f0c1a60-0000-4000-8000-0000000000c1
logsource: {product: linux, service: sshd}
detection:
  sel: {action: [ssh_auth_failure]}
  condition: sel
level: low
"""


@pytest.fixture
def key(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "keys" / "chain.key"
    monkeypatch.setenv("SOC_TUI_KEY_FILE", str(path))
    return path


def _log(path: Path, start: int, n: int, user: str = "root") -> Path:
    lines = [LINE.format(m=(i // 60) % 60, s=i % 60, pid=1000 + i, user=user, ip=i % 200 + 1,
                         port=40000 + i) for i in range(start, start + n)]
    path.write_text("\n".join(lines) + "\n")
    return path


def _ingest(tmp_path: Path, db: Path, batches: int = 3, per: int = 300,
            rules: Path | None = None) -> None:
    """`batches` ingest runs: one chain block each (a run of `per` lines is one batch)."""
    for b in range(batches):
        log = _log(tmp_path / f"part{b}.log", b * per, per, user=f"user{b}")
        extra = ["--rules", str(rules)] if rules else ["--no-rules"]
        assert main(["--db", str(db), "ingest", "--tz", "UTC", *extra, str(log)]) == 0


@pytest.fixture
def db(tmp_path: Path, key: Path) -> Path:
    path = tmp_path / "soc.db"
    _ingest(tmp_path, path)
    return path


def _verify(db: Path, seal: tuple[int, str] | None = None):  # noqa: ANN202
    conn = open_db(db, create=False)
    try:
        return verify(conn, seal=seal)
    finally:
        conn.close()


def _tamper(db: Path, *sql: str, params: tuple = ()) -> None:
    """What an attacker does: plain sqlite3, no soc-tui code."""
    conn = sqlite3.connect(db)
    for statement in sql:
        conn.execute(statement, params if "?" in statement else ())
    conn.commit()
    conn.close()


def _rebuild_fts(db: Path) -> None:
    """After deleting events: the attacker (or the pruner) rebuilds the index
    (it reads messages through the SQL functions soc-tui registers)."""
    conn = open_db(db)
    conn.execute("INSERT INTO events_fts(events_fts) VALUES('rebuild')")
    conn.close()


def _blocks(db: Path) -> list[tuple[int, str, int, int]]:
    conn = sqlite3.connect(db)
    rows = conn.execute("SELECT seq, kind, first_id, last_id FROM chain ORDER BY seq").fetchall()
    conn.close()
    return rows


def _fails_at(db: Path, seq: int, words: str = "", seal: tuple[int, str] | None = None) -> None:
    report = _verify(db, seal)
    assert not report.ok
    assert report.first_bad == seq, report.problems
    assert report.problems[0].startswith(f"block {seq} ("), report.problems
    assert words in report.problems[0], report.problems


# --- events ----------------------------------------------------------------------


def test_intact_database_verifies(db: Path, key: Path) -> None:
    report = _verify(db)
    assert report.ok, report.problems
    assert [k for _, k, _, _ in _blocks(db)] == ["events"] * 3
    assert _blocks(db)[1][2:] == (301, 600)
    assert report.blocks == 3 and report.latest is not None and report.latest[0] == 3
    text = "\n".join(report.lines())
    assert "OK" in text and f"3:{report.latest[1]}" in text
    assert stat.S_IMODE(key.stat().st_mode) == 0o600


def test_update_of_an_event_column_names_its_block(db: Path) -> None:
    _tamper(db, "UPDATE events SET src_ip = '203.0.113.1' WHERE id = 450")
    _fails_at(db, 2, "events 301-600): digest mismatch")


def test_update_of_a_term_names_the_first_block_using_it(db: Path) -> None:
    _tamper(db, "UPDATE terms SET value = 'admin' WHERE value = 'user2'")
    _fails_at(db, 3, "digest mismatch")


def test_deleted_event_names_its_block(db: Path) -> None:
    _tamper(db, "DELETE FROM events WHERE id = 10")
    _fails_at(db, 1, "1 event row(s) deleted")


def test_inserted_event_is_never_sealed(db: Path) -> None:
    _tamper(db, "INSERT INTO events (id, ts, source, flags) SELECT 901, ts, source, flags"
                " FROM events WHERE id = 900")
    _fails_at(db, 3, "never sealed")


def test_changed_raw_line_names_its_block(db: Path) -> None:
    conn = sqlite3.connect(db)
    bid, data = conn.execute(
        "SELECT id, data FROM raw_blocks WHERE id <= 350 ORDER BY id DESC LIMIT 1").fetchone()
    doc = json.loads(zlib.decompress(data))
    doc["raw"][350 - bid] = doc["raw"][350 - bid].replace("198.51.100", "192.0.2")
    new = zlib.compress(json.dumps(doc, separators=(",", ":")).encode(), 9)
    conn.execute("UPDATE raw_blocks SET data = ? WHERE id = ?", (new, bid))
    conn.commit()
    conn.close()
    _fails_at(db, 2, "digest mismatch")


def test_recompressed_raw_block_still_verifies(db: Path) -> None:
    conn = sqlite3.connect(db)
    for bid, data in conn.execute("SELECT id, data FROM raw_blocks").fetchall():
        conn.execute("UPDATE raw_blocks SET data = ? WHERE id = ?",
                     (zlib.compress(zlib.decompress(data), 1), bid))
    conn.commit()
    conn.close()
    assert _verify(db).ok


def test_appended_raw_block_verifies(tmp_path: Path, key: Path) -> None:
    """Small batches append to the newest raw block: older blocks still verify."""
    db = tmp_path / "tail.db"
    _ingest(tmp_path, db, batches=4, per=7)
    assert len(_blocks(db)) == 4
    conn = sqlite3.connect(db)
    assert conn.execute("SELECT count(*) FROM raw_blocks").fetchone()[0] == 1
    conn.close()
    assert _verify(db).ok


# --- the chain table ----------------------------------------------------------------


def test_changed_block_digest_fails(db: Path) -> None:
    _tamper(db, "UPDATE chain SET digest = '00' || substr(digest, 3) WHERE seq = 2")
    _fails_at(db, 2, "hash mismatch")


def test_changed_block_hash_fails(db: Path) -> None:
    _tamper(db, "UPDATE chain SET hash = '00' || substr(hash, 3) WHERE seq = 2")
    _fails_at(db, 2, "hash mismatch")


def test_deleted_middle_block_fails(db: Path) -> None:
    _tamper(db, "DELETE FROM chain WHERE seq = 2")
    _fails_at(db, 3, "block 2 before it missing")


def test_newest_block_deleted_is_caught_only_by_a_recorded_seal(db: Path) -> None:
    seal = _verify(db).latest
    assert seal is not None
    _tamper(db, "DELETE FROM events WHERE id > 600", "DELETE FROM raw_blocks WHERE id > 600",
            "DELETE FROM terms WHERE id > (SELECT aux FROM chain WHERE seq = 2)",
            "DELETE FROM chain WHERE seq = 3")
    _rebuild_fts(db)
    assert _verify(db).ok, _verify(db).problems  # without an off-box seal nobody can tell
    report = _verify(db, seal)
    assert not report.ok and "block 3 is missing" in report.problems[0]
    assert _verify(db, (seal[0], "0" * 64)).ok is False


def test_a_matching_seal_passes(db: Path) -> None:
    seal = _verify(db).latest
    assert seal is not None
    assert _verify(db, seal).ok
    assert _verify(db, (2, _blocks_hash(db, 2))).ok


def _blocks_hash(db: Path, seq: int) -> str:
    conn = sqlite3.connect(db)
    h = conn.execute("SELECT hash FROM chain WHERE seq = ?", (seq,)).fetchone()[0].hex()
    conn.close()
    return h


def test_wrong_key_fails(db: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    other = tmp_path / "other.key"
    other.write_text("11" * 32 + "\n")
    monkeypatch.setenv("SOC_TUI_KEY_FILE", str(other))
    _fails_at(db, 1, "hash mismatch")


def test_missing_key_is_one_clear_error(db: Path, tmp_path: Path,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SOC_TUI_KEY_FILE", str(tmp_path / "nowhere" / "chain.key"))
    with pytest.raises(StoreError, match="cannot read the chain key"):
        _verify(db)


def test_fts_and_sqlite_checks_run(db: Path) -> None:
    conn = open_db(db)  # index a wrong text for event 5
    conn.execute("INSERT INTO events_fts(events_fts, rowid, message) SELECT 'delete', id, message"
                 " FROM events_text WHERE id = 5")
    conn.execute("INSERT INTO events_fts(rowid, message) VALUES (5, 'nothing to see')")
    conn.close()
    report = _verify(db)
    assert not report.ok and any("FTS" in p for p in report.problems), report.problems


# --- anchors (pruning) ---------------------------------------------------------------


def test_anchor_lets_pruned_blocks_go(db: Path) -> None:
    conn = open_db(db)
    conn.execute("BEGIN IMMEDIATE")
    assert anchor_events(conn, 650) == 4  # rounds down to the end of block 2
    conn.execute("COMMIT")
    conn.close()
    assert _blocks(db)[-1] == (4, "anchor", 1, 600)
    _tamper(db, "DELETE FROM events WHERE id <= 600", "DELETE FROM raw_blocks WHERE id + n - 1 <= 600")
    _rebuild_fts(db)
    assert _verify(db).ok, _verify(db).problems
    _tamper(db, "UPDATE events SET pid = 1 WHERE id = 700")
    _fails_at(db, 3, "digest mismatch")


def test_without_anchor_pruning_fails(db: Path) -> None:
    _tamper(db, "DELETE FROM events WHERE id <= 300")
    _fails_at(db, 1, "300 event row(s) deleted")


# --- alerts ------------------------------------------------------------------------------


@pytest.fixture
def alerts_db(tmp_path: Path, key: Path) -> Path:
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "ssh.yml").write_text(RULE)
    path = tmp_path / "alerts.db"
    _ingest(tmp_path, path, batches=2, per=50, rules=rules)
    assert _verify(path).ok, _verify(path).problems
    return path


def _alert_blocks(db: Path) -> list[int]:
    return [seq for seq, kind, _, _ in _blocks(db) if kind == "alerts"]


def test_alerts_are_sealed(alerts_db: Path) -> None:
    conn = sqlite3.connect(alerts_db)
    assert conn.execute("SELECT count(*) FROM alerts").fetchone()[0] > 0
    conn.close()
    assert _alert_blocks(alerts_db)


def test_updated_alert_fails(alerts_db: Path) -> None:
    _tamper(alerts_db, "UPDATE alerts SET status = 'closed' WHERE id = (SELECT min(id) FROM alerts)")
    report = _verify(alerts_db)
    assert not report.ok and "changed since it was sealed" in report.problems[0]
    assert report.first_bad in _alert_blocks(alerts_db)


def test_deleted_alert_fails(alerts_db: Path) -> None:
    _tamper(alerts_db, "DELETE FROM alerts WHERE id = (SELECT min(id) FROM alerts)")
    report = _verify(alerts_db)
    assert not report.ok and "deleted" in report.problems[0]
    assert report.first_bad in _alert_blocks(alerts_db)


def test_inserted_alert_fails(alerts_db: Path) -> None:
    _tamper(alerts_db, "INSERT INTO alerts (rule_id, rule_name, title, severity, count, first_seen,"
                       " last_seen, dedup_key, created_at, updated_at)"
                       " VALUES ('x', 'x', 'x', 'low', 1, 0, 0, 'k', 0, 0)")
    report = _verify(alerts_db)
    assert not report.ok and "never sealed" in report.problems[0]


# --- notes and audit (append-only) ----------------------------------------------------


def _write(db: Path, action) -> None:  # noqa: ANN001
    conn: StoreConnection = open_db(db)
    conn.execute("BEGIN IMMEDIATE")
    action(conn)
    conn.execute("COMMIT")
    conn.close()


def _add_audit(conn: sqlite3.Connection, n: int) -> None:
    ids = [int(conn.execute(
        "INSERT INTO audit (ts, actor, action, object_type, object_id, before, after)"
        " VALUES (?, 'ann', 'ack', 'alert', ?, NULL, '{}')", (i, str(i))).lastrowid)
        for i in range(n)]
    seal_rows(conn, "audit", ids)


def _add_note(conn: sqlite3.Connection) -> None:
    nid = int(conn.execute(
        "INSERT INTO notes (note_id, version, object_type, object_id, author, created_at, body)"
        " VALUES (0, 1, 'alert', 1, 'ann', 1, 'looked at it')").lastrowid)
    seal_rows(conn, "notes", [nid])


@pytest.fixture
def triage_db(db: Path) -> Path:
    _write(db, lambda c: _add_audit(c, 3))
    _write(db, _add_note)
    _write(db, lambda c: _add_audit(c, 2))
    assert _verify(db).ok, _verify(db).problems
    assert [k for _, k, _, _ in _blocks(db)][3:] == ["audit", "notes", "audit"]
    return db


def test_changed_audit_row_fails(triage_db: Path) -> None:
    _tamper(triage_db, "DROP TRIGGER audit_no_update", "UPDATE audit SET actor = 'eve' WHERE id = 2")
    _fails_at(triage_db, 4, "audit row 2 changed")


def test_deleted_audit_row_fails(triage_db: Path) -> None:
    _tamper(triage_db, "DROP TRIGGER audit_no_delete", "DELETE FROM audit WHERE id = 5")
    _fails_at(triage_db, 6, "audit row 5 deleted")


def test_inserted_audit_row_fails(triage_db: Path) -> None:
    _tamper(triage_db, "INSERT INTO audit (ts, actor, action, object_type, object_id)"
                       " VALUES (9, 'eve', 'close', 'alert', '1')")
    _fails_at(triage_db, 6, "never sealed")


def test_changed_note_fails(triage_db: Path) -> None:
    _tamper(triage_db, "DROP TRIGGER notes_no_update", "UPDATE notes SET body = 'nothing here'")
    _fails_at(triage_db, 5, "notes row 1 changed")


def test_deleted_note_fails(triage_db: Path) -> None:
    _tamper(triage_db, "DROP TRIGGER notes_no_delete", "DELETE FROM notes")
    _fails_at(triage_db, 5, "notes row 1 deleted")


def test_inserted_note_fails(triage_db: Path) -> None:
    _tamper(triage_db, "INSERT INTO notes (note_id, version, object_type, object_id, author,"
                       " created_at, body) VALUES (0, 2, 'alert', 1, 'eve', 2, 'all fine')")
    _fails_at(triage_db, 5, "notes row(s) never sealed")


def test_verify_command_exits_1_and_names_the_block(triage_db: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    capsys.readouterr()
    assert main(["--db", str(triage_db), "verify"]) == 0
    out = capsys.readouterr().out
    assert "verify: OK" in out and "latest seal: 6:" in out
    _tamper(triage_db, "UPDATE events SET src_ip = NULL WHERE id = 450")
    assert main(["--db", str(triage_db), "verify"]) == 1
    out = capsys.readouterr().out
    assert "verify: FAILED" in out and "block 2 (events 301-600): digest mismatch" in out, out


def test_changed_chain_item_fails(triage_db: Path) -> None:
    _tamper(triage_db, "UPDATE chain_items SET digest = '00' WHERE seq = 5")
    _fails_at(triage_db, 5, "sealed row images changed")


def test_seal_rows_refuses_other_tables(db: Path) -> None:
    conn = open_db(db)
    conn.execute("BEGIN IMMEDIATE")
    with pytest.raises(ValueError):
        seal_rows(conn, "events; DROP TABLE chain", [1])
    conn.execute("ROLLBACK")
    conn.close()


def test_invalid_utf8_written_into_a_text_column_fails_cleanly(db: Path) -> None:
    _tamper(db, "UPDATE events SET message = CAST(x'ff00fe' AS TEXT) WHERE id = 10",
            "UPDATE chain SET kind = CAST(x'c3' AS TEXT) || kind WHERE seq = 3")
    report = _verify(db)
    assert not report.ok
    assert report.first_bad == 1 and "digest mismatch" in report.problems[0], report.problems
