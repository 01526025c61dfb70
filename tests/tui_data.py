"""A small seeded database for the TUI tests, snapshots and screenshots (our own lines).

`build(tmp)` writes an auth.log and an access.log (a brute force that
succeeds, sudo to root, a new user in sudo, a web scan with SQL injection,
and hostile lines: escape sequences, markup, a click action, NUL, invalid
UTF-8, a 1 MB line) and ingests them with the shipped rules, so that the
database holds events and alerts of every severity. `CLOCK` is the frozen
"now" the tests give the app.
"""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

from soc_tui.cli import main

CLOCK_DT = datetime(2026, 11, 20, 1, 0, tzinfo=timezone.utc)
CLOCK = int(CLOCK_DT.timestamp() * 1_000_000)
HOSTILE = [
    "\x1b[31mred\x1b[0m \x1b]0;owned-title\x07 \x1b]52;c;ZXZpbA==\x07 bell\x07 c1\x9b31m",
    "[bold red]x[/] [@click=app.quit]click me[/] [link=file:///etc/passwd]l[/link]",
    "nul\x00byte",
]


def _auth_lines() -> list[str]:
    out = []
    t = 0
    for i in range(12):  # brute force from one address
        out.append(f"Nov 20 00:10:{t + i:02d} bastion sshd[{2000 + i}]: Failed password for root"
                   f" from 198.51.100.7 port {40000 + i} ssh2")
    out.append("Nov 20 00:11:30 bastion sshd[2100]: Accepted password for root from 198.51.100.7"
               " port 41000 ssh2")
    out.append("Nov 20 00:12:00 bastion sudo:     root : TTY=pts/0 ; PWD=/root ; USER=root ;"
               " COMMAND=/usr/sbin/useradd -m backup2")
    out.append("Nov 20 00:12:01 bastion useradd[2200]: new user: name=backup2, UID=1002, GID=1002,"
               " home=/home/backup2, shell=/bin/bash, from=/dev/pts/0")
    out.append("Nov 20 00:12:05 bastion usermod[2201]: add 'backup2' to group 'sudo'")
    for i in range(6):  # ordinary admin logins with keys
        out.append(f"Nov 20 00:2{i}:00 db1 sshd[{3000 + i}]: Accepted publickey for alice from"
                   f" 192.0.2.10 port {50000 + i} ssh2: ED25519 SHA256:abc")
    for n, text in enumerate(HOSTILE):
        out.append(f"Nov 20 00:30:0{n} bastion sshd[{4000 + n}]: Invalid user {text} from 203.0.113.66"
                   f" port {5000 + n}")
    out.append("Nov 20 00:31:00 bastion sshd[4100]: Failed password for root from 203.0.113.66 port 1 ssh2 "
               + "A" * 1_000_000)
    return out


def _access_lines() -> list[str]:
    out = []
    paths = ["/", "/.env", "/.git/config", "/backup.zip", "/wp-login.php", "/admin", "/phpinfo.php",
             "/config.php.bak", "/server-status", "/.aws/credentials", "/index.php?id=1%27%20UNION%20SELECT%20"
             "username,password%20FROM%20users--", "/search?q=%3Cscript%3Ealert(1)%3C/script%3E"]
    for i, p in enumerate(paths * 2):
        status = 200 if p == "/" else 404
        out.append(f'203.0.113.50 - - [20/Nov/2026:00:05:{i:02d} +0000] "GET {p} HTTP/1.1" {status} 153'
                   f' "-" "Mozilla/5.0 (compatible; Nmap Scripting Engine; https://nmap.org/book/nse.html)"')
    for i in range(10):
        out.append(f'192.0.2.{20 + i} - - [20/Nov/2026:00:4{i % 10}:00 +0000] "GET /blog/{i} HTTP/1.1"'
                   f' 200 5120 "-" "Mozilla/5.0 (X11; Linux x86_64)"')
    return out


def build(tmp: Path) -> Path:
    """The database (tmp/soc.db) ingested from our logs with the shipped rules."""
    logs = tmp / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    auth = logs / "auth.log"
    auth.write_bytes(("\n".join(_auth_lines()) + "\n").encode("utf-8")
                     + b"Nov 20 00:32:00 bastion sshd[4200]: Invalid user \xff\xfe\xc3( from 203.0.113.66"
                       b" port 9\n")
    (logs / "access.log").write_text("\n".join(_access_lines()) + "\n")
    db = tmp / "soc.db"
    for log in (auth, logs / "access.log"):  # one after the other: the same alert ids every time
        rc = main(["--db", str(db), "ingest", "--tz", "UTC", "--year", "2026", "--no-progress", str(log)])
        assert rc == 0
    return db
