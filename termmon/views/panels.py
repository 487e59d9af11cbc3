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
    GPU_UTIL,
    GRAD_NORM,
    LR,
    TRAIN_LOSS,
)
from termmon.model.display import DisplaySeries, downsample, smooth
from termmon.model.run import Run
from termmon.views.colors import RunColors

DIAGNOSTICS_HINT = (
    "no diagnostics: enable_diagnostics in the logger (Telemetry(..., config={'enable_diagnostics': True}))"
)
LOSS_HINT = "no loss yet: tm.step(loss=...) logs train_loss, tm.epoch(train={'loss': ...}) train/loss"

#: Metrics worth suggesting when a run lacks a panel's metric, most useful first.
SUGGESTED = (LR, GRAD_NORM, GPU_UTIL, TRAIN_LOSS)

#: Colours for the metrics of a single run in one panel (a run's own colour goes to its first metric).
METRIC_COLORS: tuple[tuple[int, int, int], ...] = ((86, 180, 233), (230, 159, 0), (0, 200, 140))


@dataclass(frozen=True)
class PanelSpec:
    """A panel's title, the metrics it overlays, and what to say when a run has none of them."""

    title: str
    metrics: tuple[str, ...]
    hint: str = ""
    loglike: bool = False  # a loss-like panel where `l` (log scale) applies


DEFAULT_PANELS: tuple[PanelSpec, ...] = (
    PanelSpec("silhouette score", (DIAG_SILHOUETTE,), DIAGNOSTICS_HINT),
    PanelSpec("clusters (DBSCAN)", (DIAG_N_CLUSTERS,), DIAGNOSTICS_HINT),
    PanelSpec("weight correlation", (DIAG_WEIGHT_CORRELATION,), DIAGNOSTICS_HINT),
    PanelSpec("loss", (TRAIN_LOSS, EPOCH_TRAIN_LOSS, EPOCH_TEST_LOSS), LOSS_HINT, loglike=True),
)


def metric_panel(name: str) -> PanelSpec:
    """A panel holding one metric the user picked; loss-like names keep the log-scale key."""
    return PanelSpec(name, (name,), loglike="loss" in name.lower())


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

    @property
    def nonfinite(self) -> int:
        p = self.points
        return len(p.nan_x) + len(p.posinf_x) + len(p.neginf_x)


@dataclass(frozen=True)
class AlertMark:
    """Where an alert happened, on the panel's x axis."""

    x: float
    severity: str


@dataclass(frozen=True)
class PanelData:
    """Everything a renderer needs; ``message`` replaces the chart when no run has the metrics."""

    spec: PanelSpec
    x_label: str
    y_label: str
    traces: list[Trace] = field(default_factory=list)
    message: str = ""
    alerts: list[AlertMark] = field(default_factory=list)

    @property
    def title(self) -> str:
        return self.spec.title


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
    names = set().union(*(run.metrics for run in runs)) if runs else set()
    if not names:
        return "no records yet"
    hint = spec.hint or f"no {spec.title} in {'these runs' if len(runs) > 1 else 'this run'}"
    others = [m for m in SUGGESTED if m in names and m not in spec.metrics]
    if others:
        hint += f" — press m for another metric ({', '.join(others[:3])})"
    return hint


def build_panel(
    spec: PanelSpec,
    runs: Sequence[Run],
    *,
    colors: RunColors,
    max_points: int = 400,
    smoothing: float | None = None,
    log_y: bool = False,
    alerts: dict[Path, list[tuple[float | None, float | None, str]]] | None = None,
) -> PanelData:
    """The display data for one panel: ``runs[0]`` is the selected run, the rest are overlays.

    ``alerts`` maps a run to (step, epoch, severity) triples, placed on the panel's x axis.
    Log scale is drawn as log10 values on a linear axis (plotext breaks on log axes rebuilt on
    repaint); values <= 0 become -inf markers rather than vanishing.
    """
    axis = x_axis(runs)
    log_y = log_y and spec.loglike
    overlay = len(runs) > 1
    traces: list[Trace] = []
    for run in runs:
        present = [m for m in spec.metrics if m in run.metrics]
        for i, metric in enumerate(present):
            x, y, epoch_level = _x_values(run, metric, axis)
            if log_y:
                with np.errstate(divide="ignore", invalid="ignore"):
                    y = np.where(y > 0, np.log10(np.where(y > 0, y, 1.0)), np.where(y == 0, -np.inf, y))
            is_epoch = bool(len(epoch_level)) and bool(epoch_level.all())
            color = (
                colors(run.name) if overlay or len(present) == 1 else METRIC_COLORS[i % len(METRIC_COLORS)]
            )
            smoothed = None
            if smoothing is not None and len(y) > 2:
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
                )
            )
    y_label = spec.title if len(spec.metrics) == 1 else "loss"
    if log_y:
        y_label = f"log10 {y_label}"
    marks: list[AlertMark] = []
    for run in runs[:1]:
        for step, epoch, severity in (alerts or {}).get(run.path, []):
            pos = step if axis == "step" else epoch
            if pos is not None and np.isfinite(pos) and severity != "info":
                marks.append(AlertMark(float(pos), severity))
    message = "" if traces else _hint(spec, runs)
    return PanelData(
        spec=spec, x_label=axis, y_label=y_label, traces=traces, message=message, alerts=marks[-20:]
    )
