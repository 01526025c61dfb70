"""Message extractors for privilege and account programs.

sudo, su, PAM (any program's `pam_xxx(service:type): ...` lines), account
tools (useradd/adduser, usermod, userdel, groupadd, groupmod, groupdel,
gpasswd, passwd, chpasswd, chage, chfn, chsh), cron/crontab and
systemd-logind.

Who is who:
- sudo: `user` ran the command, `target_user` is the `USER=` it ran as.
- su: `user` is who switched, `target_user` the account switched to.
- account tools: `target_user` is the account created/changed/deleted, `user`
  the acting admin when the line says (`gpasswd`, `passwd ... changed by`).
- PAM sessions: ssh/cron/login sessions put the session's account in `user`;
  su/sudo sessions put the invoking user (the `by X` part) in `user` and the
  session's account in `target_user`.

PAM failure lines (`authentication failure; logname= uid= euid= tty= ruser=
rhost= [user=]`, `N more authentication failures; ...`) are read by
`pam_fields`: PAM writes the fields in that order and copies ruser and user as
the application gave them, so both may be the client's text (sshd puts the
login name in user, FTP daemons in ruser and user) with spaces and `rhost=` in
it. user is the rest of the line, never split into fields.

The account tools' messages and the simple cron/logind ones are table rows
(`table.rule`), tried in order; the others are written out.
"""

from __future__ import annotations

import re

from soc_tui.model import Event

from .table import first, rule
from .util import add_extra, decode_octal_escapes, set_peer, strip_uid

# ---------------------------------------------------------------- PAM ------
# `pam_unix(sshd:auth): `, `pam_unix(auth): ` (no service), `pam_unix: `, `(pam_unix) `
_PAM_RE = re.compile(r"\(?(pam_[\w-]+)(?:\((?:([^:()]*):)?(\w+)\))?\)?:? ?(.*)$", re.S)
_KV_RE = re.compile(r"(\w+)=(\S*)")
_RUSER_RE = re.compile(r"(?<!\S)ruser=")
_RHOST_RE = re.compile(r"(?<!\S)rhost=(\S*)")
_USER_RE = re.compile(r"(?<!\S)user=")
_PAM_TAIL_RE = re.compile(r"\s+user=(.*)|\s*$", re.S)
_SESSION_RE = re.compile(
    r"session (opened|closed) for user (\S+?)(?:\(uid=\d+\))?(?: by (\S*))?\s*$"
)
_PW_CHANGED_RE = re.compile(r"password changed for (\S+)")

_SESSION_ACTIONS = {
    "sshd": "ssh_session_",
    "sshd-session": "ssh_session_",
    "su": "su_session_",
    "su-l": "su_session_",
    "sudo": "sudo_session_",
    "sudo-i": "sudo_session_",
    "cron": "cron_session_",
    "crond": "cron_session_",
    "CRON": "cron_session_",
}


def pam_fields(body: str) -> dict[str, str]:
    """The key=value fields of a PAM failure line (values may be empty).

    PAM writes `logname=.. uid=.. euid=.. tty=.. ruser=R rhost=H[  user=U]`,
    and R and U are whatever the application passed (the client's login name
    for sshd's U, an FTP daemon's R and U), spaces and `rhost=` included. So
    the real rhost is a `rhost=` token that ends the line or is followed by
    ` user=`; user is all the rest of the line after that, ruser all the text
    between `ruser=` and it. When more than one `rhost=` fits, the reading
    where ruser equals user wins (the FTP daemons put the same name in
    both), else the first one (sshd's ruser is empty, so its `user=` comes
    right after the real rhost). The fields before `ruser=` are PAM's own
    and take their first occurrence. A line that does not have this shape
    (text after rhost, no rhost) gets the first occurrence of every key up
    to the first `user=`, and user the rest of the line.
    """
    r = _RUSER_RE.search(body)
    start = 0 if r is None else r.end()
    best = None  # (where PAM's own fields end, ruser, rhost, user)
    for m in _RHOST_RE.finditer(body, start):
        t = _PAM_TAIL_RE.match(body, m.end())
        if t is None:
            continue
        ruser = None if r is None else body[start:m.start()].strip()
        user = t.group(1)
        cand = (m.start() if r is None else r.start(), ruser, m.group(1),
                None if user is None else user.strip())
        if best is None:
            best = cand
        if ruser and ruser == cand[3]:
            best = cand
            break
    kv: dict[str, str] = {}
    if best is not None:
        head_end, ruser, rhost, user = best
    else:
        u = _USER_RE.search(body, start)
        head_end = len(body) if u is None else u.start()
        ruser = rhost = None
        user = None if u is None else body[u.end():].strip()
    for k, v in _KV_RE.findall(body, 0, head_end):
        kv.setdefault(k, v)
    if ruser is not None:
        kv["ruser"] = ruser
    if rhost is not None:
        kv["rhost"] = rhost
    if user is not None:
        kv["user"] = user
    return kv


def pam_body(ev: Event, service: str | None, body: str) -> None:
    """Interpret the text after `pam_unix(service:type): ` (or a headless old-style one)."""
    if body.startswith("authentication failure"):
        kv = pam_fields(body)
        user = kv.get("user") or None
        ruser = kv.get("ruser") or None
        logname = kv.get("logname") or None
        rhost = kv.get("rhost") or None
        ev.outcome = "failure"
        if service in ("sudo", "sudo-i"):
            ev.action = "sudo_auth_failure"
            ev.user = user or ruser or logname
        elif service in ("su", "su-l"):
            ev.action = "pam_auth_failure"
            ev.user = ruser or logname
            ev.target_user = user
        else:
            ev.action = "pam_auth_failure"
            ev.user = user
            if ruser:
                add_extra(ev, "ruser", ruser)
        if rhost:
            set_peer(ev, rhost)
        tty = kv.get("tty")
        if tty:
            add_extra(ev, "tty", tty)
        if service:
            add_extra(ev, "pam_service", service)
        return
    if body.startswith("session "):
        r = _SESSION_RE.match(body)
        if r is None:
            return
        what, user, by = r.groups()
        prefix = _SESSION_ACTIONS.get(service or "", "session_")
        ev.action = prefix + what
        ev.outcome = "success"
        by_name = strip_uid(by)
        if prefix in ("su_session_", "sudo_session_"):
            ev.user = by_name
            ev.target_user = user
        else:
            ev.user = user
            if by_name:
                add_extra(ev, "by", by_name)
        if service:
            add_extra(ev, "pam_service", service)
        return
    if body[:1].isdigit() and " more authentication failure" in body:
        # "2 more authentication failures; logname= ... rhost=H user=U" (a summary:
        # the individual failures were logged already, so no action)
        kv = pam_fields(body)
        ev.user = kv.get("user") or None
        if kv.get("rhost"):
            set_peer(ev, kv["rhost"])
        n = body.split(" ", 1)[0]
        add_extra(ev, "more_failures", int(n))
        return
    if body.startswith("password changed for"):
        r = _PW_CHANGED_RE.match(body)
        if r is not None:
            ev.action = "password_changed"
            ev.outcome = "success"
            ev.target_user = r.group(1)
            if service:
                add_extra(ev, "pam_service", service)


def pam_message(ev: Event, msg: str, default_service: str | None = None) -> bool:
    """A `pam_xxx(service:type): body` message; returns False when it is not one."""
    r = _PAM_RE.match(msg)
    if r is None:
        return False
    module, service, _kind, body = r.groups()
    add_extra(ev, "pam_module", module)
    pam_body(ev, service or default_service or ev.app, body)
    return True


# --------------------------------------------------------------- sudo ------
_SUDO_RE = re.compile(
    r"\s*(\S+) : (?:(.*?) ; )?TTY=(\S*) ; PWD=(.*?) ; USER=(\S+) ;"
    r"(?: GROUP=(\S+) ;)?(?: TSID=\S+ ;)?(?: ENV=(.*?) ;)? COMMAND=(.*)$",
    re.S,
)
_SUDO_ATTEMPTS_RE = re.compile(r"(\d+) incorrect password attempts?")
_SUDO_CONT_RE = re.compile(r"\s*(\S+) : \(command continued\) (.*)$", re.S)


def extract_sudo(ev: Event, msg: str) -> None:
    r = _SUDO_RE.match(msg)
    if r is not None:
        user, reason, tty, pwd, target, group, env, command = r.groups()
        ev.user = user
        ev.target_user = target
        command = decode_octal_escapes(command)
        add_extra(ev, "command", command)
        add_extra(ev, "tty", tty)
        add_extra(ev, "pwd", pwd)
        if group:
            add_extra(ev, "group", group)
        if env:
            add_extra(ev, "env", env)
        if reason is None:
            ev.action = "sudo_command"
            ev.outcome = "success"
            return
        ev.outcome = "failure"
        add_extra(ev, "reason", reason)
        a = _SUDO_ATTEMPTS_RE.match(reason)
        if a is not None:
            ev.action = "sudo_auth_failure"
            add_extra(ev, "attempts", int(a.group(1)))
        elif "NOT in sudoers" in reason or "NOT authorized" in reason:
            ev.action = "sudo_not_in_sudoers"
        elif "command not allowed" in reason:
            ev.action = "sudo_command_denied"
        elif "password is required" in reason:
            ev.action = "sudo_auth_failure"
        else:
            ev.action = "sudo_command"
        return
    s = msg.lstrip()
    if s.startswith("pam_") or s.startswith("(pam_"):
        pam_message(ev, s, "sudo")
        return
    r = _SUDO_CONT_RE.match(msg)
    if r is not None:
        ev.user = r.group(1)
        add_extra(ev, "command_continued", decode_octal_escapes(r.group(2)))


# ----------------------------------------------------------------- su ------
_SU_CLASSIC_RE = re.compile(r"(Successful|FAILED) su for (\S+) by (\S+)")
_SU_PLUSMINUS_RE = re.compile(r"([+-]) (\S+) (\S+?):(\S+)\s*$")
_SU_UTIL_RE = re.compile(r"(FAILED SU )?\(to (\S+)\) (\S+) on (\S+)")
_SU_BAD_RE = re.compile(r"BAD SU (\S+) to (\S+) on (\S+)")
_SU_BSD_RE = re.compile(r"(\S+) to (\S+) on (\S+)\s*$")
_SU_IRIX_RE = re.compile(r"(succeeded|failed): (\S+) changing from (\S+) to (\S+)")


def _su(ev: Event, ok: bool, user: str | None, target: str | None, tty: str | None = None) -> None:
    ev.action = "su"
    ev.outcome = "success" if ok else "failure"
    ev.user = user
    ev.target_user = target
    if tty:
        add_extra(ev, "tty", tty)


def extract_su(ev: Event, msg: str) -> None:
    if msg.startswith("pam_") or msg.startswith("(pam_"):
        pam_message(ev, msg, "su")
        return
    r = _SU_CLASSIC_RE.match(msg)
    if r is not None:
        _su(ev, r.group(1) == "Successful", r.group(3), r.group(2))
        return
    r = _SU_PLUSMINUS_RE.match(msg)
    if r is not None:
        _su(ev, r.group(1) == "+", r.group(3), r.group(4), r.group(2))
        return
    r = _SU_UTIL_RE.match(msg)
    if r is not None:
        _su(ev, r.group(1) is None, r.group(3), r.group(2), r.group(4))
        return
    r = _SU_BAD_RE.match(msg)
    if r is not None:
        _su(ev, False, r.group(1), r.group(2), r.group(3))
        return
    r = _SU_IRIX_RE.match(msg)
    if r is not None:
        _su(ev, r.group(1) == "succeeded", r.group(3), r.group(4), r.group(2))
        return
    r = _SU_BSD_RE.match(msg)
    if r is not None:
        _su(ev, True, r.group(1), r.group(2), r.group(3))


# ---------------------------------------------------- account tools ------
_Q = r"[`'\"]"
_NEW_USER_RE = re.compile(r"new user: (.*)$")
_NEW_GROUP_RE = re.compile(r"new group: (.*)$")
_GROUP_ADDED_RE = re.compile(r"group added to (\S+): name=([^,\s]+)")
_ADD_TO_GROUP_RE = re.compile(rf"add {_Q}([^`'\"]+){_Q} to (shadow )?group {_Q}([^`'\"]+){_Q}")
_DEL_FROM_GROUP_RE = re.compile(rf"delete {_Q}([^`'\"]+){_Q} from (shadow )?group {_Q}([^`'\"]+){_Q}")
_DEL_USER_RE = re.compile(rf"delete user {_Q}([^`'\"]+){_Q}")
_DEL_GROUP_RE = re.compile(rf"(?:remove|removed) group {_Q}([^`'\"]+){_Q}")
_GROUP_REMOVED_RE = re.compile(rf"group {_Q}([^`'\"]+){_Q} removed( from .*)?$")
_GPASSWD_ADD_RE = re.compile(r"user (\S+) added by (\S+) to group (\S+)")
_GPASSWD_DEL_RE = re.compile(r"user (\S+) removed by (\S+) from group (\S+)")
_GPASSWD_SET_RE = re.compile(r"members of group (\S+) set by (\S+) to (.*)$")
_CHANGE_USER_RE = re.compile(rf"change user {_Q}([^`'\"]+){_Q} (\w+) from {_Q}([^`'\"]*){_Q} to {_Q}([^`'\"]*){_Q}")
_CHANGE_NAME_RE = re.compile(rf"change user name {_Q}([^`'\"]+){_Q} to {_Q}([^`'\"]+){_Q}")
_LOCK_RE = re.compile(rf"(lock|unlock) user {_Q}([^`'\"]+){_Q} password")
_CHANGE_USER_ANY_RE = re.compile(rf"change user {_Q}([^`'\"]+){_Q} (.*)$")
_GROUP_CHANGED_RE = re.compile(r"group changed in (\S+) \(group ([^/\s]+)/(\d+), (.*)\)")
_PW_CHANGED_BY_RE = re.compile(rf"password for {_Q}([^`'\"]+){_Q} changed by {_Q}([^`'\"]+){_Q}")
_CHAGE_RE = re.compile(r"changed password expiry for (\S+)")
_CHFN_RE = re.compile(rf"changed user {_Q}([^`'\"]+){_Q} (information|shell)")
_FAILED_ADD_RE = re.compile(rf"failed adding user {_Q}([^`'\"]+){_Q}")


def _kv_commas(s: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for part in s.split(","):
        k, sep, v = part.strip().partition("=")
        if sep:
            out[k.lower()] = v.strip()
    return out


def _int_or(v: str | None):
    if v is None:
        return None
    try:
        return int(v)
    except ValueError:
        return v


def _new_user(ev: Event, msg: str) -> bool:
    r = _NEW_USER_RE.match(msg)
    if r is None:
        return False
    kv = _kv_commas(r.group(1))
    ev.action, ev.outcome = "user_created", "success"
    ev.target_user = kv.get("name")
    for k in ("uid", "gid"):
        if k in kv:
            add_extra(ev, k, _int_or(kv[k]))
    for k in ("home", "shell", "from"):
        if k in kv:
            add_extra(ev, k, kv[k])
    return True


def _new_group(ev: Event, msg: str) -> bool:
    r = _NEW_GROUP_RE.match(msg)
    if r is None:
        return False
    kv = _kv_commas(r.group(1))
    ev.action, ev.outcome = "group_created", "success"
    add_extra(ev, "group", kv.get("name"))
    if "gid" in kv:
        add_extra(ev, "gid", _int_or(kv["gid"]))
    return True


def _change_user(ev: Event, msg: str) -> bool:
    r = _CHANGE_USER_RE.match(msg)
    if r is None:
        return False
    ev.action, ev.outcome = "user_modified", "success"
    ev.target_user = r.group(1)
    field = r.group(2).lower()
    add_extra(ev, "field", field)
    add_extra(ev, "old", r.group(3))
    add_extra(ev, "new", r.group(4))
    if field in ("uid", "gid"):
        add_extra(ev, field, _int_or(r.group(4)))
    return True


# The account tools' messages, tried in order (see `table.rule`). A shadow-file
# line (`... shadow group ...`, `group X removed from /etc/gshadow`) is the
# companion of the line before it: its fields are kept but it gets no action,
# so the change is not counted twice.
_ACCOUNT_MESSAGES = (
    _new_user,
    _new_group,
    rule(_GROUP_ADDED_RE, extra={"group": 2}),  # companion line of "new group:"
    rule(_ADD_TO_GROUP_RE, "group_member_added", "success", target=1, extra={"group": 3}, companion=2),
    rule(_DEL_FROM_GROUP_RE, "group_member_removed", "success", target=1, extra={"group": 3}, companion=2),
    rule(_GPASSWD_ADD_RE, "group_member_added", "success", target=1, user=2, extra={"group": 3}),
    rule(_GPASSWD_DEL_RE, "group_member_removed", "success", target=1, user=2, extra={"group": 3}),
    rule(_GPASSWD_SET_RE, "group_modified", "success", user=2, extra={"group": 1, "members": 3}),
    rule(_DEL_USER_RE, "user_deleted", "success", target=1),
    rule(_DEL_GROUP_RE, "group_deleted", "success", extra={"group": 1}),
    rule(_GROUP_REMOVED_RE, "group_deleted", "success", extra={"group": 1}, companion=2),
    rule(_CHANGE_NAME_RE, "user_modified", "success", target=2, fixed={"field": "name"},
         extra={"old": 1, "new": 2}),
    _change_user,
    rule(_LOCK_RE, "user_modified", "success", target=2, extra={"field": 1}),
    rule(_CHANGE_USER_ANY_RE, "user_modified", "success", target=1, extra={"change": 2}),
    rule(_GROUP_CHANGED_RE, "group_modified", "success", extra={"group": 2, "gid": (3, int), "change": 4}),
    rule(_PW_CHANGED_BY_RE, "password_changed", "success", target=1, user=2),
    rule(_CHAGE_RE, "user_modified", "success", target=1, fixed={"field": "password_expiry"}),
    rule(_CHFN_RE, "user_modified", "success", target=1, extra={"field": 2}),
    rule(_FAILED_ADD_RE, "user_created", "failure", target=1),
)


def extract_accounts(ev: Event, msg: str) -> None:
    msg = msg.strip()
    if msg.startswith("pam_"):
        pam_message(ev, msg)
        return
    for fn in _ACCOUNT_MESSAGES:
        if fn(ev, msg):
            return


# --------------------------------------------------------------- cron ------
_CRON_CMD_RE = re.compile(r"\((\S+)\) CMD \((.*)\)\s*$", re.S)
_CRON_OP_RE = re.compile(r"\((\S+)\) (REPLACE|DELETE|BEGIN EDIT|END EDIT|LIST|RELOAD) \((.*)\)")
_CRON_CMD = rule(_CRON_CMD_RE, "cron_command", "success", user=1,
                 extra={"command": (2, decode_octal_escapes)})


def extract_cron(ev: Event, msg: str) -> None:
    if msg.startswith("pam_"):
        pam_message(ev, msg, "cron")
        return
    if _CRON_CMD(ev, msg):
        return
    r = _CRON_OP_RE.match(msg)
    if r is not None:
        ev.user = r.group(1)
        op = r.group(2)
        add_extra(ev, "crontab_op", op)
        if op in ("REPLACE", "DELETE"):
            ev.action, ev.outcome = "crontab_modified", "success"
            ev.target_user = r.group(3)


# ------------------------------------------------------------- logind ------
_LOGIND_NEW_RE = re.compile(r"New session (\S+?) of user (\S+?)\.?$")
_LOGIND_REMOVED_RE = re.compile(r"Removed session (\S+?)\.?$")

extract_logind = first(
    rule(_LOGIND_NEW_RE, "session_opened", "success", user=2, extra={"session_id": 1}),
    rule(_LOGIND_REMOVED_RE, "session_closed", "success", extra={"session_id": 1}),
)

def extract_pam_only(ev: Event, msg: str) -> None:
    """Programs whose interesting lines are PAM lines (login, systemd user sessions...)."""
    if msg.startswith("pam_") or msg.startswith("(pam_"):
        pam_message(ev, msg)


EXTRACTORS = {
    "sudo": extract_sudo,
    "su": extract_su,
    "su-l": extract_su,
    "CRON": extract_cron,
    "cron": extract_cron,
    "crond": extract_cron,
    "crontab": extract_cron,
    "systemd-logind": extract_logind,
    "login": extract_pam_only,
    "systemd": extract_pam_only,
    **{
        name: extract_accounts
        for name in (
            "useradd", "adduser", "usermod", "userdel", "deluser", "groupadd", "addgroup",
            "groupmod", "groupdel", "delgroup", "gpasswd", "passwd", "chpasswd", "chage",
            "chfn", "chsh", "newusers",
        )
    },
}

SAMPLES: list[tuple[str, dict]] = [
    (
        "Mar  1 11:00:00 bastion sudo:    alice : TTY=pts/0 ; PWD=/home/alice ; USER=root ; COMMAND=/usr/bin/systemctl restart nginx",
        {"app": "sudo", "action": "sudo_command", "outcome": "success", "user": "alice",
         "target_user": "root", "extra.command": "/usr/bin/systemctl restart nginx",
         "extra.tty": "pts/0", "extra.pwd": "/home/alice"},
    ),
    (
        "Mar  1 11:00:01 bastion sudo:    alice : TTY=pts/0 ; PWD=/home/alice ; USER=root ; COMMAND=/bin/sh -c echo hi#012id",
        {"action": "sudo_command", "extra.command": "/bin/sh -c echo hi\nid"},
    ),
    (
        "Mar  1 11:00:02 bastion sudo:      eve : 3 incorrect password attempts ; TTY=pts/1 ; PWD=/tmp ; USER=root ; COMMAND=/bin/bash",
        {"action": "sudo_auth_failure", "outcome": "failure", "user": "eve",
         "target_user": "root", "extra.attempts": 3},
    ),
    (
        "Mar  1 11:00:03 bastion sudo:      eve : user NOT in sudoers ; TTY=pts/1 ; PWD=/tmp ; USER=root ; COMMAND=/bin/cat /etc/shadow",
        {"action": "sudo_not_in_sudoers", "outcome": "failure", "user": "eve"},
    ),
    (
        "Mar  1 11:00:04 bastion sudo: pam_unix(sudo:auth): authentication failure; logname=eve uid=1003 euid=0 tty=/dev/pts/1 ruser=eve rhost=  user=eve",
        {"action": "sudo_auth_failure", "outcome": "failure", "user": "eve", "src_ip": None},
    ),
    (
        "Mar  1 11:00:05 bastion sudo: pam_unix(sudo:session): session opened for user root(uid=0) by alice(uid=1000)",
        {"action": "sudo_session_opened", "user": "alice", "target_user": "root"},
    ),
    (
        "Mar  1 11:01:00 db-01 su[4496]: Successful su for postgres by root",
        {"action": "su", "outcome": "success", "user": "root", "target_user": "postgres"},
    ),
    (
        "Mar  1 11:01:01 db-01 su[4497]: FAILED su for root by mallory",
        {"action": "su", "outcome": "failure", "user": "mallory", "target_user": "root"},
    ),
    (
        "Mar  1 11:01:02 db-01 su[4496]: + /dev/pts/1 root:postgres",
        {"action": "su", "outcome": "success", "user": "root", "target_user": "postgres",
         "extra.tty": "/dev/pts/1"},
    ),
    (
        "Mar  1 11:01:03 db-01 su[4498]: - pts/2 mallory:root",
        {"action": "su", "outcome": "failure", "user": "mallory", "target_user": "root"},
    ),
    (
        "Mar  1 11:01:04 db-01 su[4499]: FAILED SU (to root) mallory on pts/2",
        {"action": "su", "outcome": "failure", "user": "mallory", "target_user": "root"},
    ),
    (
        "Mar  1 11:01:05 db-01 su[4496]: pam_unix(su:session): session opened for user postgres by alice(uid=0)",
        {"action": "su_session_opened", "user": "alice", "target_user": "postgres"},
    ),
    (
        "Mar  1 11:01:06 db-01 su[4500]: pam_unix(su-l:auth): authentication failure; logname=mallory uid=1004 euid=0 tty=pts/2 ruser=mallory rhost=  user=root",
        {"action": "pam_auth_failure", "user": "mallory", "target_user": "root"},
    ),
    (
        "Mar  1 11:02:00 web-01 useradd[5100]: new user: name=backup2, UID=0, GID=0, home=/root, shell=/bin/bash, from=/dev/pts/0",
        {"action": "user_created", "outcome": "success", "target_user": "backup2",
         "extra.uid": 0, "extra.shell": "/bin/bash"},
    ),
    (
        "Mar  1 11:02:01 web-01 groupadd[5101]: new group: name=deploy, GID=1005",
        {"action": "group_created", "extra.group": "deploy", "extra.gid": 1005},
    ),
    (
        "Mar  1 11:02:02 web-01 usermod[5102]: add 'backup2' to group 'sudo'",
        {"action": "group_member_added", "target_user": "backup2", "extra.group": "sudo"},
    ),
    (
        "Mar  1 11:02:03 web-01 usermod[5102]: add 'backup2' to shadow group 'sudo'",
        {"action": None, "target_user": "backup2"},
    ),
    (
        "Mar  1 11:02:04 web-01 gpasswd[5103]: user carol added by root to group docker",
        {"action": "group_member_added", "user": "root", "target_user": "carol",
         "extra.group": "docker"},
    ),
    (
        "Mar  1 11:02:05 web-01 usermod[5104]: change user 'carol' shell from '/bin/sh' to '/bin/bash'",
        {"action": "user_modified", "target_user": "carol", "extra.field": "shell"},
    ),
    (
        "Mar  1 11:02:06 web-01 userdel[5105]: delete user 'olduser'",
        {"action": "user_deleted", "target_user": "olduser"},
    ),
    (
        "Mar  1 11:02:07 web-01 groupdel[5106]: group 'oldgroup' removed",
        {"action": "group_deleted", "extra.group": "oldgroup"},
    ),
    (
        "Mar  1 11:02:08 web-01 passwd[5107]: pam_unix(passwd:chauthtok): password changed for carol",
        {"action": "password_changed", "target_user": "carol"},
    ),
    (
        "Mar  1 11:02:09 web-01 chage[5108]: changed password expiry for carol",
        {"action": "user_modified", "target_user": "carol"},
    ),
    (
        "Mar  1 11:03:00 web-01 CRON[6001]: (root) CMD (   cd / && run-parts --report /etc/cron.hourly)",
        {"action": "cron_command", "user": "root",
         "extra.command": "   cd / && run-parts --report /etc/cron.hourly"},
    ),
    (
        "Mar  1 11:03:01 web-01 CRON[6001]: pam_unix(cron:session): session opened for user root(uid=0) by (uid=0)",
        {"action": "cron_session_opened", "user": "root"},
    ),
    (
        "Mar  1 11:03:02 web-01 CRON[6001]: pam_unix(cron:session): session closed for user root",
        {"action": "cron_session_closed", "user": "root"},
    ),
    (
        "Mar  1 11:03:03 web-01 crontab[6002]: (www-data) REPLACE (www-data)",
        {"action": "crontab_modified", "user": "www-data", "target_user": "www-data"},
    ),
    (
        "Mar  1 11:04:00 web-01 systemd-logind[612]: New session 42 of user alice.",
        {"action": "session_opened", "user": "alice", "extra.session_id": "42"},
    ),
    (
        "Mar  1 11:04:01 web-01 systemd-logind[612]: Removed session 42.",
        {"action": "session_closed", "extra.session_id": "42"},
    ),
    (
        "Mar  1 11:05:00 web-01 login[901]: pam_unix(login:session): session opened for user alice(uid=1000) by LOGIN(uid=0)",
        {"action": "session_opened", "user": "alice", "extra.by": "LOGIN"},
    ),
    (
        "Jun 15 04:06:18 combo su(pam_unix)[21416]: session opened for user news by (uid=0)",
        {"app": "su", "action": "su_session_opened", "target_user": "news", "user": None},
    ),
    (
        "Jul 19 18:11:50 srv2 daemon: pam_unix(auth): authentication failure; logname= uid=0 euid=0 tty=xxx ruser=test rhost=192.0.2.1",
        {"app": "daemon", "action": "pam_auth_failure", "outcome": "failure", "src_ip": "192.0.2.1",
         "extra.ruser": "test", "extra.pam_service": "daemon"},
    ),
]
