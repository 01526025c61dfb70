"""Triage from the CLI on a real database: the alert workflow, incidents,
append-only notes, analyst suppressions, metrics and the audit trail, and
several analysts working while a collector ingests."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from soc_tui.cli import main
from soc_tui.store import triage
from soc_tui.store.db import open_db


def _line(n: int, text: str) -> str:
    t = time.gmtime(1_700_438_400 + n)
    return (f"Nov {t.tm_mday:2d} {t.tm_hour:02d}:{t.tm_min:02d}:{t.tm_sec:02d} bastion "
            f"sshd[{1000 + n % 97}]: {text}")


def _story(path: Path, start: int = 0, ips: tuple[str, ...] = ("198.51.100.7", "203.0.113.9")) -> Path:
    """Per address: six failed passwords, then a successful login as root."""
    lines = []
    for k, ip in enumerate(ips):
        base = start + k * 100
        lines += [_line(base + i, f"Failed password for root from {ip} port {40000 + i} ssh2")
                  for i in range(6)]
        lines.append(_line(base + 7, f"Accepted password for root from {ip} port 50000 ssh2"))
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture
def db(tmp_path: Path) -> Path:
    db = tmp_path / "soc.db"
    assert main(["--db", str(db), "ingest", "--tz", "UTC", str(_story(tmp_path / "auth.log"))]) == 0
    return db


def _run(db: Path, *args: str, analyst: str | None = "alice") -> int:
    pre = ["--db", str(db)] + (["--analyst", analyst] if analyst else [])
    return main([*pre, *args])


def _alerts(db: Path, capsys: pytest.CaptureFixture[str], *args: str) -> dict[str, dict]:
    """rule_name/src_ip -> alert JSON."""
    capsys.readouterr()
    assert main(["--db", str(db), "alerts", "list", "--format", "json", *args]) == 0
    out = {}
    for line in capsys.readouterr().out.splitlines():
        a = json.loads(line)
        out[f"{a['rule_name']}/{a['src_ip']}"] = a
    return out


def _audit(db: Path) -> list[tuple]:
    conn = sqlite3.connect(db)
    try:
        return conn.execute(
            "SELECT actor, action, object_type, object_id, before, after FROM audit ORDER BY id"
        ).fetchall()
    finally:
        conn.close()


def test_alert_workflow_is_enforced_and_audited(db: Path, capsys: pytest.CaptureFixture[str]) -> None:
    alerts = _alerts(db, capsys)
    bf = alerts["ssh_bruteforce/198.51.100.7"]["id"]
    other = alerts["ssh_bruteforce/203.0.113.9"]["id"]
    assert alerts["ssh_bruteforce/198.51.100.7"]["status"] == "new"

    assert _run(db, "alerts", "ack", str(bf)) == 0
    assert _run(db, "alerts", "start", str(bf)) == 0
    # Backwards is refused with a clear line, and changes nothing.
    capsys.readouterr()
    assert _run(db, "alerts", "ack", str(bf)) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "in_progress" in err and "cannot become acknowledged" in err
    # Closing needs a reason (argparse refuses without one: exit 2).
    with pytest.raises(SystemExit) as exc:
        _run(db, "alerts", "close", str(bf))
    assert exc.value.code == 2
    assert _run(db, "alerts", "close", str(bf), "--reason", "true_positive") == 0
    assert _run(db, "alerts", "start", str(bf)) == 1  # closed: reopen first
    assert _run(db, "alerts", "reopen", str(bf), analyst="bob") == 0
    assert _run(db, "alerts", "reopen", str(bf)) == 1  # not closed any more

    # A bulk action with one unknown id changes none of them.
    assert _run(db, "alerts", "ack", str(other), "999999") == 1
    assert _alerts(db, capsys)["ssh_bruteforce/203.0.113.9"]["status"] == "new"

    a = _alerts(db, capsys)["ssh_bruteforce/198.51.100.7"]
    assert a["status"] == "acknowledged" and a["close_reason"] is None
    trail = [(actor, action, json.loads(before), json.loads(after))
             for actor, action, kind, oid, before, after in _audit(db) if oid == str(bf)]
    assert [(t[0], t[1]) for t in trail] == [
        ("alice", "ack"), ("alice", "start"), ("alice", "close"), ("bob", "reopen")]
    assert trail[2][2]["status"] == "in_progress" and trail[2][3] == {
        "status": "closed", "close_reason": "true_positive", "closed_at": trail[2][3]["closed_at"]}
    assert trail[3][3]["status"] == "acknowledged"


def test_the_actor_is_the_os_user_without_analyst(db: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import getpass

    bf = _alerts(db, capsys)["ssh_bruteforce/198.51.100.7"]["id"]
    assert _run(db, "alerts", "ack", str(bf), analyst=None) == 0
    assert _audit(db)[-1][:2] == (getpass.getuser(), "ack")


def test_assign_tag_bulk_and_csv(db: Path, capsys: pytest.CaptureFixture[str]) -> None:
    alerts = _alerts(db, capsys)
    ids = [str(a["id"]) for a in alerts.values()]
    assert _run(db, "alerts", "assign", *ids, "--to", "carol") == 0
    assert _run(db, "alerts", "assign", ids[0]) == 0  # to me (alice)
    assert _run(db, "alerts", "tag", *ids[:2], "--tag", "pentest", "--tag", "weekend") == 0
    assert _run(db, "alerts", "tag", ids[0], "--tag", "weekend", "--remove") == 0
    by_id = {str(a["id"]): a for a in _alerts(db, capsys).values()}
    assert by_id[ids[0]]["assignee"] == "alice" and by_id[ids[1]]["assignee"] == "carol"
    assert by_id[ids[0]]["labels"] == ["pentest"] and by_id[ids[1]]["labels"] == ["pentest", "weekend"]
    assert len(_alerts(db, capsys, "--assignee", "carol")) == len(ids) - 1

    capsys.readouterr()
    assert main(["--db", str(db), "alerts", "list", "--format", "csv"]) == 0
    import csv
    import io

    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert {r["id"] for r in rows} == set(ids)
    row = next(r for r in rows if r["id"] == ids[1])
    assert row["assignee"] == "carol" and row["labels"] == "pentest;weekend"


def test_incidents_notes_and_pins(db: Path, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    alerts = _alerts(db, capsys)
    crit = alerts["ssh_success_after_bruteforce/198.51.100.7"]
    bf = alerts["ssh_bruteforce/198.51.100.7"]
    capsys.readouterr()
    assert _run(db, "incidents", "create", "--title", "Break-in on bastion",
                "--alert", str(crit["id"]), "--alert", str(bf["id"])) == 0
    inc = int(capsys.readouterr().out)
    assert _run(db, "incidents", "create", "--title", "Second look", "--severity", "low",
                "--alert", str(bf["id"])) == 0
    second = int(capsys.readouterr().out)
    assert _run(db, "incidents", "link", str(inc), "--alert", str(bf["id"])) == 0  # moved back
    assert _run(db, "incidents", "pin", str(inc), "--event", str(bf["event_ids"][0])) == 0
    assert _run(db, "incidents", "pin", str(inc), "--event", "987654") == 1
    assert _run(db, "incidents", "status", str(inc), "contained") == 0

    note_file = tmp_path / "n.md"
    note_file.write_text("# Findings\n\nroot logged in from `198.51.100.7` [bold red]x[/]\n")
    assert _run(db, "notes", "add", "--incident", str(inc), "--file", str(note_file)) == 0
    note = int(capsys.readouterr().out)
    assert _run(db, "notes", "add", "--alert", str(bf["id"]), "--text", "seen before") == 0
    assert _run(db, "notes", "edit", str(note), "--text", "# Findings (v2)", analyst="bob") == 0
    assert _run(db, "notes", "add", "--incident", "4242", "--text", "x") == 1

    capsys.readouterr()
    assert _run(db, "incidents", "show", str(inc), "--format", "json") == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["severity"] == "critical"  # the highest of its alerts
    assert shown["status"] == "contained"
    assert sorted(shown["alert_ids"]) == sorted([crit["id"], bf["id"]])
    assert shown["pinned_event_ids"] == [bf["event_ids"][0]]
    assert [(n["version"], n["author"], n["body"]) for n in shown["notes"]] == [(2, "bob", "# Findings (v2)")]
    assert {h["action"] for h in shown["history"]} >= {"create", "status", "pin", "note", "edit_note"}
    # The merged timeline: alerts, evidence and pinned events, notes, status changes, in time order.
    kinds = [t["kind"] for t in shown["timeline"]]
    assert {"alert", "evidence", "pinned event", "note", "status", "link"} <= set(kinds), kinds
    assert [t["ts"] for t in shown["timeline"]] == sorted(t["ts"] for t in shown["timeline"])
    conn = open_db(db, create=False)
    try:
        assert triage.get_incident(conn, second).alert_ids == []
        versions = triage.notes_of(conn, "incident", inc, history=True)
        assert [(n.version, n.author) for n in versions] == [(1, "alice"), (2, "bob")]
        assert "[bold red]x[/]" in versions[0].body  # stored as written
        # Append-only: the database itself refuses to rewrite a note or an audit row.
        for sql in ("UPDATE notes SET body = 'x'", "DELETE FROM notes", "UPDATE audit SET actor = 'x'",
                    "DELETE FROM audit"):
            with pytest.raises(sqlite3.DatabaseError, match="append-only"):
                conn.execute(sql)
    finally:
        conn.close()
    capsys.readouterr()
    assert _run(db, "incidents", "show", str(inc)) == 0
    text = capsys.readouterr().out
    assert "Break-in on bastion" in text and "# Findings (v2)" in text and "bob" in text
    assert "timeline (" in text and "pinned event" in text and "Accepted password" in text


def test_suppression_holds_back_hits_until_it_expires(tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    db = tmp_path / "soc.db"
    assert main(["--db", str(db), "ingest", "--tz", "UTC", "--no-rules",
                 str(_story(tmp_path / "a.log", ips=("192.0.2.1",)))]) == 0
    capsys.readouterr()
    assert _run(db, "suppress", "add", "--rule", "ssh_bruteforce", "--field", "src_ip=198.51.100.7",
                "--for", "1h", "--reason", "pentest by the red team") == 0
    sid = int(capsys.readouterr().out)
    assert _run(db, "suppress", "add", "--field", "colour=red", "--reason", "x") == 1
    assert _run(db, "suppress", "add", "--rule", "x", "--reason", "  ") == 1
    # A second suppression that expires at once: it must stop applying by itself.
    conn = open_db(db, create=False)
    try:
        short = triage.add_suppression(conn, "alice", rule="ssh_bruteforce",
                                       fields={"src_ip": "203.0.113.9"}, reason="brief",
                                       expires_at=triage.now_us() + 300_000)
    finally:
        conn.close()
    time.sleep(0.4)
    assert main(["--db", str(db), "ingest", "--tz", "UTC", str(_story(tmp_path / "b.log", 1000))]) == 0
    alerts = _alerts(db, capsys)
    assert "ssh_bruteforce/198.51.100.7" not in alerts  # held back
    assert "ssh_root_login/198.51.100.7" in alerts  # other rules still raise
    assert "ssh_bruteforce/203.0.113.9" in alerts  # its suppression had expired
    capsys.readouterr()
    assert _run(db, "suppress", "list", "--all", "--format", "json") == 0
    listed = {s["id"]: s for s in map(json.loads, capsys.readouterr().out.splitlines())}
    # six failures: the threshold of five is met by the 5th and again by the 6th
    assert listed[sid]["hits"] == 2 and listed[sid]["active"] and listed[sid]["author"] == "alice"
    assert listed[short]["hits"] == 0 and not listed[short]["active"]
    assert _run(db, "suppress", "remove", str(sid)) == 0
    assert _run(db, "suppress", "remove", str(sid)) == 1
    assert main(["--db", str(db), "ingest", "--tz", "UTC", str(_story(tmp_path / "c.log", 5000))]) == 0
    assert "ssh_bruteforce/198.51.100.7" in _alerts(db, capsys)
    assert [a[1] for a in _audit(db)] == ["suppress", "suppress", "unsuppress"]


def test_metrics_per_rule(db: Path, capsys: pytest.CaptureFixture[str]) -> None:
    alerts = _alerts(db, capsys)
    a, b = alerts["ssh_bruteforce/198.51.100.7"]["id"], alerts["ssh_bruteforce/203.0.113.9"]["id"]
    assert _run(db, "alerts", "close", str(a), "--reason", "false_positive") == 0
    assert _run(db, "alerts", "close", str(b), "--reason", "true_positive") == 0
    capsys.readouterr()
    assert _run(db, "alerts", "metrics", "--format", "json") == 0
    rows = {r["rule_name"]: r for r in map(json.loads, capsys.readouterr().out.splitlines())}
    bf = rows["ssh_bruteforce"]
    assert bf["alerts"] == 2 and bf["closed"] == 2 and bf["false_positive_rate"] == 0.5
    assert bf["mean_time_to_ack_s"] is not None and bf["mean_time_to_close_s"] >= 0
    assert rows["ssh_root_login"]["closed"] == 0 and rows["ssh_root_login"]["false_positive_rate"] is None


@pytest.mark.slow
def test_analysts_triage_while_a_collector_ingests(tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    """One collector appending steadily, two analyst processes acking,
    assigning and adding notes at the same time: nobody sees "database is
    locked", no note is lost."""
    db = tmp_path / "soc.db"
    log = tmp_path / "live.log"
    _story(log)
    collector = subprocess.Popen(
        [sys.executable, "-m", "soc_tui", "--db", str(db), "collect", str(log), "--poll", "0.05",
         "--tz", "UTC"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    stop = threading.Event()

    def append() -> None:
        n = 10_000
        with open(log, "a") as fh:
            while not stop.is_set():
                fh.write("".join(_line(n + i, f"Failed password for root from 192.0.2.{i % 200 + 1}"
                                           f" port 4{i:04d} ssh2") + "\n" for i in range(200)))
                fh.flush()
                n += 200
                time.sleep(0.02)

    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if db.exists() and _count(db, "SELECT count(*) FROM alerts") >= 4:
                break
            time.sleep(0.1)
        writer = threading.Thread(target=append)
        writer.start()
        script = (
            "import sys, time; from soc_tui.cli import main\n"
            "db, who, ids = sys.argv[1], sys.argv[2], sys.argv[3].split(',')\n"
            "bad = notes = k = 0\n"
            "end = time.monotonic() + 4\n"
            "while time.monotonic() < end or k < 10:\n"
            "    for args in (['alerts', 'ack', *ids], ['alerts', 'assign', *ids, '--to', who],\n"
            "                 ['notes', 'add', '--alert', ids[k % len(ids)], '--text', f'{who} {k}']):\n"
            "        bad += main(['--db', db, '--analyst', who, *args]) != 0\n"
            "    notes += 1\n"
            "    k += 1\n"
            "print(notes)\n"
            "sys.exit(bad)\n"
        )
        ids = ",".join(str(i) for i in range(1, 5))
        before = _count(db, "SELECT count(*) FROM events")
        analysts = [subprocess.Popen([sys.executable, "-c", script, str(db), who, ids],
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE)
                    for who in ("alice", "bob")]
        results = [(p.wait(timeout=120), p.stderr.read().decode(), int(p.stdout.read().split()[-1]))
                   for p in analysts]
        during = _count(db, "SELECT count(*) FROM events") - before
    finally:
        stop.set()
        if "writer" in locals():
            writer.join()
        collector.terminate()
        err = collector.communicate(timeout=60)[1].decode()
    for code, text, _ in results:
        assert code == 0 and "locked" not in text, text
    assert "locked" not in err and collector.returncode == 0, err
    assert during > 1000  # the collector really was ingesting meanwhile
    assert _count(db, "SELECT count(*) FROM notes") == sum(n for _, _, n in results) >= 20
    lines = len(log.read_text().splitlines())
    assert _count(db, "SELECT count(*) FROM events") == lines
    capsys.readouterr()
    assert main(["--db", str(db), "verify"]) == 0, capsys.readouterr().out


def _count(db: Path, sql: str) -> int:
    conn = sqlite3.connect(db)
    try:
        return conn.execute(sql).fetchone()[0]
    except sqlite3.OperationalError:
        return 0
    finally:
        conn.close()


def test_rules_switched_off_and_on_are_audited_and_followed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from soc_tui.cli import shipped_rules_dir
    from soc_tui.detect.loader import load_rules
    from soc_tui.detect.worker import RuleWorker

    db = tmp_path / "soc.db"
    assert main(["--db", str(db), "ingest", "--tz", "UTC", "--no-rules",
                 str(_story(tmp_path / "a.log", ips=("192.0.2.1",)))]) == 0
    # A worker that is already running follows the switch at its next chunk.
    worker = RuleWorker(str(db), load_rules([shipped_rules_dir()]))
    worker.catch_up()
    assert _run(db, "rules", "disable", "ssh_bruteforce") == 0
    assert _run(db, "rules", "disable", "ssh_bruteforce") == 0  # already: no second audit row
    assert _run(db, "rules", "disable", "no_such_rule") == 2
    assert main(["--db", str(db), "ingest", "--tz", "UTC", "--no-rules",
                 str(_story(tmp_path / "b.log", 20000, ips=("198.51.100.7",)))]) == 0
    worker.catch_up()
    worker.close()
    alerts = _alerts(db, capsys)
    assert "ssh_bruteforce/192.0.2.1" in alerts
    assert "ssh_bruteforce/198.51.100.7" not in alerts
    # Its correlation cannot fire without it; other rules still do.
    assert "ssh_success_after_bruteforce/198.51.100.7" not in alerts
    assert "ssh_root_login/198.51.100.7" in alerts
    assert _run(db, "rules", "enable", "ssh_bruteforce", analyst="bob") == 0
    assert main(["--db", str(db), "ingest", "--tz", "UTC",
                 str(_story(tmp_path / "c.log", 40000, ips=("203.0.113.5",)))]) == 0
    alerts = _alerts(db, capsys)
    assert "ssh_bruteforce/203.0.113.5" in alerts and "ssh_success_after_bruteforce/203.0.113.5" in alerts
    rows = [(a[0], a[1], a[2], a[3]) for a in _audit(db)]
    assert rows == [("alice", "disable", "rule", "ssh_bruteforce"),
                    ("bob", "enable", "rule", "ssh_bruteforce")]
