"""Child processes of a process, from /proc (Linux), for tests that stop or
check a process tree."""

from __future__ import annotations

import os


def children(pid: int) -> list[int]:
    """The direct children of `pid` ([] once it is gone)."""
    out: list[int] = []
    try:
        for task in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{task}/children") as fh:
                out.extend(int(c) for c in fh.read().split())
    except OSError:
        pass
    return out


def descendants(pid: int) -> list[int]:
    """Children, their children, and so on."""
    out: list[int] = []
    todo = children(pid)
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(children(p))
    return out
