"""How a stored event looks to a Sigma rule: logsource tags and field names.

Owns: the one table that maps Sigma field names to event columns (DESIGN
section 6), the product/service/category tags each event carries for logsource
routing, and the URL decoding web rules match against. Must not: do I/O, touch
SQLite, import Textual.

An event reaches the engine as a dict with the columns of `soc_tui.model.Event`
(what `StoreReader` returns; `extra` a dict or None), or as an `EventView` of
an Event just parsed. `RuleEvent` wraps it and
caches, per event, each field's candidate strings: web rules see the raw URL
and its decoded form, so a field may have more than one candidate.
"""

from __future__ import annotations

import json
import re
from functools import partial
from typing import Any, Callable
from urllib.parse import unquote, unquote_plus

from soc_tui.model import FLAG_UNPARSED, Event

# -- logsource tags -----------------------------------------------------------

# Programs whose lines land in auth.log on Debian-like systems (Sigma's
# `service: auth`), plus the service name Sigma uses for some of them.
_AUTH_APPS = {
    "sshd", "sshd-session", "sshd-auth", "dropbear", "sudo", "su", "login", "passwd",
    "useradd", "usermod", "userdel", "groupadd", "groupmod", "groupdel", "gpasswd",
    "chage", "chfn", "chsh", "newusers", "chpasswd", "systemd-logind", "polkitd",
    "pkexec", "cron", "crond", "unix_chkpwd", "doas",
}
_SERVICE_OF_APP = {
    "sshd": "sshd", "sshd-session": "sshd", "sshd-auth": "sshd", "dropbear": "sshd",
    "sudo": "sudo", "cron": "cron", "crond": "cron", "anacron": "cron", "crontab": "cron",
    "vsftpd": "vsftpd", "clamd": "clamav", "freshclam": "clamav", "clamav": "clamav",
    "guacd": "guacamole", "guacamole": "guacamole", "auditd": "auditd",
}


class Tags:
    """product / services / category of one event (what logsource routing sees)."""

    __slots__ = ("product", "services", "category")

    def __init__(self, product: str | None, services: frozenset[str], category: str | None) -> None:
        self.product = product
        self.services = services
        self.category = category

    def key(self) -> tuple[str | None, frozenset[str], str | None]:
        return (self.product, self.services, self.category)

    def __repr__(self) -> str:
        return f"Tags({self.product!r}, {sorted(self.services)!r}, {self.category!r})"


_tag_cache: dict[tuple[Any, ...], Tags] = {}


def event_tags(ev: dict[str, Any]) -> Tags:
    """The logsource tags of an event (cached per distinct shape)."""
    app = ev.get("app")
    web = ev.get("http_method") is not None or ev.get("action") == "http_request"
    unparsed = bool((ev.get("flags") or 0) & FLAG_UNPARSED)
    key = (app, web, unparsed)
    tags = _tag_cache.get(key)
    if tags is None:
        tags = _compute_tags(app, web, unparsed)
        if len(_tag_cache) < 4096:
            _tag_cache[key] = tags
    return tags


def _compute_tags(app: str | None, web: bool, unparsed: bool) -> Tags:
    name = (app or "").lower()
    if web:  # an access-log line
        services = frozenset({name} & {"apache", "nginx", "httpd"})
        return Tags(None, services | ({"apache"} if name == "httpd" else set()), "webserver")
    if name in ("apache", "httpd", "nginx"):  # an error-log line
        return Tags(None, frozenset({"apache" if name == "httpd" else name}), "webserver")
    if unparsed:
        return Tags(None, frozenset(), None)
    if name == "auditd":
        return Tags("linux", frozenset({"auditd"}), None)
    services = {"syslog"}
    lower = name.lower()
    if lower in _AUTH_APPS or lower.startswith("pam"):
        services.add("auth")
    svc = _SERVICE_OF_APP.get(lower)
    if svc:
        services.add(svc)
    return Tags("linux", frozenset(services), None)


def logsource_matches(product: str | None, service: str | None, category: str | None, tags: Tags) -> bool:
    """Whether a rule's logsource admits events with `tags`."""
    if product is not None and product != tags.product:
        return False
    if service is not None and service not in tags.services:
        return False
    if category is not None and category != tags.category:
        return False
    return True


# -- URL decoding -------------------------------------------------------------


def decoded_forms(text: str, *, plus: bool) -> str:
    """`text` percent-decoded repeatedly until stable. With `plus` (a query),
    a `+` written in the text is a space; one that decoding produced (from
    `%2B`) stays a plus."""
    out = text
    for round_ in range(8):
        nxt = unquote_plus(out) if plus and round_ == 0 else unquote(out)
        if nxt == out:
            break
        out = nxt
    return out


def url_forms(url: str) -> tuple[str, ...]:
    """The URL as written and decoded (path decoded as a path, the query with
    `+` as space); one item when decoding changes nothing."""
    path, sep, query = url.partition("?")
    dec = decoded_forms(path, plus=False) + (sep + decoded_forms(query, plus=True) if sep else "")
    return (url,) if dec == url else (url, dec)


def _path_forms(url: str) -> tuple[str, ...]:
    path = url.partition("?")[0]
    dec = decoded_forms(path, plus=False)
    return (path,) if dec == path else (path, dec)


# -- field mapping ------------------------------------------------------------


_COLUMNS: dict[Callable[[dict[str, Any]], Any], str] = {}  # column getter -> its column


def _col(name: str) -> Callable[[dict[str, Any]], Any]:
    def get(ev: dict[str, Any]) -> Any:
        return ev.get(name)

    _COLUMNS[get] = name
    return get


def _url(ev: dict[str, Any]) -> Any:
    url = ev.get("url")
    return None if url is None else url_forms(url)


def _path(ev: dict[str, Any]) -> Any:
    url = ev.get("url")
    return None if url is None else _path_forms(url)


_HEX_RE = re.compile(r"(?:[0-9A-Fa-f]{2})+\Z")


def _audit_arg(ev: dict[str, Any], key: str, value: Any) -> str | None:
    """One value of an auditd record as the program saw it: auditd writes a
    value hex-encoded (unquoted) when it holds spaces, quotes or control
    characters, and quoted otherwise; the parser has removed the quotes, so the
    record's text tells which it was."""
    if not isinstance(value, str) or not value:
        return None
    msg = ev.get("message") or ev.get("raw") or ""
    if f'{key}="' in msg or f"{key}='" in msg or not _HEX_RE.match(value):
        return value
    try:
        text = bytes.fromhex(value).decode("utf-8", "replace")
    except ValueError:
        return value
    return text.replace("\x00", " ").strip()


def extra_of(ev: dict[str, Any]) -> dict[str, Any] | None:
    """The event's `extra` fields. An event handed over straight from the
    writer may carry them as the JSON text; it is parsed here, once, on the
    first rule that reads it."""
    extra = ev.get("extra")
    if extra.__class__ is str:
        try:
            extra = json.loads(extra)
        except ValueError:
            return None
        ev["extra"] = extra
    return extra if isinstance(extra, dict) else None


def _command(ev: dict[str, Any]) -> Any:
    """The command line of an event: sudo's COMMAND=, a cron job's command, or
    for auditd records the USER_CMD `cmd`, the EXECVE arguments a0..aN joined
    by spaces, or the PROCTITLE (hex-encoded values decoded)."""
    extra = extra_of(ev)
    if extra is None:
        return None
    cmd = extra.get("command")
    if cmd is not None or ev.get("app") != "auditd":
        return cmd
    typ = extra.get("type")
    if typ == "USER_CMD":
        return _audit_arg(ev, "cmd", extra.get("cmd"))
    if typ == "EXECVE":
        args = []
        for i in range(1024):
            key = f"a{i}"
            if key not in extra:
                break
            arg = _audit_arg(ev, key, extra[key])
            if arg is not None:
                args.append(arg)
        return " ".join(args) or None
    if typ == "PROCTITLE":
        return _audit_arg(ev, "proctitle", extra.get("proctitle"))
    return None


def _http_host(ev: dict[str, Any]) -> Any:
    extra = extra_of(ev)
    if extra is not None and extra.get("http_host"):
        return extra["http_host"]
    return ev.get("host")


# Event columns a rule may name as they are.
EVENT_FIELDS = (
    "id", "ts", "host", "app", "pid", "level", "action", "outcome", "user", "target_user",
    "src_ip", "src_port", "http_method", "url", "http_status", "bytes", "user_agent",
    "referrer", "message", "raw", "repeat", "source_id",
)

# Sigma field name -> getter. Names are looked up as written, then lower-cased
# (`USER` differs from `user`: in sudo lines it is the target user).
FIELD_MAP: dict[str, Callable[[dict[str, Any]], Any]] = {name: _col(name) for name in EVENT_FIELDS}
FIELD_MAP.update({
    # webserver (W3C names, as SigmaHQ's web rules use them) and proxy
    "c-ip": _col("src_ip"),
    "cs-method": _col("http_method"),
    "cs-uri-query": _url,  # path plus query, raw and decoded
    "cs-uri-stem": _path,  # path only
    "cs-uri": _url,
    "c-uri": _url,
    "c-uri-query": _url,
    "c-uri-stem": _path,
    "sc-status": _col("http_status"),
    "cs-user-agent": _col("user_agent"),
    "c-useragent": _col("user_agent"),
    "cs-referer": _col("referrer"),
    "cs-referrer": _col("referrer"),
    "cs-username": _col("user"),
    "cs-host": _http_host,
    "sc-bytes": _col("bytes"),
    "r-dns": _http_host,
    # syslog
    "program": _col("app"),
    "hostname": _col("host"),
    "Hostname": _col("host"),
    "ProcessId": _col("pid"),
    "pid": _col("pid"),
    # sudo / su: USER is who the command runs as
    "USER": _col("target_user"),
    "User": _col("user"),
    "TargetUser": _col("target_user"),
    "SourceIp": _col("src_ip"),
    "SourcePort": _col("src_port"),
    "COMMAND": _command,
    "CommandLine": _command,
})


def getter(name: str) -> Callable[[dict[str, Any]], Any]:
    """The getter for a Sigma field name: the table, else a key of `extra`
    (as written, then lower-cased), e.g. auditd's `type`, `exe`, `a0`."""
    get = FIELD_MAP.get(name) or FIELD_MAP.get(name.lower())
    if get is not None:
        return get
    lower = name.lower()

    def from_extra(ev: dict[str, Any]) -> Any:
        extra = extra_of(ev)
        if extra is None:
            return None
        value = extra.get(name)
        return extra.get(lower) if value is None else value

    return from_extra


def extra_keys(name: str) -> tuple[str, str] | None:
    """The keys of `extra` a Sigma field name reads (as written, then
    lower-cased), or None when the field maps to a column or is derived."""
    if FIELD_MAP.get(name) or FIELD_MAP.get(name.lower()):
        return None
    return name, name.lower()


# The event keys each derived getter reads.
_DERIVED_READS: dict[Callable[[dict[str, Any]], Any], tuple[str, ...]] = {
    _url: ("url",), _path: ("url",), _http_host: ("extra", "host"),
    _command: ("extra", "app", "message", "raw"),
}


def keys_read(name: str) -> tuple[str, ...]:
    """The keys of an event dict that a Sigma field name's value comes from
    (a column, the columns a derived field is made of, or `extra`)."""
    get = FIELD_MAP.get(name) or FIELD_MAP.get(name.lower())
    if get is None:
        return ("extra",)
    col = _COLUMNS.get(get)
    return (col,) if col is not None else _DERIVED_READS[get]


def column_of(name: str) -> str | None:
    """The event column a Sigma field name reads as it is (None: the field is
    derived, like the decoded URL, or comes from `extra`)."""
    return _COLUMNS.get(getter(name))


def as_strings(value: Any) -> tuple[str, ...]:
    """A field value as the candidate strings matchers compare."""
    if value is None:
        return ()
    if isinstance(value, tuple):
        return value
    if isinstance(value, bool):
        return ("true" if value else "false",)
    if isinstance(value, list):
        return tuple(v if isinstance(v, str) else str(v) for v in value if v is not None)
    return (value if isinstance(value, str) else str(value),)


class EventView:
    """A parsed Event read the way the engine reads an event dict (`get`,
    `[]`), without building the dict: the parse process matches every event
    of a backfill, and copying its 25 fields into a dict cost about as much
    as a third of the matching. `get` is `getattr` bound to the event, a C
    call like `dict.get`. A missing message is set to the raw line (what the
    store gives back for such an event)."""

    __slots__ = ("get", "_ev")

    def __init__(self, ev: Event) -> None:
        if ev.message is None:
            ev.message = ev.raw
        self._ev = ev
        self.get = partial(getattr, ev)

    def __getitem__(self, name: str) -> Any:
        return getattr(self._ev, name)

    def __setitem__(self, name: str, value: Any) -> None:
        setattr(self._ev, name, value)


class RuleEvent:
    """An event as rules see it: cached field candidates, raw and lower-cased."""

    __slots__ = ("ev", "tags", "_values", "_lower", "_keywords", "_lkeywords")

    def __init__(self, ev: dict[str, Any]) -> None:
        self.ev = ev
        self.tags = event_tags(ev)
        # made on first use: many events are matched without reading a field twice
        self._values: dict[str, tuple[str, ...]] | None = None
        self._lower: dict[str, tuple[str, ...]] | None = None
        self._keywords: tuple[str, ...] | None = None
        self._lkeywords: tuple[str, ...] | None = None

    def value(self, get: Callable[[dict[str, Any]], Any]) -> Any:
        """A field's value before conversion to strings (the first candidate)."""
        value = get(self.ev)
        if isinstance(value, tuple):
            return value[0] if value else None
        return value

    def values(self, name: str, get: Callable[[dict[str, Any]], Any]) -> tuple[str, ...]:
        """The field's candidate strings; `get` is `getter(name)`, resolved once
        by the caller (a compiled rule)."""
        cache = self._values
        if cache is None:
            cache = self._values = {}
        else:
            got = cache.get(name)
            if got is not None:
                return got
        v = get(self.ev)
        got = cache[name] = (v,) if v.__class__ is str else as_strings(v)
        return got

    def lower(self, name: str, get: Callable[[dict[str, Any]], Any]) -> tuple[str, ...]:
        cache = self._lower
        if cache is None:
            cache = self._lower = {}
        else:
            got = cache.get(name)
            if got is not None:
                return got
        vals = self.values(name, get)
        if len(vals) == 1:
            got = (vals[0].casefold(),)
        else:  # most fields a rule reads are missing from most events: ()
            got = tuple([v.casefold() for v in vals]) if vals else vals
        cache[name] = got
        return got

    def keyword_text(self, *, cased: bool = False) -> tuple[str, ...]:
        """What keyword searches look at: the raw line (and, for web events, the
        line with its URL decoded)."""
        if self._keywords is None:
            raw = self.ev.get("raw") or ""
            forms: tuple[str, ...] = (raw,)
            url = self.ev.get("url")
            if url:
                dec = url_forms(url)
                if len(dec) > 1:
                    forms = (raw, raw.replace(url, dec[1]))
            self._keywords = forms
        if cased:
            return self._keywords
        if self._lkeywords is None:
            self._lkeywords = tuple(f.casefold() for f in self._keywords)
        return self._lkeywords
