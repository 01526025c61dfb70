"""Architecture rules that keep the core reusable: no Textual outside the UI,
no SQL outside store/, and every module says what it owns."""

from __future__ import annotations

import ast
import re
from pathlib import Path

PKG = Path(__file__).resolve().parent.parent / "soc_tui"
UI_ALLOWED = {PKG / "cli.py"}
SQL = re.compile(r"\b(SELECT\s.+\sFROM|INSERT\s+INTO|UPDATE\s+\w+\s+SET|DELETE\s+FROM|CREATE\s+(TABLE|INDEX|VIEW))\b", re.I | re.S)


def modules() -> list[Path]:
    return sorted(PKG.rglob("*.py"))


def imported(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(a.name.split(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


def test_core_never_imports_textual() -> None:
    offenders = [
        str(p.relative_to(PKG))
        for p in modules()
        if (PKG / "ui") not in p.parents and p not in UI_ALLOWED and {"textual", "rich"} & imported(p)
    ]
    assert offenders == []


def test_sql_lives_in_store() -> None:
    offenders = []
    for p in modules():
        if (PKG / "store") in p.parents:
            continue
        for node in ast.walk(ast.parse(p.read_text())):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and SQL.search(node.value):
                offenders.append(f"{p.relative_to(PKG)}:{node.lineno}")
    assert offenders == []


def test_every_module_has_a_docstring() -> None:
    missing = [
        str(p.relative_to(PKG))
        for p in modules()
        if p.stat().st_size and ast.get_docstring(ast.parse(p.read_text())) is None
    ]
    assert missing == []
