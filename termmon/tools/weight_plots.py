"""The three PNGs of compare-weights.

Figures are built with ``matplotlib.figure.Figure`` on the Agg canvas, never through pyplot: no
display is needed on a headless GPU box, and no global figure state leaks between calls.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Final

from termmon.tools.weight_divergence import PARTING_THRESHOLD

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

#: Rows of the heatmap; with more layers than this the labels would no longer be readable.
HEATMAP_MAX_LAYERS: Final = 40
RANKING_TOP: Final = 20
_MAX_X_LABELS: Final = 24
_MAX_LABEL_CHARS: Final = 48
_RELATIVE_L2: Final = "relative L2  ||A−B|| / mean(||A||, ||B||)"


def plot_heatmap(detailed: pd.DataFrame, ranked: pd.DataFrame, path: Path) -> None:
    """Layer x checkpoint, most divergent layer on top; capped at HEATMAP_MAX_LAYERS rows, as the title says."""
    import matplotlib
    import numpy as np

    layers = list(ranked["layer"].head(HEATMAP_MAX_LAYERS))
    columns = list(detailed["checkpoint"].drop_duplicates())  # detailed is in checkpoint order
    grid = detailed.pivot_table(index="layer", columns="checkpoint", values="relative_l2")
    grid = grid.reindex(index=layers, columns=columns)
    values = np.ma.masked_invalid(grid.to_numpy(dtype=float))

    fig = _figure(width=min(20.0, max(8.0, 5.0 + 0.4 * len(columns))), height=2.0 + 0.3 * len(layers))
    ax = fig.add_subplot()
    cmap = matplotlib.colormaps["magma_r"].with_extremes(bad="#dddddd")  # grey: layer absent there
    image = ax.imshow(values, aspect="auto", interpolation="nearest", cmap=cmap, vmin=0)
    fig.colorbar(image, ax=ax, label=_RELATIVE_L2, fraction=0.04, pad=0.02)
    ax.set_yticks(range(len(layers)), [_short(name) for name in layers], fontsize=8)
    _checkpoint_ticks(ax, columns)
    ax.set_xlabel("checkpoint (epoch/batch)")
    title = "Weight divergence by layer and checkpoint"
    if len(ranked) > len(layers):
        title += f"\n(top {len(layers)} of {len(ranked)} layers by final relative L2; all in the CSVs)"
    ax.set_title(title)
    _save(fig, path)


def plot_timeline(timeline: pd.DataFrame, path: Path) -> None:
    """Whole-model, median and worst layer's divergence per checkpoint over cosine similarity."""
    x = list(range(len(timeline)))
    marker = "o" if len(x) <= 60 else None
    fig = _figure(width=10.0, height=6.5)
    top, bottom = fig.subplots(2, 1, sharex=True, height_ratios=[2, 1])
    top.plot(
        x, timeline["max_relative_l2"], marker=marker, linestyle=":", color="tab:red", label="worst layer"
    )
    top.plot(x, timeline["model_relative_l2"], marker=marker, color="tab:blue", label="whole model")
    top.plot(x, timeline["median_relative_l2"], linestyle="--", color="tab:cyan", label="median over layers")
    top.axhline(
        PARTING_THRESHOLD, color="grey", linewidth=1, label=f"parting threshold ({PARTING_THRESHOLD})"
    )
    parted = [i for i, value in enumerate(timeline["model_relative_l2"]) if value >= PARTING_THRESHOLD]
    if parted:
        top.axvline(parted[0], color="black", linestyle="-.", linewidth=1)
        top.annotate(
            f"runs part at {timeline['checkpoint'].iloc[parted[0]]}",
            (parted[0], PARTING_THRESHOLD),
            xytext=(6, 8),
            textcoords="offset points",
            fontsize=9,
        )
    top.set_ylabel("relative L2")
    top.set_ylim(bottom=0)
    top.set_title("How far the runs' weights are apart over training")
    top.legend(fontsize=8, loc="upper left")
    top.grid(alpha=0.3)
    bottom.plot(x, timeline["model_cosine_similarity"], marker=marker, color="tab:green")
    bottom.set_ylabel("whole-model\ncosine similarity")
    bottom.grid(alpha=0.3)
    _checkpoint_ticks(bottom, list(timeline["checkpoint"]))
    bottom.set_xlabel("checkpoint (epoch/batch)")
    _save(fig, path)


def plot_ranking(ranked: pd.DataFrame, path: Path, *, checkpoint: str) -> None:
    """The RANKING_TOP layers with the largest relative L2 at ``checkpoint`` (the last), most divergent on top."""
    top = ranked.head(RANKING_TOP)
    fig = _figure(width=10.0, height=1.5 + 0.35 * len(top))
    ax = fig.add_subplot()
    rows = list(range(len(top)))[::-1]
    values = list(top["final_relative_l2"])
    colors = ["tab:red" if value >= PARTING_THRESHOLD else "tab:blue" for value in values]
    ax.barh(rows, values, color=colors)
    for row, value in zip(rows, values, strict=True):
        ax.annotate(
            f"{value:.3g}", (value, row), xytext=(3, 0), textcoords="offset points", va="center", fontsize=8
        )
    ax.set_yticks(rows, [_short(name) for name in top["layer"]], fontsize=8)
    ax.axvline(PARTING_THRESHOLD, color="grey", linewidth=1)
    ax.set_xlabel(f"{_RELATIVE_L2} at {checkpoint} (last checkpoint compared)")
    ax.set_title(f"Top {len(top)} most divergent layers (red: past {PARTING_THRESHOLD})")
    ax.margins(x=0.12)
    _save(fig, path)


def _figure(width: float, height: float) -> Figure:
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), dpi=100, layout="constrained")


def _checkpoint_ticks(ax: Axes, labels: list[str]) -> None:
    step = max(1, -(-len(labels) // _MAX_X_LABELS))
    positions = list(range(0, len(labels), step))
    ax.set_xticks(positions, [labels[i] for i in positions], rotation=45, ha="right", fontsize=8)


def _short(name: str) -> str:
    """Keep both ends of a long parameter name: the module path start and the weight/bias suffix."""
    if len(name) <= _MAX_LABEL_CHARS:
        return name
    half = (_MAX_LABEL_CHARS - 1) // 2
    return f"{name[:half]}…{name[-half:]}"


def _save(fig: Figure, path: Path) -> None:
    fig.savefig(path, format="png")
