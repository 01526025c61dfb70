"""The dialogs of triage: close reason, assignee, suppression, incident choice, note editor.

Owns: one ModalScreen per question, each returning a plain value through
`dismiss` (None when cancelled with escape). Labels built from log-derived
values (an address, a user name) are `rich.text.Text`, never markup.
Must not: write to the database (the screen that asked does, with the answer).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import (Button, Checkbox, Input, Label, OptionList, RadioButton, RadioSet,
                             Static, TextArea)
from textual.widgets.option_list import Option

from soc_tui.store.triage import CLOSE_REASONS
from soc_tui.text import printable

EXPIRIES = (("1 hour", 3600), ("24 hours", 86400), ("7 days", 7 * 86400), ("30 days", 30 * 86400),
            ("until removed", 0))


class _Modal(ModalScreen[Any]):
    BINDINGS = [Binding("escape", "cancel", "Cancel", show=True)]

    def action_cancel(self) -> None:
        self.dismiss(None)


class CloseModal(_Modal):
    """Why the alerts are closed: one of CLOSE_REASONS."""

    BINDINGS = [*_Modal.BINDINGS, Binding("ctrl+s", "ok", "Close alerts", show=True)]

    def __init__(self, count: int) -> None:
        super().__init__()
        self.count = count

    def compose(self) -> ComposeResult:
        with Vertical(classes="modal"):
            yield Label(f"Close {self.count} alert(s): why?", classes="pane-title")
            with RadioSet(id="reason"):
                for i, r in enumerate(CLOSE_REASONS):
                    yield RadioButton(r.replace("_", " "), value=i == 0, name=r)
            with Horizontal(classes="buttons"):
                yield Button("Close alerts", variant="primary", id="ok")
                yield Button("Cancel", id="cancel")

    def on_mount(self) -> None:
        self.query_one(RadioSet).focus()

    def action_ok(self) -> None:
        rs = self.query_one(RadioSet)
        pressed = rs.pressed_button
        self.dismiss(pressed.name if pressed is not None else CLOSE_REASONS[0])

    @on(Button.Pressed)
    def _button(self, event: Button.Pressed) -> None:
        self.action_ok() if event.button.id == "ok" else self.dismiss(None)

    def on_radio_set_changed(self, event: RadioSet.Changed) -> None:
        event.stop()


class TextModal(_Modal):
    """One line of text (an assignee, a title, a tag); returns the stripped text."""

    def __init__(self, question: str, value: str = "", *, placeholder: str = "",
                 allow_empty: bool = False) -> None:
        super().__init__()
        self.question, self.value, self.placeholder = question, value, placeholder
        self.allow_empty = allow_empty

    def compose(self) -> ComposeResult:
        with Vertical(classes="modal"):
            yield Label(Text(self.question), classes="pane-title")
            yield Input(self.value, placeholder=self.placeholder, id="answer")
            yield Static("enter: OK   escape: cancel", classes="hint")

    @on(Input.Submitted)
    def _submit(self, event: Input.Submitted) -> None:
        text = event.value.strip()
        if text or self.allow_empty:
            self.dismiss(text)
        else:
            self.notify("enter a value (escape cancels)", severity="warning")


@dataclass
class SuppressAnswer:
    rule: str | None
    fields: dict[str, str]
    seconds: int  # 0: until removed
    reason: str


class SuppressModal(_Modal):
    """Which hits to hold back (the rule and/or field values of the alert), for how long, why."""

    BINDINGS = [*_Modal.BINDINGS, Binding("ctrl+s", "ok", "Suppress", show=True)]

    def __init__(self, rule: str, fields: dict[str, str | None]) -> None:
        super().__init__()
        self.rule = rule
        self.fields = {k: v for k, v in fields.items() if v}

    def compose(self) -> ComposeResult:
        with Vertical(classes="modal"):
            yield Label("Suppress matching hits (they are counted, not raised)", classes="pane-title")
            yield Checkbox(Text(f"rule = {printable(self.rule)}"), True, id="f-rule")
            for k, v in self.fields.items():
                yield Checkbox(Text(f"{k} = {printable(v or '')}"), k == "src_ip", id=f"f-{k}")
            with RadioSet(id="expiry"):
                for i, (label, _s) in enumerate(EXPIRIES):
                    yield RadioButton(label, value=i == 1)
            yield Input(placeholder="reason (required), e.g. authorised scanner", id="reason")
            with Horizontal(classes="buttons"):
                yield Button("Suppress", variant="warning", id="ok")
                yield Button("Cancel", id="cancel")

    def on_mount(self) -> None:
        self.query_one("#reason", Input).focus()

    def action_ok(self) -> None:
        reason = self.query_one("#reason", Input).value.strip()
        if not reason:
            self.notify("a suppression needs a reason", severity="warning")
            self.query_one("#reason", Input).focus()
            return
        rule = self.rule if self.query_one("#f-rule", Checkbox).value else None
        fields = {k: str(v) for k, v in self.fields.items()
                  if self.query_one(f"#f-{k}", Checkbox).value}
        if rule is None and not fields:
            self.notify("choose the rule or at least one field", severity="warning")
            return
        idx = self.query_one("#expiry", RadioSet).pressed_index
        seconds = EXPIRIES[idx if idx >= 0 else 1][1]
        self.dismiss(SuppressAnswer(rule, fields, seconds, reason))

    @on(Input.Submitted)
    def _submitted(self) -> None:
        self.action_ok()

    @on(Button.Pressed)
    def _button(self, event: Button.Pressed) -> None:
        self.action_ok() if event.button.id == "ok" else self.dismiss(None)


class IncidentModal(_Modal):
    """Add to an incident: one of the open ones, or a new one (returns an
    incident id, or the title of a new incident as a str)."""

    def __init__(self, incidents: list[Any], default_title: str = "") -> None:
        super().__init__()
        self.incidents = incidents
        self.default_title = default_title

    def compose(self) -> ComposeResult:
        with Vertical(classes="modal"):
            yield Label("Add to incident", classes="pane-title")
            options = [Option(Text("+ new incident…", style="bold"), id="new")]
            options += [Option(Text(f"#{i.id} [{i.status}] {printable(i.title)}"), id=str(i.id))
                        for i in self.incidents]
            yield OptionList(*options, id="choices")
            yield Input(self.default_title, placeholder="title of the new incident", id="title")

    def on_mount(self) -> None:
        self.query_one(OptionList).focus()

    @on(OptionList.OptionSelected)
    def _chosen(self, event: OptionList.OptionSelected) -> None:
        if event.option.id == "new":
            self.query_one("#title", Input).focus()
        else:
            self.dismiss(int(event.option.id or 0))

    @on(Input.Submitted)
    def _titled(self, event: Input.Submitted) -> None:
        title = event.value.strip()
        if title:
            self.dismiss(title)
        else:
            self.notify("a new incident needs a title", severity="warning")


class NoteModal(_Modal):
    """Write a note in Markdown (a new version when editing); ctrl+s saves."""

    BINDINGS = [*_Modal.BINDINGS, Binding("ctrl+s", "save", "Save note", show=True, priority=True)]
    DEFAULT_CSS = """
    NoteModal TextArea { height: 12; }
    """

    def __init__(self, title: str, body: str = "") -> None:
        super().__init__()
        self.title_text, self.body = title, body

    def compose(self) -> ComposeResult:
        with Vertical(classes="modal"):
            yield Label(Text(self.title_text), classes="pane-title")
            yield TextArea(self.body, language="markdown" if _has_markdown() else None, id="body",
                           soft_wrap=True, show_line_numbers=False)
            yield Static("ctrl+s: save   escape: cancel   (notes are append-only: an edit is a new version)",
                         classes="hint")

    def on_mount(self) -> None:
        self.query_one(TextArea).focus()

    def action_save(self) -> None:
        text = self.query_one(TextArea).text
        if not text.strip():
            self.notify("the note is empty", severity="warning")
            return
        self.dismiss(text)


def _has_markdown() -> bool:
    import importlib.util

    return importlib.util.find_spec("tree_sitter_markdown") is not None
