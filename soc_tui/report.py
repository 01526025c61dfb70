"""Incident reports: the merged timeline, and the export as Markdown or JSON.

Owns: `incident_report` (everything known about one incident, gathered
through `soc_tui.store.triage` and the StoreReader: incident, alerts,
evidence and pinned events, notes with their versions, the audit history
and the merged timeline), `to_markdown` and `to_json`. Log text in a
Markdown report is hostile: control characters are escaped (`printable`)
and each evidence line sits in a code span or fence longer than any run of
backticks it holds, so nothing in a log line can become Markdown, HTML or a
link. Must not: write SQL or import Textual.
"""

from __future__ import annotations

import json
import re
from typing import Any

from soc_tui.model import us_to_iso
from soc_tui.store import triage
from soc_tui.store.alerts import list_alerts
from soc_tui.text import printable


def incident_report(conn: Any, reader: Any, incident_id: int,
                    verify_lines: list[str] | None = None) -> dict[str, Any]:
    """Everything about one incident, as plain data (what `to_json` writes)."""
    inc = triage.get_incident(conn, incident_id)
    alerts = list_alerts(conn, incident=incident_id)
    evidence_ids = sorted({i for a in alerts for i in a.event_ids} | set(inc.pinned))
    events = {e["id"]: e for e in reader.events_by_id(evidence_ids)}
    notes = triage.notes_of(conn, "incident", incident_id, history=True)
    for a in alerts:
        notes += triage.notes_of(conn, "alert", a.id, history=True)
    history = triage.audit_of(conn, "incident", incident_id)
    for a in alerts:
        history += triage.audit_of(conn, "alert", a.id)

    timeline: list[dict[str, Any]] = []
    for a in alerts:
        timeline.append({"ts": a.first_seen, "kind": "alert",
                         "text": f"alert {a.id} {a.severity} {a.rule_name}: {a.title}"
                                 + (f" ({a.count} hits until {us_to_iso(a.last_seen)})" if a.count > 1 else "")})
    pinned = set(inc.pinned)
    for i, e in events.items():
        timeline.append({"ts": e["ts"], "kind": "pinned event" if i in pinned else "evidence",
                         "event_id": i, "text": e["raw"]})
    for n in notes:
        label = f"note #{n.note_id}" + (f" v{n.version}" if n.version > 1 else "")
        timeline.append({"ts": n.created_at, "kind": "note",
                         "text": f"{label} on {n.object_type} {n.object_id} by {n.author}"})
    for h in history:
        if h.action in ("note", "edit_note"):
            continue  # the note itself is on the timeline
        timeline.append({"ts": h.ts, "kind": h.action,
                         "text": f"{h.actor}: {h.action} {h.object_type} {h.object_id}"
                                 f" {_change(h.before, h.after)}".rstrip()})
    timeline.sort(key=lambda t: (t["ts"], t["kind"]))
    return {
        "incident": {"id": inc.id, "title": inc.title, "severity": inc.severity,
                     "status": inc.status, "owner": inc.owner,
                     "created_at": us_to_iso(inc.created_at), "updated_at": us_to_iso(inc.updated_at)},
        "alerts": [{"id": a.id, "rule_name": a.rule_name, "rule_id": a.rule_id, "title": a.title,
                    "severity": a.severity, "status": a.status, "close_reason": a.close_reason,
                    "assignee": a.assignee, "count": a.count, "first_seen": us_to_iso(a.first_seen),
                    "last_seen": us_to_iso(a.last_seen), "host": a.host, "src_ip": a.src_ip,
                    "user": a.user, "tags": a.tags, "labels": a.labels, "event_ids": a.event_ids}
                   for a in alerts],
        "events": [{"id": i, "ts": us_to_iso(e["ts"]), "host": e.get("host"), "app": e.get("app"),
                    "pinned": i in pinned, "raw": e["raw"]} for i, e in sorted(events.items())],
        "notes": [{"note_id": n.note_id, "version": n.version, "object_type": n.object_type,
                   "object_id": n.object_id, "author": n.author,
                   "created_at": us_to_iso(n.created_at), "body": n.body} for n in notes],
        "history": [{"id": h.id, "ts": us_to_iso(h.ts), "actor": h.actor, "action": h.action,
                     "object_type": h.object_type, "object_id": h.object_id,
                     "before": h.before, "after": h.after} for h in sorted(history, key=lambda h: h.id)],
        "timeline": [{**t, "ts": us_to_iso(t["ts"])} for t in timeline],
        "verify": verify_lines or [],
    }


def _change(before: Any, after: Any) -> str:
    if isinstance(before, dict) and isinstance(after, dict):
        keys = [k for k in after if not k.endswith("_at")]
        return ", ".join(f"{k}: {before.get(k)} -> {after[k]}" for k in keys)
    if isinstance(after, dict):
        return ", ".join(f"{k}={v}" for k, v in after.items())
    return ""


def to_json(report: dict[str, Any]) -> str:
    return json.dumps(report, indent=2, ensure_ascii=False) + "\n"


_TICKS = re.compile(r"`+")


def _code(text: str) -> str:
    """Inline code that shows `text` verbatim (escaped control characters)."""
    text = printable(text)
    longest = max((len(m) for m in _TICKS.findall(text)), default=0)
    fence = "`" * (longest + 1)
    pad = " " if text.startswith("`") or text.endswith("`") or not text else ""
    return f"{fence}{pad}{text}{pad}{fence}"


def _fenced(lines: list[str]) -> str:
    body = "\n".join(printable(line) for line in lines)
    longest = max((len(m) for m in _TICKS.findall(body)), default=0)
    fence = "`" * max(3, longest + 1)
    return f"{fence}text\n{body}\n{fence}"


def _plain(text: Any) -> str:
    """A short value of ours or an analyst's in running text: escaped so it
    cannot open Markdown or HTML constructs."""
    s = printable("" if text is None else str(text))
    return re.sub(r"([\\`*_{}\[\]()<>#+!|~-])", r"\\\1", s)


def to_markdown(report: dict[str, Any]) -> str:
    inc = report["incident"]
    out = [f"# Incident {inc['id']}: {_plain(inc['title'])}", ""]
    out += [f"- **Severity:** {inc['severity']}", f"- **Status:** {inc['status']}",
            f"- **Owner:** {_plain(inc['owner'] or '-')}",
            f"- **Created:** {inc['created_at']}", f"- **Updated:** {inc['updated_at']}",
            f"- **Alerts:** {len(report['alerts'])}, evidence events: {len(report['events'])}", ""]
    out += ["## Timeline", "", "| time (UTC) | what | detail |", "|---|---|---|"]
    for t in report["timeline"]:
        detail = _code(t["text"]) if t["kind"] in ("evidence", "pinned event") else _plain(t["text"])
        out.append(f"| {t['ts']} | {_plain(t['kind'])} | {detail.replace('|', chr(92) + '|')} |")
    out += ["", "## Alerts", ""]
    for a in report["alerts"]:
        out.append(f"### Alert {a['id']}: {_plain(a['rule_name'])} ({a['severity']}, {a['status']}"
                   + (f", {a['close_reason']}" if a["close_reason"] else "") + ")")
        out.append("")
        out.append(f"{_plain(a['title'])}. {a['count']} hit(s) from {a['first_seen']} to {a['last_seen']}."
                   f" host {_code(a['host'] or '-')}, src_ip {_code(a['src_ip'] or '-')},"
                   f" user {_code(a['user'] or '-')}, assignee {_plain(a['assignee'] or '-')}.")
        if a["tags"] or a["labels"]:
            out.append(f"Tags: {', '.join(_code(t) for t in [*a['tags'], *a['labels']])}")
        out.append("")
        events = {e["id"]: e for e in report["events"]}
        lines = [f"{i} {events[i]['ts']} {events[i]['raw']}" for i in a["event_ids"] if i in events]
        if lines:
            out += ["Evidence:", "", _fenced(lines), ""]
    pinned = [e for e in report["events"] if e["pinned"]]
    if pinned:
        out += ["## Pinned events", "", _fenced([f"{e['id']} {e['ts']} {e['raw']}" for e in pinned]), ""]
    out += ["## Notes", ""]
    if not report["notes"]:
        out += ["(none)", ""]
    for n in report["notes"]:
        version = f" (version {n['version']})" if n["version"] > 1 else ""
        out.append(f"### Note #{n['note_id']}{version} on {n['object_type']} {n['object_id']},"
                   f" by {_plain(n['author'])}, {n['created_at']}")
        out += ["", _quote(n["body"]), ""]
    out += ["## Integrity", ""]
    out += [_fenced(report["verify"]) if report["verify"] else "(not verified)", ""]
    return "\n".join(out)


def _quote(body: str) -> str:
    """A note's Markdown, as a block quote (analysts write Markdown; control
    characters are still escaped, raw HTML is shown, not rendered)."""
    lines = body.replace("\r\n", "\n").split("\n")
    return "\n".join("> " + printable(line).replace("<", "&lt;") for line in lines)


def export_incident(conn: Any, reader: Any, incident_id: int, fmt: str = "md") -> str:
    """The export of one incident (`md` or `json`), with the result of
    `verify` (run first, on `conn`) and its seal in it."""
    from soc_tui.store.chain import verify

    report = incident_report(conn, reader, incident_id, verify(conn).lines())
    return to_json(report) if fmt == "json" else to_markdown(report)
