"""Table-driven message extractors: one regex, a fixed action/outcome, fields from its groups.

Owns: `rule()`, which turns one row of a program's message table into an
extractor, and `first()`, which tries several extractors in order. A row says
which regex the message must match (at its start) and which of its groups is
the user, the target user, the peer host and port, and which extra keys come
from groups or are fixed. The tables themselves live with their programs
(`sshd`, `auth`); a message whose fields need more than "match, then copy
groups" keeps a hand-written extractor there, and both kinds share the
signature `(ev, msg) -> bool` (True when the message was recognised).

What a matched row does, in this order (the order extra keys are added in is
part of the result): action and outcome; user; target_user; peer (which may
add extra["src_host"]); the `fixed` extra keys; the `extra` keys taken from
groups; the `flags` keys.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from soc_tui.model import Event

from .util import add_extra, set_peer

Extractor = Callable[[Event, str], bool]


def rule(
    regex: re.Pattern | None,
    action: str | None = None,
    outcome: str | None = None,
    *,
    user: int | str | None = None,
    target: int | None = None,
    host: int | None = None,
    port: int | None = None,
    peer: Callable = set_peer,
    fixed: dict | None = None,
    extra: dict | None = None,
    flags: dict | None = None,
    companion: int | None = None,
    not_a_name: str | None = None,
) -> Extractor:
    """One table row as an extractor.

    regex: matched at the start of the message; None: the row always applies.
    action, outcome: set together when the row applies (action None: left alone).
    user: the group holding the acting user, set when it is non-empty and not
      `not_a_name`; or a fixed name (a str).
    target: the group holding target_user.
    host, port: groups handed to `peer` (set_peer by default) as
      peer(ev, host) or peer(ev, host, port).
    fixed: {extra key: value}, added as is.
    extra: {extra key: group or (group, convert)}; a group that did not take
      part adds nothing.
    flags: {extra key: group}; the key is set to True when that group matched
      non-empty text.
    companion: a group whose non-empty match makes the line a companion of
      another one (its fields are kept, but it gets no action).
    """
    groups = [g for g in (target, host, port, companion) if g is not None]
    groups += [g if isinstance(g, int) else g[0] for g in (extra or {}).values()]
    groups += list((flags or {}).values())
    if isinstance(user, int):
        groups.append(user)
    if regex is None and groups:
        raise ValueError("a row without a regex has no groups to take fields from")
    if regex is not None and any(not 0 < g <= regex.groups for g in groups):
        raise ValueError(f"group out of range for {regex.pattern!r}")
    if port is not None and host is None:
        raise ValueError("port without host")

    match = regex.match if regex is not None else None
    user_group = user if isinstance(user, int) else None
    user_name = user if isinstance(user, str) else None
    fixed_items = tuple(fixed.items()) if fixed else None
    extra_items = (
        tuple((k, g, None) if isinstance(g, int) else (k, g[0], g[1]) for k, g in extra.items())
        if extra
        else None
    )
    flag_items = tuple(flags.items()) if flags else None

    def apply(ev: Event, m: str) -> bool:
        if match is None:
            r = None
        else:
            r = match(m)
            if r is None:
                return False
        if action is not None and (companion is None or not r.group(companion)):
            ev.action = action
            ev.outcome = outcome
        if user_group is not None:
            v = r.group(user_group)
            if v and v != not_a_name:
                ev.user = v
        elif user_name is not None:
            ev.user = user_name
        if target is not None:
            ev.target_user = r.group(target)
        if host is not None:
            if port is None:
                peer(ev, r.group(host))
            else:
                peer(ev, r.group(host), r.group(port))
        if fixed_items is not None:
            for k, v in fixed_items:
                add_extra(ev, k, v)
        if extra_items is not None:
            for k, g, convert in extra_items:
                v = r.group(g)
                if v is not None:
                    add_extra(ev, k, v if convert is None else convert(v))
        if flag_items is not None:
            for k, g in flag_items:
                if r.group(g):
                    add_extra(ev, k, True)
        return True

    apply.__qualname__ = apply.__name__ = f"rule<{action or (regex.pattern[:24] if regex else '*')}>"
    return apply


def first(*extractors: Extractor) -> Extractor:
    """An extractor that tries `extractors` in order and stops at the first that applies."""

    def apply(ev: Event, m: str) -> bool:
        for fn in extractors:
            if fn(ev, m):
                return True
        return False

    return apply
