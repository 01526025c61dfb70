#!/usr/bin/env python3
"""Write a small seeded sample (auth.log and an nginx access.log) for `make demo`.

Written by this project; a stop-gap until the demo scenarios (issue: demo and
training mode) replace it. Usage: sample.py OUTPUT_DIR
"""

from __future__ import annotations

import random
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path


def write_sample(out: Path, seed: int = 42) -> list[Path]:
    rng = random.Random(seed)
    out.mkdir(parents=True, exist_ok=True)
    end = datetime.now(timezone.utc).replace(microsecond=0)
    t = end - timedelta(hours=1)
    auth, web = [], []
    attacker = "203.0.113.66"
    while t < end:
        t += timedelta(seconds=rng.randint(1, 20))
        stamp = t.strftime("%b %e %H:%M:%S")
        pid = rng.randint(2000, 30000)
        r = rng.random()
        if r < 0.2:
            auth.append(f"{stamp} bastion CRON[{pid}]: pam_unix(cron:session): session opened for user root by (uid=0)")
        elif r < 0.3:
            auth.append(f"{stamp} bastion sshd[{pid}]: Accepted publickey for alice from 198.51.100.{rng.randint(2, 40)} port {rng.randint(30000, 60000)} ssh2: ED25519 SHA256:Zm9vYmFy")
        web.append(
            f'198.51.100.{rng.randint(2, 200)} - - [{t.strftime("%d/%b/%Y:%H:%M:%S +0000")}] '
            f'"GET /{rng.choice(["", "index.html", "about", "blog/post-1", "static/app.css"])} HTTP/1.1" '
            f'200 {rng.randint(200, 9000)} "-" "Mozilla/5.0 (X11; Linux x86_64)"'
        )
    # The attack: probing, brute force, then a successful login and sudo.
    t = end - timedelta(minutes=20)
    for path in ["/.env", "/.git/config", "/wp-login.php", "/admin", "/phpmyadmin/"]:
        t += timedelta(seconds=1)
        web.append(f'{attacker} - - [{t.strftime("%d/%b/%Y:%H:%M:%S +0000")}] "GET {path} HTTP/1.1" 404 153 "-" "sqlmap/1.7"')
    for i in range(12):
        t += timedelta(seconds=2)
        auth.append(f"{t.strftime('%b %e %H:%M:%S')} bastion sshd[{4000 + i}]: Failed password for root from {attacker} port {50000 + i} ssh2")
    t += timedelta(seconds=5)
    auth.append(f"{t.strftime('%b %e %H:%M:%S')} bastion sshd[4100]: Accepted password for deploy from {attacker} port 50100 ssh2")
    t += timedelta(seconds=40)
    auth.append(f"{t.strftime('%b %e %H:%M:%S')} bastion sudo:   deploy : TTY=pts/1 ; PWD=/home/deploy ; USER=root ; COMMAND=/usr/sbin/useradd -m -G sudo backup")
    auth.sort(key=lambda line: datetime.strptime(f"{end.year} {line[:15]}", "%Y %b %d %H:%M:%S"))
    paths = [out / "auth.log", out / "access.log"]
    paths[0].write_text("\n".join(auth) + "\n")
    paths[1].write_text("\n".join(web) + "\n")
    return paths


if __name__ == "__main__":
    for p in write_sample(Path(sys.argv[1] if len(sys.argv) > 1 else "demo-sample")):
        print(p)
