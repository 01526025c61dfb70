"""Developer tool: parse files and show events, a summary, or the parse speed.

    python -m soc_tui.parse FILE...               # summary: lines, unparsed share, actions, lines/s
    python -m soc_tui.parse --show FILE           # one JSON object per event
    python -m soc_tui.parse --fmt access --tz UTC --year 2015 FILE

The speed is measured on lines already in memory (parse only, one core).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import Counter
from dataclasses import asdict

from soc_tui.model import FLAG_UNPARSED, us_to_iso

from . import FORMATS, LineParser


def _read(path: str) -> list[str]:
    with open(path, "rb") as fh:
        text = fh.read().decode("utf-8", "replace")
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return lines


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m soc_tui.parse", description=__doc__.splitlines()[0])
    ap.add_argument("files", nargs="+")
    ap.add_argument("--fmt", choices=FORMATS, default="auto")
    ap.add_argument("--tz", default=None)
    ap.add_argument("--year", type=int, default=None)
    ap.add_argument("--host", default=None)
    ap.add_argument("--show", action="store_true", help="print every event as JSON")
    ap.add_argument("--repeat", type=int, default=3, help="timing runs (best is reported)")
    args = ap.parse_args(argv)

    for path in args.files:
        lines = _read(path)

        def new_parser() -> LineParser:
            return LineParser(fmt=args.fmt, source_id=path, host=args.host, year=args.year, tz=args.tz)

        if args.show:
            p = new_parser()
            for line in lines:
                d = asdict(p.parse(line))
                d["ts"] = us_to_iso(d["ts"])
                sys.stdout.write(json.dumps(d, ensure_ascii=False, default=str) + "\n")
            continue
        best = float("inf")
        for _ in range(max(1, args.repeat)):
            p = new_parser()
            t0 = time.perf_counter()
            events = [p.parse(line) for line in lines]
            best = min(best, time.perf_counter() - t0)
        n = len(lines)
        unparsed = sum(1 for e in events if e.flags & FLAG_UNPARSED)
        actions = Counter(e.action for e in events if e.action)
        print(f"{path}: {n} lines, unparsed {unparsed} ({(unparsed / n if n else 0):.2%}), "
              f"{(n / best if best > 0 else 0):,.0f} lines/s")
        for action, count in actions.most_common():
            print(f"  {count:8d}  {action}")
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
