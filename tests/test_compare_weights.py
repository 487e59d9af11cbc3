"""compare-weights on real snapshots written by real (tiny) trainings, through the CLI and the API."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

torch = pytest.importorskip("torch")

from termmon.cli import main  # noqa: E402
from termmon.format import WEIGHT_SNAPSHOTS_DIR, weight_snapshot_name  # noqa: E402
from termmon.tools.compare_weights import compare_weights  # noqa: E402
from termmon.tools.weight_divergence import layer_divergence  # noqa: E402

pytestmark = pytest.mark.torch

OUTPUTS = (
    "layer_divergence_detailed.csv",
    "summary_stats.csv",
    "divergence_timeline.csv",
    "divergence_heatmap.png",
    "divergence_timeline.png",
    "layer_ranking.png",
    "SUMMARY.txt",
)
# Four snapshots, every 4 steps over 2 epochs of 8 batches.
CHECKPOINTS = [(0, 3), (0, 7), (1, 3), (1, 7)]
PLANTED_LAYER = "hidden.weight"
PLANTED_FROM = (1, 3)


class Net(torch.nn.Module):
    def __init__(self, extra: bool = False, head_out: int = 3) -> None:
        super().__init__()
        self.encoder = torch.nn.Linear(6, 16)
        self.norm = torch.nn.BatchNorm1d(16)
        self.hidden = torch.nn.Linear(16, 16)
        self.head = torch.nn.Linear(16, head_out)
        if extra:
            self.adapter = torch.nn.Linear(16, 16)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = torch.relu(self.norm(self.encoder(x)))
        return self.head(torch.relu(self.hidden(h)))


def train_run(
    run: Path,
    *,
    data_seed: int,
    checkpoints: list[tuple[int, int]] = CHECKPOINTS,
    plant: bool = False,
    **net_kwargs: object,
) -> None:
    """Train from a fixed initialisation on seeded data, saving seed 000's snapshots as it goes."""
    torch.set_num_threads(1)
    torch.manual_seed(0)
    model = Net(**net_kwargs)  # type: ignore[arg-type]
    optimizer = torch.optim.SGD(model.parameters(), lr=0.02)
    generator = torch.Generator().manual_seed(data_seed)
    snapshots = run / WEIGHT_SNAPSHOTS_DIR
    snapshots.mkdir(parents=True)
    for epoch in range(2):
        for batch in range(8):
            x = torch.randn(16, 6, generator=generator)
            y = torch.randint(0, 3, (16,), generator=generator)
            loss = torch.nn.functional.cross_entropy(model(x)[:, :3], y)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            if (epoch, batch) not in checkpoints:
                continue
            state = {k: v.clone() for k, v in model.state_dict().items()}
            if plant and (epoch, batch) >= PLANTED_FROM:
                state[PLANTED_LAYER] += torch.randn(state[PLANTED_LAYER].shape, generator=generator)
            torch.save(
                {"model_state_dict": state, "batch_idx": batch, "epoch": epoch},
                snapshots / weight_snapshot_name(epoch, batch),
            )


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("runs")
    train_run(root / "a", data_seed=1)
    train_run(root / "b", data_seed=2, plant=True)
    return root


@pytest.fixture(scope="module")
def compared(runs: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("out") / "cmp"
    assert main(["compare-weights", str(runs / "a"), str(runs / "b"), "--output", str(out)]) == 0
    return out


def test_every_output_file_is_written(compared: Path) -> None:
    assert sorted(p.name for p in compared.iterdir()) == sorted(OUTPUTS)


def test_detailed_csv_has_one_row_per_layer_and_checkpoint(compared: Path) -> None:
    detailed = pd.read_csv(compared / "layer_divergence_detailed.csv")
    assert {
        "epoch",
        "batch_idx",
        "layer",
        "l2_distance",
        "relative_l2",
        "cosine_similarity",
        "mean_a",
        "std_a",
        "mean_b",
        "std_b",
    } <= set(detailed.columns)
    float_layers = [k for k, v in Net().state_dict().items() if v.is_floating_point()]
    assert len(detailed) == len(float_layers) * len(CHECKPOINTS)
    assert set(detailed["layer"]) == set(float_layers)
    assert sorted(set(zip(detailed["epoch"], detailed["batch_idx"], strict=True))) == CHECKPOINTS
    assert (detailed["l2_distance"] >= 0).all()
    assert detailed["cosine_similarity"].between(-1 - 1e-9, 1 + 1e-9).all()


def test_planted_layer_ranks_first_and_the_runs_part_where_it_was_planted(compared: Path) -> None:
    stats = pd.read_csv(compared / "summary_stats.csv")
    assert stats.loc[0, "layer"] == PLANTED_LAYER
    assert stats.loc[0, "rank"] == 1
    assert stats.loc[0, "first_parting_checkpoint"] == "e1/b3"
    assert stats["final_relative_l2"].is_monotonic_decreasing
    summary = (compared / "SUMMARY.txt").read_text()
    ranking = summary.split("Most divergent layers")[1]
    assert ranking.splitlines()[1].split()[1] == PLANTED_LAYER
    assert "clearly part at e1/b3" in summary
    assert "num_batches_tracked" in summary  # integer buffer named, not compared


def test_pngs_are_real_non_blank_images(compared: Path) -> None:
    from matplotlib import image

    for name in ("divergence_heatmap.png", "divergence_timeline.png", "layer_ranking.png"):
        pixels = image.imread(compared / name)
        assert pixels.shape[0] > 200 and pixels.shape[1] > 200
        assert float(np.var(pixels[..., :3])) > 0.005, name


def test_a_run_against_itself_is_identical_everywhere(runs: Path, tmp_path: Path) -> None:
    result = compare_weights(runs / "a", runs / "a", tmp_path / "same")
    assert (result.detailed["l2_distance"] == 0).all()
    assert np.allclose(result.detailed["cosine_similarity"], 1.0)
    assert result.parting is None
    assert "never clearly part" in (tmp_path / "same" / "SUMMARY.txt").read_text()


def test_misaligned_checkpoints_compare_the_common_ones_and_say_which_are_missing(
    runs: Path, tmp_path: Path
) -> None:
    train_run(tmp_path / "c", data_seed=3, checkpoints=[(0, 3), (0, 5), (1, 7)])
    result = compare_weights(runs / "a", tmp_path / "c", tmp_path / "out")
    assert result.checkpoints == [(0, 3), (1, 7)]
    assert result.only_in_a_checkpoints == [(0, 7), (1, 3)]
    assert result.only_in_b_checkpoints == [(0, 5)]
    summary = (tmp_path / "out" / "SUMMARY.txt").read_text()
    assert "Checkpoints only in run A (not compared): 2\n  e0/b7\n  e1/b3" in summary
    assert "Checkpoints only in run B (not compared): 1\n  e0/b5" in summary


def test_layers_in_one_run_only_and_shape_mismatches_are_reported(runs: Path, tmp_path: Path) -> None:
    train_run(tmp_path / "d", data_seed=1, extra=True, head_out=5)
    result = compare_weights(runs / "a", tmp_path / "d", tmp_path / "out")
    status = dict(zip(result.layers["layer"], result.layers["status"], strict=True))
    assert status["adapter.weight"] == status["adapter.bias"] == "only_in_b"
    assert status["head.weight"] == status["head.bias"] == "shape_mismatch"
    assert status["hidden.weight"] == "compared"
    summary = (tmp_path / "out" / "SUMMARY.txt").read_text()
    assert "Layers only in run B: 2" in summary
    assert "head.weight: (3, 16) vs (5, 16)" in summary


def test_unreadable_snapshot_is_skipped_and_named(runs: Path, tmp_path: Path) -> None:
    train_run(tmp_path / "e", data_seed=1)
    broken = tmp_path / "e" / WEIGHT_SNAPSHOTS_DIR / weight_snapshot_name(0, 7)
    broken.write_bytes(broken.read_bytes()[:100])
    result = compare_weights(runs / "a", tmp_path / "e", tmp_path / "out")
    assert (0, 7) not in result.checkpoints and len(result.checkpoints) == 3
    assert "weights_epoch0_batch7.pt: cannot be loaded" in (tmp_path / "out" / "SUMMARY.txt").read_text()


def test_many_layers_cap_the_heatmap_and_say_so(tmp_path: Path) -> None:
    generator = torch.Generator().manual_seed(0)
    for name, shift in (("a", 0.0), ("b", 1.0)):
        snapshots = tmp_path / name / WEIGHT_SNAPSHOTS_DIR
        snapshots.mkdir(parents=True)
        state = {f"blocks.{i}.weight": torch.randn(4, 4, generator=generator) + shift * i for i in range(60)}
        torch.save(
            {"model_state_dict": state, "batch_idx": 0, "epoch": 0}, snapshots / weight_snapshot_name(0, 0)
        )
    result = compare_weights(tmp_path / "a", tmp_path / "b", tmp_path / "out")
    assert len(result.ranked) == 60
    assert "The heatmap shows the top 40 of 60 layers" in (tmp_path / "out" / "SUMMARY.txt").read_text()


def test_no_checkpoint_in_common_is_exit_1(
    runs: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    train_run(tmp_path / "f", data_seed=1, checkpoints=[(0, 5)])
    code = main(["compare-weights", str(runs / "a"), str(tmp_path / "f"), "--output", str(tmp_path / "out")])
    assert code == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("termmon compare-weights: the runs have no checkpoint in common")
    assert not (tmp_path / "out").exists()


def test_missing_run_is_exit_2(runs: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(
        ["compare-weights", str(runs / "a"), str(tmp_path / "nope"), "--output", str(tmp_path / "out")]
    )
    assert code == 2
    assert capsys.readouterr().err.strip() == f"termmon compare-weights: no such run: {tmp_path / 'nope'}"


def test_run_without_snapshots_is_exit_1(runs: Path, tmp_path: Path) -> None:
    assert main(["compare-weights", str(runs / "a"), str(tmp_path), "--output", str(tmp_path / "out")]) == 1


def test_layer_divergence_figures() -> None:
    d = layer_divergence("w", torch.ones(4), torch.full((4,), 2.0))
    assert d.l2_distance == pytest.approx(2.0)
    assert d.relative_l2 == pytest.approx(2.0 / 3.0)  # ||a-b|| = 2, mean norm = (2 + 4) / 2
    assert d.cosine_similarity == pytest.approx(1.0)
    assert (d.mean_a, d.std_a, d.mean_b, d.std_b) == (1.0, 0.0, 2.0, 0.0)
    opposite = layer_divergence("w", torch.tensor([1.0, 0.0]), torch.tensor([-1.0, 0.0]))
    assert opposite.cosine_similarity == pytest.approx(-1.0)
    assert opposite.relative_l2 == pytest.approx(2.0)
    zero = layer_divergence("w", torch.zeros(3), torch.zeros(3))
    assert zero.relative_l2 == 0.0 and math.isnan(zero.cosine_similarity)
