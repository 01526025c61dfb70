"""The search language, shared by the CLI and the TUI, compiled to parameterised SQL.

Owns: parsing a query string into a tree and turning it into a WHERE clause
plus parameters (and an FTS5 MATCH expression passed as a parameter).

Language (DESIGN section 4):
- free text: words and "quoted phrases" go to the FTS5 index over the message
  (case-insensitive, token based); `word*` is a prefix search;
- `field:value` filters a column exactly (`*` in the value is a wildcard),
  `field:"a value"` for values with spaces, `field:>=N` / `>N` / `<=N` / `<N`
  on numeric fields, `src_ip:10.0.0.0/8` matches a CIDR network;
- `since:15m` (s, m, h, d, w) or `since:2026-11-26T10:00`, and `until:...`,
  bound the event time (ISO times without an offset are UTC);
- AND (implicit between terms), OR, NOT or a leading `-`, and parentheses.
A malformed query raises SearchError with the 0-based position of the problem.
Nothing from the query is ever put into SQL text: values are parameters.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from datetime import datetime, timezone
from functools import lru_cache

from soc_tui.model import dt_to_us, now_us
from soc_tui.store.db import CODED_COLUMNS, MESSAGE_SQL, RAW_SQL


class SearchError(ValueError):
    def __init__(self, message: str, position: int) -> None:
        super().__init__(message)
        self.message = message
        self.position = position

    def __str__(self) -> str:
        return f"{self.message} (at position {self.position})"


TEXT_FIELDS = (
    "host", "app", "level", "action", "outcome", "user", "target_user", "src_ip",
    "http_method", "url", "user_agent", "referrer", "message", "raw",
)
NUMERIC_FIELDS = ("id", "pid", "src_port", "http_status", "bytes", "repeat")
ALIASES = {
    "ip": "src_ip",
    "status": "http_status",
    "method": "http_method",
    "ua": "user_agent",
    "program": "app",
    "port": "src_port",
    "msg": "message",
}
SPECIAL_FIELDS = ("since", "until", "source")
FIELDS = TEXT_FIELDS + NUMERIC_FIELDS + SPECIAL_FIELDS + tuple(ALIASES)


# -- tree -------------------------------------------------------------------


@dataclass
class Text:
    fts: str  # an FTS5 expression fragment (already quoted)


@dataclass
class Cond:
    sql: str
    params: list[object]


@dataclass
class And:
    items: list["Node"]


@dataclass
class Or:
    items: list["Node"]


@dataclass
class Not:
    item: "Node"


Node = Text | Cond | And | Or | Not


# -- tokens -----------------------------------------------------------------

_TOKEN = re.compile(
    r"""
    (?P<ws>\s+)
  | (?P<lp>\()
  | (?P<rp>\))
  | (?P<phrase>-?"(?:[^"\\]|\\.)*"\*?)
  | (?P<word>-?(?:[^\s()"]|"(?:[^"\\]|\\.)*")+)
  | (?P<bad>")
    """,
    re.VERBOSE,
)


@dataclass
class _Tok:
    kind: str
    text: str
    pos: int


def _tokens(query: str) -> list[_Tok]:
    out = []
    pos = 0
    while pos < len(query):
        m = _TOKEN.match(query, pos)
        assert m is not None  # every character matches one alternative
        kind = m.lastgroup or ""
        if kind == "bad":
            raise SearchError("unclosed quote", pos)
        if kind != "ws":
            out.append(_Tok(kind, m.group(), pos))
        pos = m.end()
    return out


# -- parser -----------------------------------------------------------------


class _Parser:
    def __init__(self, query: str, now: int) -> None:
        self.query = query
        self.toks = _tokens(query)
        self.i = 0
        self.now = now

    def peek(self) -> _Tok | None:
        return self.toks[self.i] if self.i < len(self.toks) else None

    def parse(self) -> Node | None:
        if not self.toks:
            return None
        node = self.or_expr()
        tok = self.peek()
        if tok is not None:
            raise SearchError(f"unexpected {tok.text!r}", tok.pos)
        return node

    def or_expr(self) -> Node:
        items = [self.and_expr()]
        while (tok := self.peek()) is not None and tok.kind == "word" and tok.text == "OR":
            self.i += 1
            if self.peek() is None or self.peek().kind == "rp":  # type: ignore[union-attr]
                raise SearchError("OR needs a term after it", tok.pos)
            items.append(self.and_expr())
        return items[0] if len(items) == 1 else Or(items)

    def and_expr(self) -> Node:
        items = [self.unary()]
        while (tok := self.peek()) is not None and tok.kind != "rp":
            if tok.kind == "word" and tok.text == "OR":
                break
            if tok.kind == "word" and tok.text == "AND":
                self.i += 1
                nxt = self.peek()
                if nxt is None or nxt.kind == "rp":
                    raise SearchError("AND needs a term after it", tok.pos)
            items.append(self.unary())
        return items[0] if len(items) == 1 else And(items)

    def unary(self) -> Node:
        tok = self.peek()
        if tok is None:
            raise SearchError("a term is missing at the end", len(self.query))
        if tok.kind == "word" and tok.text == "NOT":
            self.i += 1
            if self.peek() is None:
                raise SearchError("NOT needs a term after it", tok.pos)
            return Not(self.unary())
        if tok.kind == "word" and tok.text in ("AND", "OR"):
            raise SearchError(f"{tok.text} needs a term before it", tok.pos)
        if tok.kind == "lp":
            self.i += 1
            if (nxt := self.peek()) is not None and nxt.kind == "rp":
                raise SearchError("empty parentheses", tok.pos)
            node = self.or_expr()
            close = self.peek()
            if close is None or close.kind != "rp":
                raise SearchError("unclosed parenthesis", tok.pos)
            self.i += 1
            return node
        if tok.kind == "rp":
            raise SearchError("unmatched ')'", tok.pos)
        self.i += 1
        negate = tok.text.startswith("-") and len(tok.text) > 1
        text = tok.text[1:] if negate else tok.text
        pos = tok.pos + (1 if negate else 0)
        node = self.term(text, pos, tok.kind)
        return Not(node) if negate else node

    def term(self, text: str, pos: int, kind: str) -> Node:
        if kind == "phrase":
            return Text(_fts_phrase(_unquote(text.rstrip("*")), prefix=text.endswith("*")))
        m = re.match(r"([A-Za-z_][A-Za-z0-9_]*):(.*)$", text, re.S)
        if m:
            name = m.group(1).lower()
            value = m.group(2)
            if name in FIELDS:
                if value == "":
                    raise SearchError(f"{name}: needs a value", pos + len(m.group(1)) + 1)
                return self.field(ALIASES.get(name, name), value, pos + len(m.group(1)) + 1)
            if value and not value.startswith("/"):
                raise SearchError(
                    f"unknown field {m.group(1)!r} (quote the term to search it as text)", pos
                )
        if '"' in text:
            raise SearchError("a quote inside a word; quote the whole phrase", pos + text.index('"'))
        prefix = text.endswith("*") and len(text) > 1
        word = text.rstrip("*") if prefix else text
        if "*" in word:
            raise SearchError("'*' is only allowed at the end of a word", pos + word.index("*"))
        if not any(ch.isalnum() for ch in word):
            raise SearchError(f"{text!r} has nothing to search for", pos)
        return Text(_fts_phrase(word, prefix=prefix))

    def field(self, name: str, value: str, pos: int) -> Node:
        raw_value = value
        if value.startswith('"'):
            if not (len(value) >= 2 and value.endswith('"')):
                raise SearchError("unclosed quote", pos)
            value = _unquote(value)
        elif '"' in value:
            raise SearchError("a quote inside a value; quote the whole value", pos)
        if name in ("since", "until"):
            ts = _parse_time(value, self.now, pos)
            return Cond("e.ts >= ?" if name == "since" else "e.ts <= ?", [ts])
        if name == "source":
            op, pat = _like_or_eq(value)
            return Cond(f"e.source IN (SELECT id FROM sources WHERE name {op})", [pat])
        col = {"message": MESSAGE_SQL, "raw": RAW_SQL}.get(name, f"e.{name}")
        m = re.match(r"(>=|<=|>|<|=)(.*)$", raw_value)
        if m:
            if name not in NUMERIC_FIELDS:
                raise SearchError(f"{m.group(1)} works on numeric fields, not {name}", pos)
            try:
                num = int(m.group(2))
            except ValueError:
                raise SearchError(f"{m.group(2)!r} is not a number", pos + len(m.group(1))) from None
            return Cond(f"{col} {m.group(1)} ?", [num])
        if name in NUMERIC_FIELDS and "*" not in value:
            try:
                return Cond(f"{col} = ?", [int(value)])
            except ValueError:
                raise SearchError(f"{name} takes a number, got {value!r}", pos) from None
        if name == "src_ip" and "/" in value:
            return _cidr(value, pos)
        op, pat = _like_or_eq(value)
        if name in CODED_COLUMNS:  # the column holds terms.id: match the term's value
            codes = f"(SELECT id FROM terms WHERE value {op})"
            return Cond(f"{col} IN {codes}" if "*" in value else f"{col} = {codes}", [pat])
        return Cond(f"{col} {op}", [pat])


def _unquote(s: str) -> str:
    body = s[1:-1] if len(s) >= 2 and s[0] == '"' and s[-1] == '"' else s.strip('"')
    return re.sub(r"\\(.)", r"\1", body)


def _fts_phrase(text: str, *, prefix: bool = False) -> str:
    quoted = '"' + text.replace('"', '""') + '"'
    return quoted + ("*" if prefix else "")


def _like_or_eq(value: str) -> tuple[str, str]:
    """SQL comparison (after the column) and its parameter; `*` is a wildcard."""
    if "*" not in value:
        return "= ?", value
    escaped = value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return "LIKE ? ESCAPE '\\'", escaped.replace("*", "%")


_DURATION = re.compile(r"^(\d+)\s*(s|sec|m|min|h|d|w)$")
_UNITS = {"s": 1, "sec": 1, "m": 60, "min": 60, "h": 3600, "d": 86400, "w": 604800}


def _parse_time(value: str, now: int, pos: int) -> int:
    m = _DURATION.match(value)
    if m:
        return now - int(m.group(1)) * _UNITS[m.group(2)] * 1_000_000
    try:
        dt = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise SearchError(
            f"{value!r} is neither a duration like 15m/2h/7d nor an ISO time", pos
        ) from None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=timezone.utc)
    return dt_to_us(dt)


def _cidr(value: str, pos: int) -> Cond:
    try:
        net = ipaddress.ip_network(value, strict=False)
    except ValueError:
        raise SearchError(f"{value!r} is not a CIDR network", pos) from None
    sql = "ip_in_network(e.src_ip, ?)"
    params: list[object] = [str(net)]
    if net.version == 4 and net.prefixlen >= 8:
        # Narrow with the index: every address in 10.1.0.0/16 starts with "10.1.".
        octets = str(net.network_address).split(".")[: net.prefixlen // 8]
        prefix = ".".join(octets) + "."
        sql = f"e.src_ip >= ? AND e.src_ip < ? AND {sql}"
        params = [prefix, prefix[:-1] + "/", *params]
    return Cond(sql, params)


@lru_cache(maxsize=64)
def _network(text: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    return ipaddress.ip_network(text, strict=False)


@lru_cache(maxsize=4096)
def _address(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        pass
    parts = text.split(".")
    if len(parts) == 4 and all(p.isdigit() for p in parts):
        try:  # addresses written with leading zeros, e.g. 192.030.0.6
            return ipaddress.ip_address(".".join(str(int(p)) for p in parts))
        except ValueError:
            return None
    if text.lower().startswith("::ffff:"):
        return _address(text[7:])
    return None


def ip_in_network(ip: str | None, net: str) -> int:
    """SQL function: 1 when the address text `ip` lies in the network `net`."""
    if not ip:
        return 0
    addr = _address(ip)
    if addr is None:
        return 0
    network = _network(net)
    return int(addr.version == network.version and addr in network)


# -- compiling --------------------------------------------------------------


@dataclass
class CompiledQuery:
    """`fts` drives the query through the FTS5 index when not None."""

    fts: str | None
    where: str
    params: list[object]


def _fts_of(node: Node) -> str | None:
    """An FTS5 expression for a purely textual node, else None."""
    if isinstance(node, Text):
        return node.fts
    if isinstance(node, Or):
        parts = [_fts_of(n) for n in node.items]
        if all(p is not None for p in parts):
            return "(" + " OR ".join(p for p in parts if p) + ")"
        return None
    if isinstance(node, And):
        pos = [n for n in node.items if not isinstance(n, Not)]
        neg = [n.item for n in node.items if isinstance(n, Not)]
        pos_f = [_fts_of(n) for n in pos]
        neg_f = [_fts_of(n) for n in neg]
        if pos and all(p is not None for p in pos_f) and all(p is not None for p in neg_f):
            expr = "(" + " AND ".join(p for p in pos_f if p) + ")"
            for n in neg_f:
                expr = f"({expr} NOT {n})"
            return expr
    return None


_IN_FTS = "e.id IN (SELECT rowid FROM events_fts WHERE events_fts MATCH ?)"


def _sql_of(node: Node) -> tuple[str, list[object]]:
    fts = _fts_of(node)
    if fts is not None:
        return _IN_FTS, [fts]
    if isinstance(node, Cond):
        return "(" + node.sql + ")", list(node.params)
    if isinstance(node, Not):
        sql, params = _sql_of(node.item)
        return f"NOT coalesce({sql}, 0)", params
    items = node.items  # type: ignore[union-attr]
    joiner = " AND " if isinstance(node, And) else " OR "
    parts, params = [], []
    for n in items:
        s, p = _sql_of(n)
        parts.append(s)
        params.extend(p)
    return "(" + joiner.join(parts) + ")", params


def compile_query(query: str, *, now: int | None = None) -> CompiledQuery:
    """Parse and compile a query; raises SearchError with a position when malformed."""
    tree = _Parser(query, now if now is not None else now_us()).parse()
    if tree is None:
        return CompiledQuery(None, "1", [])
    # Drive through FTS5 when the query is textual, or an AND with textual parts.
    fts = _fts_of(tree)
    if fts is not None:
        return CompiledQuery(fts, "1", [])
    if isinstance(tree, And):
        textual = [n for n in tree.items if not isinstance(n, Not) and _fts_of(n) is not None]
        if textual:
            negatives = [n for n in tree.items if isinstance(n, Not) and _fts_of(n.item) is not None]
            rest = [n for n in tree.items if n not in textual and n not in negatives]
            fts = _fts_of(And(textual + negatives))
            if fts is not None:
                if not rest:
                    return CompiledQuery(fts, "1", [])
                sql, params = _sql_of(And(rest) if len(rest) > 1 else rest[0])
                return CompiledQuery(fts, sql, params)
    sql, params = _sql_of(tree)
    return CompiledQuery(None, sql, params)
