"""Rule loading: Sigma YAML files into compiled rules and correlations.

Owns: reading rule files and directories (multi-document files, Sigma v1
`action: global/reset/repeat` collections), validating each rule, the `x-soc:`
extensions, and resolving correlation references into a checked graph. A rule
that cannot load becomes a LoadError (file, rule, reason); the others load.
Must not: touch SQLite or import Textual.
"""

from __future__ import annotations

import copy
import hashlib
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import yaml

from soc_tui.detect.fields import RuleEvent, Tags, logsource_matches
from soc_tui.detect.sigma import RuleError, compile_detection

LEVELS = ("informational", "low", "medium", "high", "critical")
CORRELATION_TYPES = ("event_count", "value_count", "temporal", "temporal_ordered")
DEFAULT_DEDUP_WINDOW_US = 10 * 60 * 1_000_000
DEFAULT_DEDUP_BY = ("host", "src_ip", "user")

_SPAN = re.compile(r"^\s*(\d+)\s*([smhdwM]|ms)\s*$")
_SPAN_US = {"ms": 1_000, "s": 1_000_000, "m": 60_000_000, "h": 3_600_000_000,
            "d": 86_400_000_000, "w": 604_800_000_000, "M": 30 * 86_400_000_000}


def parse_span(value: Any, what: str = "timespan") -> int:
    """`30s`, `1m`, `2h`, `7d`, `1w` (and `M` for 30 days) in microseconds."""
    m = _SPAN.match(str(value))
    if not m:
        raise RuleError(f"{what} {value!r} is not a duration like 30s, 5m, 1h, 7d")
    return int(m.group(1)) * _SPAN_US[m.group(2)]


@dataclass
class Suppress:
    window_us: int
    by: tuple[str, ...]


@dataclass
class NewValue:
    fields: tuple[str, ...]
    learn_us: int = 0


@dataclass
class RuleBase:
    """What detection rules and correlations share."""

    path: str
    index: int  # document number within the file
    rule_id: str
    name: str | None
    title: str
    level: str
    tags: tuple[str, ...]
    description: str
    status: str | None
    enabled: bool
    suppress: Suppress
    new_value: NewValue | None
    doc: dict[str, Any] = field(repr=False)
    silent: bool = False  # referenced by a correlation without generate: true

    @property
    def label(self) -> str:
        return self.name or self.rule_id

    @property
    def attack(self) -> tuple[str, ...]:
        return tuple(t for t in self.tags if t.lower().startswith("attack."))


@dataclass
class Rule(RuleBase):
    product: str | None = None
    service: str | None = None
    category: str | None = None
    match: Callable[[RuleEvent], bool] = field(default=lambda rev: False, repr=False)

    def sees(self, tags: Tags) -> bool:
        return logsource_matches(self.product, self.service, self.category, tags)


@dataclass
class Correlation(RuleBase):
    kind: str = "event_count"
    refs: tuple[str, ...] = ()
    group_by: tuple[str, ...] = ()
    timespan_us: int = 0
    condition: dict[str, Any] = field(default_factory=dict)
    value_field: str | None = None
    generate: bool = False
    aliases: dict[str, dict[str, str]] = field(default_factory=dict)
    inputs: list[RuleBase] = field(default_factory=list, repr=False)


@dataclass
class LoadError:
    path: str
    rule: str  # title, name or `#N` when the document has neither
    reason: str

    def __str__(self) -> str:
        return f"{self.path}: {self.rule}: {self.reason}"


@dataclass
class RuleSet:
    rules: list[Rule]
    correlations: list[Correlation]
    errors: list[LoadError]

    def all(self) -> list[RuleBase]:
        return [*self.rules, *self.correlations]

    @property
    def digest(self) -> str:
        """Identifies the rule set: two loads of the same files give the same
        digest (a parse process and the worker check they run the same rules)."""
        data = json.dumps(
            sorted([r.rule_id, r.enabled, r.doc] for r in self.all()), sort_keys=True, default=str
        )
        return hashlib.sha256(data.encode("utf-8")).hexdigest()

    def find(self, ref: str) -> RuleBase | None:
        for r in self.all():
            if ref in (r.rule_id, r.name, r.title):
                return r
        return None


# -- documents -------------------------------------------------------------------


def _merge(base: Any, over: Any) -> Any:
    if isinstance(base, dict) and isinstance(over, dict):
        out = dict(base)
        for k, v in over.items():
            out[k] = _merge(base[k], v) if k in base else copy.deepcopy(v)
        return out
    return copy.deepcopy(over)


def _documents(path: Path) -> list[tuple[int, dict[str, Any] | None, str | None]]:
    """(index, document, error) for each rule document of a file, after
    applying Sigma collection actions (global/reset/repeat)."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        return [(0, None, f"cannot read: {exc}")]
    try:
        raw_docs = list(yaml.safe_load_all(text))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        return [(0, None, f"bad YAML{where}: {problem}")]
    out: list[tuple[int, dict[str, Any] | None, str | None]] = []
    glob: dict[str, Any] = {}
    prev: dict[str, Any] | None = None
    for i, doc in enumerate(raw_docs):
        if doc is None:
            continue
        if not isinstance(doc, dict):
            out.append((i, None, "a rule document must be a map"))
            continue
        action = doc.get("action")
        if action == "global":
            glob = {k: v for k, v in doc.items() if k != "action"}
            continue
        if action == "reset":
            glob = {}
            continue
        if action == "repeat":
            if prev is None:
                out.append((i, None, "action: repeat with no document before it"))
                continue
            doc = _merge(prev, {k: v for k, v in doc.items() if k != "action"})
        elif action is not None:
            out.append((i, None, f"unknown collection action {action!r}"))
            continue
        else:
            doc = _merge(glob, doc) if glob else doc
        prev = doc
        out.append((i, doc, None))
    return out


def rule_files(paths: list[str | Path]) -> list[Path]:
    """Every .yml/.yaml under the given files and directories, sorted."""
    files: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            files.extend(sorted(x for x in p.rglob("*") if x.suffix in (".yml", ".yaml") and x.is_file()))
        else:
            files.append(p)
    return files


def _label(doc: dict[str, Any] | None, index: int) -> str:
    if doc:
        for key in ("name", "title", "id"):
            if isinstance(doc.get(key), str) and doc[key]:
                return doc[key]
    return f"#{index + 1}"


def _common(path: Path, index: int, doc: dict[str, Any]) -> dict[str, Any]:
    title = doc.get("title")
    if not isinstance(title, str) or not title.strip():
        raise RuleError("no title")
    level = str(doc.get("level") or "medium").lower()
    if level not in LEVELS:
        raise RuleError(f"level {doc.get('level')!r} is not one of {', '.join(LEVELS)}")
    name = doc.get("name")
    if name is not None and not isinstance(name, str):
        raise RuleError("name must be a string")
    rid = doc.get("id")
    rule_id = str(rid) if rid else (name or f"{path.name}#{index + 1}")
    tags = doc.get("tags") or []
    if not isinstance(tags, list):
        raise RuleError("tags must be a list")
    xsoc = doc.get("x-soc") or {}
    if not isinstance(xsoc, dict):
        raise RuleError("x-soc must be a map")
    unknown = set(xsoc) - {"suppress", "new_value", "enabled"}
    if unknown:
        raise RuleError(f"x-soc: unknown key(s) {', '.join(sorted(map(str, unknown)))}")
    sup = xsoc.get("suppress")
    if sup is None:
        suppress = Suppress(DEFAULT_DEDUP_WINDOW_US, DEFAULT_DEDUP_BY)
    else:
        if not isinstance(sup, dict) or "window" not in sup:
            raise RuleError("x-soc.suppress needs {window, by}")
        by = sup.get("by") or []
        by = [by] if isinstance(by, str) else by
        suppress = Suppress(parse_span(sup["window"], "x-soc.suppress.window"), tuple(map(str, by)))
    nv = xsoc.get("new_value")
    new_value = None
    if nv is not None:
        if not isinstance(nv, dict) or not nv.get("fields"):
            raise RuleError("x-soc.new_value needs fields")
        fields = nv["fields"]
        fields = [fields] if isinstance(fields, str) else fields
        learn = parse_span(nv["learn"], "x-soc.new_value.learn") if nv.get("learn") else 0
        new_value = NewValue(tuple(map(str, fields)), learn)
    enabled = xsoc.get("enabled", True)
    if not isinstance(enabled, bool):
        raise RuleError("x-soc.enabled must be true or false")
    return dict(
        path=str(path), index=index, rule_id=rule_id, name=name, title=title.strip(),
        level=level, tags=tuple(map(str, tags)), description=str(doc.get("description") or ""),
        status=doc.get("status"), enabled=enabled, suppress=suppress, new_value=new_value, doc=doc,
    )


def _rule(path: Path, index: int, doc: dict[str, Any]) -> Rule:
    common = _common(path, index, doc)
    ls = doc.get("logsource")
    if not isinstance(ls, dict):
        raise RuleError("no logsource")
    def lsval(key: str) -> str | None:
        v = ls.get(key)
        return None if v is None else str(v).lower()
    match = compile_detection(doc.get("detection"))
    return Rule(**common, product=lsval("product"), service=lsval("service"),
                category=lsval("category"), match=match)


def _correlation(path: Path, index: int, doc: dict[str, Any]) -> Correlation:
    common = _common(path, index, doc)
    c = doc["correlation"]
    if not isinstance(c, dict):
        raise RuleError("correlation must be a map")
    kind = c.get("type")
    if kind not in CORRELATION_TYPES:
        raise RuleError(f"correlation type {kind!r} is not one of {', '.join(CORRELATION_TYPES)}")
    refs = c.get("rules")
    refs = [refs] if isinstance(refs, str) else refs
    if not refs or not isinstance(refs, list):
        raise RuleError("correlation needs rules: [...]")
    group_by = c.get("group-by") or []
    group_by = [group_by] if isinstance(group_by, str) else group_by
    if "timespan" not in c:
        raise RuleError("correlation needs a timespan")
    span = parse_span(c["timespan"])
    cond = c.get("condition") or {}
    if not isinstance(cond, dict):
        raise RuleError("correlation condition must be a map like {gte: 5}")
    value_field = None
    if kind in ("event_count", "value_count"):
        ops = {k: v for k, v in cond.items() if k in ("gt", "gte", "lt", "lte", "eq")}
        bad = set(cond) - set(ops) - {"field"}
        if bad or not ops:
            raise RuleError(f"correlation condition {cond!r}: use gt, gte, lt, lte or eq")
        for k, v in ops.items():
            if not isinstance(v, int) or isinstance(v, bool):
                raise RuleError(f"correlation condition {k}: {v!r} is not a whole number")
        if not any(k in ops for k in ("gt", "gte", "eq")):
            raise RuleError(
                "a correlation condition with only an upper bound (lt/lte) fires on absence,"
                " which needs a window to close; not supported"
            )
        if kind == "value_count":
            value_field = cond.get("field")
            if not isinstance(value_field, str):
                raise RuleError("value_count needs condition.field")
        cond = ops
    elif len(refs) < 2:
        raise RuleError(f"{kind} needs at least two rules")
    aliases = c.get("aliases") or {}
    if not isinstance(aliases, dict) or not all(isinstance(v, dict) for v in aliases.values()):
        raise RuleError("aliases must map a name to {rule: field}")
    generate = c.get("generate", doc.get("generate", False))
    return Correlation(
        **common, kind=kind, refs=tuple(map(str, refs)), group_by=tuple(map(str, group_by)),
        timespan_us=span, condition=cond, value_field=value_field, generate=bool(generate),
        aliases={str(k): {str(a): str(b) for a, b in v.items()} for k, v in aliases.items()},
    )


def load_rules(paths: list[str | Path]) -> RuleSet:
    """Load every rule under `paths`; problems become RuleSet.errors."""
    rules: list[Rule] = []
    corrs: list[Correlation] = []
    errors: list[LoadError] = []
    for path in rule_files(paths):
        for index, doc, err in _documents(path):
            if err is not None:
                errors.append(LoadError(str(path), _label(doc, index), err))
                continue
            assert doc is not None
            try:
                if "correlation" in doc:
                    corrs.append(_correlation(path, index, doc))
                elif "filter" in doc and "detection" not in doc:
                    raise RuleError("Sigma filter documents are not supported")
                else:
                    rules.append(_rule(path, index, doc))
            except RuleError as exc:
                errors.append(LoadError(str(path), _label(doc, index), str(exc)))
            except (TypeError, ValueError, AttributeError) as exc:  # malformed structure
                errors.append(LoadError(str(path), _label(doc, index), f"malformed rule: {exc}"))
    _unique(rules, corrs, errors)
    _link(rules, corrs, errors)
    return RuleSet(rules, corrs, errors)


def _unique(rules: list[Rule], corrs: list[Correlation], errors: list[LoadError]) -> None:
    """Two rules may not share an id or a name: the second is refused."""
    seen: dict[str, RuleBase] = {}
    for lst in (rules, corrs):
        keep = []
        for r in lst:
            clash = next((seen[k] for k in (r.rule_id, r.name) if k and k in seen), None)
            if clash is not None:
                errors.append(LoadError(r.path, r.label, f"id or name already used by {clash.path}"))
                continue
            for k in (r.rule_id, r.name):
                if k:
                    seen[k] = r
            keep.append(r)
        lst[:] = keep


def _link(rules: list[Rule], corrs: list[Correlation], errors: list[LoadError]) -> None:
    """Resolve correlation references; drop correlations whose references are
    unknown or circular (they become errors); mark silent base rules."""
    by_ref: dict[str, RuleBase] = {}
    for r in [*rules, *corrs]:
        by_ref[r.rule_id] = r
        if r.name:
            by_ref[r.name] = r
    ok: list[Correlation] = []
    bad: set[int] = set()
    changed = True
    # Iterate: a correlation that references a dropped correlation is dropped too.
    pending = list(corrs)
    while changed:
        changed = False
        for c in pending:
            if id(c) in bad:
                continue
            missing = [ref for ref in c.refs if ref not in by_ref or id(by_ref[ref]) in bad]
            if missing:
                errors.append(LoadError(c.path, c.label, f"unknown rule reference(s): {', '.join(missing)}"))
                bad.add(id(c))
                changed = True
    for c in corrs:
        if id(c) in bad:
            continue
        c.inputs = [by_ref[ref] for ref in c.refs]
        ok.append(c)
    # Cycles: a correlation reachable from itself.
    def reaches(start: Correlation, target: Correlation, seen: set[int]) -> bool:
        for inp in start.inputs:
            if inp is target:
                return True
            if isinstance(inp, Correlation) and id(inp) not in seen:
                seen.add(id(inp))
                if reaches(inp, target, seen):
                    return True
        return False

    final = []
    for c in ok:
        if reaches(c, c, set()):
            errors.append(LoadError(c.path, c.label, "circular correlation references"))
        else:
            final.append(c)
    corrs[:] = final
    for c in corrs:
        if not c.generate:
            for inp in c.inputs:
                inp.silent = True
    for c in corrs:
        if c.generate:
            for inp in c.inputs:
                inp.silent = False
