"""Small helpers shared by envelopes and extractors (no I/O, no state)."""

from __future__ import annotations

import ipaddress
import re

from soc_tui.model import Event

# Syslog severities (RFC 5424 numbers) -> the level names we store.
SEVERITY_NAMES: tuple[str, ...] = (
    "emergency",
    "alert",
    "critical",
    "error",
    "warning",
    "notice",
    "info",
    "debug",
)
FACILITY_NAMES: tuple[str, ...] = (
    "kern", "user", "mail", "daemon", "auth", "syslog", "lpr", "news", "uucp", "cron",
    "authpriv", "ftp", "ntp", "security", "console", "solaris-cron", "local0", "local1",
    "local2", "local3", "local4", "local5", "local6", "local7",
)

# Free-form level words (JSON logs, Apache, nginx) -> stored level names.
LEVEL_ALIASES: dict[str, str] = {
    "emerg": "emergency", "emergency": "emergency", "panic": "emergency",
    "alert": "alert",
    "crit": "critical", "critical": "critical", "fatal": "critical",
    "err": "error", "error": "error", "eror": "error",
    "warn": "warning", "warning": "warning",
    "notice": "notice",
    "info": "info", "information": "info", "informational": "info",
    "debug": "debug", "trace": "debug", "dbug": "debug",
}


def level_name(word) -> str | None:
    """A level word or syslog number as a stored level name (unknown words kept, lowered)."""
    if word is None:
        return None
    if isinstance(word, bool):
        return None
    if isinstance(word, int):
        return SEVERITY_NAMES[word] if 0 <= word <= 7 else None
    w = str(word).strip()
    if not w:
        return None
    if w.isdigit():
        n = int(w)
        return SEVERITY_NAMES[n] if 0 <= n <= 7 else None
    lw = w.lower()
    if lw.startswith("trace") and lw[5:].isdigit():  # Apache "trace1".."trace8"
        return "debug"
    return LEVEL_ALIASES.get(lw, lw[:16])


def apply_pri(ev: Event, pri: str) -> None:
    """Fill level and extra facility/severity from a syslog `<PRI>` value."""
    try:
        p = int(pri)
    except ValueError:
        return
    if not 0 <= p <= 191:
        return
    fac, sev = divmod(p, 8)
    ev.level = SEVERITY_NAMES[sev]
    add_extra(ev, "facility", FACILITY_NAMES[fac])
    add_extra(ev, "severity", sev)


def add_extra(ev: Event, key: str, value) -> None:
    if value is None:
        return
    x = ev.extra
    if x is None:
        ev.extra = {key: value}
    else:
        x[key] = value


_IPV4_RE = re.compile(r"\d{1,3}(?:\.\d{1,3}){3}\Z")
_IPV6_RE = re.compile(r"[0-9A-Fa-f:]*:[0-9A-Fa-f:]*:[0-9A-Fa-f:.]*(?:%[\w.-]+)?\Z")
_HOSTNAME_RE = re.compile(r"[A-Za-z0-9_](?:[A-Za-z0-9_.-]*[A-Za-z0-9_])?\.?\Z")


def is_ip(s: str) -> bool:
    """True for a dotted quad (odd forms like 192.030.0.6 included) or an IPv6 address."""
    if _IPV4_RE.match(s) is not None:
        return True
    if ":" in s and _IPV6_RE.match(s) is not None:
        try:
            ipaddress.IPv6Address(s)
        except ValueError:
            return False
        return True
    return False


def clean_host(s: str) -> str:
    """Strip brackets, `::ffff:` v4-mapped prefixes and trailing punctuation from a peer."""
    if s.startswith("[") and s.endswith("]"):
        s = s[1:-1]
    if s[:7].lower() == "::ffff:" and _IPV4_RE.match(s, 7) is not None:
        s = s[7:]
    return s


def set_peer(ev: Event, host: str | None, port=None) -> None:
    """Record a remote peer: an IP address goes to src_ip, a name to extra["src_host"]."""
    if host:
        if _IPV4_RE.match(host) is not None:  # the common case, kept cheap
            ev.src_ip = host
        else:
            h = clean_host(host)
            if is_ip(h):
                ev.src_ip = h
            elif h and h not in ("-", "unknown", "UNKNOWN", "(null)") and _HOSTNAME_RE.match(h):
                add_extra(ev, "src_host", h)
    if port is not None:
        try:
            p = int(port)
        except (TypeError, ValueError):
            return
        if 0 <= p <= 65535:
            ev.src_port = p


def split_host_port(s: str) -> tuple[str, str | None]:
    """"1.2.3.4:5678" -> ("1.2.3.4", "5678"); "[::1]:22" -> ("::1", "22"); IPv6 alone kept."""
    if s.startswith("["):
        end = s.find("]")
        if end > 0:
            host = s[1:end]
            rest = s[end + 1 :]
            if rest.startswith(":") and rest[1:].isdigit():
                return host, rest[1:]
            return host, None
    if s.count(":") == 1:
        host, _, port = s.partition(":")
        if port.isdigit():
            return host, port
    return s, None


# rsyslog escapes control characters as '#' + three octal digits (#012 = newline).
_OCTAL_ESC_RE = re.compile(r"#(0[0-3][0-7]|177)")


def decode_octal_escapes(s: str) -> str:
    if "#" not in s:
        return s
    return _OCTAL_ESC_RE.sub(lambda m: chr(int(m.group(1), 8)), s)


def strip_uid(name: str | None) -> str | None:
    """"vagrant(uid=1000)" -> "vagrant"; "(uid=0)" -> None; "" -> None."""
    if not name:
        return None
    i = name.find("(")
    if i == 0:
        return None
    if i > 0:
        name = name[:i]
    return name or None
