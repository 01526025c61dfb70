"""Training: the scenario's questions, answered while investigating the other screens.

Owns: `TrainingScreen` (key 7 in `soc-tui demo --train`): the questions
with their state, the selected one's text (and choices), an answer box
checked by `soc_tui.training.Quiz`, hints on request (counted) and the
score, with a closing line once every question is answered.
Must not: touch the database.
"""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.widgets import DataTable, Input, Static

from soc_tui.text import printable
from soc_tui.ui.table import SocTable
from soc_tui.ui.screens.base import SocScreen, cursor_key, fill_table


class TrainingScreen(SocScreen):
    MODE = "training"
    refresh_every = 0
    BINDINGS = [
        Binding("f4", "hint", "Hint"),
        Binding("h", "hint", "Hint", show=False),
        Binding("a", "focus_answer", "Answer", show=False),
    ]
    DEFAULT_CSS = """
    TrainingScreen #quiz-table { height: auto; max-height: 10; }
    TrainingScreen #question { height: auto; min-height: 3; padding: 0 1; }
    TrainingScreen #feedback { height: auto; padding: 0 1; }
    TrainingScreen #answer { margin: 0 1; }
    """

    def compose(self) -> ComposeResult:
        yield from self.compose_top()
        yield Static("", id="score", classes="pane-title")
        table: DataTable[Any] = SocTable(id="quiz-table", cursor_type="row")
        yield table
        yield Static("", id="question")
        yield Input(placeholder="your answer (enter to check; F4: hint)", id="answer")
        yield Static("", id="feedback")
        yield from self.compose_bottom()

    _shown: str | None = None  # the question the feedback is about

    @property
    def quiz(self) -> Any:
        return self.ctx.quiz

    def on_mount(self) -> None:
        super().on_mount()
        table = self.query_one(DataTable)
        table.add_column("", key="state", width=2)
        table.add_column("question", key="text")
        table.add_column("hints", key="hints", width=5)
        self._refresh_all()
        table.focus()

    def _refresh_all(self) -> None:
        quiz = self.quiz
        fill_table(self.query_one(DataTable), [
            (q.id, (Text("✓", style="bold green") if q.correct else
                    Text("✗", style="red") if q.tries else Text("·", style="dim"),
                    Text(printable(q.text), no_wrap=True, overflow="ellipsis"),
                    Text(str(q.hints) if q.hints else "", justify="right")))
            for q in quiz.questions])
        right, total, hints = quiz.score()
        line = Text(f" training: {right}/{total} answered", no_wrap=True)
        if hints:
            line.append(f", {hints} hint(s)")
        if quiz.finished:
            line.append(f"   all done: {quiz.summary()}", style="bold green")
        self.query_one("#score", Static).update(line)
        self._show_question()

    def current(self) -> Any:
        key = cursor_key(self.query_one(DataTable))
        return next((q for q in self.quiz.questions if q.id == key), None)

    def _show_question(self) -> None:
        q = self.current()
        t = Text()
        if q is not None:
            t.append(printable(q.text), style="bold")
            for n, choice in enumerate(q.choices, 1):
                t.append(f"\n  {n}. {printable(choice)}")
            if q.kind == "time":
                t.append("\n  (a time as HH:MM, UTC, as the screens show it)", style="dim")
            if q.correct:
                t.append("\n  answered ✓", style="green")
        self.query_one("#question", Static).update(t)

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        q = self.current()
        if q is not None and q.id != self._shown:  # another question: the old feedback goes
            self._shown = q.id
            self.query_one("#feedback", Static).update("")
        self._show_question()

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        event.stop()
        self.action_focus_answer()

    def action_focus_answer(self) -> None:
        self.query_one("#answer", Input).focus()

    @on(Input.Submitted, "#answer")
    def _answered(self, event: Input.Submitted) -> None:
        q = self.current()
        if q is None:
            return
        verdict = self.quiz.answer(q.id, event.value)
        feedback = self.query_one("#feedback", Static)
        feedback.update(Text(verdict.message, style="bold green" if verdict.correct else "bold red"))
        if verdict.correct:
            event.input.value = ""
            table = self.query_one(DataTable)
            nxt = next((i for i, x in enumerate(self.quiz.questions) if not x.correct), None)
            self._refresh_all()
            if nxt is not None:  # on to the next open question; the verdict stays in view
                self._shown = self.quiz.questions[nxt].id
                table.move_cursor(row=nxt, animate=False)
                self._show_question()
            if self.quiz.finished:
                self.notify(self.quiz.summary(), title="Training complete", timeout=10, markup=False)
        else:
            self._refresh_all()

    def action_hint(self) -> None:
        q = self.current()
        if q is None:
            return
        text = self.quiz.hint(q.id)
        self.query_one("#feedback", Static).update(Text("hint: " + printable(text), style="yellow"))
        self._refresh_all()
