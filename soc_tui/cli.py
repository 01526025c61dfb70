"""The `soc-tui` command line: argument parsing, output formats, exit codes.

Owns: turning commands into calls on the core (pipeline, store) and printing
results. Errors the user can fix (missing file, bad query, bad config, locked
or corrupt database) are one line on stderr and exit status 2; nothing is
half-written because every write goes through the writer's transactions.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import glob
import json
import os
import signal
import sys
import time
from typing import Any, Sequence

from soc_tui import __version__
from soc_tui.config import (
    FORMATS,
    Config,
    ConfigError,
    SourceConfig,
    check_tz,
    default_config_path,
    default_db_path,
    load_config,
)
from soc_tui.model import us_to_iso
from soc_tui.store.db import StoreError
from soc_tui.store.search import SearchError

EXIT_USAGE = 2

JSON_FIELDS = (
    "id", "ts", "host", "app", "pid", "action", "outcome", "user", "target_user",
    "src_ip", "src_port", "http_method", "url", "http_status", "bytes", "user_agent",
    "referrer", "level", "message", "raw", "repeat", "source_id", "extra",
)
TABLE_FIELDS = ("ts", "host", "app", "action", "outcome", "user", "src_ip", "message")


class UserError(Exception):
    """A problem the user can fix; printed as one line, exit status 2."""


def _global_options(parser: argparse.ArgumentParser, *, suppress: bool) -> None:
    default = argparse.SUPPRESS if suppress else None
    parser.add_argument(
        "--db", metavar="PATH", default=default,
        help="database file (env SOC_TUI_DB; default ~/.local/share/soc-tui/soc.db)",
    )
    parser.add_argument(
        "--config", metavar="PATH", default=default,
        help="YAML config file (env SOC_TUI_CONFIG; default ~/.config/soc-tui/config.yaml)",
    )


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    _global_options(common, suppress=True)

    parser = argparse.ArgumentParser(
        prog="soc-tui", description="A terminal SOC console: collect, search and triage logs."
    )
    parser.add_argument("--version", action="version", version=f"soc-tui {__version__}")
    _global_options(parser, suppress=False)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = sub.add_parser("ingest", parents=[common], help="backfill log files (plain or .gz)")
    p.add_argument("paths", nargs="+", metavar="PATH_OR_GLOB")
    p.add_argument("--host", help="host name for lines that carry none")
    p.add_argument("--year", type=int, help="year for syslog lines without one (default: inferred)")
    p.add_argument("--tz", help="time zone of timestamps without an offset (default: local)")
    p.add_argument("--format", choices=FORMATS, default="auto")
    p.add_argument("--no-progress", action="store_true", help="no progress bar even on a terminal")

    p = sub.add_parser("search", parents=[common], help="search stored events")
    p.add_argument("query", nargs="*", help="search language: words, field:value, since:15m, ...")
    p.add_argument("--limit", type=int, default=100, help="newest N matches (0: all; default 100)")
    p.add_argument("--count", action="store_true", help="print only the number of matches")
    p.add_argument("--format", choices=("table", "json", "csv"), default="table")

    p = sub.add_parser("collect", parents=[common], help="run the collector headless")
    p.add_argument("sources", nargs="*", metavar="SOURCE")
    p.add_argument("--host", help="host name for lines that carry none")
    p.add_argument("--tz", help="time zone of timestamps without an offset")
    p.add_argument("--format", choices=FORMATS, default="auto")
    p.add_argument("--poll", type=float, default=0.25, help="seconds between file polls")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    try:
        config = load_config(args.config if args.config else default_config_path())
        db = args.db or config.db or default_db_path()
        handler = _COMMANDS[args.command]
        return handler(args, config, db)
    except (UserError, ConfigError, StoreError) as exc:
        print(f"soc-tui: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except SearchError as exc:
        print(f"soc-tui: error: bad query: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # Output piped into `head` and closed: not an error.
        try:
            sys.stdout = open(os.devnull, "w")  # noqa: SIM115
        except OSError:
            pass
        return 0


# -- ingest -------------------------------------------------------------------


def _expand(paths: list[str]) -> list[str]:
    """Check every argument before anything is written; globs must match."""
    out: list[str] = []
    for arg in paths:
        if set("*?[") & set(arg):
            matches = sorted(p for p in glob.glob(arg) if os.path.isfile(p))
            if not matches:
                raise UserError(f"no file matches {arg}")
            out.extend(matches)
            continue
        if not os.path.exists(arg):
            raise UserError(f"file not found: {arg}")
        if os.path.isdir(arg):
            raise UserError(f"{arg} is a directory (give files or a glob like {arg}/*.log)")
        out.append(arg)
    for path in out:
        try:
            with open(path, "rb") as fh:
                fh.read(1)
        except OSError as exc:
            raise UserError(f"cannot read {path}: {exc.strerror or exc}") from None
    return list(dict.fromkeys(os.path.abspath(p) for p in out))


def cmd_ingest(args: argparse.Namespace, config: Config, db: str) -> int:
    from soc_tui.pipeline import Pipeline

    check_tz(args.tz, "--tz")
    files = _expand(args.paths)
    sources = [SourceConfig(p, args.host, args.tz, args.year, args.format) for p in files]
    pipeline = Pipeline(db, sources, follow=False)
    total = sum(_size(p) for p in files)
    show = sys.stderr.isatty() and not args.no_progress
    start = time.monotonic()

    async def run() -> None:
        task = asyncio.create_task(pipeline.run())
        while show and not task.done():
            await asyncio.wait([task], timeout=0.2)
            _progress(pipeline, total, start)
        await task

    try:
        asyncio.run(run())
    except OSError as exc:
        # What was read before the failure is committed with its checkpoint:
        # running ingest again continues from there.
        raise UserError(f"cannot read {exc.filename or 'a file'}: {exc.strerror or exc}") from None
    finally:
        if show:
            sys.stderr.write("\r\x1b[K")
    seconds = time.monotonic() - start
    lines = sum(h.lines for h in pipeline.health.values())
    unparsed = sum(h.unparsed for h in pipeline.health.values())
    gaps = sum(h.gaps for h in pipeline.health.values())
    errors = len(pipeline.errors) + gaps
    print(
        f"files {len(files)}  lines read {lines}  events stored {pipeline.events_written}  "
        f"unparsed {unparsed}  errors {errors}  seconds {seconds:.2f}"
    )
    for err in pipeline.errors:
        print(f"soc-tui: error: {err}", file=sys.stderr)
    return 1 if pipeline.errors else 0


def _size(path: str) -> int:
    try:
        return os.path.getsize(path)
    except OSError:
        return 0


def _progress(pipeline: Any, total: int, start: float) -> None:
    done = sum(h.bytes_read for h in pipeline.health.values())
    lines = sum(h.lines for h in pipeline.health.values())
    elapsed = max(1e-6, time.monotonic() - start)
    rate_b = done / elapsed
    frac = min(1.0, done / total) if total else 0.0
    eta = (total - done) / rate_b if rate_b > 0 and total > done else 0.0
    width = 24
    bar = "#" * int(frac * width) + "-" * (width - int(frac * width))
    sys.stderr.write(
        f"\r\x1b[K[{bar}] {frac * 100:5.1f}%  {lines / elapsed:,.0f} lines/s  "
        f"{rate_b / 1e6:.1f} MB/s  ETA {eta:.0f}s"
    )
    sys.stderr.flush()


# -- search -------------------------------------------------------------------


def cmd_search(args: argparse.Namespace, config: Config, db: str) -> int:
    from soc_tui.store.reader import StoreReader
    from soc_tui.store.search import compile_query

    query = " ".join(args.query)
    compiled = compile_query(query)  # a bad query fails before the database is touched
    if args.limit < 0:
        raise UserError("--limit must be 0 (all) or more")
    reader = StoreReader(db, create=False)
    try:
        if args.count:
            print(reader.count(compiled))
            return 0
        if args.limit == 0:
            rows: Any = reader.iter_search(compiled)
        else:
            rows = reader.search(compiled, limit=args.limit)
        out = sys.stdout
        if args.format == "json":
            for row in rows:
                out.write(json.dumps(_json_event(row), ensure_ascii=False) + "\n")
        elif args.format == "csv":
            writer = csv.writer(out)
            writer.writerow(JSON_FIELDS)
            for row in rows:
                ev = _json_event(row)
                writer.writerow(
                    [json.dumps(ev[f]) if isinstance(ev[f], dict) else ev[f] for f in JSON_FIELDS]
                )
        else:
            _print_table(list(rows), out)
    finally:
        reader.close()
    return 0


def _json_event(row: dict[str, Any]) -> dict[str, Any]:
    ev = {f: row.get(f) for f in JSON_FIELDS}
    ev["ts"] = us_to_iso(row["ts"])
    return ev


def _print_table(rows: list[dict[str, Any]], out: Any) -> None:
    from soc_tui.text import printable

    if not rows:
        print("no matching events", file=sys.stderr)
        return
    widths = {"ts": 20, "host": 14, "app": 10, "action": 22, "outcome": 7, "user": 12, "src_ip": 15}
    header = "  ".join(f.upper().ljust(widths.get(f, 0)) for f in TABLE_FIELDS).rstrip()
    out.write(header + "\n")
    for row in rows:
        cells = []
        for f in TABLE_FIELDS:
            v = row.get(f)
            text = us_to_iso(v)[:19].replace("T", " ") if f == "ts" else printable("" if v is None else str(v))
            w = widths.get(f)
            cells.append(text[:w].ljust(w) if w else text)
        out.write("  ".join(cells) + "\n")


# -- collect ------------------------------------------------------------------


def cmd_collect(args: argparse.Namespace, config: Config, db: str) -> int:
    from soc_tui.pipeline import Pipeline

    check_tz(args.tz, "--tz")
    if args.sources:
        sources = [SourceConfig(s, args.host, args.tz, None, args.format) for s in args.sources]
    else:
        sources = list(config.sources)
    if not sources:
        raise UserError("no sources: give files or globs, or list them under 'sources' in the config")
    for src in sources:
        if not set("*?[") & set(src.spec):
            parent = os.path.dirname(os.path.abspath(src.spec))
            if not os.path.isdir(parent):
                raise UserError(f"directory not found for source {src.spec}")
            if os.path.isdir(src.spec):
                raise UserError(f"{src.spec} is a directory (give a glob like {src.spec}/*.log)")
    pipeline = Pipeline(db, sources, follow=True, poll_interval=args.poll)

    async def run() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await pipeline.run(stop)

    # Open the database now so a locked or corrupt file is reported before we start.
    from soc_tui.store.reader import StoreReader

    StoreReader(db).close()
    asyncio.run(run())
    for err in pipeline.errors:
        print(f"soc-tui: warning: {err}", file=sys.stderr)
    print(f"collected {pipeline.events_written} events", file=sys.stderr)
    return 0


_COMMANDS = {"ingest": cmd_ingest, "search": cmd_search, "collect": cmd_collect}
