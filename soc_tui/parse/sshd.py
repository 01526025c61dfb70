"""Message extractor for OpenSSH's sshd (also `sshd-session`, `sshd-auth`) and dropbear.

Fills action / outcome / user / src_ip / src_port (and a few extra keys) from
the syslog message of an sshd line. Covers every failure message that
fail2ban's sshd filter counts, plus logins, disconnects and session lines.

Peer addresses are kept exactly as written (`192.030.0.6` stays as is);
`::ffff:1.2.3.4` becomes `1.2.3.4`; a host name (`example.com`) goes to
`extra["src_host"]` and leaves `src_ip` empty.

For a `Failed ...` line whose user name itself contains ` from X`, the peer is
the first `from HOST [port N] [sshN]` that is followed by the end of the line
or by `: ` (fail2ban's rule), so `Failed password for invalid user test from
10.10.1.2 port 55555 ssh2 from 127.0.0.1 port 58946 ssh2` yields 127.0.0.1.

A message is dispatched on its first word (`_BY_WORD`). Messages that only
copy regex groups into fields are rows of that table (`table.rule`); the rest
(fast paths, outcomes that depend on the text, odd peer forms) are functions.
"""

from __future__ import annotations

import re

from soc_tui.model import Event

from .auth import pam_fields, pam_message
from .table import first, rule
from .util import add_extra, set_peer

# Leading noise before the real sshd message: log level words, Solaris
# `[ID 800047 auth.info]`, a kernel uptime stamp that some relays prepend.
_PREFIX_RE = re.compile(
    r"(?:(error|fatal|warning|debug\d?|verbose|info): "
    r"|\[ID \d+ [\w.]+\] "
    r"|kernel: ?\[ *\d+\.\d+\]:? ?)+"
)
_PREFIX_CHARS = frozenset("efwdvik[")

_FAILED_RE = re.compile(
    r"Failed (\S+) for (invalid user |illegal user )?(.*?) from (\S+?)"
    r"(?: port (\d+))?(?: ssh\d?)?(?=: | \[preauth\]$|$)"
)
# Fast paths for the everyday shapes; they give the same answer as the general
# patterns whenever they match (user and host contain no spaces).
_FAILED_FAST_RE = re.compile(
    r"Failed (\S+) for (invalid user |illegal user )?(\S+) from (\S+) port (\d+) ssh\d\Z"
)
_ACCEPTED_FAST_RE = re.compile(r"Accepted (\S+) for (\S+) from (\S+) port (\d+) ssh\d(?:: (.*))?\Z", re.S)
_ACCEPTED_RE = re.compile(
    r"Accepted (\S+) for (.*?) from (\S+?) port (\d+)(?: ssh\d?)?(?=: |$)(?:: (.*))?"
)
_INVALID_RE = re.compile(
    r"(?:Invalid|Illegal) user (.*?) from (\S+?)(?: port (\d+))?(?: \[preauth\])?$"
)
_USER_NOT_ALLOWED_RE = re.compile(r"User (.*?) from (\S+) not allowed because (.+)$")
_USER_NOT_ALLOWED_NOHOST_RE = re.compile(r"User (\S+) not allowed because (.+)$")
_ROOT_REFUSED_RE = re.compile(
    r"ROOT LOGIN REFUSED FROM (\S+?)(?: port (\d+))?(?: \[preauth\])?$"
)
_REFUSED_CONNECT_RE = re.compile(r"refused connect from (\S*)(?: \(([^)]*)\))?")
_NO_IDENT_RE = re.compile(
    r"Did not receive identification string from (\S+?)(?: port (\d+))?(?: \[preauth\])?$"
)
_BAD_PROTO_RE = re.compile(
    r"Bad protocol version identification .* from (\S+?)(?: port (\d+))?(?: \[preauth\])?$",
    re.S,
)
_MAX_AUTH_RE = re.compile(
    r"maximum authentication attempts exceeded for (invalid user |illegal user )?(.*?) "
    r"from (\S+?)(?: port (\d+))?(?: ssh\d?)?(?: \[preauth\])?$"
)
_TOO_MANY_RE = re.compile(
    r"Disconnecting: Too many authentication failures(?: for (invalid user |illegal user )?(\S+))?"
)
_DISCONNECTING_RE = re.compile(
    r"Disconnecting (?:(invalid|authenticating) )?user (.*?) (\S+) port (\d+)(?:: (.*?))?(?: \[preauth\])?$"
)
_RECEIVED_DISC_RE = re.compile(
    r"Received disconnect from (\S+)(?: port (\d+))?: ?(\d+): ?(.*?)(?: \[preauth\])?$"
)
_DISCONNECTED_RE = re.compile(
    r"Disconnected from (?:(?:(invalid|authenticating) )?user (.*) )?(\S+) port (\d+)(?: \[preauth\])?$"
)
_CONN_CLOSED_RE = re.compile(
    r"Connection (closed|reset) by (?:(?:(invalid|authenticating) )?user (.*?) )?(\S+?)"
    r"(?: port (\d+))?(?: \[preauth\])?$"
)
_CONN_FROM_RE = re.compile(r"Connection from (\S+) port (\d+)(?: on (\S+) port (\d+))?")
_TIMEOUT_RE = re.compile(
    r"Timeout before authentication for (?:connection from )?(\S+?)(?: port (\d+))?(?: to \S+, pid = \d+)?$"
)
_UNABLE_RE = re.compile(r"Unable to negotiate with (\S+?)(?: port (\d+))?: (.*)$", re.S)
_READ_ERROR_RE = re.compile(r"Read error from remote host (\S+?)(?: port (\d+))?: (.*)$", re.S)
_CONN_FROM_COLON_RE = re.compile(r"(?:banner exchange|ssh_dispatch_run_fatal): Connection from (\S+) port (\d+): (.*?)(?: \[preauth\])?$")
_REVERSE_RE = re.compile(r"reverse mapping checking getaddrinfo for (\S+) \[([^\]]+)\] failed")
_ADDRESS_RE = re.compile(r"Address (\S+) maps to (\S+), but this does not map back")
_PAM_ERR_RE = re.compile(
    r"PAM: (.*?) for (?:(?:illegal|invalid) user )?(.*?) from (\S+?)(?: via \S+)?\s*$"
)
_PAM_MORE_RE = re.compile(r"PAM (\d+) more authentication failures?;(.*)$")
_INPUT_REQ_RE = re.compile(r"input_userauth_request: (?:invalid|illegal) user (.*?)(?: \[preauth\])?$")
_POSTPONED_RE = re.compile(r"Postponed (\S+) for (?:invalid user |illegal user )?(.*?) from (\S+?) port (\d+)")
_STARTING_RE = re.compile(r"Starting session: (.*?) for (\S+) from (\S+) port (\d+)")
_SUBSYSTEM_RE = re.compile(r"subsystem request for (\S+) by user (\S+)")
_NO_MATCHING_RE = re.compile(r"no matching ")
_READ_FAILED_RE = re.compile(r"Read from socket failed")


_NO_NAME = "<invalid username>"  # what OpenSSH writes for a name it will not print


def _user(ev: Event, name: str | None) -> None:
    if name and name != _NO_NAME:
        ev.user = name


def _rule(regex, action=None, outcome=None, **fields):
    """One row of the sshd message table: see `table.rule`; a user is taken as `_user` takes it."""
    return rule(regex, action, outcome, not_a_name=_NO_NAME, **fields)


# --- messages that need more than "match, then copy groups" -------------------
def _failed(ev: Event, m: str) -> None:
    r = _FAILED_FAST_RE.match(m) or _FAILED_RE.match(m)
    if r is None:
        return
    method, inv, user, host, port = r.groups()
    ev.action = "ssh_auth_failure"
    ev.outcome = "failure"
    _user(ev, user)
    set_peer(ev, host, port)
    add_extra(ev, "auth_method", method)
    if inv or user == _NO_NAME:
        add_extra(ev, "invalid_user", True)


def _accepted(ev: Event, m: str) -> None:
    r = _ACCEPTED_FAST_RE.match(m) or _ACCEPTED_RE.match(m)
    if r is None:
        return
    method, user, host, port, key = r.groups()
    ev.action = "ssh_login"
    ev.outcome = "success"
    _user(ev, user)
    set_peer(ev, host, port)
    add_extra(ev, "auth_method", method)
    if key:
        add_extra(ev, "key", key)


def _refused(ev: Event, m: str) -> None:
    r = _REFUSED_CONNECT_RE.match(m)
    if r is None:
        return
    ev.action = "ssh_refused_connect"
    ev.outcome = "failure"
    host = r.group(2) or r.group(1)
    if "@" in host:
        host = host.rpartition("@")[2]
    set_peer(ev, host)


def _disconnecting_user(ev: Event, m: str) -> bool:
    r = _DISCONNECTING_RE.match(m)
    if r is None:
        return False
    kind, user, host, port, reason = r.groups()
    if reason and "Too many authentication failures" in reason:
        ev.action = "ssh_max_auth_exceeded"
    else:
        ev.action = "ssh_disconnect"
    ev.outcome = "failure"
    _user(ev, user)
    set_peer(ev, host, port)
    if reason:
        add_extra(ev, "reason", reason)
    if kind == "invalid":
        add_extra(ev, "invalid_user", True)
    return True


def _received(ev: Event, m: str) -> None:
    r = _RECEIVED_DISC_RE.match(m)
    if r is None:
        return
    host, port, code, reason = r.groups()
    ev.action = "ssh_disconnect"
    if m.endswith("[preauth]") or code in ("3", "14") or "Auth fail" in reason:
        ev.outcome = "failure"
    else:
        ev.outcome = "success"
    set_peer(ev, host, port)
    add_extra(ev, "disconnect_code", int(code))
    if reason:
        add_extra(ev, "reason", reason)


def _ended(ev: Event, m: str, action: str, kind, user, host, port, reset: bool = False) -> None:
    """`Disconnected from` / `Connection closed|reset by`: a failure when it ends an
    unauthenticated connection (an invalid or authenticating user, or `[preauth]`)."""
    ev.action = action
    ev.outcome = "failure" if (kind or m.endswith("[preauth]")) else "success"
    _user(ev, user)
    set_peer(ev, host, port)
    if reset:
        add_extra(ev, "reset", True)
    if kind == "invalid":
        add_extra(ev, "invalid_user", True)


def _disconnected(ev: Event, m: str) -> None:
    r = _DISCONNECTED_RE.match(m)
    if r is None:
        return
    kind, user, host, port = r.groups()
    _ended(ev, m, "ssh_disconnect", kind, user, host, port)


_CONNECTION_OPENED = _rule(
    _CONN_FROM_RE, "ssh_connection_opened", "unknown", host=1, port=2,
    extra={"dst_ip": 3, "dst_port": (4, int)},
)


def _connection(ev: Event, m: str) -> None:
    if m.startswith("Connection from "):
        _CONNECTION_OPENED(ev, m)
        return
    r = _CONN_CLOSED_RE.match(m)
    if r is None:
        return
    what, kind, user, host, port = r.groups()
    if host in ("peer", "remote"):
        return
    _ended(ev, m, "ssh_connection_closed", kind, user, host, port, reset=what == "reset")


def _address(ev: Event, m: str) -> None:
    r = _ADDRESS_RE.match(m)
    if r is None:
        return
    ev.action = "ssh_reverse_mapping_failed"
    ev.outcome = "unknown"
    set_peer(ev, r.group(1))
    add_extra(ev, "src_host", r.group(2).rstrip(","))


def _pam_more(ev: Event, m: str) -> None:
    r = _PAM_MORE_RE.match(m)
    if r is None:
        return
    kv = pam_fields(r.group(2))
    _user(ev, kv.get("user"))
    set_peer(ev, kv.get("rhost"))
    add_extra(ev, "more_failures", int(r.group(1)))


def _pam_module(ev: Event, m: str) -> None:
    pam_message(ev, m, "sshd")


# --- the message table: first word -> extractor -------------------------------
_INVALID = _rule(_INVALID_RE, "ssh_invalid_user", "failure", user=1, host=2, port=3)
_NEGOTIATION_FAILED = _rule(None, "ssh_negotiation_failed", "failure")
_CONN_FROM_COLON = _rule(
    _CONN_FROM_COLON_RE, "ssh_negotiation_failed", "failure", host=1, port=2, extra={"reason": 3}
)
_DISCONNECTING = first(
    _rule(_TOO_MANY_RE, "ssh_max_auth_exceeded", "failure", user=2),
    _disconnecting_user,
)

_BY_WORD = {
    "Failed": _failed,
    "Accepted": _accepted,
    "Invalid": _INVALID,
    "Illegal": _INVALID,
    "User": first(
        _rule(_USER_NOT_ALLOWED_RE, "ssh_user_not_allowed", "failure", user=1, host=2,
              extra={"reason": 3}),
        _rule(_USER_NOT_ALLOWED_NOHOST_RE, "ssh_user_not_allowed", "failure", user=1,
              extra={"reason": 2}),
    ),
    "ROOT": _rule(_ROOT_REFUSED_RE, "ssh_root_login_refused", "failure", user="root", host=1, port=2),
    "refused": _refused,
    "Did": _rule(_NO_IDENT_RE, "ssh_no_identification", "failure", host=1, port=2),
    "Bad": _rule(_BAD_PROTO_RE, "ssh_bad_protocol", "failure", host=1, port=2),
    "maximum": _rule(_MAX_AUTH_RE, "ssh_max_auth_exceeded", "failure", user=2, host=3, port=4,
                     flags={"invalid_user": 1}),
    "Disconnecting:": _DISCONNECTING,
    "Disconnecting": _DISCONNECTING,
    "Received": _received,
    "Disconnected": _disconnected,
    "Connection": _connection,
    "Timeout": _rule(_TIMEOUT_RE, "ssh_auth_timeout", "failure", host=1, port=2),
    "Unable": first(
        _rule(_UNABLE_RE, "ssh_negotiation_failed", "failure", host=1, port=2, extra={"reason": 3}),
        _NEGOTIATION_FAILED,
    ),
    "banner": _CONN_FROM_COLON,
    "ssh_dispatch_run_fatal:": _CONN_FROM_COLON,
    "kex_exchange_identification:": _NEGOTIATION_FAILED,
    "no": _rule(_NO_MATCHING_RE, "ssh_negotiation_failed", "failure"),
    "Read": first(
        _rule(_READ_FAILED_RE, "ssh_connection_closed", "failure"),
        _rule(_READ_ERROR_RE, "ssh_connection_closed", "failure", host=1, port=2, extra={"reason": 3}),
    ),
    "reverse": _rule(_REVERSE_RE, "ssh_reverse_mapping_failed", "unknown", host=2,
                     extra={"src_host": 1}),
    "Address": _address,
    "PAM:": _rule(_PAM_ERR_RE, "ssh_auth_failure", "failure", user=2, host=3,
                  fixed={"auth_method": "pam"}, extra={"reason": 1}),
    "PAM": _pam_more,
    # no action: these only add who/where to a line
    "input_userauth_request:": _rule(_INPUT_REQ_RE, user=1, fixed={"invalid_user": True}),
    "Postponed": _rule(_POSTPONED_RE, user=2, host=3, port=4, extra={"auth_method": 1}),
    "Starting": _rule(_STARTING_RE, user=2, host=3, port=4),
    "subsystem": _rule(_SUBSYSTEM_RE, user=2, extra={"subsystem": 1}),
}


def extract_sshd(ev: Event, msg: str) -> None:
    if not msg:
        return
    if msg[0] in _PREFIX_CHARS:
        p = _PREFIX_RE.match(msg)
        if p is not None:
            if p.group(1) and ev.level is None:
                lvl = p.group(1)
                ev.level = "critical" if lvl == "fatal" else ("debug" if lvl.startswith("debug") else lvl)
            msg = msg[p.end():]
            if not msg:
                return
    i = msg.find(" ")
    word = msg if i < 0 else msg[:i]
    fn = _BY_WORD.get(word)
    if fn is not None:
        fn(ev, msg)
    elif word.startswith("pam_") or word.startswith("(pam_"):
        _pam_module(ev, msg)


# --- dropbear -----------------------------------------------------------------
_DB_BAD_PW_RE = re.compile(r"[Bb]ad password attempt for '(.*)' from (\S+)$")
_DB_NOUSER_RE = re.compile(r"[Ll]ogin attempt for nonexistent user(?: '(.*)')? from (\S+)$")
_DB_OK_RE = re.compile(r"(Password|Pubkey) auth succeeded for '(.*)' (?:with key .* )?from (\S+)$")


def _db_peer(ev: Event, hp: str) -> None:
    """Dropbear writes the peer as one `host:port` word."""
    host, _, port = hp.rpartition(":")
    if host and port.isdigit():
        set_peer(ev, host, port)
    else:
        set_peer(ev, hp)


extract_dropbear = first(
    _rule(_DB_BAD_PW_RE, "ssh_auth_failure", "failure", user=1, host=2, peer=_db_peer),
    _rule(_DB_NOUSER_RE, "ssh_invalid_user", "failure", user=1, host=2, peer=_db_peer),
    _rule(_DB_OK_RE, "ssh_login", "success", user=2, host=3, peer=_db_peer,
          extra={"auth_method": (1, str.lower)}),
)

EXTRACTORS = {
    "sshd": extract_sshd,
    "sshd-session": extract_sshd,
    "sshd-auth": extract_sshd,
    "dropbear": extract_dropbear,
}

# (line, expected fields). `extra.KEY` checks one extra key; `ts` is ISO UTC.
# Parsed with tz="UTC" and now = 2026-03-02T12:00:00Z (see parse.samples).
SAMPLES: list[tuple[str, dict]] = [
    (
        "Mar  1 10:15:02 web-01 sshd[2211]: Failed password for root from 203.0.113.7 port 51022 ssh2",
        {"ts": "2026-03-01T10:15:02Z", "host": "web-01", "app": "sshd", "pid": 2211,
         "action": "ssh_auth_failure", "outcome": "failure", "user": "root",
         "src_ip": "203.0.113.7", "src_port": 51022, "extra.auth_method": "password"},
    ),
    (
        "Mar  1 10:15:04 web-01 sshd[2211]: Failed password for invalid user oracle from 203.0.113.7 port 51030 ssh2",
        {"action": "ssh_auth_failure", "user": "oracle", "src_ip": "203.0.113.7",
         "extra.invalid_user": True},
    ),
    (
        "Mar  1 10:15:05 bastion sshd[88]: Failed publickey for deploy from 2001:db8::17 port 40022 ssh2: ED25519 SHA256:abcdEFGHijkl",
        {"action": "ssh_auth_failure", "user": "deploy", "src_ip": "2001:db8::17", "src_port": 40022},
    ),
    (
        "Mar  1 10:15:06 bastion sshd[88]: Failed password for invalid user admin from 198.51.100.9 port 1 ssh2 from 203.0.113.50 port 40022 ssh2",
        {"src_ip": "203.0.113.50", "src_port": 40022, "user": "admin from 198.51.100.9 port 1 ssh2"},
    ),
    (
        "Mar  1 10:16:00 web-01 sshd[2301]: Accepted publickey for alice from 198.51.100.23 port 50110 ssh2: ED25519 SHA256:Zm9vYmFy",
        {"action": "ssh_login", "outcome": "success", "user": "alice",
         "src_ip": "198.51.100.23", "src_port": 50110, "extra.auth_method": "publickey"},
    ),
    (
        "Mar  1 10:16:01 web-01 sshd[2302]: Accepted keyboard-interactive/pam for bob from 198.51.100.24 port 50111 ssh2",
        {"action": "ssh_login", "user": "bob", "src_ip": "198.51.100.24"},
    ),
    (
        "Mar  1 10:16:02 web-01 sshd[2303]: Invalid user test from 203.0.113.8 port 43210",
        {"action": "ssh_invalid_user", "outcome": "failure", "user": "test",
         "src_ip": "203.0.113.8", "src_port": 43210},
    ),
    (
        "Mar  1 10:16:03 web-01 sshd[2303]: Invalid user  from 203.0.113.8 port 43211",
        {"action": "ssh_invalid_user", "user": None, "src_ip": "203.0.113.8"},
    ),
    (
        "Mar  1 10:16:04 web-01 sshd[2304]: Connection closed by invalid user test 203.0.113.8 port 43210 [preauth]",
        {"action": "ssh_connection_closed", "outcome": "failure", "user": "test", "src_ip": "203.0.113.8"},
    ),
    (
        "Mar  1 10:16:05 web-01 sshd[2305]: Connection closed by authenticating user root 203.0.113.9 port 22222 [preauth]",
        {"action": "ssh_connection_closed", "user": "root", "src_ip": "203.0.113.9", "src_port": 22222},
    ),
    (
        "Mar  1 10:16:06 web-01 sshd[2306]: Connection reset by 203.0.113.10 port 5050 [preauth]",
        {"action": "ssh_connection_closed", "src_ip": "203.0.113.10", "extra.reset": True},
    ),
    (
        "Mar  1 10:16:07 web-01 sshd[2307]: Received disconnect from 203.0.113.11 port 5151:11: Bye Bye [preauth]",
        {"action": "ssh_disconnect", "outcome": "failure", "src_ip": "203.0.113.11",
         "src_port": 5151, "extra.disconnect_code": 11},
    ),
    (
        "Mar  1 10:16:08 web-01 sshd[2308]: Received disconnect from 198.51.100.23 port 50110:11: disconnected by user",
        {"action": "ssh_disconnect", "outcome": "success", "src_ip": "198.51.100.23"},
    ),
    (
        "Mar  1 10:16:09 web-01 sshd[2309]: Disconnected from authenticating user root 203.0.113.12 port 5252 [preauth]",
        {"action": "ssh_disconnect", "outcome": "failure", "user": "root", "src_ip": "203.0.113.12"},
    ),
    (
        "Mar  1 10:16:10 web-01 sshd[2310]: Disconnected from user alice 198.51.100.23 port 50110",
        {"action": "ssh_disconnect", "outcome": "success", "user": "alice"},
    ),
    (
        "Mar  1 10:16:11 web-01 sshd[2311]: error: maximum authentication attempts exceeded for root from 203.0.113.13 port 5353 ssh2 [preauth]",
        {"action": "ssh_max_auth_exceeded", "user": "root", "src_ip": "203.0.113.13", "level": "error"},
    ),
    (
        "Mar  1 10:16:12 web-01 sshd[2312]: Disconnecting invalid user admin 203.0.113.14 port 5454: Too many authentication failures [preauth]",
        {"action": "ssh_max_auth_exceeded", "user": "admin", "src_ip": "203.0.113.14"},
    ),
    (
        "Mar  1 10:16:13 web-01 sshd[2313]: Disconnecting: Too many authentication failures for git [preauth]",
        {"action": "ssh_max_auth_exceeded", "user": "git", "src_ip": None},
    ),
    (
        "Mar  1 10:16:14 web-01 sshd[2314]: User root from 203.0.113.15 not allowed because not listed in AllowUsers",
        {"action": "ssh_user_not_allowed", "user": "root", "src_ip": "203.0.113.15"},
    ),
    (
        "Mar  1 10:16:15 web-01 sshd[2315]: ROOT LOGIN REFUSED FROM ::ffff:203.0.113.16",
        {"action": "ssh_root_login_refused", "user": "root", "src_ip": "203.0.113.16"},
    ),
    (
        "Mar  1 10:16:16 web-01 sshd[2316]: refused connect from attacker.example (203.0.113.17)",
        {"action": "ssh_refused_connect", "src_ip": "203.0.113.17"},
    ),
    (
        "Mar  1 10:16:17 web-01 sshd[2317]: Did not receive identification string from 203.0.113.18 port 6000",
        {"action": "ssh_no_identification", "src_ip": "203.0.113.18", "src_port": 6000},
    ),
    (
        "Mar  1 10:16:18 web-01 sshd[2318]: Bad protocol version identification 'GET / HTTP/1.1' from 203.0.113.19 port 6001",
        {"action": "ssh_bad_protocol", "src_ip": "203.0.113.19"},
    ),
    (
        "Mar  1 10:16:19 web-01 sshd[2319]: fatal: Timeout before authentication for 203.0.113.20 port 6002",
        {"action": "ssh_auth_timeout", "src_ip": "203.0.113.20", "level": "critical"},
    ),
    (
        "Mar  1 10:16:20 web-01 sshd[2320]: Unable to negotiate with 203.0.113.21 port 6003: no matching key exchange method found. Their offer: diffie-hellman-group1-sha1 [preauth]",
        {"action": "ssh_negotiation_failed", "src_ip": "203.0.113.21", "src_port": 6003},
    ),
    (
        "Mar  1 10:16:21 web-01 sshd[2321]: banner exchange: Connection from 203.0.113.22 port 6004: invalid format",
        {"action": "ssh_negotiation_failed", "src_ip": "203.0.113.22"},
    ),
    (
        "Mar  1 10:16:22 web-01 sshd[2322]: reverse mapping checking getaddrinfo for host-7.example.net [203.0.113.23] failed - POSSIBLE BREAK-IN ATTEMPT!",
        {"action": "ssh_reverse_mapping_failed", "src_ip": "203.0.113.23",
         "extra.src_host": "host-7.example.net"},
    ),
    (
        "Mar  1 10:16:23 web-01 sshd[2323]: error: PAM: Authentication failure for alice from client.example.org",
        {"action": "ssh_auth_failure", "user": "alice", "src_ip": None,
         "extra.src_host": "client.example.org"},
    ),
    (
        "Mar  1 10:16:24 web-01 sshd[2324]: pam_unix(sshd:auth): authentication failure; logname= uid=0 euid=0 tty=ssh ruser= rhost=203.0.113.24  user=root",
        {"action": "pam_auth_failure", "outcome": "failure", "user": "root",
         "src_ip": "203.0.113.24", "extra.pam_service": "sshd"},
    ),
    (
        "Mar  1 10:16:24 web-01 sshd[2327]: pam_unix(sshd:auth): authentication failure; logname= uid=0 euid=0 tty=ssh ruser= rhost=203.0.113.26  user=rda rhost=10.0.0.1",
        {"action": "pam_auth_failure", "user": "rda rhost=10.0.0.1", "src_ip": "203.0.113.26"},
    ),
    (
        "Mar  1 10:16:25 web-01 sshd[2325]: pam_unix(sshd:session): session opened for user alice(uid=1000) by (uid=0)",
        {"action": "ssh_session_opened", "outcome": "success", "user": "alice"},
    ),
    (
        "Mar  1 10:16:26 web-01 sshd[2325]: pam_unix(sshd:session): session closed for user alice",
        {"action": "ssh_session_closed", "user": "alice"},
    ),
    (
        "Mar  1 10:16:27 web-01 sshd[2326]: message repeated 4 times: [ Failed password for root from 203.0.113.25 port 6010 ssh2]",
        {"repeat": 4, "action": "ssh_auth_failure", "src_ip": "203.0.113.25",
         "message": "Failed password for root from 203.0.113.25 port 6010 ssh2"},
    ),
    (
        "Mar  1 10:16:28 web-01 sshd[2327]: Connection from 203.0.113.26 port 6011 on 192.0.2.10 port 22 rdomain \"\"",
        {"action": "ssh_connection_opened", "src_ip": "203.0.113.26", "extra.dst_port": 22},
    ),
    (
        "Mar  1 10:16:29 web-01 sshd-session[2328]: Failed password for root from 203.0.113.27 port 6012 ssh2",
        {"app": "sshd-session", "action": "ssh_auth_failure", "src_ip": "203.0.113.27"},
    ),
    (
        "Mar  1 10:16:30 web-01 dropbear[77]: Bad password attempt for 'root' from ::ffff:203.0.113.28:6013",
        {"action": "ssh_auth_failure", "user": "root", "src_ip": "203.0.113.28", "src_port": 6013},
    ),
]
