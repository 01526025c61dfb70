"""The data table every screen uses: Textual's DataTable, drawn faster.

Owns: `SocTable`, and two things it does that DataTable does not:

- It keeps its rendered cells when a screen comes back. Textual refreshes
  the styles of every widget of a screen when it is shown again
  (ScreenResume), and DataTable answers any style update by throwing away
  every rendered cell, row and line; drawing them again was most of what a
  screen switch cost. SocTable keeps them when nothing that drawing uses
  changed: its own style, background, focus, and the styles of its
  component classes (cursor, header, stripes, hover), which is where a new
  theme or a focus change shows.
- It draws a one-line cell holding plain `Text` (one style, no spans, the
  kind `screens.base.cell` makes) itself: the same segments DataTable would
  make, without going through Rich's Padding, Styled and line rendering,
  which cost ~50 µs a cell. DataTable renders every cell again after any
  change to the table (its cell cache is keyed by an update counter), so a
  queue whose "5s ago" column moved redrew 300 cells. Other cells (header,
  fixed rows, several lines, spans, wide characters) go to DataTable.
Must not: hold data of its own (the screens fill it).
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from rich.segment import Segment
from rich.style import Style
from rich.text import Text
from textual.widget import Widget
from textual.widgets import DataTable

_NULL = Style.null()


@lru_cache(maxsize=1024)
def _style(style: str | Style) -> Style:
    return style if isinstance(style, Style) else Style.parse(style)


def plain_cell_line(cell: Any, width: int, padding: int) -> tuple[str, int, Style] | None:
    """For a one-line cell DataTable would draw as one run of text: the text
    cut to `width` less the padding on each side, the blanks after it, and
    its style; None when the cell is anything else."""
    if cell.__class__ is not Text or cell._spans:
        return None
    plain = cell.plain
    inner = width - 2 * padding
    if inner < 1 or not plain.isascii() or not plain.isprintable():
        return None  # wide or zero-width characters: leave measuring to Rich
    if cell.justify not in (None, "default", "left"):
        return None
    if len(plain) > inner:
        if cell.overflow == "ellipsis":
            plain = plain[:inner - 1] + "…"
        elif cell.overflow == "crop":
            plain = plain[:inner]
        else:
            return None
    return plain, inner - len(plain), _style(cell.style)


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

    def _render_cell(self, row_index: int, column_index: int, base_style: Style, width: int,
                     cursor: bool = False, hover: bool = False) -> list[list[Segment]]:
        if row_index < self.fixed_rows or column_index < self.fixed_columns:  # also header, label
            return super()._render_cell(row_index, column_index, base_style, width, cursor, hover)
        row_key = self._row_locations.get_key(row_index)
        key = (row_key, self._column_locations.get_key(column_index), base_style, cursor, hover,
               self._show_hover_cursor, self._update_count, self._pseudo_class_state)
        cache = self._cell_render_cache
        lines = cache.get(key)
        if lines is not None:
            return lines
        row = self.rows.get(row_key)  # type: ignore[arg-type]
        cells = self._get_row_renderables(row_index).cells
        line = (plain_cell_line(cells[column_index], width, self.cell_padding)
                if row is not None and row.height == 1 and column_index < len(cells) else None)
        if line is None:
            return super()._render_cell(row_index, column_index, base_style, width, cursor, hover)
        component, post = self._get_styles_to_render_cell(
            False, False, False, hover, cursor, self.show_cursor, self._show_hover_cursor,
            self.cursor_foreground_priority == "css", self.cursor_background_priority == "css",
        )
        pre = base_style + Style.from_meta({"row": row_index, "column": column_index}) + component
        # What Rich makes of Styled(Padding(cell)): the padding and the blanks
        # after the text in the table's styles, the text in its own between them.
        text, blanks, style = line
        around = pre + _NULL + post
        pad = [Segment(" " * self.cell_padding, around)] if self.cell_padding else []
        segments = pad + [Segment(text, pre + style + post)]  # even empty, as Rich does
        if blanks:
            segments.append(Segment(" " * blanks, around))
        lines = [segments + pad]
        cache[key] = lines
        return lines
