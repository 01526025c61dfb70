"""Dispatch of a syslog-style message to its program's extractor.

`extract(ev, app, msg, p)` is called by every envelope that yields a program
name and a message (RFC 3164/5424/ISO syslog, journald, JSON). It

1. unwraps `message repeated N times: [ msg ]` (rsyslog): ev.repeat = N,
   ev.message = the inner message (stripped); fields come from the inner
   message; raw is untouched;
2. normalises odd program tags: `[sshd]` -> sshd, `sshd(pam_unix)` -> sshd
   with the message read as a PAM line, `httpd/backend1` -> httpd;
3. calls the program's extractor (a dict lookup), else a generic fallback that
   recognises PAM lines and netfilter lines from any program.

An extractor never raises out of here: on an unexpected error the envelope
fields are kept, extra["extract_error"] = True is set (tests assert it never
happens on the corpus), and the event is stored as is.
"""

from __future__ import annotations

import re

from soc_tui.model import Event

from . import auth, kernel, sshd, web
from .util import add_extra

EXTRACTORS: dict = {}
EXTRACTORS.update(sshd.EXTRACTORS)
EXTRACTORS.update(auth.EXTRACTORS)
EXTRACTORS.update(kernel.EXTRACTORS)
EXTRACTORS_P: dict = dict(web.EXTRACTORS_P)

_REPEAT_RE = re.compile(r"message repeated (\d+) times?: \[\s*(.*?)\s*\]\s*$", re.S)
_LAST_REPEAT_RE = re.compile(r"last message repeated (\d+) times?")


def _generic(ev: Event, msg: str) -> None:
    if "pam_" in msg[:12]:
        auth.pam_message(ev, msg.lstrip())
    elif "SRC=" in msg:
        kernel.firewall(ev, msg)


def extract(ev: Event, app: str | None, msg: str, p=None) -> None:
    try:
        c = msg[:1]
        if c == "m" and msg.startswith("message repeated "):
            r = _REPEAT_RE.match(msg)
            if r is not None:
                n = int(r.group(1))
                if 1 <= n < 1_000_000_000:
                    ev.repeat = n
                msg = r.group(2)
                ev.message = msg
        elif c == "l" and msg.startswith("last message repeated"):
            r = _LAST_REPEAT_RE.match(msg)
            if r is not None:
                add_extra(ev, "last_message_repeated", int(r.group(1)))
                return
        if app is None:
            _generic(ev, msg)
            return
        fn = EXTRACTORS.get(app)
        if fn is not None:
            fn(ev, msg)
            return
        fnp = EXTRACTORS_P.get(app)
        if fnp is not None:
            fnp(ev, msg, p)
            return
        # Odd tags: "[sshd]", "sshd(pam_unix)", "httpd/backend1", "CRON" vs "cron".
        base = app
        if base[:1] == "[" and base[-1:] == "]":
            base = base[1:-1]
            ev.app = base or None
        if "(" in base:
            base, _, rest = base.partition("(")
            ev.app = base or None
            if rest.startswith("pam"):
                auth.pam_body(ev, base or None, msg)
                return
        if "/" in base:
            base = base.split("/", 1)[0]
        low = base.lower()
        fn = EXTRACTORS.get(base) or EXTRACTORS.get(low)
        if fn is not None:
            fn(ev, msg)
            return
        fnp = EXTRACTORS_P.get(base) or EXTRACTORS_P.get(low)
        if fnp is not None:
            fnp(ev, msg, p)
            return
        _generic(ev, msg)
    except Exception:  # noqa: BLE001 - a bad extractor must not lose the envelope
        add_extra(ev, "extract_error", True)
