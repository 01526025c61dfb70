#!/usr/bin/env python3
"""TUI responsiveness benchmark: prints figures, asserts nothing (budgets: p99 <= 100 ms
from a key press to the screen update, peak RSS <= 300 MB with 1M events stored).

    .venv/bin/python benchmarks/tui.py [--events 1000000] [--rate 10000] [--repeat 50]
                                       [--workdir DIR] [--size 120x36] [--gap 0.25]

1. setup, not timed: --events seeded auth.log lines (the ingest benchmark's
   generator) ingested with the shipped rules by `soc-tui ingest` in a child
   process, so that this process's peak RSS is the TUI's alone; with
   --workdir the database is kept and reused by the next run (copied: the
   run adds events);
2. a writer process appends auth.log lines with current timestamps at --rate
   lines/s in bursts every 10 ms (background noise, logins, and brute forces
   from a new address every 5,000 lines, now and then followed by a login
   from it: new alerts and critical toasts keep coming);
3. the TUI as `soc-tui` runs it: the collector process (CollectorProcess:
   the pipeline, and the rule process as its child) on that file, and SocApp
   in this process on the database, headless
   (`run_test`, notifications and tooltips on) at --size. Keys are sent the
   way the terminal driver sends them (no Pilot waits). A key's latency is the
   time from sending it to the first frame that holds its result: the data
   of the new screen (its load worker's `show()`; the Events screen has no
   load, the app's live tick keeps its stream current: its first frame),
   the moved cursor of the event stream, the alert detail with its evidence. A frame is the
   compositor's update handed to `_display`; headless Textual drops it, here
   it is also turned into the terminal's escape sequences (what a terminal
   would be sent) before its time is taken;
4. prints p50/p99/max per action kind as each is done (and per screen for
   the switches; a kind stops pressing after --phase-limit seconds; the
   Overview's top values, which it reads after showing the rest, apart), then the
   lines/s the collector stored meanwhile, how long each screen's `show()`
   held the UI thread, how late the UI loop ran a 10 ms timer, the garbage
   collector's pauses of this process (and how much of them fell within the
   keys slower than 100 ms), and the peak
   RSS (VmHWM) of this process and of its descendants (collector process,
   rule process, parse worker), and of all of them together (sampled).

Instrumentation only: SocApp is subclassed to time frames, and four methods
(SocScreen._show_if_mounted, AlertDetailScreen._show, EventStream._user_move,
OverviewScreen._show_tops) are wrapped to note when they ran; nothing else
differs from `soc-tui`.
"""

from __future__ import annotations

import argparse
import asyncio
import bisect
import collections
import gc
import os
import random
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any, Callable

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from soc_tui.child import descendants  # noqa: E402

MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
USERS = ("root", "admin", "ubuntu", "deploy", "oracle", "test", "git", "postgres")


# -- the writer (a process of its own, like sshd) ----------------------------------------


def write_live(path: str, rate: int) -> None:
    """Append auth.log lines at `rate` lines/s until SIGTERM; print the count."""
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    rng = random.Random(7)
    n = 0
    start = time.monotonic()
    with open(path, "a", encoding="utf-8") as fh:
        while not stop.is_set():
            due = int((time.monotonic() - start) * rate)
            if due > n:
                t = time.gmtime()
                stamp = f"{MONTHS[t.tm_mon - 1]} {t.tm_mday:2d} {t.tm_hour:02d}:{t.tm_min:02d}:{t.tm_sec:02d}"
                lines = []
                while n < due:
                    n += 1
                    lines.append(_live_line(rng, n, stamp))
                fh.write("".join(lines))
                fh.flush()
            time.sleep(0.01)
    print(n, flush=True)


def _live_line(rng: random.Random, n: int, stamp: str) -> str:
    host = f"srv-{n % 4 + 1:02d}"
    pid = 1000 + n % 60000
    wave = n // 5000  # a new brute-forcing address every 5,000 lines
    attacker = f"185.{wave // 250 % 256}.{wave % 250}.{17 + wave % 200}"
    port = rng.randint(1024, 65535)
    user = rng.choice(USERS)
    if n % 50_000 == 49_999:  # the guess worked: a critical alert and its toast
        msg = f"sshd[{pid}]: Accepted password for {user} from {attacker} port {port} ssh2"
    else:
        r = rng.random()
        if r < 0.30:
            msg = f"sshd[{pid}]: Failed password for {user} from {attacker} port {port} ssh2"
        elif r < 0.45:
            ip = f"{rng.choice((45, 103, 198, 203))}.{rng.randint(0, 255)}.{rng.randint(0, 255)}.{rng.randint(1, 254)}"
            msg = f"sshd[{pid}]: Invalid user {user}{rng.randint(0, 99)} from {ip} port {port}"
        elif r < 0.55:
            msg = f"sshd[{pid}]: Connection closed by {attacker} port {port} [preauth]"
        elif r < 0.60:
            msg = (f"sshd[{pid}]: Accepted publickey for deploy from 10.0.{rng.randint(0, 9)}.{rng.randint(1, 254)}"
                   f" port {port} ssh2: ED25519 SHA256:abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG")
        elif r < 0.75:
            msg = f"CRON[{pid}]: pam_unix(cron:session): session opened for user root by (uid=0)"
        elif r < 0.90:
            msg = f"CRON[{pid}]: pam_unix(cron:session): session closed for user root"
        elif r < 0.95:
            msg = f"systemd-logind[{pid}]: New session {rng.randint(1, 9999)} of user deploy."
        else:
            msg = (f"sudo:   deploy : TTY=pts/{rng.randint(0, 5)} ; PWD=/home/deploy ; USER=root ; "
                   "COMMAND=/usr/bin/systemctl restart nginx")
    return f"{stamp} {host} {msg}\n"


# -- setup -------------------------------------------------------------------------------


def db_counts(db: Path) -> tuple[int, int]:
    """(max event id, alert count), read on a connection of our own."""
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        top = conn.execute("SELECT coalesce(max(id), 0) FROM events").fetchone()[0]
        alerts = conn.execute("SELECT count(*) FROM alerts").fetchone()[0]
    finally:
        conn.close()
    return top, alerts


def setup(work: Path, events: int) -> Path:
    """The database with `events` ingested (rules on); reused when it exists."""
    import ingest as ingest_bench

    base = work / f"base-{events}.db"
    done = work / f"base-{events}.done"
    if not done.exists():
        for suffix in ("", "-wal", "-shm"):
            Path(f"{base}{suffix}").unlink(missing_ok=True)
        log = work / f"auth-{events}.log"
        t = time.perf_counter()
        raw = ingest_bench.generate(log, events)
        print(f"setup          generated {events:,} lines, {raw / 1e6:.1f} MB in {time.perf_counter() - t:.1f}s")
        t = time.perf_counter()
        proc = subprocess.run(
            [sys.executable, "-m", "soc_tui", "--db", str(base), "ingest", "--year", "2023",
             "--no-progress", str(log)],
            cwd=ROOT, capture_output=True, text=True)
        if proc.returncode != 0:
            raise SystemExit(f"ingest failed:\n{proc.stdout}{proc.stderr}")
        summary = " ".join(proc.stdout.split())
        print(f"setup          ingested with rules in {time.perf_counter() - t:.1f}s  [{summary}]")
        log.unlink()
        conn = sqlite3.connect(base)
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        conn.close()
        done.write_text("ok\n")
    db = work / "tui.db"
    for suffix in ("", "-wal", "-shm"):
        Path(f"{db}{suffix}").unlink(missing_ok=True)
    shutil.copyfile(base, db)
    return db


# -- process memory ------------------------------------------------------------------------


def status_kb(pid: int | str, field: str) -> int:
    import ingest as ingest_bench  # the ingest benchmark's /proc readers

    return ingest_bench._status_kb(pid, field)  # type: ignore[arg-type]  (a pid or "self")


def child_kind(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as fh:
            cmd = fh.read().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return "other"
    if "soc_tui.detect.process" in cmd:
        return "rule process"
    if "soc_tui.parse_worker" in cmd:
        return "parse worker"
    if "soc_tui.collector" in cmd:
        return "collector process"
    if "--write-live" in cmd:
        return "writer"
    return "other"


class MemorySampler(threading.Thread):
    """Peak RSS (VmHWM, KiB) of each child of this process, by kind, sampled."""

    def __init__(self) -> None:
        super().__init__(name="bench-rss", daemon=True)
        self.peaks: dict[str, int] = {}
        self.together = 0  # this process plus its children (not the writer), VmRSS sampled
        self._stop = threading.Event()

    def sample(self) -> None:
        me = os.getpid()
        total = status_kb(me, "VmRSS")
        for pid in descendants(me):  # the collector process's children are its own
            kind = child_kind(pid)
            if kind == "writer":
                continue
            self.peaks[kind] = max(self.peaks.get(kind, 0), status_kb(pid, "VmHWM"))
            total += status_kb(pid, "VmRSS")
        self.together = max(self.together, total)

    def run(self) -> None:
        while not self._stop.wait(0.25):
            self.sample()

    def stop(self) -> None:
        self._stop.set()
        self.sample()


# -- the app, instrumented -------------------------------------------------------------------


def instrument() -> type:
    """SocApp timing its frames; the methods that put a key's result on
    screen note when they ran (`_bench_at`)."""
    from textual._compositor import CompositorUpdate

    from soc_tui.ui.app import SocApp
    from soc_tui.ui.screens.alerts import AlertDetailScreen
    from soc_tui.ui.screens.base import SocScreen
    from soc_tui.ui.stream import EventStream

    def stamped(cls: type, name: str) -> None:
        original = getattr(cls, name)

        def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
            t = time.perf_counter()
            try:
                return original(self, *args, **kwargs)
            finally:
                self._bench_at = time.perf_counter()
                SHOW_TIMES.setdefault(type(self).__name__, []).append(self._bench_at - t)

        wrapper.__name__ = original.__name__
        setattr(cls, name, wrapper)

    from soc_tui.ui.app import _modes

    def timed_load(cls: type) -> None:
        original = cls.load

        def load(self: Any) -> Any:
            t = time.perf_counter()
            try:
                return original(self)
            finally:
                LOAD_TIMES.setdefault(cls.__name__, []).append(time.perf_counter() - t)

        cls.load = load

    for cls in _modes().values():
        if "load" in cls.__dict__:
            timed_load(cls)
    from soc_tui.ui.screens.overview import OverviewScreen

    original_tops = OverviewScreen._show_tops

    def show_tops(self: Any, key: Any) -> None:
        original_tops(self, key)
        TOPS_AT.append(time.perf_counter())

    OverviewScreen._show_tops = show_tops  # type: ignore[method-assign]
    stamped(SocScreen, "_show_if_mounted")
    stamped(AlertDetailScreen, "_show")
    stamped(EventStream, "_user_move")

    class BenchApp(SocApp):
        # Textual reads CSS_PATH beside the module of the app's class: ours is here.
        CSS_PATH = str(Path(sys.modules[SocApp.__module__].__file__ or "").with_name(SocApp.CSS_PATH))

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self.frame_times: list[float] = []
            self.frame_screens: list[Any] = []
            self.frame_cost: list[float] = []

        def _display(self, screen: Any, renderable: Any) -> None:
            if renderable is not None and not self._batch_count:
                t = time.perf_counter()
                if self.is_headless and isinstance(renderable, CompositorUpdate):
                    renderable.render_segments(self.console)  # what the terminal would be sent
                now = time.perf_counter()
                self.frame_cost.append(now - t)
                self.frame_times.append(now)
                self.frame_screens.append(screen)
                if len(self.frame_times) > 20000:
                    del self.frame_times[:10000], self.frame_screens[:10000], self.frame_cost[:10000]
            super()._display(screen, renderable)

        def frame_after(self, t: float, screen: Any = None) -> float | None:
            """Time of the first frame after `t` (of `screen`, if given)."""
            i = bisect.bisect_right(self.frame_times, t)
            for j in range(i, len(self.frame_times)):
                if screen is None or self.frame_screens[j] is screen:
                    return self.frame_times[j]
            return None

    return BenchApp


TOPS_AT: list[float] = []  # when the Overview's top values (read after the rest) reached the screen
SHOW_TIMES: dict[str, list[float]] = {}  # class name -> seconds its show() held the UI thread
LOAD_TIMES: dict[str, list[float]] = {}  # class name -> seconds of its load() (a thread worker)

KEYS_TIMED: list[tuple[float, float, str]] = []  # (sent, result on screen, key) of the keys in the figures
GC_PAUSES: list[tuple[int, float, float]] = []  # (generation, start, end) of this process's collections
KEY_CHARS = {"enter": "\r", "escape": "\x1b", "tab": "\t", "space": " "}


def send_key(app: Any, key: str) -> None:
    """A key press as the terminal driver delivers it (the driver's input thread
    calls send_message the same way)."""
    from textual import events

    char = KEY_CHARS.get(key, key if len(key) == 1 else None)
    event = events.Key(key, char)
    event.set_sender(app)
    app._driver.send_message(event)


async def timed_key(app: Any, key: str, ready: Callable[[float], float | None],
                    screen: Callable[[], Any] | None = None, timeout: float = 15.0,
                    counted: bool = True) -> tuple[float | None, float | None]:
    """Send `key`; (seconds to the first frame after `ready(t0)` returned a
    time, seconds to the first frame of `screen()`) or None on timeout. A
    counted key (one in the figures) is noted in KEYS_TIMED."""
    t0 = time.perf_counter()
    send_key(app, key)
    first = None
    while time.perf_counter() - t0 < timeout:
        if screen is not None and first is None:
            s = screen()
            if s is not None:
                f = app.frame_after(t0, s)
                if f is not None:
                    first = f - t0
        at = ready(t0)
        if at is not None:
            f = app.frame_after(at)
            if f is not None:
                if counted:
                    KEYS_TIMED.append((t0, f, key))
                return f - t0, first
        await asyncio.sleep(0.001)
    return None, first


def pct(values: list[float], q: float) -> float:
    v = sorted(values)
    return v[min(len(v) - 1, int(len(v) * q))]


def fmt_ms(values: list[float]) -> str:
    if not values:
        return "no samples"
    return (f"p50 {pct(values, 0.5) * 1000:6.1f} ms  p99 {pct(values, 0.99) * 1000:6.1f} ms  "
            f"max {max(values) * 1000:6.1f} ms")


async def drive(app: Any, args: argparse.Namespace, results: dict[str, Any], db: Path) -> None:
    """Press the keys and print each kind's figures as soon as it is done."""
    from soc_tui.ui.app import SCREENS, _modes
    from soc_tui.ui.screens.alerts import AlertDetailScreen, AlertsScreen
    from soc_tui.ui.stream import EventStream

    modes = _modes()
    classes = {key: modes[mode] for mode, key, _title in SCREENS}
    titles = {key: title for _mode, key, title in SCREENS}
    gap = args.gap
    every: list[float] = results.setdefault("all", [])

    def shown(cls: type) -> Callable[[float], float | None]:
        if not cls.has_data():  # (Events) its data is on its first frame
            def drawn(t0: float) -> float | None:
                s = app.screen
                f = app.frame_after(t0, s) if isinstance(s, cls) else None
                return None if f is None else f - 1e-9
            return drawn

        def ready(t0: float) -> float | None:
            s = app.screen
            at = getattr(s, "_bench_at", 0.0)
            return at if isinstance(s, cls) and at > t0 else None
        return ready

    def current(cls: type) -> Callable[[], Any]:
        return lambda: app.screen if isinstance(app.screen, cls) else None

    async def switch(key: str, counted: bool = True) -> tuple[float | None, float | None]:
        cls = classes[key]
        return await timed_key(app, key, shown(cls), current(cls), counted=counted)

    def presses(done: int, timeouts: int, started: float) -> str:
        """How many presses, and the memory and database at the end of the kind."""
        out = f"{done} presses"
        if done < args.repeat:
            out += f" of {args.repeat} (phase stopped after {time.monotonic() - started:.0f}s)"
        if timeouts:
            out += f", {timeouts} timed out after 15s"
        return (out + f"; RSS now {status_kb(os.getpid(), 'VmRSS') / 1024:.0f} MB, "
                f"{db_counts(db)[0]:,} events stored")

    def over(started: float) -> bool:
        return time.monotonic() - started > args.phase_limit

    lags: list[float] = results.setdefault("lags", [])

    async def lag_monitor() -> None:
        """How late the UI's event loop runs a 10 ms timer: the wait any input has."""
        while True:
            t = time.perf_counter()
            await asyncio.sleep(0.01)
            lags.append(time.perf_counter() - t - 0.01)

    monitor = asyncio.create_task(lag_monitor())

    # Wait for the collector to store the first live lines, then let it run.
    top0, _ = db_counts(db)
    deadline = time.monotonic() + 30
    while args.rate and db_counts(db)[0] == top0 and time.monotonic() < deadline:
        await asyncio.sleep(0.2)
    await asyncio.sleep(args.warmup)
    results["t_start"] = time.monotonic()
    results["top_start"] = db_counts(db)[0]

    # First visits mount the screens (and the first alert opened, the detail
    # screen): timed apart, as one-time costs.
    first_visit = []
    for key in ("2", "3", "4", "5", "6", "1"):
        lat, _ = await switch(key, counted=False)
        first_visit.append(f"{titles[key]} {lat * 1000:.0f}" if lat is not None else f"{titles[key]} timeout")
        await asyncio.sleep(gap)
        if key == "3" and app.screen.query_one("#alert-table").row_count:
            # The alert detail is a screen too, built on its first opening.
            def detail_ready(t0: float) -> float | None:
                s = app.screen
                at = getattr(s, "_bench_at", 0.0)
                return at if isinstance(s, AlertDetailScreen) and at > t0 else None

            lat, _ = await timed_key(app, "enter", detail_ready, counted=False)
            first_visit.append(f"alert detail {lat * 1000:.0f}" if lat is not None
                               else "alert detail timeout")
            await asyncio.sleep(gap)
            await timed_key(app, "escape", shown(AlertsScreen), counted=False)
            await asyncio.sleep(gap)
    print(f"first visit    {', '.join(first_visit)} ms (mount + first load, once per screen)", flush=True)
    lags.clear()  # (mounting a screen holds the loop: the figure is of the keys that follow)

    # Switching screens: 1 -> 2 -> ... -> 6 -> 1 ...
    order = ["2", "3", "4", "5", "6", "1"]
    per_screen: dict[str, list[float]] = {titles[k]: [] for k in order}
    tops_after: list[float] = []  # switch to the Overview -> its top values on screen
    overview_keys: list[tuple[float, float | None]] = []  # (key to the Overview, the next key)
    switches: list[float] = []
    firsts: list[float] = []
    timeouts, started = 0, time.monotonic()
    for i in range(args.repeat):
        if over(started):
            break
        key = order[i % len(order)]
        t_key = time.perf_counter()
        if overview_keys and overview_keys[-1][1] is None:
            overview_keys[-1] = (overview_keys[-1][0], t_key)
        if key == "1":
            overview_keys.append((t_key, None))
        lat, first = await switch(key)
        if lat is None:
            timeouts += 1
        else:
            switches.append(lat)
            per_screen[titles[key]].append(lat)
        if first is not None:
            firsts.append(first)
        await asyncio.sleep(gap)
    every += switches
    print(f"switch screen  {fmt_ms(switches)}  (to the new data on screen; "
          f"{presses(len(switches) + timeouts, timeouts, started)})")
    print(f"  first frame  {fmt_ms(firsts)}  (the new screen drawn, with the data of its last visit)")
    for name, values in per_screen.items():
        if values:
            print(f"  {name:<11}  p50 {pct(values, 0.5) * 1000:6.1f} ms  max {max(values) * 1000:6.1f} ms"
                  f"  ({len(values)})")
    for t_key, t_next in overview_keys:
        at = next((t for t in TOPS_AT if t > t_key and (t_next is None or t < t_next)), None)
        if at is not None:
            tops_after.append((app.frame_after(at) or at) - t_key)
    if overview_keys:
        print(f"  Overview top values read again on {len(tops_after)} of {len(overview_keys)} visits"
              f" (else those read at most 2 s, or 5x their cost, before): key to them on screen "
              f"{fmt_ms(tops_after)}; not in the figures above")
    sys.stdout.flush()

    # Scrolling the live event stream (pauses it): page up, up, page down, down, ...
    await switch("2", counted=False)
    await asyncio.sleep(gap)
    stream = app.screen.query_one(EventStream)
    scrolls: list[float] = []
    timeouts, started = 0, time.monotonic()
    keys = ("pageup", "up", "pagedown", "down")

    def moved(t0: float) -> float | None:
        at = getattr(stream, "_bench_at", 0.0)
        return at if at > t0 else None

    for i in range(args.repeat):
        if over(started):
            break
        lat, _ = await timed_key(app, keys[i % len(keys)], moved)
        if lat is None:
            timeouts += 1
        else:
            scrolls.append(lat)
        await asyncio.sleep(gap)
    in_view = len(stream)
    send_key(app, "end")  # follow again
    every += scrolls
    print(f"scroll events  {fmt_ms(scrolls)}  (pageup/up/pagedown/down in the stream of "
          f"{in_view:,} events; {presses(len(scrolls) + timeouts, timeouts, started)})",
          flush=True)

    # Opening an alert from the queue (enter) and going back (escape).
    await switch("3", counted=False)
    await asyncio.sleep(gap)
    table = app.screen.query_one("#alert-table")
    listed = table.row_count
    opens: list[float] = []
    backs: list[float] = []
    evidence: dict[float, int] = {}
    timeouts, started = 0, time.monotonic()

    def detail_shown(t0: float) -> float | None:
        s = app.screen
        at = getattr(s, "_bench_at", 0.0)
        if isinstance(s, AlertDetailScreen) and at > t0:
            evidence[t0] = s.query_one("#evidence").row_count
            return at
        return None

    pairs = 0
    for _ in range(args.repeat if listed else 0):
        if over(started):
            break
        pairs += 1
        lat, _ = await timed_key(app, "enter", detail_shown, current(AlertDetailScreen))
        if lat is None:
            timeouts += 1
        else:
            opens.append(lat)
        await asyncio.sleep(gap)
        lat, _ = await timed_key(app, "escape", shown(AlertsScreen), current(AlertsScreen))
        if lat is None:
            timeouts += 1
        else:
            backs.append(lat)
        send_key(app, "down")  # the next alert, untimed
        await asyncio.sleep(gap)
    every += opens + backs
    rows = f", evidence {min(evidence.values())}-{max(evidence.values())} rows" if evidence else ""
    print(f"open alert     {fmt_ms(opens)}  (enter on the queue of {listed:,} rows{rows}; "
          f"{presses(pairs, timeouts, started)})")
    print(f"back to queue  {fmt_ms(backs)}  (escape, to the reloaded queue on screen)")
    print(f"all keys       {fmt_ms(every)}  (budget p99 <= 100 ms)", flush=True)

    monitor.cancel()
    results["t_end"] = time.monotonic()
    results["top_end"], results["alerts_end"] = db_counts(db)
    results["frame_cost"] = list(app.frame_cost)
    results["frames"] = len(app.frame_times)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--events", type=int, default=1_000_000, help="events in the database before the run")
    ap.add_argument("--rate", type=int, default=10_000, help="lines/s appended while the keys are timed")
    ap.add_argument("--repeat", type=int, default=50, help="key presses per action kind")
    ap.add_argument("--workdir", help="keep files here, and the ingested database for the next run "
                    "(default: a temporary directory)")
    ap.add_argument("--size", default="120x36", help="terminal size, COLSxROWS")
    ap.add_argument("--gap", type=float, default=0.25, help="seconds between two key presses")
    ap.add_argument("--warmup", type=float, default=3.0, help="seconds of ingest before the first key")
    ap.add_argument("--phase-limit", type=float, default=300.0,
                    help="seconds after which an action kind stops pressing (a TUI that lags "
                    "behind would otherwise make the run last for hours)")
    ap.add_argument("--write-live", metavar="PATH", help=argparse.SUPPRESS)  # the writer process
    args = ap.parse_args()
    if args.write_live:
        write_live(args.write_live, args.rate)
        return 0
    cols, rows = (int(x) for x in args.size.lower().split("x"))
    work = Path(args.workdir or tempfile.mkdtemp(prefix="soc-bench-tui-"))
    work.mkdir(parents=True, exist_ok=True)
    os.environ["SOC_TUI_KEY_FILE"] = str(work / "chain.key")
    os.environ["XDG_CONFIG_HOME"] = str(work / "config")  # no user config: defaults
    os.environ.pop("SOC_TUI_CONFIG", None)

    db = setup(work, args.events)
    top, alerts = db_counts(db)
    print(f"database       {top:,} events, {alerts:,} alerts ({db.stat().st_size / 1e6:.1f} MB)")

    from soc_tui.cli import _load_ruleset, _rule_dirs, start_collector, stop_collector
    from soc_tui.config import Config, SourceConfig
    from soc_tui.ui.context import UiContext

    BenchApp = instrument()
    live = work / "live.log"
    live.write_text("")
    config = Config()
    rule_dirs = _rule_dirs(config)
    ruleset = _load_ruleset(rule_dirs)
    collector = start_collector(config, str(db), [SourceConfig(str(live), None, "UTC", None, "auto")],
                                rule_dirs, child=True)
    writer = subprocess.Popen([sys.executable, __file__, "--write-live", str(live), "--rate", str(args.rate)],
                              stdout=subprocess.PIPE, text=True)
    writer_start = time.monotonic()
    sampler = MemorySampler()
    sampler.start()
    gc_started = [0.0]

    def gc_timer(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            gc_started[0] = time.perf_counter()
        else:
            GC_PAUSES.append((info["generation"], gc_started[0], time.perf_counter()))

    gc.callbacks.append(gc_timer)
    ctx = None
    results: dict[str, Any] = {}
    written = 0
    try:
        ctx = UiContext.open(str(db), "bench", rule_dirs=rule_dirs, ruleset=ruleset, collector=collector)
        app = BenchApp(ctx)

        async def run() -> None:
            async with app.run_test(size=(cols, rows), notifications=True, tooltips=True):
                await drive(app, args, results, db)

        asyncio.run(run())
    finally:
        writer.send_signal(signal.SIGTERM)
        out, _ = writer.communicate(timeout=30)
        writer_s = time.monotonic() - writer_start
        written = int(out.strip() or 0)
        sampler.stop()
        hwm = status_kb(os.getpid(), "VmHWM")
        rss = status_kb(os.getpid(), "VmRSS")
        if ctx is not None:
            ctx.close()
        t = time.perf_counter()
        stop_collector(collector)
        stop_s = time.perf_counter() - t

    seconds = results["t_end"] - results["t_start"]
    new = results["top_end"] - results["top_start"]
    print(f"live ingest    {new / seconds:,.0f} lines/s stored while the keys were pressed "
          f"({new:,} in {seconds:.0f}s); writer {written / writer_s:,.0f} lines/s "
          f"({written:,} lines), target {args.rate:,}")
    print(f"database after {results['top_end']:,} events, {results['alerts_end']:,} alerts; "
          f"collector stopped in {stop_s:.1f}s")
    shows = ", ".join(f"{name.removesuffix('Screen')} {pct(v, 0.5) * 1000:.0f}/{max(v) * 1000:.0f}"
                      for name, v in sorted(SHOW_TIMES.items()) if v)
    print(f"UI thread      show() p50/max ms: {shows}")
    loads = ", ".join(f"{name.removesuffix('Screen')} {pct(v, 0.5) * 1000:.0f}/{max(v) * 1000:.0f}"
                      for name, v in sorted(LOAD_TIMES.items()) if v)
    print(f"load worker    load() p50/max ms: {loads}")
    print(f"loop lag       {fmt_ms(results['lags'])}  (a 10 ms timer of the UI loop, late by; "
          "after the first visits)")
    gc.callbacks.remove(gc_timer)
    by_gen = ", ".join(
        f"gen{g} {len(ts)} max {max(ts) * 1000:.0f} ms"
        for g in (0, 1, 2) if (ts := [end - start for gen, start, end in GC_PAUSES if gen == g]))
    print(f"gc pauses      {by_gen or 'none'} (this process's collections; every thread waits)")
    slow = [(t0, t1, key) for t0, t1, key in KEYS_TIMED if t1 - t0 > 0.1]
    in_gc = [sum(max(0.0, min(t1, end) - max(t0, start)) for _, start, end in GC_PAUSES)
             for t0, t1, _ in slow]
    keys = ", ".join(f"{k} {n}" for k, n in collections.Counter(k for _, _, k in slow).most_common())
    print(f"slow keys      {len(slow)} of {len(KEYS_TIMED)} over 100 ms ({keys or 'none'}); the collector "
          "paused them " + (f"{sum(1 for g in in_gc if g > 0.02)} times for over 20 ms; "
                            f"their time in it p50 {pct(in_gc, 0.5) * 1000:.0f} ms, "
                            f"max {max(in_gc) * 1000:.0f} ms" if slow else "no time"))
    cost = results["frame_cost"]
    print(f"frames         {results['frames']:,}; building the terminal output p50 "
          f"{pct(cost, 0.5) * 1000:.1f} ms, max {max(cost) * 1000:.1f} ms")
    kids = ", ".join(f"{k} {v / 1024:.0f} MB" for k, v in sorted(sampler.peaks.items()))
    print(f"peak RSS       {hwm / 1024:.0f} MB this process (VmHWM; now {rss / 1024:.0f} MB; budget <= 300 MB)"
          + (f"; {kids}" if kids else "") + f"; together {sampler.together / 1024:.0f} MB (sampled)")
    if not args.workdir:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
