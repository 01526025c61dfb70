"""Shared test fixtures: the real-log corpus location and throwaway databases."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
CORPUS = Path(os.environ.get("SOC_TUI_CORPUS", ROOT.parent / "shared" / "corpus"))


@pytest.fixture
def corpus() -> Path:
    """The shared corpus of real third-party logs; skips the test when absent."""
    if not CORPUS.is_dir():
        pytest.skip(f"real-log corpus not found at {CORPUS} (set SOC_TUI_CORPUS)")
    return CORPUS


@pytest.fixture(autouse=True)
def chain_key_file(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A per-test hash-chain key (soc_tui.store.chain), so that no test writes
    one into ~/.config; subprocesses inherit it through the environment."""
    path = tmp_path_factory.mktemp("chain-key") / "chain.key"
    monkeypatch.setenv("SOC_TUI_KEY_FILE", str(path))
    return path
