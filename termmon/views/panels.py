"""What each chart panel shows for a set of runs, as plain data both renderers draw.

The TUI (plotext inside Textual) and the static export (matplotlib, or plotext text) call
:func:`build_panel` and only differ in how they draw the result, so the two views cannot drift:
the same metrics, the same x axis, the same non-finite markers, the same smoothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from termmon.format import (
    DIAG_N_CLUSTERS,
    DIAG_SILHOUETTE,
    DIAG_WEIGHT_CORRELATION,
    EPOCH_TEST_LOSS,
    EPOCH_TRAIN_LOSS,
    TRAIN_LOSS,
)
from termmon.model.display import DisplaySeries, downsample, smooth
from termmon.model.run import Run
from termmon.roles import Role, first
from termmon.roles import spec as role_spec
from termmon.views.colors import RunColors
from termmon.views.scales import Scale, ScaleMode, axis_range, choose_scale, is_integer_series, ticks

#: What a panel says, in one short line, when none of the runs has its metric.
NO_RECORDS = "no records yet"

#: Colours for the metrics of a single run in one panel (a run's own colour goes to its first metric).
METRIC_COLORS: tuple[tuple[int, int, int], ...] = ((86, 180, 233), (230, 159, 0), (0, 200, 140))


@dataclass(frozen=True)
class PanelSpec:
    """A panel's title, the metrics it overlays, and what to say when a run has none of them."""

    title: str
    metrics: tuple[str, ...]
    hint: str = ""


#: Seed 001's four panels, for runs that log blob diagnostics.
DIAGNOSTICS_PANELS: tuple[PanelSpec, ...] = (
    PanelSpec(
        "silhouette score", (DIAG_SILHOUETTE,), "silhouette: none yet (null while DBSCAN finds one cluster)"
    ),
    PanelSpec("clusters (DBSCAN)", (DIAG_N_CLUSTERS,)),
    PanelSpec("weight correlation", (DIAG_WEIGHT_CORRELATION,)),
    PanelSpec("loss", (TRAIN_LOSS, EPOCH_TRAIN_LOSS, EPOCH_TEST_LOSS), "no loss logged yet"),
)
#: How many panels a run's first page shows.
PANELS_PER_PAGE = 4


def has_blob_diagnostics(run: Run) -> bool:
    return any(spec.metrics[0] in run.metrics for spec in DIAGNOSTICS_PANELS[:3])


def run_panels(run: Run | None, count: int = PANELS_PER_PAGE) -> list[PanelSpec]:
    """The panels that follow ``run``: seed 001's four when it has blob diagnostics, otherwise its
    most useful metrics by role, then its other metrics, so no panel is empty while a metric exists."""
    if run is None or not run.metrics:
        return list(DIAGNOSTICS_PANELS)
    if has_blob_diagnostics(run):
        return list(DIAGNOSTICS_PANELS)
    specs = role_panels(run)
    shown = {m for spec in specs for m in spec.metrics}
    specs += [metric_panel(name) for name in run.metric_names() if name not in shown]
    return specs[:count]


def metric_pages(runs: Sequence[Run], per_page: int) -> list[list[PanelSpec]]:
    """Every metric of the runs, one panel each, in pages of ``per_page`` (like W&B leet's grid)."""
    names = sorted(set().union(*(run.metrics for run in runs))) if runs else []
    specs = [metric_panel(name) for name in names]
    return [specs[i : i + per_page] for i in range(0, len(specs), max(1, per_page))]


def loss_first(specs: list[PanelSpec]) -> list[PanelSpec]:
    """The same panels with any loss panel first (the compact 80x24 layout leads with loss)."""
    return sorted(specs, key=lambda spec: "loss" not in spec.title)


#: The panels an ordinary run gets, by role: loss with eval loss, lr, grad norm, then throughput or GPU.
ROLE_PANELS: tuple[tuple[Role, ...], ...] = (
    (Role.TRAIN_LOSS, Role.EVAL_LOSS),
    (Role.LR,),
    (Role.GRAD_NORM,),
    (Role.THROUGHPUT,),
    (Role.GPU_MEM,),
    (Role.GPU_UTIL,),
)


def role_panels(run: Run) -> list[PanelSpec]:
    """The run's most useful metrics by role (:mod:`termmon.roles`), one panel a role group; a group
    the run does not log is skipped. The loss panel holds the preferred train loss and eval loss."""
    names = run.metric_names()
    specs = []
    for group in ROLE_PANELS:
        metrics = tuple(name for role in group if (name := first(role, names)) is not None)
        if metrics:
            specs.append(PanelSpec(role_spec(group[0]).title, metrics))
    return specs


def metric_panel(name: str) -> PanelSpec:
    """A panel holding one metric the user picked."""
    return PanelSpec(name, (name,))


@dataclass(frozen=True)
class Trace:
    """One line of a panel: a run's metric, downsampled, with its non-finite positions."""

    run_path: Path
    label: str
    metric: str
    color: tuple[int, int, int]
    epoch_level: bool
    points: DisplaySeries
    smoothed: tuple[np.ndarray, np.ndarray] | None = None
    #: How many of the series' values are NaN/Inf (the markers drawn are thinned; this is not).
    nonfinite: int = 0


@dataclass(frozen=True)
class AlertMark:
    """Where an alert happened, on the panel's x axis."""

    x: float
    severity: str


@dataclass(frozen=True)
class PanelData:
    """Everything a renderer needs; ``message`` replaces the chart when no run has the metrics.

    Trace values are already in axis units (``scale.forward``); ``y_range`` and ``x_range`` are the
    limits to draw, the x range reaching the last record of any trace, NaN/Inf tail included.
    """

    spec: PanelSpec
    x_label: str
    y_label: str
    traces: list[Trace] = field(default_factory=list)
    message: str = ""
    alerts: list[AlertMark] = field(default_factory=list)
    scale: Scale = field(default_factory=Scale)
    y_range: tuple[float, float] = (0.0, 1.0)
    x_range: tuple[float, float] | None = None
    integer: bool = False
    #: The inspector: the x under the cursor and each trace's (label, colour, value) nearest to it.
    cursor_x: float | None = None
    readout: list[tuple[str, tuple[int, int, int], float]] = field(default_factory=list)

    @property
    def title(self) -> str:
        """The panel's title, saying so when the axis is not linear ("loss (log)")."""
        return f"{self.spec.title} ({self.scale.label})" if self.scale.label else self.spec.title

    @property
    def nonfinite(self) -> int:
        return sum(trace.nonfinite for trace in self.traces)

    def y_ticks(self, target: int = 5) -> list[tuple[float, str]]:
        """Tick positions (axis units) and labels: the same rules for every renderer."""
        return ticks(*self.y_range, self.scale, integer=self.integer, target=target)

    def x_ticks(self, target: int = 5) -> list[tuple[float, str]]:
        if self.x_range is None:
            return []
        return ticks(*self.x_range, Scale(), integer=True, target=target)


def x_axis(runs: Sequence[Run]) -> str:
    """ "step" when any run has step numbers, else "epoch" (seed 001's results.json has epochs only)."""
    return "step" if any(run.last_step is not None for run in runs) else "epoch"


def _x_values(run: Run, metric: str, axis: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(x, value, epoch_level) for a metric; epoch records without a step sit at the last step before them."""
    series = run.series(metric)
    if series is None:
        empty = np.empty(0)
        return empty, empty, np.empty(0, dtype=bool)
    if axis == "epoch":
        return series.epoch, series.value, series.epoch_level
    x = series.step
    missing = np.isnan(x)
    if missing.any():
        steps = run.step.view
        rows = run.metrics[metric].rows.view
        index = np.where(np.isnan(steps), 0, np.arange(len(steps)))
        np.maximum.accumulate(index, out=index)
        filled = steps[index][rows]
        x = np.where(missing, filled, x)
    return x, series.value, series.epoch_level


def _label(run: Run, metric: str, spec: PanelSpec, overlay: bool, epoch_level: bool) -> str:
    if len(spec.metrics) == 1:
        return run.name if overlay else metric
    name = f"{metric} (epoch)" if epoch_level and metric == EPOCH_TRAIN_LOSS else metric
    return f"{run.name} {name}" if overlay else name


def _hint(spec: PanelSpec, runs: Sequence[Run]) -> str:
    """One short line for a panel with nothing to draw."""
    if not any(run.metrics for run in runs):
        return NO_RECORDS
    return spec.hint or f"no {spec.title} logged{'' if len(runs) == 1 else ' by these runs'}"


def _y_range(traces: list[Trace]) -> tuple[float, float]:
    values = [
        ys for t in traces for ys in (t.points.y, t.smoothed[1] if t.smoothed else None) if ys is not None
    ]
    return axis_range(np.concatenate(values) if values else np.empty(0))


def _x_range(traces: list[Trace]) -> tuple[float, float] | None:
    """Out to the last record of any trace, non-finite ones included (a NaN tail is part of the run)."""
    xs = [
        a
        for t in traces
        for a in (t.points.x, t.points.nan_x, t.points.posinf_x, t.points.neginf_x)
        if len(a)
    ]
    if not xs:
        return None
    lo = min(float(a.min()) for a in xs)
    hi = max(float(a.max()) for a in xs)
    return (lo, hi) if hi > lo else (lo - 0.5, hi + 0.5)


def zoom_view(extent: tuple[float, float] | None, zoom: int, pan: float) -> tuple[float, float] | None:
    """The x range of a panel zoomed ``zoom`` times (each halves it) and panned ``pan`` windows back."""
    if extent is None or zoom <= 0:
        return None
    lo, hi = extent
    width = (hi - lo) / 2**zoom
    right = max(lo + width, hi - pan * width)
    return (right - width, right)


def _nearest(x: np.ndarray, y: np.ndarray, at: float) -> float:
    if not len(x):
        return float("nan")
    return float(y[int(np.argmin(np.abs(x - at)))])


def data_key(spec: PanelSpec, runs: Sequence[Run]) -> tuple[object, ...]:
    """What of ``runs`` the picture of ``spec`` depends on: how many points each of its metrics has (runs
    only grow, and a reset changes ``generation``) and the x axis. A panel whose key did not change is not
    drawn again: in a live run, a panel of an epoch-level metric changes once an epoch, not every step."""
    return tuple(
        (
            run.path,
            run.generation,
            run.last_step is not None,
            tuple(len(c.values) if (c := run.metrics.get(m)) is not None else -1 for m in spec.metrics),
        )
        for run in runs
    )


def build_panel(
    spec: PanelSpec,
    runs: Sequence[Run],
    *,
    colors: RunColors,
    max_points: int = 400,
    smoothing: float | None = None,
    scale: ScaleMode = "auto",
    zoom: int = 0,
    pan: float = 0.0,
    cursor: float | None = None,
    alerts: dict[Path, list[tuple[float | None, float | None, str]]] | None = None,
) -> PanelData:
    """The display data for one panel: ``runs[0]`` is the selected run, the rest are overlays.

    ``alerts`` maps a run to (step, epoch, severity) triples, placed on the panel's x axis.
    ``scale`` "auto" picks log or symlog when the values span more than a few decades
    (:mod:`termmon.views.scales`); values are transformed here so every renderer draws them on a
    linear axis. ``zoom`` halves the x range that many times, ending at the newest record, ``pan``
    moves it back by that many windows (the TUI's arrows); integer series are never smoothed.
    ``cursor`` (0..1 across the x range) is the inspector: the readout holds each trace's value there,
    read from the full series, not the downsampled one.
    """
    axis = x_axis(runs)
    overlay = len(runs) > 1
    raw: list[tuple[Run, str, int, int, np.ndarray, np.ndarray, np.ndarray]] = []
    for run in runs:
        present = [m for m in spec.metrics if m in run.metrics]
        for i, metric in enumerate(present):
            x, y, epoch_level = _x_values(run, metric, axis)
            raw.append((run, metric, i, len(present), x, y, epoch_level))
    finite_x = [x[np.isfinite(x)] for *_, x, _, _ in raw]
    finite_x = [x for x in finite_x if len(x)]
    full = (
        (min(float(x.min()) for x in finite_x), max(float(x.max()) for x in finite_x)) if finite_x else None
    )
    x_view = zoom_view(full, zoom, pan)
    if x_view is not None:
        lo, hi = x_view
        kept = [(x >= lo) & (x <= hi) for *_, x, _, _ in raw]
        raw = [(r, m, i, n, x[k], y[k], e[k]) for (r, m, i, n, x, y, e), k in zip(raw, kept, strict=True)]
    every_y = np.concatenate([item[5] for item in raw]) if raw else np.empty(0)
    chosen = choose_scale(every_y, scale)
    integer = is_integer_series(every_y)
    traces: list[Trace] = []
    for run, metric, i, count, x, y, epoch_level in raw:
        y = chosen.forward(y)
        is_epoch = bool(len(epoch_level)) and bool(epoch_level.all())
        color = colors(run.name) if overlay or count == 1 else METRIC_COLORS[i % len(METRIC_COLORS)]
        smoothed = None
        if smoothing is not None and not integer and len(y) > 2:
            sx, sy = smooth(x, y, smoothing)
            small = downsample(sx, sy, max_points)
            smoothed = (small.x, small.y)
        traces.append(
            Trace(
                run_path=run.path,
                label=_label(run, metric, spec, overlay, is_epoch),
                metric=metric,
                color=color,
                epoch_level=is_epoch,
                points=downsample(x, y, max_points),
                smoothed=smoothed,
                nonfinite=int((~np.isfinite(y[np.isfinite(x)])).sum()),
            )
        )
    y_label = spec.title if len(spec.metrics) == 1 else "loss"
    x_range = x_view if x_view is not None else _x_range(traces)
    marks: list[AlertMark] = []
    for run in runs[:1]:
        for step, epoch, severity in (alerts or {}).get(run.path, []):
            pos = step if axis == "step" else epoch
            if pos is None or not np.isfinite(pos) or severity == "info":
                continue
            if x_range is None or x_range[0] <= pos <= x_range[1]:  # never over the tick labels
                marks.append(AlertMark(float(pos), severity))
    if traces and not any(len(t.points.x) or t.nonfinite for t in traces):
        message = f"no {spec.title} in this x range"
    else:
        message = "" if traces else _hint(spec, runs)
    cursor_x = None
    readout: list[tuple[str, tuple[int, int, int], float]] = []
    if cursor is not None and x_range is not None:
        cursor_x = x_range[0] + cursor * (x_range[1] - x_range[0])
        first_x = raw[0][4][np.isfinite(raw[0][4])] if raw else np.empty(0)
        if len(first_x):  # on a record of the selected run: the readout names a real step
            cursor_x = float(first_x[int(np.argmin(np.abs(first_x - cursor_x)))])
        readout = [
            (t.label, t.color, _nearest(r[4], r[5], cursor_x)) for t, r in zip(traces, raw, strict=True)
        ]
    return PanelData(
        spec=spec,
        x_label=axis,
        y_label=y_label,
        traces=traces,
        message=message,
        alerts=marks[-20:],
        scale=chosen,
        y_range=_y_range(traces),
        x_range=x_range,
        integer=integer,
        cursor_x=cursor_x,
        readout=readout,
    )
