"""Overview: what is happening now, on one screen that fits 80x24.

Owns: `OverviewScreen`: events and alerts over a selectable window as
sparklines with their totals and peak rates, open alerts by severity and
all alerts by status, the top source IPs (failures), users and hosts of
the window, and a line of source health. When nothing happened in the
window up to now (a database filled by a backfill), the window ends at the
newest stored event instead, and says so.
Must not: run SQL on the UI thread.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.widgets import DataTable, Sparkline, Static

from soc_tui.ui.screens.base import SEVERITY_STYLE, SocScreen, cell, status_text, ts_text

WINDOWS = (("15m", 15 * 60), ("1h", 3600), ("6h", 6 * 3600), ("24h", 86400), ("7d", 7 * 86400))
BUCKETS = 60
TOP = 8


@dataclass
class OverviewData:
    since: int
    until: int
    anchored: bool  # the window ends at the newest event, not now
    events: list[int]
    alerts: list[int]
    by_severity: dict[str, int]
    by_status: dict[str, int]
    top: dict[str, list[tuple[str, int]]] = field(default_factory=dict)
    sources: list[tuple[str, str]] = field(default_factory=list)  # (name, state)


class OverviewScreen(SocScreen):
    MODE = "overview"
    refresh_every = 2.0
    BINDINGS = [Binding("w", "next_window", "Window")]
    DEFAULT_CSS = """
    OverviewScreen #charts { height: 6; }
    OverviewScreen .chart { width: 1fr; height: 6; padding: 0 1; }
    OverviewScreen .chart Sparkline { height: 4; }
    OverviewScreen .chart Static { height: 1; }
    OverviewScreen #counts { height: 2; padding: 0 1; }
    OverviewScreen #tops { height: 1fr; }
    OverviewScreen #tops DataTable { width: 1fr; height: 1fr; }
    OverviewScreen #health { height: 1; padding: 0 1; }
    OverviewScreen #ev-spark > .sparkline--max-color { color: $accent; }
    OverviewScreen #al-spark > .sparkline--max-color { color: $error; }
    """

    def __init__(self) -> None:
        super().__init__()
        self.window = 1  # index into WINDOWS: 1h

    def compose(self) -> ComposeResult:
        yield from self.compose_top()
        with Horizontal(id="charts"):
            with Vertical(classes="chart"):
                yield Static("", id="ev-title")
                yield Sparkline([], id="ev-spark")
            with Vertical(classes="chart"):
                yield Static("", id="al-title")
                yield Sparkline([], id="al-spark")
        yield Static("", id="counts")
        with Horizontal(id="tops"):
            for name in ("src_ip", "user", "host"):
                table: DataTable[Any] = DataTable(id=f"top-{name}", cursor_type="row",
                                                  show_cursor=False)
                yield table
        yield Static("", id="health")
        yield from self.compose_bottom()

    def on_mount(self) -> None:
        super().on_mount()
        titles = {"src_ip": "src_ip (failures)", "user": "user", "host": "host"}
        for name, title in titles.items():
            table = self.query_one(f"#top-{name}", DataTable)
            table.add_column(title, key="value", width=self._value_width())
            table.add_column("events", key="n", width=7)

    def _value_width(self) -> int:
        """Fixed column widths: a third of the screen per table, less the count."""
        return max(8, self.app.size.width // 3 - 12)

    def action_next_window(self) -> None:
        self.window = (self.window + 1) % len(WINDOWS)
        self.reload()

    def load(self) -> OverviewData:
        from soc_tui.store import stats

        ctx = self.ctx
        span = WINDOWS[self.window][1] * 1_000_000
        until = ctx.clock() + 1
        anchored = False

        def read(conn: Any) -> OverviewData:
            nonlocal until, anchored
            _oldest, newest = stats.time_bounds(conn)
            if newest is not None and newest < until - span:
                until, anchored = newest + 1, True
            since = until - span
            counts = stats.alert_counts(conn)
            return OverviewData(
                since, until, anchored,
                stats.event_histogram(conn, since, until, BUCKETS),
                stats.alert_histogram(conn, since, until, BUCKETS),
                counts.by_severity, counts.by_status,
                {"src_ip": stats.top_values(conn, "src_ip", since, until, TOP, failures_only=True),
                 "user": stats.top_values(conn, "user", since, until, TOP),
                 "host": stats.top_values(conn, "host", since, until, TOP)},
            )

        data = ctx.reader_call(read)
        if ctx.collector is not None:
            data.sources = [(h.name, h.state) for h in ctx.collector.health()]
        else:
            data.sources = [(s.name, "stored") for s in ctx.reader_call(stats.source_stats)]
        return data

    def show(self, d: OverviewData) -> None:
        label, seconds = WINDOWS[self.window]
        bucket_s = seconds / BUCKETS
        ev_total, al_total = sum(d.events), sum(d.alerts)
        peak = max(d.events) / bucket_s if d.events else 0.0
        where = f" to {ts_text(d.until - 1)}" if d.anchored else ""
        self.query_one("#ev-title", Static).update(Text(
            f"events, last {label}{where}: {ev_total:,} (peak {peak:,.1f}/s)", no_wrap=True,
            overflow="ellipsis"))
        self.query_one("#al-title", Static).update(Text(
            f"alerts raised, last {label}: {al_total:,}", no_wrap=True, overflow="ellipsis"))
        self.query_one("#ev-spark", Sparkline).data = d.events or [0]
        self.query_one("#al-spark", Sparkline).data = d.alerts or [0]
        counts = Text(no_wrap=True, overflow="ellipsis")
        counts.append("open by severity ")
        for sev, n in d.by_severity.items():
            counts.append(f" {sev} {n} ", style=SEVERITY_STYLE.get(sev, "") if n else "dim")
        counts.append("\nby status        ")
        for st, n in d.by_status.items():
            counts.append_text(status_text(st))
            counts.append(f" {n}  ")
        self.query_one("#counts", Static).update(counts)
        with self.app.batch_update():
            for name, rows in d.top.items():
                table = self.query_one(f"#top-{name}", DataTable)
                table.clear()
                for value, n in rows:
                    table.add_row(cell(value, limit=40), Text(f"{n:,}", justify="right"))
        health = Text(no_wrap=True, overflow="ellipsis")
        health.append("sources ")
        if not d.sources:
            health.append("none yet", style="dim")
        states: dict[str, int] = {}
        for _name, state in d.sources:
            states[state] = states.get(state, 0) + 1
        style = {"error": "bold red", "reconnecting": "bold yellow", "lagging": "yellow",
                 "running": "green"}
        for state, n in sorted(states.items()):
            health.append(f" {n} {state} ", style=style.get(state, "dim"))
        health.append("   (6: sources)", style="dim")
        self.query_one("#health", Static).update(health)
