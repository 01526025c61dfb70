"""The rule prefilter never hides a match: on real logs and SigmaHQ's rules, the
rules it selects for each event include every rule that matches the event."""

from __future__ import annotations

from pathlib import Path

import pytest

from soc_tui.detect.engine import Engine
from soc_tui.detect.fields import RuleEvent
from soc_tui.detect.loader import load_rules
from soc_tui.detect.offline import event_dict, read_lines
from soc_tui.detect.prefilter import KEYWORDS, parse_condition, rule_gate
from soc_tui.parse import LineParser

LOGS = [
    ("secrepo/access.log.2021-10-22", "/var/log/apache2/access.log"),
    ("secrepo/access.log.2022-12-22", "/var/log/apache2/access.log"),
    ("elastic-examples/apache_logs", "/var/log/apache2/access.log"),
    ("secrepo/auth.log", "/var/log/auth.log"),
    ("basjes/hackers-access.log", "/var/log/apache2/access.log"),
    ("loghub/OpenSSH_2k.log", "/var/log/auth.log"),
    ("loghub/Linux_2k.log", "/var/log/messages"),
    ("elastic/test-auth-ubuntu1204.log", "/var/log/auth.log"),
]


def _parsed(corpus: Path):
    """(line, Event) for every line of the corpus logs."""
    for rel, source in LOGS + [(str(p.relative_to(corpus)), "/var/log/x.log")
                               for p in sorted((corpus / "crowdsec").glob("*.log"))]:
        path = corpus / rel
        if not path.exists():
            continue
        parser = LineParser(fmt="auto", source_id=source, year=2024, tz="UTC")
        for line in read_lines(path):
            yield line, parser.parse(line)


def _events(corpus: Path):
    for _, ev in _parsed(corpus):
        yield event_dict(ev)


def test_prefilter_keeps_every_match_on_real_logs(corpus: Path) -> None:
    rules = load_rules([corpus / "sigmahq"])
    gated = Engine(rules)
    full = Engine(rules, prefilter=False)
    matches = events = 0
    for ev in _events(corpus):
        events += 1
        rev = RuleEvent(ev)
        want = [r.rule_id for r in full.route(rev).candidates(rev) if r.match(rev)]
        rev2 = RuleEvent(ev)
        got = [r.rule_id for r in gated.route(rev2).candidates(rev2) if r.match(rev2)]
        assert got == want, ev["raw"]
        matches += len(want)
    assert events > 10_000 and matches > 15  # SigmaHQ rules fire rarely on these logs
    # Nearly every SigmaHQ rule gets a gate (else the prefilter buys nothing).
    ungated = [r.label for r in rules.rules if rule_gate(r) is None]
    assert len(ungated) < len(rules.rules) * 0.2, ungated


def _rule(tmp_path: Path, detection: str):
    (tmp_path / "r.yml").write_text(
        "title: t\nlogsource: {product: linux}\nlevel: low\ndetection:\n" + detection
    )
    rs = load_rules([tmp_path])
    assert not rs.errors, rs.errors
    return rs.rules[0]


@pytest.mark.parametrize(
    ("detection", "gate"),
    [
        ("  sel: {message|contains: ['Evil', 'bad*thing']}\n  condition: sel\n",
         {("message", "evil"), ("message", "thing")}),
        # AND: one part's gate is enough; an equality (a lookup) before a
        # substring (a scan of the field), else the longer literal.
        ("  a: {app: sshd}\n  b: {message|contains: 'authentication failure'}\n  condition: a and b\n",
         {("app", "sshd")}),
        ("  a: {message|contains: auth}\n  b: {message|contains: 'authentication failure'}\n"
         "  condition: a and b\n", {("message", "authentication failure")}),
        # ... but not an equality on a field most events share a few values of.
        ("  a: {type: EXECVE}\n  b: {a0|contains: wget}\n  condition: a and b\n", {("a0", "wget")}),
        # OR needs both sides gated.
        ("  a: {app: sshd}\n  b: ['needle']\n  condition: a or b\n",
         {("app", "sshd"), (KEYWORDS, "needle")}),
        ("  a: {app: sshd}\n  b: {pid|gt: 5}\n  condition: a or b\n", None),
        # A negation gates nothing; the other side of the AND does.
        ("  a: {app: sshd}\n  f: {user: root}\n  condition: a and not f\n", {("app", "sshd")}),
        ("  a: {app: sshd}\n  condition: not a\n", None),
        ("  s1: {app: cron}\n  s2: {app: sudo}\n  condition: 1 of s*\n", {("app", "cron"), ("app", "sudo")}),
        ("  sel: {message|re: 'ab+c'}\n  condition: sel\n", None),
        ("  sel: {message: null}\n  condition: sel\n", None),
        ("  sel: {message|contains|all: ['ab', 'longer one']}\n  condition: sel\n", {("message", "longer one")}),
    ],
)
def test_gates(tmp_path: Path, detection: str, gate: set | None) -> None:
    got = rule_gate(_rule(tmp_path, detection))
    assert ({(f, lit) for f, lit, _ in got} if got else None) == gate


def test_condition_tree() -> None:
    assert parse_condition("a and not (b or 1 of c*)") == (
        "and", [("id", "a"), ("not", ("or", [("id", "b"), ("of", "1", "c*")]))]
    )
    with pytest.raises(ValueError):
        parse_condition("a and")


def test_the_parse_process_matches_events_as_the_worker_matches_their_dicts(corpus: Path) -> None:
    """Stage 1 in a backfill's parse process reads each Event through an
    EventView; the worker reads events back as dicts. Both must pick the same
    rules (SigmaHQ's and the shipped ones, on every corpus log)."""
    from soc_tui.cli import shipped_rules_dir
    from soc_tui.parse_worker import Matcher

    dirs = [str(corpus / "sigmahq"), str(shipped_rules_dir())]
    matcher = Matcher(dirs)
    engine = Engine(load_rules(dirs))
    events = matched = 0
    for line, ev in _parsed(corpus):
        want = tuple(r.rule_id for r in engine.match(event_dict(ev)))
        assert matcher.match(ev) == want, line
        events += 1
        matched += bool(want)
    assert events > 10_000 and matched > 1000


def test_gates_on_extra_fields_find_their_rules(tmp_path: Path) -> None:
    """An equality gate on a field of `extra` (auditd's type, a unit) reads the
    key as written, then lower-cased, and any value of a list."""
    rule = _rule(tmp_path, "  sel: {Unit: auditd}\n  condition: sel\n")
    engine = Engine(load_rules([tmp_path]))

    def selected(extra: object) -> bool:
        ev = {"id": 1, "ts": 0, "app": "systemd", "raw": "x", "message": "x", "extra": extra}
        rev = RuleEvent(ev)
        found = [r.rule_id for r in engine.route(rev).candidates(rev) if r.match(rev)]
        return found == [rule.rule_id]

    assert selected({"Unit": "auditd"}) and selected({"unit": "AUDITD"})
    assert selected({"unit": ["rsyslog", "auditd"]})
    assert selected('{"unit": "auditd"}')  # as the writer hands it over: JSON text
    assert not selected({"unit": "cron"}) and not selected({}) and not selected(None)
    assert not selected({"other": "auditd"})
    routes = list(engine._routes.values())
    assert routes and all(r.extra_exact for r in routes)  # the gate is the one on extra


def test_a_derived_field_is_computed_once_per_event(tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """The decoded URL is costly (decoded until stable): the prefilter's scan
    and every rule reading it (equality, substring) share one computation."""
    import soc_tui.detect.fields as fields

    calls = []
    real = fields.url_forms

    def counted(url: str, *args: object, **kw: object) -> object:
        calls.append(url)
        return real(url, *args, **kw)

    monkeypatch.setattr(fields, "url_forms", counted)
    (tmp_path / "w.yml").write_text("\n---\n".join(
        f"title: r{i}\nlogsource: {{category: webserver}}\nlevel: low\n"
        f"detection: {{sel: {{{item}}}, condition: sel}}\n"
        for i, item in enumerate([
            "cs-uri-query: '/a/../etc/passwd'",
            "cs-uri-query|contains: '../etc'",
            "cs-uri-query|contains: 'passwd', cs-method: GET",
            "cs-uri-stem|endswith: '.php'",
        ])))
    engine = Engine(load_rules([tmp_path]))
    line = '192.0.2.1 - - [10/Oct/2024:13:55:36 +0000] "GET /a/%2e%2e/etc/passwd HTTP/1.1" 404 0 "-" "x"'
    ev = event_dict(LineParser(source_id="/var/log/apache2/access.log", year=2024, tz="UTC").parse(line))
    hits = {h.rule.title for h in engine.process(ev)}
    assert hits == {"r0", "r1", "r2"}
    assert calls == [ev["url"]]
