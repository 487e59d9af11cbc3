"""The numpy line rasteriser draws the cells plotext draws from the same points, dot for dot.

The oracle is plotext itself: its own line, grouping and clipping functions for one trace, and a
figure drawn with ``plot`` calls for a whole panel (what the charts did before the rasteriser).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from plotext import _utility as ut
from textual_plotext.plot import Plot

from termmon.model.display import DisplaySeries
from termmon.views.colors import NONFINITE_RGB, SEVERITY_RGB
from termmon.views.panels import AlertMark, PanelData, PanelSpec, Trace
from termmon.views.plotext_draw import build_chart, tick_targets
from termmon.views.raster import DOTS, trace_cells

finite = st.floats(-1e6, 1e6, allow_nan=False, allow_infinity=False)


def plotext_cells(
    x: list[float], y: list[float], xlim: list[float], ylim: list[float], canvas: tuple[int, int], marker: str
) -> dict[tuple[int, int], str]:
    """plotext's own steps for one line (``build_plot``: map, join, group, clip)."""
    xf, yf = DOTS[marker]
    px = ut.get_matrix_data(x, xlim, canvas[0] * xf)
    py = ut.get_matrix_data(y, ylim, canvas[1] * yf)
    px, py = ut.get_lines(px, py, [marker] * len(px))[:2] if len(px) > 1 else (px, py)
    gx, gy, codes = ut.hd_group(px, py, [xf] * len(px), [yf] * len(px))
    gx, gy, markers = ut.remove_outsiders(gx, gy, *canvas, [ut.get_hd_marker(c) for c in codes])
    return dict(zip(zip(gx, gy, strict=True), markers, strict=True))


@settings(max_examples=300, deadline=None)
@given(
    points=st.lists(st.tuples(finite, finite), min_size=1, max_size=40),
    margins=st.tuples(st.floats(-0.5, 1), st.floats(-0.5, 1), st.floats(-0.5, 1), st.floats(-0.5, 1)),
    canvas=st.tuples(st.integers(1, 90), st.integers(1, 30)),
    marker=st.sampled_from(sorted(DOTS)),
)
def test_trace_cells_are_plotexts_cells(
    points: list[tuple[float, float]],
    margins: tuple[float, float, float, float],
    canvas: tuple[int, int],
    marker: str,
) -> None:
    """Any line, limits cutting into it or not, any canvas: the same cells and markers."""
    xs, ys = [p[0] for p in points], [p[1] for p in points]
    x_span, y_span = max(xs) - min(xs) or 1.0, max(ys) - min(ys) or 1.0
    xlim = [min(xs) - margins[0] * x_span, max(xs) + margins[1] * x_span + 1e-3]
    ylim = [min(ys) - margins[2] * y_span, max(ys) + margins[3] * y_span + 1e-3]
    if xlim[1] <= xlim[0] or ylim[1] <= ylim[0]:
        return
    cells = trace_cells(
        np.array(xs),
        np.array(ys),
        xlim=(xlim[0], xlim[1]),
        ylim=(ylim[0], ylim[1]),
        canvas=canvas,
        marker=marker,
    )
    got = dict(zip(zip(cells.cols.tolist(), cells.rows.tolist(), strict=True), cells.markers, strict=True))
    assert got == plotext_cells(xs, ys, xlim, ylim, canvas, marker)


def _series(rng: np.random.Generator, n: int, nonfinite: bool) -> DisplaySeries:
    x = np.cumsum(rng.uniform(0.5, 3, n))
    y = np.cumsum(rng.normal(size=n)) * rng.choice([1.0, 1e-3, 1e3])
    marks = x[:: max(1, n // 3)] if nonfinite else np.array([])
    return DisplaySeries(x, y, marks, marks[:1], marks[-1:])


def _panel(seed: int) -> PanelData:
    """A panel with 1-3 traces: raw and smoothed, step and epoch level, NaN marks, alerts, a cursor."""
    rng = np.random.default_rng(seed)
    traces = []
    for i in range(int(rng.integers(1, 4))):
        points = _series(rng, int(rng.integers(2, 150)), bool(rng.integers(2)))
        smoothed = (points.x, points.y * 0.9) if rng.integers(2) else None
        color = (int(rng.integers(256)), 100, 200)
        epoch = bool(rng.integers(2))
        traces.append(Trace(Path(f"r{i}"), f"run{i}", "loss", color, epoch, points, smoothed, 1))
    all_x = np.concatenate([t.points.x for t in traces])
    all_y = np.concatenate([t.points.y for t in traces])
    x_range = (float(all_x.min()), float(all_x.max()) * 0.8) if rng.integers(2) else None
    alerts = [AlertMark(float(rng.choice(all_x)), str(rng.choice(["warning", "critical"])))]
    return PanelData(
        PanelSpec("loss", ("loss",)),
        "step",
        "loss",
        traces,
        alerts=alerts,
        y_range=(float(all_y.min()), float(all_y.max()) + 1.0),
        x_range=x_range,
        cursor_x=float(all_x.mean()) if rng.integers(2) else None,
    )


def plotext_panel(plt: Any, data: PanelData, width: int, height: int, labels: bool) -> None:
    """The panel drawn with plotext's own lines: what the charts drew before the rasteriser."""
    legend = labels and len(data.traces) > 1
    if labels:
        plt.title(f"{data.title}  x = NaN/Inf" if data.nonfinite else data.title)
        plt.xlabel(data.x_label)
    for trace in data.traces:
        marker = "hd" if trace.epoch_level else "braille"
        label = trace.label if legend else None
        if trace.smoothed is not None:
            plt.plot(trace.points.x.tolist(), trace.points.y.tolist(), marker="braille", color="gray")
            plt.plot(
                trace.smoothed[0].tolist(),
                trace.smoothed[1].tolist(),
                marker=marker,
                color=trace.color,
                label=label,
            )
        else:
            plt.plot(
                trace.points.x.tolist(),
                trace.points.y.tolist(),
                marker=marker,
                color=trace.color,
                label=label,
            )
    for mark in data.alerts:
        plt.vline(mark.x, SEVERITY_RGB[mark.severity])
    if data.cursor_x is not None:
        plt.vline(data.cursor_x, "white")
    lo, hi = data.y_range
    for trace in data.traces:
        for xs, y in ((trace.points.nan_x, hi), (trace.points.posinf_x, hi), (trace.points.neginf_x, lo)):
            if len(xs):
                plt.scatter(xs.tolist(), [y] * len(xs), marker="x", color=NONFINITE_RGB)
    x_target, y_target = tick_targets(width, height)
    y_ticks = data.y_ticks(y_target)
    plt.yticks([p for p, _ in y_ticks], [label for _, label in y_ticks])
    x_ticks = data.x_ticks(x_target)
    if x_ticks:
        plt.xticks([p for p, _ in x_ticks], [label.strip() for _, label in x_ticks])
    if data.x_range is not None:
        plt.xlim(*data.x_range)
    plt.ylim(lo, hi)
    plt.plotsize(width, height)
    plt._set_size(width, height)
    plt._set_sizes()
    plt._build_matrix()


def _cells(plt: Any) -> tuple[list[list[str]], list[list[Any]]]:
    matrix = plt.monitor.matrix
    return matrix.marker, matrix.fullground


@settings(max_examples=60, deadline=None)
@given(
    seed=st.integers(0, 10_000), width=st.integers(20, 120), height=st.integers(6, 35), labels=st.booleans()
)
def test_chart_is_plotexts_picture(seed: int, width: int, height: int, labels: bool) -> None:
    """A whole panel, legend and title included, has plotext's markers and colours in every cell."""
    data = _panel(seed)
    ours, theirs = Plot(), Plot()
    build_chart(ours, data, width, height, theme=None, labels=labels)
    plotext_panel(theirs, data, width, height, labels)
    assert _cells(ours) == _cells(theirs)
    drawn = {ch for row in _cells(ours)[0] for ch in row}
    assert any(0x2800 < ord(ch) <= 0x28FF or 0x2580 <= ord(ch) <= 0x259F for ch in drawn)  # lines are there
