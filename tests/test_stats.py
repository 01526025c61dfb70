"""The Overview/Rules/Sources figures (soc_tui.store.stats) on a real
database, built through `soc-tui ingest` with the shipped rules from a log
whose counts are known line by line."""

from __future__ import annotations

import os
import re
import sqlite3
from pathlib import Path
from typing import Any, Callable

import pytest

from soc_tui.cli import main
from soc_tui.store import stats, triage
from soc_tui.store.db import open_db

T0 = 1_763_596_800_000_000  # 2025-11-20 00:00:00 UTC, in microseconds
S = 1_000_000  # one second
M = 60 * S  # one minute
ACCEPTED_LOGIN_RULE = "9cb7898c-8903-4db5-a4d8-de87c2ebd481"  # ssh_accepted_login (informational)

AUTH_LOG = """\
Nov 20 00:01:00 bastion sshd[101]: Failed password for root from 198.51.100.7 port 4000 ssh2
Nov 20 00:01:01 bastion sshd[101]: Failed password for root from 198.51.100.7 port 4001 ssh2
Nov 20 00:01:02 bastion sshd[101]: Failed password for root from 198.51.100.7 port 4002 ssh2
Nov 20 00:01:03 bastion sshd[101]: Failed password for root from 198.51.100.7 port 4003 ssh2
Nov 20 00:01:04 bastion sshd[101]: Failed password for root from 198.51.100.7 port 4004 ssh2
Nov 20 00:01:05 bastion sshd[101]: Failed password for root from 198.51.100.7 port 4005 ssh2
Nov 20 00:01:30 bastion sshd[102]: Accepted password for root from 198.51.100.7 port 4010 ssh2
Nov 20 00:03:10 web01 sshd[201]: Failed password for admin from 203.0.113.9 port 5000 ssh2
Nov 20 00:03:20 web01 sshd[201]: Failed password for admin from 203.0.113.9 port 5001 ssh2
Nov 20 00:05:00 web01 sshd[202]: Accepted password for alice from 192.0.2.10 port 6000 ssh2
Nov 20 00:07:00 web01 CRON[300]: pam_unix(cron:session): session opened for user root by (uid=0)
Nov 20 00:08:00 bastion sshd[103]: message repeated 3 times: [ Failed password for root from 203.0.113.9 port 5002 ssh2]
"""
# What the file holds (event time - T0, events counted with repeats):
#   0:01:00-0:01:05  6 failures, root@bastion from 198.51.100.7  -> ssh_bruteforce
#                    (medium; the 5th failure, 0:01:04, reaches the threshold,
#                    the 6th adds a second hit to the same alert)
#   0:01:30          accepted root@bastion from 198.51.100.7      -> ssh_root_login (medium)
#                                                                  and ssh_success_after_bruteforce (critical)
#   0:03:10, 0:03:20 2 failures, admin@web01 from 203.0.113.9
#   0:05:00          accepted alice@web01 from 192.0.2.10
#   0:07:00          cron session for root@web01 (no address)
#   0:08:00          one line repeated 3 times: 3 failures, root@bastion from 203.0.113.9
#                    (5 failures from 203.0.113.9 in all, but not within 60 s: no alert)
EVENTS = 14  # 12 lines, the last counting 3


def _ingest(db: Path, log: Path) -> None:
    assert main(["--db", str(db), "ingest", "--no-progress", "--tz", "UTC", "--year", "2025",
                 str(log)]) == 0


@pytest.fixture
def log(tmp_path: Path) -> Path:
    path = tmp_path / "auth.log"
    path.write_text(AUTH_LOG)
    return path


@pytest.fixture
def conn(tmp_path: Path, log: Path) -> Any:
    db = tmp_path / "soc.db"
    _ingest(db, log)
    c = open_db(db, create=False)
    yield c
    c.close()


def _alert_ids(conn: Any) -> dict[str, tuple[int, str]]:
    """rule_name -> (alert id, rule_id)."""
    return {name: (i, rid) for i, rid, name in conn.execute("SELECT id, rule_id, rule_name FROM alerts")}


# -- events ------------------------------------------------------------------------


def test_time_bounds(conn: Any, tmp_path: Path) -> None:
    assert stats.time_bounds(conn) == (T0 + 1 * M, T0 + 8 * M)
    empty = open_db(tmp_path / "empty.db")
    try:
        assert stats.time_bounds(empty) == (None, None)
    finally:
        empty.close()


def test_event_histogram_counts_repeats_per_bucket(conn: Any) -> None:
    # ten buckets of one minute over 0:00-0:10
    assert stats.event_histogram(conn, T0, T0 + 10 * M, 10) == [0, 7, 0, 2, 0, 1, 0, 1, 3, 0]
    assert sum(stats.event_histogram(conn, T0, T0 + 10 * M, 7)) == EVENTS
    assert stats.event_histogram(conn, T0, T0 + 10 * M, 1) == [EVENTS]
    # half-open window: 0:01:05 is in, 0:03:20 is out
    assert stats.event_histogram(conn, T0 + 65 * S, T0 + 200 * S, 1) == [3]
    # 10 s in 3 buckets: edges at +3.333333 s and +6.666666 s
    assert stats.event_histogram(conn, T0 + 60 * S, T0 + 70 * S, 3) == [4, 2, 0]
    # a window with nothing, an empty window
    assert stats.event_histogram(conn, T0 + 20 * M, T0 + 30 * M, 4) == [0, 0, 0, 0]
    assert stats.event_histogram(conn, T0 + M, T0 + M, 2) == [0, 0]
    with pytest.raises(ValueError):
        stats.event_histogram(conn, T0, T0 + M, 0)


def test_top_values(conn: Any) -> None:
    day = (T0, T0 + 10 * M)
    assert stats.top_values(conn, "src_ip", *day) == [
        ("198.51.100.7", 7), ("203.0.113.9", 5), ("192.0.2.10", 1)]
    assert stats.top_values(conn, "user", *day) == [("root", 11), ("admin", 2), ("alice", 1)]
    assert stats.top_values(conn, "host", *day) == [("bastion", 10), ("web01", 4)]
    assert stats.top_values(conn, "user", *day, limit=1) == [("root", 11)]
    # the window bounds it: 0:03-0:06
    assert stats.top_values(conn, "src_ip", T0 + 3 * M, T0 + 6 * M) == [
        ("203.0.113.9", 2), ("192.0.2.10", 1)]
    assert stats.top_values(conn, "src_ip", T0 + 20 * M, T0 + 30 * M) == []


def test_top_values_failures_only(conn: Any, tmp_path: Path) -> None:
    day = (T0, T0 + 10 * M)
    assert stats.top_values(conn, "src_ip", *day, failures_only=True) == [
        ("198.51.100.7", 6), ("203.0.113.9", 5)]
    assert stats.top_values(conn, "user", *day, failures_only=True) == [("root", 9), ("admin", 2)]
    assert stats.top_values(conn, "host", *day, failures_only=True) == [("bastion", 9), ("web01", 2)]
    # a database where no event ever failed has no `failure` term at all
    ok = tmp_path / "ok.log"
    ok.write_text("".join(line + "\n" for line in AUTH_LOG.splitlines() if "Accepted" in line))
    db = tmp_path / "ok.db"
    _ingest(db, ok)
    c = open_db(db, create=False)
    try:
        assert stats.top_values(c, "src_ip", *day) == [("192.0.2.10", 1), ("198.51.100.7", 1)]
        assert stats.top_values(c, "src_ip", *day, failures_only=True) == []
    finally:
        c.close()


@pytest.mark.parametrize("field", ["message", "outcome", "src_ip; DROP TABLE events", "", "SRC_IP"])
def test_top_values_refuses_other_fields(conn: Any, field: str) -> None:
    with pytest.raises(ValueError):
        stats.top_values(conn, field, T0, T0 + 10 * M)


def _plans(conn: Any, call: Callable[[], Any]) -> list[list[str]]:
    """The query plan of every statement on events that `call` runs."""
    sql: list[str] = []
    conn.set_trace_callback(sql.append)  # the expanded SQL, parameters bound
    try:
        call()
    finally:
        conn.set_trace_callback(None)
    return [[r[3] for r in conn.execute("EXPLAIN QUERY PLAN " + s)]
            for s in sql if re.search(r"\bFROM events\b", s)]


@pytest.mark.parametrize("call", [
    lambda c: stats.event_histogram(c, T0, T0 + 10 * M, 10),
    lambda c: stats.top_values(c, "src_ip", T0, T0 + 10 * M),
    lambda c: stats.top_values(c, "user", T0, T0 + 10 * M, failures_only=True),
    lambda c: stats.time_bounds(c),
])
def test_event_queries_use_the_ts_index(conn: Any, call: Callable[[Any], Any]) -> None:
    plans = _plans(conn, lambda: call(conn))
    assert plans
    for plan in plans:
        on_events = [d for d in plan if re.match(r"(SCAN|SEARCH) (events|e)\b", d)]
        assert on_events and all("idx_events_ts" in d for d in on_events), plan


# -- alerts --------------------------------------------------------------------------


def test_alert_histogram_by_first_seen(conn: Any) -> None:
    # ssh_bruteforce first seen at 0:01:04, the other two at 0:01:30
    assert stats.alert_histogram(conn, T0, T0 + 10 * M, 10) == [0, 3, 0, 0, 0, 0, 0, 0, 0, 0]
    assert stats.alert_histogram(conn, T0, T0 + 10 * M, 20)[:5] == [0, 0, 1, 2, 0]
    assert stats.alert_histogram(conn, T0 + 64 * S, T0 + 90 * S, 1) == [1]  # half-open
    assert stats.alert_histogram(conn, T0 + 2 * M, T0 + 10 * M, 4) == [0, 0, 0, 0]


def test_alert_counts_follow_triage(conn: Any) -> None:
    counts = stats.alert_counts(conn)
    assert counts.by_severity == {"critical": 1, "high": 0, "medium": 2, "low": 0}
    assert list(counts.by_severity) == ["critical", "high", "medium", "low"]
    assert counts.by_status == {"new": 3, "acknowledged": 0, "in_progress": 0, "closed": 0}
    assert counts.open == 3

    ids = _alert_ids(conn)
    triage.set_status(conn, [ids["ssh_bruteforce"][0]], "acknowledged", "alice")
    counts = stats.alert_counts(conn)
    assert counts.by_status == {"new": 2, "acknowledged": 1, "in_progress": 0, "closed": 0}
    assert counts.by_severity == {"critical": 1, "high": 0, "medium": 2, "low": 0}

    # a closed alert leaves by_severity (open alerts only), not by_status
    triage.set_status(conn, [ids["ssh_success_after_bruteforce"][0]], "closed", "alice",
                      reason="true_positive")
    counts = stats.alert_counts(conn)
    assert counts.by_status == {"new": 1, "acknowledged": 1, "in_progress": 0, "closed": 1}
    assert counts.by_severity == {"critical": 0, "high": 0, "medium": 2, "low": 0}
    assert counts.open == 2


def test_rule_hits(conn: Any) -> None:
    ids = _alert_ids(conn)
    hits = stats.rule_hits(conn)
    bf_id, bf_rule = ids["ssh_bruteforce"]
    bf = hits[bf_rule]
    assert (bf.rule_name, bf.alerts, bf.hits, bf.last_seen, bf.open) == (
        "ssh_bruteforce", 1, 2, T0 + 65 * S, 1)
    assert (bf.matches, bf.last_match) == (2, T0 + 65 * S)
    root = hits[ids["ssh_root_login"][1]]
    assert (root.alerts, root.hits, root.last_seen, root.open) == (1, 1, T0 + 90 * S, 1)
    # a rule that raises no alert of its own: matches only
    accepted = hits[ACCEPTED_LOGIN_RULE]
    assert (accepted.alerts, accepted.hits, accepted.open, accepted.last_seen) == (0, 0, 0, None)
    assert (accepted.matches, accepted.last_match) == (2, T0 + 5 * M)

    triage.set_status(conn, [bf_id], "closed", "alice", reason="benign")
    bf = stats.rule_hits(conn)[bf_rule]
    assert (bf.alerts, bf.hits, bf.open) == (1, 2, 0)


# -- sources ---------------------------------------------------------------------------


def test_source_stats(tmp_path: Path, log: Path) -> None:
    db = tmp_path / "soc.db"
    _ingest(db, log)
    other = tmp_path / "other.log"
    other.write_text("Nov 20 00:09:00 web01 sshd[9]: Accepted password for bob from 192.0.2.11 port 7 ssh2\n"
                     "\x00 not a log line at all\n")
    _ingest(db, other)
    c = open_db(db, create=False)
    try:
        first, second = stats.source_stats(c)
        assert (first.name, first.kind) == (os.path.abspath(log), "file")
        assert (first.lines, first.events, first.unparsed, first.truncated, first.gaps) == (12, 12, 0, 0, 0)
        assert first.bytes == log.stat().st_size
        assert first.last_event_ts == T0 + 8 * M
        assert first.last_ingest is not None and first.last_gap_at is None
        assert second.name == os.path.abspath(other)
        assert (second.lines, second.events, second.unparsed, second.gaps) == (2, 2, 1, 0)
        # an unparsed line is stored at its ingest time, after the parsed one's 0:09
        assert second.last_event_ts is not None and second.last_event_ts > T0 + 9 * M
    finally:
        c.close()
    # the newest gap's reason (written here directly: ingest of a whole file loses nothing)
    raw = sqlite3.connect(db)
    with raw:
        raw.executemany("INSERT INTO gaps (source, at, reason) VALUES (1, ?, ?)",
                        [(T0 + 2 * M, "rotated"), (T0 + 5 * M, "truncated"), (T0 + 3 * M, "old")])
    raw.close()
    c = open_db(db, create=False)
    try:
        first, second = stats.source_stats(c)
        assert (first.last_gap_at, first.last_gap_reason) == (T0 + 5 * M, "truncated")
        assert (second.last_gap_at, second.last_gap_reason) == (None, None)
    finally:
        c.close()


def test_empty_database(tmp_path: Path) -> None:
    c = open_db(tmp_path / "empty.db")
    try:
        assert stats.event_histogram(c, T0, T0 + M, 3) == [0, 0, 0]
        assert stats.alert_histogram(c, T0, T0 + M, 3) == [0, 0, 0]
        assert stats.top_values(c, "host", T0, T0 + M) == []
        assert stats.top_values(c, "host", T0, T0 + M, failures_only=True) == []
        counts = stats.alert_counts(c)
        assert counts.by_severity == {"critical": 0, "high": 0, "medium": 0, "low": 0}
        assert counts.by_status == {"new": 0, "acknowledged": 0, "in_progress": 0, "closed": 0}
        assert stats.rule_hits(c) == {}
        assert stats.source_stats(c) == []
    finally:
        c.close()
