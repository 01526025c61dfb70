"""Web server envelopes: access logs, Apache error logs, nginx error logs.

Access logs (Apache/nginx common, combined, vhost_combined, and tolerant
variants: trailing fields, a trailing space, no time offset, an extra `-`):
- message = the request line as written (`GET /x?y HTTP/1.1`, or whatever the
  client sent, e.g. `\\x16\\x03\\x01` or an empty string); raw keeps the whole line.
- http_method / url (path plus query, as written) / http_status / bytes /
  referrer / user_agent; src_ip (client; a host name goes to extra src_host);
  user = the authuser field when not `-`; action = http_request; outcome =
  success below 400, failure from 400; app = nginx/apache when the source path
  says so, else httpd; host = the vhost (vhost_combined) else the fallback.
- fields after the user agent (nginx's `"$http_x_forwarded_for"`, timings...)
  go to extra["rest"]; the protocol to extra["protocol"].

Apache error logs (2.2 `[Sun Dec 04 04:47:44 2005] [error] [client 1.2.3.4] msg`
and 2.4 `[... .123456 2005] [mod:level] [pid N:tid M] [client ip:port] AHnnnnn: msg`)
and nginx error logs (`2013/06/19 08:41:27 [error] 1234#0: *5 msg, client: ip,
server: s, request: "GET / HTTP/1.1", host: "h"`): level, pid, src_ip/src_port,
message after the envelope, and an action for the security-relevant messages
(http_auth_failure, http_access_denied, http_not_found, http_bad_request,
http_rate_limited, http_waf_block, http_waf_alert, tls_handshake_failed). The
same body parsers run on apache/nginx lines relayed through syslog.
"""

from __future__ import annotations

import re

from soc_tui.model import Event

from .timeutil import MONTHS, frac_us, offset_seconds, offset_us
from .util import add_extra, level_name, set_peer, split_host_port, is_ip

_Q = r'"([^"\\]*(?:\\.[^"\\]*)*)"'  # a quoted field with backslash escapes
ACCESS_RE = re.compile(
    r"(\S+) (\S+) (\S+)(?: (\S+))? \[([^\]]*)\](?: (\S+))? " + _Q
    + r" (\d{3}|-) (\d+|-)(?: " + _Q + r" " + _Q + r")?(.*)",
    re.S,
)
_ACCESS_TIME_RE = re.compile(
    r"(\d{1,2})/([A-Za-z]{3})/(\d{4}):(\d\d):(\d\d):(\d\d)(?:[.,](\d+))?\s*([+-]\d\d:?\d\d|Z)?\s*$"
)


def access_time(p, t: str) -> int | None:
    """`22/Oct/2021:02:28:56 -0700` (offset optional) as UTC µs; None if unusable."""
    # Fast path: the exact standard layout, cached per (date, hour, offset).
    if len(t) == 26 and t[2] == "/" and t[6] == "/" and t[11] == ":" and t[20] == " ":
        key = t[:14] + t[20:]
        cache = p.access_cache
        base = cache.get(key)
        if base is None:
            base = _access_time_slow(p, t[:14] + ":00:00" + t[20:])
            if base is None:
                return None
            if len(cache) > 20_000:
                cache.clear()
            cache[key] = base
        mi, s = t[15:17], t[18:20]
        if not (mi.isdigit() and s.isdigit()):
            return None
        return base + (int(mi) * 60 + min(int(s), 59)) * 1_000_000
    return _access_time_slow(p, t)


def _access_time_slow(p, t: str) -> int | None:
    r = _ACCESS_TIME_RE.match(t)
    if r is None:
        return None
    d, mon, y, h, mi, s, fr, off = r.groups()
    mo = MONTHS.get(mon)
    if mo is None:
        return None
    try:
        off_s = offset_seconds(off)
        if off_s is None:
            return p.tctx.local_us(int(y), mo, int(d), int(h), int(mi), int(s), frac_us(fr))
        return offset_us(int(y), mo, int(d), int(h), int(mi), int(s), frac_us(fr), off_s)
    except (ValueError, OverflowError):
        return None


def fill_access(ev: Event, r: re.Match) -> None:
    """Fill web fields of `ev` from an ACCESS_RE match (time handled by the caller)."""
    t1, t2, t3, t4, _t, vhost2, req, status, nbytes, ref, ua, rest = r.groups()
    if t4 is None:
        client, user = t1, t3
    elif is_ip(t1):  # `ip ident user extra` (some custom formats)
        client, user = t1, t3
    else:  # vhost_combined: `vhost[:port] ip ident user`
        vhost, port = split_host_port(t1)
        ev.host = vhost
        if port:
            add_extra(ev, "vhost_port", int(port))
        client, user = t2, t4
    if vhost2 is not None:
        ev.host = vhost2
    set_peer(ev, client)
    if user != "-":
        ev.user = user
    ev.message = req
    parts = req.split(" ")
    if len(parts) == 3 and parts[2].startswith("HTTP/"):
        ev.http_method, ev.url = parts[0], parts[1]
        add_extra(ev, "protocol", parts[2])
    elif len(parts) == 2 and parts[0].isalpha() and parts[0].isupper():
        ev.http_method, ev.url = parts[0], parts[1]
    if status != "-":
        st = int(status)
        ev.http_status = st
        ev.outcome = "success" if st < 400 else "failure"
    else:
        ev.outcome = "unknown"
    if nbytes != "-":
        ev.bytes = int(nbytes)
    if ref is not None:
        if ref != "-" and ref != "":
            ev.referrer = ref
        if ua != "-" and ua != "":
            ev.user_agent = ua
    if rest:
        rest = rest.strip()
        if rest:
            add_extra(ev, "rest", rest)
    ev.action = "http_request"


def env_access(p, line: str, flags: int, now: int) -> Event | None:
    if not line or line[0] in "[{<":
        return None
    r = ACCESS_RE.match(line)
    if r is None:
        return None
    ts = access_time(p, r.group(5))
    if ts is None:
        ts = now
        flags |= 4  # FLAG_TS_GUESSED
    ev = Event(ts, line, p.source_id, p.host, p.web_app)
    ev.flags = flags
    fill_access(ev, r)
    return ev


# ---------------------------------------------------------------- Apache error
APACHE_ERR_RE = re.compile(
    r"\[(?:[A-Za-z]{3} )?([A-Za-z]{3}) +(\d{1,2}) (\d\d):(\d\d):(\d\d)(?:\.(\d+))? (\d{4})\] ?(.*)",
    re.S,
)
APACHE_BODY_RE = re.compile(
    r"\[(?:([\w.-]*):)?(\w+)\]"
    r"(?: \[pid (\d+)(?::tid (\d+))?\])?"
    r"(?: \([^)]*\)[^\[]*?:)?"
    r"(?: \[(client|remote) (\[[^\]\s]*\](?::\d+)?|[^\[\]\s]+)\])?"
    r" ?(.*)",
    re.S,
)
_AH_CODE_RE = re.compile(r"(AH\d{5}): ")
_REFERER_RE = re.compile(r", referer:? (\S*)\s*$")
_WEB_USER_RE = re.compile(r"""\buser [`'"]?([^\s`'":]*)[`'"]?(?::| not found| in realm| was not found|\s+-\s+not authenticated)""")

_WEB_ACTIONS: tuple[tuple[str, str], ...] = (
    ("client denied by server configuration", "http_access_denied"),
    ("access forbidden by rule", "http_access_denied"),
    ("authentication failure", "http_auth_failure"),
    ("password mismatch", "http_auth_failure"),
    ("not found: /", "http_auth_failure"),  # Apache "user X not found: /path"
    ("was not found in", "http_auth_failure"),  # nginx htpasswd
    ("not authenticated", "http_auth_failure"),
    ("wrong authentication scheme", "http_auth_failure"),
    ("authorization failure", "http_auth_failure"),
    ("Authorization of user", "http_auth_failure"),
    ("user attempted time travel", "http_auth_failure"),
    ("realm mismatch", "http_auth_failure"),
    ("unknown algorithm", "http_auth_failure"),
    ("invalid nonce", "http_auth_failure"),
    ("invalid qop", "http_auth_failure"),
    ("File does not exist", "http_not_found"),
    ("not found or unable to stat", "http_not_found"),
    ("No such file or directory", "http_not_found"),
    ("Invalid URI in request", "http_bad_request"),
    ("invalid URI path", "http_bad_request"),
    ("Invalid method in request", "http_bad_request"),
    ("request failed:", "http_bad_request"),
    ("limiting requests", "http_rate_limited"),
    ("limiting connections", "http_rate_limited"),
    ("delaying request", "http_rate_limited"),
    ("SSL_do_handshake() failed", "tls_handshake_failed"),
    ("SSL_read() failed", "tls_handshake_failed"),
)


def classify_web_error(ev: Event, text: str) -> None:
    """Set action/outcome (and user) for a security-relevant Apache/nginx error message."""
    if "ModSecurity" in text:
        ev.action = "http_waf_block" if "Access denied" in text else "http_waf_alert"
        ev.outcome = "failure"
        return
    if "user " in text and (" not found" in text or "mismatch" in text or "authenticat" in text):
        # "user X not found[: /path]", "user X: password mismatch", nginx
        # 'user "X" was not found in', 'PAM: user 'X' - not authenticated'
        u = _WEB_USER_RE.search(text)
        if u is not None:
            ev.action, ev.outcome = "http_auth_failure", "failure"
            if u.group(1):
                ev.user = u.group(1)
            return
    for needle, action in _WEB_ACTIONS:
        if needle in text:
            ev.action, ev.outcome = action, "failure"
            return


def _apache_client(s: str, v24: bool) -> tuple[str, str | None]:
    if s.startswith("["):
        return split_host_port(s)
    n = s.count(":")
    if n == 1:
        return split_host_port(s)
    if n > 1 and v24:  # Apache 2.4 writes unbracketed "ipv6:port"
        host, _, port = s.rpartition(":")
        if port.isdigit() and is_ip(host):
            return host, port
    return s, None


def apache_body(ev: Event, body: str) -> bool:
    """Parse `[mod:level] [pid N:tid M] [client ip:port] msg`; False if not that shape."""
    r = APACHE_BODY_RE.match(body)
    if r is None:
        return False
    module, level, pid, tid, _kind, client, msg = r.groups()
    lv = level_name(level)
    if lv is not None:
        ev.level = lv
    if module:
        add_extra(ev, "module", module)
    if pid:
        ev.pid = int(pid)
        if tid:
            add_extra(ev, "tid", int(tid))
    if client:
        host, port = _apache_client(client, module is not None or pid is not None)
        set_peer(ev, host, port)
    c = _AH_CODE_RE.match(msg)
    if c is not None:
        add_extra(ev, "error_code", c.group(1))
    if ", referer" in msg:
        rr = _REFERER_RE.search(msg)
        if rr is not None and rr.group(1):
            ev.referrer = rr.group(1)
    ev.message = msg
    classify_web_error(ev, msg)
    return True


def env_apache_error(p, line: str, flags: int, now: int) -> Event | None:
    if not line or line[0] != "[":
        return None
    r = APACHE_ERR_RE.match(line)
    if r is None:
        return None
    mon, d, h, mi, s, fr, y, body = r.groups()
    mo = MONTHS.get(mon)
    if mo is None:
        return None
    try:
        ts = p.tctx.local_us(int(y), mo, int(d), int(h), int(mi), int(s), frac_us(fr))
    except (ValueError, OverflowError):
        ts = now
        flags |= 4
    app = p.web_app if p.web_app != "httpd" else "apache"
    ev = Event(ts, line, p.source_id, p.host, app)
    ev.flags = flags
    ev.message = body
    if not apache_body(ev, body):
        ev.message = body
    return ev


# ----------------------------------------------------------------- nginx error
NGINX_ERR_RE = re.compile(
    r"(\d{4})/(\d\d)/(\d\d) (\d\d):(\d\d):(\d\d) \[(\w+)\] (\d+)#(\d+): (?:\*(\d+) )?(.*)",
    re.S,
)
_NGINX_CTX_RE = re.compile(r', (client|server|request|upstream|host|referrer): ("[^"\\]*(?:\\.[^"\\]*)*"|[^,]*)')


def nginx_body(ev: Event, level: str, pid: str, cid: str | None, msg: str) -> None:
    ev.level = level_name(level)
    ev.pid = int(pid)
    if cid:
        add_extra(ev, "connection", int(cid))
    ev.message = msg
    i = msg.rfind(", client: ")
    if i >= 0:
        ctx: dict[str, str] = {}
        for k, v in _NGINX_CTX_RE.findall(msg, i):
            if k not in ctx:
                ctx[k] = v[1:-1] if v.startswith('"') and v.endswith('"') and len(v) >= 2 else v
        client = ctx.get("client")
        if client:
            set_peer(ev, client)
        server = ctx.get("server")
        if server:
            add_extra(ev, "server", server)
        req = ctx.get("request")
        if req is not None:
            parts = req.split(" ")
            if len(parts) == 3 and parts[2].startswith("HTTP/"):
                ev.http_method, ev.url = parts[0], parts[1]
            add_extra(ev, "request", req)
        vhost = ctx.get("host")
        if vhost:
            add_extra(ev, "http_host", vhost)
        ref = ctx.get("referrer")
        if ref:
            ev.referrer = ref
        up = ctx.get("upstream")
        if up:
            add_extra(ev, "upstream", up)
        text = msg[:i]
    else:
        text = msg
    classify_web_error(ev, text)


def _nginx_time(p, g) -> int:
    y, mo, d, h, mi, s = g
    return p.tctx.local_us(int(y), int(mo), int(d), int(h), int(mi), int(s))


def env_nginx_error(p, line: str, flags: int, now: int) -> Event | None:
    if not line or not ("0" <= line[0] <= "9"):
        return None
    r = NGINX_ERR_RE.match(line)
    if r is None:
        return None
    g = r.groups()
    try:
        ts = _nginx_time(p, g[:6])
    except (ValueError, OverflowError):
        ts = now
        flags |= 4
    ev = Event(ts, line, p.source_id, p.host, "nginx")
    ev.flags = flags
    nginx_body(ev, g[6], g[7], g[9], g[10])
    return ev


# --------------------------------------------- web server lines via syslog
_NGINX_IN_SYSLOG_RE = re.compile(
    r"(?:\S+ nginx: )?(\d{4})/(\d\d)/(\d\d) (\d\d):(\d\d):(\d\d) \[(\w+)\] (\d+)#(\d+): (?:\*(\d+) )?(.*)",
    re.S,
)


def _adopt_time(ev: Event, p, ts: int | None) -> None:
    """Use the embedded web-server time when the syslog envelope had none."""
    if ts is not None and ev.flags & 4:
        ev.ts = ts
        ev.flags &= ~4


def extract_nginx(ev: Event, msg: str, p=None) -> None:
    r = _NGINX_IN_SYSLOG_RE.match(msg)
    if r is not None:
        g = r.groups()
        nginx_body(ev, g[6], g[7], g[9], g[10])
        if p is not None:
            try:
                _adopt_time(ev, p, _nginx_time(p, g[:6]))
            except (ValueError, OverflowError):
                pass
        return
    extract_access_in_syslog(ev, msg, p)


def extract_apache(ev: Event, msg: str, p=None) -> None:
    if msg.startswith("["):
        apache_body(ev, msg)
        return
    extract_access_in_syslog(ev, msg, p)


def extract_access_in_syslog(ev: Event, msg: str, p=None) -> None:
    r = ACCESS_RE.match(msg)
    if r is None:
        return
    fill_access(ev, r)
    if p is not None:
        _adopt_time(ev, p, access_time(p, r.group(5)))


EXTRACTORS_P = {  # extractors that want the parser context (time zone) as third argument
    "nginx": extract_nginx,
    "httpd": extract_apache,
    "apache": extract_apache,
    "apache2": extract_apache,
}

SAMPLES: list[tuple[str, dict]] = [
    (
        '203.0.113.60 - - [01/Mar/2026:10:20:30 +0100] "GET /index.php?id=1%27%20OR%201=1 HTTP/1.1" 200 5120 "-" "sqlmap/1.7.2#stable (https://sqlmap.org)"',
        {"ts": "2026-03-01T09:20:30Z", "app": "httpd", "action": "http_request",
         "outcome": "success", "src_ip": "203.0.113.60", "http_method": "GET",
         "url": "/index.php?id=1%27%20OR%201=1", "http_status": 200, "bytes": 5120,
         "referrer": None, "user_agent": "sqlmap/1.7.2#stable (https://sqlmap.org)",
         "message": "GET /index.php?id=1%27%20OR%201=1 HTTP/1.1", "extra.protocol": "HTTP/1.1"},
    ),
    (
        '198.51.100.70 - admin [01/Mar/2026:10:20:31 +0000] "POST /login HTTP/1.1" 401 17 "https://web-01.example/login" "Mozilla/5.0 (X11; Linux x86_64)" ',
        {"ts": "2026-03-01T10:20:31Z", "user": "admin", "http_status": 401, "outcome": "failure",
         "referrer": "https://web-01.example/login", "extra.rest": None},
    ),
    (
        '203.0.113.61 - - [01/Mar/2026:10:20:32 +0000] "GET /.env HTTP/1.1" 404 153',
        {"http_status": 404, "url": "/.env", "user_agent": None, "bytes": 153},
    ),
    (
        'web-01.example:443 203.0.113.62 - - [01/Mar/2026:10:20:33 +0000] "GET /.git/config HTTP/1.1" 403 199 "-" "curl/8.5.0"',
        {"host": "web-01.example", "src_ip": "203.0.113.62", "url": "/.git/config",
         "extra.vhost_port": 443},
    ),
    (
        '203.0.113.63 - - [01/Mar/2026:10:20:34 +0000] "\\x16\\x03\\x01\\x00\\xee\\x01" 400 157 "-" "-" "-"',
        {"http_method": None, "url": None, "http_status": 400, "message": "\\x16\\x03\\x01\\x00\\xee\\x01",
         "extra.rest": '"-"'},
    ),
    (
        '203.0.113.64 - - [01/Mar/2026:10:20:35 +0000] "GET /cgi-bin/test.cgi HTTP/1.1" 200 12 "-" "() { :; }; /bin/bash -c \\"id\\""',
        {"user_agent": '() { :; }; /bin/bash -c \\"id\\"'},
    ),
    (
        "[Sun Mar 01 10:21:00.123456 2026] [authz_core:error] [pid 1234:tid 140001] [client 203.0.113.65:50123] AH01630: client denied by server configuration: /var/www/html/.htpasswd",
        {"ts": "2026-03-01T10:21:00.123456Z", "app": "apache", "level": "error", "pid": 1234,
         "src_ip": "203.0.113.65", "src_port": 50123, "action": "http_access_denied",
         "outcome": "failure", "extra.module": "authz_core", "extra.error_code": "AH01630",
         "message": "AH01630: client denied by server configuration: /var/www/html/.htpasswd"},
    ),
    (
        "[Sun Mar 01 10:21:01 2026] [error] [client 203.0.113.66] user admin not found: /private/",
        {"level": "error", "src_ip": "203.0.113.66", "action": "http_auth_failure", "user": "admin"},
    ),
    (
        "[Sun Mar 01 10:21:02.000001 2026] [auth_basic:error] [pid 77] [client [2001:db8::66]:50124] AH01617: user carol: authentication failure for \"/admin\": Password Mismatch",
        {"src_ip": "2001:db8::66", "src_port": 50124, "action": "http_auth_failure", "user": "carol"},
    ),
    (
        "[Sun Mar 01 10:21:03 2026] [error] [client 203.0.113.67] File does not exist: /var/www/html/wp-login.php, referer: http://web-01.example/",
        {"action": "http_not_found", "referrer": "http://web-01.example/"},
    ),
    (
        "[Sun Mar 01 10:21:04 2026] [notice] Apache/2.4.58 (Debian) configured -- resuming normal operations",
        {"level": "notice", "action": None, "src_ip": None},
    ),
    (
        '2026/03/01 10:22:00 [error] 4321#4321: *77 open() "/usr/share/nginx/html/phpmyadmin/index.php" failed (2: No such file or directory), client: 203.0.113.68, server: web-01.example, request: "GET /phpmyadmin/index.php HTTP/1.1", host: "web-01.example"',
        {"ts": "2026-03-01T10:22:00Z", "app": "nginx", "level": "error", "pid": 4321,
         "src_ip": "203.0.113.68", "http_method": "GET", "url": "/phpmyadmin/index.php",
         "action": "http_not_found", "extra.server": "web-01.example", "extra.connection": 77},
    ),
    (
        '2026/03/01 10:22:01 [error] 4321#4321: *78 user "admin": password mismatch, client: 203.0.113.69, server: web-01.example, request: "GET /admin/ HTTP/1.1", host: "web-01.example"',
        {"action": "http_auth_failure", "user": "admin", "src_ip": "203.0.113.69"},
    ),
    (
        '2026/03/01 10:22:02 [warn] 4321#4321: *79 delaying request, excess: 0.840, by zone "req", client: 2001:db8::70, server: web-01.example, request: "GET / HTTP/2.0", host: "web-01.example"',
        {"level": "warning", "action": "http_rate_limited", "src_ip": "2001:db8::70"},
    ),
    (
        'Mar  1 10:22:03 web-01 nginx[4321]: 2026/03/01 10:22:03 [error] 4321#4321: *80 access forbidden by rule, client: 203.0.113.71, server: web-01.example, request: "GET /.git/HEAD HTTP/1.1", host: "web-01.example"',
        {"app": "nginx", "action": "http_access_denied", "src_ip": "203.0.113.71", "url": "/.git/HEAD"},
    ),
    (
        "Mar  1 10:22:04 web-01 httpd[22034]: [authz_core:error] [pid 22034] [client 203.0.113.72:58585] AH01630: client denied by server configuration: /srv/www/",
        {"app": "httpd", "src_ip": "203.0.113.72", "src_port": 58585, "action": "http_access_denied"},
    ),
]
