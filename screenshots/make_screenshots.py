#!/usr/bin/env python3
"""Regenerate screenshots/*.svg: every screen of the TUI on the seeded demo database.

    make screenshots      (or: .venv/bin/python screenshots/make_screenshots.py)

The database is built from our own seeded logs (tests/tui_data.py: a brute
force that succeeds, sudo, a new sudoer, a web scan, hostile lines), an
incident with a note is added, and the app runs headless at a fixed size
with a frozen clock, so the same code gives the same pictures. Run it after
any change to the UI and commit the result.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

SIZE = (120, 36)


async def shoot(db: Path, out: Path) -> list[str]:
    from tests.test_tui import make_app, settle

    written: list[str] = []
    app = make_app(db)

    def save(name: str) -> None:
        app.save_screenshot(f"{name}.svg", str(out))
        written.append(f"{name}.svg")

    async with app.run_test(size=SIZE) as pilot:
        for key, name in (("1", "overview"), ("2", "events"), ("3", "alerts"), ("4", "incidents"),
                          ("5", "rules"), ("6", "sources")):
            await pilot.press(key)
            await settle(pilot)
            save(name)
        await pilot.press("2")
        await settle(pilot)
        await pilot.press("slash", *"src_ip:198.51.100.7", "enter")
        await settle(pilot)
        await pilot.press("enter")
        await settle(pilot)
        save("events-search-detail")
        await pilot.press("3", "g", "g")
        await settle(pilot)
        save("alerts-by-src_ip")
        await pilot.press("g", "g", "g")
        await settle(pilot)
        await pilot.press("enter")
        await settle(pilot)
        save("alert-detail")
        await pilot.press("c")
        await settle(pilot)
        save("close-dialog")
        await pilot.press("escape", "escape", "4")
        await settle(pilot)
        await pilot.press("enter")
        await settle(pilot)
        save("incident-detail")
    return written


def main() -> int:
    from soc_tui.store import triage
    from soc_tui.store.db import open_db
    from tests import tui_data
    from tests.test_tui import alert_id

    out = ROOT / "screenshots"
    # A fixed place: source paths are on screen (and so in the pictures).
    tmp = os.path.join(tempfile.gettempdir(), "soc-tui-screenshots")
    shutil.rmtree(tmp, ignore_errors=True)
    os.makedirs(tmp)
    try:
        os.environ["SOC_TUI_KEY_FILE"] = os.path.join(tmp, "chain.key")
        frozen = triage.now_us
        triage.now_us = lambda: tui_data.CLOCK - 600_000_000
        try:
            db = tui_data.build(Path(tmp))
            conn = open_db(db)
            iid = triage.create_incident(conn, "Break-in on bastion", "ann",
                                         alert_ids=[alert_id(db, "ssh_success_after_bruteforce"),
                                                    alert_id(db, "ssh_bruteforce")])
            triage.add_note(conn, "incident", iid,
                            "root logged in from 198.51.100.7 after the brute force; account backup2"
                            " added to sudo a minute later", "ann")
            triage.set_status(conn, [alert_id(db, "ssh_bruteforce")], "in_progress", "ann")
            conn.close()
        finally:
            triage.now_us = frozen
        written = asyncio.run(shoot(db, out))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"wrote {len(written)} screenshots to {out}: {', '.join(written)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
