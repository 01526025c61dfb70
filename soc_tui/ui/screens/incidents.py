"""Incidents: the list, and one incident with its alerts, merged timeline and notes.

Owns: `IncidentsScreen` (open or all incidents; create one) and
`IncidentDetailScreen` (linked alerts, the timeline of
`soc_tui.report.incident_report`, notes shown as inert text, new notes and
edits (a new version) in the Markdown editor, status and owner changes,
export to a Markdown file with the verify result). Writes go through
`soc_tui.store.triage` in thread workers as the analyst.
Must not: render notes or log text as markup (notes can quote log lines).
"""

from __future__ import annotations

import os
from typing import Any

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.widgets import DataTable, Static

from soc_tui.store import triage
from soc_tui.store.triage import INCIDENT_STATUSES
from soc_tui.text import printable
from soc_tui.ui.table import SocTable
from soc_tui.ui.modals import NoteModal, TextModal
from soc_tui.ui.screens.base import (KeptStylesScreen, KeysFooter, SocScreen, Writes, ago, cell,
                                     cursor_key, fill_table, set_line, severity_text, status_text,
                                     ts_text)


class IncidentsScreen(Writes, SocScreen):
    MODE = "incidents"
    refresh_every = 3.0
    BINDINGS = [
        Binding("enter", "open", "Open", show=False),
        Binding("n", "new", "New incident"),
        Binding("f", "toggle_closed", "Show closed"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.show_closed = False
        self.incidents: list[Any] = []

    def compose(self) -> ComposeResult:
        yield from self.compose_top()
        yield Static("", id="incident-filter", classes="pane-title")
        table: DataTable[Any] = SocTable(id="incident-table", cursor_type="row")
        yield table
        yield from self.compose_bottom()

    def on_mount(self) -> None:
        super().on_mount()
        table = self.query_one(DataTable)
        for name in ("#", "sev", "status", "title", "owner", "alerts", "updated"):
            table.add_column(name, key=name)
        table.focus()

    def load(self) -> list[Any]:
        found = self.ctx.reader_call(lambda c: triage.list_incidents(c))
        return found if self.show_closed else [i for i in found if i.status != "closed"]

    def show(self, incidents: list[Any]) -> None:
        self.incidents = incidents
        now = self.ctx.clock()
        fill_table(self.query_one(DataTable), [
            (str(i.id), (Text(str(i.id), style="dim"), severity_text(i.severity), status_text(i.status),
                         cell(i.title, limit=80), cell(i.owner, limit=16),
                         Text(str(len(i.alert_ids)), justify="right"), Text(ago(i.updated_at, now))))
            for i in incidents])
        label = "all incidents" if self.show_closed else "open incidents (f: show closed too)"
        set_line(self.query_one("#incident-filter", Static), f" {len(incidents)} {label}")

    def action_toggle_closed(self) -> None:
        self.show_closed = not self.show_closed
        self.reload()

    def action_new(self) -> None:
        actor = self.ctx.analyst

        def done(title: str | None) -> None:
            if title:
                self.write(f"incident created: {title}",
                            lambda c: triage.create_incident(c, title, actor), self.reload)

        self.app.push_screen(TextModal("Title of the new incident"), done)

    def action_open(self) -> None:
        key = cursor_key(self.query_one(DataTable))
        if key is not None:
            self.app.push_screen(IncidentDetailScreen(int(key)))

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        event.stop()
        self.action_open()


class IncidentDetailScreen(Writes, KeptStylesScreen):
    BINDINGS = [
        Binding("escape", "back", "Back"),
        Binding("n", "note", "Note"),
        Binding("e", "edit_note", "Edit note"),
        Binding("s", "next_status", "Status"),
        Binding("o", "owner", "Owner"),
        Binding("t", "rename", "Title", show=False),
        Binding("x", "export", "Export"),
    ]
    DEFAULT_CSS = """
    IncidentDetailScreen #incident-head { height: auto; max-height: 4; padding: 0 1; }
    IncidentDetailScreen #timeline { height: 1fr; }
    IncidentDetailScreen #incident-notes { height: auto; max-height: 8; padding: 0 1; }
    """

    def __init__(self, incident_id: int) -> None:
        super().__init__()
        self.incident_id = incident_id
        self.report: dict[str, Any] | None = None
        self.notes: list[Any] = []

    @property
    def ctx(self) -> Any:
        return self.app.ctx  # type: ignore[attr-defined]

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Static("", id="incident-head")
            alerts: DataTable[Any] = SocTable(id="incident-alerts", cursor_type="row")
            yield alerts
            yield Static("timeline", classes="pane-title")
            timeline: DataTable[Any] = SocTable(id="timeline", cursor_type="row")
            yield timeline
            yield Static("", id="incident-notes")
        yield KeysFooter()

    def on_mount(self) -> None:
        alerts = self.query_one("#incident-alerts", DataTable)
        # Fixed widths: a table that sizes its own height does not redraw its header
        # when auto-sized columns grow.
        for name, width in (("#", 4), ("sev", 8), ("status", 12), ("rule", 30), ("hits", 5),
                            ("src_ip", 15), ("user", 12)):
            alerts.add_column(name, key=name, width=width)
        timeline = self.query_one("#timeline", DataTable)
        for name in ("time", "what", "detail"):
            timeline.add_column(name, key=name)
        timeline.focus()
        self.reload()

    def reload(self) -> None:
        self._load()

    @work(thread=True, exclusive=True, group="load", exit_on_error=False)
    def _load(self) -> None:
        from soc_tui.report import incident_report

        ctx = self.ctx
        try:
            report = ctx.reader_call(lambda c: incident_report(c, ctx.search_reader, self.incident_id))
            notes = ctx.reader_call(lambda c: triage.notes_of(c, "incident", self.incident_id))
        except triage.TriageError as exc:
            self.app.call_from_thread(self.notify, printable(str(exc)), severity="error", markup=False)
            return
        self.app.call_from_thread(self._show, report, notes)

    def _show(self, report: dict[str, Any], notes: list[Any]) -> None:
        self.report, self.notes = report, notes
        inc = report["incident"]
        head = Text()
        head.append(f"#{inc['id']} ", style="dim")
        head.append_text(severity_text(inc["severity"]))
        head.append(" ")
        head.append_text(status_text(inc["status"]))
        head.append("  " + printable(inc["title"]), style="bold")
        head.append(f"\nowner {printable(inc['owner'] or '-')}  created {inc['created_at']}"
                    f"  updated {inc['updated_at']}  {len(report['alerts'])} alert(s),"
                    f" {len(report['events'])} event(s)")
        self.query_one("#incident-head", Static).update(head)
        fill_table(self.query_one("#incident-alerts", DataTable), [
            (str(a["id"]), (Text(str(a["id"]), style="dim"), severity_text(a["severity"]),
                            status_text(a["status"]), cell(a["rule_name"], limit=40),
                            Text(str(a["count"]), justify="right"), cell(a["src_ip"]),
                            cell(a["user"], limit=20)))
            for a in report["alerts"]])
        style = {"alert": "bold", "note": "cyan", "pinned event": "yellow"}
        fill_table(self.query_one("#timeline", DataTable), [
            (str(n), (Text(t["ts"].replace("T", " ")[:19]), Text(t["kind"], style=style.get(t["kind"], "")),
                      cell(t["text"], limit=2000)))
            for n, t in enumerate(report["timeline"])])
        text = Text()
        if notes:
            for note in notes[-4:]:
                text.append(f"#{note.note_id} {printable(note.author)} {ts_text(note.created_at)}"
                            + (f" v{note.version}" if note.version > 1 else "") + ": ", style="bold")
                text.append(printable(note.body.replace("\n", " ⏎ ")[:300]) + "\n")
        else:
            text.append("no notes yet (n: add one)", style="dim")
        self.query_one("#incident-notes", Static).update(text)

    # -- keys -------------------------------------------------------------------------

    def action_back(self) -> None:
        self.app.pop_screen()

    def action_note(self) -> None:
        actor, iid = self.ctx.analyst, self.incident_id

        def done(text: str | None) -> None:
            if text:
                self.write("note added", lambda c: triage.add_note(c, "incident", iid, text, actor),
                            self.reload)

        self.app.push_screen(NoteModal(f"Note on incident {iid} (Markdown)"), done)

    def action_edit_note(self) -> None:
        if not self.notes:
            self.notify("no note to edit (n adds one)", severity="warning")
            return
        note = self.notes[-1]
        actor = self.ctx.analyst

        def done(text: str | None) -> None:
            if text and text != note.body:
                self.write(f"note #{note.note_id}: new version",
                            lambda c: triage.edit_note(c, note.note_id, text, actor), self.reload)

        self.app.push_screen(NoteModal(f"Edit note #{note.note_id} (a new version; the old one stays)",
                                       note.body), done)

    def action_next_status(self) -> None:
        if self.report is None:
            return
        current = self.report["incident"]["status"]
        nxt = INCIDENT_STATUSES[(INCIDENT_STATUSES.index(current) + 1) % len(INCIDENT_STATUSES)]
        actor, iid = self.ctx.analyst, self.incident_id
        self.write(f"incident {iid} is {nxt}",
                    lambda c: triage.set_incident_status(c, iid, nxt, actor), self.reload)

    def action_owner(self) -> None:
        actor, iid = self.ctx.analyst, self.incident_id
        current = (self.report or {}).get("incident", {}).get("owner") or actor

        def done(name: str | None) -> None:
            if name is not None:
                self.write(f"owner: {name or 'nobody'}",
                            lambda c: triage.update_incident(c, iid, actor, owner=name), self.reload)

        self.app.push_screen(TextModal("Owner (empty: nobody)", current, allow_empty=True), done)

    def action_rename(self) -> None:
        actor, iid = self.ctx.analyst, self.incident_id
        current = (self.report or {}).get("incident", {}).get("title") or ""

        def done(title: str | None) -> None:
            if title:
                self.write("title changed",
                            lambda c: triage.update_incident(c, iid, actor, title=title), self.reload)

        self.app.push_screen(TextModal("Title", current), done)

    def action_export(self) -> None:
        default = os.path.abspath(f"incident-{self.incident_id}.md")

        def done(path: str | None) -> None:
            if path:
                self.notify("exporting (verifying the database first)…", markup=False)
                self._export(path)

        self.app.push_screen(TextModal("Export as Markdown to", default), done)

    @work(thread=True, group="export", exit_on_error=False)
    def _export(self, path: str) -> None:
        from soc_tui.report import export_incident

        ctx = self.ctx
        try:
            text = ctx.reader_call(lambda c: export_incident(c, ctx.search_reader, self.incident_id))
            with open(os.path.expanduser(path), "w", encoding="utf-8") as fh:
                fh.write(text)
        except Exception as exc:  # noqa: BLE001 - one line for the analyst
            self.app.call_from_thread(self.notify, printable(f"export failed: {exc}"),
                                      severity="error", markup=False)
            return
        self.app.call_from_thread(self.notify, printable(f"exported to {path}"), markup=False)
