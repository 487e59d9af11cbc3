"""The curves of ``termmon report --output FILE.md``: FILE_loss.png, FILE_grad_norm.png, FILE_lr.png.

Figures are built with ``matplotlib.figure.Figure`` on the Agg canvas (no display on a headless box, no
pyplot global state), and matplotlib is imported only when a report is written to a file. Series are
min/max downsampled so a million-step run draws fast and keeps its spikes; NaN/Inf points are marked
along the top of the chart rather than silently dropped.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Final

import numpy as np

from termmon.analysis.diagnosis import Diagnosis, role_metrics
from termmon.model.display import downsample, smooth
from termmon.model.run import Run, Series
from termmon.roles import Role

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

MAX_POINTS: Final = 4000


def write_plots(run: Run, diagnosis: Diagnosis, base: Path) -> dict[str, Path]:
    """The PNGs that have data, as ``{"loss": BASE_loss.png, ...}``; charts without data are not written."""
    written: dict[str, Path] = {}
    losses = role_metrics(run, Role.TRAIN_LOSS)
    loss = _first(run, losses, epoch_level=False) or _first(run, losses, epoch_level=True)
    if loss is not None:
        accuracies = role_metrics(run, Role.TRAIN_ACCURACY)
        accuracy = _first(run, accuracies, epoch_level=False) or _first(run, accuracies, epoch_level=True)
        written["loss"] = _plot_loss(run, loss, accuracy, base.with_name(f"{base.name}_loss.png"))
    grad = next(
        (s for name in role_metrics(run, Role.GRAD_NORM) if (s := run.series(name)) is not None and len(s)),
        None,
    )
    if grad is not None and diagnosis.gradients is not None:
        path = base.with_name(f"{base.name}_grad_norm.png")
        written["grad_norm"] = _plot_grad_norm(grad, diagnosis, path)
    lr = next(
        (s for name in role_metrics(run, Role.LR) if (s := run.series(name)) is not None and len(s)), None
    )
    if lr is not None:
        written["lr"] = _plot_lr(lr, base.with_name(f"{base.name}_lr.png"))
    return written


def _first(run: Run, names: list[str], *, epoch_level: bool) -> Series | None:
    for name in names:
        series = run.series(name)
        if series is None:
            continue
        keep = series.epoch_level if epoch_level else ~series.epoch_level
        if keep.any():
            return Series(
                name,
                series.step[keep],
                series.epoch[keep],
                series.time[keep],
                series.value[keep],
                series.epoch_level[keep],
            )
    return None


def _x(series: Series) -> tuple[np.ndarray, str]:
    """Steps where every point has one, else epochs, else the point index."""
    for values, label in ((series.step, "step"), (series.epoch, "epoch")):
        if len(values) and np.isfinite(values).all():
            return values, label
    return np.arange(len(series), dtype=np.float64), "logged point"


def _draw(ax: Axes, series: Series, *, label: str, color: str, smoothed: bool) -> str:
    x, xlabel = _x(series)
    shown = downsample(x, series.value, MAX_POINTS)
    marker = "o" if len(shown.x) <= 60 else None
    if smoothed and len(shown.x) > 20:
        ax.plot(shown.x, shown.y, color=color, alpha=0.3, linewidth=0.8, label=f"{label} (raw)")
        sx, sy = smooth(x, series.value)
        ax.plot(sx, sy, color=color, linewidth=1.5, label=f"{label} (smoothed)")
    else:
        ax.plot(shown.x, shown.y, color=color, marker=marker, markersize=3, linewidth=1.2, label=label)
    if shown.has_nonfinite:
        bad = np.concatenate([shown.nan_x, shown.posinf_x, shown.neginf_x])
        ax.plot(
            bad, np.ones_like(bad), "x", color="tab:red", transform=ax.get_xaxis_transform(), label="NaN/Inf"
        )
    return xlabel


def _plot_loss(run: Run, loss: Series, accuracy: Series | None, path: Path) -> Path:
    fig = _figure(height=7.0 if accuracy is not None else 4.5)
    axes = fig.subplots(2, 1, sharex=True) if accuracy is not None else [fig.add_subplot()]
    xlabel = _draw(axes[0], loss, label=loss.name, color="tab:blue", smoothed=True)
    evals = role_metrics(run, Role.EVAL_LOSS)
    test = _first(run, evals, epoch_level=True) or _first(run, evals, epoch_level=False)
    if test is not None and _x(test)[1] == xlabel:  # epoch records carry steps when the trainer had them
        _draw(axes[0], test, label=test.name, color="tab:orange", smoothed=False)
    axes[0].set_ylabel("loss")
    axes[0].set_title(f"Loss: {run.name}")
    if accuracy is not None:
        _draw(axes[1], accuracy, label=accuracy.name, color="tab:green", smoothed=True)
        axes[1].set_ylabel("accuracy")
    for ax in axes:
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8, loc="best")
    axes[-1].set_xlabel(xlabel)
    return _save(fig, path)


def _plot_grad_norm(grad: Series, diagnosis: Diagnosis, path: Path) -> Path:
    assert diagnosis.gradients is not None
    found = diagnosis.gradients
    fig = _figure(height=4.5)
    ax = fig.add_subplot()
    xlabel = _draw(ax, grad, label=grad.name, color="tab:purple", smoothed=False)
    # symlog: zero norms (the failure this chart exists to show) stay visible, as a log axis would not.
    ax.set_yscale("symlog", linthresh=found.near_zero_threshold / 10)
    ax.axhline(found.near_zero_threshold, color="tab:gray", linestyle="--", linewidth=1, label="near zero")
    ax.axhline(found.exploding_threshold, color="tab:red", linestyle="--", linewidth=1, label="exploding")
    ax.set_ylabel("gradient norm (symlog)")
    ax.set_xlabel(xlabel)
    ax.set_title(f"Gradient norm: {diagnosis.run_name}")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="best")
    return _save(fig, path)


def _plot_lr(lr: Series, path: Path) -> Path:
    fig = _figure(height=3.5)
    ax = fig.add_subplot()
    xlabel = _draw(ax, lr, label=lr.name, color="tab:brown", smoothed=False)
    ax.ticklabel_format(axis="y", style="sci", scilimits=(-3, 3))
    ax.set_ylabel("learning rate")
    ax.set_xlabel(xlabel)
    ax.set_title("Learning rate")
    ax.grid(alpha=0.3)
    return _save(fig, path)


def _figure(height: float) -> Figure:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(10.0, height), dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _save(fig: Figure, path: Path) -> Path:
    fig.savefig(path, format="png")
    return path
