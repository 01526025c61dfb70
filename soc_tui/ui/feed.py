"""The live feed: new events and alerts, read from the database off the UI thread.

Owns: `LiveFeed`, a thread that polls the store for events and alerts
stored since it last looked (whoever collects: this process or another
one, `--attach`) and keeps them in a bounded, lock-protected buffer that
the UI drains on a timer (10-20 Hz): one drain per tick, never one message
or one widget call per event. When more arrive between two drains than the
buffer holds, the oldest are dropped and counted (`skipped`): the stream
shows the newest, and search reads the whole database anyway. While no
screen shows the stream (`want_events` False) it reads no events: until the
stream is first shown it only keeps up with the newest id (the Events
screen reads the backlog it starts with itself); after that it keeps its
place, and its next poll reads up to `catch_up` of the events stored
meanwhile (turning rows into events took the UI process's CPU, and the
GIL, from whichever screen the user was on).
Must not: import Textual or touch widgets.
"""

from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Callable

from soc_tui.store.alerts import StoredAlert
from soc_tui.store.reader import StoreReader

NOTIFY_SEVERITIES = ("high", "critical")


@dataclass
class Drained:
    """What arrived since the last drain."""

    events: list[dict[str, Any]] = field(default_factory=list)
    skipped: int = 0  # events that arrived but were dropped (the buffer was full)
    alerts: list[StoredAlert] = field(default_factory=list)  # new high and critical alerts
    newest_id: int = 0


class LiveFeed:
    def __init__(self, reader: StoreReader, *, capacity: int = 10_000, interval: float = 0.1,
                 alert_interval: float = 1.0, per_poll: int = 250, catch_up: int = 2000,
                 on_error: Callable[[str], None] | None = None) -> None:
        self.reader = reader
        self.capacity = capacity
        # At most this many events are read per poll (the newest): at 10k lines/s
        # nobody reads the stream line by line, and turning every row into an
        # event costs the UI process's CPU. The rest are counted as skipped.
        self.per_poll = per_poll
        self.catch_up = catch_up  # the same, on the first poll after want_events was False
        self.want_events = True  # False while no screen shows the stream: read none
        self._shown = False  # events were wanted once
        self._away = False  # a poll found want_events False since the last read
        self.interval = interval
        self.alert_interval = alert_interval
        self.on_error = on_error
        self.error = ""
        self._events: deque[dict[str, Any]] = deque(maxlen=capacity)
        self._skipped = 0
        self._alerts: list[StoredAlert] = []
        self._lock = threading.Lock()  # the buffer
        self._poll_lock = threading.Lock()
        self._stop = threading.Event()
        self._last_id = 0
        self._last_alert = 0
        self._thread = threading.Thread(target=self._run, name="soc-tui-feed", daemon=True)

    def start(self) -> LiveFeed:
        """Start polling from the newest event stored now (the Events screen
        reads the backlog it starts with itself)."""
        top = self.reader.last_event_id()
        self._last_id = top
        self._last_alert = self._top_alert()
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(5)

    def skip_to(self, event_id: int) -> None:
        """Events up to `event_id` were read elsewhere (the Events screen's
        backlog): the feed goes on from there."""
        with self._poll_lock:
            self._last_id = max(self._last_id, event_id)

    def drain(self) -> Drained:
        with self._lock:
            out = Drained(list(self._events), self._skipped, self._alerts, self._last_id)
            self._events.clear()
            self._skipped = 0
            self._alerts = []
        return out

    # -- the thread -------------------------------------------------------------

    def _top_alert(self) -> int:
        found = self.reader.alerts(limit=1, order="id")
        return found[0].id if found else 0

    def _run(self) -> None:
        since_alerts = 0.0
        while not self._stop.wait(self.interval):
            try:
                self.poll_once()
                since_alerts += self.interval
                if since_alerts >= self.alert_interval:
                    since_alerts = 0.0
                    self.poll_alerts()
                self.error = ""
            except Exception as exc:  # noqa: BLE001 - shown, retried next tick
                self.error = f"{type(exc).__name__}: {exc}"
                if self.on_error is not None:
                    self.on_error(self.error)

    def poll_once(self) -> None:
        """Read the events stored since the last poll into the buffer (one
        poll at a time: two at once would both read from the same id)."""
        with self._poll_lock:
            self._poll()

    def _poll(self) -> None:
        if not self.want_events:  # nobody shows them
            if self._shown:
                self._away = True  # keep the place
            else:
                self._last_id = max(self._last_id, self.reader.last_event_id())
            return
        self._shown = True
        limit = max(self.per_poll, self.catch_up) if self._away else self.per_poll
        self._away = False
        events, top = self.reader.events_after(self._last_id, limit)
        if not events and top <= self._last_id:
            return
        missed = top - self._last_id - len(events)
        with self._lock:
            overflow = max(0, len(self._events) + len(events) - self.capacity)
            self._events.extend(events)
            self._skipped += overflow + max(0, missed)
            self._last_id = top

    def poll_alerts(self) -> None:
        """Note new high and critical alerts (for the notifications)."""
        new = self.reader.alerts(after_id=self._last_alert, order="id")
        if not new:
            return
        self._last_alert = max(a.id for a in new)
        loud = [a for a in new if a.severity in NOTIFY_SEVERITIES]
        if loud:
            with self._lock:
                self._alerts.extend(loud)
