"""The parse worker process: replies in order, and a dead worker fails its
requests (the pipeline then parses those chunks itself) instead of hanging."""

from __future__ import annotations

import os
import signal

import pytest

from soc_tui.child import alive
from soc_tui.parse import LineParser
from soc_tui.parse_worker import ParseWorker, WorkerError
from soc_tui.store.events import ROW_COLUMNS

SRC_IP = ROW_COLUMNS.index("src_ip")


def _line(i: int) -> tuple[str, int]:
    return (f"Nov 24 10:00:{i % 60:02d} web1 sshd[{i}]: Failed password for root"
            f" from 192.0.2.{i % 250 + 1} port {1000 + i} ssh2", 0)


def test_chunks_come_back_parsed_in_order_and_a_killed_worker_fails_the_rest() -> None:
    worker = ParseWorker()
    parser = LineParser(fmt="auto", source_id="/var/log/auth.log", year=2024, tz="UTC")
    try:
        futures = [worker.submit("auth", parser, [_line(i) for i in range(k * 10, k * 10 + 10)], 0)
                   for k in range(5)]
        rows = [r for f in futures for r in f.result(30).unpacked()]
        assert [r[SRC_IP] for r in rows] == [f"192.0.2.{i % 250 + 1}" for i in range(50)]  # in order
        os.kill(worker.pid, signal.SIGKILL)
        later = worker.submit("auth", parser, [_line(50)], 0)
        with pytest.raises(WorkerError, match="parse worker"):
            later.result(30)
    finally:
        worker.close()
    assert not alive(worker.pid)
