"""soc-tui: a terminal SOC console (collector, rule worker, triage, Textual UI)."""

__version__ = "0.1.0"
