"""Rules: every loaded rule with its state and hits, enable/disable, backtest.

Owns: `RulesScreen` (state of each rule: active; inactive because no
stored event has its logsource; disabled, in its file or by an analyst;
failed to load, with the reason; alerts and hits from the store) and
`BacktestScreen` (what one rule would have raised over stored history,
run in a thread worker through soc_tui.detect.backtest, storing nothing).
The logsources seen are read incrementally (only events stored since the
last look), every few seconds in the background on a connection of the
screen's own, so that a visit reads only the last few seconds of events.
Must not: run SQL on the UI thread.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from typing import Any

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.widgets import DataTable, Static

from soc_tui.detect.fields import event_tags
from soc_tui.model import FLAG_UNPARSED
from soc_tui.store import triage
from soc_tui.store.reader import StoreReader
from soc_tui.text import printable
from soc_tui.ui.table import SocTable
from soc_tui.ui.modals import TextModal
from soc_tui.ui.screens.base import (KeptStylesScreen, KeysFooter, SocScreen, Writes, ago, cell,
                                     cursor_key, fill_table, set_line, severity_text, ts_text)

STATE_STYLE = {"active": "green", "inactive": "dim", "disabled": "yellow", "failed": "bold red"}


@dataclass
class RuleRow:
    key: str
    name: str
    title: str
    level: str
    state: str
    why: str  # the reason for a state other than active
    alerts: int = 0
    hits: int = 0
    last_seen: int | None = None
    rule: Any = None
    path: str = ""


def _sees_any(rule: Any, shapes: set[tuple[str | None, bool, bool]]) -> bool:
    if hasattr(rule, "sees"):
        for app, web, unparsed in shapes:
            ev = {"app": app, "http_method": "GET" if web else None, "action": None,
                  "flags": FLAG_UNPARSED if unparsed else 0}
            if rule.sees(event_tags(ev)):
                return True
        return False
    return any(_sees_any(inp, shapes) for inp in getattr(rule, "inputs", ()))


def _logsource(rule: Any) -> str:
    parts = [getattr(rule, k, None) for k in ("product", "service", "category")]
    if any(parts):
        return "/".join(p or "*" for p in parts)
    return "correlation" if hasattr(rule, "refs") else "-"


class RulesScreen(Writes, SocScreen):
    MODE = "rules"
    refresh_every = 5.0
    shapes_every = 5.0  # seconds between background reads of the new events' logsources
    BINDINGS = [
        Binding("e", "toggle", "Enable/disable"),
        Binding("b", "backtest", "Backtest"),
        Binding("enter", "details", "Details", show=False),
    ]
    DEFAULT_CSS = """
    RulesScreen #rule-info { height: auto; max-height: 6; padding: 0 1; border-top: solid $primary; }
    """

    def __init__(self) -> None:
        super().__init__()
        self.rows: list[RuleRow] = []
        self._shapes: set[tuple[str | None, bool, bool]] = set()
        self._shapes_upto = 0
        self._shapes_lock = threading.Lock()  # one read of them at a time
        self._shapes_reader: StoreReader | None = None
        self._shapes_closed = False

    def compose(self) -> ComposeResult:
        yield from self.compose_top()
        yield Static("", id="rule-summary", classes="pane-title")
        table: DataTable[Any] = SocTable(id="rule-table", cursor_type="row")
        yield table
        yield Static("", id="rule-info")
        yield from self.compose_bottom()

    def on_mount(self) -> None:
        super().on_mount()
        table = self.query_one(DataTable)
        for name in ("state", "rule", "level", "alerts", "hits", "last", "logsource"):
            table.add_column(name, key=name)
        table.focus()
        self.set_interval(self.shapes_every, self._shapes_worker)

    def on_unmount(self) -> None:
        with self._shapes_lock:
            self._shapes_closed = True
            if self._shapes_reader is not None:
                self._shapes_reader.close()
                self._shapes_reader = None

    @work(thread=True, exclusive=True, group="shapes", exit_on_error=False)
    def _shapes_worker(self) -> None:
        self._read_shapes()

    def _read_shapes(self) -> None:
        """Add the logsources of the events stored since the last read (a
        thread: load() and, shown or not, every `shapes_every` s; after a
        minute away a visit had 600k events to read, 0.4 s). Its own
        connection: the screens' shared reader is not held meanwhile."""
        with self._shapes_lock:
            if self._shapes_closed:
                return
            if self._shapes_reader is None:
                self._shapes_reader = StoreReader(self.ctx.db, create=False)
            new, upto = self._shapes_reader.event_shapes(self._shapes_upto)
            if not new <= self._shapes:
                self._shapes = self._shapes | new  # a new set: load() may be reading the old one
            self._shapes_upto = upto

    def load(self) -> list[RuleRow]:
        from soc_tui.store.stats import rule_hits

        ctx = self.ctx
        self._read_shapes()
        shapes = self._shapes
        overrides = ctx.reader_call(triage.rule_settings)
        hits = ctx.reader_call(rule_hits)
        rows: list[RuleRow] = []
        ruleset = ctx.ruleset
        for r in (ruleset.all() if ruleset is not None else []):
            enabled = overrides.get(r.rule_id, r.enabled)
            if not enabled:
                state = "disabled"
                why = "disabled by an analyst" if r.rule_id in overrides else "x-soc.enabled: false in its file"
            elif getattr(r, "silent", False):
                state, why = "active", "building block of a correlation (raises no alert itself)"
            elif not _sees_any(r, shapes):
                state, why = "inactive", f"no stored event has its logsource ({_logsource(r)})"
            else:
                state, why = "active", ""
            h = hits.get(r.rule_id)
            rows.append(RuleRow(r.rule_id, r.label, r.title, r.level, state, why,
                                h.alerts if h else 0, h.hits if h else 0, h.last_seen if h else None,
                                r, r.path))
        for err in (ruleset.errors if ruleset is not None else []):
            rows.append(RuleRow(f"error:{err.path}:{err.rule}", err.rule, "", "-", "failed",
                                err.reason, path=err.path))
        order = {"failed": 0, "active": 1, "disabled": 2, "inactive": 3}
        rows.sort(key=lambda x: (order[x.state], -x.alerts, x.name))
        return rows

    def show(self, rows: list[RuleRow]) -> None:
        self.rows = rows
        now = self.ctx.clock()
        fill_table(self.query_one(DataTable), [
            (r.key, (Text(r.state, style=STATE_STYLE[r.state]), cell(r.name, limit=48),
                     severity_text(r.level), Text(str(r.alerts), justify="right"),
                     Text(str(r.hits), justify="right"), Text(ago(r.last_seen, now)),
                     cell(_logsource(r.rule) if r.rule else "-")))
            for r in rows])
        counts = {s: sum(r.state == s for r in rows) for s in STATE_STYLE}
        set_line(
            self.query_one("#rule-summary", Static),
            " " + ", ".join(f"{n} {s}" for s, n in counts.items()) + "   (e: enable/disable, b: backtest)")
        self._info()

    def current(self) -> RuleRow | None:
        key = cursor_key(self.query_one(DataTable))
        return next((r for r in self.rows if r.key == key), None)

    def _info(self) -> None:
        r = self.current()
        t = Text()
        if r is not None:
            t.append(printable(r.title or r.name), style="bold")
            t.append(f"  [{r.state}]", style=STATE_STYLE[r.state])
            if r.why:
                t.append("  " + printable(r.why))
            t.append("\n" + printable(self._where(r.path)), style="dim")
            if r.rule is not None and r.rule.attack:
                t.append("\n" + " ".join(r.rule.attack), style="dim")
        self.query_one("#rule-info", Static).update(t)

    def _where(self, path: str) -> str:
        """A rule file as `<rule directory's name>/<path in it>` (shorter, and
        the same wherever soc-tui is installed)."""
        full = os.path.abspath(path)
        for d in self.ctx.rule_dirs:
            root = os.path.abspath(d)
            if full.startswith(root + os.sep):
                return os.path.join(os.path.basename(root), os.path.relpath(full, root))
        return path

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        self._info()

    def action_details(self) -> None:
        self._info()

    def action_toggle(self) -> None:
        r = self.current()
        if r is None or r.rule is None:
            self.notify("a rule that failed to load cannot be switched; fix its file", severity="warning")
            return
        on = r.state == "disabled"
        rule_id, name, actor = r.rule.rule_id, r.rule.name, self.ctx.analyst
        self.write(f"rule {r.name} {'enabled' if on else 'disabled'}",
                   lambda c: triage.set_rule_enabled(c, rule_id, name, on, actor), self.reload)

    def action_backtest(self) -> None:
        r = self.current()
        if r is None or r.rule is None:
            return

        def done(since: str | None) -> None:
            if since:
                self.app.push_screen(BacktestScreen(r.rule, since))

        self.app.push_screen(TextModal(f"Backtest {r.name} over stored events since (e.g. 24h, 7d)",
                                       "7d"), done)


class BacktestScreen(KeptStylesScreen):
    """What one rule would have raised over stored history (nothing is stored)."""

    BINDINGS = [Binding("escape", "back", "Back")]

    def __init__(self, rule: Any, since: str) -> None:
        super().__init__()
        self.rule, self.since = rule, since

    def compose(self) -> ComposeResult:
        yield Static(Text(f" backtest of {printable(self.rule.label)} since {printable(self.since)}: running…"),
                     id="bt-title", classes="pane-title")
        table: DataTable[Any] = SocTable(id="bt-table", cursor_type="row")
        yield table
        yield KeysFooter()

    def on_mount(self) -> None:
        table = self.query_one(DataTable)
        for name in ("sev", "hits", "first", "last", "src_ip", "user", "host", "title"):
            table.add_column(name, key=name)
        table.focus()
        self._run()

    @work(thread=True, exclusive=True, exit_on_error=False)
    def _run(self) -> None:
        from soc_tui.detect.backtest import backtest

        ctx: Any = self.app.ctx  # type: ignore[attr-defined]
        try:
            alerts, _result = backtest(ctx.ruleset, self.rule, ctx.db, self.since)
        except Exception as exc:  # noqa: BLE001 - a bad window, a broken database
            self.app.call_from_thread(self._title, f"backtest failed: {exc}")
            return
        self.app.call_from_thread(self._show, alerts)

    def _title(self, text: str) -> None:
        self.query_one("#bt-title", Static).update(Text(" " + printable(text)))

    def _show(self, alerts: list[Any]) -> None:
        fill_table(self.query_one(DataTable), [
            (str(n), (severity_text(a.severity), Text(str(a.count), justify="right"),
                      Text(ts_text(a.first_seen)), Text(ts_text(a.last_seen)), cell(a.src_ip),
                      cell(a.user, limit=20), cell(a.host, limit=20), cell(a.title, limit=80)))
            for n, a in enumerate(alerts)])
        self._title(f"backtest of {self.rule.label} since {self.since}: would have raised "
                    f"{len(alerts)} alert(s); nothing was stored")

    def action_back(self) -> None:
        self.app.pop_screen()
