"""Draw a :class:`PanelData` on a plotext figure: the TUI's panels and ``termmon --static`` text.

plotext crashes on ``inf`` and misdraws log axes rebuilt on repaint, so only finite values reach it
(``PanelData`` already holds log10 values for log scale) and non-finite points are drawn as red
markers along the top (NaN, +inf) or bottom (-inf) edge of the chart.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from termmon.views.colors import NONFINITE_RGB, SEVERITY_RGB
from termmon.views.panels import PanelData
from termmon.views.text import sanitize


def _y_range(data: PanelData) -> tuple[float, float]:
    lows: list[float] = []
    highs: list[float] = []
    for trace in data.traces:
        for ys in (trace.points.y, trace.smoothed[1] if trace.smoothed else None):
            if ys is not None and len(ys):
                lows.append(float(ys.min()))
                highs.append(float(ys.max()))
    if not lows:
        return 0.0, 1.0
    lo, hi = min(lows), max(highs)
    if hi - lo < 1e-12:
        pad = abs(hi) * 0.05 or 0.5
        return lo - pad, hi + pad
    return lo, hi


def draw_panel(plt: Any, data: PanelData, *, color: bool = True, labels: bool = True) -> None:
    """Clear ``plt`` (a plotext figure) and draw the panel; the caller sets the size and builds.

    ``labels=False`` leaves title and x label to the caller (the TUI puts them on the panel border).
    Titles and legend labels hold run and metric names from disk: they pass through the sanitiser.
    """
    plt.clear_data()
    title = sanitize(data.title)
    if labels:
        plt.title(title)
        plt.xlabel(sanitize(data.x_label))
    lo, hi = _y_range(data)
    nonfinite = 0
    legend = len(data.traces) > 1 or labels
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
                trace.smoothed[0].tolist(),
                trace.smoothed[1].tolist(),
                marker=marker,
                color=rgb,
                label=label,
            )
        elif len(pts.x):
            plt.plot(pts.x.tolist(), pts.y.tolist(), marker=marker, color=rgb, label=label)
        for xs, y in ((pts.nan_x, hi), (pts.posinf_x, hi), (pts.neginf_x, lo)):
            if len(xs):
                plt.scatter(
                    xs.tolist(), [y] * len(xs), marker="x", color=NONFINITE_RGB if color else "default"
                )
        nonfinite += trace.nonfinite
    for mark in data.alerts:
        plt.vline(mark.x, SEVERITY_RGB.get(mark.severity, SEVERITY_RGB["warning"]) if color else "default")
    if nonfinite and labels:
        plt.title(f"{title}  x = NaN/Inf")
    xs_all = [t.points.x for t in data.traces if len(t.points.x)] + [
        a for t in data.traces for a in (t.points.nan_x, t.points.posinf_x, t.points.neginf_x) if len(a)
    ]
    if xs_all:
        x_lo = min(float(np.min(a)) for a in xs_all)
        x_hi = max(float(np.max(a)) for a in xs_all)
        if x_hi > x_lo:
            plt.xlim(x_lo, x_hi)
    plt.ylim(lo, hi)
