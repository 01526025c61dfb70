"""The TUI driven with Pilot on a real database: each screen, each triage action
(asserted on the database afterwards), search, live updates, notifications,
and hostile log text shown inert everywhere."""

from __future__ import annotations

import gc
import re
import sqlite3
import threading
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from soc_tui.cli import _load_ruleset, main, shipped_rules_dir
from soc_tui.model import now_us
from soc_tui.store import triage
from soc_tui.store.db import open_db
from soc_tui.ui.app import SocApp
from soc_tui.ui.context import UiContext, UiOptions
from tests import tui_data

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\ud800-\udfff]")


@pytest.fixture(scope="module")
def seeded_master(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    tmp = tmp_path_factory.mktemp("tui-seed")
    import os

    key = tmp / "chain.key"
    old = os.environ.get("SOC_TUI_KEY_FILE")
    os.environ["SOC_TUI_KEY_FILE"] = str(key)
    try:
        return tui_data.build(tmp), key
    finally:
        if old is None:
            os.environ.pop("SOC_TUI_KEY_FILE", None)
        else:
            os.environ["SOC_TUI_KEY_FILE"] = old


@pytest.fixture
def seeded(seeded_master: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private copy of the seeded database (and its chain key)."""
    src, key = seeded_master
    db = tmp_path / "soc.db"
    conn = sqlite3.connect(src)
    dst = sqlite3.connect(db)
    conn.backup(dst)
    conn.close()
    dst.close()
    monkeypatch.setenv("SOC_TUI_KEY_FILE", str(key))
    return db


_RULESET: Any = None


def make_app(db: Path, start: str = "overview", *, analyst: str = "ann", bell: bool = True,
             rules: Path | None = None) -> SocApp:
    """The app on `db`, with the shipped rules or those in `rules`."""
    global _RULESET
    if rules is not None:
        rule_dirs, ruleset = [str(rules)], _load_ruleset([str(rules)])
    else:
        if _RULESET is None:
            _RULESET = _load_ruleset([shipped_rules_dir()])
        rule_dirs, ruleset = [shipped_rules_dir()], _RULESET
    ctx = UiContext.open(str(db), analyst, rule_dirs=rule_dirs, ruleset=ruleset,
                         clock=lambda: tui_data.CLOCK, options=UiOptions(bell=bell))
    return SocApp(ctx, start=start)


async def settle(pilot: Any, rounds: int = 2) -> None:
    """Let workers finish and the screen catch up (tables size their columns when idle)."""
    for _ in range(rounds):
        await pilot.pause()
        await pilot.app.workers.wait_for_complete()
    await pilot.pause(0.05)
    await pilot.pause(0.05)


async def stable_text(pilot: Any, timeout: float = 5.0) -> str:
    """The screen's text once two looks 0.1 s apart agree (tables size their
    columns when the app is idle, which a loaded machine reaches later)."""
    last = screen_text(pilot.app)
    waited = 0.0
    while waited < timeout:
        await pilot.pause(0.1)
        waited += 0.1
        now = screen_text(pilot.app)
        if now == last:
            return now
        last = now
    return last


async def wait_text(pilot: Any, needle: str, timeout: float = 5.0) -> str:
    """The screen's text once it shows `needle` (or after `timeout`)."""
    waited = 0.0
    while True:
        text = screen_text(pilot.app)
        if needle in text or waited >= timeout:
            return text
        await pilot.pause(0.1)
        waited += 0.1


def alert_id(db: Path, rule_name: str) -> int:
    """Alert ids follow the order the rule worker commits them: look them up."""
    return db_query(db, "SELECT id FROM alerts WHERE rule_name = ?", (rule_name,))[0][0]


def screen_text(app: SocApp) -> str:
    strips = app.screen._compositor.render_strips()
    return "\n".join("".join(seg.text for seg in strip) for strip in strips)


def db_query(db: Path, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    conn = sqlite3.connect(db)
    try:
        return conn.execute(sql, params).fetchall()
    finally:
        conn.close()


def alert_row(db: Path, alert_id: int) -> dict[str, Any]:
    conn = sqlite3.connect(db)
    conn.row_factory = sqlite3.Row
    try:
        return dict(conn.execute("SELECT * FROM alerts WHERE id = ?", (alert_id,)).fetchone())
    finally:
        conn.close()


def cursor_alert_id(app: SocApp) -> int:
    table = app.screen.query_one("#alert-table")
    return int(table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value)


# --- screens -----------------------------------------------------------------------------


async def test_every_screen_renders_at_80x24(seeded: Path) -> None:
    app = make_app(seeded)
    async with app.run_test(size=(80, 24)) as pilot:
        expected = {"1": "open by severity", "2": "● live", "3": "ssh_success_after_bruteforce",
                    "4": "open incidents", "5": "ssh_bruteforce", "6": "logs/auth.log"}
        for key, text in expected.items():
            await pilot.press(key)
            await settle(pilot)
            shown = await wait_text(pilot, text)
            assert text in shown, (key, shown)
            assert not CONTROL.search(shown), key
        assert app.is_running


async def test_alert_queue_is_sorted_by_severity_then_time(seeded: Path) -> None:
    app = make_app(seeded, "alerts")
    async with app.run_test(size=(120, 36)) as pilot:
        await settle(pilot)
        screen: Any = app.screen
        sevs = [a.severity for a in screen.alerts]
        rank = ["critical", "high", "medium", "low"]
        assert sevs == sorted(sevs, key=rank.index)
        assert sevs[0] == "critical" and cursor_alert_id(app) == screen.alerts[0].id


async def test_ack_start_close_reopen_assign_from_keys(seeded: Path) -> None:
    app = make_app(seeded, "alerts")
    async with app.run_test(size=(120, 36)) as pilot:
        await settle(pilot)
        aid = cursor_alert_id(app)
        await pilot.press("a")
        await settle(pilot)
        assert alert_row(seeded, aid)["status"] == "acknowledged"
        await pilot.press("s")
        await settle(pilot)
        assert alert_row(seeded, aid)["status"] == "in_progress"
        await pilot.press("c")  # the reason dialog: choose false positive
        await settle(pilot)
        assert type(app.screen).__name__ == "CloseModal"
        await pilot.press("down", "down", "enter", "ctrl+s")
        await settle(pilot)
        row = alert_row(seeded, aid)
        assert (row["status"], row["close_reason"]) == ("closed", "false_positive")
        # The queue shows open alerts: the closed one left it.
        assert aid not in {a.id for a in app.screen.alerts}
        await pilot.press("f", "f", "f", "f")  # status filter: open -> new -> ack -> in_progress -> closed
        await settle(pilot)
        assert app.screen.filters.status == "closed" and cursor_alert_id(app) == aid
        await pilot.press("o")  # reopen
        await settle(pilot)
        assert alert_row(seeded, aid)["status"] == "acknowledged"
        await pilot.press("f", "f")  # closed -> all
        await settle(pilot)
        table = app.screen.query_one("#alert-table")
        table.move_cursor(row=[a.id for a in app.screen.alerts].index(aid))
        await pilot.press("m")  # take it
        await settle(pilot)
        assert alert_row(seeded, aid)["assignee"] == "ann"
        await pilot.press("A")
        await settle(pilot)
        app.screen.query_one("Input").value = "bob"
        await pilot.press("enter")
        await settle(pilot)
        assert alert_row(seeded, aid)["assignee"] == "bob"
    actions = [(a, actor) for a, actor in db_query(
        seeded, "SELECT action, actor FROM audit WHERE object_type = 'alert' AND object_id = ? ORDER BY id",
        (str(aid),))]
    assert actions == [("ack", "ann"), ("start", "ann"), ("close", "ann"), ("reopen", "ann"),
                       ("assign", "ann"), ("assign", "ann")]


async def test_invalid_transition_is_refused_with_a_toast(seeded: Path) -> None:
    crit = alert_id(seeded, "ssh_success_after_bruteforce")
    conn = open_db(seeded)
    triage.set_status(conn, [crit], "closed", "someone", "benign")
    conn.close()
    app = make_app(seeded, "alerts")
    async with app.run_test(size=(120, 36)) as pilot:
        await settle(pilot)
        await pilot.press("f", "f", "f", "f")  # closed alerts
        await settle(pilot)
        assert cursor_alert_id(app) == crit
        await pilot.press("a")
        await settle(pilot)
        assert any("cannot become acknowledged" in str(n.message) for n in app._notifications)
        assert alert_row(seeded, crit)["status"] == "closed"


async def test_bulk_select_and_acknowledge(seeded: Path) -> None:
    app = make_app(seeded, "alerts")
    async with app.run_test(size=(120, 36)) as pilot:
        await settle(pilot)
        ids = [a.id for a in app.screen.alerts]
        await pilot.press("space", "space")  # selects the first two (the cursor moves down)
        assert app.screen.selected == set(ids[:2])
        await pilot.press("a")
        await settle(pilot)
    statuses = dict(db_query(seeded, "SELECT id, status FROM alerts"))
    assert [statuses[i] for i in ids[:2]] == ["acknowledged"] * 2
    assert all(statuses[i] == "new" for i in ids[2:])


async def test_select_all_then_close_as_duplicate(seeded: Path) -> None:
    app = make_app(seeded, "alerts")
    async with app.run_test(size=(120, 36)) as pilot:
        await settle(pilot)
        await pilot.press("asterisk")
        assert len(app.screen.selected) == len(app.screen.alerts) == 11
        await pilot.press("c")
        await settle(pilot)
        await pilot.press("down", "down", "down", "enter", "ctrl+s")
        await settle(pilot)
    assert db_query(seeded, "SELECT DISTINCT status, close_reason FROM alerts") == [("closed", "duplicate")]


async def test_suppress_from_an_alert(seeded: Path) -> None:
    app = make_app(seeded, "alerts")
    async with app.run_test(size=(120, 36)) as pilot:
        await settle(pilot)
        alert = app.screen.alerts[0]
        await pilot.press("S")
        await settle(pilot)
        assert type(app.screen).__name__ == "SuppressModal"
        await pilot.press(*"pentest", "space", *"window")
        await pilot.press("ctrl+s")
        await settle(pilot)
    rows = db_query(seeded, "SELECT rule, fields, reason, author, expires_at FROM suppressions")
    assert len(rows) == 1
    rule, fields, reason, author, expires = rows[0]
    assert rule == alert.rule_name and reason == "pentest window" and author == "ann"
    assert f'"src_ip": "{alert.src_ip}"' in fields
    assert abs(expires - (now_us() + 86400 * 1_000_000)) < 60_000_000  # the default: 24 hours


async def test_new_incident_from_alerts_and_a_note(seeded: Path) -> None:
    app = make_app(seeded, "alerts")
    async with app.run_test(size=(120, 36)) as pilot:
        await settle(pilot)
        aid = cursor_alert_id(app)
        await pilot.press("i")
        await settle(pilot)
        assert type(app.screen).__name__ == "IncidentModal"
        await pilot.press("enter")  # "+ new incident…": the title field, prefilled
        app.screen.query_one("#title").value = "Break-in on bastion"
        await pilot.press("enter")
        await settle(pilot)
        incidents = db_query(seeded, "SELECT id, title FROM incidents")
        assert [t for _, t in incidents] == ["Break-in on bastion"]
        assert alert_row(seeded, aid)["incident_id"] == incidents[0][0]
        await pilot.press("n")
        await settle(pilot)
        app.screen.query_one("TextArea").text = "root came in from **198.51.100.7** [bold]x[/]"
        await pilot.press("ctrl+s")
        await settle(pilot)
    notes = db_query(seeded, "SELECT object_type, object_id, author, body FROM notes")
    assert notes == [("alert", aid, "ann", "root came in from **198.51.100.7** [bold]x[/]")]


async def test_grouping_by_src_ip_and_drill_down(seeded: Path) -> None:
    app = make_app(seeded, "alerts")
    async with app.run_test(size=(120, 36)) as pilot:
        await settle(pilot)
        await pilot.press("g", "g")  # none -> rule -> src_ip
        await settle(pilot)
        screen: Any = app.screen
        assert screen.filters.group == "src_ip"
        keys = [k for k, _ in screen.groups]
        assert set(keys) == {"198.51.100.7", "203.0.113.50", ""}
        assert keys[0] == "198.51.100.7"  # the critical one first
        await pilot.press("a")  # acting on a group row: every alert of the group
        await settle(pilot)
        acked = {r[0] for r in db_query(seeded, "SELECT src_ip FROM alerts WHERE status = 'acknowledged'")}
        assert acked == {"198.51.100.7"}
        table = screen.query_one("#alert-table")
        table.move_cursor(row=[k for k, _ in screen.groups].index("203.0.113.50"))
        await pilot.press("enter")  # open the 203.0.113.50 group
        await settle(pilot)
        assert screen.filters.value == ("src_ip", "203.0.113.50")
        assert {a.src_ip for a in screen.alerts} == {"203.0.113.50"} and len(screen.alerts) == 5


async def test_alert_detail_shows_evidence_and_events_around(seeded: Path) -> None:
    app = make_app(seeded, "alerts")
    async with app.run_test(size=(120, 36)) as pilot:
        await settle(pilot)
        bf = next(a for a in app.screen.alerts if a.rule_name == "ssh_bruteforce")
        app.screen.query_one("#alert-table").move_cursor(row=app.screen.alerts.index(bf))
        await pilot.press("enter")
        await settle(pilot)
        assert type(app.screen).__name__ == "AlertDetailScreen"
        evidence = app.screen.query_one("#evidence")
        stored = db_query(seeded, "SELECT count(*) FROM alert_events WHERE alert_id = ?", (bf.id,))[0][0]
        assert evidence.row_count == stored >= 5
        assert "Failed password for root from 198.51.100.7" in await wait_text(pilot, "Failed password for root from 198.51.100.7")
        evidence.move_cursor(row=stored - 1)  # the last failure: what came after it too
        await pilot.press("x")
        await settle(pilot)
        around = [int(r.key.value) for r in evidence.ordered_rows]  # as shown
        ids = {r[0] for r in db_query(seeded, "SELECT event_id FROM alert_events WHERE alert_id = ?", (bf.id,))}
        assert set(around) - ids and around == sorted(around)  # neighbours on the same host
        assert "Accepted password for root" in await wait_text(pilot, "Accepted password for root")
        assert "events around" in await wait_text(pilot, "events around")
        await pilot.press("escape")
        await settle(pilot)
        assert evidence.row_count == stored
        await pilot.press("a")  # triage keys work here too
        await settle(pilot)
        assert alert_row(seeded, bf.id)["status"] == "acknowledged"
        await pilot.press("escape")
        await settle(pilot)
        assert type(app.screen).__name__ == "AlertsScreen"
        assert app.screen.by_id[bf.id].status == "acknowledged"  # the queue read it again


async def test_incident_screen_notes_versions_status_owner_export(seeded: Path, tmp_path: Path) -> None:
    conn = open_db(seeded)
    iid = triage.create_incident(conn, "Web scan", "zoe", alert_ids=[alert_id(seeded, "web_sqli")])
    conn.close()
    app = make_app(seeded, "incidents")
    async with app.run_test(size=(120, 36)) as pilot:
        await settle(pilot)
        assert "Web scan" in await wait_text(pilot, "Web scan")
        await pilot.press("n")  # a second incident from here
        await settle(pilot)
        app.screen.query_one("Input").value = "Second"
        await pilot.press("enter")
        await settle(pilot)
        assert [t for (t,) in db_query(seeded, "SELECT title FROM incidents ORDER BY id")] == ["Web scan", "Second"]
        table = app.screen.query_one("#incident-table")
        keys = [str(r.key.value) for r in table.ordered_rows]  # as shown
        table.move_cursor(row=keys.index(str(iid)))
        await pilot.press("enter")
        await settle(pilot)
        assert type(app.screen).__name__ == "IncidentDetailScreen"
        text = await wait_text(pilot, "web_sqli")
        assert "web_sqli" in text and "alert" in text
        await pilot.press("n")
        await settle(pilot)
        app.screen.query_one("TextArea").text = "first thoughts"
        await pilot.press("ctrl+s")
        await settle(pilot)
        await pilot.press("e")
        await settle(pilot)
        assert app.screen.query_one("TextArea").text == "first thoughts"
        app.screen.query_one("TextArea").text = "second thoughts"
        await pilot.press("ctrl+s")
        await settle(pilot)
        await pilot.press("s")  # open -> contained
        await settle(pilot)
        await pilot.press("o")
        await settle(pilot)
        app.screen.query_one("Input").value = "carol"
        await pilot.press("enter")
        await settle(pilot)
        assert "second thoughts" in await wait_text(pilot, "second thoughts") and "contained" in await wait_text(pilot, "contained")
        out = tmp_path / "report.md"
        await pilot.press("x")
        await settle(pilot)
        app.screen.query_one("Input").value = str(out)
        await pilot.press("enter")
        await settle(pilot, 4)
    assert db_query(seeded, "SELECT status, owner FROM incidents WHERE id = ?", (iid,)) == [("contained", "carol")]
    versions = db_query(seeded, "SELECT version, body FROM notes WHERE object_type = 'incident' ORDER BY id")
    assert versions == [(1, "first thoughts"), (2, "second thoughts")]
    report = out.read_text()
    assert "Web scan" in report and "second thoughts" in report and "verify: OK" in report


async def test_rules_screen_disable_and_backtest(seeded: Path) -> None:
    app = make_app(seeded, "rules")
    async with app.run_test(size=(120, 36)) as pilot:
        await settle(pilot)
        screen: Any = app.screen
        states = {r.name: r.state for r in screen.rows}
        assert states["ssh_bruteforce"] == "active"
        assert states["firewall_drop_burst"] in ("active", "inactive")
        names = [r.name for r in screen.rows]
        screen.query_one("#rule-table").move_cursor(row=names.index("web_sqli"))
        await pilot.press("e")
        await settle(pilot)
        assert {r.name: r.state for r in screen.rows}["web_sqli"] == "disabled"
        assert db_query(seeded, "SELECT enabled FROM rule_settings") == [(0,)]
        assert db_query(seeded, "SELECT actor FROM audit WHERE action = 'disable' AND object_type = 'rule'") == [("ann",)]
        names = [r.name for r in screen.rows]
        screen.query_one("#rule-table").move_cursor(row=names.index("ssh_bruteforce"))
        await pilot.press("b")
        await settle(pilot)
        app.screen.query_one("Input").value = "3650d"
        await pilot.press("enter")
        await settle(pilot, 4)
        assert type(app.screen).__name__ == "BacktestScreen"
        assert app.screen.query_one("#bt-table").row_count >= 1
        assert "nothing was stored" in await wait_text(pilot, "nothing was stored")
    assert db_query(seeded, "SELECT count(*) FROM alerts")[0][0] == 11  # the backtest stored nothing


async def test_rules_screen_shows_inactive_and_failed_rules(seeded: Path, tmp_path: Path) -> None:
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "broken.yml").write_text("title: broken\nname: broken_rule\ndetection: {sel: {a|nosuch: 1}, condition: sel}\n"
                                      "logsource: {product: linux}\n")
    (rules / "win.yml").write_text("title: windows only\nname: win_rule\nlogsource: {product: windows}\n"
                                   "detection: {sel: {EventID: 4625}, condition: sel}\nlevel: low\n")
    app = make_app(seeded, "rules", rules=rules)
    async with app.run_test(size=(120, 36)) as pilot:
        await settle(pilot)
        rows = {r.name: r for r in app.screen.rows}
        assert rows["win_rule"].state == "inactive" and "logsource" in rows["win_rule"].why
        failed = [r for r in rows.values() if r.state == "failed"]
        assert failed and "nosuch" in failed[0].why
        assert "failed" in await wait_text(pilot, "failed")


async def test_rules_screen_reads_new_logsources_in_the_background(
        seeded: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The logsources of events stored while another screen is shown are
    read in the background (a visit then reads only the last few seconds):
    a rule whose logsource had no event turns active without a visit."""
    from soc_tui.ui.screens.rules import RulesScreen

    monkeypatch.setattr(RulesScreen, "shapes_every", 0.2)
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "ftp.yml").write_text("title: ftp login\nname: ftp_rule\nlogsource: {product: linux, service: vsftpd}\n"
                                   "detection: {sel: {app: vsftpd}, condition: sel}\nlevel: low\n")
    app = make_app(seeded, "rules", rules=rules)
    async with app.run_test(size=(120, 36)) as pilot:
        await settle(pilot)
        screen: Any = app.screen
        assert {r.name: r.state for r in screen.rows}["ftp_rule"] == "inactive"
        await pilot.press("3")
        await settle(pilot)
        log = tmp_path / "ftp.log"
        log.write_text("Nov 20 00:52:00 bastion vsftpd[4242]: [ftp] OK LOGIN: Client \"192.0.2.5\"\n")
        codes: list[int] = []
        thread = threading.Thread(target=lambda: codes.append(main([
            "--db", str(seeded), "ingest", "--tz", "UTC", "--year", "2026", "--no-progress",
            "--no-rules", str(log)])))
        thread.start()
        while thread.is_alive():
            await pilot.pause(0.05)
        assert codes == [0]
        top = app.ctx.reader.last_event_id()
        for _ in range(100):  # a loaded CI: up to 10 s
            await pilot.pause(0.1)
            if screen._shapes_upto == top:
                break
        assert screen._shapes_upto == top and app.screen is not screen  # read without a visit
        assert ("vsftpd", False, False) in screen._shapes
        await pilot.press("5")
        await settle(pilot)
        assert {r.name: r.state for r in screen.rows}["ftp_rule"] == "active"


async def test_sources_screen(seeded: Path) -> None:
    app = make_app(seeded, "sources")
    async with app.run_test(size=(120, 36)) as pilot:
        await settle(pilot)
        rows = {Path(r.name).name: r for r in app.screen.rows}
        assert set(rows) == {"auth.log", "access.log"}
        assert rows["access.log"].lines == 34 and rows["auth.log"].unparsed == 0
        assert "attached: another process collects" in await wait_text(pilot, "attached: another process collects")


# --- events --------------------------------------------------------------------------


async def test_search_results_errors_and_pivots(seeded: Path) -> None:
    app = make_app(seeded, "events")
    async with app.run_test(size=(120, 36)) as pilot:
        await settle(pilot)
        screen: Any = app.screen
        assert len(screen.stream) == 61  # the newest stored events, before anything new comes
        await pilot.press("slash", *"Accepted", "enter")
        await settle(pilot)
        assert screen.query_text == "Accepted" and screen.matches == 7
        assert all("Accepted" in e["raw"] for e in screen.stream.events)
        assert "7 match(es)" in await wait_text(pilot, "7 match(es)")
        # A bad query: the error and where it is.
        screen.query_one("#search").value = 'user:root "unclosed'
        screen.query_one("#search").focus()
        await pilot.press("enter")
        await settle(pilot)
        err = str(screen.query_one("#search-error").render())
        assert "unclosed quote" in err and "\n" + " " * 10 + "^" in err
        assert screen.query_text == "Accepted"  # the last good search stays
        # Pivot on the address of the selected event.
        screen.query_one("#search").value = "Accepted password"
        await pilot.press("enter")
        await settle(pilot)
        assert screen.stream.selected_event["src_ip"] == "198.51.100.7"
        await pilot.press("f")
        await settle(pilot)
        assert screen.query_text == "src_ip:198.51.100.7" and screen.matches == 13
        await pilot.press("u")
        await settle(pilot)
        assert screen.query_text == "user:root"
        await pilot.press("escape")  # back to the live stream
        await settle(pilot)
        assert screen.query_text == "" and len(screen.stream) == 61


async def test_event_detail_around_raise_alert_and_pin(seeded: Path) -> None:
    conn = open_db(seeded)
    iid = triage.create_incident(conn, "Scan", "zoe")
    conn.close()
    app = make_app(seeded, "events")
    async with app.run_test(size=(120, 36)) as pilot:
        await settle(pilot)
        screen: Any = app.screen
        await pilot.press("slash", *"app:useradd", "enter")
        await settle(pilot)
        ev = screen.stream.selected_event
        assert ev["app"] == "useradd"
        await pilot.press("enter")
        await settle(pilot)
        detail = str(screen.query_one("#detail-text").render())
        assert "backup2" in detail and "raw" in detail and "bastion" in detail
        await pilot.press("x")
        await settle(pilot)
        ids = [e["id"] for e in screen.stream.events]
        assert ev["id"] in ids and len(ids) > 1
        assert all(e["host"] == "bastion" for e in screen.stream.events)
        assert screen.stream.selected_event["id"] == ev["id"]
        await pilot.press("r")
        await settle(pilot)
        app.screen.query_one("Input").value = "backdoor account"
        await pilot.press("enter")
        await settle(pilot)
        await pilot.press("i")
        await settle(pilot)
        await pilot.press("down", "enter")  # the existing incident
        await settle(pilot)
    alert = db_query(seeded, "SELECT id, rule_name, title, severity, host FROM alerts WHERE rule_id = 'manual'")
    assert [a[1:] for a in alert] == [("manual", "backdoor account", "medium", "bastion")]
    assert db_query(seeded, "SELECT event_id FROM alert_events WHERE alert_id = ?", (alert[0][0],)) == [(ev["id"],)]
    assert db_query(seeded, "SELECT event_id FROM incident_events WHERE incident_id = ?", (iid,)) == [(ev["id"],)]
    assert main(["--db", str(seeded), "verify"]) == 0


def _ingest_more(db: Path, tmp: Path) -> None:
    log = tmp / "more.log"
    lines = [f"Nov 20 00:50:{i:02d} bastion sshd[{6000 + i}]: Failed password for admin from 192.0.2.99"
             f" port {7000 + i} ssh2" for i in range(8)]
    lines.append("Nov 20 00:51:00 bastion sshd[6100]: Accepted password for admin from 192.0.2.99 port 7100 ssh2")
    log.write_text("\n".join(lines) + "\n")
    assert main(["--db", str(db), "ingest", "--tz", "UTC", "--year", "2026", "--no-progress", str(log)]) == 0


async def test_live_events_pause_badge_and_critical_notification(seeded: Path, tmp_path: Path) -> None:
    app = make_app(seeded, "events")
    bells: list[int] = []
    toasts: list[str] = []  # every title shown (a toast leaves after 8 s: a slow run outlives it)
    async with app.run_test(size=(120, 36)) as pilot:
        app.bell = lambda: bells.append(1)  # type: ignore[method-assign]
        notify = app.notify

        def noting(*args: Any, **kw: Any) -> None:
            toasts.append(str(kw.get("title", "")))
            notify(*args, **kw)

        app.notify = noting  # type: ignore[method-assign]
        await settle(pilot)
        screen: Any = app.screen
        await pilot.press("up")  # pause
        assert not screen.stream.following
        thread = threading.Thread(target=_ingest_more, args=(seeded, tmp_path))
        thread.start()
        while thread.is_alive():
            await pilot.pause(0.05)
        for _ in range(400):  # the feed polls at 10 Hz, alerts every second (a loaded CI: up to 20 s)
            await pilot.pause(0.05)
            if screen.stream.new_count == 9 and bells:
                break
        assert screen.stream.new_count == 9
        assert "9 new" in await wait_text(pilot, "9 new")
        assert any(t.startswith("New critical alert") for t in toasts), toasts
        assert bells
        await pilot.press("end")
        await pilot.pause()
        assert screen.stream.following and screen.stream.events[-1]["raw"].endswith("port 7100 ssh2")


async def test_events_stored_while_another_screen_is_shown_are_there_on_return(
        seeded: Path, tmp_path: Path) -> None:
    """The feed reads no events while the stream is hidden (each read costs the
    UI's CPU); back on the Events screen, those stored meanwhile follow on."""
    app = make_app(seeded, "events")
    async with app.run_test(size=(120, 36)) as pilot:
        await settle(pilot)
        screen: Any = app.screen
        before = screen.stream.newest["id"]
        assert app.ctx.feed.want_events
        await pilot.press("3")
        await settle(pilot)
        assert not app.ctx.feed.want_events
        thread = threading.Thread(target=_ingest_more, args=(seeded, tmp_path))
        thread.start()
        while thread.is_alive():
            await pilot.pause(0.05)
        await pilot.pause(0.3)  # three polls of the feed
        assert screen.stream.newest["id"] == before  # nothing read for a hidden stream
        await pilot.press("2")
        for _ in range(100):
            await pilot.pause(0.05)
            if screen.stream.newest["id"] > before:
                break
        ids = [e["id"] for e in screen.stream.events]
        assert ids[ids.index(before):] == list(range(before, before + 10))  # no gap, no repeat
        assert screen.stream.following and screen.stream.events[-1]["raw"].endswith("port 7100 ssh2")
        assert app.ctx.feed.want_events


async def test_a_live_tick_during_shutdown_leaves_the_screens_alone(seeded: Path) -> None:
    """Textual takes the screens apart on exit while the app's timers still
    run: a live tick then found the Events screen without its status line
    and the app died with a traceback instead of exiting."""
    from soc_tui.ui.feed import Drained

    app = make_app(seeded, "events")
    async with app.run_test(size=(120, 36)) as pilot:
        await settle(pilot)
        screen: Any = app.screen
        event = dict(screen.stream.events[-1], id=screen.stream.events[-1]["id"] + 1)
        await screen.query_one("#events-status").remove()  # as _shutdown's pruning does
        # No await from here to the tick: the app's own timer must not take the
        # event first (it did, during the remove, when the feed was set before).
        app.ctx.feed.drain = lambda: Drained([event], 0, [], event["id"])  # type: ignore[method-assign]
        app._running = False  # what Textual's _shutdown sets first
        try:
            app._tick()
        finally:
            app._running = True
        assert screen.stream.events[-1]["id"] == event["id"] - 1  # nothing delivered


async def test_no_bell_when_disabled(seeded: Path, tmp_path: Path) -> None:
    app = make_app(seeded, "alerts", bell=False)
    bells: list[int] = []
    async with app.run_test(size=(120, 36)) as pilot:
        app.bell = lambda: bells.append(1)  # type: ignore[method-assign]
        await settle(pilot)
        thread = threading.Thread(target=_ingest_more, args=(seeded, tmp_path))
        thread.start()
        while thread.is_alive():
            await pilot.pause(0.05)
        for _ in range(200):
            await pilot.pause(0.05)
            if any(str(n.title).startswith("New critical") for n in app._notifications):
                break
        assert any(str(n.title).startswith("New critical") for n in app._notifications)
        assert bells == []


# --- hostile text ------------------------------------------------------------------------


async def test_hostile_lines_are_inert_on_every_screen(seeded: Path) -> None:
    noted = alert_id(seeded, "ssh_bruteforce")
    conn = open_db(seeded)
    triage.add_note(conn, "alert", noted, "[@click=app.quit]x[/] \x1b]0;t\x07 [bold red]n[/]", "ann")
    conn.close()
    app = make_app(seeded, "events")
    async with app.run_test(size=(120, 36)) as pilot:
        await settle(pilot)
        screen: Any = app.screen
        await pilot.press("slash", *"203.0.113.66", "enter")
        await settle(pilot)
        raws = [e["raw"] for e in screen.stream.events]
        # (the store keeps the first 64 KiB of an over-long line, flagged truncated)
        assert len(raws) == 5 and any(len(r) >= 60_000 for r in raws)
        text = await stable_text(pilot)
        svg = app.export_screenshot()
        for needle in ("\\x1b]0;owned-title\\x07", "[bold red]x[/]", "[@click=app.quit]click me[/]",
                       "nul\\x00byte", "Invalid user \ufffd\ufffd"):
            assert needle in text, needle
        assert not CONTROL.search(text) and "\x1b" not in svg and "\x07" not in svg
        # Clicking on the [@click=...] text triggers nothing.
        idx = next(i for i, r in enumerate(raws) if "@click" in r)
        screen.stream.cursor = idx
        await pilot.press("enter")
        await settle(pilot)
        detail = str(screen.query_one("#detail-text").render())
        assert "[@click=app.quit]click me[/]" in detail and not CONTROL.search(detail)
        region = screen.stream.region
        await pilot.click("#stream", offset=(40, idx - screen.stream.scroll_offset.y))
        await pilot.click("#detail-text", offset=(20, 0))
        await settle(pilot)
        assert app.is_running and region.height > 0
        # The alert detail with a hostile note; the overview's top users.
        for key in ("3",):
            await pilot.press(key)
            await settle(pilot)
        queue: Any = app.screen
        queue.query_one("#alert-table").move_cursor(row=[a.id for a in queue.alerts].index(noted))
        await pilot.press("enter")
        await settle(pilot)
        text = await wait_text(pilot, "[@click=app.quit]x[/]")
        assert "[@click=app.quit]x[/]" in text and "\\x1b]0;t\\x07" in text
        assert not CONTROL.search(text)
        await pilot.press("escape", "1")
        await settle(pilot)
        assert not CONTROL.search(screen_text(app))
        assert app.is_running


# --- keys and palette --------------------------------------------------------------------


async def test_palette_has_every_screen_and_the_screen_keys(seeded: Path) -> None:
    app = make_app(seeded, "alerts")
    async with app.run_test(size=(120, 36)) as pilot:
        await settle(pilot)
        titles = [c.title for c in app.get_system_commands(app.screen)]
        for t in ("Go to Overview", "Go to Events", "Go to Rules", "Alerts: Ack", "Alerts: Close",
                  "Alerts: Suppress", "Alerts: Group"):
            assert t in titles, titles
        cmd = next(c for c in app.get_system_commands(app.screen) if c.title == "Alerts: Ack")
        aid = cursor_alert_id(app)
        cmd.callback()
        await settle(pilot)
        assert alert_row(seeded, aid)["status"] == "acknowledged"
        await pilot.press("question_mark")
        await pilot.pause()
        assert app.screen.query("HelpPanel")
        await pilot.press("ctrl+q")
    assert not app.is_running


async def test_fill_table_changes_only_what_differs() -> None:
    """fill_table on a filled table: rows gone removed, changed cells updated,
    new rows added, all in the wanted order, the cursor on the same key; the
    rows that stayed are the same row objects (not rebuilt)."""
    from rich.text import Text
    from textual.app import App, ComposeResult
    from textual.widgets import DataTable

    from soc_tui.ui.screens.base import fill_table

    class TableApp(App[None]):
        def compose(self) -> ComposeResult:
            yield DataTable()

    def rows(spec: list[tuple[str, str]]) -> list[tuple[str, tuple[Any, ...]]]:
        return [(k, (Text(k), Text(v, style="bold" if v.startswith("!") else ""))) for k, v in spec]

    def shown(table: Any) -> list[tuple[str, str, str]]:
        return [(str(r.key.value), *(c.plain for c in table.get_row(r.key)), ) for r in table.ordered_rows]

    app = TableApp()
    async with app.run_test() as pilot:
        table = app.query_one(DataTable)
        table.add_column("k", key="k")
        table.add_column("v", key="v")
        fill_table(table, rows([("a", "1"), ("b", "2"), ("c", "3"), ("a much wider key", "4")]))
        # Widened at once, not when idle: a row drawn before that kept a cut cell.
        assert table.columns["k"].content_width == len("a much wider key")
        fill_table(table, rows([("a", "1"), ("b", "2"), ("c", "3"), ("d", "4")]))
        table.move_cursor(row=2)  # on "c"
        kept = {k: table.rows[k] for k in table.rows}
        fill_table(table, rows([("e", "5"), ("c", "3"), ("a", "!1"), ("d", "4")]))
        await pilot.pause()
        assert shown(table) == [("e", "e", "5"), ("c", "c", "3"), ("a", "a", "!1"), ("d", "d", "4")]
        assert table.get_row("a")[1].style == "bold"
        assert all(table.rows[k] is kept[k] for k in ("a", "c", "d"))  # updated in place
        assert str(table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value) == "c"
        # A style-only change is a change too.
        fill_table(table, rows([("e", "5"), ("c", "3"), ("a", "!1"), ("d", "4")])[:3]
                   + [("d", (Text("d"), Text("4", style="red")))])
        assert table.get_row("d")[1].style == "red"
        # A wider value widens its column.
        fill_table(table, rows([("e", "5"), ("c", "3"), ("a", "a much wider value"), ("d", "4")]))
        await pilot.pause()
        assert table.columns["v"].content_width >= len("a much wider value")
        # Mostly new rows: refilled, in order.
        fill_table(table, rows([("x", "9"), ("y", "8"), ("c", "3")]))
        assert shown(table) == [("x", "x", "9"), ("y", "y", "8"), ("c", "c", "3")]
        assert str(table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value) == "c"


def test_overview_histogram_follows_new_events_and_prunes(tmp_path: Path) -> None:
    """The Overview's SlidingHistogram equals a count from scratch after every
    change: new events (in the window, in its future, before it), the
    window moving on, and the oldest events deleted (retention)."""
    import random

    from soc_tui.store import stats

    conn = sqlite3.connect(tmp_path / "h.db", isolation_level=None)
    conn.execute("CREATE TABLE events (id INTEGER PRIMARY KEY, ts INTEGER NOT NULL, repeat INTEGER NOT NULL)")
    conn.execute("CREATE INDEX idx_events_ts ON events (ts)")
    rng = random.Random(3)
    S = 1_000_000
    t0 = 1_700_000_000 * S
    span, buckets = 600 * S, 60

    def add(n: int, lo: int, hi: int) -> None:
        conn.executemany("INSERT INTO events (ts, repeat) VALUES (?, ?)",
                         [(rng.randrange(lo, hi), rng.choice((1, 1, 1, 3))) for _ in range(n)])

    def expected(since: int, until: int) -> list[int]:
        width = (until - since) // buckets
        out = [0] * buckets
        for ts, rep in conn.execute("SELECT ts, repeat FROM events WHERE ts >= ? AND ts < ?", (since, until)):
            out[(ts - since) // width] += rep
        return out

    add(500, t0 - 900 * S, t0 + 30 * S)
    h = stats.SlidingHistogram(span, buckets)
    now = t0 + 7 * S + 123
    for step in range(6):
        since, until = h.bounds(now)
        assert until - since == span and since % (span // buckets) == 0 and since < now <= until
        assert h.histogram(conn, now) == (since, until, expected(since, until)), step
        add(200, now - 700 * S, now + 40 * S)  # late, in the window, and ahead of the clock
        now += rng.randrange(1, 25 * S)
    conn.execute("DELETE FROM events WHERE id IN (SELECT id FROM events ORDER BY id LIMIT 300)")
    since, until = h.bounds(now)
    assert h.histogram(conn, now)[2] == expected(since, until)
    assert sum(h.histogram(conn, now)[2]) > 0


def test_alert_queue_reads_what_list_alerts_reads(seeded: Path) -> None:
    """StoreReader.alert_queue (the queue's read, changed alerts only) returns
    what a full read returns, for each filter, after triage changes too."""
    from soc_tui.store.reader import StoreReader

    reader = StoreReader(str(seeded), create=False)
    known: dict[int, Any] = {}
    try:
        def check() -> None:
            for status in (None, "open", "new", "acknowledged", "closed"):
                for rule in (None, "ssh_bruteforce", "web_sqli"):
                    for limit in (3, 2000):
                        full = reader.alerts(status=status, rule=rule, limit=limit, with_events=False)
                        got = reader.alert_queue(known, status=status, rule=rule, limit=limit)
                        assert got == full, (status, rule, limit)
                        assert set(known) == {a.id for a in full}

        check()
        before = reader.alert_queue(known, status="open", limit=2000)
        conn = open_db(seeded)
        first = before[0].id
        triage.set_status(conn, [first], "acknowledged", "ann")
        conn.close()
        after = reader.alert_queue(known, status="open", limit=2000)
        assert [a.status for a in after if a.id == first] == ["acknowledged"]
        assert all(a is b for a, b in zip(before[1:], after[1:]))  # the others reused, not read again
        check()
    finally:
        reader.close()


async def test_tables_keep_their_drawing_across_screen_switches_but_not_a_theme_change(seeded: Path) -> None:
    """A screen shown again reuses its tables' rendered cells (Textual
    refreshes every style on a switch; redrawing them was most of its cost);
    a new theme, which does change their look, draws them anew."""
    from soc_tui.ui.table import SocTable

    app = make_app(seeded, start="alerts")
    async with app.run_test(size=(120, 36)) as pilot:
        await settle(pilot)
        table = app.screen.query_one("#alert-table", SocTable)
        assert table._row_render_cache  # drawn
        marker = list(table._row_render_cache.keys())[0]
        drawing = table._row_render_cache[marker]
        await pilot.press("1")
        await settle(pilot)
        await pilot.press("3")
        await settle(pilot)
        assert app.screen.query_one("#alert-table", SocTable) is table
        assert table._row_render_cache.get(marker) is drawing  # kept across the switch, not redrawn
        before = table._current_look()
        app.theme = "nord" if app.theme != "nord" else "gruvbox"
        await settle(pilot)
        assert table._current_look() != before
        text = await stable_text(pilot)
        assert "critical" in text or "high" in text  # drawn again, in the new colours
        cursor_style = table.get_component_rich_style("datatable--cursor")
        drawn = [seg.style for strip in app.screen._compositor.render_strips() for seg in strip
                 if seg.style is not None and seg.style.bgcolor == cursor_style.bgcolor]
        assert drawn  # the cursor row is painted with the new theme's cursor colour


async def test_the_queue_redraws_the_alerts_that_changed_and_keeps_the_others(seeded: Path) -> None:
    """On a reload the queue shows what changed (a count, a new alert at the
    top, the order); the rows of alerts that did not change are neither
    redrawn nor their cells built again."""
    import dataclasses

    from soc_tui.ui.table import SocTable

    app = make_app(seeded, start="alerts")
    async with app.run_test(size=(120, 36)) as pilot:
        await settle(pilot)
        queue = app.screen
        table = queue.query_one("#alert-table", SocTable)
        alerts = list(queue.alerts)
        assert len(alerts) >= 3
        first, second = alerts[0], alerts[1]
        kept = table.get_row(str(first.id))
        alerts[1] = dataclasses.replace(second, count=second.count + 41)
        newcomer = dataclasses.replace(alerts[2], id=10**6, rule_name="brand_new_rule")
        queue.show([newcomer, *alerts])
        await settle(pilot, rounds=1)
        assert table.get_cell(str(second.id), "hits").plain == str(second.count + 41)
        assert [str(r.key.value) for r in table.ordered_rows][:3] == [
            str(newcomer.id), str(first.id), str(second.id)]
        assert table.get_cell(str(newcomer.id), "rule").plain == "brand_new_rule"
        assert all(a is b for a, b in zip(table.get_row(str(first.id)), kept))  # not redrawn
        assert str(second.count + 41) in await stable_text(pilot)
        now = app.ctx.clock()
        cells = queue._cells_of(first, now, queue._values(first, now))
        assert queue._cells_of(first, now, queue._values(first, now)) is cells  # not built again
        bumped = dataclasses.replace(first, count=first.count + 1)
        assert queue._cells_of(bumped, now, queue._values(bumped, now)) is not cells


async def test_a_screen_built_before_is_switched_to_without_holding_updates(seeded: Path) -> None:
    """Textual holds every screen update for 50 ms on a switch, to mask a
    screen being built; a screen built on an earlier visit is drawn at once
    (a switch cost at least those 50 ms), a new one is still masked."""
    app = make_app(seeded, start="alerts")
    async with app.run_test(size=(120, 36)) as pilot:
        await settle(pilot)
        app.switch_mode("events")  # built now
        assert app._batch_count == 1
        await pilot.pause(0.2)
        await settle(pilot)
        assert app._batch_count == 0
        app.switch_mode("alerts")  # built at startup
        assert app._batch_count == 0
        await settle(pilot)
        assert type(app.screen).__name__ == "AlertsScreen"
        assert "critical" in await stable_text(pilot)


async def test_a_screen_shown_again_waits_briefly_for_its_fresh_data(seeded: Path) -> None:
    """Shown again, a screen that reads data holds its updates until the fresh
    data is shown (drawing what it showed last first made that data wait for
    the drawing); when the data is slow, what it had is drawn after HOLD_S."""
    import time

    from soc_tui.ui.screens.base import HOLD_S

    app = make_app(seeded, start="alerts")
    seen: list[tuple[str, Any]] = []
    async with app.run_test(size=(120, 36)) as pilot:
        await settle(pilot)
        alerts: Any = app.screen
        display, show, load = app._display, alerts.show, alerts.load

        def drawn(screen: Any, renderable: Any) -> None:
            if renderable is not None and not app._batch_count:
                seen.append(("frame", screen))
            display(screen, renderable)

        app._display = drawn  # type: ignore[method-assign]
        alerts.show = lambda data: (seen.append(("show", alerts)), show(data))
        await pilot.press("4")
        await settle(pilot)
        seen.clear()
        await pilot.press("3")
        await settle(pilot)
        assert ("show", alerts) in seen and ("frame", alerts) in seen
        assert seen.index(("show", alerts)) < seen.index(("frame", alerts))  # fresh data first

        alerts.load = lambda: (time.sleep(0.6), load())[1]  # a slow read
        await pilot.press("4")
        await settle(pilot)
        seen.clear()
        await pilot.press("3")
        await pilot.pause(max(0.3, HOLD_S * 5))
        assert ("frame", alerts) in seen and ("show", alerts) not in seen  # what it had, drawn
        assert app._batch_count == 0
        await pilot.pause(0.8)
        await settle(pilot)
        assert ("show", alerts) in seen and app._batch_count == 0


async def test_only_screens_with_data_to_read_start_a_load_when_shown(
        seeded: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Shown again, a screen reloads its data in a thread worker; the Events
    screen, which the live tick keeps current, has none to read and starts no
    worker (a thread round trip per switch for nothing)."""
    from soc_tui.ui.screens.base import SocScreen

    started: list[str] = []
    original = SocScreen._load_worker

    def recording(self: Any) -> Any:
        started.append(type(self).__name__)
        return original(self)

    monkeypatch.setattr(SocScreen, "_load_worker", recording)
    app = make_app(seeded, start="alerts")
    async with app.run_test(size=(120, 36)) as pilot:
        await settle(pilot)
        started.clear()
        for key in ("2", "3", "2", "4"):
            await pilot.press(key)
            await settle(pilot)
        assert "AlertsScreen" in started and "IncidentsScreen" in started
        assert "EventsScreen" not in started


async def test_a_screen_shown_again_is_restyled_only_when_the_theme_or_css_changed(seeded: Path) -> None:
    """Coming back to a screen (a switch, or closing the alert detail) does
    not restyle its widgets (Textual does that on every resume: most of a
    switch's cost), unless something app-wide they depend on changed while
    it was away: a theme chosen on another screen shows on it."""
    from textual.screen import Screen

    from soc_tui.ui.table import SocTable

    app = make_app(seeded, start="alerts")
    restyled: list[str] = []
    update_styles = app.update_styles

    def spy(node: Any, animate: bool = True) -> None:
        if isinstance(node, Screen):
            restyled.append(type(node).__name__)
        update_styles(node, animate)

    app.update_styles = spy  # type: ignore[method-assign]
    async with app.run_test(size=(120, 36)) as pilot:
        await settle(pilot)
        table = app.screen.query_one("#alert-table", SocTable)
        for key in ("2", "1", "3", "enter", "escape"):  # each screen mounted (and styled) once
            await pilot.press(key)
            await settle(pilot)
        restyled.clear()
        for key in ("2", "3", "1", "3", "enter", "escape"):
            await pilot.press(key)
            await settle(pilot)
        assert type(app.screen).__name__ == "AlertsScreen"
        assert restyled == [], restyled
        await pilot.press("2")
        await settle(pilot)
        app.theme = "nord" if app.theme != "nord" else "gruvbox"
        await settle(pilot)
        await pilot.press("3")
        await settle(pilot)
        assert app.screen.query_one("#alert-table", SocTable) is table
        cursor_style = table.get_component_rich_style("datatable--cursor")
        drawn = [seg.style for strip in app.screen._compositor.render_strips() for seg in strip
                 if seg.style is not None and seg.style.bgcolor == cursor_style.bgcolor]
        assert drawn  # the cursor row is painted in the new theme's colour


def test_textual_strips_and_caches_are_freed_without_the_garbage_collector() -> None:
    """Textual kept a strip divided at its own length in its own cache, and a
    cleared LRUCache left its ring of entries (holding every value) linked:
    both only went at a garbage collection, which made the UI's collections
    long pauses. With soc_tui's fixes applied, reference counting frees them."""
    from rich.segment import Segment
    from textual.cache import LRUCache
    from textual.strip import Strip

    from soc_tui.ui import textual_fixes

    textual_fixes.apply()  # (importing soc_tui.ui.app applies them too; once is enough)
    gc.collect()
    gc.disable()
    try:
        for _ in range(50):
            strip = Strip([Segment("abc"), Segment("de")])
            assert strip.divide([5]) == [strip]
            assert [s.text for s in strip.divide([2, 5])] == ["ab", "cde"]
            cache: LRUCache[int, list[str]] = LRUCache(8)
            for i in range(12):
                cache[i] = [str(i)]
            assert cache.get(11) == ["11"] and cache.get(0) is None
            cache.clear()
            assert len(cache) == 0 and cache.get(11) is None
            cache[1] = ["again"]
            assert cache.get(1) == ["again"]
            cache.clear()
        del strip, cache
        assert gc.collect() == 0
    finally:
        gc.enable()


async def test_drawing_screens_leaves_no_strips_for_the_garbage_collector(seeded: Path) -> None:
    """Switching screens, opening alerts and moving in tables draws many
    lines; none of what drawing made should be left in reference cycles."""
    from rich.text import Text
    from textual.coordinate import Coordinate

    from soc_tui.ui.table import SocTable

    app = make_app(seeded, start="alerts")
    async with app.run_test(size=(120, 36)) as pilot:
        await settle(pilot)
        gc.collect()
        gc.set_debug(gc.DEBUG_SAVEALL)
        try:
            for key in ("down", "enter", "escape", "down", "2", "4", "3", "enter", "escape", "1", "3"):
                await pilot.press(key)
                await settle(pilot)
            gc.collect()
            kinds = Counter(type(o).__name__ for o in gc.garbage)
        finally:
            gc.set_debug(0)
            gc.garbage.clear()
        # The queue's table keeps no line drawn before its last change.
        table = app.screen.query_one("#alert-table", SocTable)
        before = table._update_count
        assert before in {key[9] for key in table._line_cache.keys()}  # (its update count)
        table.update_cell_at(Coordinate(1, 0), Text("*"))
        await settle(pilot)
        assert table._update_count != before
        assert {key[9] for key in table._line_cache.keys()} == {table._update_count}
    assert kinds["Strip"] == 0 and kinds["Segment"] == 0, kinds.most_common(8)


async def test_one_line_bars_update_without_a_layout_and_gc_settings_end_with_the_app(seeded: Path) -> None:
    """The title and status bars (one row high by CSS) take new text without
    asking for a layout of the screen; the UI's garbage-collector settings
    hold while it runs and are undone when it ends."""
    from textual.widgets import Static

    before = gc.get_threshold()
    app = make_app(seeded, start="alerts")
    async with app.run_test(size=(120, 36)) as pilot:
        await settle(pilot)
        assert gc.get_threshold() == (1_500, 10, 100)
        screen: Any = app.screen
        bar = screen.query_one("#alert-filters", Static)
        bar._layout_required = False
        screen.selected = set(list(screen.by_id)[:2])
        screen._describe()
        assert "2 selected" in str(bar.render()) and not bar._layout_required
        top = screen.query_one("#topbar", Static)
        top._layout_required = False
        top.draw()
        assert not top._layout_required
        await pilot.press("2")
        await settle(pilot)
        status = app.screen.query_one("#events-status", Static)
        status._layout_required = False
        app.screen._status()
        assert not status._layout_required and str(status.render())
    assert gc.get_threshold() == before


async def test_table_cells_are_drawn_exactly_as_datatable_draws_them(seeded: Path) -> None:
    """SocTable draws plain one-line Text cells itself (without Rich's
    padding and line rendering); each must come out as the very segments
    DataTable makes: the queue's cells under and off the cursor, and cells
    with styles, empty, cut with an ellipsis or cropped, at widths down to
    nothing, hostile text as `cell` escapes it, and wide characters (those
    are left to DataTable)."""
    from rich.style import Style
    from rich.text import Text
    from textual.widgets import DataTable

    from functools import partial

    from textual.coordinate import Coordinate

    from soc_tui.ui.screens.base import cell
    from soc_tui.ui.table import SocTable, plain_cell_line

    def compare(table: SocTable, rows: int, widths: tuple[int, ...]) -> int:
        fast = 0
        cells = len(table.ordered_columns)
        for row in range(rows):
            renderables = table._get_row_renderables(row).cells
            for col in range(cells):
                for width in widths:
                    fast += plain_cell_line(renderables[col], width, table.cell_padding) is not None
                    for cursor, hover in ((False, False), (True, False), (False, True)):
                        base = Style(bgcolor="grey11") if row % 2 else Style()
                        table._cell_render_cache.clear()
                        mine = table._render_cell(row, col, base, width, cursor, hover)
                        table._cell_render_cache.clear()
                        theirs = DataTable._render_cell(table, row, col, base, width, cursor, hover)
                        assert mine == theirs, (row, col, width, cursor, hover)
        return fast

    def compare_lines(table: SocTable, rows: int) -> None:
        """Whole lines: SocTable's row path against DataTable's cell by cell
        path (with DataTable's own cells), the cursor and the mouse on the
        row and off it, with and without zebra stripes."""
        coords = [Coordinate(r, 0) for r in (0, 1, rows - 1)]
        for zebra, mouse in ((False, False), (True, False), (False, True)):
            table.zebra_stripes = zebra
            table._show_hover_cursor = mouse  # (the mouse moved over the table)
            for row in range(rows):
                key = table._row_locations.get_key(row)
                for cursor in coords:
                    for hover in coords:
                        for base in (Style(), Style(bgcolor="grey11")):
                            table._clear_caches()
                            mine = table._render_line_in_row(key, 0, base, cursor, hover)
                            table._clear_caches()
                            table._render_cell = partial(DataTable._render_cell, table)  # type: ignore[method-assign]
                            try:
                                theirs = DataTable._render_line_in_row(table, key, 0, base, cursor, hover)
                            finally:
                                del table._render_cell
                            assert mine == theirs, (row, cursor, hover, zebra, mouse)
        table.zebra_stripes = table._show_hover_cursor = False

    app = make_app(seeded, start="alerts")
    async with app.run_test(size=(120, 36)) as pilot:
        await settle(pilot)
        queue = app.screen.query_one("#alert-table", SocTable)
        widths = tuple(c.get_render_width(queue) for c in queue.ordered_columns)
        shown = min(queue.row_count, 30)
        assert shown >= 5
        assert compare(queue, shown, widths) >= shown * len(widths) // 2  # most take the fast path
        compare_lines(queue, shown)
        table = SocTable()
        await app.screen.mount(table)
        table.add_columns("a", "b")
        samples = [Text("hello", style="bold red"), Text(""), Text("x" * 60, no_wrap=True, overflow="ellipsis"),
                   Text("y" * 60, overflow="crop"), Text("under", style="underline on blue"),
                   cell("\x1b]0;pwned\x07 [bold]x[/] \x9b31m"), cell(None), cell(""), cell("漢字かな wide"),
                   Text("a\tb"), Text("two\nlines"), Text("42", justify="right"),
                   Text("9" * 60, justify="right", overflow="ellipsis"), Text("ab  ", justify="right", style="dim"),
                   Text("right", justify="right", overflow="crop")]
        for i, sample in enumerate(samples):
            table.add_row(sample, Text("k", style="cyan"), key=str(i))
        await settle(pilot)
        assert compare(table, len(samples), (0, 1, 2, 3, 4, 7, 12, 40)) > 0
        compare_lines(table, len(samples))


async def test_the_alert_detail_screen_is_reused_and_shows_only_the_alert_opened(seeded: Path) -> None:
    from soc_tui.ui.screens.alerts import AlertDetailScreen

    app = make_app(seeded, start="alerts")
    async with app.run_test(size=(120, 36)) as pilot:
        await settle(pilot)
        queue = app.screen
        table = queue.query_one("#alert-table")
        titles = {a.id: a.title for a in queue.alerts}
        shown: list[tuple[int, str]] = []
        for row in (0, 1, 0):
            table.move_cursor(row=row)
            await pilot.press("enter")
            await settle(pilot)
            detail = app.screen
            assert isinstance(detail, AlertDetailScreen)
            text = await stable_text(pilot)
            shown.append((detail.alert_id, text))
            await pilot.press("escape")
            await settle(pilot)
            assert app.screen is queue
        (first, text1), (second, text2), (again, text3) = shown
        assert first != second and again == first
        assert f"#{first} " in text1 and f"#{second} " in text2 and f"#{first} " not in text2
        if titles[first] != titles[second]:
            assert titles[second] in text2 and titles[first] not in text2
        assert queue._detail is not None and app.is_screen_installed(queue._detail)
