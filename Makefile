# Two commands set everything up on a fresh machine: `make demo` and `make test`.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: demo test bench screenshots clean

$(BIN)/python:
	$(PY) -m venv $(VENV)

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e .
	touch $@

$(VENV)/.installed-test: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e '.[test]'
	touch $@ $(VENV)/.installed

# The TUI on a terminal; without one (CI, a pipe) the same replay headless.
demo: $(VENV)/.installed
	@if [ -t 0 ] && [ -t 1 ]; then $(BIN)/soc-tui demo; \
	else $(BIN)/soc-tui demo --headless --speed max; fi

test: $(VENV)/.installed-test
	$(BIN)/python -m pytest -q -rs

bench: $(VENV)/.installed
	$(BIN)/python benchmarks/ingest.py
	$(BIN)/python benchmarks/rules.py

screenshots: $(VENV)/.installed-test
	$(BIN)/python screenshots/make_screenshots.py

clean:
	rm -rf $(VENV) build *.egg-info
