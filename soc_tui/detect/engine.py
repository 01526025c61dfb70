"""The rule engine: events in, hits out (detection rules, then correlations).

Owns: logsource routing, running compiled rules on each event, `x-soc.new_value`
first-seen filtering, and the correlation state machines (event_count,
value_count, temporal, temporal_ordered, chains), all in event time. Turning
hits into alerts is `soc_tui.detect.alerts`; reading and writing SQLite is the
worker's job through `soc_tui.store`. Must not: do I/O or import Textual.

Correlation windows are sliding and keyed by the group-by values: an
event_count rule hits on every event at which the window (t - timespan, t]
ending at it satisfies the condition. That makes the result a function of the
events alone, so a restarted worker that re-reads the last `replay_span_us` of
events (with `warm=True`: state only, no hits) continues exactly where it was.
A hit's evidence is the window's events not yet given as evidence for the
same group. Events arriving out of time order are placed by time; windows
drop entries older than the group's newest time minus the timespan.
"""

from __future__ import annotations

import bisect
import json
import time
from collections import deque
from types import MappingProxyType
from typing import Any, Callable, Mapping

from soc_tui.detect.fields import RuleEvent, Tags, column_of, getter
from soc_tui.detect.loader import Correlation, Rule, RuleBase, RuleSet
from soc_tui.detect.prefilter import Route, rule_gate
from soc_tui.model import now_us


_NO_GROUP: Mapping[str, Any] = MappingProxyType({})


class Hit:
    """A rule or correlation matched. `event` is the (last) event that made it
    match; `group` the correlation's group-by values; `evidence` event ids."""

    __slots__ = ("rule", "ts", "event", "evidence", "group", "weight")

    def __init__(
        self,
        rule: RuleBase,
        ts: int,
        event: dict[str, Any],
        evidence: list[int],
        group: Mapping[str, Any] = _NO_GROUP,
        weight: int = 1,
    ) -> None:
        self.rule = rule
        self.ts = ts
        self.event = event
        self.evidence = evidence
        self.group = group
        self.weight = weight

    def __repr__(self) -> str:
        return f"Hit({self.rule.label!r}, ts={self.ts}, evidence={self.evidence})"


LEARN_KEY = ""  # the value under which a new_value rule's learning start is kept


class FirstSeen:
    """Where `new_value` rules remember the values they have seen: what this
    run saw is held in `new`; `stored` (overridden by the worker and the
    backtest) answers for what was seen before. The default keeps it all in
    memory (`rules test`, tests)."""

    def __init__(self) -> None:
        self.new: dict[tuple[str, str], int] = {}

    def stored(self, rule_id: str, key: str) -> int | None:
        """When an earlier run first saw the value (None: never)."""
        return None

    def first_ts(self, rule_id: str, key: str) -> int | None:
        """When the value was first seen (None: never)."""
        ts = self.new.get((rule_id, key))
        return ts if ts is not None else self.stored(rule_id, key)

    def remember(self, rule_id: str, key: str, ts: int) -> None:
        self.new.setdefault((rule_id, key), ts)

    def learning_since(self, rule_id: str, ts: int) -> int:
        """The time the rule started learning (recording `ts` if it had not)."""
        start = self.first_ts(rule_id, LEARN_KEY)
        if start is None:
            self.new[(rule_id, LEARN_KEY)] = start = ts
        return start


# -- correlation state -------------------------------------------------------------

SWEEP_EVERY = 20_000  # hits between sweeps of idle correlation groups
LATE_US = 3_600_000_000  # how late (event time) a hit may arrive and still see its group
FUTURE_US = 86_400_000_000  # how far ahead of the clock an event time may be and still count


class _Window:
    """One group's sliding window of an event_count / value_count correlation."""

    __slots__ = ("entries", "total", "values", "seq", "reported", "newest", "late")

    def __init__(self, distinct: bool) -> None:
        # (ts, seq, weight, value, evidence ids)
        self.entries: deque[tuple[int, int, int, Any, list[int]]] = deque()
        self.total = 0
        # value_count only: how many entries hold each value
        self.values: dict[Any, int] | None = {} if distinct else None
        self.seq = 0
        self.reported = 0  # entries with seq <= reported were given as evidence
        self.late = False  # an entry was placed out of seq order since the last report
        self.newest = -(1 << 62)

    @classmethod
    def of(cls, entry: tuple[int, int, int, Any, list[int]], distinct: bool) -> _Window:
        """The window of a group that held one entry (seq 1, not reported)."""
        w = cls(distinct)
        w.entries.append(entry)
        w.seq = 1
        w.total = entry[2]
        w.newest = entry[0]
        if w.values is not None:
            w.values[entry[3]] = 1
        return w


def input_field(corr: Correlation, name: str, inp: RuleBase) -> str:
    """The field the hits of a correlation's input carry the correlation's
    field `name` in (its `aliases`, else the name itself)."""
    alias = corr.aliases.get(name)
    if alias is not None:
        return alias.get(inp.name or "", alias.get(inp.rule_id, name))
    return name


class _CorrState:
    def __init__(self, corr: Correlation) -> None:
        self.corr = corr
        # group -> its window (counting; a group of one hit holds just that
        # entry) or one deque per input (temporal). A single group-by field
        # keys by its value, several by a tuple.
        self.groups: dict[Any, Any] = {}
        # temporal groups -> time of their last hit (a counting window keeps its own)
        self.touched: dict[Any, int] = {}
        self.newest = -(1 << 62)
        self.fed = SWEEP_EVERY  # hits left until the next sweep
        self.counting = corr.kind in ("event_count", "value_count")
        self.last_ordered = len(corr.inputs) - 1 if corr.kind == "temporal_ordered" else -1
        self.distinct = corr.kind == "value_count"
        self.span = corr.timespan_us
        self.single = len(corr.group_by) == 1
        # Per input: how to read each group-by field (and the value field), and
        # for a single group-by field the event column it is, if it is one
        # (read inline: the common case costs no call).
        self.readers: list[list[Callable[[Hit], Any]]] = []
        self.value_readers: list[Callable[[Hit], Any] | None] = []
        self.columns: list[str | None] = []
        self.value_columns: list[str | None] = []
        for inp in corr.inputs:
            self.readers.append([self._reader(f, inp) for f in corr.group_by])
            self.value_readers.append(self._reader(corr.value_field, inp) if corr.value_field else None)
            self.columns.append(self._column(corr.group_by[0], inp) if self.single else None)
            self.value_columns.append(
                self._column(corr.value_field, inp) if corr.value_field else None)
        cond = corr.condition
        self.test = _condition(cond) if cond else (lambda n: True)

    def _column(self, name: str, inp: RuleBase) -> str | None:
        """The event column an input's hits carry `name` in, if it is one."""
        return None if isinstance(inp, Correlation) else column_of(input_field(self.corr, name, inp))

    def _reader(self, name: str, inp: RuleBase) -> Callable[[Hit], Any]:
        name = input_field(self.corr, name, inp)
        if isinstance(inp, Correlation):
            return lambda h: h.group.get(name)
        get = getter(name)

        def read(h: Hit) -> Any:
            v = get(h.event)
            if isinstance(v, tuple):
                v = v[0] if v else None
            return v

        return read

    def key(self, h: Hit, idx: int) -> Any:
        """The group of a hit on input `idx` (None when a group-by field is
        missing): the value of a single group-by field, else a tuple."""
        if self.single:
            col = self.columns[idx]
            v = h.event.get(col) if col is not None else self.readers[idx][0](h)
            if v is None or v == "":
                return None
            return v if v.__hash__ is not None else _hashable(v)
        vals = tuple(r(h) for r in self.readers[idx])
        if any(v is None or v == "" for v in vals):
            return None
        return tuple(v if v.__hash__ is not None else _hashable(v) for v in vals)

    def feed(self, h: Hit, idx: int) -> Hit | None:
        """Count a hit on input `idx`; the correlation's hit when it fires. The
        counting path is written out in one function: it runs for every hit of
        every input rule, and calls are most of its cost."""
        col = self.columns[idx]
        if col is not None:  # key(), inline for the usual group-by column
            key = h.event.get(col)
            if key.__class__ is not str:  # (a str is hashable: the usual case)
                if key is None:
                    return None
                if key.__hash__ is None:
                    key = _hashable(key)
            elif not key:
                return None
        else:
            key = self.key(h, idx)
            if key is None:
                return None  # cannot attribute the hit to a group
        t = h.ts
        if t > self.newest:
            # A broken timestamp would hold the group's window shut. The cached
            # limit only grows, so an event within it is within the limit.
            if t > _future[0] and t > future_limit():
                return None
            self.newest = t
        self.fed -= 1
        if not self.fed:
            self.fed = SWEEP_EVERY
            self.sweep()
        if not self.counting:
            if idx == self.last_ordered and key not in self.groups:
                # temporal_ordered: the last rule's hit in a group with no
                # earlier one completes nothing, and no later hit reads it
                # (the logins of every address that never failed, say)
                return None
            if t > self.touched.get(key, t - 1):
                self.touched[key] = t
            return self._temporal(h, idx, key)
        value = None
        if self.distinct:  # value_count
            col = self.value_columns[idx]
            if col is not None:
                value = h.event.get(col)
            else:
                reader = self.value_readers[idx]
                value = reader(h) if reader else None
            if value.__class__ is not str:
                if value is None:
                    return None
                if value.__hash__ is None:  # a list or map from a JSON log
                    value = _hashable(value)
        groups = self.groups
        w = groups.get(key)
        if w is None:
            # The group's first hit. Most groups of a backfill (addresses seen
            # once) never get a second: unless this hit alone meets the
            # condition, the group is just its entry until then, not a window.
            if not self.test(1 if self.distinct else h.weight):
                groups[key] = (t, 1, h.weight, value, h.evidence)
                return None
            w = groups[key] = _Window(self.distinct)
        elif w.__class__ is tuple:  # the second hit: the entry becomes a window
            w = groups[key] = _Window.of(w, self.distinct)
        values = w.values
        weight = h.weight
        seq = w.seq = w.seq + 1
        entry = (t, seq, weight, value, h.evidence)
        entries = w.entries
        in_order = t >= w.newest
        if in_order:
            entries.append(entry)
            w.newest = t
        else:  # late: place by time (rare; linear in the window)
            w.late = True
            pos = bisect.bisect_right([e[0] for e in entries], t)
            entries.insert(pos, entry)
        w.total += weight
        if values is not None:
            values[value] = values.get(value, 0) + 1
        low = w.newest - self.span
        while entries and entries[0][0] <= low:
            old = entries.popleft()
            w.total -= old[2]
            if values is not None:
                left = values[old[3]] - 1
                if left:
                    values[old[3]] = left
                else:
                    del values[old[3]]
        if in_order:
            n = len(values) if values is not None else w.total
        else:
            inside = [e for e in entries if t - self.span < e[0] <= t]
            n = len({e[3] for e in inside}) if values is not None else sum(e[2] for e in inside)
        if not self.test(n):
            return None
        evidence: list[int] = []
        if w.late:  # seq order is not position order: look at every entry
            for e in entries:
                if e[1] > w.reported:
                    evidence.extend(e[4])
            w.late = False
        else:
            for e in reversed(entries):
                if e[1] <= w.reported:
                    break
                evidence.extend(e[4])
        w.reported = w.seq
        evidence.sort()
        return Hit(self.corr, t, h.event, evidence, self._group(key), 1)

    def sweep(self) -> None:
        """Forget groups with no hit for longer than the timespan plus
        LATE_US before the newest hit: their windows are empty for any event
        that is not later than that. Keeps memory bounded by the groups
        active recently, not by every address ever seen. A counting window
        knows its newest hit; temporal groups are timed in `touched`."""
        horizon = self.newest - self.span - LATE_US
        if self.counting:  # (a group of one hit is that entry: its time first)
            stale = [k for k, w in self.groups.items()
                     if (w[0] if w.__class__ is tuple else w.newest) < horizon]
        else:
            stale = [k for k, ts in self.touched.items() if ts < horizon]
        for k in stale:
            self.touched.pop(k, None)
            self.groups.pop(k, None)

    def _group(self, key: Any) -> dict[str, Any]:
        if self.single:
            return {self.corr.group_by[0]: key}
        return dict(zip(self.corr.group_by, key))

    def _temporal(self, h: Hit, idx: int, key: Any) -> Hit | None:
        n = len(self.corr.inputs)
        g = self.groups.get(key)
        if g is None:
            g = self.groups[key] = [deque() for _ in range(n)]
        t = h.ts
        dq = g[idx]
        if dq and t < dq[-1][0]:  # late: keep each deque in time order
            dq.insert(bisect.bisect_right([e[0] for e in dq], t), (t, h.evidence))
        else:
            dq.append((t, h.evidence))
        low = t - self.span
        for dq in g:
            while dq and dq[0][0] < low:
                dq.popleft()
        if self.corr.kind == "temporal":
            if not all(g):
                return None
            evidence = sorted({i for dq in g for i in dq[-1][1]})
            return Hit(self.corr, t, h.event, evidence, self._group(key), 1)
        if idx != n - 1:
            return None
        bound = t
        chosen: list[list[int]] = [h.evidence]
        for j in range(n - 2, -1, -1):
            cand = [e for e in g[j] if low <= e[0] <= bound]
            if not cand:
                return None
            for e in cand:
                chosen.append(e[1])
            bound = cand[-1][0]
        evidence = sorted({i for ids in chosen for i in ids})
        return Hit(self.corr, t, h.event, evidence, self._group(key), 1)


_future = [0, 0]  # [limit, when computed (monotonic s)]


def future_limit() -> int:
    """Event times beyond this (wall clock + FUTURE_US) are not believed:
    correlations skip such hits (recomputed at most once a second)."""
    now = time.monotonic()
    if now - _future[1] > 1.0:
        _future[0] = now_us() + FUTURE_US
        _future[1] = now
    return _future[0]


def _hashable(v: Any) -> str:
    """A group-by or counted value that is a list or map (JSON logs), as text."""
    return json.dumps(v, sort_keys=True, default=str)


def _condition(cond: dict[str, int]) -> Callable[[int], bool]:
    if len(cond) == 1:  # the usual {gte: N}: one bound method, no closure
        ((op, v),) = cond.items()
        return {"gt": v.__lt__, "gte": v.__le__, "lt": v.__gt__, "lte": v.__ge__,
                "eq": v.__eq__}[op]
    checks = []
    for op, v in cond.items():
        checks.append({
            "gt": lambda n, v=v: n > v, "gte": lambda n, v=v: n >= v,
            "lt": lambda n, v=v: n < v, "lte": lambda n, v=v: n <= v,
            "eq": lambda n, v=v: n == v,
        }[op])
    return lambda n: all(c(n) for c in checks)


def _chain_span(c: Correlation) -> int:
    inner = [_chain_span(i) for i in c.inputs if isinstance(i, Correlation)]
    return c.timespan_us + (max(inner) if inner else 0)


# -- the engine ----------------------------------------------------------------------


class Engine:
    """Runs a RuleSet over events in id order; `process` returns the hits."""

    def __init__(
        self, ruleset: RuleSet, first_seen: FirstSeen | None = None, *, prefilter: bool = True
    ) -> None:
        self.ruleset = ruleset
        self.rules = [r for r in ruleset.rules if r.enabled]
        self.correlations = [c for c in ruleset.correlations if c.enabled]
        self.first_seen = first_seen if first_seen is not None else FirstSeen()
        self._routes: dict[Any, Route] = {}  # by Tags.key()
        self._by_tags: dict[Tags, Route] = {}
        # prefilter=False evaluates every routed rule (tests compare the two).
        self._gates = {id(r): rule_gate(r) for r in self.rules} if prefilter else {}
        self._consumers: dict[int, list[tuple[_CorrState, int]]] = {}
        self.states: list[_CorrState] = []
        for c in self.correlations:
            if not all(i.enabled for i in c.inputs):
                continue
            st = _CorrState(c)
            self.states.append(st)
            for idx, inp in enumerate(c.inputs):
                self._consumers.setdefault(id(inp), []).append((st, idx))
        self.replay_span_us = max((_chain_span(s.corr) for s in self.states), default=0)
        self._by_id = {r.rule_id: r for r in self.rules}
        self._by_ids: dict[tuple[str, ...], list[Rule]] = {}
        self.hit_counts: dict[str, int] = {}  # rule id -> hits

    def route(self, rev: RuleEvent) -> Route:
        # Tags objects are shared per event shape (`event_tags`), so the usual
        # lookup is by identity; equal tags made apart share their route.
        tags = rev.tags
        route = self._by_tags.get(tags)
        if route is None:
            key = tags.key()
            route = self._routes.get(key)
            if route is None:
                rules = [r for r in self.rules if r.sees(tags)]
                route = self._routes[key] = Route(rules, self._gates)
            if len(self._by_tags) < 4096:
                self._by_tags[tags] = route
        return route

    def active(self, rule: Rule) -> bool:
        """Whether any event seen so far was of the rule's logsource."""
        return any(rule in route.rules for route in self._routes.values())

    def match(self, ev: dict[str, Any]) -> list[Rule]:
        """Stage 1, stateless: the detection rules that match one event. It may
        run elsewhere (the parse process of a backfill) and its result be
        handed to `feed`."""
        rev = RuleEvent(ev)
        route = self._by_tags.get(rev.tags) or self.route(rev)  # (the usual case inline)
        return [rule for rule in route.candidates(rev) if rule.match(rev)]

    def feed(self, ev: dict[str, Any], matched: list[Rule], *, warm: bool = False) -> list[Hit]:
        """Stage 2, in id order: new_value, correlations and hits for an event
        whose matching rules are known. With warm=True only correlation state
        is updated (replay after a restart) and no hits are returned."""
        out: list[Hit] = []
        ts = ev["ts"]
        weight = ev.get("repeat") or 1
        i = ev.get("id")  # one list for all its hits: evidence lists are never changed
        ids = [i] if i is not None else []
        for rule in matched:
            self._emit(Hit(rule, ts, ev, ids, _NO_GROUP, weight), out, warm)
        return out

    def process(self, ev: dict[str, Any], *, warm: bool = False) -> list[Hit]:
        """Run every rule on one event (`match`, then `feed`)."""
        matched = self.match(ev)
        return self.feed(ev, matched, warm=warm) if matched else []

    def oldest_live_id(self) -> int | None:
        """The smallest event id any correlation window still holds (what a
        restart must replay from to rebuild them exactly)."""
        best: int | None = None
        for st in self.states:
            for g in st.groups.values():
                if isinstance(g, tuple):  # a counting group of one entry
                    dqs = [(g,)]
                else:
                    dqs = [g.entries] if isinstance(g, _Window) else g
                for dq in dqs:
                    for e in dq:
                        ids = e[-1]
                        if ids:
                            m = min(ids)
                            if best is None or m < best:
                                best = m
        return best

    def rules_by_id(self, ids: tuple[str, ...]) -> list[Rule]:
        """Enabled rules for ids a `match` elsewhere returned (unknown ids
        skipped). The list is shared by equal `ids`: callers must not change it."""
        got = self._by_ids.get(ids)
        if got is None:
            table = self._by_id
            got = [table[i] for i in ids if i in table]
            if len(self._by_ids) < 4096:
                self._by_ids[ids] = got
        return got

    def _emit(self, hit: Hit, out: list[Hit], warm: bool) -> None:
        rule = hit.rule
        nv = rule.new_value
        if nv is not None:
            key = json.dumps([field_value(hit, f) for f in nv.fields], default=str)
            if warm:
                # Replaying: only the hit that was new at the time went on.
                if self.first_seen.first_ts(rule.rule_id, key) != hit.ts:
                    return
            else:
                if self.first_seen.first_ts(rule.rule_id, key) is not None:
                    return
                self.first_seen.remember(rule.rule_id, key, hit.ts)
            if nv.learn_us and hit.ts < self.first_seen.learning_since(rule.rule_id, hit.ts) + nv.learn_us:
                return
        if not warm:
            counts = self.hit_counts
            rid = rule.rule_id
            counts[rid] = counts.get(rid, 0) + 1  # (a plain dict: Counter's += is slower)
            if not rule.silent:
                out.append(hit)
        consumers = self._consumers.get(id(rule))
        if consumers:
            for st, idx in consumers:
                res = st.feed(hit, idx)
                if res is not None:
                    self._emit(res, out, warm)



def field_value(hit: Hit, name: str) -> Any:
    """A field of a hit: its group-by value, else the event's (first candidate)."""
    if name in hit.group:
        return hit.group[name]
    v = getter(name)(hit.event)
    if isinstance(v, tuple):
        v = v[0] if v else None
    return v
