"""The YAML configuration: one typed model with environment overrides.

Owns: reading and validating the config file (sources, database path, parse
defaults, rule directories, retention) and the default locations (database in
the user's data directory). Must not: open the database or start anything.

Example:

    db: /var/lib/soc-tui/soc.db
    sources:
      - /var/log/auth.log
      - path: /var/log/nginx/*.log
        host: web-01
        tz: Europe/Berlin
      - ssh://admin@db-01/var/log/auth.log
      - path: syslog+udp://0.0.0.0:5514
        allow: [10.0.0.0/8, 192.0.2.7]
      - journald://
    rules: [/etc/soc-tui/rules]
    retention: {days: 90, max_db_mb: 2048}
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml

from soc_tui.sources.base import SourceError, parse_allow, parse_spec

FORMATS = ("auto", "syslog", "access", "json", "journald")


class ConfigError(Exception):
    """A bad configuration: the message names the file and the problem."""


@dataclass
class SourceConfig:
    spec: str
    host: str | None = None
    tz: str | None = None
    year: int | None = None
    format: str = "auto"
    allow: list[str] | None = None  # syslog receivers: sender CIDRs accepted


@dataclass
class Retention:
    days: int | None = None
    max_db_mb: int | None = None


@dataclass
class Config:
    db: str | None = None
    sources: list[SourceConfig] = field(default_factory=list)
    rules: list[str] = field(default_factory=list)
    retention: Retention = field(default_factory=Retention)
    path: str | None = None


def default_db_path() -> str:
    env = os.environ.get("SOC_TUI_DB")
    if env:
        return env
    base = os.environ.get("XDG_DATA_HOME") or os.path.join(Path.home(), ".local", "share")
    return os.path.join(base, "soc-tui", "soc.db")


def default_config_path() -> str | None:
    env = os.environ.get("SOC_TUI_CONFIG")
    if env:
        return env
    base = os.environ.get("XDG_CONFIG_HOME") or os.path.join(Path.home(), ".config")
    path = os.path.join(base, "soc-tui", "config.yaml")
    return path if os.path.exists(path) else None


def check_tz(tz: str | None, where: str) -> None:
    if tz is None:
        return
    try:
        ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(f"{where}: unknown time zone {tz!r}") from None


def load_config(path: str | None) -> Config:
    """Read the config at `path` (None: defaults only)."""
    if path is None:
        return Config()
    try:
        with open(path, encoding="utf-8") as fh:
            data = yaml.safe_load(fh)
    except FileNotFoundError:
        raise ConfigError(f"config file not found: {path}") from None
    except OSError as exc:
        raise ConfigError(f"cannot read config {path}: {exc.strerror or exc}") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ConfigError(f"{path}:{where} invalid YAML: {problem}") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: the top level must be a mapping of settings")
    return _build(data, path)


_KNOWN = {"db", "sources", "rules", "retention"}


def _build(data: dict[str, Any], path: str) -> Config:
    unknown = set(data) - _KNOWN
    if unknown:
        raise ConfigError(f"{path}: unknown setting(s): {', '.join(sorted(map(str, unknown)))}")
    cfg = Config(path=path)
    db = data.get("db")
    if db is not None:
        if not isinstance(db, str):
            raise ConfigError(f"{path}: db must be a path")
        cfg.db = os.path.expanduser(db)
    sources = data.get("sources") or []
    if not isinstance(sources, list):
        raise ConfigError(f"{path}: sources must be a list")
    for i, item in enumerate(sources):
        where = f"{path}: sources[{i}]"
        if isinstance(item, str):
            cfg.sources.append(SourceConfig(item))
            continue
        if not isinstance(item, dict) or "path" not in item:
            raise ConfigError(f"{where} must be a path or a mapping with 'path'")
        extra = set(item) - {"path", "host", "tz", "year", "format", "allow"}
        if extra:
            raise ConfigError(f"{where}: unknown key(s): {', '.join(sorted(map(str, extra)))}")
        fmt = item.get("format", "auto")
        if fmt not in FORMATS:
            raise ConfigError(f"{where}: format must be one of {', '.join(FORMATS)}")
        year = item.get("year")
        if year is not None and not isinstance(year, int):
            raise ConfigError(f"{where}: year must be a number")
        check_tz(item.get("tz"), where)
        allow = item.get("allow")
        try:
            spec = parse_spec(str(item["path"]))
            if allow is not None:
                if not isinstance(allow, list):
                    raise SourceError(f"{item['path']}: allow must be a list of addresses or CIDRs")
                if not spec.kind.startswith("syslog"):
                    raise SourceError(f"{item['path']}: allow applies to syslog receivers only")
                parse_allow([str(a) for a in allow], str(item["path"]))
        except SourceError as exc:
            raise ConfigError(f"{where}: {exc}") from None
        cfg.sources.append(
            SourceConfig(str(item["path"]), item.get("host"), item.get("tz"), year, fmt,
                         [str(a) for a in allow] if allow is not None else None)
        )
    rules = data.get("rules") or []
    if not isinstance(rules, list) or not all(isinstance(r, str) for r in rules):
        raise ConfigError(f"{path}: rules must be a list of directories")
    cfg.rules = [os.path.expanduser(r) for r in rules]
    ret = data.get("retention") or {}
    if not isinstance(ret, dict) or set(ret) - {"days", "max_db_mb"}:
        raise ConfigError(f"{path}: retention takes 'days' and 'max_db_mb'")
    for key in ("days", "max_db_mb"):
        v = ret.get(key)
        if v is not None and (not isinstance(v, int) or v <= 0):
            raise ConfigError(f"{path}: retention.{key} must be a positive whole number")
    cfg.retention = Retention(ret.get("days"), ret.get("max_db_mb"))
    return cfg
