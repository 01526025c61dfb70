"""Log parsing: envelopes (where a line's time/host/program/message are) and
message extractors (what the message says), producing `soc_tui.model.Event`.

Owns: turning one line of text into one Event. Must not: do I/O, touch SQLite,
import Textual. It never raises on input and never drops a line.

Interface::

    from soc_tui.parse import LineParser, FORMATS
    p = LineParser(fmt="auto", source_id="/var/log/auth.log", host=None, year=None, tz=None)
    ev = p.parse(line, flags=0, now_us=None)

Envelopes (modules): `syslog` (RFC 3164 with/without year and `<PRI>`, RFC 5424,
ISO-timestamp syslog, bare `host prog[pid]: msg`), `web` (Apache/nginx access
logs: common, combined, vhost_combined; Apache 2.2/2.4 and nginx error logs),
`jsonlog` (journalctl -o json records, generic JSON lines), `audit` (auditd
records, format "auto" only). A line no envelope
matches becomes Event(ts=now, message=raw, flags=UNPARSED|TS_GUESSED).

Fields: message is the text after the envelope (for access logs: the request
line, e.g. `GET /x HTTP/1.1`; raw keeps the whole line). A syslog line
`message repeated N times: [ msg ]` is stored once with repeat = N, message =
the inner msg and fields extracted from it (raw kept whole). A
`last message repeated N times` line (no inner message) gets
extra["last_message_repeated"] = N and repeat stays 1. PAM's summary line
`PAM N more authentication failures; ... rhost=H user=U` gets user/src_ip and
extra["more_failures"] = N but no action (each failure was logged already).

`python -m soc_tui.parse FILE...` prints the unparsed share, the actions found
and the parse speed for files (`--show` prints the events as JSON).

Action vocabulary (Event.action; outcome is success / failure / unknown):

  ssh (sshd, sshd-session, sshd-auth, dropbear):
    ssh_login                   Accepted password/publickey/keyboard-interactive (success)
    ssh_auth_failure            Failed <method> for ..., error: PAM: ... failure/error for X from H
    ssh_invalid_user            Invalid user / Illegal user / dropbear nonexistent user
    ssh_user_not_allowed        User X [from H] not allowed because ...
    ssh_root_login_refused      ROOT LOGIN REFUSED FROM H
    ssh_refused_connect         refused connect from H (tcp wrappers)
    ssh_no_identification       Did not receive identification string from H
    ssh_bad_protocol            Bad protocol version identification ... from H
    ssh_negotiation_failed      Unable to negotiate with H, no matching cipher/mac/kex,
                                banner exchange / ssh_dispatch_run_fatal / kex_exchange_identification
    ssh_max_auth_exceeded       maximum authentication attempts exceeded / Too many authentication failures
    ssh_auth_timeout            Timeout before authentication for H
    ssh_disconnect              Received disconnect / Disconnected from / Disconnecting ... (failure if preauth)
    ssh_connection_closed       Connection closed/reset by H, Read from socket failed (failure if preauth)
    ssh_connection_opened       Connection from H port N on ... (unknown)
    ssh_reverse_mapping_failed  reverse mapping checking getaddrinfo ... POSSIBLE BREAK-IN ATTEMPT,
                                Address A maps to N, but this does not map back (unknown)
    ssh_session_opened / ssh_session_closed      pam_unix(sshd:session)
  pam (any program):
    pam_auth_failure            pam_xxx(svc:auth) / pam_xxx(auth): authentication failure; ... (not sudo)
    session_opened / session_closed              pam sessions of other services, systemd-logind
  sudo:
    sudo_command                user : TTY=.. ; PWD=.. ; USER=.. ; COMMAND=.. (success)
    sudo_auth_failure           N incorrect password attempts, pam_unix(sudo:auth) failure,
                                a password is required
    sudo_not_in_sudoers         user NOT in sudoers / NOT authorized on host
    sudo_command_denied         command not allowed
    sudo_session_opened / sudo_session_closed
  su:
    su                          Successful/FAILED su, + / - tty a:b, (to X) Y on tty, FAILED SU
    su_session_opened / su_session_closed
  accounts (useradd, usermod, userdel, groupadd, groupmod, groupdel, gpasswd, passwd, chage, chfn, chsh):
    user_created, user_modified, user_deleted, group_created, group_modified, group_deleted,
    group_member_added, group_member_removed, password_changed
  cron:
    cron_command                (user) CMD (command)
    cron_session_opened / cron_session_closed    pam_unix(cron:session)
    crontab_modified            crontab (user) REPLACE / DELETE
  firewall (kernel netfilter / UFW lines from any program):
    firewall_block, firewall_allow, firewall_log
  web:
    http_request                every access-log line (outcome from status: <400 success)
    http_auth_failure, http_access_denied, http_not_found, http_bad_request,
    http_rate_limited, http_waf_block, http_waf_alert, tls_handshake_failed
                                Apache/nginx error-log messages
"""

from __future__ import annotations

from .parser import FORMATS, LineParser

ACTIONS: frozenset[str] = frozenset(
    """
    ssh_login ssh_auth_failure ssh_invalid_user ssh_user_not_allowed ssh_root_login_refused
    ssh_refused_connect ssh_no_identification ssh_bad_protocol ssh_negotiation_failed
    ssh_max_auth_exceeded ssh_auth_timeout ssh_disconnect ssh_connection_closed
    ssh_connection_opened ssh_reverse_mapping_failed ssh_session_opened ssh_session_closed
    pam_auth_failure session_opened session_closed
    sudo_command sudo_auth_failure sudo_not_in_sudoers sudo_command_denied
    sudo_session_opened sudo_session_closed
    su su_session_opened su_session_closed
    user_created user_modified user_deleted group_created group_modified group_deleted
    group_member_added group_member_removed password_changed
    cron_command cron_session_opened cron_session_closed crontab_modified
    firewall_block firewall_allow firewall_log
    http_request http_auth_failure http_access_denied http_not_found http_bad_request
    http_rate_limited http_waf_block http_waf_alert tls_handshake_failed
    """.split()
)

# The parameters under which every module's SAMPLES are checked.
SAMPLE_TZ = "UTC"
SAMPLE_NOW = "2026-03-02T12:00:00Z"


def all_samples() -> list[tuple[str, str, dict]]:
    """(module name, line, expected fields) for every SAMPLES entry of every module."""
    from . import audit, auth, jsonlog, kernel, sshd, syslog, web

    out = []
    for mod in (syslog, web, jsonlog, audit, sshd, auth, kernel):
        for line, expected in mod.SAMPLES:
            out.append((mod.__name__.rsplit(".", 1)[-1], line, expected))
    return out


__all__ = ["ACTIONS", "FORMATS", "LineParser", "all_samples"]
