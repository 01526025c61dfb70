#!/usr/bin/env python3
"""Syslog receiver load benchmark: prints figures, asserts nothing.

    .venv/bin/python benchmarks/syslog_load.py [--count 100000] [--udp-rate 10000] [--workdir DIR]

1. starts `soc-tui collect --no-rules` (the real CLI path) on a fresh database
   with a TCP and a UDP syslog source on loopback;
2. from a sender process, sends --count RFC 5424 messages over TCP (octet
   counted, as fast as the receiver takes them: TCP has backpressure), then
   --count over UDP as fast as the sender can, then --count over UDP paced at
   --udp-rate messages/s (0 skips that phase); every message carries its send
   time (time.time_ns()) and a sequence number;
3. after each phase, waits until the stored count stops growing, then reads the
   phase's events back and prints: sent, stored (and duplicates), stored
   messages/s (first send to last commit), the UDP loss (sent - stored, with the
   kernel's drop count for the receiver's socket from /proc/net/udp; the rest
   was dropped by the source's full buffer), and p50/p99 of send -> stored
   (events' ingested_at, the commit time of their batch, in µs).
"""

from __future__ import annotations

import argparse
import json
import re
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from soc_tui.store.reader import StoreReader  # noqa: E402

HOST = "127.0.0.1"
SENT_RE = re.compile(r"seq=(\d+) sent_ns=(\d+)")


# -- the sender (runs in its own process: `--send`) --------------------------------------


def _message(app: str, seq: int) -> bytes:
    now = time.time_ns()
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now // 1_000_000_000))
    return (f"<38>1 {stamp}.{now // 1000 % 1_000_000:06d}Z bench-host {app} {4000 + seq % 1000} - - "
            f"seq={seq} sent_ns={now} Failed password for invalid user admin from 198.51.100.{seq % 250 + 1} "
            f"port {20000 + seq % 40000} ssh2").encode()


def send(proto: str, port: int, count: int, rate: float, app: str) -> dict[str, float]:
    t0 = time.perf_counter()
    if proto == "tcp":
        with socket.create_connection((HOST, port)) as s:
            for start in range(0, count, 100):
                frames = []
                for seq in range(start, min(count, start + 100)):
                    m = _message(app, seq)
                    frames.append(b"%d %s" % (len(m), m))
                s.sendall(b"".join(frames))
    else:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.connect((HOST, port))
            for seq in range(count):
                if rate:
                    ahead = t0 + seq / rate - time.perf_counter()
                    if ahead > 0:
                        time.sleep(ahead)
                try:
                    s.send(_message(app, seq))
                except ConnectionRefusedError:  # ICMP from an earlier datagram; keep going
                    pass
    return {"sent": count, "seconds": time.perf_counter() - t0}


# -- the measuring side ------------------------------------------------------------------


def free_port(kind: int) -> int:
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def udp_bound(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.bind((HOST, port))
        except OSError:
            return True
        return False


def tcp_listens(port: int) -> bool:
    try:
        socket.create_connection((HOST, port), timeout=0.2).close()
        return True
    except OSError:
        return False


def kernel_drops(port: int) -> int | None:
    """The drops column of /proc/net/udp for the socket bound to HOST:port."""
    local = f"{socket.htonl(0x7F000001):08X}:{port:04X}"
    try:
        with open("/proc/net/udp") as fh:
            for line in fh:
                parts = line.split()
                if len(parts) >= 13 and parts[1] == local:
                    return int(parts[-1])
    except OSError:
        pass
    return None


def stored_total(db: Path) -> int:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return conn.execute("SELECT count(*) FROM events").fetchone()[0]
    except sqlite3.OperationalError:
        return 0
    finally:
        conn.close()


def wait_quiet(db: Path, target: int, quiet: float = 2.0, limit: float = 600.0) -> int:
    """Wait until the stored count reaches `target` or stops growing for `quiet` s."""
    last, since = -1, time.monotonic()
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        n = stored_total(db)
        if n >= target:
            return n
        if n != last:
            last, since = n, time.monotonic()
        elif time.monotonic() - since >= quiet:
            return n
        time.sleep(0.2)
    return last


def pct(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    values = sorted(values)
    return values[min(len(values) - 1, int(p / 100 * len(values)))]


def report(name: str, db: Path, app: str, sent: int, send_s: float, drops: int | None) -> None:
    reader = StoreReader(str(db), create=False)
    try:
        seqs: set[int] = set()
        dup = 0
        first_sent = None
        last_stored = 0
        lat: list[float] = []
        for e in reader.iter_search(f"app:{app}"):
            m = SENT_RE.search(e["message"] or "")
            if not m:
                continue
            seq, sent_ns = int(m.group(1)), int(m.group(2))
            if seq in seqs:
                dup += 1
                continue
            seqs.add(seq)
            sent_us = sent_ns // 1000
            first_sent = sent_us if first_sent is None else min(first_sent, sent_us)
            last_stored = max(last_stored, e["ingested_at"])
            lat.append((e["ingested_at"] - sent_us) / 1000)
    finally:
        reader.close()
    stored = len(seqs)
    span = (last_stored - first_sent) / 1e6 if first_sent is not None and stored else float("nan")
    print(f"{name}")
    print(f"  sent          {sent:,} in {send_s:.2f}s ({sent / send_s:,.0f}/s offered)")
    print(f"  stored        {stored:,} ({dup} duplicates){'' if stored == sent else f'; lost {sent - stored:,}'}")
    print(f"  stored rate   {stored / span:,.0f} messages/s (first send to last commit, {span:.2f}s)")
    if name.startswith("udp"):
        k = "n/a" if drops is None else f"{drops:,}"
        rest = "" if drops is None else f", dropped by the source's full buffer {max(0, sent - stored - drops):,}"
        print(f"  udp loss      {sent - stored:,} ({(sent - stored) / sent * 100:.1f}%): kernel drops on the socket {k}{rest}")
    print(f"  send->stored  p50 {pct(lat, 50):,.1f} ms  p99 {pct(lat, 99):,.1f} ms  max {max(lat, default=float('nan')):,.1f} ms")


def run_sender(proto: str, port: int, count: int, rate: float, app: str) -> dict[str, float]:
    out = subprocess.run(
        [sys.executable, __file__, "--send", proto, str(port), str(count), str(rate), app],
        check=True, capture_output=True, text=True,
    ).stdout
    return json.loads(out)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--count", type=int, default=100_000, help="messages per phase")
    ap.add_argument("--udp-rate", type=float, default=10_000,
                    help="messages/s of the paced UDP phase (0: skip it)")
    ap.add_argument("--workdir", help="keep files here (default: a temporary directory)")
    ap.add_argument("--send", nargs=5, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.send:
        proto, port, count, rate, app = args.send
        print(json.dumps(send(proto, int(port), int(count), float(rate), app)))
        return 0

    work = Path(args.workdir or tempfile.mkdtemp(prefix="soc-syslog-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    db = work / "syslog.db"
    for suffix in ("", "-wal", "-shm"):
        Path(f"{db}{suffix}").unlink(missing_ok=True)
    tport, uport = free_port(socket.SOCK_STREAM), free_port(socket.SOCK_DGRAM)
    err_path = work / "collect.stderr"
    with open(err_path, "w") as err:
        proc = subprocess.Popen(
            [sys.executable, "-m", "soc_tui", "--db", str(db), "collect", "--no-rules",
             f"syslog+tcp://{HOST}:{tport}", f"syslog+udp://{HOST}:{uport}"],
            stdout=subprocess.DEVNULL, stderr=err, cwd=ROOT,
        )
    try:
        deadline = time.monotonic() + 30
        while not (udp_bound(uport) and tcp_listens(tport)):
            if proc.poll() is not None or time.monotonic() > deadline:
                print(err_path.read_text(), file=sys.stderr)
                return 1
            time.sleep(0.05)
        print(f"collector      pid {proc.pid}, tcp {HOST}:{tport}, udp {HOST}:{uport}, db {db}")
        phases = [("tcp (octet counted, backpressure)", "tcp", tport, 0.0, "bench-tcp"),
                  ("udp (as fast as the sender can)", "udp", uport, 0.0, "bench-udp")]
        if args.udp_rate:
            phases.append((f"udp (paced at {args.udp_rate:,.0f}/s)", "udp", uport, args.udp_rate, "bench-udp-paced"))
        expected = 0
        for name, proto, port, rate, app in phases:
            before = kernel_drops(port) if proto == "udp" else None
            res = run_sender(proto, port, args.count, rate, app)
            expected += args.count
            wait_quiet(db, expected)
            after = kernel_drops(port) if proto == "udp" else None
            drops = after - before if before is not None and after is not None else None
            report(name, db, app, args.count, res["seconds"], drops)
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            proc.kill()
    tail = [ln for ln in err_path.read_text().splitlines() if ln.strip()]
    if tail:
        print("collector said: " + " | ".join(tail[-5:]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
