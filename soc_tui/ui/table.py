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
- It draws a one-line cell holding plain `Text` (one style, no spans, left
  or right justified: the kind `screens.base.cell` makes) itself: the same
  segments DataTable would make, without going through Rich's Padding,
  Styled and line rendering, which cost ~50 µs a cell. DataTable renders
  every cell again after any change to the table (its cell cache is keyed
  by an update counter), so a queue whose "5s ago" column moved redrew
  every visible cell. A row whose cells are all plain is drawn in one pass
  (`_render_line_in_row`), the styles its cells share worked out once and
  each cell's styles kept (`_cell_styles`): 33 rows of the alert queue
  took 15 ms to draw after a change, now 10. Other cells (header, fixed
  rows, several lines, spans, wide characters) go to DataTable.
Must not: hold data of its own (the screens fill it).
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from rich.segment import Segment
from rich.style import Style
from rich.text import Text
from textual.coordinate import Coordinate
from textual.geometry import Region
from textual.strip import Strip
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
    justify = cell.justify
    right = justify == "right"
    if right:
        plain = plain.rstrip()  # as Rich justifies: the blanks go before the text, in its style
    elif justify not in (None, "default", "left"):
        return None
    if len(plain) > inner:
        if cell.overflow == "ellipsis":
            plain = plain[:inner - 1] + "…"
        elif cell.overflow == "crop":
            plain = plain[:inner]
        else:
            return None
    if right:
        return " " * (inner - len(plain)) + plain, 0, _style(cell.style)
    return plain, inner - len(plain), _style(cell.style)


class SocTable(DataTable[Any]):
    _look: tuple[Any, ...] | None = None
    _drawn_count = -1  # DataTable's update counter when the caches were last pruned

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # (row style, row, column, cursor styles, text style) -> the styles of
        # a plain cell's blanks and text: Style additions and from_meta (which
        # pickles) were most of drawing a row.
        self._cell_styles: dict[tuple[Any, ...], tuple[Style, Style]] = {}

    def _current_look(self) -> tuple[Any, ...]:
        return (
            self.rich_style,
            self.background_colors,
            self.has_focus,
            tuple(self.get_component_rich_style(name) for name in sorted(self.COMPONENT_CLASSES)),
        )

    def render_lines(self, crop: Region) -> list[Strip]:
        # DataTable keys its rendered cells, rows, lines and row renderables by
        # its update counter, so after a change nothing drawn before it is ever
        # used again; its LRU caches would keep it (up to 10,000 cells and
        # 1,000 rows and lines: ~100k objects a table) for the garbage
        # collector to walk. Drop it once the counter moved.
        if self._update_count != self._drawn_count:
            self._drawn_count = self._update_count
            for cache in (self._cell_render_cache, self._row_render_cache, self._line_cache,
                          self._row_renderable_cache):
                cache.clear()
        return super().render_lines(crop)

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
        lines = [self._plain_segments(line, base_style, row_index, column_index, component, post,
                                      " " * self.cell_padding)]
        cache[key] = lines
        return lines

    def _plain_segments(self, line: tuple[str, int, Style], row_style: Style, row_index: int,
                        column_index: int, component: Style, post: Style, pad: str) -> list[Segment]:
        """What Rich makes of Styled(Padding(cell)) for a `plain_cell_line`:
        the padding and the blanks after the text in the table's styles, the
        text in its own between them (an empty text too, as Rich does).
        `pad` is the padding's blanks (`cell_padding` of them)."""
        text, blanks, style = line
        key = (row_style, row_index, column_index, component, post, style)
        styles = self._cell_styles.get(key)
        if styles is None:
            if len(self._cell_styles) > 50_000:
                self._cell_styles.clear()
            pre = row_style + Style.from_meta({"row": row_index, "column": column_index}) + component
            styles = self._cell_styles[key] = (pre + _NULL + post, pre + style + post)
        around, styled = styles
        segments = [Segment(pad, around), Segment(text, styled)] if pad else [Segment(text, styled)]
        if blanks:
            segments.append(Segment(" " * blanks, around))
        if pad:
            segments.append(Segment(pad, around))
        return segments

    def _render_line_in_row(self, row_key: Any, line_no: int, base_style: Style,
                            cursor_location: Coordinate, hover_location: Coordinate) -> Any:
        """A data row one line high whose cells are all plain (`plain_cell_line`),
        in a table with a row cursor and no row labels or fixed columns, is
        drawn here in one pass: the segments DataTable's cell by cell path
        makes, without its cell cache and with the styles shared by the row
        worked out once. Anything else goes to DataTable."""
        cursor_type = self.cursor_type
        if (line_no or cursor_type != "row" or self.fixed_columns or self.fixed_rows
                or row_key is self._header_row_key or self._should_render_row_labels):
            return super()._render_line_in_row(row_key, line_no, base_style, cursor_location,
                                               hover_location)
        show_cursor = self.show_cursor
        show_hover = self._show_hover_cursor
        cache_key = (row_key, line_no, base_style, cursor_location, hover_location, cursor_type,
                     show_cursor, show_hover, self._update_count, self._pseudo_class_state)
        cache = self._row_render_cache
        if cache_key in cache:
            return cache[cache_key]
        row = self.rows.get(row_key)
        row_index = self._row_locations.get(row_key)
        columns = self.ordered_columns
        cells = self._get_row_renderables(row_index).cells if row_index is not None else ()
        if row is None or row.height != 1 or len(cells) != len(columns):
            return super()._render_line_in_row(row_key, line_no, base_style, cursor_location,
                                               hover_location)
        padding = self.cell_padding
        widths = [column.get_render_width(self) for column in columns]
        lines = [plain_cell_line(c, w, padding) for c, w in zip(cells, widths)]
        if None in lines:
            return super()._render_line_in_row(row_key, line_no, base_style, cursor_location,
                                               hover_location)
        row_style = self._get_row_style(row_index, base_style)  # type: ignore[arg-type]
        # A row cursor highlights whole rows: every cell of this one alike.
        cursor = cursor_location.row == row_index
        hover = hover_location.row == row_index
        component, post = self._get_styles_to_render_cell(
            False, False, False, hover, cursor, show_cursor, show_hover,
            self.cursor_foreground_priority == "css", self.cursor_background_priority == "css",
        )
        pad = " " * padding
        segments = self._plain_segments
        scrollable = [segments(line, row_style, row_index, i, component, post, pad)  # type: ignore[arg-type]
                      for i, line in enumerate(lines)]
        # The rest of the width, styled as DataTable extends a row.
        remaining = max(0, self.size.width - sum(widths))
        extend, _ = self._get_styles_to_render_cell(
            False, False, False, hover, cursor, show_cursor, show_hover, False, False)
        key = (row_style, row_index, -1, extend, None, None)
        styles = self._cell_styles.get(key)
        if styles is None:
            style = row_style + extend + Style.from_meta(
                {"row": row_index, "column": 0, "out_of_bounds": True})
            styles = self._cell_styles[key] = (style, style)
        scrollable.append([Segment(" " * remaining, styles[0])])
        pair = ([], scrollable)
        cache[cache_key] = pair
        return pair
