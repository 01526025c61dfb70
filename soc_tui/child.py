"""Helper processes of the collector: how they are started and wired.

Owns: `spawn`, which starts `python -c` running one function of ours with a
request pipe and a reply pipe (multiprocessing `Connection`s over plain fds,
no multiprocessing start method, no import of the parent's `__main__`) and
`from_child`, what comes back on the latter;
`tune_gc`, the garbage-collector settings of the collector's processes, and
the readers of a process tree from /proc (`children`, `descendants`, `alive`)
with which the tests and benchmarks check and measure these children.

A child reads requests until the request pipe closes: on the parent's
`close`, or when the parent dies, even by SIGKILL (EOF), so it never outlives
the collector. Users: `soc_tui.parse_worker` (parsing and rule matching of a
backlog), `soc_tui.detect.process` (the rule worker) and
`soc_tui.collector.CollectorProcess` (the TUI's collector, whose own
children are the other two).

Must not: touch the database or log files itself, or import Textual.
"""

from __future__ import annotations

import gc
import json
import os
import pickle
import subprocess
import sys
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any, Iterator

_ROOT = str(Path(__file__).resolve().parent.parent)
_BOOT = (
    "import sys, json, importlib; sys.path.insert(0, sys.argv[3]); "
    "m, f = sys.argv[4].rsplit('.', 1); "
    "getattr(importlib.import_module(m), f)(int(sys.argv[1]), int(sys.argv[2]), "
    "*json.loads(sys.argv[5]))"
)


def spawn(target: str, *args: Any) -> tuple[subprocess.Popen[bytes], Connection, Connection]:
    """Start a child running `target` ("package.module.function") as
    `function(request_fd, reply_fd, *args)` (args: JSON values). Returns the
    process, the connection to send requests on and the one replies come on."""
    req_r, req_w = os.pipe()
    res_r, res_w = os.pipe()
    try:
        proc = subprocess.Popen(
            [sys.executable, "-c", _BOOT, str(req_r), str(res_w), _ROOT, target, json.dumps(args)],
            pass_fds=(req_r, res_w),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
        )
    except BaseException:
        for fd in (req_w, res_r):
            os.close(fd)
        raise
    finally:
        os.close(req_r)
        os.close(res_w)
    return proc, Connection(req_w, readable=False), Connection(res_r, writable=False)


def from_child(conn: Connection) -> Iterator[Any]:
    """The messages a child sends on its reply pipe, unpickled, until the pipe
    closes (the child ended, or died)."""
    while True:
        try:
            data = conn.recv_bytes()
        except (EOFError, OSError):
            return
        yield pickle.loads(data)


def tune_gc() -> None:
    """Garbage-collector settings for a process that streams events.

    Everything alive now (modules, compiled rules) is moved out of the
    collector's sight, and the youngest generation is collected every 20,000
    allocations instead of 700: the collector otherwise walks the rule
    worker's correlation windows and the batches in flight over and over,
    which made stage 2 of the rules (measured per matched event) 3-4x slower.
    Reference cycles are still collected; only less often."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(20_000, 20, 100)


def children(pid: int) -> list[int]:
    """The direct children of `pid` ([] once it is gone), from /proc (Linux)."""
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


def alive(pid: int) -> bool:
    """Whether `pid` runs (a zombie waiting to be reaped does not)."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().split(") ", 1)[1][0] != "Z"
    except OSError:
        return False
