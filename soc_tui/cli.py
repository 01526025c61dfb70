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
from pathlib import Path
from typing import Any, Sequence

from soc_tui import __version__, cli_triage
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
from soc_tui.child import tune_gc
from soc_tui.model import us_to_iso
from soc_tui.sources.base import SourceError, parse_spec
from soc_tui.text import printable
from soc_tui.store.db import StoreError
from soc_tui.store.search import SearchError
from soc_tui.store.triage import TriageError

EXIT_USAGE = 2
EXIT_REFUSED = 1  # a triage action refused (invalid transition, unknown id)

JSON_FIELDS = (
    "id", "ts", "host", "app", "pid", "action", "outcome", "user", "target_user",
    "src_ip", "src_port", "http_method", "url", "http_status", "bytes", "user_agent",
    "referrer", "level", "message", "raw", "repeat", "source_id", "extra",
)
TABLE_FIELDS = ("ts", "host", "app", "action", "outcome", "user", "src_ip", "message")


from soc_tui.store.triage import ALERT_STATUSES, SEVERITIES  # noqa: E402


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
    parser.add_argument(
        "--analyst", metavar="NAME", default=default,
        help="who is acting, for the audit trail (default: the OS user)",
    )


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    _global_options(common, suppress=True)

    parser = argparse.ArgumentParser(
        prog="soc-tui", description="A terminal SOC console: collect, search and triage logs."
    )
    parser.add_argument("--version", action="version", version=f"soc-tui {__version__}")
    _global_options(parser, suppress=False)
    tui = parser.add_argument_group("the TUI (soc-tui without a command)")
    tui.add_argument("--attach", action="store_true",
                     help="open the database without collecting (another process collects)")
    tui.add_argument("--no-mouse", action="store_true", help="keyboard only")
    tui.add_argument("--no-bell", action="store_true", help="no terminal bell on new high/critical alerts")
    tui.add_argument("--theme", metavar="NAME", help="colour theme (e.g. textual-dark, nord, gruvbox)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = sub.add_parser("ingest", parents=[common], help="backfill log files (plain or .gz)")
    p.add_argument("paths", nargs="+", metavar="PATH_OR_GLOB")
    p.add_argument("--host", help="host name for lines that carry none")
    p.add_argument("--year", type=int, help="year for syslog lines without one (default: inferred)")
    p.add_argument("--tz", help="time zone of timestamps without an offset (default: local)")
    p.add_argument("--format", choices=FORMATS, default="auto")
    p.add_argument("--no-progress", action="store_true", help="no progress bar even on a terminal")
    p.add_argument("--no-rules", action="store_true", help="store only; do not run the rules")
    p.add_argument("--rules", action="append", metavar="DIR",
                   help="rule directory to use instead of the configured ones (repeatable)")

    p = sub.add_parser("search", parents=[common], help="search stored events")
    p.add_argument("query", nargs="*", help="search language: words, field:value, since:15m, ...")
    p.add_argument("--limit", type=int, default=100, help="newest N matches (0: all; default 100)")
    p.add_argument("--count", action="store_true", help="print only the number of matches")
    p.add_argument("--format", choices=("table", "json", "csv"), default="table")

    p = sub.add_parser("demo", parents=[common],
                       help="replay an attack story through the real pipeline (no config, no root)")
    p.add_argument("--scenario", default="breach", help="a scenario of demo_data/scenarios (default breach)")
    p.add_argument("--speed", help="1, 10, 100 (times real time) or max (default: 10, headless max)")
    p.add_argument("--headless", action="store_true", help="no TUI: replay, evaluate, print a summary")
    p.add_argument("--train", action="store_true", help="with training questions about the story")
    p.add_argument("--list", action="store_true", help="list the scenarios")

    p = sub.add_parser("collect", parents=[common], help="run the collector headless")
    p.add_argument("sources", nargs="*", metavar="SOURCE")
    p.add_argument("--host", help="host name for lines that carry none")
    p.add_argument("--tz", help="time zone of timestamps without an offset")
    p.add_argument("--format", choices=FORMATS, default="auto")
    p.add_argument("--poll", type=float, default=0.25, help="seconds between file polls")
    p.add_argument("--no-rules", action="store_true", help="store only; do not run the rules")
    p.add_argument("--rules", action="append", metavar="DIR",
                   help="rule directory to use instead of the configured ones (repeatable)")

    p = sub.add_parser("rules", parents=[common], help="lint, test and backtest detection rules")
    rsub = p.add_subparsers(dest="rules_command", metavar="ACTION", required=True)
    r = rsub.add_parser("lint", parents=[common], help="load every rule file and report problems")
    r.add_argument("dirs", nargs="*", metavar="DIR", help="rule files or directories (default: configured)")
    r = rsub.add_parser("test", parents=[common], help="run the rules on log files, storing nothing")
    r.add_argument("files", nargs="+", metavar="FILE")
    r.add_argument("--rules", action="append", metavar="DIR", help="rules to use (default: configured)")
    r.add_argument("--format", choices=("table", "json"), default="table")
    r.add_argument("--host", help="host name for lines that carry none")
    r.add_argument("--year", type=int, help="year for syslog lines without one")
    r.add_argument("--tz", help="time zone of timestamps without an offset")
    for name in ("enable", "disable"):
        r = rsub.add_parser(name, parents=[common],
                            help=f"{name} a rule for this database (audited; the worker follows)")
        r.add_argument("rule", metavar="RULE_NAME_OR_ID")
        r.add_argument("--rules", action="append", metavar="DIR", help="rules to use (default: configured)")
    r = rsub.add_parser("backtest", parents=[common], help="what one rule would have raised on stored events")
    r.add_argument("rule", metavar="RULE_NAME_OR_ID")
    r.add_argument("--since", default="7d", help="how far back (duration like 7d or an ISO time; default 7d)")
    r.add_argument("--format", choices=("table", "json"), default="table")

    p = sub.add_parser("alerts", parents=[common], help="list and triage alerts")
    asub = p.add_subparsers(dest="alerts_command", metavar="ACTION", required=True)
    r = asub.add_parser("list", parents=[common], help="alerts, most severe and newest first")
    r.add_argument("--status", choices=ALERT_STATUSES)
    r.add_argument("--severity", choices=SEVERITIES[1:])  # informational never alerts
    r.add_argument("--rule", help="only this rule (name or id)")
    r.add_argument("--assignee", help="only alerts assigned to NAME")
    r.add_argument("--incident", type=int, metavar="ID", help="only alerts linked to incident ID")
    r.add_argument("--limit", type=int, default=0, help="at most N alerts (0: all)")
    r.add_argument("--format", choices=("table", "json", "csv"), default="table")
    cli_triage.add_alert_actions(asub, common)
    cli_triage.add_parsers(sub, common)

    p = sub.add_parser("ssh-trust", parents=[common],
                       help="show an SSH server's host key and add it to ~/.ssh/known_hosts")
    p.add_argument("host", metavar="[USER@]HOST", help="host name or ~/.ssh/config alias")
    p.add_argument("--port", type=int, help="port (default: from ~/.ssh/config, else 22)")
    p.add_argument("--yes", action="store_true", help="add the key without asking")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        config = load_config(args.config if args.config else default_config_path())
        db = args.db or config.db or default_db_path()
        handler = cmd_tui if args.command is None else _COMMANDS[args.command]
        return handler(args, config, db)
    except (UserError, ConfigError, StoreError, SourceError) as exc:
        # The message may quote a remote server or a file name: never raw.
        print(f"soc-tui: error: {printable(str(exc))}", file=sys.stderr)
        return EXIT_USAGE
    except SearchError as exc:
        print(f"soc-tui: error: bad query: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except TriageError as exc:
        print(f"soc-tui: error: {exc}", file=sys.stderr)
        return EXIT_REFUSED
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
    """Check every argument before anything is written; globs must match.
    Sources that are not local files (ssh://, journald://, -) pass as they are."""
    out: list[str] = []
    other: list[str] = []
    for arg in paths:
        kind = parse_spec(arg).kind
        if kind in ("syslog+udp", "syslog+tcp"):
            raise UserError(f"{arg}: a syslog receiver has no end; run it with `soc-tui collect`")
        if kind not in ("file", "glob"):
            other.append(arg)
            continue
        if kind == "glob":
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
    return list(dict.fromkeys([os.path.abspath(p) for p in out] + other))


def cmd_ingest(args: argparse.Namespace, config: Config, db: str) -> int:
    from soc_tui.pipeline import Pipeline

    check_tz(args.tz, "--tz")
    files = _expand(args.paths)
    sources = [SourceConfig(p, args.host, args.tz, args.year, args.format) for p in files]
    rule_dirs = None if args.no_rules else _rule_dirs(config, args.rules)
    worker = None if rule_dirs is None else _start_worker(db, rule_dirs, _load_ruleset(rule_dirs))
    # The parse process matches backlog events against the same rules; the
    # worker continues from there on the batches the writer hands it.
    pipeline = Pipeline(db, sources, follow=False,
                        on_commit=worker.offer if worker else None,
                        rule_paths=rule_dirs if worker else None)
    total = sum(_size(p) for p in files if os.path.isfile(p))
    tune_gc()
    show = sys.stderr.isatty() and not args.no_progress
    start = time.monotonic()

    async def run() -> None:
        task = asyncio.create_task(pipeline.run())
        while show and not task.done():
            await asyncio.wait([task], timeout=0.2)
            _progress(pipeline, total, start)
        await task

    interrupted = False
    try:
        try:
            asyncio.run(run())
        except KeyboardInterrupt:
            interrupted = True
            raise
        finally:
            if worker is not None:
                # The backfill raises what a live tail would; on Ctrl-C the
                # rest waits for the next run (the cursor says where it is).
                _stop_worker(worker, drain=not interrupted)
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
    if worker is not None:
        print(f"rules {len(worker.ruleset.all())}  events evaluated {worker.evaluated}  "
              f"alerts raised {worker.alerts_raised}")
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
                out.write(json.dumps(_json_event(row)) + "\n")
        elif args.format == "csv":
            safe = _csv_text(out)
            writer = csv.writer(out)
            writer.writerow(JSON_FIELDS)
            for row in rows:
                ev = _json_event(row)
                writer.writerow([
                    json.dumps(ev[f]) if isinstance(ev[f], dict)
                    else safe(ev[f]) if isinstance(ev[f], str) else ev[f]
                    for f in JSON_FIELDS
                ])
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
    check_tz(args.tz, "--tz")
    if args.sources:
        sources = [SourceConfig(s, args.host, args.tz, None, args.format) for s in args.sources]
    else:
        sources = list(config.sources)
    if not sources:
        raise UserError("no sources: give files or globs, or list them under 'sources' in the config")
    check_sources(sources)
    rule_dirs = None if args.no_rules else _rule_dirs(config, args.rules)
    # Open the database now so a locked or corrupt file is reported before we start.
    from soc_tui.store.reader import StoreReader

    StoreReader(db).close()
    collector = start_collector(config, db, sources, rule_dirs, poll_interval=args.poll)
    pipeline = collector.pipeline
    handlers = {sig: signal.signal(sig, lambda *_: collector.request_stop())
                for sig in (signal.SIGINT, signal.SIGTERM)}
    said: dict[str, tuple[str, str | None]] = {}
    try:
        while not collector.wait(0.5):
            _say_health(collector.health(), said)
    finally:
        for sig, old in handlers.items():
            signal.signal(sig, old)
        stop_collector(collector)
    if collector.failure is not None:
        raise collector.failure
    health = collector.health()
    for err in dict.fromkeys(pipeline.errors):
        if err and all(said.get(h.name) != (h.state, err) for h in health):
            print(f"soc-tui: warning: {printable(err)}", file=sys.stderr)
    for h in health:
        if h.dropped or h.refused:
            print(f"soc-tui: {printable(h.name)}: {h.dropped:,} message(s) dropped under load, "
                  f"{h.refused:,} refused (sender not in allow)", file=sys.stderr)
    print(f"collected {pipeline.events_written} events", file=sys.stderr)
    if health and all(h.state == "error" for h in health):
        return 1  # every source failed (each said why above)
    return 0


def _say_health(health: list, said: dict[str, tuple[str, str | None]]) -> None:
    """Tell a headless collector's log when a source goes wrong or recovers."""
    for h in health:
        now = (h.state, h.error)
        before = said.get(h.name)
        if before == now or h.state in ("starting", "lagging", "done"):
            continue
        # Names and errors can hold text from the remote side: printable() only.
        if h.state in ("error", "reconnecting") and h.error:
            print(f"soc-tui: warning: {printable(h.error)}" if h.state == "error"
                  else f"soc-tui: {printable(h.name)}: reconnecting: {printable(h.error)}",
                  file=sys.stderr, flush=True)
        elif h.state == "running" and before is not None and before[0] in ("error", "reconnecting"):
            print(f"soc-tui: {printable(h.name)}: running again", file=sys.stderr, flush=True)
        said[h.name] = now


def check_sources(sources: list[SourceConfig]) -> None:
    """Refuse sources that cannot work before anything starts."""
    for src in sources:
        kind = parse_spec(src.spec).kind
        if kind == "stdin" and sys.stdin.isatty():
            raise UserError("- reads lines from stdin, but stdin is a terminal: pipe logs in "
                            "(e.g. ssh host tail -F /var/log/auth.log | soc-tui collect -)")
        if kind == "file":
            parent = os.path.dirname(os.path.abspath(src.spec))
            if not os.path.isdir(parent):
                raise UserError(f"directory not found for source {src.spec}")
            if os.path.isdir(src.spec):
                raise UserError(f"{src.spec} is a directory (give a glob like {src.spec}/*.log)")


# -- the TUI ----------------------------------------------------------------------


def cmd_tui(args: argparse.Namespace, config: Config, db: str) -> int:
    """Open the TUI: collecting the configured sources in this process, or
    with --attach on a database another process fills."""
    from soc_tui.store.reader import StoreReader

    if args.theme:
        from textual.theme import BUILTIN_THEMES

        if args.theme not in BUILTIN_THEMES:
            raise UserError(f"unknown theme {args.theme!r} (one of: {', '.join(sorted(BUILTIN_THEMES))})")
    if args.attach:
        StoreReader(db, create=False).close()
    else:
        StoreReader(db).close()
    if not sys.stdout.isatty() or not sys.stdin.isatty():
        raise UserError("the TUI needs a terminal (use a command, e.g. `soc-tui search`, in scripts)")
    rule_dirs = _rule_dirs(config)
    ruleset = _load_ruleset(rule_dirs)
    collector = None
    if not args.attach:
        sources = list(config.sources)
        if not sources:
            raise UserError("no sources configured: list them under 'sources' in the config,"
                            " or use --attach on a database another process collects into")
        check_sources(sources)
        collector = start_collector(config, db, sources, rule_dirs, child=True)
    return run_tui(db, cli_triage.analyst(args), rule_dirs, ruleset, collector,
                   mouse=not args.no_mouse, bell=not args.no_bell, theme=args.theme)


def run_tui(db: str, analyst: str, rule_dirs: list[str], ruleset: Any, collector: Any, *,
            mouse: bool = True, bell: bool = True, theme: str | None = None,
            start: str = "overview", app_hook: Any = None, demo: Any = None,
            quiz: Any = None) -> int:
    """Run the app until it exits, then stop the collector (what it read is
    committed and evaluated) whatever ended the app."""
    from soc_tui.ui.app import SocApp
    from soc_tui.ui.context import UiContext, UiOptions

    ctx = None
    code = 1
    try:
        ctx = UiContext.open(db, analyst, rule_dirs=rule_dirs, ruleset=ruleset, collector=collector,
                             options=UiOptions(bell=bell, theme=theme),
                             replayer=demo, quiz=quiz)
        app = SocApp(ctx, start=start)
        if app_hook is not None:
            app_hook(app)
        app.run(mouse=mouse)
        code = app.return_code or 0
    finally:
        if ctx is not None:
            ctx.close()
        if collector is not None:
            stop_collector(collector)
            for err in dict.fromkeys(collector.pipeline.errors):
                print(f"soc-tui: warning: {printable(err)}", file=sys.stderr)
            print(f"collected {collector.pipeline.events_written} events", file=sys.stderr)
    return code


# -- demo -------------------------------------------------------------------------


def cmd_demo(args: argparse.Namespace, config: Config, db: str) -> int:
    """Replay a scenario into a fresh database (or --db) through the collector
    and the rules, with the TUI or (--headless) until it is all evaluated."""
    import tempfile

    from soc_tui import demo
    from soc_tui.store.reader import StoreReader

    if args.list:
        for name in demo.list_scenarios():
            sc = demo.load_scenario(name)
            print(f"{name:<12} {sc.title}")
        return 0
    speed = _demo_speed(args.speed or ("max" if args.headless else "10"))
    try:
        scenario = demo.load_scenario(args.scenario)
    except demo.DemoError as exc:
        raise UserError(str(exc)) from None
    work = Path(tempfile.mkdtemp(prefix="soc-tui-demo-"))
    db = args.db or str(work / "soc.db")
    StoreReader(db).close()
    logs = work / "logs"
    replayer = demo.Replayer(scenario, logs, speed=speed)
    sources = [SourceConfig(str(p), f.host, "UTC", None, "auto")
               for p, f in zip(replayer.paths, scenario.files)]
    rule_dirs = [shipped_rules_dir()]
    collector = start_collector(Config(), db, sources, rule_dirs, poll_interval=0.1)
    replayer.start()
    if args.headless:
        try:
            demo.wait_stored(collector, replayer)
        finally:
            replayer.stop()
            stop_collector(collector)
        if replayer.error:
            raise UserError(replayer.error)
        _demo_summary(scenario, db, replayer)
        return 0
    if not sys.stdout.isatty() or not sys.stdin.isatty():
        replayer.stop()
        stop_collector(collector)
        raise UserError("the demo TUI needs a terminal (use --headless in scripts)")
    quiz = None
    if args.train:
        from soc_tui.training import Quiz, QuizError

        try:
            quiz = Quiz(scenario.questions, shift=replayer.shift, year=scenario.year,
                        story_start=replayer.lines[0].ts)
        except QuizError as exc:
            replayer.stop()
            stop_collector(collector)
            raise UserError(f"{scenario.dir / 'scenario.yaml'}: {exc}") from None
        if not quiz.questions:
            print(f"soc-tui: warning: scenario {scenario.name} has no questions", file=sys.stderr)
    try:
        return run_tui(db, cli_triage.analyst(args), rule_dirs, _load_ruleset(rule_dirs), collector,
                       demo=replayer, quiz=quiz, start="training" if quiz else "alerts")
    finally:
        replayer.stop()
        print(f"the demo database stays at {db}", file=sys.stderr)


def _demo_speed(text: str) -> float:
    from soc_tui.demo import MAX_SPEED

    if text == "max":
        return MAX_SPEED
    try:
        speed = float(text)
    except ValueError:
        speed = -1.0
    if not 0 < speed <= 10000:
        raise UserError(f"--speed takes a number of times real time (1, 10, 100) or max, not {text!r}")
    return speed


def _demo_summary(scenario: Any, db: str, replayer: Any) -> None:
    from soc_tui.store.reader import StoreReader

    reader = StoreReader(db, create=False)
    try:
        events = reader.count("")
        alerts = reader.alerts(with_events=False)
    finally:
        reader.close()
    by_rule: dict[str, list[Any]] = {}
    for a in alerts:
        by_rule.setdefault(a.rule_name, []).append(a)
    print(f"demo {scenario.name}: {replayer.written} lines replayed, {events} events stored,"
          f" {len(alerts)} alerts")
    for name, items in sorted(by_rule.items(), key=lambda kv: (-max(_SEV.get(a.severity, 0) for a in kv[1]), kv[0])):
        sev = max((a.severity for a in items), key=lambda s: _SEV.get(s, 0))
        print(f"  {name:<34} {len(items):>4}  {sev}")
    print(f"database: {db}  (soc-tui --db {db} alerts list --format json)")


_SEV = {"critical": 4, "high": 3, "medium": 2, "low": 1, "informational": 0}


# -- rules and alerts ---------------------------------------------------------


def shipped_rules_dir() -> str:
    """The rule pack that comes with soc-tui (`rules/` beside the package)."""
    import soc_tui

    return os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(soc_tui.__file__))), "rules")


def _rule_dirs(config: Config, given: list[str] | None = None) -> list[str]:
    if given:
        for d in given:
            if not os.path.exists(d):
                raise UserError(f"rules not found: {d}")
        return given
    dirs = [shipped_rules_dir(), *config.rules]
    return [d for d in dirs if os.path.exists(d)]


def _load_ruleset(dirs: list[str]) -> Any:
    """Load the rules of `dirs` (see _rule_dirs); each rule that fails is a
    warning, the others run."""
    from soc_tui.detect.loader import load_rules

    ruleset = load_rules(dirs)
    for err in ruleset.errors:
        print(f"soc-tui: warning: rule not loaded: {err}", file=sys.stderr)
    return ruleset


def start_collector(config: Config, db: str, sources: list[SourceConfig],
                    rule_dirs: list[str] | None, *, poll_interval: float = 0.25,
                    child: bool = False) -> Any:
    """A started Collector (pipeline, rule process, the config's retention);
    with `child`, a CollectorProcess: the same in a process of its own (the
    TUI's, whose UI thread would otherwise share the GIL with the pipeline)."""
    from soc_tui.collector import Collector, CollectorProcess

    if child:
        return CollectorProcess(db, sources, rule_dirs=rule_dirs, retention=config.retention,
                                poll_interval=poll_interval, rule_poll_interval=0.1).start()
    worker = None if rule_dirs is None else _start_worker(db, rule_dirs, _load_ruleset(rule_dirs),
                                                          poll_interval=0.1)
    return Collector(db, sources, rule_dirs=rule_dirs, worker=worker,
                     retention=config.retention, poll_interval=poll_interval).start()


def stop_collector(collector: Any) -> None:
    """Stop it (nothing lost) and report how the rule process and pruner went."""
    from soc_tui.detect.process import RuleProcessError

    try:
        collector.stop(drain=True)
    except RuleProcessError as exc:
        raise UserError(str(exc)) from None
    finally:
        if collector.worker is not None:
            _report_worker(collector.worker)
        if collector.pruner is not None and collector.pruner.last_error:
            print(f"soc-tui: warning: pruning failed: {collector.pruner.last_error}",
                  file=sys.stderr)


def _start_worker(db: str, dirs: list[str], ruleset: Any, *, poll_interval: float = 0.25) -> Any:
    """The rule worker running in its own process (RuleProcess), or None
    when no rule is enabled."""
    from soc_tui.detect.process import RuleProcess
    from soc_tui.store.reader import StoreReader

    if not any(r.enabled for r in ruleset.all()):
        return None

    StoreReader(db).close()  # create the database if this is the first run
    return RuleProcess(db, dirs, ruleset, poll_interval=poll_interval)


def _stop_worker(worker: Any, *, drain: bool) -> None:
    """Stop the rule process (evaluating what is stored first, with drain)
    and report how it went: retried failures as a warning, a failure that
    stopped it as an error."""
    from soc_tui.detect.process import RuleProcessError

    try:
        worker.stop(drain=drain)
    except RuleProcessError as exc:
        raise UserError(str(exc)) from None
    finally:
        worker.close()
        _report_worker(worker)


def _report_worker(worker: Any) -> None:
    """Failures the rule process retried, as one warning."""
    if worker.failures:
        print(f"soc-tui: warning: the rule worker failed {worker.failures} time(s) and "
              f"retried; last: {worker.last_failure}", file=sys.stderr)


def cmd_rules(args: argparse.Namespace, config: Config, db: str) -> int:
    return {"lint": _rules_lint, "test": _rules_test, "backtest": _rules_backtest,
            "enable": _rules_switch, "disable": _rules_switch}[args.rules_command](args, config, db)


def _rules_switch(args: argparse.Namespace, config: Config, db: str) -> int:
    from soc_tui.store import triage
    from soc_tui.store.db import open_db

    ruleset = _load_ruleset(_rule_dirs(config, args.rules))
    rule = ruleset.find(args.rule)
    if rule is None:
        raise UserError(f"no such rule: {args.rule}")
    on = args.rules_command == "enable"
    conn = open_db(db, create=False)
    try:
        changed = triage.set_rule_enabled(conn, rule.rule_id, rule.name, on, cli_triage.analyst(args))
    finally:
        conn.close()
    state = "enabled" if on else "disabled"
    print(f"rule {rule.name or rule.rule_id} " + (f"is now {state}" if changed else f"was already {state}"),
          file=sys.stderr)
    return 0


def _rules_lint(args: argparse.Namespace, config: Config, db: str) -> int:
    from soc_tui.detect.loader import load_rules

    ruleset = load_rules(_rule_dirs(config, args.dirs))
    for err in ruleset.errors:
        print(err)
    print(f"{len(ruleset.all())} loaded, {len(ruleset.errors)} failed")
    return 1 if ruleset.errors else 0


def _rules_test(args: argparse.Namespace, config: Config, db: str) -> int:
    from soc_tui.detect.offline import run_files

    check_tz(args.tz, "--tz")
    files = _expand(args.files)
    ruleset = _load_ruleset(_rule_dirs(config, args.rules))
    try:
        result = run_files(ruleset, files, host=args.host, year=args.year, tz=args.tz)
    except (OSError, EOFError) as exc:  # incl. gzip.BadGzipFile
        raise UserError(f"cannot read {getattr(exc, 'filename', None) or 'a file'}: {exc}") from None
    _print_alerts([(a.as_dict(), result.lines(a)) for a in result.alerts], args.format, stored=False)
    return 0


def _rules_backtest(args: argparse.Namespace, config: Config, db: str) -> int:
    from soc_tui.detect.backtest import backtest

    ruleset = _load_ruleset(_rule_dirs(config))
    target = ruleset.find(args.rule)
    if target is None:
        raise UserError(f"no rule named {args.rule!r} (see `soc-tui rules lint`)")
    alerts, result = backtest(ruleset, target, db, args.since)
    _print_alerts([(a.as_dict(), result.lines(a)) for a in alerts], args.format, stored=False)
    return 0


def cmd_alerts(args: argparse.Namespace, config: Config, db: str) -> int:
    from soc_tui.store.reader import StoreReader

    if args.alerts_command == "show":
        return cli_triage.alert_show(args, db)
    if args.alerts_command == "metrics":
        return cli_triage.alert_metrics(args, db)
    if args.alerts_command != "list":
        return cli_triage.alert_action(args, db)
    if args.limit < 0:
        raise UserError("--limit must be 0 (all) or more")
    reader = StoreReader(db, create=False)
    try:
        alerts = reader.alerts(status=args.status, severity=args.severity, rule=args.rule,
                               assignee=args.assignee, incident=args.incident,
                               limit=args.limit or None)
        rows = []
        for a in alerts:
            d = dict(a.__dict__)
            lines = [e["raw"] for e in reader.events_by_id(a.event_ids)]
            rows.append((d, lines))
    finally:
        reader.close()
    _print_alerts(rows, args.format, stored=True)
    return 0


def _print_alerts(rows: list[tuple[dict[str, Any], list[str]]], fmt: str, *, stored: bool) -> None:
    from soc_tui.text import printable

    out = sys.stdout
    if fmt == "csv":
        _alerts_csv(rows, out)
        return
    if fmt == "json":
        for d, lines in rows:
            obj = {
                "rule_name": d["rule_name"], "rule_id": d["rule_id"], "title": d["title"],
                "severity": d["severity"], "count": d["count"],
                "first_seen": us_to_iso(d["first_seen"]), "last_seen": us_to_iso(d["last_seen"]),
                "host": d["host"], "src_ip": d["src_ip"], "user": d["user"],
                "tags": list(d["tags"]), "evidence": lines,
            }
            if stored:
                obj = {"id": d["id"], "status": d["status"], **obj, "event_ids": d["event_ids"],
                       "assignee": d["assignee"], "labels": list(d["labels"]),
                       "incident_id": d["incident_id"], "close_reason": d["close_reason"]}
            out.write(json.dumps(obj) + "\n")
        return
    if not rows:
        print("no alerts", file=sys.stderr)
        return
    head = ("ID  " if stored else "") + "SEVERITY  " + ("STATUS        " if stored else "")
    out.write(head + "RULE                          COUNT  LAST SEEN            SRC_IP           USER\n")
    for d, lines in rows:
        cells = (f"{d['id']:<4}" if stored else "") + f"{d['severity']:<10}"
        if stored:
            cells += f"{d['status']:<14}"
        cells += (
            f"{printable(d['rule_name'])[:29]:<30}{d['count']:>5}  "
            f"{us_to_iso(d['last_seen'])[:19].replace('T', ' '):<21}"
            f"{printable(d['src_ip'] or '-'):<17}{printable(d['user'] or '-')}"
        )
        out.write(cells.rstrip() + "\n")
        if not stored:
            for line in lines[:5]:
                out.write("      " + printable(line)[:200] + "\n")
            if len(lines) > 5:
                out.write(f"      ... {len(lines) - 5} more\n")


ALERT_CSV = ("id", "status", "severity", "rule_name", "title", "count", "first_seen", "last_seen",
             "host", "src_ip", "user", "assignee", "incident_id", "close_reason", "tags", "labels",
             "event_ids")


def _csv_text(out: Any) -> Any:
    """How CSV cells of text are written to `out`: into a file as logged, on
    a terminal with control characters escaped like everywhere else."""
    from soc_tui.text import printable

    return printable if out.isatty() else (lambda text: text)


def _alerts_csv(rows: list[tuple[dict[str, Any], list[str]]], out: Any) -> None:
    """Stored alerts as CSV (the table's columns plus triage; lists joined by ';')."""
    safe = _csv_text(out)
    w = csv.writer(out)
    w.writerow(ALERT_CSV)
    for d, _ in rows:
        cells = []
        for k in ALERT_CSV:
            v = d.get(k)
            if k in ("first_seen", "last_seen"):
                v = us_to_iso(v)
            elif isinstance(v, list):
                v = ";".join(map(str, v))
            cells.append(safe(v) if isinstance(v, str) else v)
        w.writerow(cells)


def cmd_ssh_trust(args: argparse.Namespace, config: Config, db: str) -> int:
    """Show a server's host key fingerprint; after confirmation, trust it."""
    from soc_tui.sources.ssh import ConnectionDown, SshRefused, check_host_key, trust_host

    user, _, host = args.host.rpartition("@")
    try:
        check = asyncio.run(check_host_key(host, args.port, user or None))
    except (ConnectionDown, SshRefused) as exc:
        raise UserError(printable(str(exc))) from None
    print(f"{check.entry} presents {check.describe()}")
    if check.status == "trusted":
        print(f"already trusted in {check.files[0]}")
        return 0
    if check.status == "changed":
        raise UserError(check.changed_message(check.entry, "soc-tui ssh-trust again"))
    if not args.yes:
        if not sys.stdin.isatty():
            raise UserError("not a terminal: compare the fingerprint with the server's, then add --yes")
        answer = input("Compare it with the server's (ssh-keygen -lf /etc/ssh/ssh_host_*_key.pub). "
                       "Trust this key? [y/N] ")
        if answer.strip().lower() not in ("y", "yes"):
            print("not trusted")
            return 1
    path = trust_host(check)
    print(f"added {check.entry} to {path}")
    return 0


_COMMANDS = {
    "ssh-trust": cmd_ssh_trust,
    "ingest": cmd_ingest, "search": cmd_search, "collect": cmd_collect, "demo": cmd_demo,
    "rules": cmd_rules, "alerts": cmd_alerts, **cli_triage.COMMANDS,
}
