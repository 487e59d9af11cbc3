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
from termmon.views.text import sanitize


def tick_targets(width: int, height: int) -> tuple[int, int]:
    """How many (x, y) ticks fit a chart of this many cells: a y tick every ~3 rows, x every ~9 columns."""
    return max(3, min(8, width // 9)), max(2, min(6, height // 3))


def draw_panel(
    plt: Any, data: PanelData, *, color: bool = True, labels: bool = True, size: tuple[int, int] = (60, 16)
) -> None:
    """Clear ``plt`` (a plotext figure) and draw the panel; the caller sets the size and builds.

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
    legend = labels and len(data.traces) > 1
    for trace in data.traces:
        label = sanitize(trace.label) if legend else None
        pts = trace.points
        rgb = trace.color if color else "default"
        marker = "hd" if trace.epoch_level else "braille"
        if trace.smoothed is not None and len(trace.smoothed[0]):
            if len(pts.x):
                plt.plot(
                    pts.x.tolist(), pts.y.tolist(), marker="braille", color="gray" if color else "default"
                )
            plt.plot(
                trace.smoothed[0].tolist(), trace.smoothed[1].tolist(), marker=marker, color=rgb, label=label
            )
        elif len(pts.x):
            plt.plot(pts.x.tolist(), pts.y.tolist(), marker=marker, color=rgb, label=label)
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
    if data.x_range is not None:
        plt.xlim(*data.x_range)
    plt.ylim(lo, hi)


@cache
def _cell_style(fullground: Any, style: Any, background: Any) -> Style:
    """The style ``Text.from_ansi`` reads from plotext's escape codes for these cell colours (plotext
    resets after every run of equal colours, so each run's style starts from none)."""
    ansi = plotext_utility.colors_to_ansi(fullground, style, background)
    spans = Text.from_ansi(f"{ansi}x{plotext_utility.ansi_end}").spans
    styles = [Style.parse(s.style) if isinstance(s.style, str) else s.style for s in spans]
    return Style.combine(styles) if styles else Style.null()


def matrix_text(matrix: Any) -> Text:
    """A built plotext figure's cells (``plot.monitor.matrix``) as Text, a run of equal colours at a time:
    what ``Text.from_ansi(plot.build())`` gives, without writing the ANSI string and parsing it back
    (a fifth of a chart's drawing time)."""
    lines = []
    for row in matrix.Rows[::-1]:
        markers, fg, st, bg = (
            matrix.marker[row],
            matrix.fullground[row],
            matrix.style[row],
            matrix.background[row],
        )
        line = Text()
        col, cols = 0, len(markers)
        while col < cols:
            key = (fg[col], st[col], bg[col])
            end = col + 1
            while end < cols and fg[end] == key[0] and st[end] == key[1] and bg[end] == key[2]:
                end += 1
            line.append("".join(markers[col:end]), _cell_style(*key))
            col = end
        lines.append(line)
    lines.append(Text())  # the string ends in a newline, which from_ansi keeps as an empty last line
    return Text("\n").join(lines)


def build_text(plot: Any, width: int, height: int, theme: str) -> Text:
    """Build a textual-plotext ``Plot`` at this size and theme, as ``PlotextPlot.render`` does (the size
    set twice: textual-plotext issue 5), and return its cells as Text (:func:`matrix_text`)."""
    plot.plotsize(width, height)
    plot._set_size(width, height)
    plot.theme(theme)
    plot._set_sizes()
    plot._build_matrix()
    return matrix_text(plot.monitor.matrix)
