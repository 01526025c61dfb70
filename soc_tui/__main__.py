"""`python -m soc_tui` runs the same entry point as the `soc-tui` script."""

from soc_tui.cli import main

raise SystemExit(main())
