"""Sigma detection compiler: a rule's `detection:` block into Python predicates.

Owns: Sigma's matching semantics (maps are AND, lists are OR, bare lists are
keyword searches over the line, case-insensitive `*`/`?` wildcards with `\\`
escapes, the value modifiers) and the condition grammar. Each rule is compiled
once; matching an event runs only plain string operations (`==`, `in`,
`startswith`, sequential `find`), a regex only where a rule asks for `re`.
Wildcards never become regexes: `*` splits a value into pieces found left to
right, `?` is a fixed-width gap checked at an offset, so no pattern can
backtrack. Must not: do I/O, touch SQLite, import Textual.

    pred = compile_detection(rule["detection"])   # raises RuleError
    pred(RuleEvent(event_dict)) -> bool

Choices where Sigma leaves room (tests/test_sigma.py shows each):
- `null` matches a missing or empty field; `''` only an empty one.
- `neq` (spec 2.1) negates the whole item: a missing field is "not equal".
- `N of x` with N >= 2 means at least N; `0 of` is an error.
- `1 of pattern*` / `all of pattern*` leave out identifiers starting with `_`
  unless the pattern itself starts with `_` (as `them` does).
- `windash` varies every dash that starts a word (`-`, `/`, en dash, em dash,
  horizontal bar; all permutations, at most four dashes per value).
- `cidr` also matches an IPv4 address written IPv4-mapped (`::ffff:a.b.c.d`).
- Keyword searches take contains (implied), all, cased, re and the encoding
  modifiers; a keyword search with startswith/endswith/exists/cidr/lt.. is an error.
"""

from __future__ import annotations

import base64
import ipaddress
import itertools
import math
import re
from typing import Any, Callable

from soc_tui.detect.fields import RuleEvent, column_of, extra_keys, getter

Pred = Callable[[RuleEvent], bool]
StrPred = Callable[[str], bool]
Texts = Callable[[RuleEvent], "tuple[str, ...]"]


class RuleError(Exception):
    """A rule that cannot be loaded; the message says what is wrong."""


# -- wildcard patterns ----------------------------------------------------------

_STAR = object()
_ONE = object()


def _tokens(value: str) -> list[Any]:
    """A Sigma string as literal pieces and wildcards (`\\*`, `\\?`, `\\\\` escape;
    a backslash before any other character is itself)."""
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


def _has_wildcard(value: str) -> bool:
    return any(t is _STAR or t is _ONE for t in _tokens(value))


class _Segment:
    """A run of literals and `?` between two `*`: fixed width, each literal at
    a fixed offset. Found by its longest literal, then checked in place."""

    __slots__ = ("width", "chunks", "anchor", "anchor_at")

    def __init__(self, toks: list[Any]) -> None:
        self.chunks: list[tuple[int, str]] = []
        off = 0
        for t in toks:
            if t is _ONE:
                off += 1
            else:
                self.chunks.append((off, t))
                off += len(t)
        self.width = off
        self.anchor_at, self.anchor = max(self.chunks, key=lambda c: len(c[1])) if self.chunks else (0, "")

    def at(self, s: str, i: int) -> bool:
        """Whether the segment matches `s` at `i` (the caller checks the width fits)."""
        for off, lit in self.chunks:
            if not s.startswith(lit, i + off):
                return False
        return True

    def find(self, s: str, pos: int, end: int) -> int:
        """The leftmost start >= pos where the segment matches within s[:end], or -1."""
        last = end - self.width
        if last < pos:
            return -1
        if not self.chunks:
            return pos
        k = self.anchor_at
        j = s.find(self.anchor, pos + k)
        while 0 <= j:
            i = j - k
            if i > last:
                return -1
            if self.at(s, i):
                return i
            j = s.find(self.anchor, j + 1)
        return -1


def _glob_match(segs: list[_Segment], head: bool, tail: bool, s: str) -> bool:
    """Segments separated by `*`: the first anchored at the start when `head`,
    the last at the end when `tail`, the others found leftmost in order (with
    fixed-width segments the leftmost choice is never worse)."""
    n = len(s)
    if head and tail and len(segs) == 1:
        return n == segs[0].width and segs[0].at(s, 0)
    pos, end = 0, n
    lo, hi = 0, len(segs)
    if head:
        seg = segs[0]
        if seg.width > n or not seg.at(s, 0):
            return False
        pos = seg.width
        lo = 1
    if tail:
        seg = segs[-1]
        end = n - seg.width
        if end < pos or not seg.at(s, end):
            return False
        hi -= 1
    for seg in segs[lo:hi]:
        i = seg.find(s, pos, end)
        if i < 0:
            return False
        pos = i + seg.width
    return True


class Pattern:
    """A compiled string match: kind is eq, prefix, suffix, contains, any,
    pieces (literals joined by `*`) or glob (with `?`)."""

    __slots__ = ("kind", "text", "pieces", "segments", "head", "tail")

    def __init__(self, toks: list[Any], *, cased: bool) -> None:
        norm = (lambda s: s) if cased else str.casefold
        clean: list[Any] = []
        for t in toks:
            if t is _STAR and clean and clean[-1] is _STAR:
                continue  # runs of stars are one star
            if isinstance(t, str) and clean and isinstance(clean[-1], str):
                clean[-1] += norm(t)
                continue
            clean.append(t if not isinstance(t, str) else norm(t))
        self.text = ""
        self.pieces: list[str] = []
        self.segments: list[_Segment] = []
        star_start = bool(clean) and clean[0] is _STAR
        star_end = bool(clean) and clean[-1] is _STAR
        self.head = not star_start  # the first piece must be at the start
        self.tail = not star_end  # the last piece must be at the end
        if any(t is _ONE for t in clean):
            self.kind = "glob"
            groups: list[list[Any]] = [[]]
            for t in clean:
                if t is _STAR:
                    groups.append([])
                else:
                    groups[-1].append(t)
            self.segments = [_Segment(g) for g in groups if g]
            return
        lit = [t for t in clean if isinstance(t, str)]
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
        if kind == "glob":
            return _glob_match(self.segments, self.head, self.tail, s)
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
    if any(p.kind == "any" for p in patterns):
        return lambda s: True
    eqs = {p.text for p in patterns if p.kind == "eq"}
    pre = tuple(p.text for p in patterns if p.kind == "prefix")
    suf = tuple(p.text for p in patterns if p.kind == "suffix")
    sub = [p.text for p in patterns if p.kind == "contains"]
    rest = [p.match for p in patterns if p.kind not in ("eq", "prefix", "suffix", "contains")]
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
_RE_FLAGS = {"i": re.I, "ignorecase": re.I, "m": re.M, "multiline": re.M, "s": re.S, "dotall": re.S}
_FLAGS = {"all", "cased", "neq", *_RE_FLAGS}
_UNSUPPORTED = {
    "expand": "the expand modifier (placeholders) is not supported",
    **{t: f"the time modifier {t!r} is not supported"
       for t in ("minute", "hour", "day", "week", "month", "year")},
}
_DASHES = ("-", "/", "\u2013", "\u2014", "\u2015")
_WINDASH_SPOT = re.compile(r"\B[-/]\b")  # a dash that starts a word (compile time only)
MAX_WINDASH = 4  # dashes varied per value: 5**4 = 625 variants


def _encode(value: str, enc: str) -> bytes:
    if enc == "utf16le":
        return value.encode("utf-16-le")
    if enc == "utf16be":
        return value.encode("utf-16-be")
    if enc == "utf16":
        return b"\xff\xfe" + value.encode("utf-16-le")
    return value.encode("utf-8")


def _base64offset(data: bytes) -> list[str]:
    """The base64 renderings of `data` at byte offsets 0, 1 and 2 (mod 3) within
    a longer encoded text, trimmed to the characters made only of `data`'s
    bits (which do not depend on the bytes around it). An entry is empty when
    no character is (one byte at offset 1)."""
    out = []
    for shift in range(3):
        enc = base64.b64encode(b"\x00" * shift + data).decode("ascii")
        start = (shift * 8 + 5) // 6  # characters touched by the bytes before
        end = (shift + len(data)) * 8 // 6  # whole characters of data bits only
        out.append(enc[start:end])
    return out


def _windash(value: str, key: str) -> list[str]:
    """Every permutation of the dashes Windows accepts at each dash that starts
    a word in `value` (`-c` and `/c`; not the one in `a-b`)."""
    spots = [m.start() for m in _WINDASH_SPOT.finditer(value)]
    if not spots:
        return [value]
    if len(spots) > MAX_WINDASH:
        raise RuleError(f"{key}: windash varies at most {MAX_WINDASH} dashes per value; split {value!r}")
    variants = []
    for combo in itertools.product(_DASHES, repeat=len(spots)):
        chars = list(value)
        for i, dash in zip(spots, combo):
            chars[i] = dash
        variants.append("".join(chars))
    return variants


# A value on its way through the transforms: (text, literal). A literal's
# wildcards and escapes no longer apply (it was encoded).
_Val = tuple[Any, bool]


def _values_after_transforms(values: list[Any], transforms: list[str], key: str) -> list[_Val]:
    """Apply the encoding modifiers in the order written."""
    out: list[_Val] = [(v, False) for v in values]
    enc = "utf-8"
    encoded = False
    for t in transforms:
        if t in ("wide", "utf16le"):
            enc = "utf16le"
        elif t in ("utf16be", "utf16"):
            enc = t
        elif t == "windash":
            out = [(w, lit) for v, lit in out for w in (_windash(v, key) if isinstance(v, str) else [v])]
        else:  # base64, base64offset
            new: list[_Val] = []
            for v, lit in out:
                if not isinstance(v, str):
                    raise RuleError(f"{key}: {t} needs string values, got {v!r}")
                if not lit:
                    if _has_wildcard(v):
                        raise RuleError(f"{key}: {t} cannot encode a value with wildcards ({v!r})")
                    v = "".join(_tokens(v))  # escapes resolved
                data = _encode(v, enc)
                if t == "base64":
                    new.append((base64.b64encode(data).decode("ascii"), True))
                else:
                    new.extend((s, True) for s in _base64offset(data) if s)
            out = new
            encoded = True
    if enc != "utf-8" and not encoded:
        raise RuleError(f"{key}: wide/utf16 modifiers need base64 or base64offset after them")
    return out


def _number(s: Any) -> int | float | None:
    """A number, or None: ints exactly, finite decimals; not `1_000`, `nan`, `inf`."""
    if isinstance(s, bool):
        return None
    if isinstance(s, int):
        return s
    if isinstance(s, float):
        return s if math.isfinite(s) else None
    text = str(s).strip()
    if "_" in text:
        return None
    try:
        return int(text)
    except ValueError:
        pass
    try:
        x = float(text)
    except ValueError:
        return None
    return x if math.isfinite(x) else None


class _Source:
    """What one detection item reads: a field's candidate strings, or the
    raw line (and its URL-decoded form) for a keyword search."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.keyword = name == ""
        self.get = None if self.keyword else getter(name)

    def texts(self, cased: bool) -> Texts:
        if self.keyword:
            if cased:
                return lambda rev: rev.keyword_text(cased=True)
            return lambda rev: rev.keyword_text()
        name, get = self.name, self.get
        if cased:
            return lambda rev: rev.values(name, get)
        return lambda rev: rev.lower(name, get)


def _field_item(key: str, value: Any) -> Pred:
    """One `field|mod|mod: value(s)` entry of a detection map (`|mod` alone,
    with no field, is a keyword search with modifiers)."""
    name, *mods = key.split("|")
    for m in mods:
        if m in _UNSUPPORTED:
            raise RuleError(f"{key}: {_UNSUPPORTED[m]}")
        if m not in _TRANSFORMS and m not in _KINDS and m not in _FLAGS:
            raise RuleError(f"{key}: unknown modifier {m!r}")
    if "neq" in mods:
        inner = _field_item("|".join([name, *(m for m in mods if m != "neq")]), value)
        return lambda rev: not inner(rev)
    values = value if isinstance(value, list) else [value]
    if not values:
        raise RuleError(f"{key}: empty list of values")
    for v in values:
        if isinstance(v, (dict, list)):
            raise RuleError(f"{key}: a value must be a string or number, got {type(v).__name__}")
    kinds = [m for m in mods if m in _KINDS]
    transforms = [m for m in mods if m in _TRANSFORMS]
    flags = [m for m in mods if m in _RE_FLAGS]
    if len(kinds) > 1 and not (kinds[0] == "fieldref" and len(kinds) == 2):
        raise RuleError(f"{key}: conflicting modifiers {kinds}")
    kind = kinds[0] if kinds else None
    if flags and kind != "re":
        raise RuleError(f"{key}: the {flags[0]!r} modifier applies only to re")
    if transforms and kind not in (None, "contains", "startswith", "endswith"):
        raise RuleError(f"{key}: {kind} cannot follow the encoding modifiers {transforms}")
    src = _Source(name)
    want_all = "all" in mods
    cased = "cased" in mods
    if src.keyword:
        if kind not in (None, "contains", "re"):
            raise RuleError(f"{key}: a keyword search cannot take the {kind!r} modifier")
        if any(v is None for v in values):
            raise RuleError(f"{key}: a keyword must be a string or number, got null")
        kind = kind or "contains"
    if kind == "exists":
        if len(values) != 1 or not isinstance(values[0], bool) or len(mods) != 1:
            raise RuleError(f"{key}: exists takes true or false and no other modifier")
        want, get = values[0], src.get
        return lambda rev: (rev.value(get) is not None) == want  # type: ignore[arg-type]
    if kind == "fieldref":
        return _fieldref(key, src, values, kinds[1] if len(kinds) > 1 else None, want_all, cased)
    if kind in ("lt", "lte", "gt", "gte"):
        return _numeric(key, src, values, kind, want_all)
    if kind == "cidr":
        return _cidr(key, src, values, want_all)
    if kind == "re":
        return _regex(key, src, values, flags, want_all)
    nulls = any(v is None for v in values)
    vals = _values_after_transforms([v for v in values if v is not None], transforms, key)
    patterns = [_pattern(v, kind, literal=lit, cased=cased) for v, lit in vals]
    if not patterns and not nulls:  # every variant was empty (one byte at offset 1)
        raise RuleError(f"{key}: the value is too short to encode")
    plain = column_of(name) is not None or (not src.keyword and extra_keys(name) is not None)
    if plain and not (cased or nulls or want_all) and patterns and all(p.kind == "eq" for p in patterns):
        return _equals(src, {p.text for p in patterns})
    return _combine(src.texts(cased), patterns, nulls, want_all)


def _pattern(v: Any, kind: str | None, *, literal: bool, cased: bool) -> Pattern:
    if isinstance(v, bool):
        text = "true" if v else "false"
    else:
        text = v if isinstance(v, str) else str(v)
    toks: list[Any] = [text] if (literal or not isinstance(v, str)) else _tokens(text)
    if kind == "contains":
        toks = [_STAR, *toks, _STAR]
    elif kind == "startswith":
        toks = [*toks, _STAR]
    elif kind == "endswith":
        toks = [_STAR, *toks]
    toks = [t for t in toks if t != ""]
    return Pattern(toks, cased=cased)


def _equals(src: _Source, texts: set[str]) -> Pred:
    """`field: value(s)` without wildcards on an event column or a field of
    `extra`, the commonest item: the field read straight from the event when
    it holds one string (what `RuleEvent.lower` would give, without its
    cache), else through it. (Derived fields, like the decoded URL, cost to
    compute: they go through the cache.)"""
    name, get = src.name, src.get
    assert get is not None

    def equals(rev: RuleEvent) -> bool:
        v = get(rev.ev)
        if v.__class__ is str:
            return v.casefold() in texts
        for s in rev.lower(name, get):
            if s in texts:
                return True
        return False

    return equals


def _combine(texts: Texts, patterns: list[Pattern], null: bool, want_all: bool) -> Pred:
    """The item's predicate: any value matches any candidate string (or, with
    all, each value matches some candidate); a null value matches a missing or
    empty field."""
    if want_all:
        preds = [_any_of([p]) for p in patterns]

        def every(rev: RuleEvent) -> bool:
            vals = texts(rev)
            if null and any(vals):
                return False
            return all(any(f(s) for s in vals) for f in preds)

        return every
    f = _any_of(patterns) if patterns else (lambda s: False)
    if null:
        def with_null(rev: RuleEvent) -> bool:
            vals = texts(rev)
            return not any(vals) or any(f(s) for s in vals)

        return with_null

    def pred(rev: RuleEvent) -> bool:
        for s in texts(rev):
            if f(s):
                return True
        return False

    return pred


def _numeric(key: str, src: _Source, values: list[Any], kind: str, want_all: bool) -> Pred:
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
    texts = src.texts(True)

    def pred(rev: RuleEvent) -> bool:
        got = [x for x in map(_number, texts(rev)) if x is not None]
        if not got:
            return False
        test = (lambda n: any(op(x, n) for x in got))
        return all(map(test, nums)) if want_all else any(map(test, nums))

    return pred


def _address(s: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        a = ipaddress.ip_address(s.strip())
    except ValueError:
        return None
    if isinstance(a, ipaddress.IPv6Address) and a.ipv4_mapped is not None:
        return a.ipv4_mapped
    return a


def _cidr(key: str, src: _Source, values: list[Any], want_all: bool) -> Pred:
    nets = []
    for v in values:
        try:
            nets.append(ipaddress.ip_network(str(v).strip(), strict=False))
        except ValueError:
            raise RuleError(f"{key}: {v!r} is not a network") from None
    texts = src.texts(True)

    def pred(rev: RuleEvent) -> bool:
        addrs = [a for a in map(_address, texts(rev)) if a is not None]
        if not addrs:
            return False
        test = (lambda net: any(a.version == net.version and a in net for a in addrs))
        return all(map(test, nets)) if want_all else any(map(test, nets))

    return pred


def _regex(key: str, src: _Source, values: list[Any], flags: list[str], want_all: bool) -> Pred:
    bits = 0
    for f in flags:
        bits |= _RE_FLAGS[f]
    rxs = []
    for v in values:
        if v is None or isinstance(v, bool):
            raise RuleError(f"{key}: {v!r} is not a regular expression")
        try:
            rxs.append(re.compile(str(v), bits))
        except re.error as exc:
            raise RuleError(f"{key}: bad regular expression {v!r}: {exc}") from None
    texts = src.texts(True)  # re is case-sensitive unless `i`

    def pred(rev: RuleEvent) -> bool:
        vals = texts(rev)
        test = (lambda rx: any(rx.search(s) for s in vals))
        return all(map(test, rxs)) if want_all else any(map(test, rxs))

    return pred


def _fieldref(key: str, src: _Source, values: list[Any], kind: str | None,
              want_all: bool, cased: bool) -> Pred:
    if kind not in (None, "contains", "startswith", "endswith"):
        raise RuleError(f"{key}: fieldref cannot be combined with {kind}")
    mine = src.texts(cased)
    refs = []
    for v in values:
        if not isinstance(v, str) or not v:
            raise RuleError(f"{key}: fieldref takes field names, got {v!r}")
        refs.append(_Source(v).texts(cased))

    def test(a: str, b: str) -> bool:
        if kind == "contains":
            return b in a
        if kind == "startswith":
            return a.startswith(b)
        if kind == "endswith":
            return a.endswith(b)
        return a == b

    def pred(rev: RuleEvent) -> bool:
        have = mine(rev)

        def one(other: Texts) -> bool:
            return any(test(a, b) for a in have for b in other(rev))

        return all(map(one, refs)) if want_all else any(map(one, refs))

    return pred


# -- detection blocks --------------------------------------------------------------


def _every(preds: list[Pred]) -> Pred:
    """AND of predicates, short-circuiting. Written out as a loop (or one
    expression for two or three): `all(p(rev) for p in preds)` builds a
    generator on every call (a fifth of the time rules took to match
    the events they were candidates for)."""
    if len(preds) == 1:
        return preds[0]
    if len(preds) == 2:
        a, b = preds
        return lambda rev: a(rev) and b(rev)
    if len(preds) == 3:
        a, b, c = preds
        return lambda rev: a(rev) and b(rev) and c(rev)

    def every(rev: RuleEvent) -> bool:
        for p in preds:
            if not p(rev):
                return False
        return True

    return every


def _some(preds: list[Pred]) -> Pred:
    """OR of predicates, short-circuiting (see `_every`)."""
    if len(preds) == 1:
        return preds[0]
    if len(preds) == 2:
        a, b = preds
        return lambda rev: a(rev) or b(rev)
    if len(preds) == 3:
        a, b, c = preds
        return lambda rev: a(rev) or b(rev) or c(rev)

    def some(rev: RuleEvent) -> bool:
        for p in preds:
            if p(rev):
                return True
        return False

    return some


def _search_identifier(ident: str, body: Any) -> Pred:
    if isinstance(body, dict):
        if not body:
            raise RuleError(f"{ident}: empty map")
        items = [_field_item(str(k), v) for k, v in body.items()]
        return _every(items)
    if isinstance(body, list):
        if not body:
            raise RuleError(f"{ident}: empty list")
        if all(isinstance(x, dict) for x in body):
            return _some([_search_identifier(ident, x) for x in body])
        if any(isinstance(x, (dict, list)) for x in body):
            raise RuleError(f"{ident}: a list mixes maps and keywords")
        return _field_item("", body)
    if isinstance(body, (str, int, float)) and not isinstance(body, bool):
        return _field_item("", [body])
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
    return _some([_Condition(c, searches).parse() for c in conds])


_COND_TOKEN = re.compile(r"\s*(\(|\)|\||[^\s()|]+)")


def quantified_names(target: str, names: list[str]) -> list[str]:
    """The search identifiers `x of target` covers: `them` is every identifier
    not starting with `_`; a pattern (with `*`) leaves those out too unless it
    starts with `_` itself."""
    if target == "them":
        return [n for n in names if not n.startswith("_")]
    rx = re.compile("".join(".*" if ch == "*" else re.escape(ch) for ch in target) + r"\Z", re.S)
    hidden_ok = target.startswith("_")
    return [n for n in names if rx.match(n) and (hidden_ok or not n.startswith("_"))]


class _Condition:
    """Recursive-descent parser of a Sigma condition into a predicate.
    Precedence, loosest first: or, and, not, `x of y`, parentheses."""

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

    def peek_word(self) -> str | None:
        tok = self.peek()
        return None if tok is None else tok.lower()

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
        while self.peek_word() == "or":
            self.take()
            parts.append(self.and_expr())
        return _some(parts)

    def and_expr(self) -> Pred:
        parts = [self.not_expr()]
        while self.peek_word() == "and":
            self.take()
            parts.append(self.not_expr())
        return _every(parts)

    def not_expr(self) -> Pred:
        if self.peek_word() == "not":
            self.take()
            inner = self.not_expr()
            return lambda rev: not inner(rev)
        return self.primary()

    def primary(self) -> Pred:
        tok = self.take()
        low = tok.lower()
        if tok == "(":
            inner = self.or_expr()
            if self.peek() != ")":
                raise RuleError(f"condition {self.text!r}: missing ')'")
            self.take()
            return inner
        if tok == ")":
            raise RuleError(f"condition {self.text!r}: unexpected ')'")
        if low in ("and", "or"):
            raise RuleError(f"condition {self.text!r}: {tok!r} needs something before it")
        if self.peek_word() == "of" and (low in ("all", "any") or low.isdigit()):
            self.take()
            return self.quantified(low, self.take())
        pred = self.searches.get(tok)
        if pred is None:
            raise RuleError(f"condition names {tok!r}, which the detection does not define")
        return pred

    def quantified(self, quant: str, target: str) -> Pred:
        if quant.isdigit() and int(quant) == 0:
            raise RuleError(f"condition {self.text!r}: '0 of' means nothing; use 1 of or all of")
        names = quantified_names(target, list(self.searches))
        if not names:
            raise RuleError(f"condition {self.text!r}: {target!r} matches no search identifier")
        preds = [self.searches[n] for n in names]
        if quant == "all":
            return _every(preds)
        need = 1 if quant == "any" else int(quant)
        if need == 1:
            return _some(preds)
        return lambda rev: sum(1 for p in preds if p(rev)) >= need
