"""Draw a :class:`PanelData` on a plotext figure: the TUI's panels and ``termmon --static`` text.

plotext crashes on ``inf`` and misdraws log axes rebuilt on repaint, so only finite values reach it
(``PanelData`` holds values already in axis units) and non-finite points are drawn as red markers
along the top (NaN, +inf) or bottom (-inf) edge of the chart. Ticks and their labels come from
:mod:`termmon.views.scales`, so a 1e30 loss is labelled ``1e30``, not thirty digits. plotext builds
the frame (axes, ticks, alert lines); traces, markers and legend are then written into its cells as
plotext would write them, so no point passes through plotext's per-point Python.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
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


#: A cell colour as plotext takes it: a name ("gray", "default") or RGB.
Color = str | tuple[int, int, int]


@dataclass(frozen=True)
class _Line:
    """A line trace, rasterised once the built figure says how many cells its canvas has."""

    x: Any
    y: Any
    marker: str
    color: Color


@dataclass(frozen=True)
class _Markers:
    """Non-finite points: an ``x`` at each of ``xs``, on the top (``top``) or bottom row of the canvas."""

    xs: Any
    top: bool
    color: Color


_Layer = _Line | _Markers


@dataclass(frozen=True)
class _Entry:
    """A legend row: the trace's label, its line's symbol and colour."""

    label: str
    symbol: str
    color: Color


@dataclass(frozen=True)
class _Drawing:
    """What goes on a built canvas: layers in drawing order (later ones cover earlier ones), then the
    legend over them; ``xlim`` the x limits plotext was given."""

    layers: list[_Layer]
    legend: list[_Entry]
    xlim: tuple[float, float]


def draw_panel(
    plt: Any,
    data: PanelData,
    *,
    color: bool = True,
    labels: bool = True,
    size: tuple[int, int] = (60, 16),
) -> _Drawing:
    """Clear ``plt`` (a plotext figure) and set up the panel's frame: limits, ticks, alert and cursor
    lines. Returns what goes on the canvas once it is built; :func:`build_chart` builds and draws it.

    ``labels=False`` leaves title, x label and legend to the caller (the TUI puts them on the panel
    border, where they cover nothing). ``size`` (cells) sets how many ticks fit. Titles and legend
    labels hold run and metric names from disk: they pass through the sanitiser.
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
    layers: list[_Layer] = []
    entries: list[_Entry] = []
    for trace in data.traces:
        pts = trace.points
        rgb = trace.color if color else "default"
        marker = "hd" if trace.epoch_level else "braille"
        if trace.smoothed is not None and len(trace.smoothed[0]):
            if len(pts.x):
                layers.append(_Line(pts.x, pts.y, "braille", "gray" if color else "default"))
            layers.append(_Line(trace.smoothed[0], trace.smoothed[1], marker, rgb))
        elif len(pts.x):
            layers.append(_Line(pts.x, pts.y, marker, rgb))
        else:
            continue
        if legend:
            entries.append(_Entry(sanitize(trace.label), plotext_utility.hd_symbols[marker], rgb))
    # plotext draws ticks only for the axes of some signal: one point beyond the x range, left off.
    plt.scatter([xlim[1] + 2 * (xlim[1] - xlim[0]) + 1], [lo], marker=" ", color="default")
    for mark in data.alerts:
        plt.vline(mark.x, SEVERITY_RGB.get(mark.severity, SEVERITY_RGB["warning"]) if color else "default")
    if data.cursor_x is not None:
        plt.vline(data.cursor_x, "white" if color else "default")
    # Markers last, so no line drawn later can hide them.
    for trace in data.traces:
        pts = trace.points
        for xs, top in ((pts.nan_x, True), (pts.posinf_x, True), (pts.neginf_x, False)):
            if len(xs):
                layers.append(_Markers(xs, top, NONFINITE_RGB if color else "default"))
    x_target, y_target = tick_targets(*size)
    y_ticks = data.y_ticks(y_target)
    if y_ticks:
        plt.yticks([p for p, _ in y_ticks], [label for _, label in y_ticks])
    x_ticks = data.x_ticks(x_target)
    if x_ticks:
        plt.xticks([p for p, _ in x_ticks], [label.strip() for _, label in x_ticks])
    plt.xlim(*xlim)
    plt.ylim(lo, hi)
    return _Drawing(layers, entries, xlim)


def _x_limits(data: PanelData) -> tuple[float, float]:
    """The x range plotext picks when none is set (``get_lim`` over every x it is given: points, alert
    and cursor lines, markers), fixed here because the traces never reach it as points."""
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


def build_chart(
    plt: Any,
    data: PanelData,
    width: int,
    height: int,
    *,
    theme: str | None,
    color: bool = True,
    labels: bool = True,
    ticks_size: tuple[int, int] | None = None,
) -> None:
    """Draw ``data`` on ``plt`` and build its cell matrix at ``width`` x ``height`` (as textual-plotext's
    ``render`` does: the size set twice, textual-plotext issue 5).

    plotext builds the frame (axes, ticks, alert lines, legend); the traces and markers are then
    written into the built canvas's cells, as plotext writes its data, so the picture is plotext's
    own (tests/test_raster.py checks it cell by cell). Handing plotext the traces cost as much again
    as the frame, in per-point Python, and its canvas is only known once it is built.
    """
    drawing = draw_panel(plt, data, color=color, labels=labels, size=ticks_size or (width, height))
    plt.plotsize(width, height)
    plt._set_size(width, height)
    if theme is not None:
        plt.theme(theme)
    plt._set_sizes()
    plt._build_matrix()
    matrix = plt.monitor.matrix
    _paint(matrix, drawing.layers, drawing.xlim, data.y_range)
    _legend(matrix, drawing.legend, plt.monitor.ticks_color, plt.monitor.ticks_style)


def _paint(matrix: Any, layers: list[_Layer], xlim: tuple[float, float], ylim: tuple[float, float]) -> None:
    """Write each layer's cells into the canvas of a built ``matrix``, in order, as plotext writes a
    signal's points (marker and colour; the canvas keeps its background)."""
    cols, rows = matrix.Cols_canvas, matrix.Rows_canvas
    canvas = (len(cols), len(rows))
    if not canvas[0] or not canvas[1]:
        return
    for layer in layers:
        points: Iterable[tuple[int, int, str]]
        if isinstance(layer, _Line):
            cells = trace_cells(layer.x, layer.y, xlim=xlim, ylim=ylim, canvas=canvas, marker=layer.marker)
            points = zip(cells.cols.tolist(), cells.rows.tolist(), cells.markers, strict=True)
        else:
            at = plotext_utility.get_matrix_data(layer.xs.tolist(), list(xlim), canvas[0])
            row = canvas[1] - 1 if layer.top else 0
            points = ((col, row, "x") for col in at if 0 <= col < canvas[0])
        for col, row, marker in points:
            _put(matrix, col + cols.start, row + rows.start, marker, layer.color, plotext_utility.no_color)


def _legend(matrix: Any, entries: list[_Entry], color: Any, style: Any) -> None:
    """plotext's legend (``build_plot``), over the data: from the canvas's top left, a row an entry with
    a blank, two of the line's symbols and the label padded to the longest, where it all fits."""
    if not entries:
        return
    cols, rows = matrix.Cols_canvas, matrix.Rows_canvas
    labels = [f" {entry.label} " for entry in entries]
    wide = max(map(len, labels))
    if len(cols) < 3 + wide or len(rows) < len(entries):
        return
    none = plotext_utility.no_color
    for i, (entry, label) in enumerate(zip(entries, labels, strict=True)):
        row = rows.stop - 1 - i
        cells = [(" ", none, none), (entry.symbol, entry.color, none), (entry.symbol, entry.color, none)]
        cells += [(char, color, style) for char in label.ljust(wide)]
        for offset, (marker, fg, st) in enumerate(cells):
            _put(matrix, cols.start + offset, row, marker, fg, st)


def _put(matrix: Any, col: int, row: int, marker: str, fullground: Any, style: Any) -> None:
    """One cell, as ``matrix.insert_element`` sets it (without its per-call checks)."""
    matrix.marker[row][col] = marker
    matrix.fullground[row][col] = fullground
    matrix.style[row][col] = style


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
