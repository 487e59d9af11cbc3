"""Draw a :class:`PanelData` on a plotext figure: the TUI's panels and ``termmon --static`` text.

plotext crashes on ``inf`` and misdraws log axes rebuilt on repaint, so only finite values reach it
(``PanelData`` holds values already in axis units) and non-finite points are drawn as red markers
along the top (NaN, +inf) or bottom (-inf) edge of the chart. Ticks and their labels come from
:mod:`termmon.views.scales`, so a 1e30 loss is labelled ``1e30``, not thirty digits.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from plotext import _utility as plotext_utility
from rich.style import Style
from rich.text import Text

from termmon.views.colors import NONFINITE_RGB, SEVERITY_RGB
from termmon.views.panels import PanelData
from termmon.views.raster import trace_cells
from termmon.views.text import sanitize


def tick_targets(width: int, height: int) -> tuple[int, int]:
    """How many (x, y) ticks fit a chart of this many cells: a y tick every ~3 rows, x every ~9 columns."""
    return max(3, min(8, width // 9)), max(2, min(6, height // 3))


def draw_panel(
    plt: Any,
    data: PanelData,
    *,
    canvas: tuple[int, int],
    color: bool = True,
    labels: bool = True,
    size: tuple[int, int] = (60, 16),
) -> None:
    """Clear ``plt`` (a plotext figure) and draw the panel for a plot area of ``canvas`` cells; the caller
    sets the size and builds (:func:`build_chart` does both, and finds ``canvas``).

    ``labels=False`` leaves title, x label and legend to the caller (the TUI puts them on the panel
    border, where they cover nothing). ``size`` (cells) sets how many ticks fit. Titles and legend
    labels hold run and metric names from disk: they pass through the sanitiser. Line traces reach
    plotext as the cells :func:`termmon.views.raster.trace_cells` found, in the order plotext drew
    them, so later traces, alert lines and markers cover earlier ones as before.
    """
    plt.clear_data()
    nonfinite = data.nonfinite
    if labels:
        title = sanitize(data.title)
        plt.title(f"{title}  x = NaN/Inf" if nonfinite else title)
        plt.xlabel(sanitize(data.x_label))
    lo, hi = data.y_range
    xlim = data.x_range if data.x_range is not None else _x_limits(data)
    legend = labels and len(data.traces) > 1
    lines = _LineDrawer(plt, xlim, (lo, hi), canvas)
    for trace in data.traces:
        label = sanitize(trace.label) if legend else None
        pts = trace.points
        rgb = trace.color if color else "default"
        marker = "hd" if trace.epoch_level else "braille"
        if trace.smoothed is not None and len(trace.smoothed[0]):
            if len(pts.x):
                lines.draw(pts.x, pts.y, "braille", "gray" if color else "default", None)
            lines.draw(trace.smoothed[0], trace.smoothed[1], marker, rgb, label)
        elif len(pts.x):
            lines.draw(pts.x, pts.y, marker, rgb, label)
    for mark in data.alerts:
        plt.vline(mark.x, SEVERITY_RGB.get(mark.severity, SEVERITY_RGB["warning"]) if color else "default")
    if data.cursor_x is not None:
        plt.vline(data.cursor_x, "white" if color else "default")
    # Markers last, so no line or alert drawn later can hide them.
    for trace in data.traces:
        pts = trace.points
        for xs, y in ((pts.nan_x, hi), (pts.posinf_x, hi), (pts.neginf_x, lo)):
            if len(xs):
                plt.scatter(
                    xs.tolist(), [y] * len(xs), marker="x", color=NONFINITE_RGB if color else "default"
                )
    x_target, y_target = tick_targets(*size)
    y_ticks = data.y_ticks(y_target)
    if y_ticks:
        plt.yticks([p for p, _ in y_ticks], [label for _, label in y_ticks])
    x_ticks = data.x_ticks(x_target)
    if x_ticks:
        plt.xticks([p for p, _ in x_ticks], [label.strip() for _, label in x_ticks])
    plt.xlim(*xlim)
    plt.ylim(lo, hi)


def _x_limits(data: PanelData) -> tuple[float, float]:
    """The x range plotext picks when none is set (``get_lim`` over every x it is given: points, alert
    and cursor lines, markers), fixed here because the traces reach it as cells, not points."""
    xs: list[float] = [mark.x for mark in data.alerts]
    if data.cursor_x is not None:
        xs.append(data.cursor_x)
    for trace in data.traces:
        pts = trace.points
        parts = [pts.x, pts.nan_x, pts.posinf_x, pts.neginf_x]
        if trace.smoothed is not None:
            parts.append(trace.smoothed[0])
        for part in parts:
            xs.extend(part.tolist())
    lo, hi = plotext_utility.get_lim(xs)
    return float(lo), float(hi)


class _LineDrawer:
    """Hands plotext each line as a scatter of the cells it covers, one ready marker a cell: at the
    centre of cell ``c`` an x that plotext maps back to exactly ``c`` on a canvas of this width."""

    def __init__(
        self, plt: Any, xlim: tuple[float, float], ylim: tuple[float, float], canvas: tuple[int, int]
    ):
        self.plt, self.xlim, self.ylim, self.canvas = plt, xlim, ylim, canvas

    def draw(self, x: Any, y: Any, marker: str, color: str | tuple[int, int, int], label: str | None) -> None:
        cells = trace_cells(x, y, xlim=self.xlim, ylim=self.ylim, canvas=self.canvas, marker=marker)
        xs, ys, markers = self._centre(cells.cols, 0), self._centre(cells.rows, 1), cells.markers
        if label is not None:
            # The legend shows a signal's first three markers: three of the line's own symbol, placed
            # beyond the x range so that plotext leaves them off the canvas.
            far = self.xlim[1] + 2 * (self.xlim[1] - self.xlim[0]) + 1
            xs, ys = [far] * 3 + xs, [self.ylim[0]] * 3 + ys
            markers = [plotext_utility.hd_symbols[marker]] * 3 + markers
        if xs:
            self.plt.scatter(xs, ys, marker=markers, color=color, label=label)

    def _centre(self, cells: Any, axis: int) -> list[float]:
        lo, hi = (self.xlim, self.ylim)[axis]
        bins = self.canvas[axis]
        return [lo + c * (hi - lo) / (bins - 1) if bins > 1 else lo for c in cells.tolist()]


def build_chart(
    plt: Any,
    data: PanelData,
    width: int,
    height: int,
    *,
    theme: str | None,
    canvas: tuple[int, int] | None = None,
    color: bool = True,
    labels: bool = True,
    ticks_size: tuple[int, int] | None = None,
) -> tuple[int, int]:
    """Draw ``data`` on ``plt`` and build its cell matrix at ``width`` x ``height`` (as textual-plotext's
    ``render`` does: the size set twice, textual-plotext issue 5); return the plot area's size.

    The traces are rasterised for a plot area of ``canvas`` cells (the last build's, when the caller
    keeps it), which plotext only settles while building (tick label widths, title): where the guess
    was wrong the panel is drawn again for the real one, so the picture never depends on the guess.
    """
    guess = canvas or (max(1, width - 8), max(1, height - 2))
    for _ in range(2):
        draw_panel(plt, data, canvas=guess, color=color, labels=labels, size=ticks_size or (width, height))
        plt.plotsize(width, height)
        plt._set_size(width, height)
        if theme is not None:
            plt.theme(theme)
        plt._set_sizes()
        plt._build_matrix()
        matrix = plt.monitor.matrix
        actual = (len(matrix.Cols_canvas), len(matrix.Rows_canvas))
        if actual == guess:
            break
        guess = actual
    return actual


@cache
def _cell_style(fullground: Any, style: Any, background: Any) -> Style:
    """The style ``Text.from_ansi`` reads from plotext's escape codes for these cell colours (plotext
    resets after every run of equal colours, so each run's style starts from none)."""
    ansi = plotext_utility.colors_to_ansi(fullground, style, background)
    spans = Text.from_ansi(f"{ansi}x{plotext_utility.ansi_end}").spans
    styles = [Style.parse(s.style) if isinstance(s.style, str) else s.style for s in spans]
    return Style.combine(styles) if styles else Style.null()


def matrix_runs(plot: Any) -> list[list[tuple[str, Style]]]:
    """A built plotext figure's cells (``plot.monitor.matrix``, after :func:`build_chart`), top row
    first, each row as runs of equal colours with the style ``Text.from_ansi(plot.build())`` gives
    them, without writing the ANSI string and parsing it back (a fifth of a chart's drawing time)."""
    matrix = plot.monitor.matrix
    rows = []
    for row in matrix.Rows[::-1]:
        markers, fg, st, bg = (
            matrix.marker[row],
            matrix.fullground[row],
            matrix.style[row],
            matrix.background[row],
        )
        runs = []
        col, cols = 0, len(markers)
        while col < cols:
            key = (fg[col], st[col], bg[col])
            end = col + 1
            while end < cols and fg[end] == key[0] and st[end] == key[1] and bg[end] == key[2]:
                end += 1
            runs.append(("".join(markers[col:end]), _cell_style(*key)))
            col = end
        rows.append(runs)
    return rows


def matrix_ansi(plot: Any) -> str:
    """A built figure's cells as plotext writes them (``plot.build()``'s string), for text output."""
    plot.monitor.matrix.set_canvas()
    return str(plot.monitor.matrix.get_canvas())
