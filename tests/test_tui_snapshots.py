"""Snapshots of the main screens at 80x24 and 120x36 (seeded database, frozen clock).

Each screen's text, as the terminal would show it, is compared with
tests/snapshots/<screen>-<size>.txt. After an intended change to the UI,
regenerate them with `SOC_TUI_UPDATE_SNAPSHOTS=1 make test` and review the diff.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import pytest

from soc_tui.store import triage
from soc_tui.store.db import open_db
from tests import tui_data
from tests.test_tui import alert_id, make_app, settle, stable_text

SNAPSHOTS = Path(__file__).parent / "snapshots"
SIZES = ((80, 24), (120, 36))
UPDATE = os.environ.get("SOC_TUI_UPDATE_SNAPSHOTS") == "1"
PLACEHOLDER_DIR = "/tmp/soc-tui-snapshot"


@pytest.fixture(scope="module")
def snap_db() -> Any:
    """The seeded database in a directory whose name has a fixed length (source
    paths are on screen: the same width every run, then a placeholder)."""
    with tempfile.TemporaryDirectory(prefix="soc-tui-snap-") as tmp:
        work = Path(tmp)
        key = work / "chain.key"
        old = os.environ.get("SOC_TUI_KEY_FILE")
        os.environ["SOC_TUI_KEY_FILE"] = str(key)
        frozen = triage.now_us
        triage.now_us = lambda: tui_data.CLOCK - 600_000_000  # triage times, as if 10 minutes ago
        try:
            db = tui_data.build(work)
            conn = open_db(db)
            iid = triage.create_incident(conn, "Break-in on bastion", "ann",
                                         alert_ids=[alert_id(db, "ssh_success_after_bruteforce"),
                                                    alert_id(db, "ssh_bruteforce")])
            triage.add_note(conn, "incident", iid, "root logged in from 198.51.100.7 after the brute force",
                            "ann")
            conn.close()
            yield db, tmp
        finally:
            triage.now_us = frozen
            if old is None:
                os.environ.pop("SOC_TUI_KEY_FILE", None)
            else:
                os.environ["SOC_TUI_KEY_FILE"] = old


def _normalise(text: str, tmp: str) -> str:
    # The directory name varies per run but keeps its length; so do the columns.
    return text.replace(tmp, PLACEHOLDER_DIR.ljust(len(tmp), "X")[: len(tmp)])


async def _screens(db: Path, size: tuple[int, int], tmp: str) -> dict[str, str]:
    out: dict[str, str] = {}
    app = make_app(db)
    async with app.run_test(size=size) as pilot:
        for key, name in (("1", "overview"), ("2", "events"), ("3", "alerts"), ("4", "incidents"),
                          ("5", "rules"), ("6", "sources")):
            await pilot.press(key)
            await settle(pilot)
            out[name] = await stable_text(pilot)
        await pilot.press("3")
        await settle(pilot)
        await pilot.press("enter")
        await settle(pilot)
        out["alert-detail"] = await stable_text(pilot)
        await pilot.press("escape", "4")
        await settle(pilot)
        await pilot.press("enter")
        await settle(pilot)
        out["incident-detail"] = await stable_text(pilot)
    return {k: _normalise(v, tmp) for k, v in out.items()}


@pytest.mark.parametrize("size", SIZES, ids=[f"{w}x{h}" for w, h in SIZES])
async def test_screens_match_their_snapshots(snap_db: Any, size: tuple[int, int]) -> None:
    db, tmp = snap_db
    shown = await _screens(db, size, tmp)
    SNAPSHOTS.mkdir(exist_ok=True)
    problems = []
    for name, text in shown.items():
        path = SNAPSHOTS / f"{name}-{size[0]}x{size[1]}.txt"
        if UPDATE or not path.exists():
            if not UPDATE:
                problems.append(f"{path.name}: no snapshot yet (written now; review and commit it)")
            path.write_text(text + "\n")
            continue
        expected = path.read_text().rstrip("\n")
        if text != expected:
            diff = [f"  line {i + 1}:\n    want {w!r}\n    got  {g!r}"
                    for i, (w, g) in enumerate(zip(expected.splitlines(), text.splitlines())) if w != g]
            problems.append(f"{path.name} differs (SOC_TUI_UPDATE_SNAPSHOTS=1 to accept):\n"
                            + "\n".join(diff[:5]))
    assert not problems, "\n".join(problems)
