"""Rule prefilter: which rules can possibly match an event, found in one pass.

Owns: deriving from each rule a *gate*, a set of (field, literal) pairs at
least one of which must occur (lower-cased, as a substring of the field) for
the rule to match at all, and the per-route Aho-Corasick automata
(pyahocorasick) that find, for an event, every gate literal present in each
gated field in one scan. Rules without a safe gate (a `not` at the top, a
regex, a numeric comparison, an encoding modifier...) are always evaluated.
The gate is only ever a necessary condition: the compiled rule still decides.
Must not: do I/O or import Textual.

Why: SigmaHQ's web set puts 87 rules on every access-log line; evaluating
each rule's predicates per event ran at ~10k events/s, while a gate scan
costs about a microsecond per field.
"""

from __future__ import annotations

import re
from typing import Any, Callable

import ahocorasick

from soc_tui.detect.fields import RuleEvent, column_of, extra_keys, extra_of, getter
from soc_tui.detect.loader import Rule
from soc_tui.detect.sigma import _ONE, _STAR, _tokens, quantified_names

KEYWORDS = "\x00keywords"  # the pseudo-field of keyword searches (the raw line)
MIN_LITERAL = 2  # shorter literals gate nothing useful

Gate = frozenset  # of (field name, literal, exact): exact means the field equals it
# Fields with few distinct values gate poorly (most events pass them): an AND
# gates on another part when it can. (auditd's `type`: EXECVE, SYSCALL, PATH
# and PROCTITLE are most of an audit log.)
WEAK_FIELDS = {"outcome", "level", "http_method", "cs-method", "sc-status", "http_status",
               "repeat", "flags", "type"}

_SAFE_MODS = {"contains", "startswith", "endswith", "all", "cased"}
_COND_TOKEN = re.compile(r"\s*(\(|\)|[^\s()]+)")


# -- condition syntax tree -------------------------------------------------------


def parse_condition(text: str) -> Any:
    """A Sigma condition as nested tuples: ("id", name), ("not", x),
    ("and", [..]), ("or", [..]), ("of", quantifier, target). Raises ValueError."""
    toks = _COND_TOKEN.findall(text)
    pos = 0

    def peek() -> str | None:
        return toks[pos].lower() if pos < len(toks) else None

    def take() -> str:
        nonlocal pos
        if pos >= len(toks):
            raise ValueError("condition ends early")
        pos += 1
        return toks[pos - 1]

    def or_expr() -> Any:
        parts = [and_expr()]
        while peek() == "or":
            take()
            parts.append(and_expr())
        return parts[0] if len(parts) == 1 else ("or", parts)

    def and_expr() -> Any:
        parts = [not_expr()]
        while peek() == "and":
            take()
            parts.append(not_expr())
        return parts[0] if len(parts) == 1 else ("and", parts)

    def not_expr() -> Any:
        if peek() == "not":
            take()
            return ("not", not_expr())
        return primary()

    def primary() -> Any:
        tok = take()
        if tok == "(":
            inner = or_expr()
            if take() != ")":
                raise ValueError("missing )")
            return inner
        if pos < len(toks) and toks[pos].lower() == "of":
            take()
            return ("of", tok.lower(), take())
        if tok in (")", "|") or tok.lower() in ("and", "or"):
            raise ValueError(f"unexpected {tok}")
        return ("id", tok)

    tree = or_expr()
    if pos != len(toks):
        raise ValueError("trailing tokens")
    return tree


# -- gates ---------------------------------------------------------------------------


def _literal(value: Any) -> tuple[str, bool] | None:
    """The longest literal piece a value's match must contain (lower-cased), and
    whether it is the whole value (no wildcards: the field must equal it)."""
    if isinstance(value, bool) or value is None or isinstance(value, (dict, list)):
        return None
    exact = isinstance(value, str)
    if not isinstance(value, str):
        value = str(value)
    toks = _tokens(value)
    pieces = [t for t in toks if t is not _STAR and t is not _ONE]
    if not pieces:
        return None
    best = max(pieces, key=len).casefold()
    if len(best) < MIN_LITERAL:
        return None
    return best, exact and len(toks) == 1


def _item_gate(key: str, value: Any) -> Gate | None:
    name, *mods = str(key).split("|")
    if any(m not in _SAFE_MODS for m in mods):
        return None
    values = value if isinstance(value, list) else [value]
    field = KEYWORDS if name == "" else name
    plain = field != KEYWORDS and not (set(mods) - {"cased"})
    lits = [_literal(v) for v in values]
    if "all" in mods:
        good = [x for x in lits if x]
        if not good:
            return None
        lit = max(good, key=lambda x: len(x[0]))
        return Gate({(field, lit[0], plain and lit[1])})
    if not lits or any(x is None for x in lits):
        return None
    return Gate((field, x[0], plain and x[1]) for x in lits)  # type: ignore[index]


def _search_gate(body: Any) -> Gate | None:
    if isinstance(body, dict):
        return _best([_item_gate(k, v) for k, v in body.items()])
    if isinstance(body, list):
        if body and all(isinstance(x, dict) for x in body):
            return _union([_search_gate(x) for x in body])
        if body and not any(isinstance(x, (dict, list)) for x in body):
            lits = [_literal(v) for v in body]
            if any(x is None for x in lits):
                return None
            return Gate((KEYWORDS, x[0], False) for x in lits)  # type: ignore[index]
        return None
    lit = _literal(body)
    return Gate({(KEYWORDS, lit[0], False)}) if lit else None


def _best(gates: list[Gate | None]) -> Gate | None:
    """For an AND: any one part's gate will do; take the most selective, and
    of those on fields with many values, an equality before a substring: it
    costs a dict lookup, where a substring gate makes every event of the
    route scan the field (`action: X` and `message|contains: Y` gates on the
    action)."""
    good = [g for g in gates if g]
    if not good:
        return None

    def score(g: Gate) -> tuple[int, int, int, int]:
        strong = not any(f in WEAK_FIELDS for f, _, _ in g)
        exact = all(e for _, _, e in g)
        return (strong, exact, min(len(lit) for _, lit, _ in g), -len(g))

    return max(good, key=score)


def _union(gates: list[Gate | None]) -> Gate | None:
    """For an OR: every part must be gated; the gate is the union."""
    if not gates or any(not g for g in gates):
        return None
    out: set[tuple[str, str]] = set()
    for g in gates:
        out |= g  # type: ignore[arg-type]
    return Gate(out)


def _tree_gate(tree: Any, searches: dict[str, Gate | None]) -> Gate | None:
    kind = tree[0]
    if kind == "id":
        return searches.get(tree[1])
    if kind == "not":
        return None
    if kind == "and":
        return _best([_tree_gate(t, searches) for t in tree[1]])
    if kind == "or":
        return _union([_tree_gate(t, searches) for t in tree[1]])
    quant, target = tree[1], tree[2]
    names = quantified_names(target, list(searches))
    parts = [searches.get(n) for n in names]
    if quant == "all":
        return _best(parts)
    if quant in ("1", "any"):
        return _union(parts)
    return None


def rule_gate(rule: Rule) -> Gate | None:
    """The gate of a detection rule, or None when it must always run."""
    det = rule.doc.get("detection")
    if not isinstance(det, dict):
        return None
    cond = det.get("condition")
    if not isinstance(cond, str):  # a list of conditions: OR of each
        conds = cond if isinstance(cond, list) else []
    else:
        conds = [cond]
    searches = {str(k): _search_gate(v) for k, v in det.items() if k not in ("condition", "timeframe")}
    try:
        trees = [parse_condition(c) for c in conds if isinstance(c, str)]
    except ValueError:
        return None
    if not trees or len(trees) != len(conds):
        return None
    return _union([_tree_gate(t, searches) for t in trees])


# -- per-route automata ------------------------------------------------------------------


class Route:
    """The rules of one logsource shape, with the lookups that gate them: a
    dict per field for exact gates, an Aho-Corasick automaton per field for
    substring gates."""

    def __init__(self, rules: list[Rule], gates: dict[int, Gate | None]) -> None:
        self.rules = rules
        self.always: list[int] = []
        # Candidate lists by their rule indexes (sorted), built once.
        self._lists: dict[tuple[int, ...], list[Rule]] = {}
        exact: dict[str, dict[str, set[int]]] = {}
        within: dict[str, dict[str, set[int]]] = {}
        for i, rule in enumerate(rules):
            gate = gates.get(id(rule))
            if not gate:
                self.always.append(i)
                continue
            for field, lit, is_exact in gate:
                table = exact if is_exact else within
                table.setdefault(field, {}).setdefault(lit, set()).add(i)
        self._always = [rules[i] for i in self.always]
        # (field, getter, lookup, whether the field is an event column)
        Scan = tuple[str, Callable[[dict[str, Any]], Any] | None, Any, bool]
        self.exact: list[Scan] = []
        # Fields of `extra` (auditd's type, a unit...): the dict is looked up
        # once per event, and not at all for the many events without one.
        self.extra_exact: list[tuple[str, Callable[[dict[str, Any]], Any], Any, str, str]] = []
        for field, lits in exact.items():
            table = {lit: tuple(sorted(idx)) for lit, idx in lits.items()}
            keys = extra_keys(field)
            if keys is None:
                self.exact.append((field, getter(field), table, column_of(field) is not None))
            else:
                self.extra_exact.append((field, getter(field), table, *keys))
        # Fields read by the same getter (cs-uri-query, cs-uri, c-uri) scan once.
        self.scans: list[Scan] = []
        merged: dict[Any, tuple[str, dict[str, set[int]]]] = {}
        for field, lits in within.items():
            get = None if field == KEYWORDS else getter(field)
            slot = merged.setdefault(get if get is not None else KEYWORDS, (field, {}))
            for lit, idx in lits.items():
                slot[1].setdefault(lit, set()).update(idx)
        for get_key, (field, lits) in merged.items():
            auto = ahocorasick.Automaton()
            for lit, idx in lits.items():
                auto.add_word(lit, tuple(sorted(idx)))
            auto.make_automaton()
            # An event column is read straight from the event; a derived
            # field (the decoded URL...) costs to compute, and the rules the
            # scan lets through read it again: through RuleEvent's cache.
            plain = get_key != KEYWORDS and column_of(field) is not None
            self.scans.append((field, None if get_key == KEYWORDS else get_key, auto, plain))

    def candidates(self, rev: RuleEvent) -> list[Rule]:
        """The rules whose gate the event passes (plus the ungated), in order.
        The list is shared between events with the same candidates: callers
        must not change it."""
        found: list[tuple[int, ...]] = []  # the rule indexes each gate hit gave
        ev = rev.ev
        for field, get, table, plain in self.exact:
            if plain:  # an event column (see `scans`)
                v = get(ev)  # type: ignore[misc]
                if v is None:
                    continue
                if v.__class__ is str:  # the usual case: one value, no caching needed
                    idx = table.get(v.casefold())
                    if idx:
                        found.append(idx)
                    continue
            for text in rev.lower(field, get):  # type: ignore[arg-type]
                idx = table.get(text)
                if idx:
                    found.append(idx)
        if self.extra_exact and (extra := extra_of(ev)):
            for field, get, table, key, lower in self.extra_exact:
                v = extra.get(key)
                if v is None:
                    v = extra.get(lower)
                    if v is None:
                        continue
                if v.__class__ is str:
                    idx = table.get(v.casefold())
                    if idx:
                        found.append(idx)
                    continue
                for text in rev.lower(field, get):
                    idx = table.get(text)
                    if idx:
                        found.append(idx)
        for field, get, auto, plain in self.scans:
            if get is None:
                texts = rev.keyword_text()
            elif plain:
                v = get(ev)
                if v is None:  # most events lack most scanned fields
                    continue
                texts = (v.casefold(),) if v.__class__ is str else rev.lower(field, get)
            else:
                texts = rev.lower(field, get)
            for text in texts:
                for _, idx in auto.iter(text):
                    found.append(idx)
        if not found:
            return self._always
        key = found[0] if len(found) == 1 and not self.always else None
        if key is None:
            hit = set(self.always)
            for idx in found:
                hit.update(idx)
            key = tuple(sorted(hit))
        got = self._lists.get(key)
        if got is None:
            if len(self._lists) >= 4096:
                self._lists.clear()
            rules = self.rules
            got = self._lists[key] = [rules[i] for i in key]
        return got
