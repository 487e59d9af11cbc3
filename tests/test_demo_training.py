"""The demo trainings are real runs that each show what they are shipped to show."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

from termmon.demo.training import train_denoiser, train_diverging, train_lora_style, train_overfitting
from termmon.diagnostics.blobs import RESULT_KEYS
from termmon.format import DIAG_N_CLUSTERS, DIAG_SILHOUETTE, DIAG_WEIGHT_CORRELATION
from tests.telemetry_helpers import events


@pytest.fixture(autouse=True)
def one_thread() -> Iterator[None]:
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


def test_denoiser_forms_three_blobs_mid_training(tmp_path: Path) -> None:
    pytest.importorskip("sklearn")
    train_denoiser(tmp_path)
    epochs = events(tmp_path / "denoiser_blobs", "epoch")
    assert len(epochs) == 20
    assert all(f"diagnostics/{key}" in e for e in epochs for key in RESULT_KEYS)
    clusters = [e[DIAG_N_CLUSTERS] for e in epochs]
    formed = clusters.index(3)
    assert clusters[:3] == [1, 1, 1] and epochs[0][DIAG_SILHOUETTE] is None
    assert 3 <= formed <= 12, clusters
    assert all(c == 3 for c in clusters[formed:]), clusters
    assert all(e[DIAG_SILHOUETTE] > 0.5 for e in epochs[formed:])
    peak = max(e[DIAG_WEIGHT_CORRELATION] for e in epochs[:formed])
    assert epochs[formed][DIAG_WEIGHT_CORRELATION] < peak
    assert epochs[-1]["test/loss"] < 0.8 * epochs[0]["test/loss"]
    alerts = events(tmp_path / "denoiser_blobs", "alert")
    assert [(a["kind"], a["epoch"]) for a in alerts] == [("blob_formed", formed)]


def test_denoiser_paces_every_step(tmp_path: Path) -> None:
    start = time.perf_counter()
    train_denoiser(tmp_path, "paced", epochs=1, steps_per_epoch=10, pace_s=0.03)
    assert time.perf_counter() - start >= 10 * 0.03
    assert [s["step"] for s in events(tmp_path / "paced", "step")] == [10]
    assert len(events(tmp_path / "paced", "epoch")) == 1


def test_diverging_run_reaches_non_finite_values(tmp_path: Path) -> None:
    train_diverging(tmp_path)
    kinds = {(a["kind"], a["severity"]) for a in events(tmp_path / "diverging_lr", "alert")}
    assert ("nan_inf", "critical") in kinds


def test_overfitting_run_test_loss_turns_while_train_loss_falls(tmp_path: Path) -> None:
    train_overfitting(tmp_path)
    epochs = events(tmp_path / "overfitting_tiny", "epoch")
    test_loss = [e["test/loss"] for e in epochs]
    best = test_loss.index(min(test_loss))
    assert best < len(epochs) - 10
    assert test_loss[-1] > 1.2 * test_loss[best]
    assert epochs[-1]["train/loss"] < 0.1 * epochs[best]["train/loss"]


def test_lora_run_logs_per_step_with_checkpoints(tmp_path: Path) -> None:
    train_lora_style(tmp_path, steps=200)
    run = tmp_path / "lora_steps"
    assert [c["checkpoint_path"] for c in events(run, "checkpoint")] == [
        "lora_adapter_step100.safetensors",
        "lora_adapter_step200.safetensors",
    ]
    losses = [s["train_loss"] for s in events(run, "step")]
    assert losses[-1] < losses[0]
