"""SUMMARY.txt of compare-weights: the conclusions a person would otherwise draw from the CSVs by hand."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Final

from termmon.tools.weight_divergence import PARTING_THRESHOLD
from termmon.tools.weight_plots import HEATMAP_MAX_LAYERS
from termmon.tools.weight_snapshots import Checkpoint, checkpoint_label

if TYPE_CHECKING:
    import pandas as pd

    from termmon.tools.compare_weights import ComparisonResult

TOP_LAYERS: Final = 10
_MAX_LISTED: Final = 10
#: Cosine similarity below which a layer has turned, not just grown or shrunk.
_TURNED_COSINE: Final = 0.9
#: Ratio of the runs' std above which a layer's scale, not its direction, is what differs.
_STD_RATIO: Final = 1.25


def summary_text(result: ComparisonResult) -> str:
    ranked = result.ranked
    last = checkpoint_label(result.checkpoints[-1])
    lines = [
        "termmon compare-weights",
        "",
        f"Run A: {result.run_a} ({result.snapshots_a} snapshots)",
        f"Run B: {result.run_b} ({result.snapshots_b} snapshots)",
        f"Compared: {len(result.checkpoints)} common checkpoints "
        f"({checkpoint_label(result.checkpoints[0])} to {last}), {len(ranked)} layers, "
        f"{int(ranked['num_params'].sum()):,} parameters",
        "",
        "Ranking: relative L2 = ||A-B|| / mean(||A||, ||B||) at the last checkpoint compared",
        f"  ({last}): 0 = identical, {PARTING_THRESHOLD} = differ by a tenth of the layer's size, about 1.41 for",
        "  two independent random initialisations. Absolute L2 (l2_distance) is in the CSVs; it grows with",
        "  layer size, so it is not used to rank.",
        "",
        f"Most divergent layers at {last}:",
        *_top_layers(ranked.head(TOP_LAYERS)),
        "",
        "When the runs part:",
        *_parting(result),
        *_not_compared(result),
        "",
        "What to look at:",
        *(f"  - {advice}" for advice in _advice(result)),
    ]
    if len(ranked) > HEATMAP_MAX_LAYERS:
        lines += [
            "",
            f"The heatmap shows the top {HEATMAP_MAX_LAYERS} of {len(ranked)} layers; every layer is in the CSVs.",
        ]
    return "\n".join(lines) + "\n"


def _top_layers(top: pd.DataFrame) -> list[str]:
    width = max(len(str(name)) for name in top["layer"])
    return [
        f"  {int(row['rank']):>2}. {row['layer']:<{width}}  rel {row['final_relative_l2']:.4f}  "
        f"L2 {row['final_l2_distance']:.4g}  cos {row['final_cosine_similarity']:.4f}  "
        f"std A {row['final_std_a']:.4g} / B {row['final_std_b']:.4g}"
        for _, row in top.iterrows()
    ]


def _parting(result: ComparisonResult) -> list[str]:
    timeline = result.timeline
    if result.parting is None:
        worst = timeline["model_relative_l2"].max()
        lines = [
            f"  The runs never clearly part: the whole-model relative L2 stays below {PARTING_THRESHOLD} "
            f"(at most {worst:.4f})."
        ]
    else:
        row = timeline[timeline["checkpoint"] == checkpoint_label(result.parting)].iloc[0]
        lines = [
            f"  The runs clearly part at {checkpoint_label(result.parting)}: the whole-model relative L2 "
            f"first reaches {PARTING_THRESHOLD} there ({row['model_relative_l2']:.4f})."
        ]
    if result.first_layer_parting is not None:
        layer, checkpoint = result.first_layer_parting
        lines.append(
            f"  First single layer past {PARTING_THRESHOLD}: {layer} at {checkpoint_label(checkpoint)}."
        )
    return lines


def _not_compared(result: ComparisonResult) -> list[str]:
    layers = result.layers
    sections = [
        (
            "Checkpoints only in run A (not compared)",
            [checkpoint_label(c) for c in result.only_in_a_checkpoints],
        ),
        (
            "Checkpoints only in run B (not compared)",
            [checkpoint_label(c) for c in result.only_in_b_checkpoints],
        ),
        ("Unreadable snapshots (skipped)", list(result.unreadable.values())),
        ("Layers only in run A", list(layers.loc[layers["status"] == "only_in_a", "layer"])),
        ("Layers only in run B", list(layers.loc[layers["status"] == "only_in_b", "layer"])),
        (
            "Layers whose shapes differ (A vs B)",
            [
                f"{r['layer']}: {r['shape']}"
                for _, r in layers[layers["status"] == "shape_mismatch"].iterrows()
            ],
        ),
        ("Integer buffers not compared (counters, not weights)", result.not_floating),
    ]
    lines: list[str] = []
    for title, items in sections:
        if items:
            lines += ["", f"{title}: {len(items)}", *_listed(items)]
    return lines


def _listed(items: Sequence[str]) -> list[str]:
    shown = [f"  {item}" for item in items[:_MAX_LISTED]]
    if len(items) > _MAX_LISTED:
        shown.append(f"  ... and {len(items) - _MAX_LISTED} more")
    return shown


def _advice(result: ComparisonResult) -> list[str]:
    top = result.ranked.iloc[0]
    advice: list[str] = []
    if result.parting == result.checkpoints[0]:
        advice.append(
            "The runs already differ at the first common checkpoint: check that both started from the same "
            "initialisation (seed, pretrained weights, resumed checkpoint)."
        )
    elif result.parting is not None:
        epoch, batch = result.parting
        previous = _before(result.checkpoints, result.parting)
        advice.append(
            f"Look at what the runs did between {checkpoint_label(previous)} and epoch {epoch}, batch {batch}: "
            "data order and labels, learning-rate schedule, a loss spike or NaN in the metrics."
        )
    if top["final_relative_l2"] >= PARTING_THRESHOLD:
        advice.append(
            f"Start with {top['layer']}: it ends {top['final_relative_l2']:.3g} apart in relative L2"
            + (
                f", first past {PARTING_THRESHOLD} at {top['first_parting_checkpoint']}."
                if isinstance(top["first_parting_checkpoint"], str)
                else "."
            )
        )
    turned = result.ranked[result.ranked["final_cosine_similarity"] < _TURNED_COSINE]
    if len(turned):
        advice.append(
            f"{len(turned)} layer(s) point in a different direction (cosine < {_TURNED_COSINE}), e.g. "
            f"{turned.iloc[0]['layer']}: the runs learned different features there, not just different scales."
        )
    scaled = [
        row["layer"]
        for _, row in result.ranked.head(TOP_LAYERS).iterrows()
        if row["final_relative_l2"] >= PARTING_THRESHOLD
        and _ratio(row["final_std_a"], row["final_std_b"]) >= _STD_RATIO
    ]
    if scaled:
        advice.append(
            f"Weight spread differs by {_STD_RATIO}x or more in {', '.join(scaled[:3])}: compare learning rate, "
            "weight decay and gradient clipping for those parameters."
        )
    if result.only_in_a_checkpoints or result.only_in_b_checkpoints:
        advice.append(
            "Snapshot schedules differ between the runs; only the common checkpoints were compared."
        )
    if not advice:
        advice.append(
            "The weights stay close everywhere: look for the difference outside the model "
            "(evaluation data, metrics code, preprocessing)."
        )
    return advice


def _before(checkpoints: list[Checkpoint], checkpoint: Checkpoint) -> Checkpoint:
    index = checkpoints.index(checkpoint)
    return checkpoints[max(0, index - 1)]


def _ratio(a: float, b: float) -> float:
    low, high = sorted((abs(a), abs(b)))
    if math.isnan(low) or high == 0:
        return 1.0
    return math.inf if low == 0 else high / low
