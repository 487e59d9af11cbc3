"""The curves of ``termmon report --output FILE.md``: FILE_loss.png, FILE_grad_norm.png, FILE_lr.png.

Figures are built with ``matplotlib.figure.Figure`` on the Agg canvas (no display on a headless box, no
pyplot global state), and matplotlib is imported only when a report is written to a file. Series are
min/max downsampled so a million-step run draws fast and keeps its spikes; NaN/Inf points are marked
along the top of the chart rather than silently dropped, and the x axis runs to the last record. Axes
follow the rules of every termmon chart (:mod:`termmon.views.scales`): log or symlog past ~3 decades,
round ticks with compact labels, the scale named in the title.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Final

import numpy as np

from termmon.analysis.diagnosis import Diagnosis, role_metrics
from termmon.model.display import downsample, smooth
from termmon.model.run import Run, Series
from termmon.roles import Role
from termmon.views.scales import Scale, axis_range, choose_scale, labels_for, linear_ticks, set_y_axis

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

MAX_POINTS: Final = 4000
#: Top of the box the legend may sit in (axes fraction): the NaN/Inf marks take the band above it.
LEGEND_TOP: Final = 0.92


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


def _scale(*series: Series | None) -> Scale:
    """One axis for these series, by the rules every termmon chart follows (log past ~3 decades)."""
    present = [s.value for s in series if s is not None]
    return choose_scale(np.concatenate(present) if present else np.empty(0))


def _draw(ax: Axes, series: Series, *, label: str, color: str, smoothed: bool, scale: Scale) -> str:
    """Plot ``series`` in ``scale``'s axis units (:func:`_finish` then sets limits and ticks)."""
    x, xlabel = _x(series)
    values = scale.forward(series.value)
    shown = downsample(x, values, MAX_POINTS)
    marker = "o" if len(shown.x) <= 60 else None
    if smoothed and len(shown.x) > 20:
        ax.plot(shown.x, shown.y, color=color, alpha=0.3, linewidth=0.8, label=f"{label} (raw)")
        sx, sy = smooth(x, values)
        ax.plot(sx, sy, color=color, linewidth=1.5, label=f"{label} (smoothed)")
    else:
        ax.plot(shown.x, shown.y, color=color, marker=marker, markersize=3, linewidth=1.2, label=label)
    if shown.has_nonfinite:
        bad = np.concatenate([shown.nan_x, shown.posinf_x, shown.neginf_x])
        ax.plot(
            bad, np.ones_like(bad), "x", color="tab:red", transform=ax.get_xaxis_transform(), label="NaN/Inf"
        )
    return xlabel


def _finish(ax: Axes, scale: Scale, *series: Series) -> None:
    """y limits and ticks from :mod:`termmon.views.scales`; x out to the last record of any series,
    a NaN tail included (the NaN marks use an axes transform, which autoscaling ignores)."""
    set_y_axis(ax, scale, *axis_range(np.concatenate([scale.forward(s.value) for s in series])))
    xs = np.concatenate([_x(s)[0] for s in series])
    xs = xs[np.isfinite(xs)]
    if len(xs) and float(xs.max()) > float(xs.min()):
        lo, hi = float(xs.min()), float(xs.max())
        ax.set_xlim(lo, hi)
        # The terminal's x ticks (200k, 1M), not matplotlib's offset notation (0.2 ... x 1e6).
        placed = [x for x in linear_ticks(lo, hi, target=7) if lo <= x <= hi]
        ax.set_xticks(placed, [label.strip() for label in labels_for(placed)])


def _legend(ax: Axes) -> None:
    """Where it hides the least, but below the row of NaN/Inf marks along the top edge: a diverging
    run's marks fill the top right, just where the legend would otherwise go."""
    ax.legend(fontsize=8, loc="best", bbox_to_anchor=(0.0, 0.0, 1.0, LEGEND_TOP))


def _titled(title: str, scale: Scale) -> str:
    return f"{title} ({scale.label})" if scale.label else title


def _plot_loss(run: Run, loss: Series, accuracy: Series | None, path: Path) -> Path:
    fig = _figure(height=7.0 if accuracy is not None else 4.5)
    axes = fig.subplots(2, 1, sharex=True) if accuracy is not None else [fig.add_subplot()]
    xlabel = _x(loss)[1]
    evals = role_metrics(run, Role.EVAL_LOSS)
    test = _first(run, evals, epoch_level=True) or _first(run, evals, epoch_level=False)
    if test is not None and _x(test)[1] != xlabel:  # epoch records carry steps when the trainer had them
        test = None
    scale = _scale(loss, test)
    _draw(axes[0], loss, label=loss.name, color="tab:blue", smoothed=True, scale=scale)
    if test is not None:
        _draw(axes[0], test, label=test.name, color="tab:orange", smoothed=False, scale=scale)
    _finish(axes[0], scale, *(s for s in (loss, test) if s is not None))
    axes[0].set_ylabel("loss")
    axes[0].set_title(_titled(f"Loss: {run.name}", scale))
    if accuracy is not None:
        acc_scale = _scale(accuracy)
        _draw(axes[1], accuracy, label=accuracy.name, color="tab:green", smoothed=True, scale=acc_scale)
        _finish(axes[1], acc_scale, accuracy)
        axes[1].set_ylabel("accuracy")
    for ax in axes:
        ax.grid(alpha=0.3)
        _legend(ax)
    axes[-1].set_xlabel(xlabel)
    return _save(fig, path)


def _plot_grad_norm(grad: Series, diagnosis: Diagnosis, path: Path) -> Path:
    assert diagnosis.gradients is not None
    found = diagnosis.gradients
    fig = _figure(height=4.5)
    ax = fig.add_subplot()
    scale = _scale(grad)  # norms spanning decades go log; with zeros symlog, so zeros stay visible
    xlabel = _draw(ax, grad, label=grad.name, color="tab:purple", smoothed=False, scale=scale)
    _finish(ax, scale, grad)
    lo, hi = ax.get_ylim()
    for value, color, label in (
        (found.near_zero_threshold, "tab:gray", "near zero"),
        (found.exploding_threshold, "tab:red", "exploding"),
    ):
        y = float(scale.forward(np.array([value]))[0])
        if lo <= y <= hi:  # a threshold far outside the data would squash the curve
            ax.axhline(y, color=color, linestyle="--", linewidth=1, label=label)
    ax.set_ylabel("gradient norm")
    ax.set_xlabel(xlabel)
    ax.set_title(_titled(f"Gradient norm: {diagnosis.run_name}", scale))
    ax.grid(alpha=0.3)
    _legend(ax)
    return _save(fig, path)


def _plot_lr(lr: Series, path: Path) -> Path:
    fig = _figure(height=3.5)
    ax = fig.add_subplot()
    scale = _scale(lr)
    xlabel = _draw(ax, lr, label=lr.name, color="tab:brown", smoothed=False, scale=scale)
    _finish(ax, scale, lr)
    ax.set_ylabel("learning rate")
    ax.set_xlabel(xlabel)
    ax.set_title(_titled("Learning rate", scale))
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
