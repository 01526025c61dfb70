"""Helpers shared by tests that write and rotate log files like a daemon would."""

from __future__ import annotations

import os
from pathlib import Path


def rotate(log: Path) -> None:
    """logrotate's default scheme: app.log.N -> .N+1, app.log -> app.log.1."""
    n = 1
    while (log.parent / f"{log.name}.{n}").exists():
        n += 1
    for i in range(n - 1, 0, -1):
        os.rename(log.parent / f"{log.name}.{i}", log.parent / f"{log.name}.{i + 1}")
    os.rename(log, log.parent / f"{log.name}.1")
