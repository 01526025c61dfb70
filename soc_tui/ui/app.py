"""The Textual application: screens as modes, global keys, the live tick, notifications.

Owns: `SocApp`: the six screens (Overview, Events, Alerts, Incidents,
Rules, Sources) as modes switched by the number keys, the command palette
entries for every screen and every key of the current screen, `?` for the
key list, the 10 Hz tick that drains the live feed and hands the events to
whichever screen shows them, toasts (and the bell) for new high and
critical alerts, and a clean exit on ctrl+q, SIGTERM, SIGHUP or a vanished
terminal (the CLI then stops the collector, which commits what it read).
Must not: run SQL (screens call the store through thread workers) or touch
the collector's internals.
"""

from __future__ import annotations

import asyncio
import gc
import os
import select
import signal
import sys
from typing import Any, Iterable

from textual.app import App, SystemCommand
from textual.binding import Binding
from textual.screen import Screen
from textual.widget import AwaitMount

from soc_tui.text import printable
from soc_tui.ui import textual_fixes
from soc_tui.ui.context import UiContext

textual_fixes.apply()  # before anything is drawn

TICK_S = 0.1  # the live feed is drained 10 times a second

SCREENS: tuple[tuple[str, str, str], ...] = (
    # (mode, key, title)
    ("overview", "1", "Overview"),
    ("events", "2", "Events"),
    ("alerts", "3", "Alerts"),
    ("incidents", "4", "Incidents"),
    ("rules", "5", "Rules"),
    ("sources", "6", "Sources"),
)
TRAINING = ("training", "7", "Training")


def _modes() -> dict[str, Any]:
    from soc_tui.ui.screens.alerts import AlertsScreen
    from soc_tui.ui.screens.events import EventsScreen
    from soc_tui.ui.screens.incidents import IncidentsScreen
    from soc_tui.ui.screens.overview import OverviewScreen
    from soc_tui.ui.screens.rules import RulesScreen
    from soc_tui.ui.screens.sources import SourcesScreen

    from soc_tui.ui.screens.training import TrainingScreen

    return {"overview": OverviewScreen, "events": EventsScreen, "alerts": AlertsScreen,
            "incidents": IncidentsScreen, "rules": RulesScreen, "sources": SourcesScreen,
            "training": TrainingScreen}


def screens_of(ctx: UiContext) -> tuple[tuple[str, str, str], ...]:
    """The screens of this session: the six, and Training in `demo --train`."""
    return SCREENS + ((TRAINING,) if ctx.quiz is not None else ())


class SocApp(App[None]):
    TITLE = "soc-tui"
    CSS_PATH = "app.tcss"
    ENABLE_COMMAND_PALETTE = True
    BINDINGS = [
        # The top bar shows the screens and their keys: the footer keeps its room.
        *(Binding(key, f"switch_mode('{mode}')", title, show=False)
          for mode, key, title in (*SCREENS, TRAINING)),
        Binding("question_mark", "show_keys", "Keys", show=True),
        Binding("f2", "demo_speed", "Speed", show=True),  # demo mode only (check_action)
        Binding("ctrl+q", "quit", "Quit", show=True, priority=True),
    ]

    def __init__(self, ctx: UiContext, *, start: str = "overview") -> None:
        self.MODES = _modes()
        super().__init__()
        self.ctx = ctx
        self.start_mode = start
        self.animation_level = "none"  # over SSH, every frame costs
        if ctx.options.theme:
            self.theme = ctx.options.theme
        self.sub_title = ctx.db
        self.feed_error = ""
        self.live_targets: set[Any] = set()  # screens that show the live stream (they register)

    # -- life cycle ---------------------------------------------------------------

    def on_mount(self) -> None:
        try:
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGTERM, signal.SIGHUP):
                loop.add_signal_handler(sig, self._signalled)
        except (RuntimeError, NotImplementedError, ValueError):
            pass  # not the main thread (tests): nothing to install
        self.ctx.feed.want_events = False  # until a screen shows the stream
        self.ctx.feed.start()
        self.set_interval(TICK_S, self._tick, name="live-tick")
        self._terminal_fd = _terminal_fd()
        if self._terminal_fd is not None:
            self.set_interval(1.0, self._check_terminal, name="terminal-watch")
        self.switch_mode(self.start_mode)
        self.call_after_refresh(_freeze_startup_objects)

    def _signalled(self) -> None:
        self.exit()

    # -- switching screens ---------------------------------------------------------

    _switch_in_place = False

    def switch_mode(self, mode: str) -> AwaitMount:
        """Textual's switch, without its 50 ms hold of every update
        (`delay_update`, which masks a new screen being built) when the
        screen was built on an earlier visit: it is drawn as soon as its
        fresh data is shown, or with what it showed then if that data takes
        longer than HOLD_S (KeptStylesScreen)."""
        self._switch_in_place = mode in self._screen_stacks
        try:
            return super().switch_mode(mode)
        finally:
            self._switch_in_place = False

    def delay_update(self, delay: float = 0.05) -> None:
        if not self._switch_in_place:
            super().delay_update(delay)

    def _check_terminal(self) -> None:
        """Leave when the terminal went away (an SSH session that dropped
        without a SIGHUP reaching us): its end of the pty hung up."""
        if self._terminal_fd is not None and _hung_up(self._terminal_fd):
            self._terminal_fd = None
            self.exit(return_code=1, message="the terminal went away")

    def on_unmount(self) -> None:
        self.ctx.feed.stop()
        # The collector's settings for the UI (_freeze_startup_objects) end with it.
        gc.unfreeze()
        if _GC_BEFORE:
            gc.set_threshold(*_GC_BEFORE.pop())

    # -- the live tick -------------------------------------------------------------

    def _tick(self) -> None:
        """Drain the feed once and pass it on: the events to every screen that
        shows a stream (EventsScreen.live), the loud alerts to a toast."""
        if not self.is_running:
            # Shutting down: the screens are being taken apart while this
            # timer still runs (a tick then failed on a widget just removed).
            return
        got = self.ctx.feed.drain()
        if self.ctx.feed.error != self.feed_error:
            self.feed_error = self.ctx.feed.error
            if self.feed_error:
                self.notify(printable(self.feed_error), title="Reading the database failed",
                            severity="error", markup=False)
        if got.events or got.skipped:
            for screen in self._live_screens():  # (a screen's live() is cheap: see EventStream)
                screen.live(got.events, got.skipped)
        for alert in got.alerts[:5]:
            self.notify(
                printable(f"{alert.rule_name}: {alert.title}"
                          + (f" from {alert.src_ip}" if alert.src_ip else "")),
                title=f"New {alert.severity} alert #{alert.id}",
                severity="error" if alert.severity == "critical" else "warning",
                timeout=8, markup=False,
            )
        if len(got.alerts) > 5:
            self.notify(f"and {len(got.alerts) - 5} more high or critical alerts",
                        severity="warning", markup=False)
        if got.alerts and self.ctx.options.bell:
            self.bell()

    def _live_screens(self) -> Iterable[Any]:
        return list(self.live_targets)

    # -- keys and commands ---------------------------------------------------------

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        # False: neither shown nor run (None would show it greyed out).
        if action == "demo_speed" and self.ctx.replayer is None:
            return False  # there is no demo
        if action == "switch_mode" and parameters == ("training",) and self.ctx.quiz is None:
            return False
        return True

    def action_demo_speed(self) -> None:
        replayer = self.ctx.replayer
        if replayer is None:
            return
        speed = replayer.next_speed()
        self.notify("demo paused (F2: play)" if speed == 0 else f"demo at {speed:g}x real time",
                    markup=False, timeout=3)
        for bar in self.screen.query("TopBar"):
            bar.draw()  # type: ignore[attr-defined]

    def action_show_keys(self) -> None:
        if self.screen.query("HelpPanel"):
            self.action_hide_help_panel()
        else:
            self.action_show_help_panel()

    def get_system_commands(self, screen: Screen[Any]) -> Iterable[SystemCommand]:
        yield from super().get_system_commands(screen)
        for mode, key, title in screens_of(self.ctx):
            yield SystemCommand(f"Go to {title}", f"Switch to the {title} screen (key {key})",
                                lambda mode=mode: self.switch_mode(mode))
        # Every key of the current screen, so that each action is reachable from here.
        seen: set[str] = set()
        where = screen.__class__.__name__.removesuffix("Screen")
        for active in screen.active_bindings.values():
            b, node = active.binding, active.node
            if node is self or not b.description or b.action in seen:
                continue
            seen.add(b.action)
            yield SystemCommand(f"{where}: {b.description}", f"key {b.key_display or b.key}",
                                lambda b=b, node=node: self.call_later(self.run_action, b.action, node))


_GC_BEFORE: list[tuple[int, ...]] = []  # the process's settings before the UI's (restored at its end)


def _freeze_startup_objects() -> None:
    """Garbage-collector settings for the UI process (see freeze_mounted).

    Measured while ingesting 10k lines/s, with the defaults: 27 full
    collections a minute of 170-380 ms each, every one a pause of the UI
    thread (and of its workers): most of the UI loop's late ticks. A full
    collection now comes at most every 100 collections of the middle
    generation instead of 10, and the youngest is collected every 1,500
    allocations instead of 700. (With what drawing made no longer left in
    reference cycles, see textual_fixes, the young generations hold mostly
    live objects: 5,000 and 20, tried before, made pauses of 50-140 ms for
    the middle one; 1,500 and 10 keep them near 20-40 ms, and benchmarks/tui.py
    had 2-4 keys of 200 over 100 ms against 11-16.)"""
    freeze_mounted()
    _GC_BEFORE[:] = [gc.get_threshold()]
    gc.set_threshold(1_500, 10, 100)


def freeze_mounted() -> None:
    """Move what exists now out of the collector's sight, after a collection:
    called once the first screen is up (modules, the app, its styles) and
    when a screen is first mounted (its widgets live as long as the app:
    screens stay mounted), so that full collections walk only what came
    later."""
    gc.collect()
    gc.freeze()


def _terminal_fd() -> int | None:
    """The terminal's file descriptor (stdin), or None when there is none (tests)."""
    try:
        fd = sys.__stdin__.fileno() if sys.__stdin__ is not None else -1
    except (ValueError, OSError):
        return None
    return fd if fd >= 0 and os.isatty(fd) else None


def _hung_up(fd: int) -> bool:
    poller = select.poll()
    poller.register(fd, select.POLLHUP | select.POLLERR | select.POLLNVAL)
    try:
        events = poller.poll(0)
    except OSError:
        return True
    return any(mask & (select.POLLHUP | select.POLLERR | select.POLLNVAL) for _, mask in events)
