"""Events: the live stream, search over the whole database, the detail pane and pivots.

Owns: `EventsScreen`. Without a query the stream follows the live feed
(`live()`, called by the app's tick; paused with an "N new" badge, End
resumes); with a query it shows the newest matches from the whole database,
searched in a thread worker that interrupts the previous search; a bad
query shows the error with a caret under its position. The detail pane
lists every field and the raw line (inert text). Pivots: filter on the
event's src_ip, user or host, or show the events around it; from an event,
raise an alert or pin it to an incident.
Must not: run SQL on the UI thread or render log text as markup.
"""

from __future__ import annotations

import json
import sqlite3
from typing import Any

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.widgets import Input, Static

from soc_tui.store import triage
from soc_tui.store.search import SearchError, compile_query
from soc_tui.text import printable
from soc_tui.ui.modals import TextModal
from soc_tui.ui.screens.base import SocScreen, Writes, set_line, ts_text
from soc_tui.ui.stream import EventStream

SEARCH_LIMIT = 5000  # newest matches shown (the count says how many there are)
DETAIL_FIELDS = ("id", "ts", "host", "app", "pid", "level", "action", "outcome", "user",
                 "target_user", "src_ip", "src_port", "http_method", "url", "http_status", "bytes",
                 "user_agent", "referrer", "repeat", "source_id", "message")


def quote_value(value: str) -> str:
    """A value as the search language reads it literally in `field:value`."""
    if value and all(c.isalnum() or c in ".:-_@/" for c in value):
        return value
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def detail_text(ev: dict[str, Any]) -> Text:
    t = Text()
    for name in DETAIL_FIELDS:
        value = ev.get(name)
        if value is None or value == "":
            continue
        if name == "ts":
            value = ts_text(value) + f".{value % 1_000_000:06d} UTC"
        t.append(f"{name:>12} ", style="bold")
        t.append(printable(str(value)[:4000]) + "\n")
    extra = ev.get("extra")
    if extra:
        text = json.dumps(extra, ensure_ascii=False) if not isinstance(extra, str) else extra
        t.append(f"{'extra':>12} ", style="bold")
        t.append(printable(text[:4000]) + "\n")
    t.append(f"{'raw':>12} ", style="bold")
    raw = ev.get("raw") or ""
    t.append(printable(raw[:20000]) + (" …(cut)" if len(raw) > 20000 else ""))
    return t


class EventsScreen(Writes, SocScreen):
    MODE = "events"
    refresh_every = 0  # the app's tick feeds it
    BINDINGS = [
        Binding("slash", "focus_search", "Search"),
        Binding("escape", "back", "Live/close", show=False),
        Binding("d", "toggle_detail", "Detail"),
        Binding("f", "pivot('src_ip')", "Same IP"),
        Binding("u", "pivot('user')", "Same user"),
        Binding("h", "pivot('host')", "Same host"),
        Binding("x", "around", "Around"),
        Binding("r", "raise_alert", "Alert", show=False),
        Binding("i", "to_incident", "Incident", show=False),
    ]
    DEFAULT_CSS = """
    EventsScreen #search { height: 1; border: none; padding: 0 1; background: $boost; }
    EventsScreen #search:focus { background: $primary 30%; }
    EventsScreen #events-status { height: 1; padding: 0 1; background: $boost; }
    EventsScreen #detail { height: 45%; }
    EventsScreen #stream { height: 1fr; }
    """

    def __init__(self) -> None:
        super().__init__()
        self.query_text = ""  # "" : live
        self.live_buffer: list[dict[str, Any]] = []
        self.skipped = 0
        self.matches: int | None = None

    def compose(self) -> ComposeResult:
        yield from self.compose_top()
        yield Input(placeholder="/ search: words \"phrases\" field:value src_ip:10.0.0.0/8 since:15m"
                    " (enter; escape: back to live)", id="search")
        yield Static("", id="search-error", classes="search-error")
        yield Static("", id="events-status")
        yield EventStream(id="stream")
        with VerticalScroll(id="detail"):
            yield Static("", id="detail-text")
        yield from self.compose_bottom()

    def on_mount(self) -> None:
        super().on_mount()
        self.app.live_targets.add(self)  # type: ignore[attr-defined]
        self.query_one(EventStream).focus()
        self._refill_live()  # the newest stored events; the tick adds what comes next
        self._status()

    def on_unmount(self) -> None:
        self.app.live_targets.discard(self)  # type: ignore[attr-defined]
        self.ctx.feed.want_events = False

    def on_screen_resume(self) -> None:
        super().on_screen_resume()
        # The feed reads events only while this screen is shown; back here,
        # its next poll brings what was stored meanwhile (see LiveFeed).
        self.ctx.feed.want_events = True

    def on_screen_suspend(self) -> None:
        self.ctx.feed.want_events = False

    @property
    def stream(self) -> EventStream:
        return self.query_one(EventStream)

    # -- live -------------------------------------------------------------------------

    def live(self, events: list[dict[str, Any]], skipped: int) -> None:
        """From the app's tick: events stored since the last one (oldest first)."""
        if self.query_text:
            return  # showing search results; the live stream resumes after escape
        if not self.is_attached:
            return
        self.skipped += skipped
        stream = self.stream
        newest = stream.newest
        last = newest["id"] if newest is not None else 0
        if events and events[0]["id"] <= last:
            events = [e for e in events if e["id"] > last]
        stream.extend(events)
        self._status()

    def on_event_stream_follow_changed(self, event: EventStream.FollowChanged) -> None:
        self._status()

    def _status(self) -> None:
        stream = self.stream
        t = Text(no_wrap=True, overflow="ellipsis")
        if self.query_text:
            n = self.matches
            t.append("search ", style="bold")
            t.append(printable(self.query_text[:200]))
            if n is not None:
                shown = len(stream)
                t.append(f"  {n:,} match(es)" + (f", newest {shown:,} shown" if n > shown else ""))
            t.append("   escape: back to live", style="dim")
        elif stream.following:
            t.append("● live", style="bold green")
            t.append(f"  {len(stream):,} in view", style="dim")
        else:
            t.append("⏸ paused", style="bold yellow")
            if stream.new_count:
                t.append(f"  {stream.new_count:,} new", style="bold reverse")
            t.append("  End: follow", style="dim")
        if self.skipped and not self.query_text:
            t.append(f"  ({self.skipped:,} skipped by the live view: too fast to show; search has them)",
                     style="dim")
        set_line(self.query_one("#events-status", Static), t)

    # -- search -----------------------------------------------------------------------

    def action_focus_search(self) -> None:
        self.query_one("#search", Input).focus()

    @on(Input.Submitted, "#search")
    def _submitted(self, event: Input.Submitted) -> None:
        self.search(event.value)

    def search(self, text: str) -> None:
        text = text.strip()
        box = self.query_one("#search", Input)
        if box.value != text:
            box.value = text
        err = self.query_one("#search-error", Static)
        if not text:
            self.back_to_live()
            return
        try:
            compiled = compile_query(text)
        except SearchError as exc:
            box.add_class("-invalid")
            caret = Text(printable(text[:300]) + "\n")
            caret.append(" " * min(exc.position, 300) + "^ " + printable(exc.message), style="bold")
            err.update(caret)
            err.add_class("-visible")
            return
        box.remove_class("-invalid")
        err.remove_class("-visible")
        self.query_text = text
        self.matches = None
        self.stream.set_events([])
        self._status()
        self.ctx.search_reader.interrupt()  # a newer search wins
        self._search(compiled, text)
        self.stream.focus()

    @work(thread=True, exclusive=True, group="search", exit_on_error=False)
    def _search(self, compiled: Any, text: str) -> None:
        reader = self.ctx.search_reader
        try:
            events = reader.search(compiled, limit=SEARCH_LIMIT)
            total = len(events) if len(events) < SEARCH_LIMIT else reader.count(compiled)
        except sqlite3.OperationalError as exc:
            if "interrupt" in str(exc).lower():
                return  # superseded by a newer search
            self.app.call_from_thread(self._search_failed, text, str(exc))
            return
        except Exception as exc:  # noqa: BLE001 - e.g. an FTS syntax the index rejects
            self.app.call_from_thread(self._search_failed, text, str(exc))
            return
        self.app.call_from_thread(self._search_done, text, events, total)

    def _search_done(self, text: str, events: list[dict[str, Any]], total: int) -> None:
        if text != self.query_text:
            return
        self.matches = total
        self.stream.set_events(events)
        self._status()

    def _search_failed(self, text: str, message: str) -> None:
        if text != self.query_text:
            return
        err = self.query_one("#search-error", Static)
        err.update(Text(printable(message[:300])))
        err.add_class("-visible")

    def back_to_live(self) -> None:
        self.query_text = ""
        self.matches = None
        self.query_one("#search", Input).value = ""
        self.query_one("#search-error", Static).remove_class("-visible")
        self.stream.set_events([])
        self._refill_live()
        self._status()

    @work(thread=True, exclusive=True, group="search", exit_on_error=False)
    def _refill_live(self) -> None:
        """The newest stored events (the backlog the live view starts with)."""
        events, top = self.ctx.reader.events_after(0, self.ctx.options.backlog)
        self.ctx.feed.skip_to(top)  # (it would read them again)
        self.app.call_from_thread(self._refilled, events)

    def _refilled(self, events: list[dict[str, Any]]) -> None:
        if not self.query_text:  # plus what the tick brought meanwhile
            last = events[-1]["id"] if events else 0
            self.stream.set_events(events + [e for e in self.stream.events if e["id"] > last])
            self._status()

    def action_back(self) -> None:
        detail = self.query_one("#detail")
        if detail.has_class("-visible"):
            detail.remove_class("-visible")
        elif self.query_text or self.query_one("#search", Input).has_focus:
            self.back_to_live()
            self.stream.focus()

    # -- detail and pivots ------------------------------------------------------------

    def on_event_stream_selected(self, event: EventStream.Selected) -> None:
        self._detail(event.event)
        self.query_one("#detail").add_class("-visible")

    def on_event_stream_highlighted(self, event: EventStream.Highlighted) -> None:
        if self.query_one("#detail").has_class("-visible"):
            self._detail(event.event)

    def _detail(self, ev: dict[str, Any] | None) -> None:
        self.query_one("#detail-text", Static).update(detail_text(ev) if ev else Text(""))

    def action_toggle_detail(self) -> None:
        detail = self.query_one("#detail")
        if detail.has_class("-visible"):
            detail.remove_class("-visible")
        else:
            self._detail(self.stream.selected_event)
            detail.add_class("-visible")

    def action_pivot(self, field: str) -> None:
        ev = self.stream.selected_event
        value = ev.get(field) if ev else None
        if value is None:
            self.notify(f"this event has no {field}", severity="warning")
            return
        self.search(f"{field}:{quote_value(str(value))}")

    def action_around(self) -> None:
        ev = self.stream.selected_event
        if ev is None:
            return
        self.query_text = f"around event {ev['id']}"
        self.query_one("#search", Input).value = ""
        self.matches = None
        self._around(ev["id"], ev.get("host"))

    @work(thread=True, exclusive=True, group="search", exit_on_error=False)
    def _around(self, event_id: int, host: str | None) -> None:
        events = self.ctx.search_reader.events_around(event_id, 50, 50, host=host)
        text = f"around event {event_id}"

        def show() -> None:
            if self.query_text == text:
                self.matches = len(events)
                self.stream.set_events(events)
                ids = [e["id"] for e in events]
                if event_id in ids:
                    self.stream.cursor = ids.index(event_id)
                self._status()

        self.app.call_from_thread(show)

    def action_raise_alert(self) -> None:
        ev = self.stream.selected_event
        if ev is None:
            return
        actor = self.ctx.analyst
        default = f"Manual: {ev.get('action') or ev.get('app') or 'event'} on {ev.get('host') or '?'}"

        def done(title: str | None) -> None:
            if title:
                self.write(f"alert raised: {title}",
                            lambda c: triage.raise_alert(c, [ev["id"]], title, "medium", actor))

        self.app.push_screen(TextModal("Raise an alert on this event (medium): title", printable(default)),
                             done)

    def action_to_incident(self) -> None:
        ev = self.stream.selected_event
        if ev is None:
            return
        event_id, actor = ev["id"], self.ctx.analyst

        def done(choice: int | str) -> None:
            if isinstance(choice, str):
                def call(c: Any) -> Any:
                    iid = triage.create_incident(c, choice, actor)
                    return triage.pin_events(c, iid, [event_id], actor)
                self.write(f"incident created with event {event_id} pinned", call)
            else:
                self.write(f"event {event_id} pinned to incident #{choice}",
                            lambda c: triage.pin_events(c, choice, [event_id], actor))

        self.choose_incident("", done)
