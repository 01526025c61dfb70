"""JSON envelopes: `journalctl -o json` records and generic JSON lines.

journald: ts from __REALTIME_TIMESTAMP (µs), host from _HOSTNAME, app from
SYSLOG_IDENTIFIER (else _COMM), pid from _PID (else SYSLOG_PID), message from
MESSAGE (a list of byte values is decoded as UTF-8 with replacement), level
from PRIORITY, and extra _SYSTEMD_UNIT / _TRANSPORT / _UID / SYSLOG_FACILITY.
The message then goes through the same per-program extractors as syslog.

Generic JSON lines: common key names (also nested/dotted ECS names) fill the
columns: time (timestamp, @timestamp, time, ts, datetime, date, epoch numbers
in s/ms/µs/ns), host (host, hostname, host.name), app (app, program, service,
appname, logger), message (message, msg, log, MESSAGE), level (level, severity,
log.level), src_ip (src_ip, remote_addr, client_ip, clientip, ip, source.ip,
...), user, http fields (method, url/uri/path, status, bytes, user_agent,
referrer/referer, request = "GET /x HTTP/1.1"), action/outcome (event.action,
event.outcome). Every other top-level key goes to extra. When the record names
a program we have an extractor for (sshd, sudo...), its message is run through it.
"""

from __future__ import annotations

import json

from soc_tui.model import Event

from .extract import extract
from .timeutil import epoch_number_us, parse_iso
from .util import add_extra, level_name, set_peer, split_host_port
from .web import access_time

_JOURNAL_EXTRA = ("_SYSTEMD_UNIT", "_TRANSPORT", "_UID", "SYSLOG_FACILITY")


def _object(line: str) -> dict | None:
    """The JSON object a line holds, else None (a line not starting with `{` is not parsed)."""
    if not line or line[0] != "{":
        return None
    try:
        d = json.loads(line)
    except (ValueError, RecursionError):
        return None
    return d if isinstance(d, dict) else None


def _text(v) -> str | None:
    if v is None:
        return None
    if isinstance(v, str):
        return v
    if isinstance(v, list) and all(isinstance(x, int) and 0 <= x < 256 for x in v):
        return bytes(v).decode("utf-8", "replace")
    if isinstance(v, (int, float)):
        return str(v)
    return json.dumps(v, ensure_ascii=False)


def _int(v) -> int | None:
    if isinstance(v, bool):
        return None
    if isinstance(v, int):
        return v
    if isinstance(v, float) and v == v and abs(v) < 1e18:
        return int(v)
    if isinstance(v, str):
        s = v.strip()
        if s.isdigit() and len(s) < 19:
            return int(s)
    return None


def _is_journal(d: dict) -> bool:
    return "__REALTIME_TIMESTAMP" in d or "__CURSOR" in d or (
        "MESSAGE" in d and ("_HOSTNAME" in d or "_PID" in d or "PRIORITY" in d)
    )


def journal_record(p, line: str, d: dict, flags: int, now: int) -> Event:
    ts = None
    rt = d.get("__REALTIME_TIMESTAMP")
    if rt is None:
        rt = d.get("_SOURCE_REALTIME_TIMESTAMP")
    if rt is not None:
        ts = _int(rt)
    if ts is None or ts <= 0:
        ts = now
        flags |= 4
    host = _text(d.get("_HOSTNAME")) or p.host
    app = _text(d.get("SYSLOG_IDENTIFIER")) or _text(d.get("_COMM"))
    pid = _int(d.get("_PID"))
    if pid is None:
        pid = _int(d.get("SYSLOG_PID"))
    msg = _text(d.get("MESSAGE"))
    ev = Event(ts, line, p.source_id, host, app, pid)
    ev.flags = flags
    ev.message = msg
    pri = d.get("PRIORITY")
    if pri is not None:
        ev.level = level_name(_text(pri))
    for k in _JOURNAL_EXTRA:
        v = d.get(k)
        if v is not None:
            add_extra(ev, k, _text(v))
    if msg:
        extract(ev, app, msg, p)
    return ev


def env_journald(p, line: str, flags: int, now: int) -> Event | None:
    d = _object(line)
    if d is None or not _is_journal(d):
        return None
    return journal_record(p, line, d, flags, now)


# ------------------------------------------------------------ generic JSON
_TIME_KEYS = ("@timestamp", "timestamp", "time", "ts", "datetime", "date", "eventTime",
              "EventTime", "time_local", "time_iso8601", "logtime")
_HOST_KEYS = ("host", "hostname", "host.name", "host.hostname", "HOSTNAME", "server", "computer")
_APP_KEYS = ("app", "program", "appname", "application", "service", "service.name",
             "process.name", "logger", "logger_name", "ident", "syslog_identifier", "tag")
_MSG_KEYS = ("message", "msg", "log", "MESSAGE", "text", "event.original")
_LEVEL_KEYS = ("level", "severity", "log.level", "loglevel", "levelname", "lvl", "priority")
_IP_KEYS = ("src_ip", "source.ip", "client.ip", "remote_addr", "client_ip", "clientip",
            "remote_ip", "src", "ip", "source_ip", "client", "peer", "remote_host", "c-ip")
_PORT_KEYS = ("src_port", "source.port", "client.port", "remote_port", "client_port")
_USER_KEYS = ("user", "user.name", "username", "user_name", "remote_user", "account", "usr")
_TUSER_KEYS = ("target_user", "user.target.name", "target_username")
_PID_KEYS = ("pid", "process.pid", "process_id")
_METHOD_KEYS = ("http_method", "method", "http.request.method", "request_method", "verb")
_URL_KEYS = ("url", "uri", "url.original", "request_uri", "path", "url.path")
_STATUS_KEYS = ("http_status", "status", "http.response.status_code", "status_code", "response")
_BYTES_KEYS = ("bytes", "body_bytes_sent", "bytes_sent", "size", "http.response.body.bytes",
               "response_size")
_UA_KEYS = ("user_agent", "http_user_agent", "user_agent.original", "useragent", "agent", "ua")
_REF_KEYS = ("referrer", "referer", "http_referer", "http_referrer", "http.request.referrer")
_ACTION_KEYS = ("action", "event.action")
_OUTCOME_KEYS = ("outcome", "event.outcome")


def _scalar(v) -> bool:
    return v is not None and v != "" and not isinstance(v, (dict, list))


def _lookup(d: dict, keys: tuple[str, ...], used: set[str]):
    """First usable scalar among `keys`; a dotted key also looks into nested objects
    ({"source": {"ip": ...}}). Marks the top-level key consumed in `used`."""
    for k in keys:
        v = d.get(k)
        if _scalar(v):
            used.add(k)
            return v
        if "." in k:
            head, _, tail = k.partition(".")
            sub = d.get(head)
            while isinstance(sub, dict):
                h2, _, tail = tail.partition(".")
                sub = sub.get(h2)
                if not tail:
                    if _scalar(sub):
                        used.add(head)
                        return sub
                    break
    return None


def _json_time(v, p) -> int | None:
    if isinstance(v, bool):
        return None
    if isinstance(v, (int, float)):
        return epoch_number_us(v)
    if isinstance(v, str):
        s = v.strip()
        if not s:
            return None
        ts = parse_iso(s, p.tctx)
        if ts is not None:
            return ts
        try:
            return epoch_number_us(float(s))
        except ValueError:
            pass
        return access_time(p, s)
    return None


def env_json_auto(p, line: str, flags: int, now: int) -> Event | None:
    """Format "auto": one json.loads, then journald record or generic JSON."""
    d = _object(line)
    if d is None:
        return None
    if _is_journal(d):
        return journal_record(p, line, d, flags, now)
    return json_record(p, line, d, flags, now)


def env_json(p, line: str, flags: int, now: int) -> Event | None:
    d = _object(line)
    if d is None:
        return None
    return json_record(p, line, d, flags, now)


def json_record(p, line: str, d: dict, flags: int, now: int) -> Event:
    used: set[str] = set()
    tv = _lookup(d, _TIME_KEYS, used)
    ts = _json_time(tv, p) if tv is not None else None
    if ts is None:
        ts = now
        flags |= 4
    host = _text(_lookup(d, _HOST_KEYS, used)) or p.host
    app = _text(_lookup(d, _APP_KEYS, used))
    ev = Event(ts, line, p.source_id, host, app)
    ev.flags = flags
    pid = _int(_lookup(d, _PID_KEYS, used))
    if pid is not None:
        ev.pid = pid
    msg = _text(_lookup(d, _MSG_KEYS, used))
    ev.message = msg
    lv = _lookup(d, _LEVEL_KEYS, used)
    if lv is not None:
        ev.level = level_name(lv if isinstance(lv, int) else _text(lv))
    ip = _text(_lookup(d, _IP_KEYS, used))
    port = _lookup(d, _PORT_KEYS, used)
    if ip:
        h, pt = split_host_port(ip)
        set_peer(ev, h, port if port is not None else pt)
    user = _text(_lookup(d, _USER_KEYS, used))
    if user and user != "-":
        ev.user = user
    tu = _text(_lookup(d, _TUSER_KEYS, used))
    if tu:
        ev.target_user = tu
    method = _text(_lookup(d, _METHOD_KEYS, used))
    url = _text(_lookup(d, _URL_KEYS, used))
    req = d.get("request")
    if isinstance(req, str) and (method is None or url is None):
        parts = req.split(" ")
        if len(parts) == 3 and parts[2].startswith("HTTP/"):
            method = method or parts[0]
            url = url or parts[1]
            used.add("request")
            if msg is None:
                ev.message = req
    ev.http_method = method
    ev.url = url
    status = _int(_lookup(d, _STATUS_KEYS, used))
    if status is not None and 100 <= status <= 999:
        ev.http_status = status
    b = _int(_lookup(d, _BYTES_KEYS, used))
    if b is not None:
        ev.bytes = b
    ua = _text(_lookup(d, _UA_KEYS, used))
    if ua and ua != "-":
        ev.user_agent = ua
    ref = _text(_lookup(d, _REF_KEYS, used))
    if ref and ref != "-":
        ev.referrer = ref
    action = _text(_lookup(d, _ACTION_KEYS, used))
    outcome = _text(_lookup(d, _OUTCOME_KEYS, used))
    if ev.http_status is not None and (ev.http_method or ev.url):
        ev.action = "http_request"
        ev.outcome = "success" if ev.http_status < 400 else "failure"
    if action:
        ev.action = action
    if outcome:
        ev.outcome = outcome
    rest = {k: v for k, v in d.items() if k not in used}
    if rest:
        ev.extra = rest
    if msg and app and ev.action is None:
        extract(ev, app, msg, p)
    if ev.message is None:
        ev.message = line
    return ev


SAMPLES: list[tuple[str, dict]] = [
    (
        '{"__CURSOR":"s=abc;i=1","__REALTIME_TIMESTAMP":"1772360102123456","_HOSTNAME":"bastion","SYSLOG_IDENTIFIER":"sshd","_PID":"812","PRIORITY":"6","_SYSTEMD_UNIT":"ssh.service","_TRANSPORT":"syslog","MESSAGE":"Failed password for invalid user admin from 203.0.113.80 port 40001 ssh2"}',
        {"ts": "2026-03-01T10:15:02.123456Z", "host": "bastion", "app": "sshd", "pid": 812,
         "level": "info", "action": "ssh_auth_failure", "user": "admin",
         "src_ip": "203.0.113.80", "src_port": 40001, "extra._SYSTEMD_UNIT": "ssh.service",
         "flags": 0},
    ),
    (
        '{"__REALTIME_TIMESTAMP":"1772360103000000","_HOSTNAME":"bastion","_COMM":"sudo","_PID":"900","PRIORITY":"5","MESSAGE":[32,32,97,108,105,99,101,32,58,32,84,84,89,61,112,116,115,47,48,32,59,32,80,87,68,61,47,32,59,32,85,83,69,82,61,114,111,111,116,32,59,32,67,79,77,77,65,78,68,61,47,98,105,110,47,105,100]}',
        {"app": "sudo", "level": "notice", "action": "sudo_command", "user": "alice",
         "target_user": "root", "extra.command": "/bin/id"},
    ),
    (
        '{"timestamp":"2026-03-01T10:15:04.5Z","level":"WARN","host":"api-01","service":"auth-api","msg":"login failed","src_ip":"198.51.100.90","user":"bob","event.outcome":"failure","request_id":"r-17"}',
        {"ts": "2026-03-01T10:15:04.500000Z", "level": "warning", "host": "api-01",
         "app": "auth-api", "message": "login failed", "src_ip": "198.51.100.90",
         "user": "bob", "outcome": "failure", "extra.request_id": "r-17"},
    ),
    (
        '{"@timestamp":1772360105,"remote_addr":"203.0.113.81","request":"GET /wp-login.php HTTP/1.1","status":404,"body_bytes_sent":162,"http_user_agent":"Mozilla/5.0"}',
        {"ts": "2026-03-01T10:15:05Z", "src_ip": "203.0.113.81", "http_method": "GET",
         "url": "/wp-login.php", "http_status": 404, "bytes": 162, "action": "http_request",
         "outcome": "failure", "user_agent": "Mozilla/5.0", "message": "GET /wp-login.php HTTP/1.1"},
    ),
    (
        '{"host":{"name":"db-01"},"source":{"ip":"192.0.2.55","port":5432},"user":{"name":"carol"},"message":"hello"}',
        {"host": "db-01", "src_ip": "192.0.2.55", "src_port": 5432, "user": "carol",
         "flags": 4},
    ),
]
