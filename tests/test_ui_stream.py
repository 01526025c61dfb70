"""The live event stream widget (soc_tui.ui.stream.EventStream): ring buffer,
follow/pause, cursor messages and hostile log text, driven through a real
Textual app at 80x24."""

from __future__ import annotations

import re
import time
from typing import Any

from textual.app import App, ComposeResult
from textual.message import Message

from soc_tui.ui.stream import DISPLAY_MAX, EventStream

T0 = 1_700_000_000 * 1_000_000  # 2023-11-14 22:13:20 UTC
CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
SURROGATE = re.compile(r"[\ud800-\udfff]")


def ev(i: int, **fields: Any) -> dict[str, Any]:
    event: dict[str, Any] = {
        "id": i, "ingested_at": T0, "ts": T0 + i * 1_000_000, "host": "web1", "app": "sshd",
        "pid": 100 + i % 7, "level": "info", "action": None, "outcome": None, "user": None,
        "target_user": None, "src_ip": None, "src_port": None, "http_method": None, "url": None,
        "http_status": None, "bytes": None, "user_agent": None, "referrer": None,
        "message": f"event {i}", "repeat": 1, "flags": 0, "raw": f"raw {i}", "extra": None,
        "source_id": 1,
    }
    event.update(fields)
    return event


class StreamApp(App[None]):
    def __init__(self, capacity: int = 10_000) -> None:
        super().__init__()
        self.capacity = capacity
        self.received: list[Message] = []

    def compose(self) -> ComposeResult:
        yield EventStream(capacity=self.capacity, id="stream")

    def on_mount(self) -> None:
        self.query_one(EventStream).focus()

    def on_event_stream_highlighted(self, message: EventStream.Highlighted) -> None:
        self.received.append(message)

    def on_event_stream_selected(self, message: EventStream.Selected) -> None:
        self.received.append(message)

    def on_event_stream_follow_changed(self, message: EventStream.FollowChanged) -> None:
        self.received.append(message)

    def of(self, kind: type[Message]) -> list[Any]:
        return [m for m in self.received if isinstance(m, kind)]


def visible(stream: EventStream) -> list[str]:
    return [stream.render_line(y).text for y in range(stream.scrollable_content_region.height)]


def visible_ids(stream: EventStream) -> list[int]:
    return [int(m.group(1)) for line in visible(stream) if (m := re.search(r"event (\d+)", line))]


async def test_ring_keeps_newest_and_follows_the_tail() -> None:
    app = StreamApp(capacity=10_000)
    async with app.run_test(size=(80, 24)) as pilot:
        stream = app.query_one(EventStream)
        started = time.perf_counter()
        for tick in range(10):
            stream.extend([ev(i) for i in range(tick * 5000, (tick + 1) * 5000)])
            await pilot.pause()
            assert visible_ids(stream)[-1] == (tick + 1) * 5000 - 1
        elapsed = time.perf_counter() - started
        assert elapsed < 5, f"50k events in ticks of 5k took {elapsed:.2f} s"

        assert len(stream) == 10_000
        assert stream.events[0]["id"] == 40_000 and stream.events[-1]["id"] == 49_999
        assert stream.virtual_size.height == 10_000
        # the display cache is bounded together with the buffer
        assert set(stream._parts) <= {e["id"] for e in stream.events}

        height = stream.scrollable_content_region.height
        lines = visible(stream)
        assert visible_ids(stream) == list(range(50_000 - height, 50_000))
        assert lines[-1].startswith("12:06:39 web1 sshd[")  # T0 + 49999 s in UTC
        assert lines[-1].rstrip().endswith("]: event 49999")
        assert all(len(line) == stream.scrollable_content_region.width for line in lines)
        assert stream.following and stream.new_count == 0
        assert stream.cursor == 9_999 and stream.selected_event is stream.events[-1]
        # what actually reaches the screen, not just render_line
        assert "event\u00a049999" in app.export_screenshot().replace("&#160;", "\u00a0")
        # one Highlighted per tick, not per event
        assert len(app.of(EventStream.Highlighted)) == 10


async def test_pause_counts_new_events_and_end_resumes() -> None:
    app = StreamApp(capacity=1_000)
    async with app.run_test(size=(80, 24)) as pilot:
        stream = app.query_one(EventStream)
        stream.extend([ev(i) for i in range(100)])
        await pilot.pause()
        await pilot.press("up")
        assert not stream.following
        assert stream.selected_event is not None and stream.selected_event["id"] == 98
        before, offset = visible(stream), stream.scroll_offset

        stream.extend([ev(i) for i in range(100, 130)])
        await pilot.pause()
        stream.extend([ev(i) for i in range(130, 150)])
        await pilot.pause()
        assert stream.new_count == 50
        assert visible(stream) == before and stream.scroll_offset == offset
        assert stream.selected_event["id"] == 98
        changes = [(m.following, m.new_count) for m in app.of(EventStream.FollowChanged)]
        assert changes == [(False, 0), (False, 30), (False, 50)]

        await pilot.press("end")
        await pilot.pause()
        assert stream.following and stream.new_count == 0
        assert visible_ids(stream)[-1] == 149
        assert stream.selected_event["id"] == 149
        assert app.of(EventStream.FollowChanged)[-1].following is True
        assert app.of(EventStream.FollowChanged)[-1].new_count == 0

        # following again: new events move the view
        stream.extend([ev(150)])
        await pilot.pause()
        assert visible_ids(stream)[-1] == 150 and stream.new_count == 0

        # home / pageup pause too; down does not resume
        await pilot.press("home")
        assert not stream.following and stream.cursor == 0 and visible_ids(stream)[0] == 0
        await pilot.press("pagedown", "down")
        assert not stream.following and stream.cursor > 1


async def test_a_paused_stream_holds_still_however_fast_events_come() -> None:
    """At 10k lines/s a buffer of 10k events turns over every second: paused,
    the events the user reads must stay, and End brings the newest."""
    app = StreamApp(capacity=200)
    async with app.run_test(size=(80, 24)) as pilot:
        stream = app.query_one(EventStream)
        stream.extend([ev(i) for i in range(200)])
        await pilot.pause()
        await pilot.press("pageup", "pageup", "pageup")
        assert not stream.following
        chosen = stream.selected_event
        shown, cursor = visible_ids(stream), stream.cursor
        assert chosen is not None and chosen["id"] in shown and shown[0] > 60
        highlighted = len(app.of(EventStream.Highlighted))

        for start in range(200, 1000, 100):  # four buffers' worth
            stream.extend([ev(i) for i in range(start, start + 100)])
            await pilot.pause()
            assert stream.events[0]["id"] == 0 and stream.events[-1]["id"] == 199
            assert stream.selected_event is chosen and stream.cursor == cursor
            assert visible_ids(stream) == shown
        assert stream.new_count == 800
        assert stream.newest is not None and stream.newest["id"] == 999
        assert len(app.of(EventStream.Highlighted)) == highlighted  # nothing moved

        # the user's keys still move over the same events
        await pilot.press("up")
        assert stream.selected_event["id"] == chosen["id"] - 1

        await pilot.press("end")
        await pilot.pause()
        assert stream.following and stream.new_count == 0
        assert [e["id"] for e in stream.events] == list(range(800, 1000))  # the newest, bounded
        assert stream.selected_event["id"] == 999 and visible_ids(stream)[-1] == 999

        # paused and searched meanwhile: set_events drops what waited
        await pilot.press("up")
        stream.extend([ev(1000)])
        stream.set_events([ev(5000)])
        await pilot.pause()
        assert stream.newest["id"] == 5000 and [e["id"] for e in stream.events] == [5000]


async def test_hostile_text_is_inert() -> None:
    hostile = ("a\x1b[31mred\x1b]0;title\x07 bel\x07 c1\x9bx nul\x00 [bold red]x[/] "
               "[@click=app.quit]q surr\udcff del\x7f tab\tend")
    huge = "A" * 1_000_000
    events = [
        ev(1, message="[@click=app.quit]click me"),
        ev(2, message=None, raw=hostile, host="h\x1b[2J", app="[b]app[/b]", pid="\x07"),
        ev(3, message=huge),
        ev(4, message="\x1b" * 1_000_000),
        ev(5, message=hostile),
    ]
    app = StreamApp()
    async with app.run_test(size=(80, 24)) as pilot:
        stream = app.query_one(EventStream)
        stream.extend(events)
        await pilot.pause()

        lines = visible(stream)
        line = next(line for line in lines if "title" in line)
        assert "h\\x1b[2J [b]app[/b][\\x07]: a\\x1b[31mred\\x1b]0;title\\x07 bel\\x07" in line
        full = stream.parts_of(events[1])[2]
        for literal in ("\\x9bx", "nul\\x00", "[bold red]x[/]", "[@click=app.quit]q",
                        "surr\\xff", "del\\x7f", "tab end"):
            assert literal in full

        # no segment of any rendered line carries a control character or a
        # lone surrogate (which could not even be encoded for the terminal)
        strips = [stream.render_line(y) for y in range(stream.scrollable_content_region.height)]
        for strip in strips:
            for segment in strip:
                assert not CONTROL.search(segment.text), repr(segment.text)
                assert not SURROGATE.search(segment.text), repr(segment.text)
                segment.text.encode("utf-8")
        assert "[@click=app.quit]click me" in lines[0]

        # huge lines are cut before they are escaped, then cropped to the width
        for big in (events[2], events[3]):
            _, _, body, _ = stream.parts_of(big)
            assert len(body) <= DISPLAY_MAX + 1 and body.endswith("…")
        assert stream.parts_of(events[3])[2].startswith("\\x1b\\x1b")
        started = time.perf_counter()
        strip = stream.render_line(2)
        assert time.perf_counter() - started < 0.5
        assert strip.cell_length == stream.scrollable_content_region.width

        # clicking right on the would-be action text selects, and does not quit
        column = lines[0].index("[@click") + 3
        await pilot.click(EventStream, offset=(column, 0))
        await pilot.pause()
        assert app.is_running and app.return_code is None
        selected = app.of(EventStream.Selected)
        assert selected and selected[-1].event is events[0]
        assert stream.cursor == 0 and not stream.following


async def test_enter_selects_and_up_highlights() -> None:
    app = StreamApp()
    async with app.run_test(size=(80, 24)) as pilot:
        stream = app.query_one(EventStream)
        events = [ev(i) for i in range(10)]
        stream.extend(events)
        await pilot.pause()
        assert app.of(EventStream.Highlighted)[-1].event is events[9]
        await pilot.press("up", "up")
        assert app.of(EventStream.Highlighted)[-1].event is events[7]
        await pilot.press("enter")
        await pilot.pause()
        selected = app.of(EventStream.Selected)
        assert len(selected) == 1
        assert selected[0].event is events[7] and selected[0].control is stream
        # the footer shows how to follow again
        shown = {b.key: b.description for b in stream.BINDINGS if getattr(b, "show", False)}
        assert shown.get("end") == "Follow"


async def test_failure_and_error_lines_use_the_error_style() -> None:
    app = StreamApp()
    async with app.run_test(size=(80, 24)) as pilot:
        stream = app.query_one(EventStream)
        stream.extend([ev(0, outcome="failure"), ev(1, level="crit"), ev(2), ev(3)])
        await pilot.pause()
        error = stream.get_component_rich_style("event-stream--error").color
        assert error is not None
        for y, expected in ((0, True), (1, True), (2, False)):
            body = [s for s in stream.render_line(y) if f"event {y}" in s.text]
            assert body and (body[0].style.color == error) is expected
        time_seg = next(iter(stream.render_line(0)))
        assert time_seg.text == "22:13:20" and time_seg.style.dim
        cursor_bg = stream.get_component_rich_style("event-stream--cursor").bgcolor
        assert all(s.style.bgcolor == cursor_bg for s in stream.render_line(3))
        assert any(s.style.bgcolor != cursor_bg for s in stream.render_line(2))


async def test_set_events_replaces_content_and_resets_cursor() -> None:
    app = StreamApp()
    async with app.run_test(size=(80, 24)) as pilot:
        stream = app.query_one(EventStream)
        stream.extend([ev(i) for i in range(100)])
        await pilot.pause()
        await pilot.press("home")
        stream.extend([ev(100)])
        assert stream.new_count == 1 and not stream.following

        results = [ev(i, message=f"result {i}") for i in (1000, 1001, 1002)]
        stream.set_events(results)
        await pilot.pause()
        assert list(stream.events) == results
        assert stream.cursor == 2 and stream.selected_event is results[2]
        assert stream.following and stream.new_count == 0
        assert set(stream._parts) <= {1000, 1001, 1002}
        lines = visible(stream)
        assert "result 1000" in lines[0] and "result 1002" in lines[2]
        assert all(line.strip() == "" for line in lines[3:])
        assert app.of(EventStream.Highlighted)[-1].event is results[2]

        stream.clear()
        await pilot.pause()
        assert len(stream) == 0 and stream.selected_event is None
        assert all(line.strip() == "" for line in visible(stream))
        await pilot.press("up", "enter")  # nothing to move to or select
        assert not app.of(EventStream.Selected)


async def test_resize_keeps_following_at_the_newest() -> None:
    app = StreamApp()
    async with app.run_test(size=(80, 24)) as pilot:
        stream = app.query_one(EventStream)
        stream.extend([ev(i) for i in range(500)])
        await pilot.pause()
        await pilot.resize_terminal(100, 40)
        await pilot.pause()
        assert stream.scrollable_content_region.height == 40
        assert visible_ids(stream)[-1] == 499 and len(visible_ids(stream)) == 40
        assert stream.render_line(0).cell_length == stream.scrollable_content_region.width
        await pilot.resize_terminal(60, 10)
        await pilot.pause()
        assert visible_ids(stream)[-1] == 499
