"""Schema version 2: coded columns, raw blocks, the FTS view, migration from v1."""

from __future__ import annotations

import json
import random
import sqlite3
from pathlib import Path

import pytest

from soc_tui.model import Event
from soc_tui.store import db as store_db
from soc_tui.store.blocks import BLOCK_EVENTS
from soc_tui.store.db import StoreConnection, StoreError, open_db
from soc_tui.store.events import Batch, Rows, SourceIds, write_batch
from soc_tui.store.reader import StoreReader
from soc_tui.store.search import compile_query

T0 = 1_764_000_000_000_000
SOURCE = "/var/log/auth.log"


def event(i: int, **kw: object) -> Event:
    fields: dict[str, object] = {
        "ts": T0 + i * 1_000_000,
        "raw": f"Nov 24 16:00:{i % 60:02d} host-{i % 3} sshd[{i}]: Failed password for u{i % 7}"
               f" from 10.0.{i % 5}.{i % 250} port {1000 + i} ssh2",
        "source_id": SOURCE,
        "host": f"host-{i % 3}", "app": "sshd", "pid": i, "action": "ssh_login",
        "outcome": "failure", "user": f"u{i % 7}", "src_ip": f"10.0.{i % 5}.{i % 250}",
        "src_port": 1000 + i, "extra": {"n": i} if i % 4 == 0 else None,
    }
    fields.update(kw)
    if "message" not in kw:
        fields["message"] = str(fields["raw"]).split(": ", 1)[1]
    return Event(**fields)  # type: ignore[arg-type]


def expected(ev: Event) -> dict[str, object]:
    """The dict StoreReader returns for a stored Event."""
    return {
        "id": ev.id, "ingested_at": ev.ingested_at, "ts": ev.ts, "host": ev.host, "app": ev.app,
        "pid": ev.pid, "level": ev.level, "action": ev.action, "outcome": ev.outcome,
        "user": ev.user, "target_user": ev.target_user, "src_ip": ev.src_ip,
        "src_port": ev.src_port, "http_method": ev.http_method, "url": ev.url,
        "http_status": ev.http_status, "bytes": ev.bytes, "user_agent": ev.user_agent,
        "referrer": ev.referrer, "message": ev.message if ev.message is not None else ev.raw,
        "raw": ev.raw, "repeat": ev.repeat, "flags": ev.flags, "extra": ev.extra,
        "source_id": ev.source_id,
    }


def write(db: Path, batches: list[list[Event]]) -> None:
    conn = open_db(db, writer=True)
    sources = SourceIds(conn)
    for events in batches:
        write_batch(conn, sources, Batch(events=events))
    conn.close()


def read_all(db: Path) -> list[dict[str, object]]:
    reader = StoreReader(str(db), create=False)
    try:
        return reader.search("", limit=None)
    finally:
        reader.close()


def fts_integrity_check(conn: sqlite3.Connection) -> None:
    conn.execute("INSERT INTO events_fts(events_fts, rank) VALUES ('integrity-check', 1)")


def test_tiny_batches_fill_whole_blocks_and_read_back_exactly(tmp_path: Path) -> None:
    db = tmp_path / "soc.db"
    events = [event(i) for i in range(2 * BLOCK_EVENTS + 88)]
    rng = random.Random(3)
    batches: list[list[Event]] = []
    i = 0
    while i < len(events):  # mostly single events, like a live tail, some bigger
        n = 1 if rng.random() < 0.9 else rng.randint(2, 40)
        batches.append(events[i:i + n])
        i += n
    write(db, batches)
    conn = open_db(db)
    blocks = conn.execute("SELECT id, n FROM raw_blocks ORDER BY id").fetchall()
    assert blocks == [(1, BLOCK_EVENTS), (BLOCK_EVENTS + 1, BLOCK_EVENTS), (2 * BLOCK_EVENTS + 1, 88)]
    fts_integrity_check(conn)
    conn.close()
    # Every field, ingested_at included: each event keeps the time its own
    # batch was committed (write_batch sets it on the Event).
    assert read_all(db) == [expected(ev) for ev in events]


def test_a_big_batch_tops_up_the_newest_block_first(tmp_path: Path) -> None:
    db = tmp_path / "soc.db"
    events = [event(i) for i in range(1000)]
    write(db, [events[:10], events[10:]])
    conn = open_db(db)
    sizes = [n for (n,) in conn.execute("SELECT n FROM raw_blocks ORDER BY id")]
    conn.close()
    assert sizes == [BLOCK_EVENTS] * 3 + [1000 - 3 * BLOCK_EVENTS]
    assert read_all(db) == [expected(ev) for ev in events]


@pytest.mark.parametrize(
    "raw",
    [
        "NUL \x00 inside",
        "two\nlines\r\nand a tab\t",
        "invalid utf-8 kept as \ufffd\ufffd replacement chars",
        'quotes " and \\ backslashes \\" and {"json": [1]}',
        "unicode: \u2028 \u00e9t\u00e9 \U0001f510 \u202e",
        "",
    ],
)
def test_any_raw_text_round_trips(tmp_path: Path, raw: str) -> None:
    db = tmp_path / "soc.db"
    ev = Event(ts=T0, raw=raw, source_id=SOURCE, message=None, extra={"raw": raw})
    plain = event(1)
    write(db, [[ev, plain]])
    assert read_all(db) == [expected(ev), expected(plain)]
    conn = open_db(db)
    fts_integrity_check(conn)


def test_an_event_with_every_field_round_trips(tmp_path: Path) -> None:
    db = tmp_path / "soc.db"
    ev = Event(
        ts=T0, raw='203.0.113.9 - bob [24/Nov/2025:16:00:00 +0000] "GET /x?a=1 HTTP/1.1" 404 12'
        ' "https://ref/" "curl/8"', source_id="/var/log/nginx/access.log", host="web-01",
        app="nginx", pid=7, level="warning", action="http_request", outcome="failure",
        user="bob", target_user="root", src_ip="203.0.113.9", src_port=4444, http_method="GET",
        url="/x?a=1", http_status=404, bytes=12, user_agent="curl/8", referrer="https://ref/",
        message="GET /x?a=1 HTTP/1.1", repeat=3, flags=4, extra={"protocol": "HTTP/1.1"},
    )
    write(db, [[ev]])
    assert read_all(db) == [expected(ev)]


def test_terms_are_coded_and_new_values_reach_an_open_reader(tmp_path: Path) -> None:
    db = tmp_path / "soc.db"
    write(db, [[event(i) for i in range(20)]])
    reader = StoreReader(str(db), create=False)
    try:
        assert {e["host"] for e in reader.search("", limit=None)} == {"host-0", "host-1", "host-2"}
        late = event(20, host="late-host", user="late-user", app="late-app")
        write(db, [[late]])
        # The reader's term cache has never seen these codes: it re-reads terms.
        assert reader.search("host:late-host", limit=None) == [expected(late)]
        assert reader.search("user:late-*", limit=None)[0]["app"] == "late-app"
        assert reader.count("-host:late-host") == 20
    finally:
        reader.close()
    conn = open_db(db)
    assert conn.execute("SELECT DISTINCT typeof(host) FROM events").fetchall() == [("integer",)]
    values = [v for (v,) in conn.execute("SELECT value FROM terms")]
    assert len(values) == len(set(values))
    assert {"late-host", "late-user", "late-app", "sshd", "ssh_login"} <= set(values)


def test_a_rolled_back_batch_leaves_no_stale_term_codes(tmp_path: Path) -> None:
    db = tmp_path / "soc.db"
    conn = open_db(db, writer=True)
    sources = SourceIds(conn)
    write_batch(conn, sources, Batch(events=[event(0)]))
    fresh = event(1, host="fresh-host")
    broken = Rows(SOURCE, [], count=1)  # claims a row it does not have
    with pytest.raises(StoreError):
        write_batch(conn, sources, Batch(events=[fresh], parts=[broken]))
    assert conn.execute("SELECT count(*) FROM terms WHERE value = 'fresh-host'").fetchone()[0] == 0
    write_batch(conn, sources, Batch(events=[fresh]))
    conn.close()
    assert [e["host"] for e in read_all(db)] == ["host-0", "fresh-host"]


def test_fts_view_supports_delete_and_integrity_check(tmp_path: Path) -> None:
    db = tmp_path / "soc.db"
    write(db, [[event(i) for i in range(300)]])
    conn = open_db(db)
    fts_integrity_check(conn)
    # What retention will do: take the rows out of the index with the text the
    # external-content view gives back, then delete them.
    conn.execute("BEGIN")
    conn.execute(
        "INSERT INTO events_fts(events_fts, rowid, message)"
        " SELECT 'delete', id, message FROM events_text WHERE id <= 10"
    )
    conn.execute("DELETE FROM events WHERE id <= 10")
    conn.execute("COMMIT")
    fts_integrity_check(conn)
    conn.close()
    reader = StoreReader(str(db), create=False)
    assert reader.count('"Failed password"') == 290
    assert reader.search('raw:"*port 1005 *"', limit=None) == []
    assert [e["id"] for e in reader.search('raw:"*port 1011 *"', limit=None)] == [12]
    reader.close()


def test_coded_and_partial_indexes_are_used(tmp_path: Path) -> None:
    conn = open_db(tmp_path / "soc.db")
    for query, index in (("user:root", "idx_events_user"), ("host:web*", "idx_events_host"),
                         ("src_ip:10.1.0.0/16", "idx_events_src_ip"),
                         ("src_ip:192.0.2.7", "idx_events_src_ip"),
                         ("action:ssh_login", "idx_events_action")):
        q = compile_query(query)
        plan = " ".join(r[3] for r in conn.execute(
            f"EXPLAIN QUERY PLAN SELECT e.id FROM events e WHERE {q.where}", q.params))
        assert index in plan, (query, plan)


# -- migration from v1 ----------------------------------------------------------

V1_COLUMNS = (
    "id", "ts", "ingested_at", "source", "host", "app", "pid", "level", "action", "outcome",
    "user", "target_user", "src_ip", "src_port", "http_method", "url", "http_status", "bytes",
    "user_agent", "referrer", "message", "raw", "msg_off", "repeat", "flags", "extra",
)


def v1_database(path: Path, rows: list[dict[str, object]]) -> None:
    """A database as schema version 1 left it, filled with plain SQL."""
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA auto_vacuum=INCREMENTAL")  # as open_db makes every file
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("BEGIN")
    store_db._v1(conn)
    conn.execute("PRAGMA user_version=1")
    conn.execute("INSERT INTO sources (id, name) VALUES (1, '/var/log/auth.log'), (2, '/var/log/web.log')")
    for row in rows:
        values = [row.get(c) for c in V1_COLUMNS]
        conn.execute(f"INSERT INTO events ({', '.join(V1_COLUMNS)}) VALUES"
                     f" ({', '.join('?' * len(V1_COLUMNS))})", values)
    conn.execute(
        "INSERT INTO events_fts (rowid, message)"
        " SELECT id, coalesce(message, substr(raw, msg_off + 1)) FROM events"
    )
    conn.execute("COMMIT")
    conn.close()


def test_migration_from_v1_keeps_every_event(tmp_path: Path) -> None:
    rows: list[dict[str, object]] = []
    for i in range(1, 600):
        raw = f"Nov 24 16:00:00 bastion sshd[{i}]: Failed password for root from 10.0.0.{i % 250} port {i}"
        rows.append({
            "id": i, "ts": T0 + i, "ingested_at": T0 + 1000 + i // 100, "source": 1,
            "host": "bastion", "app": "sshd", "pid": i, "action": "ssh_login",
            "outcome": "failure", "user": "root", "src_ip": f"10.0.0.{i % 250}", "src_port": i,
            "message": None, "raw": raw, "msg_off": raw.index("Failed"), "repeat": 1, "flags": 0,
            "extra": json.dumps({"i": i}) if i % 3 == 0 else None,
        })
    # A gap in the ids, another source, a message that is not raw's tail, a NUL.
    web_raw = '203.0.113.9 - - [24/Nov/2025:16:00:00 +0000] "GET /.env HTTP/1.1" 404 0 "-" "x"'
    rows.append({
        "id": 700, "ts": T0 + 700, "ingested_at": T0 + 2000, "source": 2, "app": "nginx",
        "action": "http_request", "src_ip": "203.0.113.9", "http_method": "GET", "url": "/.env",
        "http_status": 404, "bytes": 0, "user_agent": "x", "message": "GET /.env HTTP/1.1",
        "raw": web_raw, "repeat": 1, "flags": 0, "extra": '{"protocol":"HTTP/1.1"}',
    })
    rows.append({"id": 701, "ts": T0 + 701, "ingested_at": T0 + 2000, "source": 2,
                 "message": "a\x00b", "raw": "a\x00b", "repeat": 2, "flags": 1})
    db = tmp_path / "v1.db"
    v1_database(db, rows)

    conn = open_db(db)
    assert isinstance(conn, StoreConnection)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == store_db.SCHEMA_VERSION >= 2
    tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master")}
    assert "events_v1" not in tables and {"terms", "raw_blocks"} <= tables
    blocks = conn.execute("SELECT id, n FROM raw_blocks ORDER BY id").fetchall()
    assert blocks == [(1, 256), (257, 256), (513, 87), (700, 2)]
    assert conn.execute("PRAGMA freelist_count").fetchone()[0] == 0  # the v1 pages went back
    fts_integrity_check(conn)
    conn.close()

    names = {1: "/var/log/auth.log", 2: "/var/log/web.log"}
    want = []
    for row in rows:
        d = {c: row.get(c) for c in V1_COLUMNS if c not in ("msg_off", "source")}
        if d["message"] is None:
            d["message"] = str(row["raw"])[int(row["msg_off"] or 0):]
        d["extra"] = json.loads(str(row["extra"])) if row.get("extra") else None
        d["source_id"] = names[int(row["source"])]  # type: ignore[arg-type]
        want.append(d)
    got = read_all(db)
    assert [e["id"] for e in got] == [r["id"] for r in rows]
    assert got == want
    reader = StoreReader(str(db), create=False)
    try:
        assert [e["id"] for e in reader.search("src_ip:10.0.0.7", limit=None)] == [7, 257, 507]
        assert [e["id"] for e in reader.search('"GET /.env"', limit=None)] == [700]
        assert reader.count('"Failed password" port') == 599
        assert [e["id"] for e in reader.search("message:*.env*", limit=None)] == [700]
    finally:
        reader.close()


@pytest.mark.parametrize("extra", [
    {"method": "password", "invalid_user": True, "port": 22},
    {"sd": {"origin@1": {"ip": "10.0.0.1", "q": 'say "hi"'}}, "list": [1, 2.5, None, False]},
    {"text": "é \u2028 \x00 \x1b[31m \ud800"}, {1: "an int key"}, {"big": 10**30, "nan": float("nan")},
])
def test_extra_is_encoded_exactly_as_json_dumps(extra: dict) -> None:
    from soc_tui.store.events import dump_extra

    assert dump_extra(extra) == json.dumps(extra, ensure_ascii=False, separators=(",", ":"))


def test_the_alert_queue_is_read_in_order_from_its_index(tmp_path: Path) -> None:
    """The queue (all alerts, the open ones, one rule's) is read by walking
    idx_alerts_queue, without sorting every alert (refreshed every 2 s)."""
    from soc_tui.store.alerts import queue_ids_query

    conn = open_db(tmp_path / "soc.db")
    for status, rule in ((None, None), ("open", None), (None, "ssh_bruteforce")):
        sql, params = queue_ids_query(status=status, rule=rule, limit=2000)
        plan = " ".join(r[3] for r in conn.execute("EXPLAIN QUERY PLAN " + sql, params))
        assert "idx_alerts_queue" in plan and "TEMP B-TREE" not in plan, (status, rule, plan)
