"""Message extractors: sshd edge cases, sudo/su/accounts/cron/firewall/pam/logind, web errors."""

from __future__ import annotations

from datetime import datetime

import pytest

from soc_tui.parse import LineParser

NOW = int(datetime.fromisoformat("2026-03-02T12:00:00+00:00").timestamp() * 1_000_000)
PRE = "Mar  1 10:00:00 web-01 sshd[100]: "


def parse(line: str):
    return LineParser(tz="UTC")._parse(line, 0, NOW)


def ssh(msg: str):
    return parse(PRE + msg)


# ------------------------------------------------------------------ sshd ----
@pytest.mark.parametrize(
    "msg,src_ip,user,action",
    [
        # fail2ban's rule: the first "from HOST [port N] [sshN]" followed by end or ": "
        ("Failed password for invalid user from 10.10.1.1 from 192.0.2.1 port 58946 ssh2",
         "192.0.2.1", "from 10.10.1.1", "ssh_auth_failure"),
        ("Failed password for invalid user test from 10.10.1.2 port 55555 ssh2 from 192.0.2.2 port 58946 ssh2",
         "192.0.2.2", "test from 10.10.1.2 port 55555 ssh2", "ssh_auth_failure"),
        ("Failed password for invalid user test from 192.0.2.3 port 58946 ssh2: from 10.10.1.2 port 55555 ssh2",
         "192.0.2.3", "test", "ssh_auth_failure"),
        ("Failed password for user from 192.0.2.4 port 20000 ssh1: ruser XXXX from 1.2.3.4",
         "192.0.2.4", "user", "ssh_auth_failure"),
        ("Failed keyboard-interactive/pam for <invalid username> from 192.0.2.5 port 1 ssh2",
         "192.0.2.5", None, "ssh_auth_failure"),
        ("Failed password for root from 192.0.2.6", "192.0.2.6", "root", "ssh_auth_failure"),
        ("Failed hostbased for dan from 192.0.2.7 port 45785 ssh2: RSA 8c:e3, client user \"dan\", client host \"x\"",
         "192.0.2.7", "dan", "ssh_auth_failure"),
        ("Failed none for invalid user a b from 192.0.2.8 port 2 ssh2 [preauth]", "192.0.2.8", "a b",
         "ssh_auth_failure"),
        ("error: PAM: Authentication failure for myhlj1374 from 192.030.0.6", "192.030.0.6", "myhlj1374",
         "ssh_auth_failure"),
        ("error: PAM: authentication error for james from 192.0.2.9 via 192.168.1.201", "192.0.2.9", "james",
         "ssh_auth_failure"),
        ("error: PAM: User not known to the underlying authentication module for illegal user k from 192.0.2.10 ",
         "192.0.2.10", "k", "ssh_auth_failure"),
        ("Invalid user admin from 2001:db8::80da:af6b:8b2c port 4", "2001:db8::80da:af6b:8b2c", "admin",
         "ssh_invalid_user"),
        ("Illegal user dcid from 192.0.2.11", "192.0.2.11", "dcid", "ssh_invalid_user"),
        ("refused connect from _U2FsdGVkX19P=_@::ffff:192.0.2.12 (::ffff:192.0.2.12)", "192.0.2.12", None,
         "ssh_refused_connect"),
        ("Bad protocol version identification 'dummy' from 192.0.2.1' from 192.0.2.13 port 31778",
         "192.0.2.13", None, "ssh_bad_protocol"),
        ("Connection closed by authenticating user test 127.0.0.1 port 12345 192.0.2.14 port 46039 [preauth]",
         "192.0.2.14", "test 127.0.0.1 port 12345", "ssh_connection_closed"),
        ("Disconnecting invalid user admin 192.0.2.15 port 44004: Change of username or service not allowed: "
         "(admin,ssh-connection) -> (user,ssh-connection) [preauth]", "192.0.2.15", "admin", "ssh_disconnect"),
        ("error: Received disconnect from 2001:db8::16: 3: com.jcraft.jsch.JSchException: Auth fail [preauth]",
         "2001:db8::16", None, "ssh_disconnect"),
        ("Timeout before authentication for connection from 192.0.2.17 to 127.0.0.1, pid = 29098",
         "192.0.2.17", None, "ssh_auth_timeout"),
        ("ssh_dispatch_run_fatal: Connection from 192.0.2.18 port 33738: message authentication code incorrect [preauth]",
         "192.0.2.18", None, "ssh_negotiation_failed"),
        ("Address 192.0.2.19 maps to x.example.com, but this does not map back to the address - POSSIBLE BREAK-IN ATTEMPT!",
         "192.0.2.19", None, "ssh_reverse_mapping_failed"),
        ("[ID 800047 auth.info] Failed keyboard-interactive for james from 192.0.2.20 port 54520 ssh2",
         "192.0.2.20", "james", "ssh_auth_failure"),
        ("kernel:[  970.699396]: Failed keyboard-interactive for x from 192.0.2.21 port 42742 ssh2",
         "192.0.2.21", "x", "ssh_auth_failure"),
        ("fatal: Read from socket failed: Connection reset by peer [preauth]", None, None,
         "ssh_connection_closed"),
        ("error: kex_exchange_identification: Connection closed by remote host", None, None,
         "ssh_negotiation_failed"),
        ("fatal: Unable to negotiate a key exchange method [preauth]", None, None, "ssh_negotiation_failed"),
        ("User root not allowed because account is locked", None, "root", "ssh_user_not_allowed"),
        ("fatal: Unable to negotiate with 192.0.2.22: no matching key exchange method found.", "192.0.2.22", None,
         "ssh_negotiation_failed"),
        ("Read error from remote host 192.0.2.23: Connection reset by peer", "192.0.2.23", None,
         "ssh_connection_closed"),
        ("Disconnecting invalid user root 192.0.2.24 port 43042", "192.0.2.24", "root", "ssh_disconnect"),
        ("Postponed keyboard-interactive for invalid user warez from 192.0.2.25 port 54197 ssh2 [preauth]",
         "192.0.2.25", "warez", None),
        ("PAM 2 more authentication failures; logname= uid=0 euid=0 tty=ssh ruser= rhost=192.0.2.26  user=root",
         "192.0.2.26", "root", None),
        ("Server listening on 0.0.0.0 port 22.", None, None, None),
        ("Received signal 15; terminating.", None, None, None),
    ],
)
def test_sshd_messages(msg, src_ip, user, action):
    ev = ssh(msg)
    assert (ev.src_ip, ev.user, ev.action) == (src_ip, user, action)
    if action and action not in ("ssh_login", "ssh_reverse_mapping_failed", "ssh_connection_opened"):
        if action not in ("ssh_disconnect", "ssh_connection_closed") or "preauth" in msg or "Auth fail" in msg:
            assert ev.outcome == "failure"


def test_hostname_peer_goes_to_extra():
    ev = ssh("User root from example.com not allowed because not listed in AllowUsers")
    assert ev.src_ip is None
    assert ev.extra["src_host"] == "example.com"
    assert ev.action == "ssh_user_not_allowed"


def test_ipv4_mapped_and_odd_forms_kept_as_written():
    assert ssh("ROOT LOGIN REFUSED FROM ::ffff:1.2.3.4").src_ip == "1.2.3.4"
    assert ssh("Invalid user a from 192.030.0.6").src_ip == "192.030.0.6"


def test_accepted_is_success_with_key():
    ev = ssh("Accepted publickey for git from 192.0.2.1 port 57904 ssh2: DSA 36:48:xx")
    assert (ev.action, ev.outcome, ev.user, ev.src_ip, ev.src_port) == (
        "ssh_login", "success", "git", "192.0.2.1", 57904)
    assert ev.extra["key"] == "DSA 36:48:xx"


def test_sshd_level_from_prefix():
    assert ssh("error: maximum authentication attempts exceeded for root from 1.2.3.4 port 1 ssh2").level == "error"
    assert ssh("fatal: Timeout before authentication for 1.2.3.4 port 5").level == "critical"


def test_old_redhat_pam_tag():
    ev = parse("Jun 15 02:04:59 combo sshd(pam_unix)[20882]: authentication failure; logname= uid=0 euid=0 "
               "tty=NODEVssh ruser= rhost=220-135-151-1.hinet-ip.hinet.net  user=root")
    assert (ev.app, ev.pid, ev.action, ev.user, ev.src_ip) == ("sshd", 20882, "pam_auth_failure", "root", None)
    assert ev.extra["src_host"] == "220-135-151-1.hinet-ip.hinet.net"
    ev = parse("Jun 14 15:16:01 combo sshd(pam_unix)[19939]: authentication failure; logname= uid=0 euid=0 "
               "tty=NODEVssh ruser= rhost=218.188.2.4 ")
    assert ev.src_ip == "218.188.2.4"


def test_headless_pam_prefix():
    ev = parse("Feb  7 15:10:42 example pure-ftpd: (pam_unix) authentication failure; logname= uid=0 euid=0 "
               "tty=pure-ftpd ruser=sample-user rhost=192.168.1.1 ")
    assert (ev.action, ev.src_ip, ev.extra["ruser"]) == ("pam_auth_failure", "192.168.1.1", "sample-user")


# PAM writes `... ruser=R rhost=H[  user=U]` with R and U as the client sent them:
# the real rhost is the one that ends the line or comes right before ` user=`,
# user is the whole rest of the line (fail2ban pam-generic "Injecting on username").
@pytest.mark.parametrize(
    "line,action,user,src_ip,ruser",
    [
        ("Mar  7 18:53:20 bar sshd[1556]: pam_unix(sshd:auth): authentication failure; logname= uid=0 euid=0 "
         "tty=ssh ruser= rhost=192.0.2.113  user=rda rhost=10.0.0.1",
         "pam_auth_failure", "rda rhost=10.0.0.1", "192.0.2.113", None),
        ("Mar  7 18:53:20 bar sshd[1556]: pam_unix(sshd:auth): authentication failure; logname= uid=0 euid=0 "
         "tty=ssh ruser= rhost=192.0.2.113  user=rda",
         "pam_auth_failure", "rda", "192.0.2.113", None),
        ("Mar  7 18:53:21 bar sshd[1557]: pam_unix(sshd:auth): authentication failure; logname= uid=0 euid=0 "
         "tty=ssh ruser= rhost=192.0.2.114  user=root ",
         "pam_auth_failure", "root", "192.0.2.114", None),
        ("Jul 19 18:11:50 srv2 daemon: pam_unix(auth): authentication failure; logname= uid=0 euid=0 tty=xxx "
         "ruser=test rhost=192.0.2.151 rhost=192.0.2.1",
         "pam_auth_failure", None, "192.0.2.1", "test rhost=192.0.2.151"),
        ("Jul 19 18:11:52 srv2 daemon: pam_unix(auth): authentication failure; logname= uid=0 euid=0 tty=xxx "
         "ruser= rhost=192.0.2.2 user=test rhost=192.0.2.152",
         "pam_auth_failure", "test rhost=192.0.2.152", "192.0.2.2", None),
        # an FTP daemon puts the client's name in ruser and user: the reading where they agree
        ("Jul 19 18:11:53 srv2 vsftpd: pam_unix(vsftpd:auth): authentication failure; logname= uid=0 euid=0 "
         "tty=ftp ruser=x rhost=10.0.0.1 user=y rhost=192.0.2.3 user=x rhost=10.0.0.1 user=y",
         "pam_auth_failure", "x rhost=10.0.0.1 user=y", "192.0.2.3", "x rhost=10.0.0.1 user=y"),
        ("Mar  7 18:53:22 bar sshd[1558]: pam_unix(sshd:auth): authentication failure; logname= uid=0 euid=0 "
         "tty=ssh ruser=rda rhost=192.0.2.113 [preauth]",
         "pam_auth_failure", None, "192.0.2.113", "rda"),
        ("Mar  7 18:53:23 bar sshd[1559]: PAM 2 more authentication failures; logname= uid=0 euid=0 tty=ssh "
         "ruser= rhost=192.0.2.115  user=rda rhost=10.0.0.1",
         None, "rda rhost=10.0.0.1", "192.0.2.115", None),
        ("Mar  7 18:53:24 bar vsftpd[1560]: pam_unix(vsftpd:auth): 2 more authentication failures; logname= "
         "uid=0 euid=0 tty=ftp "
         "ruser= rhost=192.0.2.116  user=root rhost=10.0.0.1",
         None, "root rhost=10.0.0.1", "192.0.2.116", None),
    ],
)
def test_pam_failure_fields_are_not_injectable(line, action, user, src_ip, ruser):
    ev = parse(line)
    assert (ev.action, ev.user, ev.src_ip, (ev.extra or {}).get("ruser")) == (action, user, src_ip, ruser)
    if action:
        assert ev.outcome == "failure"


def test_pam_without_service_in_parentheses():
    ev = parse("Jul 19 18:11:50 srv2 daemon: pam_unix(auth): authentication failure; logname= uid=0 euid=0 "
               "tty=xxx ruser=test rhost=192.0.2.1")
    assert (ev.action, ev.outcome, ev.src_ip, ev.extra["ruser"], ev.extra["tty"]) == (
        "pam_auth_failure", "failure", "192.0.2.1", "test", "xxx")
    assert (ev.extra["pam_module"], ev.extra["pam_service"]) == ("pam_unix", "daemon")
    ev = parse("Jul 19 18:11:51 srv2 login[7]: pam_unix(session): session opened for user bob(uid=1000) by LOGIN(uid=0)")
    assert (ev.action, ev.user) == ("session_opened", "bob")


# ---------------------------------------------------------- sudo / su -------
def test_sudo_command_with_escapes_and_spaces():
    ev = parse("Feb  9 21:19:40 precise32 sudo:  vagrant : TTY=pts/0 ; PWD=/home/vagrant ; USER=root ; "
               "COMMAND=/bin/sh -c echo BECOME-SUCCESS-x; LANG=en_US.UTF-8 /usr/bin/python /tmp/a.py#012#011x")
    assert ev.action == "sudo_command" and ev.user == "vagrant" and ev.target_user == "root"
    assert ev.extra["command"].endswith("/tmp/a.py\n\tx")
    assert ev.extra["pwd"] == "/home/vagrant"


def test_sudo_keeps_hash_that_is_not_a_control_escape():
    ev = parse("Mar  1 10:00:00 h sudo: a : TTY=pts/0 ; PWD=/ ; USER=root ; COMMAND=/bin/echo #123")
    assert ev.extra["command"] == "/bin/echo #123"


def test_sudo_with_group_and_env():
    ev = parse("Mar  1 10:00:00 h sudo: alice : TTY=pts/0 ; PWD=/ ; USER=postgres ; GROUP=postgres ; "
               "ENV=PGDATA=/x ; COMMAND=/usr/bin/psql")
    assert (ev.user, ev.target_user, ev.extra["group"], ev.extra["env"], ev.extra["command"]) == (
        "alice", "postgres", "postgres", "PGDATA=/x", "/usr/bin/psql")


def test_sudo_command_not_allowed():
    ev = parse("Mar  1 10:00:00 h sudo: bob : command not allowed ; TTY=pts/0 ; PWD=/ ; USER=root ; COMMAND=/bin/sh")
    assert (ev.action, ev.outcome) == ("sudo_command_denied", "failure")


def test_sudo_continued_line():
    ev = parse("Feb  9 21:21:02 precise32 sudo:  vagrant : (command continued) '/etc/x.yml)")
    assert ev.user == "vagrant" and ev.action is None


@pytest.mark.parametrize(
    "msg,ok,user,target",
    [
        ("Successful su for tsg by root", True, "root", "tsg"),
        ("FAILED su for root by eve", False, "eve", "root"),
        ("+ /dev/pts/1 root:tsg", True, "root", "tsg"),
        ("- pts/0 eve:root", False, "eve", "root"),
        ("(to root) alice on pts/3", True, "alice", "root"),
        ("FAILED SU (to root) eve on pts/3", False, "eve", "root"),
        ("BAD SU ger to fwmaster on /dev/ttyp0", False, "ger", "fwmaster"),
        ("succeeded: ttyq4 changing from root to ldap", True, "root", "ldap"),
    ],
)
def test_su(msg, ok, user, target):
    ev = parse("Mar  1 10:00:00 h su[1]: " + msg)
    assert (ev.action, ev.outcome, ev.user, ev.target_user) == ("su", "success" if ok else "failure", user, target)


# ------------------------------------------------------------ accounts ------
@pytest.mark.parametrize(
    "app,msg,action,target,extra",
    [
        ("useradd", "new user: name=tsg, UID=1001, GID=1003, home=/home/tsg, shell=/bin/bash",
         "user_created", "tsg", {"uid": 1001, "gid": 1003, "home": "/home/tsg"}),
        ("adduser", "new user: name=port2, uid=12004, gid=0, home=/home/port2, shell=/bin/bash ",
         "user_created", "port2", {"gid": 0}),
        ("useradd", "new group: name=test, gid=5006 ", "group_created", None, {"group": "test", "gid": 5006}),
        ("groupadd", "group added to /etc/group: name=tsg, GID=1003", None, None, {"group": "tsg"}),
        ("userdel", "delete user `logr' ", "user_deleted", "logr", {}),
        ("groupdel", "remove group `logr' ", "group_deleted", None, {"group": "logr"}),
        ("usermod", "change user 'bob' UID from '1001' to '0'", "user_modified", "bob", {"uid": 0}),
        ("usermod", "change user name 'bob' to 'robert'", "user_modified", "robert", {"old": "bob"}),
        ("usermod", "lock user 'bob' password", "user_modified", "bob", {"field": "lock"}),
        ("usermod", "delete 'bob' from group 'sudo'", "group_member_removed", "bob", {"group": "sudo"}),
        ("gpasswd", "user bob removed by root from group sudo", "group_member_removed", "bob", {"group": "sudo"}),
        ("gpasswd", "members of group sudo set by root to alice,bob", "group_modified", None, {"group": "sudo"}),
        ("passwd", "password for 'bob' changed by 'root'", "password_changed", "bob", {}),
        ("chfn", "changed user 'tsg' information", "user_modified", "tsg", {"field": "information"}),
        ("groupmod", "group changed in /etc/group (group dev/1005, new name: devs)", "group_modified", None,
         {"group": "dev", "gid": 1005}),
    ],
)
def test_account_tools(app, msg, action, target, extra):
    ev = parse(f"Mar  1 10:00:00 h {app}[9]: {msg}")
    assert (ev.action, ev.target_user) == (action, target)
    for k, v in extra.items():
        assert ev.extra[k] == v


# ------------------------------------------------- firewall / logind / cron --
def test_ufw_and_iptables():
    ev = parse("Mar  1 10:00:00 gw kernel: [UFW BLOCK] IN=eth0 OUT= SRC=2001:db8::5 DST=2001:db8::1 "
               "LEN=80 PROTO=TCP SPT=4000 DPT=3389")
    assert (ev.action, ev.src_ip, ev.src_port, ev.extra["dst_port"]) == ("firewall_block", "2001:db8::5", 4000, 3389)
    ev = parse("Mar  1 10:00:00 gw myfw: DROP IN=eth0 OUT= SRC=192.0.2.7 DST=192.0.2.1 PROTO=UDP SPT=1 DPT=53")
    assert (ev.app, ev.action, ev.src_ip) == ("myfw", "firewall_block", "192.0.2.7")


def test_cron_command_with_parentheses():
    ev = parse("Mar  1 10:00:00 h CRON[5]: (www-data) CMD ([ -x /usr/bin/x ] && (cd /tmp; ./x))")
    assert ev.action == "cron_command" and ev.user == "www-data"
    assert ev.extra["command"] == "[ -x /usr/bin/x ] && (cd /tmp; ./x)"


def test_generic_pam_for_unknown_program():
    ev = parse("Mar  1 10:00:00 h vsftpd[3]: pam_unix(vsftpd:auth): authentication failure; logname= uid=0 "
               "euid=0 tty=ftp ruser=bob rhost=192.0.2.44  user=bob")
    assert (ev.action, ev.user, ev.src_ip, ev.extra["pam_service"]) == ("pam_auth_failure", "bob", "192.0.2.44", "vsftpd")
    ev = parse("Mar  1 10:00:00 h systemd[1]: pam_unix(systemd-user:session): session opened for user bob(uid=1000) by bob(uid=0)")
    assert (ev.action, ev.user) == ("session_opened", "bob")


def test_journal_style_sshd_without_time():
    ev = LineParser().parse("srv sshd[2737]: Failed password for invalid user test from 192.0.2.9 port 1 ssh2",
                            now_us=NOW)
    assert (ev.host, ev.app, ev.action, ev.src_ip, ev.ts) == ("srv", "sshd", "ssh_auth_failure", "192.0.2.9", NOW)


# ------------------------------------------------------------------ web -----
def test_access_log_variants():
    p = LineParser(tz="UTC")
    ev = p.parse('66.249.66.1 - - - [31/Jan/2015:14:29:44 ] fail2ban.org "GET / HTTP/1.1" 200 814 "-" '
                 '"Mozilla/5.0 (compatible; Googlebot/2.1)" + 293 1149 546', now_us=NOW)
    assert (ev.src_ip, ev.host, ev.http_status, ev.url) == ("66.249.66.1", "fail2ban.org", 200, "/")
    assert ev.extra["rest"] == "+ 293 1149 546"
    ev = p.parse('192.0.2.12 - user1 [27/Jun/2013:11:55:44] "GET /knocking/ HTTP/1.1" 200 266 "http://d/" "UA"',
                 now_us=NOW)
    assert (ev.user, ev.referrer, ev.user_agent) == ("user1", "http://d/", "UA")
    ev = p.parse('12.34.56.78 - - [20/Jan/2015:19:53:28 +0100] "" 400 47 "-" "-" "-"', now_us=NOW)
    assert (ev.message, ev.http_method, ev.http_status, ev.outcome, ev.user_agent) == ("", None, 400, "failure", None)
    ev = p.parse('12.34.56.78 - - [20/Jan/2015:19:53:28 +0100] "CONNECT 1.2.3.4:443 HTTP/1.1" 400 - "-" "-"',
                 now_us=NOW)
    assert (ev.http_method, ev.url, ev.bytes) == ("CONNECT", "1.2.3.4:443", None)


def test_apache_ipv6_client_forms():
    ev = parse("[Thu Jul 11 01:21:44 2013] [error] [client 2001:db8::80da:af6b:8b2c] user test-ipv6 not found: /")
    assert (ev.src_ip, ev.src_port, ev.user) == ("2001:db8::80da:af6b:8b2c", None, "test-ipv6")
    ev = parse("[Sat Jul 20 22:11:44.147674 2013] [authz_owner:error] [pid 1:tid 2] [client 2001:db8::1:51548] AH01637: x")
    assert (ev.src_ip, ev.src_port) == ("2001:db8::1", 51548)


def test_nginx_last_client_wins():
    ev = parse('2014/04/03 22:20:40 [error] 30708#0: *3 user "test": password mismatch, client: 127.0.0.1, '
               'server: test, request: "GET / HTTP/1.1", host: "localhost:8443"": was not found in '
               '"/etc/nginx/.htpasswd", client: 192.0.2.2, server: , request: "GET / HTTP/1.1", host: "l:8443"')
    assert ev.src_ip == "192.0.2.2"


def test_modsecurity():
    ev = parse('[Sat May 09 00:35:52.389262 2020] [:error] [pid 22406:tid 1] [client 192.0.2.2:47762] '
               '[client 192.0.2.2] ModSecurity: Access denied with code 401 (phase 2). [id "1"]')
    assert (ev.action, ev.src_ip, ev.src_port) == ("http_waf_block", "192.0.2.2", 47762)
