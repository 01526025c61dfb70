"""The TUI's screens, one module each (see soc_tui.ui.app for how they are switched)."""
