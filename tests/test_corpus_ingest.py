"""Every real log in the shared corpus ingests, line for line; counts agree with grep.

Reads ../shared/corpus (skipped with a reason when absent); nothing is copied.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
from storedb import stored_events

from soc_tui.cli import main

NOT_LOGS = re.compile(r"(SOURCE.*\.txt|README.*|LICENSE|COPYING|CITATION|.*\.md|.*\.ya?ml)$")


def corpus_files(corpus: Path) -> list[Path]:
    return sorted(
        p for p in corpus.rglob("*")
        if p.is_file() and not NOT_LOGS.match(p.name) and "sigmahq" not in p.parts[len(corpus.parts)]
    )


def file_lines(path: Path) -> list[str]:
    """The lines `ingest` must store: split on LF, the final unterminated line kept."""
    data = path.read_bytes()
    parts = data.split(b"\n")
    if parts and parts[-1] == b"":
        parts.pop()
    out = []
    for b in parts:
        line = b.decode("utf-8", "replace")
        out.append(line[:-1] if line.endswith("\r") else line)
    return out


@pytest.fixture(scope="module")
def ingested(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[Path]]:
    from conftest import CORPUS

    if not CORPUS.is_dir():
        pytest.skip(f"real-log corpus not found at {CORPUS}")
    files = corpus_files(CORPUS)
    db = tmp_path_factory.mktemp("corpus") / "soc.db"
    code = main(["--db", str(db), "ingest", "--no-progress", "--tz", "UTC", *map(str, files)])
    assert code == 0
    return db, files


def test_every_corpus_file_is_stored_line_for_line(ingested) -> None:
    db, files = ingested
    assert len(files) > 50
    by_source: dict[str, list[str]] = {}
    events = stored_events(db)
    for e in events:
        by_source.setdefault(e["source_id"], []).append(e["raw"])
    problems = []
    total = 0
    for path in files:
        stored = by_source.get(os.path.abspath(path), [])
        expected = file_lines(path)
        total += len(expected)
        if stored != expected:
            problems.append(f"{path}: stored {len(stored)} rows for {len(expected)} lines")
    assert not problems, "\n".join(problems)
    assert len(events) == total


def grep_count(path: Path, phrase: str) -> int:
    """Lines containing `phrase` (any case); a `message repeated N times` line counts N."""
    n = 0
    for line in file_lines(path):
        if phrase.lower() in line.lower():
            m = re.search(r"message repeated (\d+) times", line)
            n += int(m.group(1)) if m else 1
    return n


@pytest.mark.parametrize("name", ["loghub/OpenSSH_2k.log", "secrepo/auth.log"])
@pytest.mark.parametrize("phrase", ["Failed password", "Invalid user"])
def test_search_count_agrees_with_grep(ingested, capsys, name: str, phrase: str) -> None:
    db, files = ingested
    path = next(p for p in files if p.as_posix().endswith(name))
    expected = grep_count(path, phrase)
    code = main(["--db", str(db), "search", f'"{phrase}"', f"source:{os.path.abspath(path)}", "--count"])
    out = capsys.readouterr().out
    assert code == 0
    assert int(out.strip()) == expected, f"{name}: search says {out.strip()}, grep says {expected}"


def test_repeated_messages_are_documented_weight(ingested) -> None:
    db, files = ingested
    rows = stored_events(db, 'raw:"*message repeated*times: [*"')
    assert rows
    for e in rows:
        n = int(re.search(r"message repeated (\d+) times: \[", e["raw"]).group(1))
        assert e["repeat"] == n
        assert "message repeated" not in e["message"]
