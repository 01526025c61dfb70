"""Linux audit (auditd) records: `[node=N ]type=T msg=audit(EPOCH.mmm:SERIAL): k=v ...`.

Tried only by format "auto" (the interface's FORMATS has no audit family).
ts from the record's epoch; app = "auditd"; host = node= (else the fallback);
message = the text after `): `; extra = {"type": T, "serial": N, every key=value
of the record (the nested `msg='...'` of user-space records flattened into the
same dict; quotes removed)}; user = acct= (hex-encoded names decoded), falling
back to the login uid name when the record has one (`AUID="alice"` in enriched
logs); src_ip = addr= when it is an address; outcome from res= / success=.
No action is set: the record type (extra["type"]) plays that role.
"""

from __future__ import annotations

import re

from soc_tui.model import Event

from .util import set_peer

AUDIT_RE = re.compile(r"(?:node=(\S+) )?type=(\S+) msg=audit\((\d+)(?:\.(\d{1,6}))?:(\d+)\): ?(.*)", re.S)
_KV_RE = re.compile(r"""([\w-]+)=("[^"]*"|'[^']*'|\S*)""")
_HEX_RE = re.compile(r"(?:[0-9A-F]{2})+\Z")


def _unhex(v: str) -> str:
    if len(v) >= 2 and _HEX_RE.match(v):
        try:
            return bytes.fromhex(v).decode("utf-8", "replace")
        except ValueError:
            return v
    return v


def parse_kv(body: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for k, v in _KV_RE.findall(body):
        if v[:1] == "'" and k == "msg":
            out.update(parse_kv(v[1:-1]))
            continue
        if len(v) >= 2 and v[0] == v[-1] and v[0] in "\"'":
            v = v[1:-1]
        if k not in out:
            out[k] = v
    return out


def env_audit(p, line: str, flags: int, now: int) -> Event | None:
    c = line[:1]
    if c != "t" and c != "n":
        return None
    r = AUDIT_RE.match(line)
    if r is None:
        return None
    node, typ, secs, frac, serial, body = r.groups()
    us = int((frac + "000000")[:6]) if frac else 0
    ts = int(secs) * 1_000_000 + us
    ev = Event(ts, line, p.source_id, node or p.host, "auditd")
    ev.flags = flags
    ev.message = body
    kv = parse_kv(body)
    extra: dict = {"type": typ, "serial": int(serial)}
    extra.update(kv)
    ev.extra = extra
    acct = kv.get("acct")
    if acct and acct != "?":
        quoted = f'acct="{acct}"' in body
        ev.user = acct if quoted else _unhex(acct)
    elif kv.get("AUID") and kv["AUID"] not in ("unset", "?"):
        ev.user = kv["AUID"]
    addr = kv.get("addr")
    if addr and addr != "?":
        set_peer(ev, addr)
    if ev.src_ip is None:
        hn = kv.get("hostname")
        if hn and hn != "?":
            set_peer(ev, hn)
    pid = kv.get("pid")
    if pid and pid.isdigit():
        ev.pid = int(pid)
    res = kv.get("res") or kv.get("success")
    if res in ("success", "yes"):
        ev.outcome = "success"
    elif res in ("failed", "no", "fail"):
        ev.outcome = "failure"
    return ev


SAMPLES: list[tuple[str, dict]] = [
    (
        "type=USER_LOGIN msg=audit(1772360102.415:4063): pid=11998 uid=0 auid=4294967295 ses=4294967295 msg='op=login acct=\"root\" exe=\"/usr/sbin/sshd\" hostname=? addr=203.0.113.90 terminal=ssh res=failed'",
        {"ts": "2026-03-01T10:15:02.415000Z", "app": "auditd", "pid": 11998, "user": "root",
         "src_ip": "203.0.113.90", "outcome": "failure", "extra.type": "USER_LOGIN",
         "extra.serial": 4063, "extra.exe": "/usr/sbin/sshd", "extra.terminal": "ssh"},
    ),
    (
        "node=db-01 type=USER_AUTH msg=audit(1772360103.000:4070): pid=12000 uid=0 auid=4294967295 ses=4294967295 msg='op=PAM:authentication acct=28756E6B6E6F776E207573657229 exe=\"/usr/sbin/sshd\" hostname=198.51.100.91 addr=198.51.100.91 terminal=ssh res=failed'",
        {"host": "db-01", "user": "(unknown user)", "src_ip": "198.51.100.91", "outcome": "failure"},
    ),
    (
        'type=SYSCALL msg=audit(1772360104.123:5001): arch=c000003e syscall=59 success=yes exit=0 a0=55d0 items=2 ppid=900 pid=901 auid=1000 uid=0 comm="wget" exe="/usr/bin/wget" key="susp_activity"',
        {"app": "auditd", "pid": 901, "outcome": "success", "extra.comm": "wget",
         "extra.key": "susp_activity", "extra.syscall": "59"},
    ),
]
