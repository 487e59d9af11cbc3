"""``termmon compare-weights RUN_A RUN_B --output DIR``: seed 000's layer-by-layer weight comparison.

Checkpoints are aligned on the (epoch, batch) in the snapshot file names; only the ones both runs hold
are compared, one pair in memory at a time. Layers are ranked by relative L2 at the last checkpoint
compared (see ``weight_divergence``), so a large layer does not outrank a small one just by its size.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from termmon.errors import TermmonError
from termmon.paths import require_dir, require_output_dir
from termmon.sanitize import terminal_text
from termmon.tools.progress import stderr_progress
from termmon.tools.weight_divergence import PARTING_THRESHOLD, PairDivergence, compare_state_dicts
from termmon.tools.weight_snapshots import (
    Checkpoint,
    SnapshotError,
    checkpoint_label,
    find_snapshots,
    load_state_dict,
)

if TYPE_CHECKING:
    import pandas as pd

DETAILED_CSV: Final = "layer_divergence_detailed.csv"
SUMMARY_CSV: Final = "summary_stats.csv"
TIMELINE_CSV: Final = "divergence_timeline.csv"
HEATMAP_PNG: Final = "divergence_heatmap.png"
TIMELINE_PNG: Final = "divergence_timeline.png"
RANKING_PNG: Final = "layer_ranking.png"
SUMMARY_TXT: Final = "SUMMARY.txt"
PROG: Final = "termmon compare-weights"


@dataclass
class ComparisonResult:
    """What compare-weights found; ``layers`` is summary_stats.csv, compared layers ranked first."""

    run_a: Path
    run_b: Path
    output_dir: Path
    snapshots_a: int
    snapshots_b: int
    checkpoints: list[Checkpoint]
    only_in_a_checkpoints: list[Checkpoint]
    only_in_b_checkpoints: list[Checkpoint]
    unreadable: dict[Checkpoint, str]
    detailed: pd.DataFrame
    layers: pd.DataFrame
    timeline: pd.DataFrame
    not_floating: list[str]
    parting: Checkpoint | None
    first_layer_parting: tuple[str, Checkpoint] | None
    files: list[Path]

    @property
    def ranked(self) -> pd.DataFrame:
        return self.layers[self.layers["status"] == "compared"]


def run_compare_weights(run_a: Path, run_b: Path, output: Path) -> int:
    """The CLI entry: compare, write DIR, print where things went and the top layer."""
    for run in (run_a, run_b):
        require_dir(run, PROG, "run")
    require_output_dir(output, PROG)
    result = compare_weights(run_a, run_b, output)
    top = result.ranked.iloc[0]
    print(
        f"Compared {len(result.checkpoints)} checkpoints, {len(result.ranked)} layers; "
        f"most divergent: {terminal_text(top['layer'])} (relative L2 {top['final_relative_l2']:.3g})"
    )
    if result.only_in_a_checkpoints or result.only_in_b_checkpoints or result.unreadable:
        print("Some checkpoints were not compared; see SUMMARY.txt.")
    print(f"Wrote {len(result.files)} files to {output}")
    return 0


def compare_weights(run_a: Path, run_b: Path, output_dir: Path) -> ComparisonResult:
    """Compare the runs' common checkpoints and write every output file into ``output_dir``."""
    import pandas as pd

    snaps_a, snaps_b = find_snapshots(run_a), find_snapshots(run_b)
    common = sorted(set(snaps_a.files) & set(snaps_b.files))
    if not common:
        raise TermmonError(
            "termmon compare-weights: the runs have no checkpoint in common "
            f"(A: {_span(snaps_a.files)}; B: {_span(snaps_b.files)})"
        )
    rows: list[dict[str, Any]] = []
    compared: list[Checkpoint] = []
    unreadable: dict[Checkpoint, str] = {}
    merged = PairDivergence()
    with stderr_progress() as progress:
        task = progress.add_task("comparing snapshots", total=len(common))
        for checkpoint in common:
            try:
                pair = compare_state_dicts(
                    load_state_dict(snaps_a.files[checkpoint]), load_state_dict(snaps_b.files[checkpoint])
                )
            except SnapshotError as exc:
                unreadable[checkpoint] = str(exc)
            else:
                compared.append(checkpoint)
                rows.extend(_detailed_rows(checkpoint, pair))
                _merge(merged, pair)
            progress.advance(task)
    if not rows:
        why = (
            "every common snapshot was unreadable" if not compared else "no layer has the same name and shape"
        )
        raise TermmonError(f"termmon compare-weights: nothing to compare: {why}")

    detailed = pd.DataFrame(rows)
    timeline = _timeline(detailed)
    layers = _layer_table(detailed, merged)
    parted = timeline[timeline["model_relative_l2"] >= PARTING_THRESHOLD]
    first_over = detailed[detailed["relative_l2"] >= PARTING_THRESHOLD]
    result = ComparisonResult(
        run_a=run_a,
        run_b=run_b,
        output_dir=output_dir,
        snapshots_a=len(snaps_a.files),
        snapshots_b=len(snaps_b.files),
        checkpoints=compared,
        only_in_a_checkpoints=sorted(set(snaps_a.files) - set(snaps_b.files)),
        only_in_b_checkpoints=sorted(set(snaps_b.files) - set(snaps_a.files)),
        unreadable=unreadable,
        detailed=detailed,
        layers=layers,
        timeline=timeline,
        not_floating=sorted(merged.not_floating),
        parting=_checkpoint_of(parted.iloc[0]) if len(parted) else None,
        first_layer_parting=(
            (str(first_over.iloc[0]["layer"]), _checkpoint_of(first_over.iloc[0]))
            if len(first_over)
            else None
        ),
        files=[],
    )
    _write_outputs(result)
    return result


def _detailed_rows(checkpoint: Checkpoint, pair: PairDivergence) -> Iterable[dict[str, Any]]:
    epoch, batch = checkpoint
    for d in pair.layers:
        yield {
            "epoch": epoch,
            "batch_idx": batch,
            "checkpoint": checkpoint_label(checkpoint),
            "layer": d.layer,
            "shape": "x".join(map(str, d.shape)) or "scalar",
            "num_params": d.num_params,
            "l2_distance": d.l2_distance,
            "relative_l2": d.relative_l2,
            "cosine_similarity": d.cosine_similarity,
            "norm_a": d.norm_a,
            "norm_b": d.norm_b,
            "mean_a": d.mean_a,
            "std_a": d.std_a,
            "mean_b": d.mean_b,
            "std_b": d.std_b,
        }


def _merge(into: PairDivergence, pair: PairDivergence) -> None:
    into.only_in_a |= pair.only_in_a
    into.only_in_b |= pair.only_in_b
    into.shape_mismatches.update(pair.shape_mismatches)
    into.not_floating |= pair.not_floating


def _timeline(detailed: pd.DataFrame) -> pd.DataFrame:
    """One row per checkpoint: how far apart the runs are as whole models, and which layer is furthest.

    The whole-model figures weigh each layer by its size, so many near-zero biases cannot make two runs
    look parted; the median and worst layer show the spread across layers.
    """
    import numpy as np

    frame = detailed.assign(
        sq_distance=detailed["l2_distance"] ** 2,
        sq_norm_a=detailed["norm_a"] ** 2,
        sq_norm_b=detailed["norm_b"] ** 2,
        dot=(detailed["cosine_similarity"] * detailed["norm_a"] * detailed["norm_b"]).fillna(0.0),
    )
    grouped = frame.groupby(["epoch", "batch_idx", "checkpoint"], sort=True)
    timeline = grouped.agg(
        layers=("layer", "size"),
        sq_distance=("sq_distance", "sum"),
        sq_norm_a=("sq_norm_a", "sum"),
        sq_norm_b=("sq_norm_b", "sum"),
        dot=("dot", "sum"),
        median_relative_l2=("relative_l2", "median"),
        max_relative_l2=("relative_l2", "max"),
    )
    norm_a, norm_b = np.sqrt(timeline.pop("sq_norm_a")), np.sqrt(timeline.pop("sq_norm_b"))
    timeline.insert(1, "model_l2_distance", np.sqrt(timeline.pop("sq_distance")))
    timeline.insert(2, "model_relative_l2", timeline["model_l2_distance"] / ((norm_a + norm_b) / 2))
    timeline.insert(3, "model_cosine_similarity", timeline.pop("dot") / (norm_a * norm_b))
    timeline["max_layer"] = detailed.loc[grouped["relative_l2"].idxmax(), "layer"].to_numpy()
    return timeline.reset_index()


def _layer_table(detailed: pd.DataFrame, merged: PairDivergence) -> pd.DataFrame:
    """summary_stats.csv: compared layers ranked by final relative L2, then the ones that could not be."""
    import pandas as pd

    by_layer = detailed.groupby("layer", sort=False)
    final = by_layer.tail(1).set_index("layer")  # detailed is in checkpoint order
    over = detailed[detailed["relative_l2"] >= PARTING_THRESHOLD].groupby("layer", sort=False).head(1)
    table = pd.DataFrame(
        {
            "layer": final.index,
            "status": "compared",
            "shape": final["shape"].to_numpy(),
            "num_params": final["num_params"].to_numpy(),
            "checkpoints": by_layer.size().reindex(final.index).to_numpy(),
            "final_relative_l2": final["relative_l2"].to_numpy(),
            "final_l2_distance": final["l2_distance"].to_numpy(),
            "final_cosine_similarity": final["cosine_similarity"].to_numpy(),
            "mean_relative_l2": by_layer["relative_l2"].mean().reindex(final.index).to_numpy(),
            "max_relative_l2": by_layer["relative_l2"].max().reindex(final.index).to_numpy(),
            "first_parting_checkpoint": over.set_index("layer")["checkpoint"].reindex(final.index).to_numpy(),
            "final_mean_a": final["mean_a"].to_numpy(),
            "final_std_a": final["std_a"].to_numpy(),
            "final_mean_b": final["mean_b"].to_numpy(),
            "final_std_b": final["std_b"].to_numpy(),
        }
    )
    table = table.sort_values("final_relative_l2", ascending=False, kind="stable").reset_index(drop=True)
    table.insert(0, "rank", range(1, len(table) + 1))
    uncompared = [
        *({"layer": name, "status": "only_in_a"} for name in sorted(merged.only_in_a)),
        *({"layer": name, "status": "only_in_b"} for name in sorted(merged.only_in_b)),
        *(
            {"layer": name, "status": "shape_mismatch", "shape": shapes}
            for name, shapes in sorted(merged.shape_mismatches.items())
        ),
    ]
    if not uncompared:
        return table
    return pd.concat([table, pd.DataFrame(uncompared)], ignore_index=True).astype({"rank": "Int64"})


def _checkpoint_of(row: pd.Series) -> Checkpoint:
    return int(row["epoch"]), int(row["batch_idx"])


def _span(files: Iterable[Checkpoint]) -> str:
    checkpoints = sorted(files)
    return (
        f"{len(checkpoints)} from {checkpoint_label(checkpoints[0])} to {checkpoint_label(checkpoints[-1])}"
    )


def _write_outputs(result: ComparisonResult) -> None:
    from termmon.tools.weight_plots import plot_heatmap, plot_ranking, plot_timeline
    from termmon.tools.weight_summary import summary_text

    out = result.output_dir
    try:
        out.mkdir(parents=True, exist_ok=True)
        result.detailed.to_csv(out / DETAILED_CSV, index=False)
        result.layers.to_csv(out / SUMMARY_CSV, index=False)
        result.timeline.to_csv(out / TIMELINE_CSV, index=False)
        plot_heatmap(result.detailed, result.ranked, out / HEATMAP_PNG)
        plot_timeline(result.timeline, out / TIMELINE_PNG)
        plot_ranking(result.ranked, out / RANKING_PNG, checkpoint=checkpoint_label(result.checkpoints[-1]))
        (out / SUMMARY_TXT).write_text(summary_text(result), encoding="utf-8")
    except OSError as exc:
        raise TermmonError(f"termmon compare-weights: cannot write {out}: {exc.strerror or exc}") from exc
    names = (DETAILED_CSV, SUMMARY_CSV, TIMELINE_CSV, HEATMAP_PNG, TIMELINE_PNG, RANKING_PNG, SUMMARY_TXT)
    result.files = [out / name for name in names]
