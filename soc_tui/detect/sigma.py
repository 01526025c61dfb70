"""Sigma detection compiler: a rule's `detection:` block into Python predicates.

Owns: Sigma's matching semantics (maps are AND, lists are OR, bare lists are
keyword searches over the line, case-insensitive `*`/`?` wildcards with `\\`
escapes, the value modifiers) and the condition grammar. Each rule is compiled
once; matching an event runs only plain string operations (`==`, `in`,
`startswith`, sequential `find`), a regex only where a rule asks for `re` or a
`?` wildcard. Must not: do I/O, touch SQLite, import Textual.

    pred = compile_detection(rule["detection"])   # raises RuleError
    pred(RuleEvent(event_dict)) -> bool
"""

from __future__ import annotations

import base64
import ipaddress
import re
from typing import Any, Callable, Iterable

from soc_tui.detect.fields import RuleEvent, getter

Pred = Callable[[RuleEvent], bool]
StrPred = Callable[[str], bool]


class RuleError(Exception):
    """A rule that cannot be loaded; the message says what is wrong."""


# -- wildcard patterns ----------------------------------------------------------

_STAR = object()
_ONE = object()


def _tokens(value: str) -> list[Any]:
    """A Sigma string as literal pieces and wildcards (`\\*`, `\\?`, `\\\\` escape)."""
    out: list[Any] = []
    buf: list[str] = []
    i = 0
    n = len(value)
    while i < n:
        ch = value[i]
        if ch == "\\" and i + 1 < n and value[i + 1] in "*?\\":
            buf.append(value[i + 1])
            i += 2
            continue
        if ch in "*?":
            if buf:
                out.append("".join(buf))
                buf = []
            out.append(_STAR if ch == "*" else _ONE)
        else:
            buf.append(ch)
        i += 1
    if buf:
        out.append("".join(buf))
    return out


class Pattern:
    """A compiled string match: kind is eq, prefix, suffix, contains, pieces or regex."""

    __slots__ = ("kind", "text", "pieces", "regex", "head", "tail")

    def __init__(self, toks: list[Any], *, cased: bool) -> None:
        norm = (lambda s: s) if cased else str.lower
        # Collapse runs of stars.
        clean: list[Any] = []
        for t in toks:
            if t is _STAR and clean and clean[-1] is _STAR:
                continue
            clean.append(t if not isinstance(t, str) else norm(t))
        self.text = ""
        self.pieces: list[str] = []
        self.regex: re.Pattern[str] | None = None
        self.head = self.tail = False
        if any(t is _ONE for t in clean):
            rx = "".join(
                ".*" if t is _STAR else "." if t is _ONE else re.escape(t) for t in clean
            )
            self.kind = "regex"
            self.regex = re.compile(rx, re.S if cased else re.S | re.I)
            return
        lit = [t for t in clean if isinstance(t, str)]
        star_start = bool(clean) and clean[0] is _STAR
        star_end = bool(clean) and clean[-1] is _STAR
        if not lit:
            self.kind = "any" if clean else "eq"  # "*" matches anything; "" only ""
            return
        if len(lit) == 1:
            self.text = lit[0]
            self.kind = {
                (False, False): "eq", (False, True): "prefix",
                (True, False): "suffix", (True, True): "contains",
            }[(star_start, star_end)]
            return
        self.kind = "pieces"
        self.pieces = lit
        self.head = not star_start  # the first piece must be at the start
        self.tail = not star_end  # the last piece must be at the end

    def match(self, s: str) -> bool:
        kind = self.kind
        if kind == "eq":
            return s == self.text
        if kind == "contains":
            return self.text in s
        if kind == "prefix":
            return s.startswith(self.text)
        if kind == "suffix":
            return s.endswith(self.text)
        if kind == "any":
            return True
        if kind == "regex":
            return self.regex.fullmatch(s) is not None  # type: ignore[union-attr]
        return _pieces_match(self.pieces, self.head, self.tail, s)


def _pieces_match(pieces: list[str], head: bool, tail: bool, s: str) -> bool:
    pos = 0
    last = len(pieces) - 1
    for i, piece in enumerate(pieces):
        if i == 0 and head:
            if not s.startswith(piece):
                return False
            pos = len(piece)
            continue
        if i == last and tail:
            return len(s) - len(piece) >= pos and s.endswith(piece)
        found = s.find(piece, pos)
        if found < 0:
            return False
        pos = found + len(piece)
    return True


def _any_of(patterns: list[Pattern]) -> StrPred:
    """One predicate for a list of patterns (OR), using set and tuple checks."""
    eqs = {p.text for p in patterns if p.kind == "eq"}
    pre = tuple(p.text for p in patterns if p.kind == "prefix")
    suf = tuple(p.text for p in patterns if p.kind == "suffix")
    sub = [p.text for p in patterns if p.kind == "contains"]
    rest = [p.match for p in patterns if p.kind not in ("eq", "prefix", "suffix", "contains")]
    if any(p.kind == "any" for p in patterns):
        return lambda s: True
    checks: list[StrPred] = []
    if eqs:
        checks.append(eqs.__contains__)
    if pre:
        checks.append(lambda s: s.startswith(pre))
    if suf:
        checks.append(lambda s: s.endswith(suf))
    if len(sub) == 1:
        one = sub[0]
        checks.append(lambda s: one in s)
    elif sub:
        checks.append(lambda s: any(x in s for x in sub))
    checks.extend(rest)
    if not checks:
        return lambda s: False
    if len(checks) == 1:
        return checks[0]
    return lambda s: any(c(s) for c in checks)


# -- modifiers ------------------------------------------------------------------

_TRANSFORMS = {"base64", "base64offset", "wide", "utf16le", "utf16be", "utf16", "windash"}
_KINDS = {"contains", "startswith", "endswith", "re", "cidr", "lt", "lte", "gt", "gte",
          "exists", "fieldref"}
_FLAGS = {"all", "cased", "i", "m", "s", "ignorecase", "multiline", "dotall"}
_UNSUPPORTED = {"expand": "the expand modifier (placeholders) is not supported"}
_DASHES = ("-", "/", "\u2013", "\u2014", "\u2015")


def _encode(value: str, enc: str) -> bytes:
    if enc == "utf16le":
        return value.encode("utf-16-le")
    if enc == "utf16be":
        return value.encode("utf-16-be")
    if enc == "utf16":
        return b"\xff\xfe" + value.encode("utf-16-le")
    return value.encode("utf-8")


def _base64offset(data: bytes) -> list[str]:
    """The three base64 renderings of `data` at byte offsets 0, 1 and 2 within
    a longer encoded text, trimmed to the characters that do not depend on the
    surrounding bytes."""
    out = []
    for shift in range(3):
        enc = base64.b64encode(b"\x00" * shift + data).decode("ascii").rstrip("=")
        start = (shift * 8 + 5) // 6  # characters touched by the padding bytes
        end_bits = (shift + len(data)) * 8
        end = end_bits // 6  # whole characters made only of data bits
        out.append(enc[start:end])
    return [s for s in out if s]


def _windash(value: str) -> list[str]:
    """Variants of `value` with each option dash (`-` or `/` at a word start)
    written as every dash Windows accepts."""
    spots = [i for i, ch in enumerate(value) if ch in "-/" and (i == 0 or value[i - 1] == " ")]
    if not spots:
        return [value]
    variants = []
    for dash in _DASHES:
        chars = list(value)
        for i in spots:
            chars[i] = dash
        variants.append("".join(chars))
    return variants


def _values_after_transforms(values: list[Any], transforms: list[str]) -> tuple[list[Any], bool]:
    """Apply encoding modifiers in order; returns (values, literal) where literal
    means wildcards no longer apply (the value was encoded)."""
    literal = False
    enc = "utf-8"
    out = list(values)
    for t in transforms:
        if t in ("wide", "utf16le"):
            enc = "utf16le"
        elif t in ("utf16be", "utf16"):
            enc = t
        elif t == "windash":
            out = [w for v in out for w in (_windash(v) if isinstance(v, str) else [v])]
        elif t in ("base64", "base64offset"):
            new: list[Any] = []
            for v in out:
                if not isinstance(v, str):
                    raise RuleError(f"{t} needs string values, got {v!r}")
                data = _encode(v, enc)
                if t == "base64":
                    new.append(base64.b64encode(data).decode("ascii"))
                else:
                    new.extend(_base64offset(data))
            out = new
            literal = True
    if enc != "utf-8" and not any(t.startswith("base64") for t in transforms):
        raise RuleError("wide/utf16 modifiers need base64 or base64offset after them")
    return out, literal


def _number(s: Any) -> float | None:
    if isinstance(s, (int, float)) and not isinstance(s, bool):
        return float(s)
    try:
        return float(str(s).strip())
    except ValueError:
        return None


def _field_item(key: str, value: Any) -> Pred:
    """One `field|mod|mod: value(s)` entry of a detection map."""
    name, *mods = key.split("|")
    for m in mods:
        if m in _UNSUPPORTED:
            raise RuleError(f"{key}: {_UNSUPPORTED[m]}")
        if m not in _TRANSFORMS and m not in _KINDS and m not in _FLAGS:
            raise RuleError(f"{key}: unknown modifier {m!r}")
    kinds = [m for m in mods if m in _KINDS]
    if len(kinds) > 1 and not (kinds[0] == "fieldref" and len(kinds) == 2):
        raise RuleError(f"{key}: conflicting modifiers {kinds}")
    values = value if isinstance(value, list) else [value]
    if not values:
        raise RuleError(f"{key}: empty list of values")
    if name == "":  # `'|all': [...]` is a keyword search with modifiers
        return _keywords(values, mods)
    get = getter(name)
    kind = kinds[0] if kinds else None
    want_all = "all" in mods
    cased = "cased" in mods
    if kind == "exists":
        if len(values) != 1 or not isinstance(values[0], bool):
            raise RuleError(f"{key}: exists takes true or false")
        want = values[0]
        return lambda rev: (rev.value(get) is not None) == want
    if kind == "fieldref":
        return _fieldref(key, name, get, values, kinds[1] if len(kinds) > 1 else None, want_all, cased)
    if kind in ("lt", "lte", "gt", "gte"):
        return _numeric(key, name, get, values, kind, want_all)
    if kind == "cidr":
        return _cidr(key, name, get, values, want_all)
    if kind == "re":
        return _regex(key, name, get, values, mods, want_all)
    transforms = [m for m in mods if m in _TRANSFORMS]
    nulls = [v for v in values if v is None]
    vals, literal = _values_after_transforms([v for v in values if v is not None], transforms)
    patterns = [_pattern(v, kind, literal=literal, cased=cased, key=key) for v in vals]
    return _combine(name, get, patterns, bool(nulls), want_all, cased)


def _pattern(v: Any, kind: str | None, *, literal: bool, cased: bool, key: str) -> Pattern:
    if isinstance(v, (dict, list)):
        raise RuleError(f"{key}: a value must be a string or number, got {type(v).__name__}")
    if isinstance(v, bool):
        text = "true" if v else "false"
    else:
        text = v if isinstance(v, str) else str(v)
    toks: list[Any] = [text] if (literal or not isinstance(v, str)) else _tokens(text)
    if not toks:
        toks = [""] if kind is None else []
    if kind == "contains":
        toks = [_STAR, *toks, _STAR]
    elif kind == "startswith":
        toks = [*toks, _STAR]
    elif kind == "endswith":
        toks = [_STAR, *toks]
    toks = [t for t in toks if t != ""] or ([""] if kind is None else [_STAR])
    return Pattern(toks, cased=cased)


def _combine(name: str, get: Any, patterns: list[Pattern], null: bool, want_all: bool, cased: bool) -> Pred:
    if want_all:
        preds = [_any_of([p]) for p in patterns]
        if cased:
            return lambda rev: all(any(f(s) for s in rev.values(name, get)) for f in preds)
        return lambda rev: all(any(f(s) for s in rev.lower(name, get)) for f in preds)
    f = _any_of(patterns) if patterns else (lambda s: False)
    # A null value matches a missing or empty field.
    if null:
        if cased:
            return lambda rev: not any(rev.values(name, get)) or any(f(s) for s in rev.values(name, get))
        return lambda rev: not any(rev.values(name, get)) or any(f(s) for s in rev.lower(name, get))
    if cased:
        return lambda rev: any(f(s) for s in rev.values(name, get))

    def pred(rev: RuleEvent) -> bool:
        for s in rev.lower(name, get):
            if f(s):
                return True
        return False

    return pred


def _keywords(values: list[Any], mods: Iterable[str]) -> Pred:
    mods = list(mods)
    for m in mods:
        if m not in ("all", "cased", "contains"):
            raise RuleError(f"keyword search cannot take the {m!r} modifier")
    cased = "cased" in mods
    patterns = []
    for v in values:
        if isinstance(v, (dict, list)) or v is None:
            raise RuleError(f"a keyword must be a string or number, got {v!r}")
        toks = _tokens(v) if isinstance(v, str) else [str(v)]
        patterns.append(Pattern([_STAR, *toks, _STAR], cased=cased))
    if "all" in mods:
        preds = [_any_of([p]) for p in patterns]
        return lambda rev: all(any(f(s) for s in rev.keyword_text(cased=cased)) for f in preds)
    f = _any_of(patterns)
    return lambda rev: any(f(s) for s in rev.keyword_text(cased=cased))


def _numeric(key: str, name: str, get: Any, values: list[Any], kind: str, want_all: bool) -> Pred:
    nums = []
    for v in values:
        n = _number(v)
        if n is None:
            raise RuleError(f"{key}: {v!r} is not a number")
        nums.append(n)
    op = {
        "lt": lambda a, b: a < b, "lte": lambda a, b: a <= b,
        "gt": lambda a, b: a > b, "gte": lambda a, b: a >= b,
    }[kind]

    def pred(rev: RuleEvent) -> bool:
        got = [x for x in (_number(s) for s in rev.values(name, get)) if x is not None]
        test = (lambda n: any(op(x, n) for x in got))
        return all(map(test, nums)) if want_all else any(map(test, nums))

    return pred


def _cidr(key: str, name: str, get: Any, values: list[Any], want_all: bool) -> Pred:
    nets = []
    for v in values:
        try:
            nets.append(ipaddress.ip_network(str(v), strict=False))
        except ValueError:
            raise RuleError(f"{key}: {v!r} is not a network") from None

    def pred(rev: RuleEvent) -> bool:
        addrs = []
        for s in rev.values(name, get):
            try:
                addrs.append(ipaddress.ip_address(s))
            except ValueError:
                continue
        test = (lambda net: any(a.version == net.version and a in net for a in addrs))
        return all(map(test, nets)) if want_all else any(map(test, nets))

    return pred


def _regex(key: str, name: str, get: Any, values: list[Any], mods: list[str], want_all: bool) -> Pred:
    flags = 0
    if "i" in mods or "ignorecase" in mods:
        flags |= re.I
    if "m" in mods or "multiline" in mods:
        flags |= re.M
    if "s" in mods or "dotall" in mods:
        flags |= re.S
    rxs = []
    for v in values:
        try:
            rxs.append(re.compile(str(v), flags))
        except re.error as exc:
            raise RuleError(f"{key}: bad regular expression {v!r}: {exc}") from None

    def pred(rev: RuleEvent) -> bool:
        vals = rev.values(name, get)
        test = (lambda rx: any(rx.search(s) for s in vals))
        return all(map(test, rxs)) if want_all else any(map(test, rxs))

    return pred


def _fieldref(key: str, name: str, get: Any, values: list[Any], kind: str | None,
              want_all: bool, cased: bool) -> Pred:
    refs = []
    for v in values:
        if not isinstance(v, str):
            raise RuleError(f"{key}: fieldref takes field names")
        refs.append((v, getter(v)))
    if kind not in (None, "contains", "startswith", "endswith"):
        raise RuleError(f"{key}: fieldref cannot be combined with {kind}")

    def test(a: str, b: str) -> bool:
        if kind == "contains":
            return b in a
        if kind == "startswith":
            return a.startswith(b)
        if kind == "endswith":
            return a.endswith(b)
        return a == b

    def pred(rev: RuleEvent) -> bool:
        mine = rev.values(name, get) if cased else rev.lower(name, get)

        def one(ref: tuple[str, Any]) -> bool:
            other = rev.values(*ref) if cased else rev.lower(*ref)
            return any(test(a, b) for a in mine for b in other)

        return all(map(one, refs)) if want_all else any(map(one, refs))

    return pred


# -- detection blocks --------------------------------------------------------------


def _search_identifier(ident: str, body: Any) -> Pred:
    if isinstance(body, dict):
        if not body:
            raise RuleError(f"{ident}: empty map")
        items = [_field_item(str(k), v) for k, v in body.items()]
        if len(items) == 1:
            return items[0]
        return lambda rev: all(p(rev) for p in items)
    if isinstance(body, list):
        if not body:
            raise RuleError(f"{ident}: empty list")
        if all(isinstance(x, dict) for x in body):
            alts = [_search_identifier(ident, x) for x in body]
            return lambda rev: any(p(rev) for p in alts)
        if any(isinstance(x, (dict, list)) for x in body):
            raise RuleError(f"{ident}: a list mixes maps and keywords")
        return _keywords(body, [])
    if isinstance(body, (str, int, float)) and not isinstance(body, bool):
        return _keywords([body], [])
    raise RuleError(f"{ident}: cannot use {type(body).__name__} as a search")


def compile_detection(detection: Any) -> Pred:
    """The predicate of a rule's `detection:` block (raises RuleError)."""
    if not isinstance(detection, dict):
        raise RuleError("detection must be a map")
    cond = detection.get("condition")
    if cond is None:
        raise RuleError("detection has no condition")
    searches = {
        str(k): _search_identifier(str(k), v)
        for k, v in detection.items()
        if k not in ("condition", "timeframe")
    }
    conds = cond if isinstance(cond, list) else [cond]
    if not conds or not all(isinstance(c, str) for c in conds):
        raise RuleError("condition must be a string or a list of strings")
    preds = [_Condition(c, searches).parse() for c in conds]
    if len(preds) == 1:
        return preds[0]
    return lambda rev: any(p(rev) for p in preds)


_COND_TOKEN = re.compile(r"\s*(\(|\)|\||[^\s()|]+)")


class _Condition:
    """Recursive-descent parser of a Sigma condition into a predicate."""

    def __init__(self, text: str, searches: dict[str, Pred]) -> None:
        self.text = text
        self.searches = searches
        self.toks: list[str] = []
        pos = 0
        while pos < len(text):
            m = _COND_TOKEN.match(text, pos)
            if not m:
                break
            self.toks.append(m.group(1))
            pos = m.end()
            if text[pos:].strip() == "":
                break
        self.i = 0

    def peek(self) -> str | None:
        return self.toks[self.i] if self.i < len(self.toks) else None

    def take(self) -> str:
        tok = self.peek()
        if tok is None:
            raise RuleError(f"condition {self.text!r} ends too early")
        self.i += 1
        return tok

    def parse(self) -> Pred:
        if "|" in self.toks:
            raise RuleError(
                "aggregations in the condition (`| count() ...`) are Sigma v1; use a correlation rule"
            )
        if not self.toks:
            raise RuleError("empty condition")
        pred = self.or_expr()
        if self.peek() is not None:
            raise RuleError(f"condition {self.text!r}: unexpected {self.peek()!r}")
        return pred

    def or_expr(self) -> Pred:
        parts = [self.and_expr()]
        while self.peek() is not None and self.peek().lower() == "or":  # type: ignore[union-attr]
            self.take()
            parts.append(self.and_expr())
        if len(parts) == 1:
            return parts[0]
        return lambda rev: any(p(rev) for p in parts)

    def and_expr(self) -> Pred:
        parts = [self.not_expr()]
        while self.peek() is not None and self.peek().lower() == "and":  # type: ignore[union-attr]
            self.take()
            parts.append(self.not_expr())
        if len(parts) == 1:
            return parts[0]
        if len(parts) == 2:
            a, b = parts
            return lambda rev: a(rev) and b(rev)
        return lambda rev: all(p(rev) for p in parts)

    def not_expr(self) -> Pred:
        tok = self.peek()
        if tok is not None and tok.lower() == "not":
            self.take()
            inner = self.not_expr()
            return lambda rev: not inner(rev)
        return self.primary()

    def primary(self) -> Pred:
        tok = self.take()
        low = tok.lower()
        if tok == "(":
            inner = self.or_expr()
            if self.take() != ")":
                raise RuleError(f"condition {self.text!r}: missing ')'")
            return inner
        if tok == ")":
            raise RuleError(f"condition {self.text!r}: unexpected ')'")
        if low in ("and", "or"):
            raise RuleError(f"condition {self.text!r}: {tok!r} needs something before it")
        nxt = self.peek()
        if nxt is not None and nxt.lower() == "of" and (low in ("all", "any") or low.isdigit()):
            self.take()
            return self.quantified(low, self.take())
        pred = self.searches.get(tok)
        if pred is None:
            raise RuleError(f"condition names {tok!r}, which the detection does not define")
        return pred

    def quantified(self, quant: str, target: str) -> Pred:
        if target == "them":
            names = [n for n in self.searches if not n.startswith("_")]
        else:
            rx = re.compile(
                "".join(".*" if ch == "*" else re.escape(ch) for ch in target) + r"\Z", re.S
            )
            names = [n for n in self.searches if rx.match(n)]
        if not names:
            raise RuleError(f"condition {self.text!r}: {target!r} matches no search identifier")
        preds = [self.searches[n] for n in names]
        if quant == "all":
            return lambda rev: all(p(rev) for p in preds)
        need = 1 if quant == "any" else int(quant)
        if need <= 1:
            return lambda rev: any(p(rev) for p in preds)
        return lambda rev: sum(1 for p in preds if p(rev)) >= need
