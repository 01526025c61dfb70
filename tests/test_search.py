"""The search language against a real SQLite file."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from soc_tui.model import Event
from soc_tui.store.db import open_db
from soc_tui.store.events import Batch, SourceIds, write_batch
from soc_tui.store.reader import StoreReader
from soc_tui.store.search import SearchError, compile_query

T0 = 1_764_000_000_000_000  # 2025-11-24T16:00:00Z


def ev(i: int, message: str, **kw: object) -> Event:
    return Event(ts=T0 + i * 60_000_000, raw=f"raw {i} {message}", message=message,
                 source_id="/var/log/auth.log", **kw)


EVENTS = [
    ev(0, "Failed password for root from 10.1.2.3 port 22 ssh2", user="root", src_ip="10.1.2.3",
       action="ssh_login", outcome="failure", app="sshd", host="bastion"),
    ev(1, "Failed password for admin from 10.200.0.9 port 22 ssh2", user="admin",
       src_ip="10.200.0.9", action="ssh_login", outcome="failure", app="sshd", host="bastion"),
    ev(2, "Accepted publickey for deploy from 192.0.2.7 port 5000 ssh2", user="deploy",
       src_ip="192.0.2.7", action="ssh_login", outcome="success", app="sshd", host="bastion"),
    ev(3, "GET /.env HTTP/1.1", src_ip="203.0.113.9", http_status=404, http_method="GET",
       url="/.env", app="nginx", host="web-01", action="http_request"),
    ev(4, "GET /index.html HTTP/1.1", src_ip="203.0.113.10", http_status=200, http_method="GET",
       url="/index.html", app="nginx", host="web-01", action="http_request"),
    ev(5, "Failed password for root from 10.1.2.3 port 23 ssh2", user="root", src_ip="10.1.2.3",
       action="ssh_login", outcome="failure", app="sshd", host="bastion", repeat=5),
    ev(6, "session opened for user postgres", user="postgres", app="su", host="db-01"),
]


@pytest.fixture
def reader(tmp_path: Path) -> StoreReader:
    db = tmp_path / "soc.db"
    conn = open_db(db)
    write_batch(conn, SourceIds(conn), Batch(events=list(EVENTS)))
    conn.close()
    r = StoreReader(str(db), create=False)
    yield r
    r.close()


def ids(rows: list[dict]) -> list[int]:
    return [r["id"] for r in rows]


def test_database_file_is_private_and_in_wal_mode(tmp_path: Path) -> None:
    db = tmp_path / "sub" / "soc.db"
    conn = open_db(db)
    assert stat.S_IMODE(os.stat(db).st_mode) == 0o600
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert conn.execute("PRAGMA synchronous").fetchone()[0] == 1  # NORMAL
    assert conn.execute("PRAGMA user_version").fetchone()[0] >= 1
    names = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='index'")}
    for col in ("ts", "src_ip", "user", "host", "action"):
        assert f"idx_events_{col}" in names
    on_events = conn.execute(
        "SELECT count(*) FROM sqlite_master WHERE type='trigger' AND tbl_name = 'events'"
    ).fetchone()
    assert on_events[0] == 0  # FTS is fed by the writer, not by triggers


@pytest.mark.parametrize(
    "query, expected",
    [
        ("", [1, 2, 3, 4, 5, 6, 7]),
        ("failed password", [1, 2, 6]),
        ('"Failed password" root', [1, 6]),
        ('"password for admin"', [2]),
        ("FAILED", [1, 2, 6]),  # FTS5 matching is case-insensitive
        ("pass*", [1, 2, 6]),
        ("user:root", [1, 6]),
        ("user:ro*", [1, 6]),
        ("-user:root", [2, 3, 4, 5, 7]),
        ("NOT user:root app:sshd", [2, 3]),
        ("src_ip:10.0.0.0/8", [1, 2, 6]),
        ("src_ip:10.1.0.0/16", [1, 6]),
        ("src_ip:203.0.113.0/25", [4, 5]),
        ("src_ip:192.0.2.7", [3]),
        ("http_status:>=400", [4]),
        ("http_status:<400", [5]),
        ("status:404", [4]),
        ("app:nginx OR user:postgres", [4, 5, 7]),
        ("password -root", [2]),
        ("(root OR admin) outcome:failure", [1, 2, 6]),
        ("until:2025-11-24T16:01:00", [1, 2]),
        ("since:2025-11-24T16:05:00Z", [6, 7]),
        ("host:web-01 env", [4]),
        ("source:/var/log/auth.log user:deploy", [3]),
        ("source:*auth* user:deploy", [3]),
        ('"192.0.2.7"', [3]),
    ],
)
def test_queries(reader: StoreReader, query: str, expected: list[int]) -> None:
    assert ids(reader.search(query, limit=None)) == expected


def test_since_duration_is_relative_to_now(reader: StoreReader) -> None:
    assert reader.count("since:15m") == 0
    assert reader.count("since:5000w") == sum(e.repeat for e in EVENTS)


def test_count_weighs_repeated_messages(reader: StoreReader) -> None:
    assert reader.count('"Failed password"') == 1 + 1 + 5
    assert reader.count("") == 6 + 5


def test_limit_gives_the_newest_oldest_first(reader: StoreReader) -> None:
    assert ids(reader.search("", limit=3)) == [5, 6, 7]


def test_hostile_text_is_only_ever_a_parameter(reader: StoreReader) -> None:
    for q in ["'; DROP TABLE events; --", '"x"" OR 1=1 --"', "user:\"'); DROP TABLE events;--\"",
              "x') OR 1=1 --"]:
        try:
            assert reader.search(q) == []
        except SearchError:
            pass  # rejected as a query: fine, as long as nothing ran
    assert reader.count("") == 11


@pytest.mark.parametrize(
    "query, position",
    [
        ("foo:bar", 0),
        ("user:root (a", 10),
        ("a OR", 2),
        ('x "abc', 2),
        ("http_status:>=x", 14),
        ("since:yesterday", 6),
        ("AND x", 0),
        ("user:", 5),
        ("a)", 1),
        ("fo*o", 2),
        ("src_ip:10.0.0.0/33", 7),
    ],
)
def test_bad_queries_name_the_position(query: str, position: int) -> None:
    with pytest.raises(SearchError) as err:
        compile_query(query)
    assert err.value.position == position


def test_message_field_and_fts_integrity(reader: StoreReader, tmp_path: Path) -> None:
    assert ids(reader.search('message:"GET /.env HTTP/1.1"', limit=None)) == [4]
    assert ids(reader.search("message:*publickey*", limit=None)) == [3]
    conn = open_db(tmp_path / "soc.db")
    # The external-content index agrees with the rows it indexes.
    conn.execute("INSERT INTO events_fts(events_fts, rank) VALUES ('integrity-check', 1)")
    stored = conn.execute("SELECT count(*) FROM events WHERE message IS NULL").fetchone()[0]
    assert stored == len(EVENTS)  # every message here is the tail of its raw line
