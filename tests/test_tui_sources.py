"""Remote sources in the TUI: the embedded collector runs a syslog receiver and
an SSH source whose server is down; the Sources screen shows each one's state
and error, and a message sent over UDP reaches the live Events stream as inert
text."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from soc_tui.cli import _load_ruleset, shipped_rules_dir
from soc_tui.collector import Collector
from soc_tui.config import SourceConfig
from soc_tui.ui.app import SocApp
from soc_tui.ui.context import UiContext
from tests.test_tui import screen_text, wait_text

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


def _free_port(kind: int) -> int:
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def test_sources_screen_shows_syslog_and_a_reconnecting_ssh_source(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SOC_TUI_KEY_FILE", str(tmp_path / "chain.key"))
    monkeypatch.setenv("HOME", str(tmp_path))  # no ~/.ssh of the machine's user
    monkeypatch.delenv("SSH_AUTH_SOCK", raising=False)
    db = tmp_path / "soc.db"
    udp = _free_port(socket.SOCK_DGRAM)
    dead = _free_port(socket.SOCK_STREAM)  # nothing listens there
    syslog_spec = f"syslog+udp://127.0.0.1:{udp}"
    ssh_spec = f"ssh://127.0.0.1:{dead}/var/log/auth.log"
    collector = Collector(str(db), [SourceConfig(syslog_spec), SourceConfig(ssh_spec)],
                          rule_dirs=None, poll_interval=0.1).start()
    ctx = None
    try:
        rules = [shipped_rules_dir()]
        ctx = UiContext.open(str(db), "ann", rule_dirs=rules, ruleset=_load_ruleset(rules), collector=collector)
        app = SocApp(ctx, start="sources")
        async with app.run_test(size=(120, 36)) as pilot:
            text = await wait_text(pilot, "reconnecting", timeout=15)
            assert "reconnecting" in text and ssh_spec in text
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
                s.sendto(b"<38>Dec  3 10:00:00 web-01 sshd[77]: Failed password for root from "
                         b"203.0.113.9 port 4022 ssh2 [bold red]x[/] \x1b]0;pwned\x07", ("127.0.0.1", udp))
            for _ in range(100):
                live = {h.name: h for h in collector.health()}
                if live[syslog_spec].lines == 1:
                    break
                await pilot.pause(0.1)
            assert live[syslog_spec].state == "running" and live[syslog_spec].lines == 1
            row = next(ln for ln in (await wait_text(pilot, syslog_spec)).splitlines() if syslog_spec in ln)
            assert "running" in row
            # The SSH row's details name the problem.
            table = app.screen.query_one("DataTable")
            names = [r.name for r in app.screen.rows]
            table.move_cursor(row=names.index(ssh_spec))
            text = await wait_text(pilot, "cannot connect", timeout=5)
            assert "cannot connect" in text
            await pilot.press("2")
            text = await wait_text(pilot, "Failed password for root", timeout=10)
            line = next(ln for ln in text.splitlines() if "Failed password for root" in ln)
            assert "[bold red]x[/]" in line  # markup shown as text
            assert "\x1b" not in screen_text(app) and "\x07" not in screen_text(app)
    finally:
        if ctx is not None:
            ctx.close()
        collector.stop(drain=True)
