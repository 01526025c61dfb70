"""Reading lines from standard input: `soc-tui collect -`.

Owns: `StdinSource`, which reads a byte stream (stdin by default) in a thread,
splits it into lines with the tailing code's `LineSplitter` (64 KiB cap,
invalid UTF-8 and NUL survived), and emits chunks until end of input. A pipe
cannot be re-read, so there is no checkpoint: `ssh host tail -F FILE |
soc-tui collect -` stores what arrives while it runs.

Must not: parse lines, touch the database or import Textual.
"""

from __future__ import annotations

import asyncio
import os
import sys
from typing import BinaryIO

from soc_tui.sources.base import Emit, SourceHealth, StreamSource
from soc_tui.sources.tail import Chunk, LineSplitter

READ_BYTES = 256 << 10


class StdinSource(StreamSource):
    """Lines from a pipe, emitted as they arrive (a read returns what is there)."""

    key = "stdin"

    def __init__(self, stream: BinaryIO | None = None, fmt: str = "auto") -> None:
        self.stream = stream
        self.fmt = fmt

    async def run(self, emit: Emit, health: SourceHealth, stop: asyncio.Event) -> None:
        stream = self.stream if self.stream is not None else sys.stdin.buffer
        fd = stream.fileno()
        loop = asyncio.get_running_loop()
        ready = asyncio.Event()
        # A pipe is watched by the event loop, so a stop never waits on a read
        # that may block forever; a regular file (`< file`) is simply read.
        try:
            loop.add_reader(fd, ready.set)
            loop.remove_reader(fd)
            pollable = True
        except (OSError, ValueError, NotImplementedError):
            pollable = False
        splitter = LineSplitter()
        health.state = "running"
        while not stop.is_set():
            if pollable:
                # Watched only while waiting: a pipe stays readable while the
                # chunk before is emitted, and would wake the loop nonstop.
                ready.clear()
                loop.add_reader(fd, ready.set)
                waiting = [asyncio.ensure_future(ready.wait()), asyncio.ensure_future(stop.wait())]
                try:
                    await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
                finally:
                    loop.remove_reader(fd)
                    for w in waiting:
                        w.cancel()
                if not ready.is_set():
                    return
                data = os.read(fd, READ_BYTES)
            else:
                data = await asyncio.to_thread(os.read, fd, READ_BYTES)
            lines: list[tuple[str, int]] = []
            if data:
                splitter.feed(data, lines)
            else:
                splitter.flush_partial(lines)
            if lines:
                await emit(Chunk(self.key, lines, len(data), None))
            if not data:
                health.state = "done"
                return
