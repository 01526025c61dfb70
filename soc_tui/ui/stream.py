"""The live event stream widget: one line per event over a bounded ring buffer.

Owns: `EventStream`, a Line API widget (ScrollView + `render_line`, never
DataTable/RichLog/Log) that keeps the newest `capacity` event dicts in a
`collections.deque`, renders only the visible lines from a per-event display
string computed once (cut, then made inert with `printable()`, never parsed
as markup), follows the tail or pauses with an "N new" count, and keeps a
cursor that posts `Highlighted` / `Selected` / `FollowChanged` messages.
Paused, the buffer holds still: new events wait in a second deque of the
same bound and join the buffer when following resumes.
Must not: touch SQLite or files (events arrive through `extend()` /
`set_events()` from whoever drains the pipeline or runs a search).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from typing import Any, ClassVar

from rich.segment import Segment
from rich.style import Style
from textual.events import Click, MouseScrollUp, Resize
from textual.binding import Binding, BindingType
from textual.geometry import Size
from textual.message import Message
from textual.reactive import reactive
from textual.scroll_view import ScrollView
from textual.strip import Strip

from soc_tui.text import printable

DEFAULT_CAPACITY = 10_000
# Characters of message/raw kept before printable(): a 1 MB line costs as
# little to render as a short one. printable() may expand a character to 6,
# so the result is cut again to DISPLAY_MAX.
MESSAGE_MAX = 2000
DISPLAY_MAX = 2000
FIELD_MAX = 200  # host, app, pid
ELLIPSIS = "…"

ERROR_LEVELS = frozenset({"err", "error", "crit", "critical", "alert", "emerg", "emergency", "fatal"})
WARNING_LEVELS = frozenset({"warning", "warn"})

_NORMAL, _WARNING, _ERROR = 0, 1, 2


def safe_text(value: Any, limit: int) -> str:
    """`value` as inert display text: cut to `limit` characters, then escaped."""
    text = value if isinstance(value, str) else str(value)
    cut = len(text) > limit
    if cut:
        text = text[:limit]
    text = printable(text)
    if len(text) > limit:
        text, cut = text[:limit], True
    return text + ELLIPSIS if cut else text


def _clock(ts: Any) -> str:
    """HH:MM:SS (UTC) of a microsecond timestamp."""
    try:
        s = (int(ts) // 1_000_000) % 86_400
    except (TypeError, ValueError):
        return "--:--:--"
    return f"{s // 3600:02d}:{s // 60 % 60:02d}:{s % 60:02d}"


def display_parts(event: dict[str, Any]) -> tuple[str, str, str, int]:
    """(time, "host app[pid]:", message, severity) of an event, all inert text."""
    host, app, pid = event.get("host"), event.get("app"), event.get("pid")
    head = []
    if host not in (None, ""):
        head.append(safe_text(host, FIELD_MAX))
    if app not in (None, ""):
        tag = safe_text(app, FIELD_MAX)
        if pid not in (None, ""):
            tag += f"[{safe_text(pid, FIELD_MAX)}]"
        head.append(tag + ":")
    message = event.get("message")
    if message is None:
        message = event.get("raw")
    body = "" if message is None else safe_text(message, MESSAGE_MAX)
    level = str(event.get("level") or "").lower()
    if event.get("outcome") == "failure" or level in ERROR_LEVELS:
        severity = _ERROR
    elif level in WARNING_LEVELS:
        severity = _WARNING
    else:
        severity = _NORMAL
    return _clock(event.get("ts")), " ".join(head), body, severity


def display_line(event: dict[str, Any]) -> str:
    """The plain text of an event's line (what `render_line` shows, uncropped)."""
    clock, head, body, _ = display_parts(event)
    return " ".join(p for p in (clock, head, body) if p)


def _key(event: dict[str, Any]) -> object:
    event_id = event.get("id")
    # Events without an id (not stored yet) are cached by object identity;
    # the cache entry is dropped together with the event.
    return ("obj", id(event)) if event_id is None else event_id


class EventStream(ScrollView, can_focus=True):
    """Live event stream: newest at the bottom, follow mode, cursor, one line per event."""

    ALLOW_SELECT = False

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("up", "cursor_up", "Up", show=False),
        Binding("down", "cursor_down", "Down", show=False),
        Binding("pageup", "page_up", "Page up", show=False),
        Binding("pagedown", "page_down", "Page down", show=False),
        Binding("home", "first", "Oldest", show=False),
        Binding("end", "resume", "Follow", show=True),
        Binding("enter", "select", "Details", show=True),
    ]

    COMPONENT_CLASSES: ClassVar[set[str]] = {
        "event-stream--time",
        "event-stream--source",
        "event-stream--warning",
        "event-stream--error",
        "event-stream--cursor",
    }

    DEFAULT_CSS = """
    EventStream {
        height: 1fr;
        overflow-x: hidden;
        overflow-y: auto;
        background: $surface;
        color: $foreground;
        & > .event-stream--time { text-style: dim; }
        & > .event-stream--source { color: $secondary; }
        & > .event-stream--warning { color: $warning; }
        & > .event-stream--error { color: $error; }
        & > .event-stream--cursor {
            color: $block-cursor-blurred-foreground;
            background: $block-cursor-blurred-background;
            text-style: $block-cursor-blurred-text-style;
        }
        &:focus > .event-stream--cursor {
            color: $block-cursor-foreground;
            background: $block-cursor-background;
            text-style: $block-cursor-text-style;
        }
    }
    """

    following: reactive[bool] = reactive(True, init=False, repaint=False)
    """Keep the view at the newest event (False while the user looks back)."""
    new_count: reactive[int] = reactive(0, init=False, repaint=False)
    """Events appended since following stopped."""
    cursor: reactive[int] = reactive(0, init=False, repaint=False)
    """Index of the highlighted event in the buffer (0 = oldest kept)."""

    class _EventMessage(Message):
        def __init__(self, stream: EventStream, event: dict[str, Any]) -> None:
            super().__init__()
            self.stream = stream
            self.event = event

        @property
        def control(self) -> EventStream:
            return self.stream

    class Highlighted(_EventMessage):
        """The cursor moved to another event."""

    class Selected(_EventMessage):
        """An event was chosen (enter or click)."""

    class FollowChanged(Message):
        """Following or the count of events arrived while paused changed."""

        def __init__(self, stream: EventStream, following: bool, new_count: int) -> None:
            super().__init__()
            self.stream = stream
            self.following = following
            self.new_count = new_count

        @property
        def control(self) -> EventStream:
            return self.stream

    def __init__(
        self,
        capacity: int = DEFAULT_CAPACITY,
        *,
        name: str | None = None,
        id: str | None = None,
        classes: str | None = None,
        disabled: bool = False,
    ) -> None:
        super().__init__(name=name, id=id, classes=classes, disabled=disabled)
        if capacity < 1:
            raise ValueError("capacity must be at least 1")
        self._events: deque[dict[str, Any]] = deque(maxlen=capacity)
        # Arrived while paused: the newest `capacity` of them, shown on resume.
        self._waiting: deque[dict[str, Any]] = deque(maxlen=capacity)
        self._parts: dict[object, tuple[str, str, str, int]] = {}
        self._posted_follow: tuple[bool, int] = (True, 0)
        self._highlighted: dict[str, Any] | None = None

    # -- content --------------------------------------------------------------

    @property
    def capacity(self) -> int:
        maxlen = self._events.maxlen
        assert maxlen is not None
        return maxlen

    @property
    def events(self) -> deque[dict[str, Any]]:
        """The buffered events, oldest first (read only: change them with extend/set_events)."""
        return self._events

    def __len__(self) -> int:
        return len(self._events)

    @property
    def newest(self) -> dict[str, Any] | None:
        """The newest event given to the stream: shown, or waiting while paused."""
        if self._waiting:
            return self._waiting[-1]
        return self._events[-1] if self._events else None

    @property
    def selected_event(self) -> dict[str, Any] | None:
        """The event under the cursor, or None when the stream is empty."""
        if not self._events:
            return None
        return self._events[self.cursor]

    def extend(self, events: Iterable[dict[str, Any]]) -> None:
        """Append events (oldest first); cheap enough for every UI tick. While
        paused they wait and are counted: the events the user is reading
        stay where they are, however fast new ones come."""
        new = events if isinstance(events, list) else list(events)
        if not new:
            return
        if not self.following:
            self._waiting.extend(new)
            self.new_count += len(new)
            return
        self._append(new)
        self._move_cursor(len(self._events) - 1)
        self._scroll_to_end()

    def _append(self, new: list[dict[str, Any]]) -> None:
        buf, cap = self._events, self.capacity
        dropped = max(0, len(buf) + len(new) - cap)
        if len(new) >= cap:
            buf.clear()
            self._parts.clear()
            buf.extend(new[-cap:])
        else:
            parts = self._parts
            for _ in range(dropped):
                parts.pop(_key(buf.popleft()), None)
            buf.extend(new)
        self._update_virtual_size()
        self.refresh()

    def set_events(self, events: Iterable[dict[str, Any]]) -> None:
        """Replace the content (e.g. search results, oldest first): cursor on the
        newest, following resumed."""
        self._events.clear()
        self._waiting.clear()
        self._parts.clear()
        new = list(events)
        self._events.extend(new[-self.capacity:])
        self._reset()

    def clear(self) -> None:
        """Drop every event."""
        self._events.clear()
        self._waiting.clear()
        self._parts.clear()
        self._reset()

    def _reset(self) -> None:
        self._update_virtual_size()
        self.set_reactive(EventStream.cursor, 0)
        self._highlighted = None
        self.following = True
        self._move_cursor(len(self._events) - 1)
        self._scroll_to_end()
        self.new_count = 0
        self.refresh()

    def _update_virtual_size(self) -> None:
        self.virtual_size = Size(self.scrollable_content_region.width, len(self._events))

    # -- cursor and follow -----------------------------------------------------

    def validate_cursor(self, value: int) -> int:
        return max(0, min(value, len(self._events) - 1))

    def watch_cursor(self, old: int, new: int) -> None:
        self._refresh_index(old)
        self._refresh_index(new)

    def watch_following(self, following: bool) -> None:
        if following:
            if self._waiting:
                self._append(list(self._waiting))
                self._waiting.clear()
            self.new_count = 0
            self._move_cursor(len(self._events) - 1)
            self._scroll_to_end()
        self._post_follow()

    def watch_new_count(self) -> None:
        self._post_follow()

    def _post_follow(self) -> None:
        state = (self.following, self.new_count)
        if state != self._posted_follow:
            self._posted_follow = state
            self.post_message(self.FollowChanged(self, *state))

    def _move_cursor(self, index: int) -> None:
        """Put the cursor on `index` and announce the event if it changed."""
        self.cursor = index
        event = self.selected_event
        if event is not None and event is not self._highlighted:
            self._highlighted = event
            self.post_message(self.Highlighted(self, event))
        elif event is None:
            self._highlighted = None

    def _refresh_index(self, index: int) -> None:
        y = index - self.scroll_offset.y
        if 0 <= y < self.scrollable_content_region.height:
            self.refresh_line(index)

    def _scroll_to_end(self) -> None:
        self.scroll_to(y=self.max_scroll_y, animate=False, force=True)

    def _scroll_to_cursor(self) -> None:
        top = self.scroll_offset.y
        height = max(1, self.scrollable_content_region.height)
        if self.cursor < top:
            self.scroll_to(y=self.cursor, animate=False, force=True)
        elif self.cursor >= top + height:
            self.scroll_to(y=self.cursor - height + 1, animate=False, force=True)

    def _user_move(self, index: int) -> None:
        """A cursor move asked for by the user: stop following unless it lands on the end."""
        if not self._events:
            return
        index = self.validate_cursor(index)
        if index != len(self._events) - 1 or not self.following:
            self.following = False
        self._move_cursor(index)
        self._scroll_to_cursor()

    def _page(self) -> int:
        return max(1, self.scrollable_content_region.height - 1)

    def action_cursor_up(self) -> None:
        self._user_move(self.cursor - 1)

    def action_cursor_down(self) -> None:
        self._user_move(self.cursor + 1)

    def action_page_up(self) -> None:
        self._user_move(self.cursor - self._page())

    def action_page_down(self) -> None:
        self._user_move(self.cursor + self._page())

    def action_first(self) -> None:
        self._user_move(0)

    def action_resume(self) -> None:
        """Go to the newest event and follow again."""
        if self.following:
            self._move_cursor(len(self._events) - 1)
            self._scroll_to_end()
        else:
            self.following = True  # the watcher moves, scrolls and zeroes new_count

    def action_select(self) -> None:
        event = self.selected_event
        if event is not None:
            self.post_message(self.Selected(self, event))

    # -- mouse and size --------------------------------------------------------

    def on_click(self, event: Click) -> None:
        offset = event.get_content_offset(self)
        if offset is None:
            return
        index = self.scroll_offset.y + offset.y
        if 0 <= index < len(self._events):
            event.stop()
            self.following = False
            self._move_cursor(index)
            self.action_select()

    def on_mouse_scroll_up(self, event: MouseScrollUp) -> None:
        # Looking back with the wheel pauses, or the next tick would yank the view away.
        if self.following and self.max_scroll_y > 0:
            self.following = False

    def on_resize(self, event: Resize) -> None:
        self._update_virtual_size()
        if self.following:
            self._scroll_to_end()
        else:
            self._scroll_to_cursor()

    # -- rendering -------------------------------------------------------------

    def parts_of(self, event: dict[str, Any]) -> tuple[str, str, str, int]:
        """An event's display parts, computed once while the event is buffered."""
        key = _key(event)
        parts = self._parts.get(key)
        if parts is None:
            parts = self._parts[key] = display_parts(event)
        return parts

    def render_line(self, y: int) -> Strip:
        scroll_x, scroll_y = self.scroll_offset
        index = scroll_y + y
        width = self.scrollable_content_region.width
        base = self.rich_style
        if not 0 <= index < len(self._events):
            return Strip.blank(width, base)
        clock, head, body, severity = self.parts_of(self._events[index])
        segments = [Segment(clock, base + self.get_component_rich_style("event-stream--time"))]
        if head:
            segments.append(Segment(" ", base))
            segments.append(Segment(head, base + self.get_component_rich_style("event-stream--source")))
        if body:
            # Only the start can be visible: cropping 2000 characters per line
            # costs more than the rest of the render. The margin covers
            # zero-width characters.
            body = body[: 4 * (scroll_x + width) + 16]
            body_style = base
            if severity == _ERROR:
                body_style = base + self.get_component_rich_style("event-stream--error")
            elif severity == _WARNING:
                body_style = base + self.get_component_rich_style("event-stream--warning")
            segments.append(Segment(" ", base))
            segments.append(Segment(body, body_style))
        fill: Style = base
        if index == self.cursor:
            cursor_style = self.get_component_rich_style("event-stream--cursor")
            segments = list(Segment.apply_style(segments, post_style=cursor_style))
            fill = base + cursor_style
        strip = Strip(segments).crop_extend(scroll_x, scroll_x + width, fill)
        return strip.apply_offsets(scroll_x, index)
