"""The data table every screen uses: Textual's DataTable that keeps its
rendered cells when a screen comes back.

Owns: `SocTable`. Textual refreshes the styles of every widget of a screen
when it is shown again (ScreenResume), and DataTable answers any style update
by throwing away every rendered cell, row and line; drawing them again was
most of what a screen switch cost. SocTable keeps them when nothing that
drawing uses changed: its own style, background, focus, and the styles of
its component classes (cursor, header, stripes, hover), which is where a new
theme or a focus change shows.
Must not: hold data of its own (the screens fill it).
"""

from __future__ import annotations

from typing import Any

from textual.widget import Widget
from textual.widgets import DataTable


class SocTable(DataTable[Any]):
    _look: tuple[Any, ...] | None = None

    def _current_look(self) -> tuple[Any, ...]:
        return (
            self.rich_style,
            self.background_colors,
            self.has_focus,
            tuple(self.get_component_rich_style(name) for name in sorted(self.COMPONENT_CLASSES)),
        )

    def notify_style_update(self) -> None:
        Widget.notify_style_update(self)  # the widget's own style caches: always
        try:
            look: tuple[Any, ...] | None = self._current_look()
        except KeyError:  # component styles not set up yet (before mounting)
            look = None
        if look is None or look != self._look:
            self._look = look
            super().notify_style_update()  # DataTable's: every rendered cell goes
