"""Overview: what is happening now, on one screen that fits 80x24.

Owns: `OverviewScreen`: events and alerts over a selectable window as
sparklines with their totals and peak rates, open alerts by severity and
all alerts by status, the top source IPs (failures), users and hosts of
the window, and a line of source health. When nothing happened in the
window up to now (a database filled by a backfill), the window ends at the
newest stored event instead, and says so. The window is cut into buckets
that are whole multiples of their width (the last one in progress), so the
events histogram is kept up to date from what was stored since the last
refresh; the top values (a scan of the window's events) follow the rest of
the screen and are read again at most every few seconds.
Must not: run SQL on the UI thread.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.widgets import DataTable, Sparkline, Static

from soc_tui.text import printable
from soc_tui.ui.table import SocTable
from soc_tui.ui.screens.base import SEVERITY_STYLE, SocScreen, cell, fill_table, status_text, ts_text

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
    top: dict[str, list[tuple[str, int]]] | None = None  # None: those shown stay (tops_due)
    sources: list[tuple[str, str]] = field(default_factory=list)  # (name, state)
    tops_due: bool = False  # the top values are read next (they scan the whole window)


@dataclass
class Tops:
    """The top values of one window as last read, and what reading them cost."""

    key: tuple[int, int, int]  # (window index, since, until) they were read for
    top: dict[str, list[tuple[str, int]]]
    read_at: float  # time.monotonic()
    cost: float  # seconds


TOPS_MIN_AGE = 2.0  # seconds: the top values are read again at most this often ...
TOPS_COST_FACTOR = 5  # ... or, when reading them is slow, this many times what it took


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
        self._histograms: dict[int, Any] = {}  # window index -> stats.SlidingHistogram
        self._tops: Tops | None = None
        self._tops_reading = False  # a _tops_worker runs

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
                table: DataTable[Any] = SocTable(id=f"top-{name}", cursor_type="row",
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
        """The figures of the window: the events histogram is kept up to date
        (stats.SlidingHistogram: only what was stored since the last refresh
        is read), the alert figures are small; the top values, which scan
        every event of the window, are read by `_tops_worker` after the rest
        is on screen, and again only when they are older than TOPS_MIN_AGE or
        TOPS_COST_FACTOR times what reading them took."""
        import time

        from soc_tui.store import stats

        ctx = self.ctx
        window = self.window
        span = WINDOWS[window][1] * 1_000_000
        histogram = self._histograms.get(window)
        if histogram is None:
            histogram = self._histograms[window] = stats.SlidingHistogram(span, BUCKETS)
        until = ctx.clock() + 1
        anchored = False

        def read(conn: Any) -> OverviewData:
            nonlocal until, anchored
            _oldest, newest = stats.time_bounds(conn)
            if newest is not None and newest < until - span:
                until, anchored = newest + 1, True
            since, end, events = histogram.histogram(conn, until)
            counts = stats.alert_counts(conn)
            return OverviewData(
                since, until, anchored, events,
                stats.alert_histogram(conn, since, end, BUCKETS),
                counts.by_severity, counts.by_status,
            )

        data = ctx.stats_call(read)
        tops = self._tops
        if tops is not None and tops.key[0] == window:
            data.top = tops.top
            age = time.monotonic() - tops.read_at
            data.tops_due = age >= max(TOPS_MIN_AGE, TOPS_COST_FACTOR * tops.cost)
        else:
            data.tops_due = True
        if ctx.collector is not None:
            data.sources = [(h.name, h.state) for h in ctx.collector.health()]
        else:
            data.sources = [(s.name, "stored") for s in ctx.reader_call(stats.source_stats)]
        return data

    @work(thread=True, group="overview-tops", exit_on_error=False)
    def _tops_worker(self, key: tuple[int, int, int]) -> None:
        import time

        from soc_tui.store import stats

        _window, since, until = key
        started = time.monotonic()

        def read(conn: Any) -> dict[str, list[tuple[str, int]]]:
            return {"src_ip": stats.top_values(conn, "src_ip", since, until, TOP, failures_only=True),
                    "user": stats.top_values(conn, "user", since, until, TOP),
                    "host": stats.top_values(conn, "host", since, until, TOP)}

        try:
            top = self.ctx.stats_call(read)
        except Exception as exc:  # noqa: BLE001 - shown, the next refresh retries
            self.app.call_from_thread(self.notify, printable(f"{type(exc).__name__}: {exc}"),
                                      title="Loading failed", severity="error", markup=False)
            return
        finally:
            self._tops_reading = False
        self._tops = Tops(key, top, time.monotonic(), time.monotonic() - started)
        self.app.call_from_thread(self._show_tops, key)

    def _show_tops(self, key: tuple[int, int, int]) -> None:
        tops = self._tops
        if self.is_attached and tops is not None and tops.key == key and key[0] == self.window:
            self._fill_tops(tops.top)

    def _fill_tops(self, top: dict[str, list[tuple[str, int]]]) -> None:
        with self.app.batch_update():
            for name, rows in top.items():
                fill_table(self.query_one(f"#top-{name}", DataTable), [
                    (str(i), (cell(value, limit=40), Text(f"{n:,}", justify="right")))
                    for i, (value, n) in enumerate(rows)])

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
        if d.top is not None:
            self._fill_tops(d.top)
        elif any(self.query_one(f"#top-{name}", DataTable).row_count for name in ("src_ip", "user", "host")):
            for name in ("src_ip", "user", "host"):  # another window's: not these
                self.query_one(f"#top-{name}", DataTable).clear()
        if d.tops_due and not self._tops_reading:
            self._tops_reading = True
            span = WINDOWS[self.window][1] * 1_000_000
            self._tops_worker((self.window, d.since, d.since + span))
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
