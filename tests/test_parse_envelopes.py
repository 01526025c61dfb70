"""Envelope parsing: the LineParser interface, formats, time handling, robustness."""

from __future__ import annotations

import os
import random
import time
from datetime import datetime

import pytest

from soc_tui.model import (
    FLAG_TRUNCATED,
    FLAG_TS_GUESSED,
    FLAG_UNPARSED,
    Event,
    us_to_iso,
)
from soc_tui.parse import ACTIONS, FORMATS, SAMPLE_NOW, SAMPLE_TZ, LineParser, all_samples


def us(iso: str) -> int:
    return int(datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp() * 1_000_000)


NOW = us(SAMPLE_NOW)


def field(ev: Event, key: str):
    if key == "ts":
        return us_to_iso(ev.ts)
    if key.startswith("extra."):
        return (ev.extra or {}).get(key[6:])
    return getattr(ev, key)


# ------------------------------------------------------------- samples ------
SAMPLES = all_samples()


@pytest.mark.parametrize(
    "module,line,expected", SAMPLES, ids=[f"{m}-{i}" for i, (m, _, _) in enumerate(SAMPLES)]
)
def test_samples(module, line, expected):
    ev = LineParser(fmt="auto", source_id="sample", tz=SAMPLE_TZ)._parse(line, 0, NOW)
    problems = [
        f"{k}: got {field(ev, k)!r}, want {v!r}" for k, v in expected.items() if field(ev, k) != v
    ]
    assert not problems, f"{module} sample {line!r}:\n  " + "\n  ".join(problems)
    assert ev.raw == line
    assert ev.source_id == "sample"
    assert not ev.flags & FLAG_UNPARSED
    assert ev.action is None or ev.action in ACTIONS, ev.action
    assert not (ev.extra or {}).get("extract_error")


def test_every_module_has_samples():
    modules = {m for m, _, _ in SAMPLES}
    assert modules >= {"syslog", "web", "jsonlog", "audit", "sshd", "auth", "kernel"}


def test_action_vocabulary_is_exercised_by_samples():
    """Most of the documented vocabulary has a sample line (keeps docs and code honest)."""
    seen = set()
    for _, line, _ in SAMPLES:
        ev = LineParser(tz=SAMPLE_TZ)._parse(line, 0, NOW)
        if ev.action:
            seen.add(ev.action)
    assert seen <= ACTIONS
    assert len(seen) >= 0.6 * len(ACTIONS), sorted(ACTIONS - seen)


# ----------------------------------------------------------- interface ------
def test_formats_constant():
    assert FORMATS == ("auto", "syslog", "access", "json", "journald")


def test_unknown_format_rejected():
    with pytest.raises(ValueError):
        LineParser(fmt="xml")


def test_unparsed_line_kept_whole():
    p = LineParser(source_id="/var/log/odd.log", host="fallback-host")
    ev = p.parse("this is not a log line at all", flags=FLAG_TRUNCATED, now_us=NOW)
    assert ev.ts == NOW
    assert ev.raw == ev.message == "this is not a log line at all"
    assert ev.flags == FLAG_TRUNCATED | FLAG_UNPARSED | FLAG_TS_GUESSED
    assert ev.host == "fallback-host"
    assert ev.source_id == "/var/log/odd.log"
    assert ev.unparsed and ev.truncated


def test_empty_line():
    ev = LineParser().parse("", now_us=NOW)
    assert ev.raw == "" and ev.flags & FLAG_UNPARSED


def test_default_now_is_wall_clock():
    before = time.time_ns() // 1000
    ev = LineParser().parse("garbage")
    after = time.time_ns() // 1000
    assert before <= ev.ts <= after


def test_crlf_stripped_from_raw():
    line = "Mar  1 10:15:02 web-01 sshd[1]: Invalid user x from 192.0.2.1\r"
    ev = LineParser(tz="UTC").parse(line, now_us=NOW)
    assert ev.raw == line[:-1]
    assert ev.src_ip == "192.0.2.1"
    ev = LineParser().parse("junk\r", now_us=NOW)
    assert ev.raw == "junk" and ev.message == "junk"


def test_flags_passed_through_on_parsed_lines():
    ev = LineParser(tz="UTC").parse(
        "Mar  1 10:15:02 web-01 sshd[1]: Failed password for root from 192.0.2.1 port 2 ssh2",
        flags=FLAG_TRUNCATED,
        now_us=NOW,
    )
    assert ev.flags == FLAG_TRUNCATED
    assert ev.action == "ssh_auth_failure"


def test_host_fallback_and_line_host_wins():
    p = LineParser(host="from-option", tz="UTC")
    assert p.parse("Mar  1 10:00:00 web-01 app: hi", now_us=NOW).host == "web-01"
    assert p.parse("Mar  1 10:00:00 sshd[5]: hi", now_us=NOW).host == "from-option"
    a = p.parse('192.0.2.5 - - [01/Mar/2026:10:00:00 +0000] "GET / HTTP/1.1" 200 1', now_us=NOW)
    assert a.host == "from-option"
    v = p.parse(
        'www.example.org:80 192.0.2.5 - - [01/Mar/2026:10:00:00 +0000] "GET / HTTP/1.1" 200 1 "-" "x"',
        now_us=NOW,
    )
    assert v.host == "www.example.org"


def test_app_hint_from_source_path():
    line = '192.0.2.5 - - [01/Mar/2026:10:00:00 +0000] "GET / HTTP/1.1" 200 1'
    assert LineParser(source_id="/var/log/nginx/access.log").parse(line).app == "nginx"
    assert LineParser(source_id="/var/log/apache2/access.log").parse(line).app == "apache"
    assert LineParser(source_id="/srv/logs/web.log").parse(line).app == "httpd"


def test_bare_envelope_guesses_time():
    ev = LineParser().parse("srv sshd[13709]: Invalid user ftp from 192.0.2.2 port 37220", now_us=NOW)
    assert ev.ts == NOW and ev.flags == FLAG_TS_GUESSED
    assert (ev.host, ev.app, ev.pid, ev.src_ip) == ("srv", "sshd", 13709, "192.0.2.2")


def test_nginx_via_syslog_without_time_adopts_inner_time():
    ev = LineParser(tz="UTC").parse(
        'host nginx[2833]: 2015/01/21 10:56:10 [error] 2833#0: *16336 open() "/x" failed '
        '(2: No such file or directory), client: 192.0.2.9, server: s, request: "GET /x HTTP/1.1"',
        now_us=NOW,
    )
    assert us_to_iso(ev.ts) == "2015-01-21T10:56:10Z"
    assert not ev.flags & FLAG_TS_GUESSED
    assert ev.src_ip == "192.0.2.9" and ev.action == "http_not_found"


# ------------------------------------------------------------ formats -------
SYSLOG = "Mar  1 10:15:02 web-01 sshd[2211]: Failed password for root from 192.0.2.7 port 51022 ssh2"
ACCESS = '192.0.2.60 - - [01/Mar/2026:10:20:30 +0000] "GET / HTTP/1.1" 200 51 "-" "curl/8"'
JOURNAL = (
    '{"__REALTIME_TIMESTAMP":"1772360102000000","_HOSTNAME":"h","SYSLOG_IDENTIFIER":"sshd",'
    '"MESSAGE":"Invalid user a from 192.0.2.8"}'
)
JSONL = '{"time":"2026-03-01T10:00:00Z","msg":"hello","level":"info"}'
APACHE_ERR = "[Sun Mar 01 10:21:01 2026] [error] [client 192.0.2.66] File does not exist: /x"
NGINX_ERR = "2026/03/01 10:22:00 [error] 1#1: *1 access forbidden by rule, client: 192.0.2.3, server: s"


@pytest.mark.parametrize(
    "fmt,accepts,rejects",
    [
        ("syslog", [SYSLOG, "<38>1 2026-03-01T10:00:00Z h app 1 - - x"], [ACCESS, JOURNAL, APACHE_ERR]),
        ("access", [ACCESS, APACHE_ERR, NGINX_ERR], [SYSLOG, JSONL]),
        ("json", [JSONL, JOURNAL], [SYSLOG, ACCESS]),
        ("journald", [JOURNAL], [JSONL, SYSLOG]),
    ],
)
def test_forced_format_only_tries_its_family(fmt, accepts, rejects):
    p = LineParser(fmt=fmt, tz="UTC")
    for line in accepts:
        assert not p.parse(line, now_us=NOW).unparsed, (fmt, line)
    for line in rejects:
        assert p.parse(line, now_us=NOW).unparsed, (fmt, line)


def test_journald_record_under_json_is_generic_json_but_auto_is_journald():
    auto = LineParser().parse(JOURNAL, now_us=NOW)
    assert auto.app == "sshd" and auto.host == "h" and auto.action == "ssh_invalid_user"
    assert auto.ts == 1772360102000000


def test_auto_sticks_to_last_format_and_handles_mixed_files():
    p = LineParser(tz="UTC")
    lines = [ACCESS, ACCESS, SYSLOG, ACCESS, JSONL, APACHE_ERR, NGINX_ERR, SYSLOG, "garbage"]
    evs = [p.parse(line, now_us=NOW) for line in lines]
    assert [e.unparsed for e in evs] == [False] * 8 + [True]
    assert evs[0].action == evs[3].action == "http_request"
    assert evs[2].action == evs[7].action == "ssh_auth_failure"
    assert evs[4].message == "hello"
    # the envelope that matched last is tried first
    p2 = LineParser(tz="UTC")
    p2.parse(ACCESS, now_us=NOW)
    assert p2._last.__name__ == "env_access"
    p2.parse(SYSLOG, now_us=NOW)
    assert p2._last.__name__ == "env_3164"
    # a generic JSON file does not swallow later journald records
    p3 = LineParser()
    p3.parse(JSONL, now_us=NOW)
    assert p3.parse(JOURNAL, now_us=NOW).app == "sshd"


def test_message_repeated():
    line = (
        "Dec 10 07:13:56 LabSZ sshd[24227]: message repeated 5 times: "
        "[ Failed password for root from 5.36.59.76 port 42393 ssh2]"
    )
    ev = LineParser(tz="UTC").parse(line, now_us=NOW)
    assert ev.repeat == 5
    assert ev.message == "Failed password for root from 5.36.59.76 port 42393 ssh2"
    assert ev.raw == line
    assert (ev.action, ev.outcome, ev.src_ip, ev.user) == ("ssh_auth_failure", "failure", "5.36.59.76", "root")


# ---------------------------------------------------------------- time ------
def test_year_inference_not_in_future():
    jan5 = us("2026-01-05T12:00:00Z")
    p = LineParser(tz="UTC")
    assert us_to_iso(p.parse("Dec 31 23:00:00 h a: x", now_us=jan5).ts) == "2025-12-31T23:00:00Z"
    assert us_to_iso(p.parse("Jan  5 11:00:00 h a: x", now_us=jan5).ts) == "2026-01-05T11:00:00Z"
    # up to a day ahead is tolerated (clock/zone skew) ...
    assert us_to_iso(p.parse("Jan  6 06:00:00 h a: x", now_us=jan5).ts) == "2026-01-06T06:00:00Z"
    # ... more than that is last year's
    assert us_to_iso(p.parse("Jan  9 06:00:00 h a: x", now_us=jan5).ts) == "2025-01-09T06:00:00Z"
    # New Year skew: a Jan 1 line seen on Dec 31 evening belongs to next year
    dec31 = us("2025-12-31T23:30:00Z")
    assert us_to_iso(p.parse("Jan  1 00:10:00 h a: x", now_us=dec31).ts) == "2026-01-01T00:10:00Z"
    # Feb 29 falls back to the last leap year
    assert us_to_iso(p.parse("Feb 29 10:00:00 h a: x", now_us=NOW).ts) == "2024-02-29T10:00:00Z"


def test_year_inference_follows_now_across_calls():
    p = LineParser(tz="UTC")
    line = "Jun  7 01:10:56 host sshd[5937]: Did not receive identification string from 192.0.2.1"
    assert us_to_iso(p.parse(line, now_us=us("2005-08-14T00:00:00Z")).ts) == "2005-06-07T01:10:56Z"
    assert us_to_iso(p.parse(line, now_us=us("2026-03-02T00:00:00Z")).ts) == "2025-06-07T01:10:56Z"
    assert us_to_iso(p.parse(line, now_us=us("2026-07-02T00:00:00Z")).ts) == "2026-06-07T01:10:56Z"


def test_year_override():
    p = LineParser(tz="UTC", year=2015)
    assert us_to_iso(p.parse("Nov 30 06:39:00 h CRON[1]: x", now_us=NOW).ts) == "2015-11-30T06:39:00Z"
    assert us_to_iso(p.parse("Dec  1 06:39:00 h CRON[1]: x", now_us=NOW).ts) == "2015-12-01T06:39:00Z"


def test_timezone_for_times_without_offset():
    p = LineParser(tz="Europe/Berlin", year=2026)
    assert us_to_iso(p.parse("Jan 15 10:00:00 h a: x", now_us=NOW).ts) == "2026-01-15T09:00:00Z"
    assert us_to_iso(p.parse("Jul 15 10:00:00 h a: x", now_us=NOW).ts) == "2026-07-15T08:00:00Z"
    # around the spring-forward transition (2026-03-29 02:00 CET -> 03:00 CEST)
    assert us_to_iso(p.parse("Mar 29 01:59:59 h a: x", now_us=NOW).ts) == "2026-03-29T00:59:59Z"
    assert us_to_iso(p.parse("Mar 29 03:00:00 h a: x", now_us=NOW).ts) == "2026-03-29T01:00:00Z"
    # other local-time formats use the zone too
    assert us_to_iso(p.parse("[Sun Jan 04 10:00:00 2026] [error] x", now_us=NOW).ts) == "2026-01-04T09:00:00Z"
    assert us_to_iso(p.parse("2026/07/01 10:00:00 [error] 1#1: x", now_us=NOW).ts) == "2026-07-01T08:00:00Z"
    assert us_to_iso(p.parse("2026-07-01T10:00:00 h a: x", now_us=NOW).ts) == "2026-07-01T08:00:00Z"
    assert us_to_iso(p.parse('1.2.3.4 - - [01/Jul/2026:10:00:00] "GET / HTTP/1.1" 200 1', now_us=NOW).ts) == (
        "2026-07-01T08:00:00Z"
    )


def test_explicit_offsets_win_over_tz():
    p = LineParser(tz="America/New_York")
    assert us_to_iso(p.parse("2026-03-01T10:15:02.123456+00:00 h a: x", now_us=NOW).ts) == (
        "2026-03-01T10:15:02.123456Z"
    )
    assert us_to_iso(p.parse("2026-03-01T10:15:02Z h a: x", now_us=NOW).ts) == "2026-03-01T10:15:02Z"
    assert us_to_iso(p.parse("2026-03-01T12:15:02+0200 h a: x", now_us=NOW).ts) == "2026-03-01T10:15:02Z"
    acc = '1.2.3.4 - - [22/Oct/2021:02:28:56 -0700] "GET / HTTP/1.1" 200 1'
    assert us_to_iso(p.parse(acc, now_us=NOW).ts) == "2021-10-22T09:28:56Z"
    assert us_to_iso(p.parse("<38>1 2019-07-08T17:40:16.954167-04:00 h sshd 1 - - x", now_us=NOW).ts) == (
        "2019-07-08T21:40:16.954167Z"
    )


def test_default_zone_is_machine_local(monkeypatch):
    if not hasattr(time, "tzset"):
        pytest.skip("no time.tzset on this platform")
    monkeypatch.setenv("TZ", "America/New_York")
    time.tzset()
    try:
        p = LineParser(year=2026)
        assert us_to_iso(p.parse("Jan 15 10:00:00 h a: x", now_us=NOW).ts) == "2026-01-15T15:00:00Z"
        assert us_to_iso(p.parse("Jul 15 10:00:00 h a: x", now_us=NOW).ts) == "2026-07-15T14:00:00Z"
    finally:
        monkeypatch.undo()
        time.tzset()


def test_bad_dates_do_not_break_lines():
    p = LineParser(tz="UTC")
    ev = p.parse("Feb 31 10:00:00 web-01 sshd[1]: Invalid user a from 192.0.2.1", now_us=NOW)
    assert ev.flags & FLAG_TS_GUESSED and not ev.unparsed and ev.src_ip == "192.0.2.1"
    ev = p.parse('1.2.3.4 - - [99/Foo/2021:02:28:56 -0700] "GET / HTTP/1.1" 200 1', now_us=NOW)
    assert ev.flags & FLAG_TS_GUESSED and ev.http_status == 200


# ----------------------------------------------------------- robustness -----
def _mutations(rng: random.Random, base: str) -> list[str]:
    out = [base[:i] for i in range(0, len(base), max(1, len(base) // 12))]
    junk = ["\x00", "\ufffd", "[", "]", '"', "\\", ":", " ", "\t", "{", "}", "<", ">", "\u202e", "\x1b[31m", "%"]
    for _ in range(40):
        s = list(base)
        for _ in range(rng.randint(1, 6)):
            pos = rng.randrange(len(s) + 1)
            op = rng.random()
            if op < 0.4:
                s.insert(pos, rng.choice(junk))
            elif op < 0.7 and s:
                del s[min(pos, len(s) - 1)]
            elif s:
                s[min(pos, len(s) - 1)] = rng.choice(junk)
        out.append("".join(s))
    return out


def test_fuzz_never_raises():
    rng = random.Random(1234)
    alphabet = "abcAZ09 :[]{}<>\"'\\/-=.,;()#*\x00\ufffd\r\t|%@+"
    bases = [line for _, line, _ in SAMPLES]
    cases: list[str] = []
    for b in bases:
        cases.extend(_mutations(rng, b))
    for _ in range(3000):
        cases.append("".join(rng.choice(alphabet) for _ in range(rng.randint(0, 120))))
    cases += ["{", "{}", "[]", "{\"MESSAGE\": [300, -1]}", '{"__REALTIME_TIMESTAMP": "x"}',
              '{"time": 1e400}', '{"time": [1]}', "<999>1 - - - - - -", "\r", "\x00" * 50,
              "[" * 5000, '"' * 5000, "a " * 20000, "Mar 99 99:99:99 h a: x"]
    for fmt in FORMATS:
        p = LineParser(fmt=fmt, tz="UTC", source_id="fuzz")
        for line in cases:
            ev = p._parse(line, 0, NOW)  # the inner parse: a bug raises here
            assert isinstance(ev, Event)
            assert isinstance(ev.ts, int)
            assert ev.raw == (line[:-1] if line.endswith("\r") else line)
            assert not (ev.extra or {}).get("extract_error"), line
            p.parse(line)  # and the public one never raises


def test_parse_survives_non_str_input():
    p = LineParser()
    ev = p.parse(b"bytes line", now_us=NOW)  # type: ignore[arg-type]
    assert ev.unparsed and ev.raw == "bytes line"
    ev = p.parse(None, now_us=NOW)  # type: ignore[arg-type]
    assert ev.unparsed


def test_pathological_lines_are_fast():
    """Near-64 KiB adversarial lines must not trigger regex blow-ups."""
    p = LineParser(tz="UTC")
    pre = "Mar  1 10:00:00 h sshd[1]: "
    nasty = [
        pre + "Failed password for " + "x from y " * 7000 + "from",
        pre + "Failed password for invalid user " + "from 1.2.3.4 port 5 ssh2 " * 2500,
        pre + "Connection closed by authenticating user " + "a " * 30000,
        pre + "Invalid user " + "a from b " * 7000,
        pre + "Disconnecting invalid user " + "a b port 1 " * 6000,
        pre + "Received disconnect from " + "a" * 60000,
        pre + "Bad protocol version identification " + "x from y " * 7000,
        pre + "error: PAM: " + "x for y from z " * 5000,
        pre + "maximum authentication attempts exceeded for " + "x from y " * 7000,
        pre + "message repeated 5 times: [ " + "[ " * 30000,
        "Mar  1 10:00:00 h sudo: a : TTY=x ; PWD=" + "y ; " * 15000,
        '1.2.3.4 - - [01/Mar/2026:10:00:00 +0000] "' + "\\" * 60000,
        '1.2.3.4 - - [01/Mar/2026:10:00:00 +0000] "GET / HTTP/1.1" 200 1 "' + '\\"' * 30000,
        "[Sun Mar 01 10:21:01 2026] [error] " + "[client " * 8000,
        "[Sun Mar 01 10:21:01 2026] [error] [client " + "[" * 60000,
        "2026/03/01 10:22:00 [error] 1#1: *1 " + ", client: " * 6000,
        "<38>1 2026-03-01T10:00:00Z h a 1 - " + '[x a="b"' * 8000,
        "Mar  1 10:00:00 h kernel: " + "SRC=1 DST=2 " * 5000,
        "type=X msg=audit(1.1:1): " + "a='b " * 10000,
        "Mar  1 10:00:00 " + "a " * 30000,
        '{"a":' * 5000,
    ]
    for line in nasty:
        t = time.perf_counter()
        p._parse(line, 0, NOW)
        assert time.perf_counter() - t < 0.25, line[:80]


@pytest.mark.skipif(not os.environ.get("SOC_TUI_PARSE_BENCH"), reason="set SOC_TUI_PARSE_BENCH=1 to print parse speed")
def test_print_speed():  # pragma: no cover - a measurement, not a check
    line = "Mar  1 10:15:02 web-01 sshd[2211]: Failed password for root from 203.0.113.7 port 51022 ssh2"
    p = LineParser(tz="UTC")
    n = 200_000
    t = time.perf_counter()
    for _ in range(n):
        p.parse(line)
    print(f"\n{n / (time.perf_counter() - t):,.0f} lines/s")
