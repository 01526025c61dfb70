"""The rule worker: runs the rules over stored events after its cursor.

Owns: the loop that reads events in id order after the committed cursor,
runs the engine, turns hits into alerts (Deduper), and commits the alert
changes, first-seen values, the new cursor and the replay start in one
transaction (`soc_tui.store.alerts.commit_detection`). On start it restores
what a restart (even SIGKILL) lost: open alerts from the store, and
correlation windows by re-reading, with `warm=True` (state only), the events
from the oldest one the windows held at the last commit up to the cursor.
The writer also hands it each committed batch (`pack_offer`, then `offer` or
`take_offer`): the rows a parse process matched, with their rules, so it need
not read those events back nor match them again. `soc-tui ingest` and
`collect` run it in a process of its own (`soc_tui.detect.process`); tests
and `catch_up` callers run it in a thread or inline. Must not: import
Textual.
"""

from __future__ import annotations

import pickle
import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import Any, Callable, Iterable

from soc_tui.detect.alerts import GROUP_FIELDS, Alert, Deduper, group_fields
from soc_tui.detect.engine import Engine, FirstSeen, future_limit, input_field
from soc_tui.detect.fields import keys_read
from soc_tui.detect.loader import Rule, RuleSet
from soc_tui.model import now_us, us_to_iso
from soc_tui.store.alerts import (
    DetectionChanges, StoredAlert, alert_status, commit_detection, detection_cursor,
    CursorMoved, first_seen_ts, open_alerts, replay_start,
)
from soc_tui.store.db import open_db
from soc_tui.store.events import ROW_COLUMNS, Batch, row_columns, row_event
from soc_tui.store.reader import StoreReader
from soc_tui.store.triage import (
    Suppression, list_suppressions, rule_settings, rule_settings_mark,
)

CHUNK = 2000
REPLAY_EVERY = 20  # commits between recomputing the replay start
MAX_OFFERED = 100_000  # rows of committed batches held for the worker
# A backfill's offers share commits: each commit holds the store's write
# lock, which the writer then waits for (the rule process committed once per
# batch, and the writer waited ~1.3 s per million lines for it). An offer this
# big comes from a backfill (a live tail's batches are small and keep their
# own commit, for latency); it waits up to MERGE_WAIT for the next one, and
# up to MERGE_EVENTS events are evaluated and committed together.
BACKFILL_OFFER = 2_500
MERGE_WAIT = 0.3
MERGE_EVENTS = 20_000


def _suppressed_by(suppressions: list[Suppression], hit: Any) -> int | None:
    """The id of the first analyst suppression a hit matches, if any."""
    rule = hit.rule
    group = group_fields(hit)
    for s in suppressions:
        if s.matches(rule.name or "", rule.rule_id, group):
            return s.id
    return None


class _StoreFirstSeen(FirstSeen):
    """new_value state in SQLite: values this worker saw wait in `new` for the
    chunk's commit (`take`); stored ones are looked up and cached."""

    def __init__(self, conn: Any) -> None:
        super().__init__()
        self.conn = conn
        self.cache: dict[tuple[str, str], int] = {}

    def stored(self, rule_id: str, key: str) -> int | None:
        k = (rule_id, key)
        ts = self.cache.get(k)
        if ts is None:
            ts = first_seen_ts(self.conn, rule_id, key)
            if ts is not None:
                self._cache(k, ts)
        return ts

    def _cache(self, k: tuple[str, str], ts: int) -> None:
        if len(self.cache) > 100_000:
            self.cache.clear()
        self.cache[k] = ts

    def take(self) -> list[tuple[str, str, int]]:
        """What to commit; from then on it counts as stored."""
        out = [(r, v, ts) for (r, v), ts in self.new.items()]
        for k, ts in self.new.items():
            self._cache(k, ts)
        self.new = {}
        return out


class PastFirstSeen(FirstSeen):
    """new_value state for a backtest: values the store first saw before
    `before` (µs) count as seen; what the backtest itself sees stays in
    memory, so it stores nothing."""

    def __init__(self, conn: Any, before: int) -> None:
        super().__init__()
        self.conn = conn
        self.before = before

    def stored(self, rule_id: str, key: str) -> int | None:
        ts = first_seen_ts(self.conn, rule_id, key)
        return ts if ts is not None and ts < self.before else None


def _alert_of(s: StoredAlert) -> Alert:
    return Alert(
        rule_id=s.rule_id, rule_name=s.rule_name, title=s.title, severity=s.severity,
        first_seen=s.first_seen, last_seen=s.last_seen, host=s.host, src_ip=s.src_ip,
        user=s.user, tags=tuple(s.tags), dedup_key=s.dedup_key, count=s.count,
        status=s.status, id=s.id,
    )


def stage2_columns(ruleset: RuleSet) -> tuple[str, ...]:
    """The row columns the worker reads of an event whose detection rules are
    known (a parse process sends only these of a matched row): its time,
    weight and alert group fields, and what a rule's `new_value` or
    suppress `by`, or a correlation's group-by or counted field, names.
    Every rule of the set counts, enabled or not (an analyst may switch one
    on)."""
    names: set[str] = set(GROUP_FIELDS)
    for r in ruleset.all():
        names.update(r.suppress.by)
        if r.new_value is not None:
            names.update(r.new_value.fields)
    for c in ruleset.correlations:
        fields = [*c.group_by, *([c.value_field] if c.value_field else [])]
        for inp in c.inputs:
            names.update(input_field(c, f, inp) for f in fields)
    keys = {"ts", "repeat"}
    for name in names:
        keys.update(keys_read(name))
    return row_columns(keys)


# One row the worker is to evaluate: (event id, source, row, matched rule ids
# or None, the row's columns).
_Item = tuple[int, str, tuple[Any, ...], "tuple[str, ...] | None", "tuple[str, ...]"]


@dataclass
class _Offered:
    """What the worker keeps of a committed batch: ids first..last and the
    rows it must evaluate."""

    first: int
    last: int
    items: list[_Item]
    newest: int
    ingested: int


# (first id, last id, newest ts, ingested_at, parts): parts are (the part's
# first id, source, rows the rules need: [(index in part, matched rule ids or
# None, row)], or that list pickled as the parse process made it, and the
# columns of those rows).
Offer = tuple[int, int, int, int, list[tuple[int, str, Any, tuple[str, ...]]]]


def pack_offer(first_id: int, batch: Batch, digest: str) -> Offer:
    """What the writer hands the rules of a batch it committed (ids from
    `first_id`): of the rows the parse step matched against the rule set
    `digest`, only those that matched (already pickled when a parse process
    made them); of any other rows, all. Cheap: it runs in the writer thread."""
    parts: list[tuple[int, str, Any, tuple[str, ...]]] = []
    event_id = first_id
    newest = 0
    for part in batch.written:
        if part.max_ts > newest:
            newest = part.max_ts
        payload: Any
        columns = ROW_COLUMNS
        if part.matched is not None and part.rules_digest == digest:
            payload = part.matched
            columns = part.matched_columns or ROW_COLUMNS
        elif part.matches is not None and part.rules_digest == digest:
            rows = part.unpacked()
            payload = [(i, ids, rows[i]) for i, ids in part.matches.items()]
        else:
            payload = [(i, None, row) for i, row in enumerate(part.unpacked())]
        parts.append((event_id, part.source, payload, columns))
        event_id += part.count
    return (first_id, event_id - 1, newest, batch.ingested_at, parts)


class RuleWorker:
    """Evaluates the rules over the events of one database.

    `catch_up()` evaluates everything stored so far and returns; `start()` runs
    a thread that keeps doing so (woken by `offer()` after each committed
    batch, and polling otherwise) until `stop()`."""

    def __init__(
        self,
        db_path: str,
        ruleset: RuleSet,
        *,
        chunk: int = CHUNK,
        poll_interval: float = 0.25,
        on_alert: Callable[[Alert, bool], None] | None = None,
    ) -> None:
        self.db_path = db_path
        self.ruleset = ruleset
        self.chunk = chunk
        self.poll_interval = poll_interval
        self.on_alert = on_alert  # (alert, is_new), called after commit
        self.reader = StoreReader(db_path, create=False)
        self.conn = open_db(db_path, create=False, writer=True)
        self.first_seen = _StoreFirstSeen(self.conn)
        # The rule files as loaded (what a parse process matched against,
        # before any analyst's switch (rule_settings) overrides `enabled`).
        self._digest = ruleset.digest
        self._file_enabled = {r.rule_id: r.enabled for r in ruleset.all()}
        self._settings_mark: tuple[int, int | None] | None = None
        self.engine = self._new_engine()
        self.dedup = Deduper()
        self.cursor = 0
        self.evaluated = 0
        self.alerts_raised = 0
        self.error: BaseException | None = None
        self.failures = 0
        self.last_failure = ""
        self._commits = 0
        self._replay_cached: int | None = None
        self._restored = False
        self._wake = threading.Event()  # an offer came, or stop()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._offered: deque[_Offered] = deque()
        self._offered_rows = 0
        self._offer_lock = threading.Lock()
        self.offers_dropped = 0
        self._longest_window = max(
            (r.suppress.window_us for r in ruleset.all()), default=0
        )

    def _new_engine(self) -> Engine:
        """An engine over the rules enabled now: the files' choice, overridden
        by what analysts switched in this database."""
        self._settings_mark = rule_settings_mark(self.conn)
        switched = rule_settings(self.conn)
        for rule in self.ruleset.all():
            rule.enabled = switched.get(rule.rule_id, self._file_enabled[rule.rule_id])
        return Engine(self.ruleset, self.first_seen)

    # -- restart ---------------------------------------------------------------

    def restore(self) -> None:
        """Load the cursor and open alerts; rebuild correlation windows by
        replaying, state only, the events from the oldest one they held at
        the last commit up to the cursor."""
        if self._restored:
            return
        self._restored = True
        self.cursor = detection_cursor(self.conn)
        if not self.cursor:
            return
        stored = replay_start(self.conn)
        last = self.reader.search(f"id:{self.cursor}", limit=1)
        oldest = last[0]["ts"] if last else 0
        if stored is not None:
            query = f"id:>={stored} id:<={self.cursor}" if stored <= self.cursor else ""
        elif last and self.engine.replay_span_us:  # written before replay_from was kept
            since = us_to_iso(last[0]["ts"] - self.engine.replay_span_us)
            query = f"id:<={self.cursor} since:{since}"
        else:
            query = ""
        if query and self.engine.states:
            for ev in self.reader.iter_search(query):
                oldest = min(oldest, ev["ts"])
                self.engine.process(ev, warm=True)
        self.dedup.load([_alert_of(a) for a in open_alerts(self.conn, oldest - self._longest_window)])

    def _replay_from(self) -> int | None:
        """What the next commit records as the replay start. Scanning every
        window costs, so it is recomputed every REPLAY_EVERY commits: an
        older value stays valid (windows only gain newer ids), it only makes
        a restart replay a little more."""
        if not self.engine.states:
            return None
        self._commits += 1
        if self._commits % REPLAY_EVERY == 1 or self._replay_cached is None:
            live = self.engine.oldest_live_id()
            self._replay_cached = live if live is not None else self.cursor + 1
        return self._replay_cached

    def _reset_after_failure(self) -> None:
        """The chunk did not commit but memory moved on: rebuild it (if the
        store still answers) so a retry does not count those events twice."""
        try:
            self._reset()
        except Exception:  # noqa: BLE001 - the original error is what matters
            self._restored = False

    def _reset(self) -> None:
        """Drop all in-memory state (another worker moved the cursor, or a
        commit failed) and restore it from the store."""
        self.first_seen = _StoreFirstSeen(self.conn)
        self.engine = self._new_engine()
        self.dedup = Deduper()
        self._replay_cached = None
        with self._offer_lock:
            self._offered.clear()
            self._offered_rows = 0
        self._restored = False
        self.restore()

    # -- evaluation ----------------------------------------------------------------

    def step(self, merge_wait: float = 0.0) -> int:
        """Evaluate the next committed work: a batch the writer offered (when it
        continues from the cursor; with the offers waiting after it, and for a
        backfill's the next one up to `merge_wait` s away), else the next chunk
        read from the store. Returns how many events were evaluated."""
        if rule_settings_mark(self.conn) != self._settings_mark:
            self._reset()  # an analyst switched a rule: rebuild from the store, then go on
        self.restore()
        while self._offered:
            off = self._offered[0]
            if off.first > self.cursor + 1 and off.last > self.cursor:
                break  # a gap: read it from the store first
            with self._offer_lock:
                self._offered.popleft()
                self._offered_rows -= len(off.items)
            if off.last <= self.cursor:  # already evaluated from the store
                continue
            cursor = self.cursor
            start = max(off.first, cursor + 1)
            by_id = self.engine.rules_by_id
            items: list[tuple[dict[str, Any], list[Rule] | None]] = []
            newest = off.newest
            while True:
                items.extend(
                    (row_event(row, i, src, off.ingested, parse_extra=False, columns=cols),
                     None if ids is None else by_id(ids))
                    for i, src, row, ids, cols in off.items if i > cursor
                )
                newest = max(newest, off.newest)
                if off.last - start + 1 >= MERGE_EVENTS:
                    break
                if merge_wait and not self._offered and off.last - off.first + 1 >= BACKFILL_OFFER:
                    self._await_offer(merge_wait)
                nxt = self._offered[0] if self._offered else None
                if nxt is None or nxt.first != off.last + 1:
                    break
                with self._offer_lock:
                    self._offered.popleft()
                    self._offered_rows -= len(nxt.items)
                off = nxt
            return self._evaluate(items, off.last, off.last - start + 1, newest)
        start = self.cursor
        events = self.reader.search(f"id:>{start} id:<={start + self.chunk}", limit=None)
        if not events:
            return 0
        return self._evaluate([(ev, None) for ev in events], events[-1]["id"], len(events),
                              max(ev["ts"] for ev in events))

    def _await_offer(self, timeout: float) -> None:
        """Wait until an offer comes (or stop() is called), at most `timeout` s."""
        deadline = time.monotonic() + timeout
        while not self._offered and not self._stop.is_set():
            left = deadline - time.monotonic()
            if left <= 0:
                return
            self._wake.wait(left)
            self._wake.clear()

    def offer(self, first_id: int, batch: Batch) -> None:
        """A batch the writer just committed (ids from first_id), so the worker
        need not read it back. Called in the writer thread."""
        self.take_offer(pack_offer(first_id, batch, self._digest))

    def take_offer(self, offer: Offer) -> None:
        """Queue what `pack_offer` made of a committed batch. Beyond a bound
        the offer is dropped: the store has it all anyway."""
        first, last, newest, ingested, parts = offer
        items: list[_Item] = []
        loads = pickle.loads
        for part_first, src, payload, cols in parts:
            rows = loads(payload) if payload.__class__ is bytes else payload
            items.extend((part_first + i, src, row, ids, cols) for i, ids, row in rows)
        with self._offer_lock:
            if self._offered_rows + len(items) > MAX_OFFERED:
                self.offers_dropped += 1
                return
            self._offered.append(_Offered(first, last, items, newest, ingested))
            self._offered_rows += len(items)
        self._wake.set()

    def _evaluate(
        self,
        items: Iterable[tuple[dict[str, Any], list[Rule] | None]],
        cursor: int,
        n: int,
        newest: int,
    ) -> int:
        """Run the rules on events in id order (matched rules given, or None to
        match here) and commit the alert changes with the new cursor; `n`
        events up to id `cursor` are then evaluated, the newest at `newest`."""
        self._drop_closed()
        changed: dict[int, Alert] = {}
        fresh: set[int] = set()
        hits: dict[str, list[int]] = {}
        suppressions = list_suppressions(self.conn, active_at=now_us())
        suppressed: dict[int, tuple[int, int]] = {}
        engine = self.engine
        for ev, matched in items:
            if matched is None:
                matched = engine.match(ev)
            if not matched:
                continue
            for hit in engine.feed(ev, matched):
                h = hits.setdefault(hit.rule.rule_id, [0, 0])
                h[0] += 1
                h[1] = max(h[1], hit.ts)
                if suppressions:
                    by = _suppressed_by(suppressions, hit)
                    if by is not None:  # counted on the analyst's suppression, not raised
                        held, last = suppressed.get(by, (0, 0))
                        suppressed[by] = (held + 1, max(last, hit.ts))
                        continue
                alert = self.dedup.add(hit)
                if alert is None:
                    continue
                if alert.id is None and id(alert) not in changed:
                    fresh.add(id(alert))
                changed[id(alert)] = alert
        try:
            commit_detection(self.conn, DetectionChanges(
                cursor=cursor,
                alerts=list(changed.values()),
                first_seen=self.first_seen.take(),
                rule_hits={k: (v[0], v[1]) for k, v in hits.items()},
                suppressed=suppressed,
                expected=self.cursor,
                replay_from=self._replay_from(),
            ))
        except CursorMoved:
            # Another worker evaluated these events: start over from what it stored.
            self._reset()
            return 0
        except BaseException:
            self._reset_after_failure()
            raise
        self.cursor = cursor
        self.evaluated += n
        self.alerts_raised += len(fresh)
        self.dedup.prune(min(newest, future_limit()), self._longest_window)
        if self.on_alert is not None:
            for key, alert in changed.items():
                self.on_alert(alert, key in fresh)
        return n

    def _drop_closed(self) -> None:
        """Alerts an analyst closed no longer take repeats."""
        ids = [a.id for a in self.dedup.open.values() if a.id is not None]
        if not ids:
            return
        status = alert_status(self.conn, ids)
        for a in list(self.dedup.open.values()):
            if a.id is not None and status.get(a.id, "closed") == "closed":
                self.dedup.forget(a)

    def catch_up(self) -> int:
        """Evaluate every stored event after the cursor; returns how many."""
        total = 0
        while n := self.step():
            total += n
        return total

    # -- background thread -----------------------------------------------------------

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="soc-tui-rules", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        """Evaluate as events arrive. A failing chunk (database busy beyond the
        timeout, a bug) is retried with backoff from restored state, so one bad
        moment does not switch detection off; `failures` and `last_failure`
        say what happened (the collector reports them)."""
        backoff = 0.5
        while not self._stop.is_set():
            try:
                if self.step(MERGE_WAIT):
                    backoff = 0.5
                    continue
            except Exception as exc:  # noqa: BLE001 - counted, reported, retried
                self.failures += 1
                self.last_failure = f"{type(exc).__name__}: {exc}"
                self._stop.wait(backoff)
                backoff = min(backoff * 2, 30.0)
                continue
            except BaseException as exc:  # noqa: BLE001 - reported by stop()
                self.error = exc
                return
            self._wake.wait(self.poll_interval)
            self._wake.clear()

    def stop(self, *, drain: bool = True) -> None:
        """Stop the thread; with drain, evaluate what is stored first."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        if self.error is not None:
            err, self.error = self.error, None
            raise err
        if drain:
            self.catch_up()

    def close(self) -> None:
        self.reader.close()
        self.conn.close()
