"""Sources: each source's state, last event, lag, rate, unparsed lines, gaps, drops.

Owns: `SourcesScreen`, which merges the live counters of the collector in
this process (state: running, lagging, reconnecting, error; bytes behind;
events/s; the error text) with what the store keeps per source (lines,
events, unparsed, gaps and the last gap's reason, last event time), so that
`--attach` still shows every source the database knows.
Must not: run SQL on the UI thread.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.widgets import DataTable, Static

from soc_tui.text import printable
from soc_tui.ui.table import SocTable
from soc_tui.ui.screens.base import SocScreen, ago, cell, fill_table, set_line

STATE_STYLE = {"running": "green", "lagging": "yellow", "reconnecting": "bold yellow",
               "error": "bold red", "starting": "dim", "done": "dim", "stored": "dim"}


@dataclass
class SourceRow:
    name: str
    state: str
    last_event: int | None
    behind: int
    rate: float
    lines: int
    unparsed: int
    gaps: int
    error: str
    dropped: int = 0  # lost before parsing (UDP syslog under load)
    refused: int = 0  # from senders outside the allow list


def _size(n: int) -> str:
    for unit, size in (("GB", 1 << 30), ("MB", 1 << 20), ("kB", 1 << 10)):
        if n >= size:
            return f"{n / size:.1f} {unit}"
    return f"{n} B"


class SourcesScreen(SocScreen):
    MODE = "sources"
    refresh_every = 1.0
    BINDINGS = [Binding("enter", "details", "Details", show=False)]
    DEFAULT_CSS = """
    SourcesScreen #source-info { height: auto; max-height: 6; padding: 0 1; border-top: solid $primary; }
    """

    def __init__(self) -> None:
        super().__init__()
        self.rows: list[SourceRow] = []
        self.gap_reasons: dict[str, str] = {}

    def compose(self) -> ComposeResult:
        yield from self.compose_top()
        yield Static("", id="source-summary", classes="pane-title")
        table: DataTable[Any] = SocTable(id="source-table", cursor_type="row")
        yield table
        yield Static("", id="source-info")
        yield from self.compose_bottom()

    def on_mount(self) -> None:
        super().on_mount()
        table = self.query_one(DataTable)
        for name in ("state", "source", "last event", "behind", "ev/s", "lines", "unparsed", "gaps", "dropped"):
            table.add_column(name, key=name)
        table.focus()

    def load(self) -> list[SourceRow]:
        from soc_tui.store.stats import source_stats

        stored = {s.name: s for s in self.ctx.reader_call(source_stats)}
        live = {h.name: h for h in self.ctx.collector.health()} if self.ctx.collector else {}
        self.gap_reasons = {n: s.last_gap_reason or "" for n, s in stored.items()}
        rows = []
        for name in list(live) + [n for n in stored if n not in live]:
            h, s = live.get(name), stored.get(name)
            last = max([t for t in (h.last_event_ts if h else None, s.last_event_ts if s else None) if t]
                       or [0]) or None
            rows.append(SourceRow(
                name, h.state if h else "stored", last, h.bytes_behind if h else 0,
                h.rate if h else 0.0, max(h.lines if h else 0, s.lines if s else 0),
                max(h.unparsed if h else 0, s.unparsed if s else 0),
                max(h.gaps if h else 0, s.gaps if s else 0), (h.error or "") if h else "",
                h.dropped if h else 0, h.refused if h else 0))
        return rows

    def show(self, rows: list[SourceRow]) -> None:
        self.rows = rows
        now = self.ctx.clock()
        fill_table(self.query_one(DataTable), [
            (r.name, (Text(r.state, style=STATE_STYLE.get(r.state, "")), cell(r.name, limit=60),
                      Text(ago(r.last_event, now)), Text(_size(r.behind), justify="right"),
                      Text(f"{r.rate:,.1f}", justify="right"), Text(f"{r.lines:,}", justify="right"),
                      Text(f"{r.unparsed:,}", justify="right", style="yellow" if r.unparsed else ""),
                      Text(f"{r.gaps:,}", justify="right", style="yellow" if r.gaps else ""),
                      Text(f"{r.dropped:,}", justify="right", style="yellow" if r.dropped else "")))
            for r in rows])
        bad = sum(r.state in ("error", "reconnecting") for r in rows)
        mode = "collecting in this process" if self.ctx.collector else "attached: another process collects"
        set_line(
            self.query_one("#source-summary", Static),
            Text(f" {len(rows)} source(s), {bad} with problems; {mode}", no_wrap=True))
        self._info()

    def _info(self) -> None:
        table = self.query_one(DataTable)
        t = Text()
        if self.rows and 0 <= table.cursor_row < len(self.rows):
            r = self.rows[table.cursor_row]
            t.append(printable(r.name), style="bold")
            if r.error:
                t.append("\n" + printable(r.error),
                         style="yellow" if r.state == "reconnecting" else "bold red")
            if r.dropped or r.refused:
                t.append(f"\n{r.dropped:,} message(s) dropped under load; "
                         f"{r.refused:,} refused (sender not in allow)", style="yellow")
            reason = self.gap_reasons.get(r.name)
            if reason:
                t.append("\nlast gap: " + printable(reason), style="yellow")
        self.query_one("#source-info", Static).update(t)

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        self._info()

    def action_details(self) -> None:
        self._info()
