"""What every screen shares: the top bar, the ctx shortcut, reloading in a thread worker.

Owns: `SocScreen` (a Screen whose data comes from `load()`, run in a thread
worker, and is shown by `show()` on the UI thread; reloaded when the screen
comes back into view and every `refresh_every` seconds while it is in
view), `TopBar` (the screen tabs and the collector's state) and the helpers
that turn values into inert `rich.text.Text` (`cell`, `ago`, `ts_text`).
Must not: run SQL on the UI thread.
"""

from __future__ import annotations

import time
from datetime import datetime, timezone
from typing import Any, Callable

from rich.text import Text
from textual import events, work
from textual.app import ComposeResult
from textual.screen import Screen
from textual.widgets import Footer, Static

from soc_tui.store.triage import TriageError
from soc_tui.text import printable

SHORT = {"Overview": "Home", "Incidents": "Incid", "Sources": "Src", "Training": "Train"}
SEVERITY_STYLE = {"critical": "bold white on red", "high": "bold red", "medium": "yellow",
                  "low": "cyan", "informational": "dim"}
STATUS_STYLE = {"new": "bold", "acknowledged": "yellow", "in_progress": "cyan", "closed": "dim",
                "open": "bold", "contained": "yellow", "resolved": "green"}


def cell(value: Any, style: str = "", limit: int = 200) -> Text:
    """A table cell or label from untrusted text: inert (never markup), control
    characters escaped, cut to `limit` characters."""
    if value is None:
        return Text("-", style="dim")
    s = str(value)
    if len(s) > limit:
        s = s[:limit] + "…"
    return Text(printable(s), style=style, no_wrap=True, overflow="ellipsis")


def ts_text(us: int | None, *, date: bool = True) -> str:
    if us is None:
        return "-"
    dt = datetime.fromtimestamp(us / 1e6, timezone.utc)
    return dt.strftime("%Y-%m-%d %H:%M:%S" if date else "%H:%M:%S")


def ago(us: int | None, now_us: int) -> str:
    if us is None:
        return "-"
    s = max(0, (now_us - us) // 1_000_000)
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if s >= size:
            return f"{s // size}{unit} ago"
    return f"{s}s ago"


def severity_text(sev: str | None) -> Text:
    return Text(sev or "-", style=SEVERITY_STYLE.get(sev or "", ""))


def status_text(status: str | None) -> Text:
    return Text((status or "-").replace("_", " "), style=STATUS_STYLE.get(status or "", ""))


def cursor_key(table: Any) -> str | None:
    """The key of the row under a DataTable's cursor (None: no rows)."""
    if table.row_count == 0:
        return None
    try:
        return str(table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value)
    except Exception:  # noqa: BLE001 - no cursor row
        return None


def _same(a: Any, b: Any) -> bool:
    """Two cells that draw the same (Text compares text and spans, not its style)."""
    if a is b:
        return True
    if isinstance(a, Text) and isinstance(b, Text):
        return a.plain == b.plain and a.style == b.style and a.spans == b.spans
    return type(a) is type(b) and a == b


def _fit(table: Any, cells: tuple[Any, ...] | list[Any]) -> None:
    """Widen the columns for these cells before they reach the table.

    DataTable measures new and changed cells later, when idle, but caches
    each cell as drawn at the width its column had then: a row drawn before
    that (a loaded machine) kept a cut cell ("Web …") until the table was
    rebuilt. Measured here, single-line Text the way DataTable measures it
    (its cell length), the first drawing has the right widths. (DataTable's
    own width update, `update_width`, also measures the whole column again
    for every cell that got narrower: 300 x 300 measures for the alert
    queue's "5s ago" column, seconds of the UI thread.) Columns only grow,
    as with DataTable.clear()."""
    for column, value in zip(table.ordered_columns, cells):
        grow_column(column, value)


def grow_column(column: Any, value: Any) -> None:
    """Widen a DataTable column (`table.columns[key]`) for a cell value (see _fit)."""
    if isinstance(value, Text) and column.auto_width and "\n" not in value.plain:
        width = value.cell_len
        if width > column.content_width:
            column.content_width = width


def fill_table(table: Any, rows: list[tuple[str, tuple[Any, ...]]]) -> None:
    """Make a DataTable show `rows` (key, cells) in that order, in one update,
    the cursor staying on the row with the same key when it is still there.

    Only what changed reaches the table: rows gone are removed, cells that
    differ updated, new rows added, and the rows put in order (columns grow
    for wider values: `_fit`); a table that
    shares fewer than half of its rows with `rows` is refilled. (A refill
    measures every cell again: for the alert queue's 300 rows that held the
    UI thread for 100-500 ms while ingesting, every time one alert came in.)"""
    current = cursor_key(table)
    keys = [k for k, _ in rows]
    old = [str(r.key.value) for r in table.ordered_rows]
    wanted = set(keys)
    kept = wanted.intersection(old)
    with table.app.batch_update():
        if len(wanted) != len(keys) or (old and len(kept) * 2 < len(keys)) or not old:
            table.clear()
            for key, cells in rows:
                _fit(table, cells)
                table.add_row(*cells, key=key)
        else:
            columns = [c.key for c in table.ordered_columns]
            for key in old:
                if key not in wanted:
                    table.remove_row(key)
            get_cell = table.get_cell  # (get_row orders the columns again for every row)
            for key, cells in rows:
                if key in kept:
                    for column, now in zip(columns, cells):
                        before = get_cell(key, column)
                        if not _same(before, now):
                            grow_column(table.columns[column], now)
                            table.update_cell(key, column, now,
                                              update_width=not isinstance(now, Text) or "\n" in now.plain)
                else:
                    _fit(table, cells)
                    table.add_row(*cells, key=key)
            if [str(r.key.value) for r in table.ordered_rows] != keys:
                # Each row's first cell object says where it goes (they are
                # distinct objects; when not, refilling is the safe way).
                place = {id(get_cell(k, columns[0])): i for i, k in enumerate(keys)}
                if len(place) == len(keys):
                    table.sort(key=lambda values: place[id(values[0])])
                else:
                    table.clear()
                    for key, cells in rows:
                        _fit(table, cells)
                        table.add_row(*cells, key=key)
        if current in wanted:
            table.move_cursor(row=keys.index(current), animate=False)


class Writes:
    """For screens that change the database: run one store call on the
    analyst's write connection in a thread worker, toast the result (or the
    one-line refusal) and call `then` on the UI thread."""

    def write(self, label: str, call: Callable[[Any], Any],
              then: Callable[[], None] | None = None) -> None:
        self._write_worker(label, call, then)

    def choose_incident(self, title: str, then: Callable[[int | str], None]) -> None:
        """Ask which open incident (or a new one: its title, prefilled with
        `title`); `then` gets an incident id or the new title."""
        self._incidents_worker(title, then)

    @work(thread=True, group="load-incidents", exit_on_error=False)
    def _incidents_worker(self, title: str, then: Callable[[int | str], None]) -> None:
        from soc_tui.store.triage import list_incidents
        from soc_tui.ui.modals import IncidentModal

        app: Any = self.app  # type: ignore[attr-defined]
        incidents = [i for i in app.ctx.reader_call(list_incidents) if i.status != "closed"]

        def done(choice: int | str | None) -> None:
            if choice is not None:
                then(choice)

        app.call_from_thread(app.push_screen, IncidentModal(incidents, title), done)

    @work(thread=True, group="triage", exit_on_error=False)
    def _write_worker(self, label: str, call: Callable[[Any], Any],
                      then: Callable[[], None] | None) -> None:
        app: Any = self.app  # type: ignore[attr-defined]
        try:
            result = app.ctx.write(call)
        except TriageError as exc:
            app.call_from_thread(app.notify, printable(str(exc)), title="Refused",
                                 severity="error", markup=False)
            return
        except Exception as exc:  # noqa: BLE001 - a locked or broken database
            app.call_from_thread(app.notify, printable(f"{type(exc).__name__}: {exc}"),
                                 title="Failed", severity="error", markup=False)
            return
        if isinstance(result, list):
            label = f"{label}: {len(result)} changed"
        elif result is False:
            label = f"{label} (no change)"
        app.call_from_thread(app.notify, printable(label), markup=False)
        if then is not None:
            app.call_from_thread(then)


def set_line(line: Static, content: Any) -> None:
    """Put `content` on a one-line bar (a title or status line: one row high
    and as wide as its container by CSS). Its size cannot change, so unlike
    `Static.update` this asks for no layout: a layout arranges and draws the
    whole screen again, which the bars updated every second (and the Events
    status ten times a second) made the UI thread do for nothing."""
    line.update(content, layout=False)


class TopBar(Static):
    """One line: the screens (the current one highlighted) and the collector's state."""

    DEFAULT_CSS = """
    TopBar { height: 1; background: $panel; color: $text; }
    """

    def __init__(self, current: str) -> None:
        super().__init__("", id="topbar")
        self.current = current

    def on_mount(self) -> None:
        self.draw()
        self.set_interval(1.0, self.update_state)

    def update_state(self) -> None:
        if self.screen.is_current:  # only the screen in view refreshes
            self.draw()

    def draw(self) -> None:
        from soc_tui.ui.app import screens_of

        app: Any = self.app
        t = Text(no_wrap=True, overflow="ellipsis")
        screens = screens_of(app.ctx)
        narrow = app.size.width < 60 + 12 * (len(screens) - 5)  # short names leave room for the state
        for mode, key, title in screens:
            style = "bold reverse" if mode == self.current else ""
            t.append(f" {key} {SHORT.get(title, title) if narrow else title} ", style=style)
        replayer = app.ctx.replayer
        if replayer is not None:
            done = replayer.written * 100 // max(1, replayer.total)
            speed = "paused" if replayer.speed == 0 else (
                "max" if replayer.speed == float("inf") else f"{replayer.speed:g}x")
            t.append(f" demo {speed} {done}% (F2)", style="bold yellow")
        collector = app.ctx.collector
        if collector is None:
            state = " attached"
        else:
            health = collector.health()
            rate = sum(h.rate for h in health)
            bad = sum(1 for h in health if h.state in ("error", "reconnecting"))
            state = f" ● {rate:,.0f} ev/s" + (f" {bad} src err" if bad else "")
        t.append(state, style="dim")
        set_line(self, t)


class KeysFooter(Footer):
    """Textual's Footer, recomposed only when the keys it shows changed.

    The Footer rebuilds all its FooterKey widgets whenever the screen's
    bindings may have changed: on every focus change and every switch to
    the screen, ~10-40 ms of the UI thread each time (widgets mounted,
    styled and laid out) for the same keys as before."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._shown: tuple[Any, ...] | None = None

    def _keys(self) -> tuple[Any, ...]:
        app = self.app
        out = []
        for key, (_node, binding, enabled, tooltip) in self.screen.active_bindings.items():
            if binding.show or key == app.COMMAND_PALETTE_BINDING:
                out.append((key, binding.key, binding.action, binding.description,
                            app.get_key_display(binding), enabled, tooltip, binding.tooltip,
                            id(binding.group) if binding.group is not None else None))
        return (tuple(out), self.compact, self.show_command_palette)

    def compose(self) -> ComposeResult:
        if self._bindings_ready:
            self._shown = self._keys()
        return super().compose()

    def bindings_changed(self, screen: Screen[Any]) -> None:
        if (self._bindings_ready and self._shown is not None and self.is_attached
                and screen is self.screen and self._keys() == self._shown):
            return  # the same keys: nothing to rebuild
        super().bindings_changed(screen)


HOLD_S = 0.04  # how long a screen shown again waits for its fresh data before drawing the last


class KeptStylesScreen(Screen[None]):
    """A screen that, shown again, keeps its widgets' styles when nothing
    they depend on changed while it was away.

    Textual restyles every widget of a screen each time it is shown again
    (ScreenResume), 15-20 ms of the UI thread for ours and twice that while
    collecting: most of a screen switch. What a widget's own state changes
    (classes, focus, hover) restyles that widget when it happens, shown or
    not; what is app-wide (the CSS, the theme, the app's pseudo classes such
    as focus or dark) is compared here with what it was when the screen was
    left, and a change restyles the screen as before.

    It also holds the screen's updates while its fresh data is read (`_hold`,
    `_release`): shown again, it had first drawn what it showed last, and the
    fresh data then waited for that drawing. The hold ends when the data is
    shown, when the screen is left, or after HOLD_S."""

    _left_with: tuple[Any, ...] | None = None

    def _app_style_state(self) -> tuple[Any, ...]:
        app: Any = self.app
        return (app._css_update_count, app.theme, app.pseudo_classes, app.size)

    # Textual calls these handlers of every class in the MRO in turn, this
    # class's before Screen's own: the event is changed before Screen sees it.
    def _on_screen_suspend(self) -> None:
        self._left_with = self._app_style_state()
        self._release()

    def _on_screen_resume(self, event: events.ScreenResume) -> None:
        if self._left_with is not None and self._left_with == self._app_style_state():
            event.refresh_styles = False

    _held: Any = None  # the timer that ends a hold

    def _hold(self) -> None:
        """Hold the app's updates until `_release` (the data is shown) or HOLD_S."""
        if self._held is None:
            self.app._begin_batch()
            self._held = self.set_timer(HOLD_S, self._release)

    def _release(self) -> None:
        held, self._held = self._held, None
        if held is not None:
            held.stop()
            app = self.app
            app._end_batch()
            if not app._batch_count:
                app.screen.refresh()


class SocScreen(KeptStylesScreen):
    """A screen whose data is loaded off the UI thread."""

    MODE = ""
    refresh_every: float = 2.0

    def __init__(self) -> None:
        super().__init__()
        self._loaded_at = 0.0

    @property
    def ctx(self) -> Any:
        return self.app.ctx  # type: ignore[attr-defined]

    def compose_top(self) -> ComposeResult:
        yield TopBar(self.MODE)

    def compose_bottom(self) -> ComposeResult:
        yield KeysFooter()

    def on_mount(self) -> None:
        if self.refresh_every:
            self.set_interval(self.refresh_every, self._maybe_reload)
        from soc_tui.ui.app import freeze_mounted

        self.call_after_refresh(freeze_mounted)

    def on_screen_resume(self) -> None:
        for bar in self.query(TopBar):
            bar.draw()
        if self.has_data():
            self._hold()  # (see KeptStylesScreen)
        self.reload()

    def _maybe_reload(self) -> None:
        if self.is_current and time.monotonic() - self._loaded_at >= self.refresh_every * 0.9:
            self.reload()

    @classmethod
    def has_data(cls) -> bool:
        """Whether the screen reads data of its own (`load`). Events has none:
        the app's live tick keeps its stream current, shown or not."""
        return cls.load is not SocScreen.load

    def reload(self) -> None:
        self._loaded_at = time.monotonic()
        if self.has_data():
            self._load_worker()

    @work(thread=True, exclusive=True, group="load", exit_on_error=False)
    def _load_worker(self) -> None:
        try:
            data = self.load()
        except Exception as exc:  # noqa: BLE001 - shown, the next reload retries
            self.app.call_from_thread(self.notify, printable(f"{type(exc).__name__}: {exc}"),
                                      title="Loading failed", severity="error", markup=False)
            return
        self.app.call_from_thread(self._show_if_mounted, data)

    def _show_if_mounted(self, data: Any) -> None:
        if self.is_attached:
            self.show(data)
        self._release()

    def load(self) -> Any:
        """Runs in a thread worker: read what the screen shows."""
        return None

    def show(self, data: Any) -> None:
        """On the UI thread: put `data` on the screen."""
