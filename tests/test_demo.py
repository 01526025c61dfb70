"""Demo mode: a scenario replayed through the real pipeline (soc_tui.demo, `soc-tui demo`)."""

from __future__ import annotations

import json
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from soc_tui import demo
from soc_tui.cli import main
from tests import tui_data


@pytest.fixture
def scenario(tmp_path: Path) -> Path:
    """A scenario made of the TUI tests' logs (a brute force that succeeds, a web scan)."""
    src = tmp_path / "src"
    tui_data.build(src)
    sc = tmp_path / "scenario"
    sc.mkdir()
    for name in ("auth.log", "access.log"):
        (sc / name).write_bytes((src / "logs" / name).read_bytes())
    (sc / "scenario.yaml").write_text(
        "name: mini\ntitle: a small story\nyear: 2026\n"
        "files:\n  - {path: auth.log}\n  - {path: access.log, host: web-01}\n"
        "questions:\n  - {id: ip, text: 'which address broke in?', answer: 198.51.100.7}\n")
    return sc


def test_lines_are_merged_in_time_order_and_shifted_to_end_now(scenario: Path, tmp_path: Path) -> None:
    sc = demo.load_scenario(str(scenario))
    lines = sc.lines()
    assert len(lines) == 61 and [ln.ts for ln in lines] == sorted(ln.ts for ln in lines)
    assert {sc.files[ln.file].name for ln in lines[:5]} == {"access.log"}  # the web scan came first
    end = datetime(2026, 12, 1, 12, 0, 0, tzinfo=timezone.utc)
    rep = demo.Replayer(sc, tmp_path / "out", speed=demo.MAX_SPEED, end_at=end)
    rep.start()
    assert rep.done.wait(10) and rep.written == 61
    auth = (tmp_path / "out" / "auth.log").read_text(errors="surrogateescape").splitlines()  # bytes kept
    web = (tmp_path / "out" / "access.log").read_text().splitlines()
    assert len(auth) + len(web) == 61
    # The last line of the story is at end_at; the gaps between lines are kept.
    last = max(demo.line_time(x, 2026) for x in auth + web)
    assert last == end
    assert auth[0].startswith("Dec  1 11:") and "Failed password for root from 198.51.100.7" in auth[0]
    assert "[01/Dec/2026:11:" in web[0] and web[0].startswith("203.0.113.50 - - [")


def test_speed_pause_and_resume(scenario: Path, tmp_path: Path) -> None:
    sc = demo.load_scenario(str(scenario))
    rep = demo.Replayer(sc, tmp_path / "out", speed=0.0)  # paused from the start
    rep.start()
    time.sleep(0.3)
    assert rep.written == 0
    assert rep.next_speed() == 1.0
    time.sleep(0.3)
    first = rep.written
    assert 0 < first < 61  # real time: the story's first minute is not over
    rep.set_speed(demo.MAX_SPEED)
    assert rep.done.wait(10) and rep.written == 61
    assert rep.story_time() is not None
    rep.stop()


def test_headless_demo_stores_and_evaluates_everything(scenario: Path, tmp_path: Path,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    db = tmp_path / "demo.db"
    assert main(["--db", str(db), "demo", "--scenario", str(scenario), "--headless"]) == 0
    out = capsys.readouterr().out
    assert "61 lines replayed, 61 events stored, 11 alerts" in out
    assert "ssh_success_after_bruteforce" in out and f"database: {db}" in out
    assert main(["--db", str(db), "alerts", "list", "--format", "json"]) == 0
    alerts = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    crit = [a for a in alerts if a["severity"] == "critical"]
    assert [a["rule_name"] for a in crit] == ["ssh_success_after_bruteforce"]
    # The story ends about now.
    last = datetime.fromisoformat(max(a["last_seen"] for a in alerts).replace("Z", "+00:00"))
    assert datetime.now(timezone.utc) - last < timedelta(minutes=60)
    assert main(["--db", str(db), "verify"]) == 0


def test_bad_scenario_and_speed_are_one_line_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--db", str(tmp_path / "x.db"), "demo", "--scenario", "nosuch", "--headless"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no scenario 'nosuch'" in err
    assert main(["--db", str(tmp_path / "x.db"), "demo", "--speed", "fast", "--headless"]) == 2
    assert "--speed" in capsys.readouterr().err
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "scenario.yaml").write_text("files:\n  - ../../etc/passwd\n")
    assert main(["--db", str(tmp_path / "x.db"), "demo", "--scenario", str(bad), "--headless"]) == 2
    assert "relative to the scenario" in capsys.readouterr().err


async def test_tui_speed_key_and_demo_status(scenario: Path, tmp_path: Path) -> None:
    from soc_tui.cli import _load_ruleset, shipped_rules_dir, start_collector, stop_collector
    from soc_tui.config import Config, SourceConfig
    from soc_tui.ui.app import SocApp
    from soc_tui.ui.context import UiContext
    from tests.test_tui import settle, wait_text

    sc = demo.load_scenario(str(scenario))
    db = tmp_path / "demo.db"
    rep = demo.Replayer(sc, tmp_path / "logs", speed=0.0)
    sources = [SourceConfig(str(p), f.host, "UTC", None, "auto") for p, f in zip(rep.paths, sc.files)]
    rules = [shipped_rules_dir()]
    collector = start_collector(Config(), str(db), sources, rules, poll_interval=0.1)
    rep.start()
    ctx = UiContext.open(str(db), "ann", rule_dirs=rules, ruleset=_load_ruleset(rules),
                         collector=collector, replayer=rep)
    app = SocApp(ctx, start="alerts")
    try:
        async with app.run_test(size=(100, 30)) as pilot:
            await settle(pilot)
            assert "demo paused 0%" in await wait_text(pilot, "demo paused")
            assert "(F2)" in await wait_text(pilot, "(F2)")
            await pilot.press("f2", "f2", "f2")  # paused -> 1x -> 10x -> 100x
            assert rep.speed == 100.0
            await pilot.press("f2")
            assert rep.speed == 0.0
            rep.set_speed(demo.MAX_SPEED)
            assert rep.done.wait(10)
            text = await wait_text(pilot, "ssh_success_after_bruteforce", timeout=15)
            assert "ssh_success_after_bruteforce" in text and "demo paused 100%" not in text
    finally:
        rep.stop()
        ctx.close()
        stop_collector(collector)


async def test_training_run_scores_answers_and_counts_hints(tmp_path: Path) -> None:
    """A full training run on the `quick` scenario, replayed through the real pipeline."""
    from soc_tui.cli import _load_ruleset, shipped_rules_dir, start_collector, stop_collector
    from soc_tui.config import Config, SourceConfig
    from soc_tui.training import Quiz
    from soc_tui.ui.app import SocApp
    from soc_tui.ui.context import UiContext
    from tests.test_tui import settle, wait_text

    sc = demo.load_scenario("quick")
    questions = {q["id"]: q for q in sc.questions}
    db = tmp_path / "demo.db"
    rep = demo.Replayer(sc, tmp_path / "logs", speed=demo.MAX_SPEED)
    sources = [SourceConfig(str(p), f.host, "UTC", None, "auto") for p, f in zip(rep.paths, sc.files)]
    rules = [shipped_rules_dir()]
    collector = start_collector(Config(), str(db), sources, rules, poll_interval=0.1)
    rep.start()
    quiz = Quiz(sc.questions, shift=rep.shift, year=sc.year, story_start=rep.lines[0].ts)
    ctx = UiContext.open(str(db), "trainee", rule_dirs=rules, ruleset=_load_ruleset(rules),
                         collector=collector, replayer=rep, quiz=quiz)
    app = SocApp(ctx, start="training")
    ip_q = next(q for q in quiz.questions if q.kind == "ip")
    user_q = next(q for q in quiz.questions if q.kind == "user")
    time_q = next(q for q in quiz.questions if q.kind == "time")
    # The time as the screens show it: the scenario's time shifted like its logs.
    when = demo.line_time(f"Jan  1 {questions[time_q.id]['answer']} x", sc.year)
    assert when is not None
    root_at = (datetime.combine(rep.lines[0].ts.date(), when.time(), timezone.utc) + rep.shift).strftime("%H:%M")
    try:
        async with app.run_test(size=(100, 30)) as pilot:
            await settle(pilot)
            screen = app.screen
            assert type(screen).__name__ == "TrainingScreen"
            assert "7 Train" in await wait_text(pilot, "7 Train")
            table = screen.query_one("#quiz-table")

            async def answer(qid: str, text: str) -> str:
                table.move_cursor(row=[q.id for q in quiz.questions].index(qid))
                await pilot.pause()
                box = screen.query_one("#answer")
                box.focus()
                box.value = text
                await pilot.press("enter")
                await settle(pilot)
                return str(screen.query_one("#feedback").render())

            assert "not quite" in await answer(ip_q.id, "192.0.2.1")  # wrong: no score
            assert quiz.score() == (0, len(quiz.questions), 0)
            table.focus()
            table.move_cursor(row=[q.id for q in quiz.questions].index(ip_q.id))
            await pilot.press("f4")  # a hint, counted
            await settle(pilot)
            assert "hint:" in str(screen.query_one("#feedback").render())
            assert quiz.score()[2] == 1
            assert "correct" in await answer(ip_q.id, questions[ip_q.id]["answer"])
            assert "correct" in await answer(user_q.id, questions[user_q.id]["answer"].upper())
            assert "correct" in await answer(time_q.id, root_at)
            for q in quiz.questions:
                if not q.correct:
                    assert "correct" in await answer(q.id, str(questions[q.id]["answer"]))
            right, total, hints = quiz.score()
            assert (right, total, hints) == (total, len(questions), 1)
            text = await wait_text(pilot, "all done")
            assert f"score {total}/{total}, 1 hint(s) used" in text
            assert any(str(n.title) == "Training complete" for n in app._notifications)
    finally:
        rep.stop()
        ctx.close()
        stop_collector(collector)


def test_breach_raises_the_story_through_the_real_pipeline(tmp_path: Path,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    """`soc-tui demo --headless` on the main scenario: the shipped rules raise
    every act of the story, and nothing critical comes from the noise."""
    db = tmp_path / "breach.db"
    assert main(["--db", str(db), "demo", "--scenario", "breach", "--headless", "--speed", "max"]) == 0
    capsys.readouterr()
    assert main(["--db", str(db), "alerts", "list", "--format", "json"]) == 0
    alerts = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    raised = {a["rule_name"] for a in alerts}
    for rule in ("web_scanner_user_agent", "web_4xx_burst", "web_sensitive_files", "web_sqli",
                 "ssh_bruteforce", "ssh_success_after_bruteforce", "user_created",
                 "user_added_to_privileged_group", "cron_modified", "log_tampering"):
        assert rule in raised, rule
    attacker = demo.load_scenario("breach").raw["attacker"]
    for a in alerts:
        if a["severity"] == "critical":
            assert a["src_ip"] == attacker, a
    web = [a for a in alerts if a["rule_name"].startswith("web_")]
    assert web and all(a["host"] == "web-01" for a in web)  # from the scenario's file host
