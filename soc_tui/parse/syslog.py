"""Syslog envelopes: RFC 3164 (BSD), ISO-timestamp syslog (rsyslog's default on
Debian), RFC 5424, and a bare `host prog[pid]: msg` form without a time.

RFC 3164, tolerant: optional `<PRI>`; `Jun  7`/`Jun 7`/`Jun 07`; optional year
before or after the time; optional fraction; a missing host
(`Nov 23 21:50:37 sshd[8148]: ...`); tags `prog[pid]:`, `prog:`, `prog[pid]`
(no colon), `[sshd]:`, `[sshd]`, `sshd(pam_unix)[123]:`, `postfix/smtpd[9]:`.
Lines whose tag cannot be found keep host and time; the rest is the message.

ISO syslog: `2026-03-01T10:15:02.123456+00:00 host prog[pid]: msg` (offset
optional; without one the source's zone applies; `Z` accepted; a space instead
of `T` accepted).

RFC 5424: `<PRI>1 TIMESTAMP HOST APP PROCID MSGID [SD...] MSG`; `-` means absent;
structured data goes to extra["sd"] as {sd_id: {param: value}}; MSGID to
extra["msgid"]; a BOM before MSG is dropped; a non-numeric PROCID goes to
extra["procid"].

Bare (journal short output without a time, relays): `srv sshd[13709]: msg` or
`sshd[13709]: msg`; a `[pid]` and colon are required; ts is the ingest time
(FLAG_TS_GUESSED).

Every form sets level (and extra facility/severity) from `<PRI>` when present,
and hands (app, message) to `extract.extract`.
"""

from __future__ import annotations

import re

from soc_tui.model import Event

from .extract import extract
from .timeutil import MONTHS, frac_us, offset_seconds, offset_us, parse_iso
from .util import add_extra, apply_pri

# host: a token without brackets/colons; tag alternatives: "[name]" or "name",
# then an optional "[pid]", then ":" or (only after a "]") nothing.
_HOST = r"(?:([^\s\[\]:]+) +)?"
_TAG = (
    r"(?:(?:\[([^\]\s]+)\]|([^\s\[\]:]+))(?:\[(\d*)\])?"
    r"(?::(?: +|$)|(?<=\])(?: +|$)))?"
)
RE_3164 = re.compile(
    r" *(?:<(\d{1,3})>)?([A-Za-z]{3}) +(\d{1,2}) (?:(\d{4}) )?(\d\d):(\d\d):(\d\d)(?:[.,](\d{1,9}))?"
    r"(?: (\d{4})(?= ))?(?: +|$)" + _HOST + _TAG + r"(.*)",
    re.S,
)
# The commonest RFC 3164 form, `Mon dd hh:mm:ss host tag[pid]: msg`, matched
# in about 60% of the time RE_3164 takes. Where it matches, RE_3164 gives the
# same fields (a host of four digits would be RE_3164's year: left to it).
RE_3164_COMMON = re.compile(
    r"([A-Z][a-z]{2}) +(\d{1,2}) (\d\d):(\d\d):(\d\d) (?!\d{4} )([^\s\[\]:]+) ([^\s\[\]:]+)"
    r"\[(\d+)\]:(?: +|$)(.*)",
    re.S,
)
RE_ISO = re.compile(
    r"(?:<(\d{1,3})>)?(\d{4})-(\d\d)-(\d\d)[T ](\d\d):(\d\d):(\d\d)(?:[.,](\d{1,9}))?"
    r"(Z|z|[+-]\d\d:?\d\d)? +" + _HOST + _TAG + r"(.*)",
    re.S,
)
RE_BARE = re.compile(
    r"(?:<(\d{1,3})>)?" + r"(?:([^\s\[\]:]+) +)?([^\s\[\]:]+)\[(\d+)\]:(?: +|$)(.*)",
    re.S,
)
RE_5424 = re.compile(
    r"<(\d{1,3})>(\d{1,2}) (\S+) (\S+) (\S+) (\S+) (\S+)(?: (.*))?$",
    re.S,
)
_SD_ELEMENT_RE = re.compile(r'\[([^\s\]=]+)((?:\s+[^\s=\]]+="[^"\\]*(?:\\.[^"\\]*)*")*)\s*\]')
_SD_PARAM_RE = re.compile(r'([^\s=\]]+)="([^"\\]*(?:\\.[^"\\]*)*)"')
_SD_UNESCAPE_RE = re.compile(r'\\([\\"\]])')


def _finish(p, ev: Event, app: str | None, msg: str) -> Event:
    ev.message = msg
    if msg:
        extract(ev, app, msg, p)
    return ev


def _tagged(p, line: str, ts: int, flags: int, pri, host, app, pid, msg: str) -> Event:
    """The event of a `[<PRI>]... [host] tag[pid]: msg` line (RFC 3164, ISO, bare) once
    its time is known: the parser's host when the line names none, level from <PRI>."""
    ev = Event(ts, line, p.source_id, host or p.host, app, int(pid) if pid else None)
    ev.flags = flags
    if pri is not None:
        apply_pri(ev, pri)
    return _finish(p, ev, app, msg)


def env_3164(p, line: str, flags: int, now: int) -> Event | None:
    c = line[:1]
    if not c or not (c.isalpha() or c == "<" or c == " "):
        return None
    r = RE_3164_COMMON.match(line)
    if r is not None:
        mon, d, hh, mi, ss, host, tag, pid, msg = r.groups()
        pri = y = fr = None
    else:
        r = RE_3164.match(line)
        if r is None:
            return None
        pri, mon, d, y1, hh, mi, ss, fr, y2, host, tag_b, tag, pid, msg = r.groups()
        y = y1 or y2
        tag = tag or tag_b
    mo = MONTHS.get(mon)
    if mo is None:
        return None
    try:
        us = frac_us(fr) if fr else 0
        if y:
            ts = p.tctx.local_us(int(y), mo, int(d), int(hh), int(mi), int(ss), us)
        else:
            ts = p.tctx.yearless_us(mo, int(d), int(hh), int(mi), int(ss), us, now)[0]
    except (ValueError, OverflowError):
        ts = now
        flags |= 4
    return _tagged(p, line, ts, flags, pri, host, tag, pid, msg)


def env_iso(p, line: str, flags: int, now: int) -> Event | None:
    c = line[:1]
    if not c or not (c.isdigit() or c == "<"):
        return None
    r = RE_ISO.match(line)
    if r is None:
        return None
    pri, y, mo, d, hh, mi, ss, fr, off, host, tag_b, tag, pid, msg = r.groups()
    try:
        us = frac_us(fr) if fr else 0
        if off is None:
            ts = p.tctx.local_us(int(y), int(mo), int(d), int(hh), int(mi), int(ss), us)
        else:
            off_s = p.off_cache.get(off)
            if off_s is None:
                off_s = offset_seconds(off)
                if off_s is None:
                    raise ValueError(off)
                p.off_cache[off] = off_s
            ts = offset_us(int(y), int(mo), int(d), int(hh), int(mi), int(ss), us, off_s)
    except (ValueError, OverflowError):
        ts = now
        flags |= 4
    return _tagged(p, line, ts, flags, pri, host, tag or tag_b, pid, msg)


def _parse_sd(s: str) -> tuple[dict | None, str | None]:
    """Structured data at the start of `s` -> ({id: {k: v}}, rest after SD) or (None, None)."""
    sd: dict = {}
    pos = 0
    n = len(s)
    while pos < n and s[pos] == "[":
        m = _SD_ELEMENT_RE.match(s, pos)
        if m is None:
            return None, None
        params = {}
        for k, v in _SD_PARAM_RE.findall(m.group(2)):
            params[k] = _SD_UNESCAPE_RE.sub(r"\1", v) if "\\" in v else v
        sd[m.group(1)] = params
        pos = m.end()
    if pos < n:
        if s[pos] != " ":
            return None, None
        pos += 1
    return sd, s[pos:]


def env_5424(p, line: str, flags: int, now: int) -> Event | None:
    if line[:1] != "<":
        return None
    r = RE_5424.match(line)
    if r is None:
        return None
    pri, ver, ts_s, host, app, procid, msgid, rest = r.groups()
    if ver != "1":
        return None
    ts = None if ts_s == "-" else parse_iso(ts_s, p.tctx)
    if ts is None:
        if ts_s != "-":
            return None  # not a 5424 timestamp: let the other envelopes try
        ts = now
        flags |= 4
    rest = rest or ""
    sd = None
    if rest.startswith("-"):
        msg = rest[2:] if rest.startswith("- ") else rest[1:]
    elif rest.startswith("["):
        sd, msg = _parse_sd(rest)
        if sd is None:
            return None
    else:
        return None
    if msg.startswith("\ufeff"):
        msg = msg[1:]
    app = None if app == "-" else app
    pid = None
    ev = Event(ts, line, p.source_id, None if host == "-" else host, app)
    if host == "-":
        ev.host = p.host
    ev.flags = flags
    apply_pri(ev, pri)
    if procid != "-":
        if procid.isdigit():
            pid = int(procid)
            ev.pid = pid
        else:
            add_extra(ev, "procid", procid)
    if msgid != "-":
        add_extra(ev, "msgid", msgid)
    if sd:
        add_extra(ev, "sd", sd)
    return _finish(p, ev, app, msg)


def env_bare(p, line: str, flags: int, now: int) -> Event | None:
    r = RE_BARE.match(line)
    if r is None:
        return None
    pri, host, app, pid, msg = r.groups()
    return _tagged(p, line, now, flags | 4, pri, host, app, pid, msg)


SAMPLES: list[tuple[str, dict]] = [
    (
        "Mar  1 10:15:02 web-01 sshd[2211]: Server listening on 0.0.0.0 port 22.",
        {"ts": "2026-03-01T10:15:02Z", "host": "web-01", "app": "sshd", "pid": 2211,
         "message": "Server listening on 0.0.0.0 port 22.", "flags": 0, "extra": None},
    ),
    (
        "<38>Mar 1 10:15:03 web-01 sshd[2212]: Accepted password for alice from 198.51.100.23 port 50000 ssh2",
        {"ts": "2026-03-01T10:15:03Z", "level": "info", "extra.facility": "auth",
         "extra.severity": 6, "action": "ssh_login"},
    ),
    (
        "Dec 31 23:59:59 web-01 cron[1]: (root) CMD (true)",
        {"ts": "2025-12-31T23:59:59Z", "action": "cron_command"},
    ),
    (
        "Mar 01 2026 10:15:04 web-01 app[7]: with a year",
        {"ts": "2026-03-01T10:15:04Z", "app": "app", "message": "with a year"},
    ),
    (
        "Mar  1 10:15:05.250 web-01 app: fraction",
        {"ts": "2026-03-01T10:15:05.250000Z", "app": "app", "pid": None, "message": "fraction"},
    ),
    (
        "Mar  1 10:15:06 sshd[8148]: Connection closed by 203.0.113.30 [preauth]",
        {"host": None, "app": "sshd", "pid": 8148, "src_ip": "203.0.113.30"},
    ),
    (
        "Mar  1 10:15:07 [sshd]: User root from 203.0.113.31 not allowed because not listed in AllowUsers",
        {"host": None, "app": "sshd", "action": "ssh_user_not_allowed", "src_ip": "203.0.113.31"},
    ),
    (
        "Mar  1 10:15:08 web-01 [sshd] User root from 203.0.113.32 not allowed because listed in DenyUsers",
        {"host": "web-01", "app": "sshd", "src_ip": "203.0.113.32"},
    ),
    (
        "Mar  1 10:15:09 web-01 kernel: [  970.699396] usb 1-1: new high-speed USB device",
        {"app": "kernel", "message": "usb 1-1: new high-speed USB device", "extra.uptime": 970.699396},
    ),
    (
        "Mar  1 10:15:10 web-01 last message repeated 3 times",
        {"app": None, "message": "last message repeated 3 times", "extra.last_message_repeated": 3,
         "repeat": 1},
    ),
    (
        "Mar  1 10:15:11 web-01 postfix/smtpd[991]: connect from unknown[203.0.113.33]",
        {"app": "postfix/smtpd", "pid": 991},
    ),
    (
        "2026-03-01T10:15:02.123456+00:00 web-01 sshd[2213]: Invalid user guest from 203.0.113.34 port 40404",
        {"ts": "2026-03-01T10:15:02.123456Z", "host": "web-01", "app": "sshd",
         "action": "ssh_invalid_user", "src_ip": "203.0.113.34"},
    ),
    (
        "2026-03-01T11:15:02+01:00 web-01 CRON[3]: (root) CMD (run-parts /etc/cron.daily)",
        {"ts": "2026-03-01T10:15:02Z", "action": "cron_command"},
    ),
    (
        '<38>1 2026-03-01T05:15:02.5-05:00 web-01.example sshd 2214 ID47 [exampleSDID@32473 iut="3" eventSource="App\\"x\\""][meta seq="1"] \ufeffFailed password for root from 203.0.113.35 port 5000 ssh2',
        {"ts": "2026-03-01T10:15:02.500000Z", "host": "web-01.example", "app": "sshd",
         "pid": 2214, "level": "info", "extra.msgid": "ID47",
         "extra.sd": {"exampleSDID@32473": {"iut": "3", "eventSource": 'App"x"'}, "meta": {"seq": "1"}},
         "message": "Failed password for root from 203.0.113.35 port 5000 ssh2",
         "action": "ssh_auth_failure", "src_ip": "203.0.113.35"},
    ),
    (
        "<165>1 2026-03-01T10:15:03Z - myapp - - - hello",
        {"host": None, "app": "myapp", "pid": None, "level": "notice",
         "extra.facility": "local4", "message": "hello"},
    ),
    (
        "web-02 sshd[13709]: Failed password for root from 203.0.113.36 port 1 ssh2",
        {"host": "web-02", "app": "sshd", "flags": 4, "action": "ssh_auth_failure",
         "src_ip": "203.0.113.36"},
    ),
]
