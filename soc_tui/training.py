"""Training mode: the questions of a scenario, checked answers, hints and a score.

Owns: `Quiz`, built from a scenario's `questions:` (format in
demo_data/README.md): each question has an id, a text, a kind (ip, user,
text, choice or time), the answer and accepted alternatives, a hint, and
for `time` a tolerance in minutes. Answers are compared the way a person
means them: addresses as addresses, names without case, free text without
case or surrounding punctuation, a choice by its number or its text, a time
as HH:MM (UTC, as every screen shows it) within the tolerance, after the
scenario's times have been shifted like its logs. Wrong answers score
nothing and can be tried again; hints are counted.
Must not: import Textual or touch the database.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

KINDS = ("ip", "user", "text", "choice", "time")


class QuizError(ValueError):
    """A question in the scenario file that cannot be asked."""


@dataclass
class Question:
    id: str
    text: str
    kind: str
    answers: list[str]  # the answer and the accepted alternatives
    hint: str = ""
    choices: list[str] = field(default_factory=list)
    tolerance_min: float = 2.0
    # state
    tries: int = 0
    hints: int = 0
    correct: bool = False

    @property
    def answered(self) -> bool:
        return self.correct


@dataclass
class Verdict:
    correct: bool
    message: str


def _norm_text(s: str) -> str:
    return re.sub(r"\s+", " ", s.strip().strip(".,;:!?\"'`").casefold())


class Quiz:
    def __init__(self, questions: list[dict[str, Any]], *, shift: timedelta = timedelta(0),
                 year: int = 2026, story_start: datetime | None = None) -> None:
        self.shift = shift  # scenario time + shift = the time on screen
        self.year = year
        self.story_start = story_start  # the day of time answers given without a date
        self.questions: list[Question] = []
        for n, q in enumerate(questions):
            self.questions.append(self._question(n, q))

    def _question(self, n: int, q: dict[str, Any]) -> Question:
        if not isinstance(q, dict) or not q.get("text"):
            raise QuizError(f"question {n + 1}: needs a text")
        kind = str(q.get("kind") or "text")
        if kind not in KINDS:
            raise QuizError(f"question {n + 1}: unknown kind {kind!r} (one of {', '.join(KINDS)})")
        answers = q.get("answer")
        answers = [answers] if not isinstance(answers, list) else list(answers)
        for key in ("accept", "accepted", "alternatives"):
            extra = q.get(key) or []
            answers += extra if isinstance(extra, list) else [extra]
        answers = [str(a) for a in answers if a is not None and str(a).strip()]
        if not answers:
            raise QuizError(f"question {n + 1}: needs an answer")
        # Choices are texts, or {id, text}: the answer may name a choice by its id.
        choices, ids = [], {}
        for c in q.get("choices") or []:
            if isinstance(c, dict):
                text = str(c.get("text") or "")
                if c.get("id") is not None:
                    ids[str(c["id"]).casefold()] = text
            else:
                text = str(c)
            choices.append(text)
        if kind == "choice" and not choices:
            raise QuizError(f"question {n + 1}: a choice question needs choices")
        if kind == "choice":
            answers = [ids.get(a.casefold(), a) for a in answers]
        if kind == "time":
            for a in answers:
                if self._scenario_time(a) is None:
                    raise QuizError(f"question {n + 1}: time answers are HH:MM or YYYY-MM-DD HH:MM, not {a!r}")
        return Question(str(q.get("id") or f"q{n + 1}"), str(q["text"]), kind, answers,
                        str(q.get("hint") or ""), choices,
                        float(q.get("tolerance_minutes", q.get("tolerance_min", 2)) or 2))

    # -- answering ------------------------------------------------------------------

    def get(self, qid: str) -> Question:
        for q in self.questions:
            if q.id == qid:
                return q
        raise KeyError(qid)

    def answer(self, qid: str, given: str) -> Verdict:
        q = self.get(qid)
        given = given.strip()
        if not given:
            return Verdict(False, "type an answer first")
        if q.correct:
            return Verdict(True, "already answered")
        q.tries += 1
        ok = self._matches(q, given)
        if ok:
            q.correct = True
            return Verdict(True, "correct")
        return Verdict(False, "not quite" + (" (h: hint)" if q.hint and not q.hints else ""))

    def hint(self, qid: str) -> str:
        q = self.get(qid)
        if not q.hint:
            return "no hint for this one"
        q.hints += 1
        return q.hint

    def _matches(self, q: Question, given: str) -> bool:
        if q.kind == "ip":
            try:
                got = ipaddress.ip_address(given)
            except ValueError:
                return False
            return any(_same_ip(got, a) for a in q.answers)
        if q.kind == "user":
            return given.casefold() in {a.casefold() for a in q.answers}
        if q.kind == "choice":  # by number (1, 2, ...), letter (a, b, ...) or text
            chosen = given
            if given.isdigit() and 1 <= int(given) <= len(q.choices):
                chosen = q.choices[int(given) - 1]
            elif len(given) == 1 and given.isalpha() and ord(given.lower()) - 96 <= len(q.choices):
                chosen = q.choices[ord(given.lower()) - 97]
            return _norm_text(chosen) in {_norm_text(a) for a in q.answers}
        if q.kind == "time":
            for a in q.answers:
                want = self._scenario_time(a)
                if want is None:
                    continue
                want += self.shift
                got = _parse_time(given, default_day=want.date(), year=self.year)
                if got is None:
                    return False
                diff = (got - want).total_seconds()
                if abs(diff) > 12 * 3600 and not re.match(r"^\d{4}-", given.strip()):
                    diff -= 86400 if diff > 0 else -86400  # HH:MM across midnight
                if abs(diff) <= q.tolerance_min * 60:
                    return True
            return False
        return _norm_text(given) in {_norm_text(a) for a in q.answers}

    def _scenario_time(self, text: str) -> datetime | None:
        """A time in the scenario's own clock (the logs as written)."""
        day = self.story_start.date() if self.story_start is not None else None
        return _parse_time(text, default_day=day, year=self.year)

    # -- the score --------------------------------------------------------------------

    @property
    def finished(self) -> bool:
        return all(q.correct for q in self.questions)

    def score(self) -> tuple[int, int, int]:
        """(correct answers, questions, hints used)."""
        return (sum(q.correct for q in self.questions), len(self.questions),
                sum(q.hints for q in self.questions))

    def summary(self) -> str:
        right, total, hints = self.score()
        tries = sum(q.tries for q in self.questions)
        return (f"score {right}/{total}" + (f", {hints} hint(s) used" if hints else ", no hints")
                + f", {tries} answer(s) given")


def _same_ip(got: ipaddress._BaseAddress, want: str) -> bool:
    try:
        return got == ipaddress.ip_address(want.strip())
    except ValueError:
        return False


_TIME = re.compile(r"^(?:(\d{4})-(\d\d)-(\d\d)[ T])?(\d{1,2}):(\d\d)(?::(\d\d))?(?:\s*(?:Z|UTC))?$", re.I)


def _parse_time(text: str, *, default_day: Any, year: int) -> datetime | None:
    m = _TIME.match(text.strip())
    if not m:
        return None
    y, mo, d, hh, mm, ss = m.groups()
    if y:
        day = (int(y), int(mo), int(d))
    elif default_day is not None:
        day = (default_day.year, default_day.month, default_day.day)
    else:
        day = (year, 1, 1)
    try:
        return datetime(*day, int(hh), int(mm), int(ss or 0), tzinfo=timezone.utc)
    except ValueError:
        return None
