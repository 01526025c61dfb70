"""SigmaHQ rules match the same corpus events in our engine as in an
independent reference: pySigma turns each rule into SQL (pysigma-backend-sqlite)
that runs on an SQLite table of the same events.

The events are the corpus's web access logs and syslog files parsed by our
parser. The table has one column per Sigma field the rules name, filled by our
field mapping (`getter(name)`), plus the raw line as the backend's keyword
(full-text) column. The reference therefore shares our parser and field
mapping, and checks the matching itself: wildcards, escapes, modifiers, lists,
keywords, conditions, case-insensitivity, null and numbers.

Where the semantics legitimately differ:

1. URL decoding. Our web fields carry two candidates when decoding changes the
   URL: the URL as logged and the URL percent-decoded until stable (`+` as a
   space in the query); keyword searches likewise see the raw line and the line
   with its URL decoded. SQL sees one value per column. So we compare twice:
   our engine restricted to the first candidate (the raw form) against SQL on
   a table of raw values, and our engine restricted to the last candidate (the
   decoded form) against SQL on a table of decoded values. Both must agree on
   every admitted event. The full engine (any candidate) is then checked to
   match at least the union of both for rules without negation, and the extra
   matches decoding brings are counted.
2. Logsource routing is ours: both sides are compared on the events the rule's
   logsource admits (`Rule.sees`), the SQL result is restricted to them.

Differences in semantics the corpus does not exercise (none of its events
reaches them; were one to, it would show up here as a failure to look at):
- `field: null` is `IS NULL` in SQL; ours also matches an empty string.
- `cidr` is a set of LIKE prefixes in SQL; ours parses the address, so it also
  matches an IPv4-mapped IPv6 address (`::ffff:10.0.0.1` in 10.0.0.0/8).
- SQLite's NOCASE and LIKE fold ASCII letters only; ours lower-cases Unicode.

Any other disagreement fails the test, listing rule, form, event and line.
Rules the backend cannot convert are skipped, counted and listed. The same
comparison runs on the project's shipped rules (`rules/`), which fire far more
often on these logs than SigmaHQ's do.
"""

from __future__ import annotations

import copy
import re
import sqlite3
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import pytest

from soc_tui.detect.fields import RuleEvent, getter
from soc_tui.detect.loader import Rule, load_rules
from soc_tui.detect.offline import event_dict, read_lines
from soc_tui.parse import LineParser

sqlite_backend = pytest.importorskip(
    "sigma.backends.sqlite", reason="pySigma's sqlite backend is a test extra: pip install -e '.[test]'"
)
sigma_rule = pytest.importorskip("sigma.rule")

LOGS = (
    # web access logs
    "secrepo/access.log.*",
    "basjes/hackers-access.log",
    "crowdsec/*.log",  # nginx/apache attack logs (and two sshd ones)
    "elastic-examples/apache_logs",
    # syslog
    "loghub/*.log",
    "secrepo/auth.log",
    "elastic/test-auth-ubuntu1204.log",
)
KEYWORDS = "soc_keywords"  # the backend's full-text column: the line


# -- events -------------------------------------------------------------------------


def _corpus_events(corpus: Path) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = []
    for pattern in LOGS:
        for path in sorted(corpus.glob(pattern)):
            parser = LineParser(fmt="auto", source_id=str(path), year=2024, tz="UTC")
            for line in read_lines(path):
                ev = event_dict(parser.parse(line))
                ev["id"] = len(events) + 1
                events.append(ev)
    return events


class _OneForm(RuleEvent):
    """An event whose fields and keyword text keep only one candidate: the
    first (as logged) or the last (URL decoded)."""

    def __init__(self, ev: dict[str, Any], last: bool) -> None:
        super().__init__(ev)
        self.last = last

    def _pick(self, forms: tuple[str, ...]) -> tuple[str, ...]:
        return forms[-1:] if self.last else forms[:1]

    def values(self, name: str, get: Callable[[dict[str, Any]], Any]) -> tuple[str, ...]:
        return self._pick(super().values(name, get))

    def keyword_text(self, *, cased: bool = False) -> tuple[str, ...]:
        return self._pick(super().keyword_text(cased=cased))


# -- the SQL side ------------------------------------------------------------------


def _rule_fields(rule: Rule) -> set[str]:
    """The field names a rule's detection uses (keywords excluded)."""
    names: set[str] = set()

    def walk(body: Any) -> None:
        if isinstance(body, dict):
            for k in body:
                name = str(k).split("|")[0]
                if name:
                    names.add(name)
                if "fieldref" in str(k).split("|"):
                    vals = body[k] if isinstance(body[k], list) else [body[k]]
                    names.update(v for v in vals if isinstance(v, str))
        elif isinstance(body, list):
            for x in body:
                walk(x)

    for key, body in rule.doc["detection"].items():
        if key not in ("condition", "timeframe"):
            walk(body)
    return names


def _build_table(events: list[dict[str, Any]], columns: list[str], last: bool) -> sqlite3.Connection:
    """An in-memory table `logs` (rowid = event id) of one candidate per field."""
    numeric = set()
    for name in columns:
        get = getter(name)
        if any(isinstance(v, int) and not isinstance(v, bool) for v in (get(e) for e in events)):
            numeric.add(name)
    db = sqlite3.connect(":memory:")

    def regexp(pattern: str, value: Any) -> bool | None:
        if value is None:
            return None
        return re.search(pattern, value if isinstance(value, str) else str(value)) is not None

    db.create_function("regexp", 2, regexp, deterministic=True)
    cols = [f'"{KEYWORDS}" TEXT COLLATE NOCASE'] + [
        f'"{c}" {"NUMERIC" if c in numeric else "TEXT"} COLLATE NOCASE' for c in columns
    ]
    db.execute(f"CREATE TABLE logs ({', '.join(cols)})")
    getters = [(c, getter(c)) for c in columns]
    rows = []
    for e in events:
        rev = _OneForm(e, last)
        row: list[Any] = [e["id"], rev.keyword_text(cased=True)[0]]
        for name, get in getters:
            got = rev.values(name, get)
            raw = get(e)
            if not got:
                row.append(None)
            elif isinstance(raw, int) and not isinstance(raw, bool):
                row.append(raw)
            else:
                row.append(got[0])
        rows.append(row)
    marks = ", ".join("?" * (len(columns) + 2))
    db.executemany(f"INSERT INTO logs (rowid, {', '.join(c.split()[0] for c in cols)}) VALUES ({marks})", rows)
    return db


# -- comparison --------------------------------------------------------------------

ROOT = Path(__file__).resolve().parent.parent
FORMS = ("raw", "decoded")


@dataclass
class Report:
    which: str
    events: int
    rules: int = 0
    skipped: dict[str, str] = field(default_factory=dict)  # title -> why pySigma could not convert it
    pairs: int = 0  # (rule, admitted event) pairs, compared once per form
    agreements: int = 0  # over both forms
    matches: dict[str, int] = field(default_factory=lambda: {f: 0 for f in FORMS})  # agreed positives
    decoding_extra: int = 0  # pairs only the full engine matches (a decoded form did)
    fired: dict[str, tuple[int, int, int]] = field(default_factory=dict)  # title -> raw, decoded, full
    differences: list[str] = field(default_factory=list)

    def line(self) -> str:
        return (f"pySigma sqlite reference ({self.which}): {self.rules} rules on {self.events} events,"
                f" {self.pairs} rule-event pairs x {len(FORMS)} forms: {self.agreements} agree,"
                f" {len(self.differences)} differ; matches agreed: {self.matches['raw']} raw form,"
                f" {self.matches['decoded']} decoded form; {self.decoding_extra} more from URL decoding;"
                f" {len(self.skipped)} rules not convertible")


def _monotone(rule: Rule) -> bool:
    """No negation anywhere: matching more candidates can only match more."""
    det = rule.doc["detection"]
    conds = det["condition"] if isinstance(det["condition"], list) else [det["condition"]]
    if any(re.search(r"\bnot\b", c, re.I) for c in conds):
        return False
    return "|neq" not in repr(det)


def _to_sql(rule: Rule, backend: Any) -> list[str]:
    """pySigma's queries for a rule, selecting event ids (raises what pySigma raises)."""
    parsed = sigma_rule.SigmaRule.from_dict(copy.deepcopy(rule.doc))
    head = "SELECT * FROM logs WHERE "
    out = []
    for q in backend.convert_rule(parsed):
        assert isinstance(q, str) and q.startswith(head), q
        out.append("SELECT rowid FROM logs WHERE " + q[len(head):])
    return out


_EVENTS: dict[Path, list[dict[str, Any]]] = {}


def _events(corpus: Path) -> list[dict[str, Any]]:
    if corpus not in _EVENTS:
        _EVENTS[corpus] = _corpus_events(corpus)
    return _EVENTS[corpus]


def compare(rules_dir: Path, corpus: Path, which: str) -> Report:
    events = _events(corpus)
    revs = [RuleEvent(e) for e in events]
    shapes = {r.tags.key(): r.tags for r in revs}
    ruleset = load_rules([rules_dir])
    # Rules whose logsource admits some corpus event: webserver, apache/nginx,
    # linux syslog services (auditd and process_creation see none here).
    active = [r for r in ruleset.rules if any(r.sees(t) for t in shapes.values())]
    report = Report(which, len(events))
    backend = sqlite_backend.sqliteBackend(fulltext_field=KEYWORDS)
    queries: dict[int, list[str]] = {}
    for rule in active:
        try:
            queries[id(rule)] = _to_sql(rule, backend)
        except Exception as exc:  # pySigma raises many types for what it cannot convert
            report.skipped[rule.title] = f"{type(exc).__name__}: {exc}"
    compared = [r for r in active if id(r) in queries]
    report.rules = len(compared)
    if not compared:
        return report
    # One column per field name; SQLite column names ignore case, so names
    # differing only in case must read the same column of ours.
    by_lower: dict[str, str] = {}
    for name in sorted(set().union(*(_rule_fields(r) for r in compared))):
        first = by_lower.setdefault(name.lower(), name)
        assert first == name or getter(first) is getter(name), f"{first} and {name} are one SQLite column"
    tables = {form: _build_table(events, sorted(by_lower.values()), last=form == "decoded") for form in FORMS}
    # Events where decoding gives a second candidate; elsewhere every form is the full event.
    ambiguous = [i for i, r in enumerate(revs) if len(r.keyword_text()) > 1]
    one_form = {i: {"raw": _OneForm(events[i], False), "decoded": _OneForm(events[i], True)} for i in ambiguous}

    for rule in compared:
        admitted = {events[i]["id"] for i, r in enumerate(revs) if rule.sees(r.tags)}
        full = {events[i]["id"] for i, r in enumerate(revs) if events[i]["id"] in admitted and rule.match(r)}
        ours = {form: set(full) for form in FORMS}
        for i in ambiguous:
            eid = events[i]["id"]
            if eid in admitted:
                for form in FORMS:
                    (ours[form].add if rule.match(one_form[i][form]) else ours[form].discard)(eid)
        report.pairs += len(admitted)
        for form in FORMS:
            theirs: set[int] = set()
            for sql in queries[id(rule)]:
                theirs.update(row[0] for row in tables[form].execute(sql))
            theirs &= admitted
            diff = ours[form] ^ theirs
            report.agreements += len(admitted) - len(diff)
            report.matches[form] += len(ours[form] & theirs)
            for eid in sorted(diff)[:5]:
                who = "only ours" if eid in ours[form] else "only pySigma"
                report.differences.append(
                    f"{rule.title} [{form}] {who}: event {eid}: {events[eid - 1]['raw'][:200]!r}")
        if _monotone(rule):
            assert full >= ours["raw"] | ours["decoded"], rule.title
        report.decoding_extra += len(full - ours["raw"])
        if full or ours["raw"] or ours["decoded"]:
            report.fired[rule.title] = (len(ours["raw"]), len(ours["decoded"]), len(full))
    return report


def _show(report: Report, seconds: float, capsys: pytest.CaptureFixture[str]) -> None:
    with capsys.disabled():
        print(f"\n{report.line()} ({seconds:.1f}s)")
        print("  fired (raw, decoded, full): " + "; ".join(f"{t} {n}" for t, n in report.fired.items()))
        for title, why in report.skipped.items():
            print(f"  not convertible: {title}: {why[:150]}")


def test_sigmahq_rules_agree_with_pysigma_sqlite(corpus: Path, capsys: pytest.CaptureFixture[str]) -> None:
    started = time.monotonic()
    rules_dir = corpus / "sigmahq"
    if not rules_dir.is_dir():
        pytest.skip(f"no SigmaHQ rules at {rules_dir}")
    report = compare(rules_dir, corpus, "SigmaHQ")
    _show(report, time.monotonic() - started, capsys)
    assert not report.differences, "\n".join(report.differences)
    assert report.events > 30_000 and report.rules >= 100, report.line()
    assert sum(report.matches.values()) >= 30, report.line()  # the comparison is not vacuous


def test_shipped_rules_agree_with_pysigma_sqlite(corpus: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The project's own rule pack fires far more often on the corpus."""
    started = time.monotonic()
    rules_dir = ROOT / "rules"
    if not any(rules_dir.rglob("*.yml")):
        pytest.skip(f"no shipped rules under {rules_dir}")
    report = compare(rules_dir, corpus, "shipped rules")
    _show(report, time.monotonic() - started, capsys)
    assert not report.differences, "\n".join(report.differences)
    assert report.rules >= 1, report.line()
