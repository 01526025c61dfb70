"""Demo mode: a scenario from demo_data/ replayed through the real pipeline.

Owns: reading a scenario (`scenario.yaml` and its log files; format in
demo_data/README.md), shifting its timestamps so that the story ends at the
moment the replay starts, and the `Replayer`, a thread that appends the
shifted lines to real log files in time order at an adjustable speed
(paused, 1x, 10x, 100x, or as fast as possible), for the collector to tail,
parse, store and run the rules on like any other files. Must not: import
Textual or touch the database (the collector does).
"""

from __future__ import annotations

import os
import re
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import yaml

SPEEDS = (0.0, 1.0, 10.0, 100.0)  # the speed key cycles through these (0: paused)
MAX_SPEED = float("inf")
_SYSLOG = re.compile(r"^([A-Z][a-z]{2}) ([ \d]\d) (\d\d):(\d\d):(\d\d) ")
_ACCESS = re.compile(r"\[(\d\d)/([A-Z][a-z]{2})/(\d{4}):(\d\d):(\d\d):(\d\d) ([+-]\d{4})\]")
_MONTHS = {m: i + 1 for i, m in enumerate(
    ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"))}


class DemoError(Exception):
    """A scenario that cannot be replayed (one line for the user)."""


def scenarios_dir() -> Path:
    """demo_data/scenarios beside the package."""
    import soc_tui

    return Path(os.path.abspath(soc_tui.__file__)).parent.parent / "demo_data" / "scenarios"


def list_scenarios(root: Path | None = None) -> list[str]:
    root = root or scenarios_dir()
    if not root.is_dir():
        return []
    return sorted(p.name for p in root.iterdir() if (p / "scenario.yaml").is_file())


@dataclass
class ScenarioFile:
    path: Path  # the scenario's copy (fixed timestamps)
    name: str  # relative name, also the replayed file's name
    host: str | None


@dataclass
class Line:
    ts: datetime  # as written in the scenario (UTC)
    file: int  # index into Scenario.files
    text: str


@dataclass
class Scenario:
    name: str
    title: str
    description: str
    dir: Path
    files: list[ScenarioFile]
    questions: list[dict[str, Any]] = field(default_factory=list)
    expect: list[str] = field(default_factory=list)
    raw: dict[str, Any] = field(default_factory=dict)
    year: int = 2026

    def lines(self) -> list[Line]:
        """Every line of every file with its time, in time order (a line
        without a recognisable time keeps the previous line's)."""
        out: list[Line] = []
        for i, f in enumerate(self.files):
            last: datetime | None = None
            with open(f.path, encoding="utf-8", errors="surrogateescape") as fh:
                for text in fh:
                    text = text.rstrip("\n")
                    if not text:
                        continue
                    ts = line_time(text, self.year) or last
                    if ts is None:
                        raise DemoError(f"{f.path}: no timestamp in the first line: {text[:80]!r}")
                    last = ts
                    out.append(Line(ts, i, text))
        out.sort(key=lambda ln: (ln.ts, ln.file))  # stable: each file keeps its order
        return out


def load_scenario(ref: str) -> Scenario:
    """A scenario by name (demo_data/scenarios/NAME) or by directory."""
    path = Path(ref)
    if not (path / "scenario.yaml").is_file():
        path = scenarios_dir() / ref
    spec = path / "scenario.yaml"
    if not spec.is_file():
        known = ", ".join(list_scenarios()) or "none found"
        raise DemoError(f"no scenario {ref!r} (scenarios: {known})")
    try:
        data = yaml.safe_load(spec.read_text()) or {}
    except yaml.YAMLError as exc:
        raise DemoError(f"{spec}: not valid YAML: {exc}".splitlines()[0]) from None
    if not isinstance(data, dict) or not data.get("files"):
        raise DemoError(f"{spec}: a scenario needs `files:`")
    files = []
    for entry in data["files"]:
        if isinstance(entry, str):
            entry = {"path": entry}
        rel = str(entry.get("path") or "")
        if not rel or os.path.isabs(rel) or ".." in Path(rel).parts:
            raise DemoError(f"{spec}: file paths must be relative to the scenario: {rel!r}")
        full = path / rel
        if not full.is_file():
            raise DemoError(f"{spec}: file not found: {rel}")
        files.append(ScenarioFile(full, rel, entry.get("host")))
    return Scenario(
        name=str(data.get("name") or path.name), title=str(data.get("title") or path.name),
        description=str(data.get("description") or ""), dir=path, files=files,
        questions=list(data.get("questions") or []), expect=list(data.get("expect") or []),
        raw=data, year=int(data.get("year") or 2026),
    )


# -- timestamps ------------------------------------------------------------------


def line_time(text: str, year: int) -> datetime | None:
    """The time a syslog (RFC 3164) or access-log line was written, in UTC."""
    m = _SYSLOG.match(text)
    if m:
        mon, day, hh, mm, ss = m.groups()
        return datetime(year, _MONTHS[mon], int(day), int(hh), int(mm), int(ss), tzinfo=timezone.utc)
    m = _ACCESS.search(text)
    if m:
        day, mon, yr, hh, mm, ss, off = m.groups()
        t = datetime(int(yr), _MONTHS[mon], int(day), int(hh), int(mm), int(ss), tzinfo=timezone.utc)
        sign = 1 if off[0] == "+" else -1
        return t - sign * timedelta(hours=int(off[1:3]), minutes=int(off[3:5]))
    return None


def shift_line(text: str, ts: datetime) -> str:
    """`text` with its timestamp replaced by `ts` (UTC), in the line's own format."""
    m = _SYSLOG.match(text)
    if m:
        return f"{ts:%b} {ts.day:2d} {ts:%H:%M:%S} " + text[m.end():]
    m = _ACCESS.search(text)
    if m:
        return text[:m.start()] + f"[{ts:%d/%b/%Y:%H:%M:%S} +0000]" + text[m.end():]
    return text


# -- the replay ------------------------------------------------------------------


class Replayer:
    """Appends a scenario's lines, shifted to end at `end_at`, to files in
    `out_dir`, pacing them by their time gaps divided by the speed."""

    def __init__(self, scenario: Scenario, out_dir: Path, *, speed: float = 10.0,
                 end_at: datetime | None = None) -> None:
        self.scenario = scenario
        self.out_dir = out_dir
        self.lines = scenario.lines()
        if not self.lines:
            raise DemoError(f"scenario {scenario.name} has no lines")
        end = (end_at or datetime.now(timezone.utc)).replace(microsecond=0)
        self.shift = end - self.lines[-1].ts
        self.paths = [out_dir / f.name for f in scenario.files]
        self.written = 0
        self.error = ""
        self._speed = speed
        self._wake = threading.Event()
        self._stop = threading.Event()
        self.done = threading.Event()
        self._thread = threading.Thread(target=self._run, name="soc-tui-replay", daemon=True)
        for p in self.paths:  # the collector follows them from the start
            p.parent.mkdir(parents=True, exist_ok=True)
            p.write_text("")

    @property
    def total(self) -> int:
        return len(self.lines)

    @property
    def speed(self) -> float:
        return self._speed

    def set_speed(self, speed: float) -> None:
        self._speed = speed
        self._wake.set()

    def next_speed(self) -> float:
        """Paused -> 1x -> 10x -> 100x -> paused (from any other speed: paused)."""
        try:
            i = SPEEDS.index(self._speed)
        except ValueError:
            i = -1
        self.set_speed(SPEEDS[(i + 1) % len(SPEEDS)])
        return self._speed

    def story_time(self) -> datetime | None:
        """Where the replay is in the (shifted) story."""
        if self.written == 0:
            return None
        return self.lines[min(self.written, self.total) - 1].ts + self.shift

    def start(self) -> Replayer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        self._thread.join(5)

    def _run(self) -> None:
        handles = [open(p, "a", encoding="utf-8", errors="surrogateescape") for p in self.paths]
        try:
            i = 0
            while i < self.total and not self._stop.is_set():
                speed = self._speed
                if speed <= 0:  # paused
                    self._wake.wait(0.5)
                    self._wake.clear()
                    continue
                # Everything due within a 50 ms step goes out together.
                first = self.lines[i].ts
                step = timedelta(seconds=0.05 * speed) if speed != MAX_SPEED else timedelta.max
                j = i
                while j < self.total and (step == timedelta.max or self.lines[j].ts - first <= step):
                    ln = self.lines[j]
                    handles[ln.file].write(shift_line(ln.text, ln.ts + self.shift) + "\n")
                    j += 1
                    if step == timedelta.max and j - i >= 5000:
                        break
                for h in handles:
                    h.flush()
                self.written = j
                i = j
                if i < self.total and speed != MAX_SPEED:
                    gap = (self.lines[i].ts - self.lines[i - 1].ts).total_seconds() / speed
                    if gap > 0:  # a speed change wakes us at once
                        self._wake.wait(gap)
                        self._wake.clear()
        except OSError as exc:
            self.error = f"replay stopped: {exc}"
        finally:
            for h in handles:
                h.close()
            self.done.set()


def wait_stored(collector: Any, replayer: Replayer, timeout: float | None = None) -> bool:
    """Block until the collector has read every line the replayer wrote
    (True), or the timeout passed."""
    end = None if timeout is None else time.monotonic() + timeout
    while True:
        if replayer.done.is_set():
            read = sum(h.lines for h in collector.health())
            if read >= replayer.written:
                return True
        if end is not None and time.monotonic() > end:
            return False
        if not collector.running:
            return False
        time.sleep(0.1)
