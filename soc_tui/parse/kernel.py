"""Message extractor for kernel lines: uptime stamps and netfilter (UFW/iptables) logs.

`kernel: [  970.699396] msg` -> message `msg`, extra["uptime"] = 970.699396.
A netfilter log line (`... IN=eth0 OUT= ... SRC=a DST=b ... PROTO=TCP SPT=n DPT=m`)
gives src_ip / src_port (SPT) and extra dst_ip / dst_port / proto / in / out /
prefix; the action is firewall_block, firewall_allow or firewall_log depending on
the log prefix (`[UFW BLOCK]`, `IPTABLES-DROP:`, `[UFW ALLOW]`, ...).
"""

from __future__ import annotations

import re

from soc_tui.model import Event

from .util import add_extra, set_peer

_UPTIME_RE = re.compile(r"\[ *(\d+\.\d+)\] ?")
_NF_KV_RE = re.compile(r"\b(IN|OUT|SRC|DST|PROTO|SPT|DPT|MAC)=(\S*)")
_BLOCK_WORDS = ("BLOCK", "DROP", "REJECT", "DENY", "DENIED")
_ALLOW_WORDS = ("ALLOW", "ACCEPT", "PERMIT")


def firewall(ev: Event, msg: str) -> bool:
    """Fill firewall fields from a netfilter log message; False if it is not one."""
    i = msg.find("SRC=")
    if i < 0 or "DST=" not in msg:
        return False
    kv = dict(_NF_KV_RE.findall(msg))
    src = kv.get("SRC")
    if not src:
        return False
    j = msg.find("IN=")
    prefix = msg[: j if 0 <= j < i else i].strip()
    up = prefix.upper()
    if any(w in up for w in _BLOCK_WORDS):
        ev.action, ev.outcome = "firewall_block", "failure"
    elif any(w in up for w in _ALLOW_WORDS):
        ev.action, ev.outcome = "firewall_allow", "success"
    else:
        ev.action, ev.outcome = "firewall_log", "unknown"
    set_peer(ev, src, kv.get("SPT"))
    if prefix:
        add_extra(ev, "prefix", prefix)
    dst = kv.get("DST")
    if dst:
        add_extra(ev, "dst_ip", dst)
    dpt = kv.get("DPT")
    if dpt and dpt.isdigit():
        add_extra(ev, "dst_port", int(dpt))
    for k, name in (("PROTO", "proto"), ("IN", "in"), ("OUT", "out")):
        v = kv.get(k)
        if v:
            add_extra(ev, name, v)
    return True


def extract_kernel(ev: Event, msg: str) -> None:
    if msg.startswith("["):
        r = _UPTIME_RE.match(msg)
        if r is not None:
            add_extra(ev, "uptime", float(r.group(1)))
            msg = msg[r.end():]
            ev.message = msg
    if "SRC=" in msg:
        firewall(ev, msg)


EXTRACTORS = {"kernel": extract_kernel}

SAMPLES: list[tuple[str, dict]] = [
    (
        "Mar  1 12:00:00 web-01 kernel: [ 8123.456789] [UFW BLOCK] IN=eth0 OUT= MAC=52:54:00:12:34:56:52:54:00:65:43:21:08:00 SRC=203.0.113.40 DST=192.0.2.10 LEN=44 TOS=0x00 PREC=0x00 TTL=241 ID=54321 PROTO=TCP SPT=41234 DPT=23 WINDOW=1024 RES=0x00 SYN URGP=0",
        {"app": "kernel", "action": "firewall_block", "outcome": "failure",
         "src_ip": "203.0.113.40", "src_port": 41234, "extra.dst_ip": "192.0.2.10",
         "extra.dst_port": 23, "extra.proto": "TCP", "extra.prefix": "[UFW BLOCK]",
         "extra.uptime": 8123.456789,
         "message": "[UFW BLOCK] IN=eth0 OUT= MAC=52:54:00:12:34:56:52:54:00:65:43:21:08:00 SRC=203.0.113.40 DST=192.0.2.10 LEN=44 TOS=0x00 PREC=0x00 TTL=241 ID=54321 PROTO=TCP SPT=41234 DPT=23 WINDOW=1024 RES=0x00 SYN URGP=0"},
    ),
    (
        "Mar  1 12:00:01 web-01 kernel: [UFW ALLOW] IN=eth0 OUT= SRC=198.51.100.23 DST=192.0.2.10 PROTO=TCP SPT=50110 DPT=22",
        {"action": "firewall_allow", "outcome": "success", "src_ip": "198.51.100.23",
         "extra.dst_port": 22},
    ),
    (
        "Mar  1 12:00:02 fw-01 kernel: IPTABLES-DROPPED: IN=eth1 OUT= SRC=203.0.113.41 DST=192.0.2.1 LEN=60 PROTO=UDP SPT=5353 DPT=161 LEN=40",
        {"action": "firewall_block", "src_ip": "203.0.113.41", "src_port": 5353,
         "extra.dst_port": 161, "extra.proto": "UDP"},
    ),
    (
        "Mar  1 12:00:03 fw-01 kernel: nflog IN=eth0 OUT= SRC=203.0.113.42 DST=192.0.2.1 PROTO=ICMP TYPE=8 CODE=0",
        {"action": "firewall_log", "src_ip": "203.0.113.42"},
    ),
    (
        "Mar  1 12:00:04 web-01 kernel: [   12.000001] EXT4-fs (sda1): mounted filesystem",
        {"action": None, "message": "EXT4-fs (sda1): mounted filesystem", "extra.uptime": 12.000001},
    ),
]
