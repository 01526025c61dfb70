#!/usr/bin/env python3
"""Ingest benchmark: prints figures, asserts nothing (budgets: DESIGN section 10).

    .venv/bin/python benchmarks/ingest.py [--lines 1000000] [--kind auth|access] [--workdir DIR]

1. writes a seeded file of --lines lines: auth.log-like (default) or, with
   `--kind access`, a web server access log in the combined format;
2. runs `soc-tui ingest` on it in a child process (the real CLI path) and reports
   lines/s, MB/s and the peak RSS of the child and of its parse worker;
3. measures the machine's limit for our store in the same run: the same lines,
   read in the pipeline's chunks and parsed beforehand, grouped into the very
   batches the pipeline forms (BatchBuilder), written by `write_batch` on a
   connection opened like the writer's (same schema, pragmas, batch sizes,
   checkpoints and counters) into a fresh database;
4. reports ingest as a share of that limit, database bytes per raw byte (and
   per event, table by table), and the time of FTS queries, counts and field
   queries over the stored events.
"""

from __future__ import annotations

import argparse
import gc
import os
import random
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from soc_tui.child import children  # noqa: E402
from soc_tui.parse import LineParser  # noqa: E402
from soc_tui.parse_worker import parse_rows  # noqa: E402
from soc_tui.pipeline import BATCH_SIZE, READ_BYTES, BatchBuilder, parsed_chunk  # noqa: E402
from soc_tui.sources.tail import FileFollower  # noqa: E402
from soc_tui.store.events import Batch, SourceIds, write_batch  # noqa: E402
from soc_tui.store.db import open_db  # noqa: E402
from soc_tui.store.reader import StoreReader  # noqa: E402

USERS = ["root", "admin", "ubuntu", "deploy", "oracle", "test", "git", "postgres", "www-data"]


def generate(path: Path, n: int, seed: int = 1) -> int:
    """A realistic mix of auth.log lines over about a month; returns bytes written."""
    rng = random.Random(seed)
    ts = 1_700_000_000
    months = ["Nov", "Dec"]
    out = []
    total = 0
    with open(path, "w", encoding="utf-8") as fh:
        for i in range(n):
            ts += rng.randint(0, 3)
            t = time.gmtime(ts)
            stamp = f"{months[t.tm_mon % 2]} {t.tm_mday:2d} {t.tm_hour:02d}:{t.tm_min:02d}:{t.tm_sec:02d}"
            host = f"srv-{rng.randint(1, 4):02d}"
            pid = rng.randint(1000, 65000)
            ip = f"{rng.choice((45, 103, 185, 203, 198))}.{rng.randint(0, 255)}.{rng.randint(0, 255)}.{rng.randint(1, 254)}"
            port = rng.randint(1024, 65535)
            user = rng.choice(USERS)
            r = rng.random()
            if r < 0.35:
                msg = f"sshd[{pid}]: Failed password for {user} from {ip} port {port} ssh2"
            elif r < 0.50:
                msg = f"sshd[{pid}]: Invalid user {user}{rng.randint(0, 99)} from {ip} port {port}"
            elif r < 0.58:
                msg = f"sshd[{pid}]: Connection closed by {ip} port {port} [preauth]"
            elif r < 0.62:
                msg = f"sshd[{pid}]: Accepted publickey for {user} from {ip} port {port} ssh2: ED25519 SHA256:abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"
            elif r < 0.75:
                msg = f"CRON[{pid}]: pam_unix(cron:session): session opened for user root by (uid=0)"
            elif r < 0.85:
                msg = f"CRON[{pid}]: pam_unix(cron:session): session closed for user root"
            elif r < 0.90:
                msg = f"sudo:   {user} : TTY=pts/{rng.randint(0, 5)} ; PWD=/home/{user} ; USER=root ; COMMAND=/usr/bin/systemctl restart nginx"
            elif r < 0.95:
                msg = f"systemd-logind[{pid}]: New session {rng.randint(1, 9999)} of user {user}."
            elif r < 0.99:
                msg = f"sshd[{pid}]: Received disconnect from {ip} port {port}:11: Bye Bye [preauth]"
            else:
                msg = f"sshd[{pid}]: message repeated {rng.randint(2, 9)} times: [ Failed password for root from {ip} port {port} ssh2]"
            line = f"{stamp} {host} {msg}\n"
            out.append(line)
            if len(out) >= 10000:
                chunk = "".join(out)
                fh.write(chunk)
                total += len(chunk.encode())
                out = []
        if out:
            chunk = "".join(out)
            fh.write(chunk)
            total += len(chunk.encode())
    return total


PATHS = ["/", "/index.html", "/about", "/contact", "/blog", "/blog/feed.xml", "/login",
         "/api/v1/items", "/api/v1/orders", "/static/app.js", "/static/app.css",
         "/static/logo.png", "/favicon.ico", "/robots.txt", "/search"]
PROBES = ["/wp-login.php", "/.env", "/phpmyadmin/index.php", "/.git/config",
          "/cgi-bin/luci/;stok=/locale", "/vendor/phpunit/phpunit/src/Util/PHP/eval-stdin.php",
          "/admin/config.php", "/xmlrpc.php"]
AGENTS = [
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/119.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.1 Safari/605.1.15",
    "Mozilla/5.0 (X11; Linux x86_64; rv:120.0) Gecko/20100101 Firefox/120.0",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.1 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
    "Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)",
    "curl/8.4.0", "python-requests/2.31.0", "Go-http-client/1.1", "zgrab/0.x",
]
REFERRERS = ["-", "-", "-", "https://www.google.com/", "https://example.com/",
             "https://example.com/blog", "https://news.ycombinator.com/"]


def _access_line(rng: random.Random, ts: int) -> str:
    """One combined-format access log line: mostly site traffic, some scanners."""
    t = time.gmtime(ts)
    stamp = time.strftime("%d/%b/%Y:%H:%M:%S +0000", t)
    if rng.random() < 0.15:
        ip = f"{rng.choice((45, 185, 193))}.{rng.randint(0, 255)}.{rng.randint(0, 255)}.{rng.randint(1, 254)}"
        method, path, status = rng.choice(("GET", "GET", "POST")), rng.choice(PROBES), rng.choice((404, 404, 403, 400))
        agent, referrer, size = rng.choice(AGENTS[5:]), "-", rng.randint(150, 600)
    else:
        ip = f"{rng.choice((198, 203, 192))}.{rng.randint(0, 50)}.{rng.randint(0, 255)}.{rng.randint(1, 254)}"
        path = rng.choice(PATHS)
        if path in ("/search", "/api/v1/items") and rng.random() < 0.7:
            path += f"?q={rng.choice(('shoes', 'red', 'blue', 'sale', 'new'))}&page={rng.randint(1, 20)}"
        method = "POST" if path == "/login" and rng.random() < 0.5 else "GET"
        status = rng.choices((200, 304, 301, 404, 500), (85, 8, 3, 3, 1))[0]
        agent, referrer = rng.choice(AGENTS[:7]), rng.choice(REFERRERS)
        size = rng.randint(200, 90000) if status == 200 else rng.randint(0, 400)
    user = rng.choice(("alice", "bob")) if path.startswith("/api/") and rng.random() < 0.5 else "-"
    return f'{ip} - {user} [{stamp}] "{method} {path} HTTP/1.1" {status} {size} "{referrer}" "{agent}"'


def generate_access(path: Path, n: int, seed: int = 1) -> int:
    """A web server access log (combined format) over about a month; returns bytes written."""
    rng = random.Random(seed)
    ts = 1_700_000_000
    total = 0
    with open(path, "w", encoding="utf-8") as fh:
        for start in range(0, n, 10000):
            out = []
            for _ in range(min(10000, n - start)):
                ts += rng.randint(0, 3)
                out.append(_access_line(rng, ts) + "\n")
            chunk = "".join(out)
            fh.write(chunk)
            total += len(chunk.encode())
    return total


def db_bytes(db: Path) -> int:
    conn = sqlite3.connect(db)
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    return sum(os.path.getsize(p) for p in (db, Path(f"{db}-wal")) if p.exists())


def breakdown(db: Path, events: int) -> str:
    """Bytes per event of each table, index and the FTS index (SQLite's dbstat)."""
    conn = sqlite3.connect(db)
    pages = conn.execute("SELECT name, sum(pgsize) FROM dbstat GROUP BY name").fetchall()
    free = conn.execute("PRAGMA freelist_count").fetchone()[0] * conn.execute("PRAGMA page_size").fetchone()[0]
    conn.close()
    groups: dict[str, int] = {}
    for name, size in pages:
        if name.startswith("events_fts"):
            name = "FTS"
        elif name.startswith("idx_events_"):
            name = "index " + name[len("idx_events_"):]
        elif name.startswith("sqlite_autoindex_terms") or name == "terms":
            name = "terms"
        elif name not in ("events", "raw_blocks"):
            name = "other"
        groups[name] = groups.get(name, 0) + size
    if free:
        groups["free pages"] = free
    return ", ".join(f"{name} {size / events:.1f}" for name, size in
                     sorted(groups.items(), key=lambda kv: -kv[1]))


def bare_insert_limit(log: Path, db: Path, year: int = 2023) -> tuple[float, int, int]:
    """Rows/s of `write_batch` alone on the batches the pipeline would form.

    Reading and parsing happen first, untimed; the timed loop is exactly the
    writer thread's work (same connection settings via open_db(writer=True))."""
    path = os.path.abspath(log)
    parser = LineParser(source_id=path, year=year)
    follower = FileFollower(path, follow=False, read_bytes=READ_BYTES)
    builder = BatchBuilder(BATCH_SIZE)
    batches: list[Batch] = []
    now = time.time_ns() // 1000
    while not follower.done:
        for chunk in follower.poll():
            if builder.add(parsed_chunk(chunk, parse_rows(parser, chunk.source, chunk.lines, now))):
                batches.append(builder.take())
    follower.close()
    if not builder.empty():
        batches.append(builder.take())
    n = sum(len(b) for b in batches)
    # The rows held here are not the store's cost: keep the collector off them.
    gc.collect()
    gc.freeze()
    os.sync()
    conn = open_db(db, writer=True)
    sources = SourceIds(conn)
    start = time.perf_counter()
    for batch in batches:
        write_batch(conn, sources, batch)
    elapsed = time.perf_counter() - start
    conn.close()
    gc.unfreeze()
    return n / elapsed, n, len(batches)


def _status_kb(pid: int, field: str) -> int:
    try:
        with open(f"/proc/{pid}/status") as fh:
            for line in fh:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def run_measured(cmd: list[str]) -> tuple[subprocess.CompletedProcess[str], dict[str, int]]:
    """Run cmd; peak RSS (KiB) of it, of its children, and of both together (sampled)."""
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT)
    peaks = {"main": 0, "children": 0, "together": 0}
    while proc.poll() is None:
        kids = children(proc.pid)
        main_hwm = _status_kb(proc.pid, "VmHWM")
        kids_hwm = sum(_status_kb(k, "VmHWM") for k in kids)
        together = _status_kb(proc.pid, "VmRSS") + sum(_status_kb(k, "VmRSS") for k in kids)
        peaks["main"] = max(peaks["main"], main_hwm)
        peaks["children"] = max(peaks["children"], kids_hwm)
        peaks["together"] = max(peaks["together"], together)
        try:
            proc.wait(0.05)
        except subprocess.TimeoutExpired:
            pass
    out, err = proc.communicate()
    return subprocess.CompletedProcess(cmd, proc.returncode, out, err), peaks


def timed(fn, repeat: int = 5) -> tuple[float, object]:
    best = float("inf")
    result = None
    for _ in range(repeat):
        t = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - t)
    return best, result


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--lines", type=int, default=1_000_000)
    ap.add_argument("--kind", choices=("auth", "access"), default="auth",
                    help="auth.log lines (default) or a combined-format web access log")
    ap.add_argument("--workdir", help="keep files here (default: a temporary directory)")
    args = ap.parse_args()
    work = Path(args.workdir or tempfile.mkdtemp(prefix="soc-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    log = work / f"{args.kind}.log"
    db = work / "ingest.db"
    bare = work / "bare.db"
    for p in (db, bare):
        for suffix in ("", "-wal", "-shm"):
            Path(f"{p}{suffix}").unlink(missing_ok=True)

    t = time.perf_counter()
    raw = (generate_access if args.kind == "access" else generate)(log, args.lines)
    print(f"generated      {args.lines:,} lines, {raw / 1e6:.1f} MB in {time.perf_counter() - t:.1f}s ({log})")

    os.sync()  # the generator's dirty pages must not be written back during the ingest
    t = time.perf_counter()
    proc, peaks = run_measured(
        [sys.executable, "-m", "soc_tui", "--db", str(db), "ingest", "--year", "2023",
         "--no-progress", "--no-rules", str(log)]
    )
    ingest_s = time.perf_counter() - t
    if proc.returncode != 0:
        print(proc.stdout, proc.stderr, file=sys.stderr)
        return 1
    ingest_rate = args.lines / ingest_s
    print(f"ingest         {ingest_rate:,.0f} lines/s, {raw / ingest_s / 1e6:.1f} MB/s "
          f"({ingest_s:.1f}s, FTS on, no rules)  [{proc.stdout.strip()}]")
    print(f"ingest RSS     {peaks['main'] / 1024:.0f} MB peak (child process), parse worker "
          f"{peaks['children'] / 1024:.0f} MB, together {peaks['together'] / 1024:.0f} MB")

    limit, n, nbatches = bare_insert_limit(log, bare)
    print(f"store limit    {limit:,.0f} rows/s (write_batch alone, writer settings, the pipeline's "
          f"{nbatches:,} batches of {n:,} pre-parsed rows)")
    print(f"ingest/limit   {ingest_rate / limit * 100:.0f}%  (budget >= 80%)")

    size = db_bytes(db)
    print(f"database       {size / 1e6:.1f} MB = {size / raw:.2f} x raw log bytes  (budget <= 2x)")
    print(f"bytes/event    raw line {raw / args.lines:.1f}; stored: {breakdown(db, args.lines)}")

    reader = StoreReader(str(db), create=False)
    # An address that is in the data: the one of the middle event that has one.
    ip = "203.0.113.7"
    for k in range(args.lines // 2, args.lines // 2 + 100):
        row = reader.search(f"id:{k}", limit=1)
        if row and row[0]["src_ip"]:
            ip = row[0]["src_ip"]
            break
    def search(query: str) -> list[dict[str, object]]:
        return reader.search(query, limit=100)

    if args.kind == "access":
        queries = [
            ("FTS query", '"GET /wp-login.php"', search),
            ("FTS rare term", "phpunit", search),
            ("FTS count", "POST", reader.count),
            ("field count", "status:>=500", reader.count),
            ("term wildcard", "ua:*bot*", reader.count),
        ]
    else:
        queries = [
            ("FTS query", '"Failed password" root', search),
            ("FTS rare term", "Bye", search),
            ("FTS count", '"Failed password"', reader.count),
        ]
    queries += [
        ("src_ip query", f"src_ip:{ip}", search),
        ("src_ip count", f"src_ip:{ip}", reader.count),
        ("CIDR query", f"src_ip:203.0.0.0/16 {'status:404' if args.kind == 'access' else 'user:root'}",
         search),
    ]
    for label, query, fn in queries:
        secs, res = timed(lambda: fn(query))
        size_note = f"{res:,} matches" if isinstance(res, int) else f"{len(res)} rows"
        print(f"{label:<14} {secs * 1000:7.1f} ms  {query!r} -> {size_note}")
    reader.close()
    if not args.workdir:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
