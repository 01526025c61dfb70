#!/usr/bin/env python3
"""Detection benchmark: prints figures, asserts nothing (budgets: issue 3, DESIGN section 10).

    .venv/bin/python benchmarks/rules.py [--lines 1000000] [--workdir DIR] [--skip-ingest]

1. engine: events/s one core evaluates with the whole SigmaHQ Linux/web set
   loaded (the corpus copy; skipped when absent), on generated auth.log and
   access-log events parsed beforehand, and with our shipped rules;
2. worker: the same through the real worker (read from SQLite, evaluate,
   commit alerts and cursor);
3. correlation: event_count and value_count rules over --lines events;
4. ingest with all shipped rules running, as a share of the same-run store
   limit (the ingest benchmark's file and limit);
5. latency: lines appended to a tailed file at 5k lines/s; time from the
   append to the alert row's commit, p50 and p99.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

import ingest as ingest_bench  # noqa: E402

from soc_tui.detect.engine import Engine  # noqa: E402
from soc_tui.detect.loader import load_rules  # noqa: E402
from soc_tui.detect.offline import event_dict, read_lines  # noqa: E402
from soc_tui.detect.worker import RuleWorker  # noqa: E402
from soc_tui.parse import LineParser  # noqa: E402

CORPUS = Path(os.environ.get("SOC_TUI_CORPUS", ROOT.parent / "shared" / "corpus"))
SHIPPED = ROOT / "rules"


def parsed(path: Path, source: str, n: int) -> list[dict]:
    parser = LineParser(source_id=source, year=2023, tz="UTC")
    out = []
    for i, line in enumerate(read_lines(path)):
        if i >= n:
            break
        ev = event_dict(parser.parse(line))
        ev["id"] = i + 1
        out.append(ev)
    return out


def engine_rate(rules, events: list[dict]) -> tuple[float, int]:
    engine = Engine(rules)
    t = time.perf_counter()
    hits = 0
    for ev in events:
        hits += len(engine.process(ev))
    return len(events) / (time.perf_counter() - t), hits


def worker_rate(rules, log: Path, work: Path, name: str) -> tuple[float, int]:
    db = work / f"worker-{name}.db"
    for suffix in ("", "-wal", "-shm"):
        Path(f"{db}{suffix}").unlink(missing_ok=True)
    subprocess.run([sys.executable, "-m", "soc_tui", "--db", str(db), "ingest", "--year", "2023",
                    "--tz", "UTC", "--no-progress", "--no-rules", str(log)], check=True,
                   stdout=subprocess.DEVNULL, cwd=ROOT)
    worker = RuleWorker(str(db), rules)
    t = time.perf_counter()
    n = worker.catch_up()
    rate = n / (time.perf_counter() - t)
    raised = worker.alerts_raised
    worker.close()
    return rate, raised


CORRELATION_RULES = """\
title: auth failure
name: b_fail
logsource: {product: linux, service: sshd}
detection:
  sel: {action: [ssh_auth_failure, ssh_invalid_user]}
  condition: sel
level: low
---
title: failures per address
name: c_count
correlation: {type: event_count, rules: [b_fail], group-by: [src_ip], timespan: 60s, condition: {gte: 5}}
level: high
---
title: users per address
name: c_users
correlation:
  type: value_count
  rules: [b_fail]
  group-by: [src_ip]
  timespan: 10m
  condition: {field: user, gte: 4}
level: high
"""


def correlation_rate(n: int, work: Path) -> tuple[float, float, int]:
    """events/s through a base rule feeding two correlations, and the same
    with the correlations removed (the difference is their cost)."""
    d = work / "corr-rules"
    d.mkdir(exist_ok=True)
    (d / "c.yml").write_text(CORRELATION_RULES)
    rules = load_rules([d])
    base_only = load_rules([d])
    base_only.correlations = []
    rng = random.Random(3)
    events = []
    ts = 1_700_000_000_000_000
    users = [f"u{i}" for i in range(40)]
    for i in range(n):
        ts += rng.randint(0, 400_000)
        events.append({
            "id": i + 1, "ts": ts, "raw": "", "app": "sshd", "action": "ssh_auth_failure",
            "src_ip": f"198.51.{rng.randint(0, 15)}.{rng.randint(1, 254)}",
            "user": rng.choice(users), "repeat": 1, "flags": 0,
        })
    with_corr, hits = engine_rate(rules, events)
    without, _ = engine_rate(base_only, events)
    return with_corr, without, hits


LATENCY_RULE = """\
title: latency probe
name: latency_probe
logsource: {product: linux, service: sshd}
detection:
  sel: {action: ssh_login, user|startswith: 'probe'}
  condition: sel
level: low
x-soc:
  suppress: {window: 1s, by: [user]}
"""


def latency(work: Path, seconds: float, rate: int) -> tuple[float, float, int]:
    """p50, p99 (s) from append to alert commit at `rate` lines/s."""
    rules = work / "latency-rules"
    rules.mkdir(exist_ok=True)
    (rules / "probe.yml").write_text(LATENCY_RULE)
    log = work / "live.log"
    log.write_text("")
    db = work / "live.db"
    for suffix in ("", "-wal", "-shm"):
        Path(f"{db}{suffix}").unlink(missing_ok=True)
    cmd = [sys.executable, "-m", "soc_tui", "--db", str(db), "collect", str(log), "--poll", "0.05",
           "--tz", "UTC", "--rules", str(SHIPPED), "--rules", str(rules)]
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    time.sleep(2.0)  # let it register the file
    rng = random.Random(5)
    sent: dict[str, float] = {}
    start = time.monotonic()
    n = 0
    with open(log, "a") as fh:
        while time.monotonic() - start < seconds:
            due = int((time.monotonic() - start) * rate)
            lines = []
            while n < due:
                n += 1
                t = time.gmtime(1_700_000_000 + n // 100)
                stamp = f"Nov {t.tm_mday:2d} {t.tm_hour:02d}:{t.tm_min:02d}:{t.tm_sec:02d}"
                if n % 250 == 0:
                    user = f"probe{n}"
                    lines.append(f"{stamp} bastion sshd[{n % 9000}]: Accepted publickey for {user} "
                                 f"from 192.0.2.{n % 250 + 1} port 50000 ssh2")
                    sent[user] = 0.0
                else:
                    lines.append(f"{stamp} bastion CRON[{n % 9000}]: pam_unix(cron:session): session "
                                 f"opened for user root by (uid=0)" if rng.random() < 0.5 else
                                 f"{stamp} bastion sshd[{n % 9000}]: Failed password for root from "
                                 f"203.0.113.{rng.randint(1, 254)} port {rng.randint(1024, 65535)} ssh2")
            if lines:
                fh.write("\n".join(lines) + "\n")
                fh.flush()
                now = time.time()
                for user in list(sent):
                    if sent[user] == 0.0:
                        sent[user] = now
            time.sleep(0.005)
    time.sleep(3.0)
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=60)
    conn = sqlite3.connect(db)
    rows = conn.execute("SELECT user, created_at FROM alerts WHERE rule_name = 'latency_probe'").fetchall()
    conn.close()
    lat = sorted(created / 1e6 - sent[user] for user, created in rows if user in sent)
    if not lat:
        return float("nan"), float("nan"), 0
    p99 = lat[min(len(lat) - 1, int(len(lat) * 0.99))]
    return statistics.median(lat), p99, len(lat)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--lines", type=int, default=1_000_000)
    ap.add_argument("--workdir", help="keep files here (default: a temporary directory)")
    ap.add_argument("--skip-ingest", action="store_true", help="skip the 1M-line ingest measure")
    args = ap.parse_args()
    work = Path(args.workdir or tempfile.mkdtemp(prefix="soc-bench-rules-"))
    work.mkdir(parents=True, exist_ok=True)

    shipped = load_rules([SHIPPED])
    print(f"shipped rules  {len(shipped.all())} loaded, {len(shipped.errors)} failed")
    auth = work / "auth-sample.log"
    web = work / "access-sample.log"
    ingest_bench.generate(auth, 200_000)
    ingest_bench.generate_access(web, 100_000)
    auth_ev = parsed(auth, "/var/log/auth.log", 200_000)
    web_ev = parsed(web, "/var/log/nginx/access.log", 100_000)
    sets = [("shipped", shipped)]
    if (CORPUS / "sigmahq").is_dir():
        sigma = load_rules([CORPUS / "sigmahq"])
        both = load_rules([CORPUS / "sigmahq", SHIPPED])
        sets += [("SigmaHQ", sigma), ("SigmaHQ+shipped", both)]
        print(f"SigmaHQ rules  {len(sigma.all())} loaded, {len(sigma.errors)} failed ({CORPUS / 'sigmahq'})")
    else:
        print(f"SigmaHQ rules  skipped: corpus not found at {CORPUS}")
    for name, rules in sets:
        for kind, evs in (("auth", auth_ev), ("web", web_ev)):
            rate, hits = engine_rate(rules, evs)
            print(f"engine         {rate:9,.0f} events/s  {name:<16} {kind} events ({len(evs):,}), "
                  f"{hits:,} hits  (budget >= 50k with SigmaHQ)")
    for name, rules in sets[1:] or sets:
        for kind, log in (("auth", auth), ("web", web)):
            rate, raised = worker_rate(rules, log, work, f"{name}-{kind}")
            print(f"worker         {rate:9,.0f} events/s  {name:<16} {kind}: read from SQLite, "
                  f"evaluate, commit; {raised} alerts")

    with_corr, without, hits = correlation_rate(args.lines, work)
    per_event_us = (1 / with_corr - 1 / without) * 1e6
    print(f"correlation    {with_corr:9,.0f} events/s  event_count + value_count over "
          f"{args.lines:,} events ({hits:,} hits); base rule alone {without:,.0f}/s; "
          f"correlation cost {per_event_us:.2f} us/event  (budget >= 100k events/s)")

    if not args.skip_ingest:
        log = work / "auth.log"
        raw = ingest_bench.generate(log, args.lines)
        db = work / "ingest-rules.db"
        bare = work / "bare.db"
        for p in (db, bare):
            for suffix in ("", "-wal", "-shm"):
                Path(f"{p}{suffix}").unlink(missing_ok=True)
        os.sync()
        t = time.perf_counter()
        proc = subprocess.run(
            [sys.executable, "-m", "soc_tui", "--db", str(db), "ingest", "--year", "2023",
             "--no-progress", "--rules", str(SHIPPED), str(log)],
            capture_output=True, text=True, cwd=ROOT,
        )
        secs = time.perf_counter() - t
        if proc.returncode != 0:
            print(proc.stdout, proc.stderr, file=sys.stderr)
            return 1
        rate = args.lines / secs
        limit, _, _ = ingest_bench.bare_insert_limit(log, bare)
        summary = " / ".join(proc.stdout.strip().splitlines())
        print(f"ingest+rules   {rate:,.0f} lines/s with FTS and the shipped rules "
              f"({raw / secs / 1e6:.1f} MB/s, {secs:.1f}s)  [{summary}]")
        print(f"store limit    {limit:,.0f} rows/s;  ingest+rules/limit {rate / limit * 100:.0f}%  "
              f"(budget >= 70%)")

    p50, p99, n = latency(work, 20.0, 5000)
    print(f"latency        p50 {p50 * 1000:.0f} ms, p99 {p99 * 1000:.0f} ms from append to alert "
          f"commit at 5k lines/s ({n} probes; budget p99 <= 1 s)")
    if not args.workdir:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
