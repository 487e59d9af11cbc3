"""A chart panel: a plotext plot of one :class:`PanelData`, or the panel's message when it has no data.

Title, x label and legend go on the border, so nothing covers the plot: the title says the scale
("loss (log)") and how many NaN/Inf points are marked, the subtitle names each line in its colour.
"""

from __future__ import annotations

import math
from typing import ClassVar

from rich.segment import Segment
from rich.text import Text
from textual.app import RenderResult
from textual.binding import BindingType
from textual.message import Message
from textual.strip import Strip
from textual_plotext import PlotextPlot

from termmon.views.actions import bindings
from termmon.views.colors import NONFINITE_RGB, hex_color
from termmon.views.panels import PanelData, PanelSpec
from termmon.views.plotext_draw import build_chart, matrix_runs
from termmon.views.scales import ScaleMode, compact
from termmon.views.text import sanitize


def legend(data: PanelData, width: int) -> Text:
    """``step · ━ run_a ━ run_b``: the x axis and each line's name in its colour, cut to ``width``."""
    text = Text(data.x_label, no_wrap=True, overflow="ellipsis")
    if len(data.traces) > 1:
        for trace in data.traces:
            text.append(" ━ ", style=hex_color(trace.color))
            text.append(sanitize(trace.label, 40))
    text.truncate(max(4, width - 4), overflow="ellipsis")
    return text


def readout(data: PanelData, width: int) -> Text:
    """The inspector's line: ``step 1.2k · run_a 0.53 · run_b NaN``, values in their trace's colour."""
    assert data.cursor_x is not None
    x = data.cursor_x
    where = f"{x:.0f}" if x == round(x) else compact(x, 4)
    text = Text(f"{data.x_label} {where}", no_wrap=True, overflow="ellipsis")
    for label, color, value in data.readout:
        text.append(" · ")
        text.append(sanitize(label, 24), style=hex_color(color))
        text.append(f" {compact(value, 4)}", style="bold" if math.isfinite(value) else "bold red")
    text.truncate(max(4, width - 4), overflow="ellipsis")
    return text


#: Presses of ← / → that take the inspector's cursor across the whole x range.
CURSOR_STEPS = 40


class ChartPanel(PlotextPlot):
    """Focusable, so the panel keys (``m``, ``l``, arrows) know which panel to change."""

    can_focus = True
    BINDINGS: ClassVar[list[BindingType]] = list(bindings("panel"))

    class Drawn(Message):
        """A new picture was built and rendered: the frame holding it is on its way to the screen."""

    def __init__(self, spec: PanelSpec, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.spec = spec
        self.data: PanelData | None = None
        self.signature: object = None
        #: ``l`` on this panel: "auto" follows the data, "log"/"linear" are the user's choice.
        self.scale_mode: ScaleMode = "auto"
        self.drawn_at = -1e9  # time.monotonic() of the last draw
        #: Arrows on this panel: each zoom step halves the x range; pan moves it back, in windows.
        self.zoom = 0
        self.pan = 0.0
        #: The inspector's cursor, 0..1 across the x range, or None when off (``i``).
        self.cursor: float | None = None
        self._built: list[Strip] | None = None
        self._built_key: object = None
        #: The content size when the data came, which sets the tick count (None: the size drawn at).
        self._ticks_size: tuple[int, int] | None = None
        self.note: Text | None = None

    @property
    def charted(self) -> bool:
        """Whether the panel shows a chart (not "loading…" or its message)."""
        return self.data is not None and not self.data.message

    def view_key(self) -> object:
        """What, besides the data, decides the picture: scale (``l``), zoom, pan and cursor."""
        return (self.scale_mode, self.zoom, self.pan, self.cursor)

    def toggle_cursor(self) -> None:
        self.cursor = None if self.cursor is not None else 1.0

    def move_cursor(self, delta: int) -> None:
        if self.cursor is not None:
            self.cursor = min(1.0, max(0.0, self.cursor + delta / CURSOR_STEPS))

    def set_spec(self, spec: PanelSpec) -> None:
        """Another metric in this widget: its scale choice starts over."""
        self.spec = spec
        self.signature = None
        self.scale_mode = "auto"
        self.zoom, self.pan, self.cursor = 0, 0.0, None

    def show(self, data: PanelData, signature: object) -> None:
        """Draw ``data``; ``signature`` identifies it so an unchanged panel is not rebuilt."""
        self.data = data
        self.signature = signature
        size = self.content_region.size
        # Not laid out yet (the first frame's data comes before the first layout): the render's size.
        self._ticks_size = (size.width, size.height) if size.area else None
        # Text, not str: Textual parses a str title as markup, and a metric name is data.
        title = Text(sanitize(data.title))
        if data.nonfinite:
            title.append(f" · x = {data.nonfinite} NaN/Inf", style=f"bold {hex_color(NONFINITE_RGB)}")
        self.border_title = title
        self._show_subtitle()
        self.refresh()

    def set_note(self, note: Text | None) -> None:
        """A line the app puts before the legend ("loading history 37%"); None for none."""
        if note != self.note:
            self.note = note
            self._show_subtitle()

    def _show_subtitle(self) -> None:
        data = self.data
        if data is None or data.message:
            subtitle = Text("")
        elif data.cursor_x is not None:
            subtitle = readout(data, self.size.width)
        else:
            subtitle = legend(data, self.size.width)
        if self.note is not None:
            room = max(4, self.size.width - 4)
            if subtitle.plain and self.note.cell_len + 3 + subtitle.cell_len <= room:
                subtitle = Text.assemble(self.note, " · ", subtitle)
            else:  # the note first: the legend comes back when the history is in
                subtitle = self.note.copy()
            subtitle.truncate(room, overflow="ellipsis")
        self.border_subtitle = subtitle

    class Resized(Message):
        """The panel's size changed (also its first layout, after the first frame's data came): the data
        it shows was sampled for another width."""

    def on_resize(self) -> None:
        self._show_subtitle()  # the legend fits the border
        self.post_message(self.Resized())

    def _drawn(self) -> None:
        self.post_message(self.Drawn())

    def render(self) -> RenderResult:
        """ "loading…" or the panel's message; a chart is drawn by :meth:`render_line`."""
        if self.data is None:
            return Text("loading…", style="dim")
        return Text(sanitize(self.data.message), style="italic", no_wrap=True, overflow="ellipsis")

    def render_line(self, y: int) -> Strip:
        """A chart's row, from strips built once per picture: through render() the chart went to Text,
        then to Content and back to strips on every repaint, as costly as drawing it."""
        if not self.charted:
            return super().render_line(y)
        strips = self._chart_strips()
        return strips[y] if y < len(strips) else Strip.blank(self.size.width, self.rich_style)

    def _chart_strips(self) -> list[Strip]:
        """The plot, drawn and built once per picture: a repaint that only moved or re-bordered the panel
        (a layout pass, focus) reuses it."""
        width, height = self.size
        theme = self._get_plotext_theme_name(self.app.theme)
        key = (self.signature, width, height, theme)
        if key != self._built_key or self._built is None:
            assert self.data is not None
            build_chart(
                self.plt, self.data, width, height, theme=theme, labels=False, ticks_size=self._ticks_size
            )
            base = self.rich_style  # under the cells' own colours, as render() gets it
            self._built = [
                Strip([Segment(text, style) for text, style in row])
                .apply_style(base)
                .adjust_cell_length(width, base)
                for row in matrix_runs(self.plt)
            ]
            self._built_key = key
            # Posted from the panel's own turn: a message made while the screen renders names the
            # screen as its sender, and stops bubbling there.
            self.call_next(self._drawn)
        return self._built
