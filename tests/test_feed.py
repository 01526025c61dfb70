"""The live feed (soc_tui.ui.feed): what the stream gets from the database, off the UI thread."""

from __future__ import annotations

from pathlib import Path

from soc_tui.cli import main
from soc_tui.store.reader import StoreReader
from soc_tui.ui.feed import LiveFeed

LINE = "Nov 20 00:{m:02d}:{s:02d} bastion sshd[{pid}]: Failed password for root from 198.51.100.{ip} port {port} ssh2"


def _ingest(tmp: Path, db: Path, start: int, n: int, name: str) -> None:
    log = tmp / name
    log.write_text("".join(LINE.format(m=(i // 60) % 60, s=i % 60, pid=i, ip=i % 200 + 1, port=i) + "\n"
                           for i in range(start, start + n)))
    assert main(["--db", str(db), "ingest", "--tz", "UTC", "--year", "2026", "--no-rules",
                 "--no-progress", str(log)]) == 0


def test_feed_gives_the_newest_and_counts_what_it_skips(tmp_path: Path) -> None:
    db = tmp_path / "soc.db"
    _ingest(tmp_path, db, 0, 50, "a.log")
    reader = StoreReader(str(db))
    feed = LiveFeed(reader, per_poll=100)
    feed.start()  # from the newest stored now: the 50 already there are not "new"
    feed.stop()  # its thread would poll too: the test polls itself
    feed.poll_once()
    got = feed.drain()
    assert got.events == [] and got.skipped == 0
    _ingest(tmp_path, db, 50, 30, "b.log")
    feed.poll_once()
    got = feed.drain()
    assert [e["id"] for e in got.events] == list(range(51, 81)) and got.skipped == 0
    _ingest(tmp_path, db, 80, 1000, "c.log")  # faster than anyone reads
    feed.poll_once()
    got = feed.drain()
    assert [e["id"] for e in got.events] == list(range(981, 1081)) and got.skipped == 900
    assert got.events[-1]["raw"].endswith("port 1079 ssh2")
    # While no screen shows the stream, the feed reads nothing and keeps its
    # place; back on, one poll brings what was stored meanwhile.
    feed.want_events = False
    _ingest(tmp_path, db, 1080, 20, "d.log")
    feed.poll_once()
    got = feed.drain()
    assert got.events == [] and got.skipped == 0
    feed.want_events = True
    _ingest(tmp_path, db, 1100, 5, "e.log")
    feed.poll_once()
    assert [e["id"] for e in feed.drain().events] == list(range(1081, 1106))
    reader.close()


def test_feed_reads_nothing_while_unwanted_and_catches_up_bounded(tmp_path: Path) -> None:
    db = tmp_path / "soc.db"
    _ingest(tmp_path, db, 0, 10, "a.log")
    reader = StoreReader(str(db))
    calls: list[int] = []
    events_after = reader.events_after

    def counted(after_id: int, limit: int) -> tuple[list[dict[str, object]], int]:
        calls.append(limit)
        return events_after(after_id, limit)

    reader.events_after = counted  # type: ignore[method-assign]
    feed = LiveFeed(reader, per_poll=100, catch_up=300)
    feed.start()
    feed.stop()  # its thread would poll too: the test polls itself
    feed.poll_once()  # the stream was shown
    calls.clear()
    feed.want_events = False
    _ingest(tmp_path, db, 10, 500, "b.log")
    for _ in range(3):
        feed.poll_once()
    assert calls == [] and feed.drain().events == []  # no event read for nobody
    feed.want_events = True
    feed.poll_once()  # the newest catch_up of the 500, the rest counted
    got = feed.drain()
    assert [e["id"] for e in got.events] == list(range(211, 511)) and got.skipped == 200
    _ingest(tmp_path, db, 510, 150, "c.log")
    feed.poll_once()  # and then per_poll again
    got = feed.drain()
    assert [e["id"] for e in got.events] == list(range(561, 661)) and got.skipped == 50
    assert calls == [300, 100]

    # never shown yet: the feed only keeps up (the Events screen reads its
    # backlog itself when it is first shown)
    fresh = LiveFeed(reader, per_poll=100, catch_up=300)
    fresh.start()
    fresh.stop()
    fresh.want_events = False
    _ingest(tmp_path, db, 660, 40, "e.log")
    fresh.poll_once()
    fresh.want_events = True
    _ingest(tmp_path, db, 700, 5, "f.log")
    fresh.poll_once()
    got = fresh.drain()
    assert [e["id"] for e in got.events] == list(range(701, 706)) and got.skipped == 0

    # the Events screen read its backlog itself: the feed goes on after it
    _ingest(tmp_path, db, 705, 30, "d.log")
    feed.skip_to(725)
    feed.poll_once()
    assert [e["id"] for e in feed.drain().events] == list(range(726, 736))
    reader.close()
