"""Line traces to chart cells with numpy: the cells plotext would draw, without its per-pixel Python.

plotext draws a line by mapping each point to a sub-cell grid (2x4 dots a cell for braille, 2x2 for
``hd`` blocks), joining neighbours with its own integer line (:func:`plotext._utility.get_line`),
then grouping the dots by cell. For a noisy trace that is hundreds of dots per chart, each a few
Python calls: most of a chart's build time, live. :func:`trace_cells` does the same arithmetic on
arrays (the same float operations in the same order, so the same dots) and returns one marker per
cell; the chart writes those cells into plotext's built canvas (:mod:`termmon.views.plotext_draw`),
so the picture is the one plotext drew before, dot for dot.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

import numpy as np
import numpy.typing as npt
from plotext import _utility as plotext_utility

#: Dots per cell (columns, rows) of each line marker the panels use.
DOTS = {"braille": (2, 4), "hd": (2, 2)}


@dataclass(frozen=True)
class Cells:
    """One trace's cells on the canvas: column, row (0 at the bottom) and marker character of each."""

    cols: npt.NDArray[np.int64]
    rows: npt.NDArray[np.int64]
    markers: list[str]


def _to_dots(values: npt.NDArray[np.float64], lim: tuple[float, float], bins: int) -> npt.NDArray[np.int64]:
    """plotext's own mapping (``get_matrix_data``): a handful of points a column, so exact Python is cheap."""
    return np.asarray(plotext_utility.get_matrix_data(values.tolist(), list(lim), bins), dtype=np.int64)


def _join(x: npt.NDArray[np.int64], y: npt.NDArray[np.int64]) -> tuple[npt.NDArray[np.int64], ...]:
    """The dots of plotext's ``get_lines``: each segment's ``max(|dx|, |dy|) + 1`` evenly spaced points
    truncated to int, less its last (the next segment's first), then the final point."""
    dx, dy = np.diff(x), np.diff(y)
    count = np.maximum(np.abs(dx), np.abs(dy))  # points kept per segment: its length less the last
    seg = np.repeat(np.arange(len(dx)), count)
    step = np.arange(len(seg)) - np.repeat(np.cumsum(count) - count, count)
    span = np.where(count > 0, count, 1).astype(np.float64)
    xs = np.trunc(x[seg] + step * (dx[seg] / span[seg])).astype(np.int64)
    ys = np.trunc(y[seg] + step * (dy[seg] / span[seg])).astype(np.int64)
    return np.append(xs, x[-1]), np.append(ys, y[-1])


@cache
def _marker_table(cols: int, rows: int) -> list[str]:
    """Marker of each dot mask: bit ``(rows - 1 - dot_row) * cols + dot_col`` set where a dot is drawn,
    the order plotext's ``hd_group`` reads a cell's dots in (top row first)."""
    size = cols * rows
    return [
        plotext_utility.get_hd_marker(tuple((mask >> bit) & 1 for bit in range(size)))
        for mask in range(1 << size)
    ]


def trace_cells(
    x: npt.NDArray[np.float64],
    y: npt.NDArray[np.float64],
    *,
    xlim: tuple[float, float],
    ylim: tuple[float, float],
    canvas: tuple[int, int],
    marker: str,
) -> Cells:
    """The cells a plotext line of ``marker`` ("braille" or "hd") through finite (x, y) covers on a
    canvas of ``canvas`` (columns, rows) cells with these axis limits; cells off the canvas are dropped."""
    width, height = canvas
    dot_cols, dot_rows = DOTS[marker]
    dx, dy = _to_dots(x, xlim, width * dot_cols), _to_dots(y, ylim, height * dot_rows)
    if len(dx) > 1:
        dx, dy = _join(dx, dy)
    col, dot_col = np.divmod(dx, dot_cols)
    row, dot_row = np.divmod(dy, dot_rows)
    inside = (col >= 0) & (col < width) & (row >= 0) & (row < height)
    cell = (row * width + col)[inside]
    bits = np.left_shift(1, (dot_rows - 1 - dot_row[inside]) * dot_cols + dot_col[inside])
    masks = np.zeros(width * height, dtype=np.int64)
    np.bitwise_or.at(masks, cell, bits)
    drawn = np.flatnonzero(masks)
    table = _marker_table(dot_cols, dot_rows)
    return Cells(drawn % width, drawn // width, [table[m] for m in masks[drawn].tolist()])
