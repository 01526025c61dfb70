"""The demo scenarios (demo_data/generate.py and demo_data/scenarios/).

Generation is deterministic and the committed files are what the generator
writes; the shipped rules, run the way `soc-tui rules test --tz UTC --year 2026`
runs them, raise the story's alerts and nothing serious from the noise; the
training answers in scenario.yaml agree with the log lines.
"""

from __future__ import annotations

import importlib.util
import re
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
import yaml

from soc_tui.detect.loader import load_rules
from soc_tui.detect.offline import OfflineResult, run_files
from soc_tui.model import FLAG_UNPARSED
from soc_tui.parse import LineParser

ROOT = Path(__file__).resolve().parent.parent
COMMITTED = ROOT / "demo_data" / "scenarios"
STORY_RULES = {
    "web_scanner_user_agent", "web_4xx_burst", "web_sensitive_files", "web_sqli", "ssh_bruteforce",
    "ssh_success_after_bruteforce", "user_created", "user_added_to_privileged_group", "cron_modified",
    "log_tampering",
}
SERIOUS = ("critical", "high")


def _load_generator() -> Any:
    spec = importlib.util.spec_from_file_location("demo_generate", ROOT / "demo_data" / "generate.py")
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod  # dataclasses look their module up there
    spec.loader.exec_module(mod)
    return mod


gen = _load_generator()


def _tree(d: Path) -> dict[str, bytes]:
    return {str(p.relative_to(d)): p.read_bytes() for p in sorted(d.rglob("*")) if p.is_file()}


def _spec(sc_dir: Path) -> dict[str, Any]:
    return yaml.safe_load((sc_dir / "scenario.yaml").read_text())


def _run(sc_dir: Path) -> OfflineResult:
    """The shipped rules over the scenario's files, as `soc-tui rules test --tz UTC --year 2026`."""
    spec = _spec(sc_dir)
    ruleset = load_rules([ROOT / "rules"])
    assert not ruleset.errors
    paths = [str(sc_dir / f["path"]) for f in spec["files"]]
    return run_files(ruleset, paths, year=spec["year"], tz="UTC")


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("scenarios")
    for name in gen.SCENARIOS:
        gen.generate(name, out, gen.DEFAULT_SEED)
    return out


@pytest.fixture(scope="module")
def noise(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("noise")
    for name in gen.SCENARIOS:
        gen.generate(name, out, gen.DEFAULT_SEED, attack=False)
    return out


@pytest.fixture(scope="module")
def breach(generated: Path) -> tuple[Path, OfflineResult]:
    return generated / "breach", _run(generated / "breach")


# -- (a) determinism --------------------------------------------------------------------


def test_same_seed_gives_identical_bytes(generated: Path, tmp_path: Path) -> None:
    for name in gen.SCENARIOS:
        again = gen.generate(name, tmp_path / "again", gen.DEFAULT_SEED)
        assert _tree(again) == _tree(generated / name), name
    other = gen.generate("breach", tmp_path / "other", gen.DEFAULT_SEED + 1)
    assert _tree(other)["web-01/access.log"] != _tree(generated / "breach")["web-01/access.log"]


def test_committed_scenarios_are_what_the_generator_writes(generated: Path) -> None:
    assert sorted(p.name for p in COMMITTED.iterdir() if p.is_dir()) == sorted(gen.SCENARIOS)
    for name in gen.SCENARIOS:
        fresh, committed = _tree(generated / name), _tree(COMMITTED / name)
        assert sorted(committed) == sorted(fresh), f"{name}: run `python demo_data/generate.py`"
        stale = [f for f in fresh if fresh[f] != committed[f]]
        assert not stale, f"{name}: {stale} are stale; run `python demo_data/generate.py`"
    size = sum(p.stat().st_size for p in COMMITTED.rglob("*") if p.is_file())
    assert size < 2_000_000


def test_generate_over_an_earlier_run_replaces_it(tmp_path: Path) -> None:
    gen.generate("quick", tmp_path, 1)
    path = gen.generate("quick", tmp_path, 2)
    assert _tree(path) == _tree(gen.generate("quick", tmp_path / "fresh", 2))


# -- the files are real-looking logs our parsers read -----------------------------------------


@pytest.mark.parametrize("name", sorted(gen.SCENARIOS))
def test_every_line_parses_with_its_host_and_time(generated: Path, name: str) -> None:
    sc_dir = generated / name
    spec = _spec(sc_dir)
    start = datetime.fromisoformat(spec["start"].replace("Z", "+00:00"))
    h, m, s = (int(x) for x in spec["duration"].split(":"))
    end = start + timedelta(hours=h, minutes=m, seconds=s)
    total = 0
    for f in spec["files"]:
        parser = LineParser(fmt="auto", source_id=f["path"], host=f["host"], year=spec["year"], tz="UTC")
        lines = (sc_dir / f["path"]).read_text(encoding="utf-8").splitlines()
        assert len(lines) == f["lines"] > 0
        total += len(lines)
        last = None
        for line in lines:
            ev = parser.parse(line)
            assert not (ev.flags or 0) & FLAG_UNPARSED, line
            assert ev.host == f["host"], line
            ts = datetime.fromtimestamp(ev.ts / 1e6, timezone.utc)
            assert start <= ts < end, line
            assert last is None or ts >= last, f"{f['path']}: out of order: {line}"
            last = ts
            if f["format"] == "syslog":
                assert re.match(r"[A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d \S+ \S+: ", line), line
                assert ev.app, line
            else:
                assert ev.action == "http_request" and ev.src_ip and ev.http_status, line
    if name == "breach":
        assert 3000 <= total <= 8000
    for act in spec["timeline"]:
        h, m, s = (int(x) for x in act["at"].split(":"))
        assert (start + timedelta(hours=h, minutes=m, seconds=s)).strftime("%H:%M:%S") == act["time"]


def test_the_replayer_reads_the_scenarios() -> None:
    demo = pytest.importorskip("soc_tui.demo")
    for name in gen.SCENARIOS:
        sc = demo.load_scenario(str(COMMITTED / name))
        lines = sc.lines()
        assert len(lines) == sum(f["lines"] for f in _spec(COMMITTED / name)["files"])
        assert lines[0].ts.year == 2026


# -- (b) the rules on the story and on the noise ------------------------------------------------


def _evidence(result: OfflineResult, alert: Any) -> list[dict[str, Any]]:
    return [result.events[i] for i in alert.evidence if i in result.events]


def _tied(result: OfflineResult, alert: Any, attacker: str, accounts: set[str]) -> bool:
    if alert.src_ip == attacker or alert.user in accounts:
        return True
    return any(ev.get("src_ip") == attacker or ev.get("user") in accounts or ev.get("target_user") in accounts
               for ev in _evidence(result, alert))


def test_breach_raises_every_rule_of_the_story(breach: tuple[Path, OfflineResult]) -> None:
    sc_dir, result = breach
    fired = {a.rule_name for a in result.alerts}
    assert STORY_RULES <= fired, STORY_RULES - fired
    assert set(_spec(sc_dir)["expect"]) <= fired
    assert STORY_RULES <= set(_spec(sc_dir)["expect"])


def test_serious_alerts_come_only_from_the_attacker(breach: tuple[Path, OfflineResult]) -> None:
    sc_dir, result = breach
    spec = _spec(sc_dir)
    attacker = spec["attacker"]
    crit = [a for a in result.alerts if a.severity == "critical"]
    assert crit and all(a.src_ip == attacker or _tied(result, a, attacker, {"deploy"}) for a in crit)
    for a in result.alerts:
        if a.severity in SERIOUS:
            assert _tied(result, a, attacker, {"deploy", "backup"}), (a.rule_name, a.host, a.src_ip, a.user)


@pytest.mark.parametrize("name", sorted(gen.SCENARIOS))
def test_noise_alone_raises_nothing_serious(noise: Path, name: str) -> None:
    sc_dir = noise / name
    spec = _spec(sc_dir)
    assert spec["attack"] is False and not spec["questions"]
    attacker = gen.SCENARIOS[name].attacker
    for f in spec["files"]:
        assert attacker not in (sc_dir / f["path"]).read_text()
    result = _run(sc_dir)
    serious = [(a.rule_name, a.severity) for a in result.alerts if a.severity in SERIOUS]
    assert serious == []
    # The noise is the same with and without the attack: only the story's rules differ.
    assert {a.rule_name for a in result.alerts} <= {"sudo_first_use"}


def test_quick_raises_its_story(generated: Path) -> None:
    sc_dir = generated / "quick"
    spec = _spec(sc_dir)
    result = _run(sc_dir)
    assert set(spec["expect"]) == {"ssh_bruteforce", "ssh_success_after_bruteforce", "sudo_first_use"}
    assert set(spec["expect"]) <= {a.rule_name for a in result.alerts}
    crit = [a for a in result.alerts if a.severity == "critical"]
    assert [a.src_ip for a in crit] == [spec["attacker"]]
    assert 2 <= len(spec["questions"]) <= 4


# -- (c) the training answers agree with the logs ---------------------------------------------


def _questions(spec: dict[str, Any]) -> dict[str, dict[str, Any]]:
    qs = {q["id"]: q for q in spec["questions"]}
    for q in qs.values():
        assert q["kind"] in ("ip", "user", "time", "text", "choice") and q["text"] and q["hint"]
        assert isinstance(q["accept"], list)
        if q["kind"] == "choice":
            ids = [c["id"] for c in q["choices"]]
            assert q["answer"] in ids and len(set(ids)) == len(ids)
    return qs


@pytest.mark.parametrize("name", sorted(gen.SCENARIOS))
def test_login_and_root_answers_match_the_lines(generated: Path, name: str) -> None:
    sc_dir = generated / name
    spec = _spec(sc_dir)
    qs = _questions(spec)
    ip, account = qs["attacker_ip"]["answer"], qs["account"]["answer"]
    assert ip == spec["attacker"]
    auth = (sc_dir / "bastion" / "auth.log").read_text().splitlines()
    assert any(f"Accepted password for {account} from {ip} port " in x for x in auth)
    # The first sudo to root by that account is the moment it became root.
    sudo = [x for x in auth if re.search(rf"sudo: +{account} : TTY=\S+ ; PWD=\S+ ; USER=root ; COMMAND=", x)]
    assert sudo and "COMMAND=/bin/bash" in sudo[0]
    q = qs["root_time"]
    assert q["kind"] == "time" and q["tolerance_minutes"] >= 1
    assert sudo[0][7:15] == q["answer"]
    start = datetime.fromisoformat(spec["start"].replace("Z", "+00:00"))
    h, m, s = (int(x) for x in q["at"].split(":"))
    assert (start + timedelta(hours=h, minutes=m, seconds=s)).strftime("%H:%M:%S") == q["answer"]
    # ... and it came after the login.
    login = next(x for x in auth if f"Accepted password for {account} from {ip}" in x)
    assert login[7:15] < q["answer"]


def test_breach_persistence_and_first_rule_answers(breach: tuple[Path, OfflineResult]) -> None:
    sc_dir, result = breach
    spec = _spec(sc_dir)
    qs = _questions(spec)
    auth = (sc_dir / "bastion" / "auth.log").read_text()
    syslog = (sc_dir / "bastion" / "syslog").read_text()
    # Persistence: the right choice is what the lines show.
    q = qs["persistence"]
    right = next(c["text"] for c in q["choices"] if c["id"] == q["answer"])
    assert "backup" in right and "sudo" in right and "cron" in right
    assert re.search(r"useradd\[\d+\]: new user: name=backup, .*shell=/bin/bash", auth)
    assert re.search(r"usermod\[\d+\]: add 'backup' to group 'sudo'", auth)
    assert re.search(r"crontab\[\d+\]: \(root\) REPLACE \(root\)", syslog)
    assert "authorized_keys" not in auth + syslog
    # The first rule: the earliest alert of the run, and it is the attacker's.
    first = min(result.alerts, key=lambda a: (a.first_seen, a.rule_name))
    assert first.src_ip == spec["attacker"]
    q = qs["first_rule"]
    assert next(c["text"] for c in q["choices"] if c["id"] == q["answer"]) == first.rule_name
    assert first.rule_name in q["accept"]
    # The host reached from the bastion.
    q = qs["lateral_host"]
    db_auth = (sc_dir / q["answer"] / "auth.log").read_text()
    bastion_ip = next(h["address"] for h in spec["hosts"] if h["name"] == "bastion")
    assert f"Accepted publickey for {qs['account']['answer']} from {bastion_ip} port" in db_auth


def test_breach_story_is_spread_over_the_hour(generated: Path) -> None:
    spec = _spec(generated / "breach")
    offsets = [a["at"] for a in spec["timeline"]]
    assert offsets == sorted(offsets)
    assert offsets[0] < "00:10:00" and "00:18:00" < next(a["at"] for a in spec["timeline"]
                                                         if "ssh_bruteforce" in a["rules"]) < "00:25:00"
    assert "00:45:00" < next(a["at"] for a in spec["timeline"] if "log_tampering" in a["rules"]) < "01:00:00"
    # The bastion goes quiet once rsyslog is stopped.
    last = (generated / "breach" / "bastion" / "syslog").read_text().splitlines()[-1]
    assert "rsyslogd" in last and "exiting on signal 15" in last
