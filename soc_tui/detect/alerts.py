"""From hits to alerts: severity, group fields, deduplication and suppression.

Owns: the Alert value, and the rule that repeats of a hit (same rule, same
`x-soc.suppress.by` values) within the suppress window of the alert's last
hit bump its count and last_seen and add evidence instead of opening a new
alert. `informational` rules never become alerts. Rules without `x-soc.suppress`
deduplicate on (host, src_ip, user) within 10 minutes. Must not: do I/O or
import Textual (the worker stores what this decides).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from soc_tui.detect.engine import Hit, field_value
from soc_tui.detect.loader import Correlation

SEVERITY_RANK = {"informational": 0, "low": 1, "medium": 2, "high": 3, "critical": 4}
GROUP_FIELDS = ("host", "src_ip", "user")


@dataclass
class Alert:
    rule_id: str
    rule_name: str
    title: str
    severity: str
    first_seen: int
    last_seen: int
    host: str | None
    src_ip: str | None
    user: str | None
    tags: tuple[str, ...]
    dedup_key: str
    count: int = 1
    status: str = "new"
    id: int | None = None
    evidence: list[int] = field(default_factory=list)  # every evidence event id
    new_evidence: list[int] = field(default_factory=list)  # not yet stored
    known: set[int] = field(default_factory=set, repr=False)  # evidence, as a set

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id, "rule_id": self.rule_id, "rule_name": self.rule_name,
            "title": self.title, "severity": self.severity, "status": self.status,
            "count": self.count, "first_seen": self.first_seen, "last_seen": self.last_seen,
            "host": self.host, "src_ip": self.src_ip, "user": self.user,
            "tags": list(self.tags), "event_ids": list(self.evidence),
        }


def group_fields(hit: Hit) -> dict[str, Any]:
    """host / src_ip / user of the alert a hit raises. A correlation names only
    what it groups by (its last event's user is not "the" user of a brute
    force); the host comes from the event when not grouped."""
    if isinstance(hit.rule, Correlation):
        out = {f: hit.group.get(f) for f in GROUP_FIELDS}
        if out["host"] is None:
            out["host"] = hit.event.get("host")
        return out
    return {f: hit.event.get(f) for f in GROUP_FIELDS}


class Deduper:
    """Open alerts by (rule, key), so repeats merge. `load` seeds it from the
    store after a restart; `close` forgets an alert an analyst closed."""

    def __init__(self) -> None:
        self.open: dict[tuple[str, str], Alert] = {}

    def load(self, alerts: list[Alert]) -> None:
        for a in alerts:
            a.new_evidence = []
            self.open[(a.rule_id, a.dedup_key)] = a

    def forget(self, alert: Alert) -> None:
        self.open.pop((alert.rule_id, alert.dedup_key), None)

    def prune(self, now_ts: int, longest_window_us: int) -> None:
        """Forget alerts no hit can merge into any more (event time `now_ts`)."""
        old = [k for k, a in self.open.items() if now_ts - a.last_seen > longest_window_us]
        for k in old:
            del self.open[k]

    def add(self, hit: Hit) -> Alert | None:
        """The alert this hit raised or bumped; None for informational rules."""
        rule = hit.rule
        if rule.level == "informational":
            return None
        g = group_fields(hit)
        key = json.dumps(
            [g[f] if f in g else field_value(hit, f) for f in rule.suppress.by], default=str
        )
        slot = (rule.rule_id, key)
        alert = self.open.get(slot)
        if alert is not None and alert.status != "closed" and (
            hit.ts - alert.last_seen <= rule.suppress.window_us
        ):
            alert.count += 1
            alert.last_seen = max(alert.last_seen, hit.ts)
            alert.first_seen = min(alert.first_seen, hit.ts)
            known = alert.known
            if len(known) != len(alert.evidence):
                known.update(alert.evidence)
            fresh = [i for i in hit.evidence if i not in known]
            known.update(fresh)
            alert.evidence.extend(fresh)
            alert.new_evidence.extend(fresh)
            return alert
        alert = Alert(
            rule_id=rule.rule_id, rule_name=rule.label, title=rule.title,
            severity=rule.level, first_seen=hit.ts, last_seen=hit.ts,
            host=g["host"], src_ip=g["src_ip"], user=g["user"], tags=rule.attack or rule.tags,
            dedup_key=key, evidence=list(hit.evidence), new_evidence=list(hit.evidence),
        )
        self.open[slot] = alert
        return alert
