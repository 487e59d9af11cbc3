"""The metric-role registry: every library's spelling of a role maps to it, and nothing else does."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from termmon.analysis.diagnosis import progression
from termmon.roles import ROLES, Role, first, is_loss_like, names_for, role_of
from termmon.views.widgets.run_picker import loss_metric
from tests.runs import run_of

# Names as the libraries write them (shared/reference/formats.md, and the files they produce).
SPELLINGS: dict[Role, tuple[str, ...]] = {
    Role.TRAIN_LOSS: (
        "train_loss",  # termmon, seed 002
        "train/loss",  # termmon epoch records, HF events
        "loss",  # HF trainer_state.json, Keras
        "train_loss_step",  # Lightning
        "train_loss_epoch",
        "loss/total",
    ),
    Role.EVAL_LOSS: ("test/loss", "eval_loss", "eval/loss", "val_loss", "val_loss_epoch", "validation/loss"),
    Role.LR: ("lr", "learning_rate", "train/learning_rate", "lr-SGD", "lr-AdamW", "lr-Adam/pg1"),
    Role.GRAD_NORM: ("grad_norm", "train/grad_norm", "gradients/global/total_norm"),
    Role.THROUGHPUT: ("samples_per_sec", "train_samples_per_second", "train/samples_per_second"),
    Role.GPU_MEM: ("gpu_mem_allocated", "gpu_mem_reserved"),
    Role.GPU_UTIL: ("gpu_util",),
    Role.EPOCH: ("epoch", "train/epoch"),
    Role.TRAIN_ACCURACY: ("train_accuracy", "train/accuracy", "accuracy"),
    Role.EVAL_ACCURACY: ("test/accuracy", "val_accuracy", "val_acc"),
}

NO_ROLE = (
    "gradients/encoder.0/norm",  # per-layer norms are not the global norm
    "updates/fc.weight/change",
    "diagnostics/silhouette_score",
    "collapse/most_common_ratio",
    "cpu_mem_rss_mb",
    "lossless_ratio",
    "glr",
)


@pytest.mark.parametrize(("role", "name"), [(r, n) for r, names in SPELLINGS.items() for n in names])
def test_each_library_spelling_has_its_role(role: Role, name: str) -> None:
    assert role_of(name) == role


@pytest.mark.parametrize("name", NO_ROLE)
def test_other_metrics_have_no_role(name: str) -> None:
    assert role_of(name) is None


def test_eval_losses_are_never_taken_for_the_training_loss() -> None:
    present = ["val_loss", "eval_loss", "test/loss", "loss/val"]
    assert first(Role.TRAIN_LOSS, present) is None
    assert set(names_for(Role.EVAL_LOSS, present)) == set(present)


def test_preference_follows_the_registry_then_the_order_given() -> None:
    present = ["lr-Adam", "train/loss", "lr", "train_loss", "lr-SGD"]
    assert names_for(Role.TRAIN_LOSS, present) == ["train_loss", "train/loss"]
    assert names_for(Role.LR, present) == ["lr", "lr-Adam", "lr-SGD"]


def test_every_listed_name_maps_back_to_its_own_role() -> None:
    for spec in ROLES:
        for name in spec.names:
            assert role_of(name) == spec.role, name


def test_loss_like_covers_both_losses_and_library_suffixes() -> None:
    for name in ("train_loss_step", "val_loss_epoch", "loss", "recon/loss", "loss/kl", "eval_loss"):
        assert is_loss_like(name), name
    for name in ("lr", "grad_norm", "lossless_ratio"):
        assert not is_loss_like(name), name


def test_a_run_that_logs_plain_loss_is_summarised_and_diagnosed_by_its_loss(tmp_path: Path) -> None:
    """Keras and HF's trainer_state.json say ``loss``: the summary table's loss column, the picker's
    sparkline and report's progression must all find it, not only the alerts."""
    records = [{"event": "step", "time": 100.0 + i, "step": i, "loss": 2.0 / (i + 1)} for i in range(50)]
    run = run_of(tmp_path, records)
    assert loss_metric(run) == "loss"
    progress = progression(run)
    assert progress is not None and progress.loss_metric == "loss"
    table = subprocess.run(
        [sys.executable, "-m", "termmon", "summary", str(tmp_path / "run")],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "COLUMNS": "160"},
        check=True,
    ).stdout
    assert "0.04 / 0.04" in table  # last / min of 2/(i+1) at i = 49
