"""The alert queue: filters, grouping, multi-select and every triage action; the alert detail.

Owns: `AlertsScreen` (a DataTable of alerts sorted by severity then time,
updated in place: the cells that changed, the alerts that came or went,
the cursor on the same alert (fill_table); filters by status, severity and rule;
grouping by rule, src_ip, user or host as one row per group that Enter
opens; space/`*` select for bulk actions) and `AlertDetailScreen`
(evidence, the events around the selected evidence line, notes, history).
Every triage action runs `soc_tui.store.triage` in a thread worker as the
analyst and reports its result (or the refusal) as a toast.
Must not: run SQL on the UI thread or render log text as markup.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any, Callable

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.widgets import DataTable, Static

from soc_tui.model import now_us
from soc_tui.store import triage
from soc_tui.store.alerts import StoredAlert
from soc_tui.text import printable
from soc_tui.ui.table import SocTable
from soc_tui.ui.modals import CloseModal, NoteModal, SuppressAnswer, SuppressModal, TextModal
from soc_tui.ui.screens.base import (KeptStylesScreen, KeysFooter, SocScreen, Writes, ago, cell,
                                     cursor_key, fill_table, grow_column, set_line,
                                     severity_text, status_text, ts_text)

SEV_RANK = {"critical": 4, "high": 3, "medium": 2, "low": 1, "informational": 0}
STATUS_FILTERS = ("open", "new", "acknowledged", "in_progress", "closed", "all")
SEVERITY_FILTERS = ("all", "critical", "high", "medium", "low")  # "at least"
GROUPS = ("none", "rule", "src_ip", "user", "host")
LIMIT = 2000  # alerts read per refresh, most severe and newest (grouping and select-all work on these)
EVIDENCE_ROWS = 200  # evidence lines in the detail (the newest; search has them all)
ROWS = 300  # alerts in the table: the most severe and newest; filters and groups reach the rest


@dataclass
class Filters:
    status: str = "open"
    severity: str = "all"
    rule: str | None = None
    group: str = "none"
    value: tuple[str, str] | None = None  # (field, value): opened from a group row

    def describe(self, total: int, selected: int, rows: int) -> Text:
        t = Text(no_wrap=True, overflow="ellipsis")
        t.append(f" {total}{'+' if total >= LIMIT else ''} alerts", style="bold")
        if rows < total:
            t.append(f" ({rows} shown)")
        t.append(f"  status:{self.status}")
        t.append(f"  sev:{self.severity}{'+' if self.severity not in ('all', 'critical') else ''}")
        if self.rule:
            t.append("  rule:" + printable(self.rule))
        if self.value:
            t.append(f"  {self.value[0]}:" + printable(self.value[1]))
        t.append(f"  group:{self.group}")
        if selected:
            t.append(f"  {selected} selected", style="bold reverse")
        return t


def group_key(a: StoredAlert, group: str) -> str:
    value = {"rule": a.rule_name, "src_ip": a.src_ip, "user": a.user, "host": a.host}[group]
    return value if value is not None else ""


class TriageActions(Writes):
    """The triage actions shared by the queue and the detail screen; the
    subclass says which alerts they apply to (`target_ids`) and what to
    reload afterwards (`after_change`)."""

    def target_ids(self) -> list[int]:
        raise NotImplementedError

    def target_alerts(self) -> list[StoredAlert]:
        raise NotImplementedError

    def after_change(self) -> None:
        raise NotImplementedError

    def _run_triage(self, label: str, call: Callable[[Any], Any]) -> None:
        self.write(label, call, self.after_change)  # type: ignore[attr-defined]

    def _ids_or_warn(self) -> list[int]:
        ids = self.target_ids()
        if not ids:
            self.notify("no alert here", severity="warning")  # type: ignore[attr-defined]
        return ids

    def action_ack(self) -> None:
        if ids := self._ids_or_warn():
            actor = self.app.ctx.analyst  # type: ignore[attr-defined]
            self._run_triage("acknowledged", lambda c: triage.set_status(c, ids, "acknowledged", actor))

    def action_start(self) -> None:
        if ids := self._ids_or_warn():
            actor = self.app.ctx.analyst  # type: ignore[attr-defined]
            self._run_triage("in progress", lambda c: triage.set_status(c, ids, "in_progress", actor))

    def action_close(self) -> None:
        ids = self._ids_or_warn()
        if not ids:
            return
        actor = self.app.ctx.analyst  # type: ignore[attr-defined]

        def done(reason: str | None) -> None:
            if reason:
                self._run_triage(f"closed ({reason})",
                                 lambda c: triage.set_status(c, ids, "closed", actor, reason))

        self.app.push_screen(CloseModal(len(ids)), done)  # type: ignore[attr-defined]

    def action_reopen(self) -> None:
        if ids := self._ids_or_warn():
            actor = self.app.ctx.analyst  # type: ignore[attr-defined]
            self._run_triage("reopened", lambda c: triage.reopen(c, ids, actor))

    def action_assign_me(self) -> None:
        if ids := self._ids_or_warn():
            actor = self.app.ctx.analyst  # type: ignore[attr-defined]
            self._run_triage(f"assigned to {actor}", lambda c: triage.assign(c, ids, actor, actor))

    def action_assign(self) -> None:
        ids = self._ids_or_warn()
        if not ids:
            return
        actor = self.app.ctx.analyst  # type: ignore[attr-defined]

        def done(name: str | None) -> None:
            if name is None:
                return
            who = name or None
            self._run_triage(f"assigned to {who}" if who else "unassigned",
                             lambda c: triage.assign(c, ids, who, actor))

        self.app.push_screen(TextModal("Assign to (empty: unassign)", actor, allow_empty=True),  # type: ignore[attr-defined]
                             done)

    def action_suppress(self) -> None:
        alerts = self.target_alerts()
        if not alerts:
            self.notify("no alert here", severity="warning")  # type: ignore[attr-defined]
            return
        a = alerts[0]
        actor = self.app.ctx.analyst  # type: ignore[attr-defined]
        now = now_us()  # an expiry is real time, whatever clock the screens show

        def done(ans: SuppressAnswer | None) -> None:
            if ans is None:
                return
            expires = now + ans.seconds * 1_000_000 if ans.seconds else None
            self._run_triage(
                "suppression added",
                lambda c: triage.add_suppression(c, actor, rule=ans.rule, fields=ans.fields,
                                                 reason=ans.reason, expires_at=expires))

        self.app.push_screen(  # type: ignore[attr-defined]
            SuppressModal(a.rule_name, {"src_ip": a.src_ip, "user": a.user, "host": a.host}), done)

    def action_to_incident(self) -> None:
        alerts = self.target_alerts()
        ids = [a.id for a in alerts]
        if not ids:
            self.notify("no alert here", severity="warning")  # type: ignore[attr-defined]
            return
        actor = self.app.ctx.analyst  # type: ignore[attr-defined]

        def done(choice: int | str) -> None:
            if isinstance(choice, str):
                self._run_triage(f"incident created: {choice}",
                                 lambda c: triage.create_incident(c, choice, actor, alert_ids=ids))
            else:
                self._run_triage(f"linked to incident #{choice}",
                                 lambda c: triage.link_alerts(c, choice, ids, actor))

        self.choose_incident(alerts[0].title, done)

    def action_note(self) -> None:
        ids = self._ids_or_warn()
        if not ids:
            return
        actor = self.app.ctx.analyst  # type: ignore[attr-defined]
        aid = ids[0]

        def done(text: str | None) -> None:
            if text:
                self._run_triage(f"note added to alert {aid}",
                                 lambda c: triage.add_note(c, "alert", aid, text, actor))

        self.app.push_screen(NoteModal(f"Note on alert {aid} (Markdown)"), done)  # type: ignore[attr-defined]


TRIAGE_BINDINGS = [
    Binding("a", "ack", "Ack"),
    Binding("s", "start", "Start"),
    Binding("c", "close", "Close"),
    Binding("o", "reopen", "Reopen", show=False),
    Binding("m", "assign_me", "Take", show=False),
    Binding("A", "assign", "Assign"),
    Binding("S", "suppress", "Suppress"),
    Binding("i", "to_incident", "Incident"),
    Binding("n", "note", "Note", show=False),
]


class AlertsScreen(TriageActions, SocScreen):
    MODE = "alerts"
    refresh_every = 2.0
    BINDINGS = [
        *TRIAGE_BINDINGS,
        Binding("space", "toggle_select", "Select", show=False),
        Binding("asterisk", "select_all", "Select all", show=False),
        Binding("escape", "clear", "Clear", show=False),
        Binding("f", "cycle_status", "Status"),
        Binding("v", "cycle_severity", "Severity", show=False),
        Binding("r", "filter_rule", "This rule", show=False),
        Binding("g", "cycle_group", "Group"),
        Binding("enter", "open", "Open", show=False),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.filters = Filters()
        self.alerts: list[StoredAlert] = []
        self.by_id: dict[int, StoredAlert] = {}
        self.selected: set[int] = set()
        self.groups: list[tuple[str, list[StoredAlert]]] = []
        self._order: list[str] = []
        self._shown_values: dict[int, tuple[Any, ...]] = {}
        # alert id -> (its values, its cells) as last shown: an alert that did
        # not change keeps its cells (building 300 rows of Text took ~15 ms)
        self._cells: dict[int, tuple[tuple[Any, ...], tuple[Any, ...]]] = {}
        self._known: dict[int, StoredAlert] = {}  # the alerts last read (load worker only)
        self._detail: AlertDetailScreen | None = None  # reused for every alert opened

    def compose(self) -> ComposeResult:
        yield from self.compose_top()
        yield Static("", id="alert-filters", classes="pane-title")
        table: DataTable[Any] = SocTable(id="alert-table", cursor_type="row", zebra_stripes=False)
        yield table
        yield from self.compose_bottom()

    def on_mount(self) -> None:
        super().on_mount()
        self.query_one(DataTable).focus()

    # -- data ---------------------------------------------------------------------

    def load(self) -> list[StoredAlert]:
        f = self.filters
        status = None if f.status == "all" else f.status
        alerts = self.ctx.reader.alert_queue(self._known, status=status, rule=f.rule, limit=LIMIT)
        if f.severity != "all":
            floor = SEV_RANK[f.severity]
            alerts = [a for a in alerts if SEV_RANK.get(a.severity, 0) >= floor]
        if f.value is not None:
            field_, value = f.value
            alerts = [a for a in alerts if group_key(a, field_) == value]
        return alerts

    def show(self, alerts: list[StoredAlert]) -> None:
        self.alerts = alerts
        self.by_id = {a.id: a for a in alerts}
        self.selected &= set(self.by_id)
        if self.filters.group != "none" and self.filters.value is None:
            self._show_groups()
        else:
            self._show_alerts()
        self._describe()

    def _describe(self) -> None:
        set_line(self.query_one("#alert-filters", Static),
                 self.filters.describe(len(self.alerts), len(self.selected), min(ROWS, len(self.alerts))))

    def _columns(self, table: DataTable[Any], names: tuple[str, ...]) -> None:
        if tuple(str(c.label) for c in table.columns.values()) != names:
            table.clear(columns=True)
            for name in names:
                table.add_column(name, key=name)

    def _show_alerts(self) -> None:
        """Only what changed reaches the table: the same alerts in the same
        order update the cells that differ; otherwise the rows are replaced."""
        table = self.query_one(DataTable)
        now = self.ctx.clock()
        names = (" ", "sev", "status", "rule", "hits", "last", "src_ip", "user", "host", "who", "#")
        self._columns(table, names)
        shown = self.alerts[:ROWS]
        values = {a.id: self._values(a, now) for a in shown}
        order = [str(a.id) for a in shown]
        with self.app.batch_update():
            if order == self._order and table.row_count == len(order):
                for a in shown:
                    old, new = self._shown_values.get(a.id), values[a.id]
                    if old == new:
                        continue
                    cells = self._cells_of(a, now, new)
                    for i, name in enumerate(names):
                        if old is None or old[i] != new[i]:
                            grow_column(table.columns[name], cells[i])
                            table.update_cell(str(a.id), name, cells[i])
            else:
                fill_table(table, [(str(a.id), self._cells_of(a, now, values[a.id])) for a in shown])
                self._order = order
        self._shown_values = values
        self._cells = {i: self._cells[i] for i in values if i in self._cells}

    def _cells_of(self, a: StoredAlert, now: int, values: tuple[Any, ...]) -> tuple[Any, ...]:
        known = self._cells.get(a.id)
        if known is not None and known[0] == values:
            return known[1]
        cells = self._row(a, now)
        self._cells[a.id] = (values, cells)
        return cells

    def _values(self, a: StoredAlert, now: int) -> tuple[Any, ...]:
        """What a row shows, as plain values (to compare with the last refresh)."""
        return (a.id in self.selected, a.severity, a.status, a.rule_name, a.count, ago(a.last_seen, now),
                a.src_ip, a.user, a.host, a.assignee, a.id)

    def _row(self, a: StoredAlert, now: int) -> tuple[Any, ...]:
        mark = Text("●", style="bold") if a.id in self.selected else Text(" ")
        return (mark, severity_text(a.severity), status_text(a.status), cell(a.rule_name, limit=40),
                Text(str(a.count), justify="right"), Text(ago(a.last_seen, now)),
                cell(a.src_ip), cell(a.user, limit=24), cell(a.host, limit=24),
                cell(a.assignee, limit=16), Text(str(a.id), style="dim"))

    def _show_groups(self) -> None:
        table = self.query_one(DataTable)
        groups: dict[str, list[StoredAlert]] = defaultdict(list)
        for a in self.alerts:
            groups[group_key(a, self.filters.group)].append(a)
        self.groups = sorted(groups.items(), key=lambda kv: (
            -max(SEV_RANK.get(a.severity, 0) for a in kv[1]), -max(a.last_seen for a in kv[1])))
        now = self.ctx.clock()
        names = (self.filters.group, "alerts", "top sev", "hits", "last", "new")
        self._columns(table, names)
        rows = []
        for key, items in self.groups:
            top = max(items, key=lambda a: SEV_RANK.get(a.severity, 0))
            rows.append(("group:" + key, (
                cell(key or "(none)", limit=60), Text(str(len(items)), justify="right"),
                severity_text(top.severity), Text(str(sum(a.count for a in items)), justify="right"),
                Text(ago(max(a.last_seen for a in items), now)),
                Text(str(sum(a.status == "new" for a in items)), justify="right"))))
        fill_table(table, rows)
        self._order = []

    def _cursor_key(self) -> str | None:
        return cursor_key(self.query_one(DataTable))

    # -- TriageActions ------------------------------------------------------------

    def cursor_alert(self) -> StoredAlert | None:
        key = self._cursor_key()
        if key is None or key.startswith("group:"):
            return None
        return self.by_id.get(int(key))

    def target_alerts(self) -> list[StoredAlert]:
        key = self._cursor_key()
        if key is not None and key.startswith("group:"):
            value = key.removeprefix("group:")
            return [a for a in self.alerts if group_key(a, self.filters.group) == value]
        if self.selected:
            return [self.by_id[i] for i in sorted(self.selected) if i in self.by_id]
        a = self.cursor_alert()
        return [a] if a else []

    def target_ids(self) -> list[int]:
        return [a.id for a in self.target_alerts()]

    def after_change(self) -> None:
        self.selected.clear()
        self.reload()

    # -- keys -----------------------------------------------------------------------

    def action_toggle_select(self) -> None:
        a = self.cursor_alert()
        if a is None:
            return
        self.selected ^= {a.id}
        table = self.query_one(DataTable)
        table.update_cell(str(a.id), " ", Text("●", style="bold") if a.id in self.selected else Text(" "))
        if table.cursor_row < table.row_count - 1:
            table.move_cursor(row=table.cursor_row + 1, animate=False)
        self._describe()

    def action_select_all(self) -> None:
        if self.filters.group != "none" and self.filters.value is None:
            return
        ids = {a.id for a in self.alerts}
        self.selected = set() if self.selected >= ids else ids
        self._order = []  # redraw the marks
        self._show_alerts()
        self._describe()

    def action_clear(self) -> None:
        if self.selected:
            self.selected.clear()
            self._order = []
            self._show_alerts()
        elif self.filters.value is not None or self.filters.rule:
            self.filters.value = None
            self.filters.rule = None
            self.reload()
        self._describe()

    def action_cycle_status(self) -> None:
        f = self.filters
        f.status = STATUS_FILTERS[(STATUS_FILTERS.index(f.status) + 1) % len(STATUS_FILTERS)]
        self.reload()

    def action_cycle_severity(self) -> None:
        f = self.filters
        f.severity = SEVERITY_FILTERS[(SEVERITY_FILTERS.index(f.severity) + 1) % len(SEVERITY_FILTERS)]
        self.reload()

    def action_filter_rule(self) -> None:
        a = self.cursor_alert()
        self.filters.rule = None if self.filters.rule or a is None else a.rule_name
        self.reload()

    def action_cycle_group(self) -> None:
        f = self.filters
        f.group = GROUPS[(GROUPS.index(f.group) + 1) % len(GROUPS)]
        f.value = None
        self._order = []
        self.reload()

    def action_open(self) -> None:
        key = self._cursor_key()
        if key is None:
            return
        if key.startswith("group:"):
            self.filters.value = (self.filters.group, key.removeprefix("group:"))
            self._order = []
            self.reload()
            return
        # One detail screen, installed so that closing it keeps it: building
        # a screen and styling its widgets again cost most of opening one.
        detail = self._detail
        if detail is None:
            detail = self._detail = AlertDetailScreen(int(key))
            self.app.install_screen(detail, name=f"alert-detail-{id(self)}")
        else:
            detail.show_alert(int(key))
        self.app.push_screen(detail)

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        event.stop()
        self.action_open()


# -- the detail -----------------------------------------------------------------------


@dataclass
class AlertDetail:
    alert: StoredAlert
    evidence: list[dict[str, Any]]
    notes: list[Any]
    history: list[Any]
    around: list[dict[str, Any]] = field(default_factory=list)


class AlertDetailScreen(TriageActions, KeptStylesScreen):
    """One alert: its fields, evidence lines, the events around the chosen
    evidence line, notes and history; the same triage keys as the queue."""

    BINDINGS = [
        Binding("escape", "back", "Back"),
        *TRIAGE_BINDINGS,
        Binding("x", "around", "Around"),
    ]
    DEFAULT_CSS = """
    AlertDetailScreen #alert-head { height: auto; max-height: 7; padding: 0 1; }
    AlertDetailScreen #evidence { height: 1fr; }
    AlertDetailScreen #alert-notes { height: auto; max-height: 8; padding: 0 1; }
    """

    def __init__(self, alert_id: int) -> None:
        super().__init__()
        self.alert_id = alert_id
        self.detail: AlertDetail | None = None

    @property
    def ctx(self) -> Any:
        return self.app.ctx  # type: ignore[attr-defined]

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Static("", id="alert-head")
            yield Static("evidence (enter/x: events around the line)", classes="pane-title",
                         id="evidence-title")
            table: DataTable[Any] = SocTable(id="evidence", cursor_type="row")
            yield table
            yield Static("", id="alert-notes")
        yield KeysFooter()

    def on_mount(self) -> None:
        table = self.query_one("#evidence", DataTable)
        table.add_column("line (as logged)", key="line")
        table.focus()

    def on_screen_resume(self) -> None:
        # Shown for an alert not read yet (first, or again for another one):
        # read it now. Back from a dialog, its write reloads (after_change).
        self.query_one("#evidence", DataTable).focus()
        if self.detail is None:
            self._hold()
            self._load()

    def show_alert(self, alert_id: int) -> None:
        """Point this screen, reused, at another alert: nothing of the last
        one stays on it while the new one loads."""
        self.alert_id = alert_id
        self.detail = None
        self.query_one("#alert-head", Static).update(Text(f"#{alert_id}", style="dim"))
        set_line(self.query_one("#evidence-title", Static), "evidence")
        self.query_one("#evidence", DataTable).clear()
        self.query_one("#alert-notes", Static).update("")

    def after_change(self) -> None:
        self._load()

    @work(thread=True, exclusive=True, group="load", exit_on_error=False)
    def _load(self) -> None:
        ctx = self.ctx
        found = ctx.reader.alerts(ids=[self.alert_id])
        if not found:
            self.app.call_from_thread(self.notify, f"alert {self.alert_id} is gone", severity="error")
            return
        a = found[0]
        evidence = ctx.reader.events_by_id(a.event_ids[-EVIDENCE_ROWS:])
        notes = ctx.reader_call(lambda c: triage.notes_of(c, "alert", a.id))
        history = ctx.reader_call(lambda c: triage.audit_of(c, "alert", a.id))
        self.app.call_from_thread(self._show, AlertDetail(a, evidence, notes, history))

    def _show(self, d: AlertDetail) -> None:
        self.detail = d
        a = d.alert
        head = Text()
        head.append(f"#{a.id} ", style="dim")
        head.append_text(severity_text(a.severity))
        head.append(" ")
        head.append_text(status_text(a.status))
        if a.close_reason:
            head.append(f" ({a.close_reason})")
        head.append("  " + printable(a.title), style="bold")
        head.append(f"\nrule {printable(a.rule_name)}  hits {a.count}  "
                    f"first {ts_text(a.first_seen)}  last {ts_text(a.last_seen)}")
        head.append(f"\nsrc_ip {printable(a.src_ip or '-')}  user {printable(a.user or '-')}  "
                    f"host {printable(a.host or '-')}  assignee {printable(a.assignee or '-')}"
                    f"  incident {a.incident_id or '-'}")
        if a.tags or a.labels:
            head.append("\ntags " + printable(" ".join(a.tags + a.labels)), style="dim")
        self.query_one("#alert-head", Static).update(head)
        self._fill(d.around or d.evidence, around=bool(d.around))
        notes = Text()
        if d.notes:
            for n in d.notes[-3:]:
                notes.append(f"{printable(n.author)} {ts_text(n.created_at)}"
                             + (f" v{n.version}" if n.version > 1 else "") + ": ", style="bold")
                notes.append(printable(n.body.replace("\n", " ⏎ ")[:300]) + "\n")
        else:
            notes.append("no notes (n: add one)\n", style="dim")
        if d.history:
            h = d.history[-1]
            notes.append(f"last change: {printable(h.actor)} {h.action} {ts_text(h.ts)}", style="dim")
        self.query_one("#alert-notes", Static).update(notes)
        self._release()

    def _fill(self, events: list[dict[str, Any]], *, around: bool) -> None:
        table = self.query_one("#evidence", DataTable)
        evidence_ids = set(self.detail.alert.event_ids) if self.detail else set()
        title = ("events around the evidence line (escape: back to the evidence)" if around
                 else f"evidence: {len(events)} event(s)"
                 + (f", the newest of {len(self.detail.alert.event_ids)}"
                    if self.detail and len(self.detail.alert.event_ids) > len(events) else "")
                 + " (x: events around the line)")
        set_line(self.query_one("#evidence-title", Static), title)
        fill_table(table, [(str(e["id"]), (cell(e.get("raw"), limit=2000,
                                                 style="bold" if around and e["id"] in evidence_ids else ""),))
                           for e in events])

    def target_ids(self) -> list[int]:
        return [self.alert_id]

    def target_alerts(self) -> list[StoredAlert]:
        return [self.detail.alert] if self.detail else []

    def action_back(self) -> None:
        if self.detail and self.detail.around:
            self.detail.around = []
            self._fill(self.detail.evidence, around=False)
            return
        self.app.pop_screen()

    def action_around(self) -> None:
        key = cursor_key(self.query_one("#evidence", DataTable))
        if key is not None and self.detail is not None:
            self._load_around(int(key))

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        event.stop()
        self.action_around()

    @work(thread=True, exclusive=True, group="around", exit_on_error=False)
    def _load_around(self, event_id: int) -> None:
        ev = self.ctx.reader.events_by_id([event_id])
        host = ev[0].get("host") if ev else None
        around = self.ctx.reader.events_around(event_id, 10, 10, host=host)

        def show() -> None:
            if self.detail is not None:
                self.detail.around = around
                self._fill(around, around=True)

        self.app.call_from_thread(show)
