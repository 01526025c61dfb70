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

DEMO := .demo
demo: $(VENV)/.installed
	rm -rf $(DEMO) && mkdir -p $(DEMO)
	$(BIN)/python demo_data/sample.py $(DEMO)/logs
	$(BIN)/soc-tui --db $(DEMO)/soc.db ingest --tz UTC '$(DEMO)/logs/*.log'
	$(BIN)/soc-tui --db $(DEMO)/soc.db search 'src_ip:203.0.113.66'
	$(BIN)/soc-tui --db $(DEMO)/soc.db alerts list
	@if [ -t 0 ] && [ -t 1 ]; then $(BIN)/soc-tui --db $(DEMO)/soc.db --attach; fi

test: $(VENV)/.installed-test
	$(BIN)/python -m pytest -q -rs

bench: $(VENV)/.installed
	$(BIN)/python benchmarks/ingest.py
	$(BIN)/python benchmarks/rules.py

screenshots: $(VENV)/.installed-test
	$(BIN)/python screenshots/make_screenshots.py

clean:
	rm -rf $(VENV) $(DEMO) build *.egg-info
