"""The triage commands of the CLI: alert workflow, suppressions, incidents,
notes and rule metrics.

Owns: their argument parsers (added to `soc_tui.cli`'s by `add_parsers`)
and handlers (`COMMANDS`), the analyst identity (`--analyst`, else the OS
user) and how triage objects are printed (table, JSON, and the Markdown of
an alert or incident shown on a terminal). All reading and writing goes
through `soc_tui.store.triage`; refusals arrive as TriageError and are
printed by `soc_tui.cli.main` as one line. Must not: import Textual.
"""

from __future__ import annotations

import argparse
import getpass
import json
import os
import re
import sys
from typing import Any, Callable

from soc_tui.model import now_us, us_to_iso
from soc_tui.store import triage
from soc_tui.store.triage import TriageError
from soc_tui.text import printable

DURATION_RE = re.compile(r"^(\d+)([smhdw])$")
UNIT_US = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def analyst(args: argparse.Namespace) -> str:
    """Who acts: --analyst, else the OS user running the command."""
    name = getattr(args, "analyst", None)
    if name:
        return name
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return f"uid{os.getuid()}"


def add_parsers(sub: Any, common: argparse.ArgumentParser) -> None:
    """The triage subcommands (the `alerts` parser is extended by `add_alert_actions`)."""
    p = sub.add_parser("suppress", parents=[common], help="analyst suppressions")
    ssub = p.add_subparsers(dest="suppress_command", metavar="ACTION", required=True)
    r = ssub.add_parser("add", parents=[common], help="stop raising matching hits for a while")
    r.add_argument("--rule", help="rule name or id (default: any rule)")
    r.add_argument("--field", action="append", default=[], metavar="K=V",
                   help=f"match this group field ({', '.join(triage.SUPPRESS_FIELDS)}); repeatable")
    r.add_argument("--for", dest="duration", metavar="DURATION",
                   help="how long, e.g. 30m, 24h, 7d (default: until removed)")
    r.add_argument("--reason", required=True)
    r = ssub.add_parser("list", parents=[common], help="suppressions with their hit counts")
    r.add_argument("--all", action="store_true", help="also expired and removed ones")
    r.add_argument("--format", choices=("table", "json"), default="table")
    r = ssub.add_parser("remove", parents=[common], help="end a suppression")
    r.add_argument("id", type=int)

    p = sub.add_parser("incidents", parents=[common], help="incidents")
    isub = p.add_subparsers(dest="incidents_command", metavar="ACTION", required=True)
    r = isub.add_parser("create", parents=[common], help="open an incident")
    r.add_argument("--title", required=True)
    r.add_argument("--severity", choices=triage.SEVERITIES)
    r.add_argument("--owner")
    r.add_argument("--alert", type=int, action="append", default=[], metavar="ID")
    r = isub.add_parser("list", parents=[common], help="incidents, newest first")
    r.add_argument("--status", choices=triage.INCIDENT_STATUSES)
    r.add_argument("--format", choices=("table", "json"), default="table")
    r = isub.add_parser("show", parents=[common], help="one incident with its alerts and notes")
    r.add_argument("id", type=int)
    r.add_argument("--format", choices=("text", "json"), default="text")
    r = isub.add_parser("link", parents=[common], help="link alerts to an incident")
    r.add_argument("id", type=int)
    r.add_argument("--alert", type=int, action="append", required=True, metavar="ID")
    r = isub.add_parser("pin", parents=[common], help="pin events to an incident")
    r.add_argument("id", type=int)
    r.add_argument("--event", type=int, action="append", required=True, metavar="ID")
    r = isub.add_parser("status", parents=[common], help="set an incident's status")
    r.add_argument("id", type=int)
    r.add_argument("status", choices=triage.INCIDENT_STATUSES)
    r = isub.add_parser("update", parents=[common], help="change title, severity or owner")
    r.add_argument("id", type=int)
    r.add_argument("--title")
    r.add_argument("--severity", choices=triage.SEVERITIES)
    r.add_argument("--owner", help="an analyst name ('' for none)")

    p = sub.add_parser("verify", parents=[common],
                       help="check the hash chain and the database; print the latest seal")
    p.add_argument("--seal", metavar="SEQ:HASH", help="a seal recorded earlier, to check too")

    p = sub.add_parser("prune", parents=[common],
                       help="remove old events (retention from the config, or these options)")
    p.add_argument("--days", type=int, help="remove events older than N days")
    p.add_argument("--max-db-mb", type=int, help="shrink the database under M MB")

    p = sub.add_parser("export", parents=[common], help="export an incident report")
    esub = p.add_subparsers(dest="export_command", metavar="WHAT", required=True)
    r = esub.add_parser("incident", parents=[common], help="one incident as Markdown or JSON")
    r.add_argument("id", type=int)
    r.add_argument("--format", choices=("md", "json"), default="md")
    r.add_argument("-o", "--output", metavar="FILE", help="write here instead of standard output")

    p = sub.add_parser("notes", parents=[common], help="append-only notes")
    nsub = p.add_subparsers(dest="notes_command", metavar="ACTION", required=True)
    for name, help_text in (("add", "add a note to an incident or an alert"),
                            ("edit", "add a new version of a note")):
        r = nsub.add_parser(name, parents=[common], help=help_text)
        if name == "add":
            target = r.add_mutually_exclusive_group(required=True)
            target.add_argument("--incident", type=int, metavar="ID")
            target.add_argument("--alert", type=int, metavar="ID")
        else:
            r.add_argument("note", type=int, metavar="NOTE_ID")
        body = r.add_mutually_exclusive_group(required=True)
        body.add_argument("--text")
        body.add_argument("--file", help="Markdown file ('-': standard input)")
    r = nsub.add_parser("list", parents=[common], help="notes of an incident or an alert")
    target = r.add_mutually_exclusive_group(required=True)
    target.add_argument("--incident", type=int, metavar="ID")
    target.add_argument("--alert", type=int, metavar="ID")
    r.add_argument("--history", action="store_true", help="every version")
    r.add_argument("--format", choices=("text", "json"), default="text")


def add_alert_actions(asub: Any, common: argparse.ArgumentParser) -> None:
    """ack, start, close, reopen, assign, tag, show and metrics under `alerts`."""
    for name, help_text in (("ack", "acknowledge alerts"), ("start", "start working on alerts"),
                            ("close", "close alerts (needs --reason)"),
                            ("reopen", "reopen closed alerts"),
                            ("assign", "assign alerts (--to NAME, or to yourself)"),
                            ("tag", "add (or --remove) labels")):
        r = asub.add_parser(name, parents=[common], help=help_text)
        r.add_argument("ids", nargs="+", type=int, metavar="ID")
        if name == "close":
            r.add_argument("--reason", required=True, choices=triage.CLOSE_REASONS)
        if name == "assign":
            r.add_argument("--to", metavar="NAME", help="analyst name (default: you); '' unassigns")
        if name == "tag":
            r.add_argument("--tag", action="append", default=[], required=True, metavar="LABEL")
            r.add_argument("--remove", action="store_true", help="remove these labels instead")
    r = asub.add_parser("show", parents=[common], help="one alert with evidence, notes and history")
    r.add_argument("id", type=int)
    r.add_argument("--format", choices=("text", "json"), default="text")
    r = asub.add_parser("metrics", parents=[common], help="per rule: alerts, time to ack/close, FP rate")
    r.add_argument("--format", choices=("table", "json"), default="table")


# -- handlers --------------------------------------------------------------------------


def _connect(db: str) -> Any:
    from soc_tui.store.db import open_db

    return open_db(db, create=False)


def _run(db: str, fn: Callable[[Any], int]) -> int:
    conn = _connect(db)
    try:
        return fn(conn)
    finally:
        conn.close()


def alert_action(args: argparse.Namespace, db: str) -> int:
    """`alerts ack|start|close|reopen|assign|tag ID...`"""
    actor = analyst(args)
    action = args.alerts_command

    def run(conn: Any) -> int:
        if action in ("ack", "start", "close"):
            status = {"ack": "acknowledged", "start": "in_progress", "close": "closed"}[action]
            changed = triage.set_status(conn, args.ids, status, actor,
                                        getattr(args, "reason", None))
        elif action == "reopen":
            changed = triage.reopen(conn, args.ids, actor)
        elif action == "assign":
            to = actor if args.to is None else (args.to or None)
            changed = triage.assign(conn, args.ids, to, actor)
        else:
            add, remove = ([], args.tag) if args.remove else (args.tag, [])
            changed = triage.tag(conn, args.ids, add, remove, actor=actor)
        same = len(set(args.ids)) - len(changed)
        print(f"{action}: {len(changed)} alert(s) changed" + (f", {same} already so" if same else ""),
              file=sys.stderr)
        return 0

    return _run(db, run)


def alert_show(args: argparse.Namespace, db: str) -> int:
    from soc_tui.store.alerts import list_alerts
    from soc_tui.store.reader import StoreReader

    def run(conn: Any) -> int:
        found = list_alerts(conn, ids=[args.id])
        if not found:
            raise TriageError(f"no such alert: {args.id}")
        a = found[0]
        reader = StoreReader(db, create=False)
        try:
            events = reader.events_by_id(a.event_ids)
        finally:
            reader.close()
        notes = triage.notes_of(conn, "alert", a.id)
        history = triage.audit_of(conn, "alert", a.id)
        if args.format == "json":
            obj = _alert_json(a)
            obj["evidence"] = [{"id": e["id"], "ts": us_to_iso(e["ts"]), "raw": e["raw"]} for e in events]
            obj["notes"] = [_note_json(n) for n in notes]
            obj["history"] = [_audit_json(h) for h in history]
            sys.stdout.write(json.dumps(obj) + "\n")
            return 0
        out = sys.stdout
        p = printable
        out.write(f"alert {a.id}  {a.severity}  {a.status}"
                  + (f" ({a.close_reason})" if a.close_reason else "") + "\n")
        out.write(f"rule      {p(a.rule_name)}: {p(a.title)}\n")
        for label, value in (("assignee", a.assignee), ("incident", a.incident_id),
                             ("host", a.host), ("src_ip", a.src_ip), ("user", a.user)):
            if value is not None:
                out.write(f"{label:<10}{p(str(value))}\n")
        out.write(f"count     {a.count}  first {us_to_iso(a.first_seen)}  last {us_to_iso(a.last_seen)}\n")
        if a.tags or a.labels:
            out.write(f"tags      {p(', '.join([*a.tags, *a.labels]))}\n")
        out.write(f"\nevidence ({len(events)})\n")
        for e in events:
            out.write(f"  {e['id']:>8}  {p(e['raw'])[:300]}\n")
        _write_notes(out, notes)
        if history:
            out.write("\nhistory\n")
            for h in history:
                out.write(f"  {us_to_iso(h.ts)}  {p(h.actor)}  {h.action}  "
                          f"{p(json.dumps(h.before))} -> {p(json.dumps(h.after))}\n")
        return 0

    return _run(db, run)


def alert_metrics(args: argparse.Namespace, db: str) -> int:
    def run(conn: Any) -> int:
        rows = triage.rule_metrics(conn)
        if args.format == "json":
            for r in rows:
                sys.stdout.write(json.dumps(r) + "\n")
            return 0
        sys.stdout.write("RULE                            ALERTS  CLOSED  TO ACK    TO CLOSE  FP RATE\n")
        for r in rows:
            sys.stdout.write(
                f"{printable(r['rule_name'])[:31]:<32}{r['alerts']:>6}  {r['closed']:>6}  "
                f"{_secs(r['mean_time_to_ack_s']):>8}  {_secs(r['mean_time_to_close_s']):>8}  "
                f"{'-' if r['false_positive_rate'] is None else format(r['false_positive_rate'], '.0%'):>7}\n")
        return 0

    return _run(db, run)


def _secs(v: float | None) -> str:
    if v is None:
        return "-"
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if v >= size:
            return f"{v / size:.1f}{unit}"
    return f"{v:.0f}s"


def cmd_suppress(args: argparse.Namespace, config: Any, db: str) -> int:
    actor = analyst(args)

    def run(conn: Any) -> int:
        if args.suppress_command == "add":
            fields = {}
            for item in args.field:
                key, sep, value = item.partition("=")
                if not sep or not key or not value:
                    raise TriageError(f"--field takes K=V, got {item!r}")
                fields[key] = value
            expires = None if args.duration is None else now_us() + parse_duration(args.duration)
            sid = triage.add_suppression(conn, actor, rule=args.rule, fields=fields,
                                         reason=args.reason, expires_at=expires)
            print(f"suppression {sid} added" + (f", until {us_to_iso(expires)}" if expires else ""),
                  file=sys.stderr)
            sys.stdout.write(f"{sid}\n")
            return 0
        if args.suppress_command == "remove":
            triage.remove_suppression(conn, args.id, actor)
            print(f"suppression {args.id} removed", file=sys.stderr)
            return 0
        now = now_us()
        rows = triage.list_suppressions(conn, active_at=None if args.all else now)
        if args.format == "json":
            for s in rows:
                sys.stdout.write(json.dumps({
                    "id": s.id, "rule": s.rule, "fields": s.fields, "reason": s.reason,
                    "author": s.author, "created_at": us_to_iso(s.created_at),
                    "expires_at": us_to_iso(s.expires_at) if s.expires_at else None,
                    "removed_at": us_to_iso(s.removed_at) if s.removed_at else None,
                    "active": s.active(now), "hits": s.hits,
                    "last_hit": us_to_iso(s.last_hit) if s.last_hit else None}) + "\n")
            return 0
        if not rows:
            print("no suppressions", file=sys.stderr)
            return 0
        sys.stdout.write("ID   RULE                    FIELDS                   HITS  UNTIL                AUTHOR  REASON\n")
        for s in rows:
            state = ("removed" if s.removed_at else us_to_iso(s.expires_at)[:19].replace("T", " ")
                     if s.expires_at else "removed by hand")
            fields = ",".join(f"{k}={v}" for k, v in s.fields.items()) or "-"
            sys.stdout.write(f"{s.id:<5}{printable(s.rule or 'any')[:23]:<24}{printable(fields)[:24]:<25}"
                             f"{s.hits:>4}  {state:<21}{printable(s.author)[:7]:<8}{printable(s.reason)}\n")
        return 0

    return _run(db, run)


def parse_duration(text: str) -> int:
    """'30m', '24h', '7d' -> microseconds."""
    m = DURATION_RE.match(text.strip())
    if not m or int(m.group(1)) <= 0:
        raise TriageError(f"bad duration {text!r} (like 30m, 24h, 7d)")
    return int(m.group(1)) * UNIT_US[m.group(2)] * 1_000_000


def cmd_incidents(args: argparse.Namespace, config: Any, db: str) -> int:
    actor = analyst(args)
    action = args.incidents_command

    def run(conn: Any) -> int:
        if action == "create":
            iid = triage.create_incident(conn, args.title, actor, severity=args.severity,
                                         alert_ids=args.alert, owner=args.owner)
            print(f"incident {iid} created", file=sys.stderr)
            sys.stdout.write(f"{iid}\n")
        elif action == "link":
            n = triage.link_alerts(conn, args.id, args.alert, actor)
            print(f"{len(n)} alert(s) linked to incident {args.id}", file=sys.stderr)
        elif action == "pin":
            n = triage.pin_events(conn, args.id, args.event, actor)
            print(f"{len(n)} event(s) pinned to incident {args.id}", file=sys.stderr)
        elif action == "status":
            changed = triage.set_incident_status(conn, args.id, args.status, actor)
            print(f"incident {args.id} " + ("is now " if changed else "was already ") + args.status,
                  file=sys.stderr)
        elif action == "update":
            triage.update_incident(conn, args.id, actor, title=args.title, severity=args.severity,
                                   owner=args.owner)
            print(f"incident {args.id} updated", file=sys.stderr)
        elif action == "list":
            rows = triage.list_incidents(conn, status=args.status)
            if args.format == "json":
                for inc in rows:
                    sys.stdout.write(json.dumps(_incident_json(inc)) + "\n")
            elif not rows:
                print("no incidents", file=sys.stderr)
            else:
                sys.stdout.write("ID   SEVERITY  STATUS     ALERTS  OWNER     UPDATED              TITLE\n")
                for inc in rows:
                    sys.stdout.write(
                        f"{inc.id:<5}{inc.severity:<10}{inc.status:<11}{len(inc.alert_ids):>6}  "
                        f"{printable(inc.owner or '-')[:9]:<10}"
                        f"{us_to_iso(inc.updated_at)[:19].replace('T', ' '):<21}{printable(inc.title)}\n")
        else:
            return _incident_show(conn, args, db)
        return 0

    return _run(db, run)


def _incident_show(conn: Any, args: argparse.Namespace, db: str) -> int:
    from soc_tui.report import incident_report
    from soc_tui.store.reader import StoreReader

    inc = triage.get_incident(conn, args.id)
    notes = triage.notes_of(conn, "incident", inc.id)
    reader = StoreReader(db, create=False)
    try:
        timeline = incident_report(conn, reader, inc.id)["timeline"]
    finally:
        reader.close()
    if args.format == "json":
        obj = _incident_json(inc)
        obj["notes"] = [_note_json(n) for n in notes]
        obj["history"] = [_audit_json(h) for h in triage.audit_of(conn, "incident", inc.id)]
        obj["timeline"] = timeline
        sys.stdout.write(json.dumps(obj) + "\n")
        return 0
    from soc_tui.store.alerts import list_alerts

    out = sys.stdout
    out.write(f"incident {inc.id}  {inc.severity}  {inc.status}  {printable(inc.title)}\n")
    out.write(f"owner     {printable(inc.owner or '-')}\n")
    out.write(f"created   {us_to_iso(inc.created_at)}  updated {us_to_iso(inc.updated_at)}\n")
    alerts = list_alerts(conn, incident=inc.id, with_events=False)
    out.write(f"\nalerts ({len(alerts)})\n")
    for a in alerts:
        out.write(f"  {a.id:>6}  {a.severity:<9}{a.status:<13}{printable(a.rule_name)}"
                  f"  {printable(a.src_ip or '')}  {printable(a.user or '')}\n")
    if inc.pinned:
        out.write(f"\npinned events: {', '.join(map(str, inc.pinned))}\n")
    _write_notes(out, notes)
    out.write(f"\ntimeline ({len(timeline)})\n")
    for t in timeline:
        out.write(f"  {t['ts']}  {t['kind']:<13}{printable(t['text'])}\n")
    return 0


def cmd_notes(args: argparse.Namespace, config: Any, db: str) -> int:
    actor = analyst(args)

    def run(conn: Any) -> int:
        obj_type, obj_id = ("incident", args.incident) if getattr(args, "incident", None) else \
            ("alert", getattr(args, "alert", None))
        if args.notes_command == "list":
            notes = triage.notes_of(conn, obj_type, obj_id, history=args.history)
            if args.format == "json":
                for n in notes:
                    sys.stdout.write(json.dumps(_note_json(n)) + "\n")
            else:
                _write_notes(sys.stdout, notes)
            return 0
        body = _read_body(args)
        if args.notes_command == "add":
            nid = triage.add_note(conn, obj_type, obj_id, body, actor)
            print(f"note {nid} added to {obj_type} {obj_id}", file=sys.stderr)
            sys.stdout.write(f"{nid}\n")
        else:
            version = triage.edit_note(conn, args.note, body, actor)
            print(f"note {args.note} is now at version {version}", file=sys.stderr)
        return 0

    return _run(db, run)


def _read_body(args: argparse.Namespace) -> str:
    if args.text is not None:
        return args.text
    if args.file == "-":
        return sys.stdin.read()
    try:
        with open(args.file, encoding="utf-8", errors="replace") as fh:
            return fh.read()
    except OSError as exc:
        raise TriageError(f"cannot read {args.file}: {exc.strerror or exc}") from None


def _write_notes(out: Any, notes: list[triage.Note]) -> None:
    if not notes:
        return
    out.write(f"\nnotes ({len(notes)})\n")
    for n in notes:
        version = f" v{n.version}" if n.version > 1 else ""
        out.write(f"  #{n.note_id}{version}  {us_to_iso(n.created_at)}  {printable(n.author)}\n")
        for line in n.body.splitlines() or [""]:
            out.write(f"    {printable(line)}\n")


def _alert_json(a: Any) -> dict[str, Any]:
    return {
        "id": a.id, "status": a.status, "rule_name": a.rule_name, "rule_id": a.rule_id,
        "title": a.title, "severity": a.severity, "count": a.count,
        "first_seen": us_to_iso(a.first_seen), "last_seen": us_to_iso(a.last_seen),
        "host": a.host, "src_ip": a.src_ip, "user": a.user, "tags": list(a.tags),
        "assignee": a.assignee, "labels": list(a.labels), "incident_id": a.incident_id,
        "close_reason": a.close_reason, "event_ids": list(a.event_ids),
    }


def _note_json(n: triage.Note) -> dict[str, Any]:
    return {"note_id": n.note_id, "version": n.version, "object_type": n.object_type,
            "object_id": n.object_id, "author": n.author, "created_at": us_to_iso(n.created_at),
            "body": n.body}


def _audit_json(h: triage.AuditRow) -> dict[str, Any]:
    return {"id": h.id, "ts": us_to_iso(h.ts), "actor": h.actor, "action": h.action,
            "object_type": h.object_type, "object_id": h.object_id, "before": h.before,
            "after": h.after}


def _incident_json(inc: triage.Incident) -> dict[str, Any]:
    return {"id": inc.id, "title": inc.title, "severity": inc.severity, "status": inc.status,
            "owner": inc.owner, "created_at": us_to_iso(inc.created_at),
            "updated_at": us_to_iso(inc.updated_at), "alert_ids": inc.alert_ids,
            "pinned_event_ids": inc.pinned}


def _seal_arg(text: str | None) -> tuple[int, str] | None:
    if text is None:
        return None
    seq, sep, digest = text.partition(":")
    if not sep or not seq.isdigit() or not re.fullmatch(r"[0-9a-f]{64}", digest):
        raise TriageError(f"--seal takes SEQ:HASH (a number, a colon, 64 hex digits), got {text!r}")
    return int(seq), digest


def cmd_verify(args: argparse.Namespace, config: Any, db: str) -> int:
    from soc_tui.store.chain import verify

    seal = _seal_arg(args.seal)

    def run(conn: Any) -> int:
        report = verify(conn, seal=seal)
        for line in report.lines():
            sys.stdout.write(printable(line) + "\n")
        return 0 if report.ok else 1

    return _run(db, run)


def cmd_export(args: argparse.Namespace, config: Any, db: str) -> int:
    from soc_tui.report import export_incident
    from soc_tui.store.reader import StoreReader

    def run(conn: Any) -> int:
        reader = StoreReader(db, create=False)
        try:
            text = export_incident(conn, reader, args.id, args.format)
        finally:
            reader.close()
        if args.output:
            try:
                with open(args.output, "w", encoding="utf-8") as fh:
                    fh.write(text)
            except OSError as exc:
                raise TriageError(f"cannot write {args.output}: {exc.strerror or exc}") from None
            print(f"incident {args.id} written to {args.output}", file=sys.stderr)
        else:
            sys.stdout.write(text)
        return 0

    return _run(db, run)


def cmd_prune(args: argparse.Namespace, config: Any, db: str) -> int:
    from soc_tui.store.retention import prune_by_policy

    days = args.days if args.days is not None else config.retention.days
    max_mb = args.max_db_mb if args.max_db_mb is not None else config.retention.max_db_mb
    for name, value in (("--days", days), ("--max-db-mb", max_mb)):
        if value is not None and value <= 0:
            raise TriageError(f"{name} must be a positive whole number")
    if days is None and max_mb is None:
        raise TriageError("nothing to prune by: set retention in the config "
                          "(retention: {days: N, max_db_mb: M}) or give --days / --max-db-mb")
    actor = analyst(args)
    return _run(db, lambda conn: _print_line(prune_by_policy(conn, actor, days=days,
                                                             max_db_mb=max_mb).line()))


def _print_line(text: str) -> int:
    sys.stdout.write(text + "\n")
    return 0


COMMANDS = {"prune": cmd_prune, "suppress": cmd_suppress, "incidents": cmd_incidents, "notes": cmd_notes,
            "verify": cmd_verify, "export": cmd_export}
