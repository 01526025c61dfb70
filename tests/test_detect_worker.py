"""The rule worker end to end: ingest and collect raise alerts into the store,
once; a restart (even SIGKILL) resumes without missing or repeating alerts."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from logfiles import rotate
from storedb import has_checkpoint, stored_count, stored_events

from soc_tui.cli import main
from soc_tui.detect.loader import load_rules
from soc_tui.detect.offline import run_files

RULES = """\
title: SSH authentication failure
name: t_auth_failure
id: 7f0c1a60-0000-4000-8000-000000000001
logsource: {product: linux, service: sshd}
detection:
  sel: {action: [ssh_auth_failure, ssh_invalid_user]}
  condition: sel
level: low
---
title: SSH brute force
name: t_bruteforce
id: 7f0c1a60-0000-4000-8000-000000000002
correlation:
  type: event_count
  rules: [t_auth_failure]
  group-by: [src_ip]
  timespan: 60s
  condition: {gte: 5}
level: high
tags: [attack.t1110]
x-soc:
  suppress: {window: 10m, by: [src_ip]}
---
title: SSH login
name: t_login
id: 7f0c1a60-0000-4000-8000-000000000003
logsource: {product: linux, service: sshd}
detection:
  sel: {action: ssh_login}
  condition: sel
level: informational
---
title: SSH login after brute force
name: t_success_after
id: 7f0c1a60-0000-4000-8000-000000000004
correlation:
  type: temporal_ordered
  rules: [t_bruteforce, t_login]
  group-by: [src_ip]
  timespan: 10m
  generate: true
level: critical
---
title: First login of a user
name: t_first_login
id: 7f0c1a60-0000-4000-8000-000000000005
logsource: {product: linux, service: sshd}
detection:
  sel: {action: ssh_login}
  condition: sel
level: low
x-soc:
  new_value: {fields: [user]}
  suppress: {window: 1s, by: [user]}
"""


@pytest.fixture
def rules_dir(tmp_path: Path) -> Path:
    d = tmp_path / "rules"
    d.mkdir()
    (d / "ssh.yml").write_text(RULES)
    return d


def _line(n: int, text: str) -> str:
    """A syslog line `n` seconds after Nov 20 00:00 (times only move forward)."""
    t = time.gmtime(1_700_438_400 + n)  # a Nov 20, 00:00 UTC
    return (f"Nov {t.tm_mday:2d} {t.tm_hour:02d}:{t.tm_min:02d}:{t.tm_sec:02d} bastion "
            f"sshd[{1000 + n % 97}]: {text}")


def _attack(start: int, ip: str, failures: int, *, login: bool, user: str = "root") -> list[str]:
    out = [_line(start + i, f"Failed password for {user} from {ip} port {40000 + i} ssh2")
           for i in range(failures)]
    if login:
        out.append(_line(start + failures, f"Accepted password for {user} from {ip} port 50000 ssh2"))
    return out


def _alerts(db: Path, capsys: pytest.CaptureFixture[str]) -> list[dict]:
    capsys.readouterr()
    assert main(["--db", str(db), "alerts", "list", "--format", "json"]) == 0
    return [json.loads(line) for line in capsys.readouterr().out.splitlines()]


def _key(a: dict) -> tuple:
    return (a["rule_name"], a["src_ip"], a["user"], a["count"], tuple(a["evidence"]))


def test_ingest_raises_alerts_once_with_evidence(tmp_path: Path, rules_dir: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    log = tmp_path / "auth.log"
    lines = _attack(0, "203.0.113.9", 7, login=True) + _attack(100, "198.51.100.4", 3, login=True, user="bob")
    log.write_text("\n".join(lines) + "\n")
    db = tmp_path / "soc.db"
    args = ["--db", str(db), "ingest", str(log), "--year", "2025", "--tz", "UTC", "--rules", str(rules_dir)]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "alerts raised 4" in out  # bruteforce, success-after, first login root, first login bob
    alerts = _alerts(db, capsys)
    by_rule = {a["rule_name"]: a for a in alerts if a["rule_name"] != "t_first_login"}
    bf = by_rule["t_bruteforce"]
    assert bf["src_ip"] == "203.0.113.9" and bf["severity"] == "high" and bf["status"] == "new"
    assert bf["count"] == 3  # 5th, 6th and 7th failure, merged into one alert
    assert bf["evidence"] == lines[:7] and len(bf["event_ids"]) == 7
    assert bf["tags"] == ["attack.t1110"]
    crit = by_rule["t_success_after"]
    assert crit["severity"] == "critical" and crit["src_ip"] == "203.0.113.9"
    assert lines[7] in crit["evidence"]
    assert "t_login" not in by_rule  # informational never reaches the queue
    assert sorted(a["user"] for a in alerts if a["rule_name"] == "t_first_login") == ["bob", "root"]
    # The critical alert lists first; then high.
    assert [a["severity"] for a in alerts][:2] == ["critical", "high"]

    # Ingesting again stores nothing new and raises nothing new.
    assert main(args) == 0
    assert "alerts raised 0" in capsys.readouterr().out
    assert _key_set(_alerts(db, capsys)) == _key_set(alerts)

    # The same file ingested later into the same database (new events): the
    # user is no longer new, so t_first_login stays quiet.
    log2 = tmp_path / "auth2.log"
    log2.write_text(_line(500, "Accepted publickey for bob from 192.0.2.7 port 1 ssh2") + "\n")
    assert main(["--db", str(db), "ingest", str(log2), "--year", "2025", "--tz", "UTC",
                 "--rules", str(rules_dir)]) == 0
    assert "alerts raised 0" in capsys.readouterr().out


def _key_set(alerts: list[dict]) -> set[tuple]:
    return {_key(a) for a in alerts}


def test_no_rules_skips_detection_and_backtest_shows_what_would_fire(
    tmp_path: Path, rules_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    log = tmp_path / "auth.log"
    log.write_text("\n".join(_attack(0, "203.0.113.9", 6, login=False)) + "\n")
    db = tmp_path / "soc.db"
    assert main(["--db", str(db), "ingest", str(log), "--year", "2025", "--tz", "UTC", "--no-rules"]) == 0
    assert "alerts raised" not in capsys.readouterr().out
    assert _alerts(db, capsys) == []
    cfg = tmp_path / "config.yaml"
    cfg.write_text(f"rules: [{rules_dir}]\n")
    capsys.readouterr()
    assert main(["--db", str(db), "--config", str(cfg), "rules", "backtest", "t_bruteforce",
                 "--since", "2025-01-01", "--format", "json"]) == 0
    got = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    assert [(a["rule_name"], a["src_ip"], a["count"]) for a in got] == [("t_bruteforce", "203.0.113.9", 2)]
    assert _alerts(db, capsys) == []  # a backtest stores nothing
    assert main(["--db", str(db), "--config", str(cfg), "rules", "backtest", "nope"]) == 2
    assert "no rule named 'nope'" in capsys.readouterr().err


class Writer(threading.Thread):
    """Appends attacks (failures, then sometimes a login) from rotating
    addresses, rotating the file now and then."""

    def __init__(self, log: Path, seed: int) -> None:
        super().__init__(daemon=True)
        self.log = log
        self.rng = random.Random(seed)
        self.written: list[str] = []
        self.stop = threading.Event()

    def run(self) -> None:
        fh = open(self.log, "a", encoding="utf-8")
        n = 0
        while not self.stop.is_set():
            ip = f"192.0.2.{self.rng.randint(1, 12)}"
            burst = _attack(n, ip, self.rng.randint(1, 8), login=self.rng.random() < 0.3,
                            user=self.rng.choice(["root", "admin", "deploy", f"u{n % 50}"]))
            n += len(burst) + self.rng.randint(0, 90)  # sometimes beyond the 60 s window
            for line in burst:
                fh.write(line + "\n")
                self.written.append(line)
            fh.flush()
            if self.rng.random() < 0.05:
                fh.close()
                rotate(self.log)
                fh = open(self.log, "a", encoding="utf-8")
            time.sleep(self.rng.uniform(0.0, 0.01))
        fh.close()


def _collect(db: Path, log: Path, rules_dir: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "soc_tui", "--db", str(db), "collect", str(log), "--poll", "0.05",
         "--tz", "UTC", "--rules", str(rules_dir)],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )


@pytest.mark.slow
def test_sigkill_neither_misses_nor_repeats_alerts(tmp_path: Path, rules_dir: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    log = tmp_path / "auth.log"
    log.touch()
    db = tmp_path / "soc.db"
    seed = int(os.environ.get("SOC_TUI_CRASH_SEED", "11"))
    rng = random.Random(seed)
    writer = Writer(log, seed)
    # The first collector registers the file before the writer starts.
    proc = _collect(db, log, rules_dir)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and not has_checkpoint(db):
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    writer.start()
    try:
        for _ in range(6):
            proc = _collect(db, log, rules_dir)
            time.sleep(rng.uniform(0.6, 1.5))
            proc.send_signal(signal.SIGKILL)
            proc.wait()
    finally:
        writer.stop.set()
        writer.join()
    proc = _collect(db, log, rules_dir)
    # Let it catch up, then stop it cleanly.
    deadline = time.monotonic() + 60
    want = len(writer.written)
    while time.monotonic() < deadline and stored_count(db) < want:
        time.sleep(0.2)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=30) == 0, proc.stderr.read().decode() if proc.stderr else ""
    assert [e["raw"] for e in stored_events(db)] == writer.written

    # The reference: the same lines, evaluated in one uninterrupted pass.
    ref_log = tmp_path / "reference.log"
    ref_log.write_text("\n".join(writer.written) + "\n")
    ref = run_files(load_rules([rules_dir]), [str(ref_log)], tz="UTC")
    expected = {
        (a.rule_name, a.src_ip, a.user, a.count, tuple(ref.lines(a))) for a in ref.alerts
    }
    got = _key_set(_alerts(db, capsys))
    summary = lambda keys: sorted((k[0], k[1] or "", k[2] or "", k[3], len(k[4])) for k in keys)  # noqa: E731
    assert summary(got) == summary(expected)
    assert got == expected
    assert any(k[0] == "t_success_after" for k in got)


def _pipeline_alerts(tmp_path: Path, log: Path, rules_dir: Path, parse_rules: Path | None,
                     name: str) -> set[tuple]:
    """Ingest `log` through the pipeline with the parse process forced on (it
    matches stage 1 against `parse_rules`) and the worker fed by the writer;
    returns the stored alerts as keys."""
    import asyncio

    from soc_tui.config import SourceConfig
    from soc_tui.detect.worker import RuleWorker
    from soc_tui.pipeline import Pipeline
    from soc_tui.store.reader import StoreReader

    db = tmp_path / f"{name}.db"
    StoreReader(str(db)).close()
    worker = RuleWorker(str(db), load_rules([rules_dir]))
    worker.start()
    prematched = []

    def offer(first: int, batch: Any) -> None:
        prematched.extend(p.prematched for p in batch.written)
        worker.offer(first, batch)

    pipeline = Pipeline(str(db), [SourceConfig(str(log), None, "UTC", 2025, "auto")], follow=False,
                        worker_backlog=0, batch_size=50, read_bytes=2048, on_commit=offer,
                        rule_paths=[str(parse_rules)] if parse_rules else None)
    asyncio.run(pipeline.run())
    worker.stop(drain=True)
    offered = worker.evaluated
    worker.close()
    assert offered == len(log.read_text().splitlines())
    assert sum(prematched) > 10  # most of the file went through the parse process
    reader = StoreReader(str(db), create=False)
    try:
        out = set()
        for a in reader.alerts():
            lines = tuple(e["raw"] for e in reader.events_by_id(a.event_ids))
            out.add((a.rule_name, a.src_ip, a.user, a.count, lines))
        return out
    finally:
        reader.close()


def test_rules_matched_in_the_parse_process_raise_what_the_store_path_raises(
    tmp_path: Path, rules_dir: Path
) -> None:
    rng = random.Random(4)
    lines: list[str] = []
    n = 0
    for _ in range(60):
        burst = _attack(n, f"192.0.2.{rng.randint(1, 6)}", rng.randint(1, 8),
                        login=rng.random() < 0.4, user=rng.choice(["root", "admin", "bob"]))
        lines += burst
        n += len(burst) + rng.randint(0, 80)
        lines.append(_line(n, "Connection closed by 198.51.100.1 port 22 [preauth]"))
    log = tmp_path / "auth.log"
    log.write_text("\n".join(lines) + "\n")
    ref = run_files(load_rules([rules_dir]), [str(log)], year=2025, tz="UTC")
    expected = {(a.rule_name, a.src_ip, a.user, a.count, tuple(ref.lines(a))) for a in ref.alerts}
    assert any(k[0] == "t_success_after" for k in expected)
    # Stage 1 in the parse process, with the worker's own rules.
    assert _pipeline_alerts(tmp_path, log, rules_dir, rules_dir, "same") == expected
    # The parse process loaded other rules (an edit in between): the worker
    # notices the digest differs and matches those events itself.
    other = tmp_path / "other-rules"
    other.mkdir()
    (other / "x.yml").write_text(RULES.replace("level: high", "level: medium"))
    assert _pipeline_alerts(tmp_path, log, rules_dir, other, "other") == expected


STAGE2_RULES = """\
title: sudo command
name: s_cmd
logsource: {product: linux, service: sudo}
detection: {sel: {action: sudo_command}, condition: sel}
level: low
x-soc:
  new_value: {fields: [CommandLine]}
  suppress: {window: 1s, by: [program, pid, USER]}
---
title: sudo run
name: s_run
logsource: {product: linux, service: sudo}
detection: {sel: {action: sudo_command}, condition: sel}
level: low
---
title: many commands as one target
name: s_many
correlation:
  type: value_count
  rules: [s_run]
  group-by: [USER]
  timespan: 10m
  condition: {field: COMMAND, gte: 3}
level: high
x-soc:
  suppress: {window: 1m, by: [USER, cs-host]}
---
title: ssh failure
name: s_fail
logsource: {product: linux, service: sshd}
detection: {sel: {action: ssh_auth_failure}, condition: sel}
level: low
---
title: one name, tried and used
name: s_who
correlation:
  type: temporal
  rules: [s_fail, s_run]
  group-by: [who]
  timespan: 10m
  aliases: {who: {s_fail: user, s_run: USER}}
level: high
x-soc:
  new_value: {fields: [auth_method, who]}
"""


def test_stage2_reads_only_what_the_parse_process_sends(tmp_path: Path) -> None:
    """A parse process sends the worker only the columns of a matched row that
    stage 2 reads (new_value, suppress `by`, correlation group-by, counted
    and aliased fields, derived ones like CommandLine included): the alerts
    are those of the in-memory pass over whole events."""
    from soc_tui.detect.worker import stage2_columns

    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "s.yml").write_text(STAGE2_RULES)
    cols = stage2_columns(load_rules([rules]))
    assert {"extra", "message", "raw", "msg_off", "target_user", "app", "pid"} <= set(cols)
    assert "url" not in cols and "user_agent" not in cols
    rng = random.Random(9)
    lines = []
    for n in range(400):
        if rng.random() < 0.5:
            who = rng.choice(["root", "www", "backup", "alice"])
            cmd = rng.choice(["/usr/bin/id", "/bin/ls /root", "/usr/bin/apt update", "/bin/sh"])
            stamp = _line(n * 7, "").split(" bastion ")[0]
            lines.append(f"{stamp} bastion sudo:    bob : TTY=pts/{n % 3} ; PWD=/home/bob ;"
                         f" USER={who} ; COMMAND={cmd}")
        else:
            user = rng.choice(["root", "www", "alice", "carol"])
            lines.append(_line(n * 7, f"Failed password for {user} from 192.0.2.{n % 5} port 22 ssh2"))
    log = tmp_path / "mixed.log"
    log.write_text("\n".join(lines) + "\n")
    ref = run_files(load_rules([rules]), [str(log)], year=2025, tz="UTC")
    expected = {(a.rule_name, a.src_ip, a.user, a.count, tuple(ref.lines(a))) for a in ref.alerts}
    assert {k[0] for k in expected} == {"s_cmd", "s_many", "s_who"}
    assert len([k for k in expected if k[0] == "s_cmd"]) == 4  # one per distinct command
    assert _pipeline_alerts(tmp_path, log, rules, rules, "stage2") == expected


def test_every_mapped_field_says_which_event_keys_it_reads() -> None:
    """What stage 2 keeps of a row comes from `keys_read`: a derived field
    added to the map without saying what it reads fails here, not silently."""
    from soc_tui.detect.fields import EVENT_FIELDS, FIELD_MAP, keys_read

    for name in FIELD_MAP:
        keys = keys_read(name)
        assert keys and set(keys) <= {*EVENT_FIELDS, "extra"}, name
    assert keys_read("CommandLine") == ("extra", "app", "message", "raw")
    assert keys_read("c-ip") == ("src_ip",)
    assert keys_read("exe") == ("extra",)  # not mapped: a key of extra


def test_restart_between_out_of_order_lines_still_raises(tmp_path: Path, rules_dir: Path,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    """Two hosts' lines out of time order: the restart replays from the oldest
    event the windows held, not from the cursor event's time."""
    first = [
        *(f"Nov 20 10:00:0{i} bastion sshd[7]: Failed password for root from 203.0.113.9 port {i} ssh2"
          for i in range(4)),
        "Nov 20 12:00:00 other sshd[8]: Failed password for bob from 198.51.100.7 port 9 ssh2",
    ]
    second = ["Nov 20 10:00:04 bastion sshd[7]: Failed password for root from 203.0.113.9 port 4 ssh2"]
    log = tmp_path / "auth.log"
    db = tmp_path / "soc.db"
    args = ["--db", str(db), "ingest", str(log), "--year", "2025", "--tz", "UTC", "--rules", str(rules_dir)]
    log.write_text("\n".join(first) + "\n")
    assert main(args) == 0
    with open(log, "a") as fh:
        fh.write("\n".join(second) + "\n")
    assert main(args) == 0
    got = [(a["rule_name"], a["src_ip"]) for a in _alerts(db, capsys) if a["rule_name"] == "t_bruteforce"]
    assert got == [("t_bruteforce", "203.0.113.9")]


def test_two_workers_on_one_database_raise_each_alert_once(tmp_path: Path, rules_dir: Path,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    from soc_tui.detect.worker import RuleWorker

    log = tmp_path / "auth.log"
    log.write_text("\n".join(_attack(0, "203.0.113.9", 7, login=True)) + "\n")
    db = tmp_path / "soc.db"
    assert main(["--db", str(db), "ingest", str(log), "--year", "2025", "--no-rules"]) == 0
    a = RuleWorker(str(db), load_rules([rules_dir]), chunk=3)
    b = RuleWorker(str(db), load_rules([rules_dir]), chunk=3)
    try:
        b.restore()
        a.catch_up()
        b.catch_up()
        a.catch_up()
    finally:
        a.close()
        b.close()
    names = sorted(x["rule_name"] for x in _alerts(db, capsys))
    assert names == ["t_bruteforce", "t_first_login", "t_success_after"]


def test_a_list_valued_group_field_does_not_stop_detection(tmp_path: Path) -> None:
    from soc_tui.detect.engine import Engine

    (tmp_path / "c.yml").write_text(
        "title: base\nname: b\nlogsource: {product: linux}\nlevel: low\n"
        "detection: {sel: {app: app1}, condition: sel}\n---\n"
        "title: sessions\nname: c\nlevel: high\n"
        "correlation: {type: value_count, rules: [b], group-by: [session], timespan: 1m,"
        " condition: {field: who, gte: 2}}\n")
    engine = Engine(load_rules([tmp_path]))
    hits = []
    for i, who in enumerate([["a"], {"x": 1}, "c"]):
        hits += engine.process({"id": i + 1, "ts": i * 1_000_000, "raw": "x", "app": "app1",
                                "extra": {"session": ["s", 1], "who": who}})
    assert [h.rule.label for h in hits] == ["c", "c"]


def test_an_event_dated_in_the_future_does_not_blind_its_group(tmp_path: Path) -> None:
    from soc_tui.detect.engine import Engine

    (tmp_path / "r.yml").write_text(RULES)
    engine = Engine(load_rules([tmp_path]))
    now = int(time.time() * 1_000_000)
    future = {"id": 1, "ts": now + 30 * 86_400_000_000, "raw": "x", "app": "sshd",
              "action": "ssh_auth_failure", "src_ip": "203.0.113.9", "repeat": 1}
    assert engine.process(future) == []
    hits = []
    for i in range(5):
        hits += engine.process({**future, "id": i + 2, "ts": now - (10 - i) * 1_000_000})
    assert [h.rule.label for h in hits] == ["t_bruteforce"]


def test_a_late_hit_is_evidence_of_the_hit_it_makes(tmp_path: Path) -> None:
    from soc_tui.detect.engine import Engine

    (tmp_path / "c.yml").write_text(
        "title: base\nname: b\nlogsource: {product: linux}\nlevel: low\n"
        "detection: {sel: {app: app1}, condition: sel}\n---\n"
        "title: two\nname: c\nlevel: high\n"
        "correlation: {type: event_count, rules: [b], group-by: [src_ip], timespan: 60s,"
        " condition: {gte: 2}}\n")
    engine = Engine(load_rules([tmp_path]))
    got = []
    for i, t in enumerate([0, 10, 20, 15]):
        for h in engine.process({"id": i + 1, "ts": t * 1_000_000, "raw": "x", "app": "app1",
                                 "src_ip": "192.0.2.1"}):
            got.append(h.evidence)
    assert got == [[1, 2], [3], [4]]


def test_restart_replay_feeds_only_new_values(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A correlation over a new_value rule: after a restart the replay must not
    count a repeated value that the live run had filtered out."""
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "r.yml").write_text(
        "title: new login user\nname: nv\nlogsource: {product: linux, service: sshd}\nlevel: low\n"
        "detection: {sel: {action: ssh_login}, condition: sel}\n"
        "x-soc: {new_value: {fields: [user]}}\n---\n"
        "title: three new users\nname: three\nlevel: high\n"
        "correlation: {type: event_count, rules: [nv], group-by: [host], timespan: 10m,"
        " condition: {gte: 3}}\n")
    log = tmp_path / "auth.log"
    db = tmp_path / "soc.db"
    args = ["--db", str(db), "ingest", str(log), "--year", "2025", "--tz", "UTC", "--rules", str(rules)]
    users = ["alice", "alice", "bob"]
    for n, user in enumerate(users):
        with open(log, "a") as fh:
            fh.write(_line(n, f"Accepted publickey for {user} from 192.0.2.{n + 1} port 1 ssh2") + "\n")
        assert main(args) == 0  # a fresh worker (a restart) for every line
    assert [a["rule_name"] for a in _alerts(db, capsys)] == []


def test_temporal_keeps_hits_in_time_order(tmp_path: Path) -> None:
    """A late hit must not stand in for the window's latest: evidence comes
    from hits inside the timespan."""
    from soc_tui.detect.engine import Engine

    (tmp_path / "c.yml").write_text(
        "title: a\nname: a\nlogsource: {product: linux}\nlevel: low\n"
        "detection: {sel: {app: a}, condition: sel}\n---\n"
        "title: b\nname: b\nlogsource: {product: linux}\nlevel: low\n"
        "detection: {sel: {app: b}, condition: sel}\n---\n"
        "title: a and b\nname: ab\nlevel: high\n"
        "correlation: {type: temporal, rules: [a, b], group-by: [src_ip], timespan: 60s}\n")
    engine = Engine(load_rules([tmp_path]))

    def ev(i: int, app: str, t: int) -> list:
        return [h for h in engine.process({"id": i, "ts": t * 1_000_000, "raw": "x", "app": app,
                                           "src_ip": "192.0.2.1"}) if h.rule.label == "ab"]

    assert ev(1, "a", 10) == []
    assert ev(2, "a", 5) == []  # late
    (hit,) = ev(3, "b", 69)  # the window [9, 69] holds the a at 10, not the one at 5
    assert hit.evidence == [1, 3]


def test_backtest_of_a_new_value_rule_knows_what_was_seen_before(
    tmp_path: Path, rules_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    log = tmp_path / "auth.log"
    day = 86_400
    log.write_text("\n".join([
        _line(0, "Accepted publickey for bob from 192.0.2.1 port 1 ssh2"),
        _line(day + 60, "Accepted publickey for bob from 192.0.2.1 port 1 ssh2"),
        _line(day + 120, "Accepted publickey for alice from 192.0.2.2 port 1 ssh2"),
    ]) + "\n")
    db = tmp_path / "soc.db"
    assert main(["--db", str(db), "ingest", str(log), "--year", "2023", "--tz", "UTC",
                 "--rules", str(rules_dir)]) == 0
    cfg = tmp_path / "config.yaml"
    cfg.write_text(f"rules: [{rules_dir}]\n")
    capsys.readouterr()
    assert main(["--db", str(db), "--config", str(cfg), "rules", "backtest", "t_first_login",
                 "--since", "2023-11-21T00:00", "--format", "json"]) == 0
    got = [json.loads(x)["user"] for x in capsys.readouterr().out.splitlines()]
    assert got == ["alice"]


def test_idle_correlation_groups_are_forgotten_and_active_ones_keep_counting(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Memory stays bounded by the groups active lately: a sweep forgets a
    group (counting or temporal) whose last hit is older than the timespan plus
    the lateness allowed, and leaves a recent group's window whole."""
    from soc_tui.detect import engine as eng

    monkeypatch.setattr(eng, "SWEEP_EVERY", 10)
    (tmp_path / "c.yml").write_text(
        "title: base\nname: b\nlogsource: {product: linux}\nlevel: low\n"
        "detection: {sel: {app: app1}, condition: sel}\n---\n"
        "title: three\nname: three\nlevel: high\n"
        "correlation: {type: event_count, rules: [b], group-by: [src_ip], timespan: 60s,"
        " condition: {gte: 3}}\n---\n"
        "title: users\nname: users\nlevel: high\n"
        "correlation: {type: value_count, rules: [b], group-by: [src_ip], timespan: 60s,"
        " condition: {field: user, gte: 3}}\n---\n"
        "title: twice\nname: twice\nlevel: high\n"
        "correlation: {type: temporal, rules: [b, b], group-by: [src_ip], timespan: 60s}\n")
    engine = eng.Engine(load_rules([tmp_path]))
    hour = 3_600_000_000
    n = 0

    def hit(t_us: int, ip: str, user: str) -> list[str]:
        nonlocal n
        n += 1
        return [h.rule.label for h in engine.process(
            {"id": n, "ts": t_us, "raw": "x", "app": "app1", "src_ip": ip, "user": user})]

    for i in range(8):  # one hit from each of 8 addresses, long ago
        hit(i * 1_000_000, f"198.51.100.{i}", "u")
    hit(2 * hour, "192.0.2.1", "alice")  # much later: a live group
    hit(2 * hour + 1_000_000, "192.0.2.1", "bob")  # the 10th hit: a sweep
    for st in engine.states:
        assert set(st.groups) == {"192.0.2.1"}, st.corr.name
    labels = hit(2 * hour + 2_000_000, "192.0.2.1", "carol")
    assert labels.count("three") == 1 and labels.count("users") == 1, labels


def _window_reference(hits: list[tuple[int, int, str, str, int]], span: int, need: int,
                      distinct: bool) -> list[tuple[int, list[int]]]:
    """The counting correlations' documented semantics written plainly: per
    group, entries kept in time order; the window ending at a hit is (t -
    span, t]; entries older than the group's newest time minus the span are
    dropped; a hit fires when the window holds `need` (weights, or distinct
    values); its evidence is the group's entries not given before."""
    groups: dict[str, dict[str, Any]] = {}
    out = []
    for i, (t, weight, ip, value, _) in enumerate(hits, 1):
        g = groups.setdefault(ip, {"entries": [], "newest": None, "reported": set()})
        g["entries"].append((t, i, weight, value))
        g["entries"].sort(key=lambda e: e[0])  # stable: equal times keep arrival order
        g["newest"] = t if g["newest"] is None else max(g["newest"], t)
        g["entries"] = [e for e in g["entries"] if e[0] > g["newest"] - span]
        inside = [e for e in g["entries"] if t - span < e[0] <= t]
        n = len({e[3] for e in inside}) if distinct else sum(e[2] for e in inside)
        if n >= need:
            ev = sorted(e[1] for e in g["entries"] if e[1] not in g["reported"])
            g["reported"].update(e[1] for e in g["entries"])
            out.append((i, ev))
    return out


@pytest.mark.parametrize("kind", ["event_count", "value_count"])
@pytest.mark.parametrize("need", [1, 2, 4])
def test_counting_correlations_match_their_plain_definition(tmp_path: Path, kind: str,
                                                            need: int) -> None:
    """Random hits (late ones, repeated lines, many addresses seen once)
    through the engine give exactly the hits and evidence of the definition
    written plainly (`_window_reference`): whatever the engine keeps per
    group (a group seen once holds just its entry), the result is the same."""
    from soc_tui.detect.engine import Engine

    cond = "{gte: %d}" % need if kind == "event_count" else "{field: user, gte: %d}" % need
    (tmp_path / "c.yml").write_text(
        "title: base\nname: b\nlogsource: {product: linux}\nlevel: low\n"
        "detection: {sel: {app: app1}, condition: sel}\n---\n"
        f"title: c\nname: c\nlevel: high\ncorrelation: {{type: {kind}, rules: [b], "
        f"group-by: [src_ip], timespan: 30s, condition: {cond}}}\n")
    rng = random.Random(need * 7 + len(kind))
    hits = []
    t = 1_700_000_000_000_000
    for i in range(3000):
        t += rng.randint(0, 3_000_000)
        late = rng.random() < 0.1
        ts = t - rng.randint(0, 20_000_000) if late else t
        # a few busy addresses and a long tail of addresses seen once
        ip = f"192.0.2.{rng.randint(1, 6)}" if rng.random() < 0.6 else f"198.51.{i // 250}.{i % 250}"
        hits.append((ts, rng.choice([1, 1, 1, 2, 3]), ip, rng.choice("abcde"), i))
    engine = Engine(load_rules([tmp_path]))
    got = []
    for i, (ts, weight, ip, user, _) in enumerate(hits, 1):
        for h in engine.process({"id": i, "ts": ts, "raw": "x", "app": "app1", "src_ip": ip,
                                 "user": user, "repeat": weight}):
            if h.rule.label == "c":
                got.append((i, h.evidence))
    want = _window_reference(hits, 30_000_000, need, kind == "value_count")
    assert len(want) > 50
    assert got == want


def test_temporal_ordered_keeps_no_state_for_a_last_step_alone(tmp_path: Path) -> None:
    """The last rule of an ordered sequence, hit where no earlier step was
    (a login from an address that never failed), leaves no group behind;
    the sequence still fires where the steps come in order."""
    from soc_tui.detect.engine import Engine

    (tmp_path / "c.yml").write_text(
        "title: a\nname: a\nlogsource: {product: linux}\nlevel: low\n"
        "detection: {sel: {app: a}, condition: sel}\n---\n"
        "title: b\nname: b\nlogsource: {product: linux}\nlevel: low\n"
        "detection: {sel: {app: b}, condition: sel}\n---\n"
        "title: a then b\nname: ab\nlevel: high\n"
        "correlation: {type: temporal_ordered, rules: [a, b], group-by: [src_ip], timespan: 60s}\n")
    engine = Engine(load_rules([tmp_path]))
    n = 0

    def ev(app: str, ip: str, t: int) -> list[str]:
        nonlocal n
        n += 1
        return [h.rule.label for h in engine.process(
            {"id": n, "ts": t * 1_000_000, "raw": "x", "app": app, "src_ip": ip})]

    for i in range(50):
        assert ev("b", f"198.51.100.{i}", i) == []
    (st,) = engine.states
    assert st.groups == {} and st.touched == {}
    assert ev("a", "192.0.2.1", 100) == []
    assert ev("b", "192.0.2.1", 110) == ["ab"]
    assert ev("b", "192.0.2.1", 200) == []  # the a is out of the window


def test_aliases_and_several_group_fields_group_hits_of_different_rules(tmp_path: Path) -> None:
    """Sigma's `aliases` name one group-by field that each input rule carries
    under its own field (here a field of `extra`; rules not named keep the
    field itself); with several group-by
    fields a hit counts only with hits equal on all of them."""
    from soc_tui.detect.engine import Engine

    (tmp_path / "c.yml").write_text(
        "title: web\nname: w\nlogsource: {product: linux}\nlevel: low\n"
        "detection: {sel: {app: web}, condition: sel}\n---\n"
        "title: mail\nname: m\nlogsource: {product: linux}\nlevel: low\n"
        "detection: {sel: {app: mail}, condition: sel}\n---\n"
        "title: same client\nname: both\nlevel: high\n"
        "correlation: {type: event_count, rules: [w, m], group-by: [src_ip], timespan: 60s,"
        " condition: {gte: 3}, aliases: {src_ip: {m: peer}}}\n---\n"
        "title: same pair\nname: pair\nlevel: high\n"
        "correlation: {type: value_count, rules: [w], group-by: [src_ip, user], timespan: 60s,"
        " condition: {field: url, gte: 2}}\n")
    engine = Engine(load_rules([tmp_path]))
    n = 0

    def hit(app: str, **fields: Any) -> list[tuple[str, dict]]:
        nonlocal n
        n += 1
        ev = {"id": n, "ts": n * 1_000_000, "raw": "x", "app": app, **fields}
        return [(h.rule.label, dict(h.group)) for h in engine.process(ev)
                if h.rule.label in ("both", "pair")]

    assert hit("web", src_ip="192.0.2.7", user="a", url="/1") == []
    assert hit("mail", extra={"peer": "192.0.2.7"}) == []
    assert hit("mail", extra={"peer": "192.0.2.8"}) == []  # another client
    assert hit("web", src_ip="192.0.2.7", user="b", url="/2") == [  # 3rd hit, 2nd user
        ("both", {"src_ip": "192.0.2.7"})]
    assert hit("web", src_ip="192.0.2.7", user="a", url="/3") == [  # (ip, a) saw 2 urls
        ("both", {"src_ip": "192.0.2.7"}), ("pair", {"src_ip": "192.0.2.7", "user": "a"})]


def _offer_lines(worker: Any, first: int, lines: list[str]) -> int:
    """Hand the worker `lines` as a committed batch of events first.. (as the
    writer does after a commit); returns the next id."""
    from soc_tui.parse import LineParser
    from soc_tui.store.events import ROW_COLUMNS, build_rows

    parser = LineParser(source_id="auth.log", year=2025, tz="UTC")
    rows = build_rows("auth.log", (parser.parse(line) for line in lines)).rows
    last = first + len(rows) - 1
    worker.take_offer((first, last, max(r[0] for r in rows), 1,
                       [(first, "auth.log", [(i, None, row) for i, row in enumerate(rows)],
                         ROW_COLUMNS)]))
    return last + 1


def test_a_backfills_batches_share_commits_and_a_live_tails_do_not_wait(
    tmp_path: Path, rules_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each commit of the rule worker holds the store's write lock, which the
    writer then waits for: batches already waiting, and a backfill's next
    batch, are evaluated and committed together. A live tail's small batch
    is committed at once (alert latency)."""
    from soc_tui.detect import worker as wmod
    from soc_tui.store.reader import StoreReader

    db = tmp_path / "soc.db"
    StoreReader(str(db)).close()
    commits: list[int] = []
    real = wmod.commit_detection

    def counted(conn: Any, ch: Any) -> None:
        commits.append(ch.cursor)
        real(conn, ch)

    monkeypatch.setattr(wmod, "commit_detection", counted)
    monkeypatch.setattr(wmod, "MERGE_WAIT", 30.0)
    big = wmod.BACKFILL_OFFER
    lines = [_line(i, f"Failed password for root from 192.0.2.{i % 7} port 22 ssh2")
             for i in range(4 * big + 10)]
    worker = wmod.RuleWorker(str(db), load_rules([rules_dir]))
    try:
        # Three batches waiting: one commit (a step that may not wait).
        nxt = 1
        for k in range(3):
            nxt = _offer_lines(worker, nxt, lines[k * big:(k + 1) * big])
        assert worker.step() == 3 * big
        assert commits == [3 * big]
        worker.start()
        # A backfill's batch waits for the next one (up to MERGE_WAIT).
        nxt = _offer_lines(worker, nxt, lines[3 * big:4 * big])
        time.sleep(0.3)
        assert commits == [3 * big]
        nxt = _offer_lines(worker, nxt, lines[4 * big:4 * big + 5])
        deadline = time.monotonic() + 10
        while len(commits) < 2 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert commits == [3 * big, 4 * big + 5]
        # A small batch (a live tail) is committed without waiting.
        _offer_lines(worker, nxt, lines[4 * big + 5:])
        deadline = time.monotonic() + 10
        while len(commits) < 3 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert commits == [3 * big, 4 * big + 5, 4 * big + 10]
    finally:
        worker.stop(drain=False)
        worker.close()
    reader = StoreReader(str(db), create=False)
    try:
        alerts = [a for a in reader.alerts() if a.rule_name == "t_bruteforce"]
    finally:
        reader.close()
    assert sorted(a.src_ip for a in alerts) == [f"192.0.2.{i}" for i in range(7)]
