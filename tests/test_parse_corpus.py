"""The parser against real third-party logs (../shared/corpus; skipped when absent).

- fail2ban's labelled filter tests: src_ip must equal the labelled host for
  >= 97% of the failure lines whose host is an IP written on the line.
- every corpus file parses without an internal error; the share of unparsed
  lines is reported per file, and the known-format files are >= 99% parsed.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import pytest

from soc_tui.model import FLAG_TS_GUESSED, FLAG_UNPARSED
from soc_tui.parse import LineParser
from soc_tui.parse.util import is_ip

ACCURACY_FLOOR = 0.97
LABEL_FILES = ("sshd", "sshd-journal")
LABEL_PREFIXES = ("apache-", "nginx-")

CORPUS_GLOBS = (
    "loghub/*.log",
    "secrepo/*",
    "elastic/*",
    "elastic-examples/apache_logs",
    "basjes/*.log",
    "crowdsec/*.log",
    "fail2ban/logs/*",
    "wazuh/log-entries/*",
)
KNOWN_FORMAT_FILES = (
    "loghub/OpenSSH_2k.log",
    "loghub/Linux_2k.log",
    "loghub/Apache_2k.log",
    "secrepo/auth.log",
    "secrepo/access.log.2021-10-22",
    "secrepo/access.log.2022-12-22",
    "elastic-examples/apache_logs",
    "basjes/hackers-access.log",
    "elastic/test-auth-ubuntu1204.log",
)


def read_lines(path: Path) -> list[str]:
    """Lines as the file reader hands them over: split on \\n, invalid UTF-8 replaced, CR kept."""
    text = path.read_bytes().decode("utf-8", "replace")
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return lines


def corpus_files(corpus: Path) -> list[Path]:
    files: list[Path] = []
    for pattern in CORPUS_GLOBS:
        for f in sorted(corpus.glob(pattern)):
            if f.is_file() and not f.name.startswith(("SOURCE", "README")) and f.suffix not in (".md", ".txt"):
                files.append(f)
    return files


def labelled_cases(corpus: Path) -> list[dict]:
    cases = []
    with open(corpus / "fail2ban" / "labels.jsonl", encoding="utf-8") as fh:
        for raw in fh:
            rec = json.loads(raw)
            f = rec["file"]
            if not (f in LABEL_FILES or f.startswith(LABEL_PREFIXES)):
                continue
            fj = rec.get("failJSON") or {}
            host = fj.get("host")
            if not fj.get("match") or not isinstance(host, str) or not is_ip(host):
                continue
            if not rec.get("host_in_line") or host not in rec["line"]:
                continue
            cases.append(rec)
    return cases


def test_fail2ban_labels_src_ip_accuracy(corpus, capsys):
    cases = labelled_cases(corpus)
    assert len(cases) >= 250, f"expected the labelled corpus, found only {len(cases)} cases"
    misses = []
    for rec in cases:
        ev = LineParser(fmt="auto").parse(rec["line"])
        want = rec["failJSON"]["host"]
        if ev.src_ip != want:
            misses.append(f"{rec['file']}:{rec['lineno']}: want {want!r} got {ev.src_ip!r} "
                          f"(action={ev.action}) | {rec['line'][:200]}")
    hits = len(cases) - len(misses)
    share = hits / len(cases)
    summary = f"fail2ban labels: src_ip correct for {hits}/{len(cases)} = {share:.2%}"
    with capsys.disabled():
        print("\n" + summary)
        for m in misses:
            print("  MISS " + m)
    if misses:
        warnings.warn(summary + "; misses:\n" + "\n".join(misses), stacklevel=1)
    assert share >= ACCURACY_FLOOR, summary + "\n" + "\n".join(misses)


def test_fail2ban_labelled_failures_get_a_failure_action(corpus):
    """Beyond the address: labelled sshd failure lines are classified as failures."""
    cases = [c for c in labelled_cases(corpus) if c["file"] in LABEL_FILES]
    bad = []
    for rec in cases:
        ev = LineParser().parse(rec["line"])
        if ev.outcome != "failure" and ev.action not in ("ssh_login",):
            bad.append(f"{rec['file']}:{rec['lineno']} action={ev.action} outcome={ev.outcome} | {rec['line'][:150]}")
    assert len(bad) <= 0.03 * len(cases), "\n".join(bad)


def test_fail2ban_label_times(corpus):
    """fail2ban's expected times (zone CET, "now" = 2005-08-14) match ours for lines with a time."""
    from datetime import datetime
    from zoneinfo import ZoneInfo

    cet = ZoneInfo("CET")
    now = int(datetime(2005, 8, 14, tzinfo=cet).timestamp() * 1_000_000)
    total = 0
    wrong = []
    with open(corpus / "fail2ban" / "labels.jsonl", encoding="utf-8") as fh:
        for raw in fh:
            rec = json.loads(raw)
            want = (rec.get("failJSON") or {}).get("time")
            if not want or not rec["failJSON"].get("match"):
                continue
            ev = LineParser(tz="CET").parse(rec["line"], now_us=now)
            if ev.flags & FLAG_TS_GUESSED:
                continue  # journal-style lines without a time
            total += 1
            got = datetime.fromtimestamp(ev.ts / 1_000_000, cet).replace(tzinfo=None).isoformat(timespec="seconds")
            if got != want[:19]:
                wrong.append(f"{rec['file']}:{rec['lineno']} want {want} got {got} | {rec['line'][:100]}")
    assert total > 250
    assert len(wrong) <= 0.01 * total, "\n".join(wrong)


def test_corpus_files_parse_and_report_unparsed_share(corpus, capsys):
    files = corpus_files(corpus)
    assert files, "no corpus files found"
    report = []
    shares: dict[str, float] = {}
    errors = []
    for f in files:
        rel = f.relative_to(corpus).as_posix()
        p = LineParser(fmt="auto", source_id=str(f))
        lines = read_lines(f)
        unparsed = 0
        content = 0
        content_unparsed = 0
        for i, line in enumerate(lines, 1):
            try:
                ev = p._parse(line, 0, 1_772_400_000_000_000)
            except Exception as exc:  # noqa: BLE001 - reported below
                errors.append(f"{rel}:{i}: {exc!r} | {line[:120]}")
                continue
            if (ev.extra or {}).get("extract_error"):
                errors.append(f"{rel}:{i}: extractor error | {line[:120]}")
            bad = bool(ev.flags & FLAG_UNPARSED)
            unparsed += bad
            # test-data files carry comments and blank lines between the log lines
            if line.strip() and not line.startswith("#"):
                content += 1
                content_unparsed += bad
        share = unparsed / len(lines) if lines else 0.0
        cshare = content_unparsed / content if content else 0.0
        shares[rel] = share
        report.append(f"  {rel:45s} {len(lines):6d} lines  unparsed {share:7.2%}  "
                      f"(excluding blank/# lines: {cshare:7.2%})")
    with capsys.disabled():
        print("\nunparsed share per corpus file:")
        print("\n".join(report))
    assert not errors, "\n".join(errors[:50])
    missing = [k for k in KNOWN_FORMAT_FILES if k not in shares]
    assert not missing, f"known-format files missing from the corpus: {missing}"
    too_many = {k: shares[k] for k in KNOWN_FORMAT_FILES if shares[k] > 0.01}
    assert not too_many, f"known-format files with more than 1% unparsed lines: {too_many}"


def test_openssh_failed_password_lines(corpus):
    lines = read_lines(corpus / "loghub" / "OpenSSH_2k.log")
    p = LineParser(fmt="auto", source_id="OpenSSH_2k.log")
    checked = 0
    for line in lines:
        ev = p.parse(line)
        if "failed password" in line.lower():
            checked += 1
            assert ev.action == "ssh_auth_failure", line
            assert ev.outcome == "failure", line
            assert ev.src_ip, line
            assert ev.raw == line.rstrip("\r")
    assert checked > 300


def test_openssh_repeated_lines_weigh_n(corpus):
    lines = read_lines(corpus / "loghub" / "OpenSSH_2k.log")
    p = LineParser()
    reps = [p.parse(x) for x in lines if "message repeated" in x]
    assert reps and all(e.repeat > 1 and e.message and not e.message.startswith("message repeated") for e in reps)


def test_secrepo_auth_log_brute_force_is_visible(corpus):
    p = LineParser(year=2015)
    counts: dict[str, int] = {}
    for line in read_lines(corpus / "secrepo" / "auth.log"):
        ev = p.parse(line)
        if ev.action:
            counts[ev.action] = counts.get(ev.action, 0) + 1
    assert counts.get("ssh_invalid_user", 0) > 1000
    assert counts.get("ssh_disconnect", 0) > 5000
    assert counts.get("cron_session_opened", 0) > 10


def test_elastic_auth_log_privilege_events(corpus):
    p = LineParser()
    actions = {}
    for line in read_lines(corpus / "elastic" / "test-auth-ubuntu1204.log"):
        ev = p.parse(line)
        if ev.action:
            actions.setdefault(ev.action, []).append(ev)
    for a in ("sudo_command", "sudo_auth_failure", "sudo_not_in_sudoers", "su", "user_created",
              "group_created", "password_changed", "ssh_login", "cron_session_opened"):
        assert a in actions, a
    escaped = [e for e in actions["sudo_command"] if "#012" in e.raw]
    assert escaped and all("#012" not in e.extra["command"] and "\n" in e.extra["command"] for e in escaped)
    assert any(e.user == "tsg" for e in actions["sudo_not_in_sudoers"])


@pytest.mark.parametrize("name", ["Apache_2k.log"])
def test_apache_error_log_levels(corpus, name):
    p = LineParser()
    levels = {p.parse(x).level for x in read_lines(corpus / "loghub" / name)}
    assert {"error", "notice"} <= levels


EDGE_3164 = [
    "Dec 14 22:13:21 srv-01 CRON[17716]: pam_unix(cron:session): session closed for user root",
    "Jun  7 01:02:03 h sshd[1]: x",
    "Jun 07 01:02:03 h sshd[1]:",
    "Jun  7 01:02:03 h sshd[1]:   three spaces",
    "Jun  7 01:02:03 2024 sshd[1]: a year where the host would be",
    "Jun  7 01:02:03 20245 sshd[1]: five digits are a host",
    "Jun  7 01:02:03  h sshd[1]: two spaces before the host",
    "Jun  7 01:02:03 h  sshd[1]: two spaces after it",
    "Jun  7 01:02:03 h sshd[]: empty pid",
    "Jun  7 01:02:03 h sshd[1]:no space",
    "Jun  7 01:02:03.123 h sshd[1]: fraction",
    "jun  7 01:02:03 h sshd[1]: lower-case month",
    "Jun  7 01:02:03 h postfix/smtpd[9]: slash",
    "Jun  7 01:02:03 h sshd[1]: tab\there and\nnewline",
]


def _fast_3164_agrees(lines: list[str]) -> int:
    """Check that where the fast RFC 3164 pattern matches, the full one gives
    the same fields; the number of lines the fast one matched."""
    from soc_tui.parse.syslog import RE_3164, RE_3164_COMMON

    fast = 0
    for line in lines:
        r = RE_3164_COMMON.match(line)
        if r is None:
            continue
        fast += 1
        full = RE_3164.match(line)
        assert full is not None, line
        pri, mon, d, y1, hh, mi, ss, fr, y2, host, tag_b, tag, pid, msg = full.groups()
        assert (pri, y1, fr, y2, tag_b) == (None,) * 5, line
        assert r.groups() == (mon, d, hh, mi, ss, host, tag, pid, msg), line
    return fast


def test_the_fast_rfc3164_pattern_agrees_with_the_full_one_on_edge_cases():
    """The parser tries the pattern of the commonest syslog form first and
    relies on the full RFC 3164 pattern giving the same fields wherever the
    fast one matches: lines written to probe where the two could differ."""
    assert _fast_3164_agrees(EDGE_3164) == 7  # the others are left to the full pattern


def test_the_fast_rfc3164_pattern_agrees_with_the_full_one(corpus):
    """The same on every corpus line."""
    lines: list[str] = []
    for f in corpus_files(corpus):
        lines += read_lines(f)
    assert _fast_3164_agrees(lines) > 5000
