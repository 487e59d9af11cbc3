"""Healthy runs of many shapes raise nothing at warning or above: a monitor that cries wolf gets ignored."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from termmon.analysis.alerts import AlertEngine, Severity
from tests.runs import make_run

Layout = Callable[[np.random.Generator], dict]


def _noise(rng: np.random.Generator, n: int, rel: float) -> np.ndarray:
    return 1 + rel * rng.standard_normal(n)


def _system(rng: np.random.Generator, n: int) -> dict[str, np.ndarray]:
    """Gradient norm with warm-up spikes, GPU busy with short dips (evaluation, checkpoints)."""
    grad = np.exp(0.35 * rng.standard_normal(n)) * (1 + 30 * np.exp(-np.arange(n) / 40))
    grad[rng.integers(0, min(n, 60), 3)] *= 8  # warm-up spikes
    util = np.clip(88 + 4 * rng.standard_normal(n), 0, 100)
    for start in range(200, n, 500):
        util[start : start + 5] = 3
    util[:5] = 0  # data loading and compilation
    return {"grad_norm": grad, "gpu_util": util}


def noisy(rng: np.random.Generator) -> dict:
    n = 3000
    s = np.arange(1, n + 1)
    loss = (0.6 + 2 * np.exp(-s / 700)) * _noise(rng, n, 0.08)
    return {"steps": n, "metrics": {"train_loss": loss, "lr": 3e-4, **_system(rng, n)}}


def slowly_converging(rng: np.random.Generator) -> dict:
    n = 6000
    s = np.arange(1, n + 1)
    loss = (0.3 + 2.5 / np.sqrt(1 + s / 50)) * _noise(rng, n, 0.03)
    return {"steps": n, "metrics": {"train_loss": loss, **_system(rng, n)}}


def warmup_spikes(rng: np.random.Generator) -> dict:
    n = 1500
    s = np.arange(1, n + 1)
    loss = (0.4 + 3 * np.exp(-s / 300)) * _noise(rng, n, 0.05)
    loss[[3, 7, 12, 30]] *= 4
    lr = np.minimum(1, s / 100) * 1e-3
    return {"steps": n, "metrics": {"train_loss": loss, "lr": lr, **_system(rng, n)}}


def step_schedule(rng: np.random.Generator) -> dict:
    n = 4500
    s = np.arange(1, n + 1)
    phase = s // 1500
    lr = 0.1 * 0.1**phase
    loss = (0.2 + 1.5 / np.sqrt(1 + s / 40) - 0.08 * phase) * _noise(rng, n, 0.04)
    return {"steps": n, "metrics": {"train_loss": loss, "lr": lr, **_system(rng, n)}}


def cosine_restarts(rng: np.random.Generator) -> dict:
    n = 4000
    s = np.arange(1, n + 1)
    cycle = (s % 1000) / 1000
    lr = 1e-3 * 0.5 * (1 + np.cos(np.pi * cycle))
    loss = (0.3 + 1.2 / np.sqrt(1 + s / 60) + 0.15 * lr / 1e-3) * _noise(rng, n, 0.03)
    return {"steps": n, "metrics": {"train_loss": loss, "lr": lr, **_system(rng, n)}}


def with_evaluations(rng: np.random.Generator) -> dict:
    n, epochs = 3000, 60
    s = np.arange(1, n + 1)
    e = np.arange(epochs)
    train = (0.3 + 2 * np.exp(-s / 800)) * _noise(rng, n, 0.05)
    return {
        "steps": n,
        "metrics": {"train_loss": train, **_system(rng, n)},
        "epoch_metrics": {
            "train/loss": 0.3 + 2 * np.exp(-e / 16),
            "test/loss": (0.45 + 2 * np.exp(-e / 15)) * _noise(rng, epochs, 0.006),
            "diagnostics/silhouette_score": np.linspace(0.1, 0.7, epochs),
            "diagnostics/n_clusters_dbscan": np.minimum(1 + e // 20, 3),
        },
    }


def long_run(rng: np.random.Generator) -> dict:
    n = 60_000
    s = np.arange(1, n + 1)
    loss = (0.2 + 3 / (1 + s / 500) ** 0.5) * _noise(rng, n, 0.05)
    return {"steps": n, "metrics": {"train_loss": loss, **_system(rng, n)}, "log_every": 1}


def very_slow_decay(rng: np.random.Generator) -> dict:
    """Every step logged, a time constant far beyond any window: flat at first sight, never a plateau."""
    n = 150_000
    s = np.arange(1, n + 1)
    loss = 2 * np.exp(-s / 300_000) + 0.1 * rng.random(n)
    return {"steps": n, "metrics": {"train_loss": loss}, "log_every": 1}


LAYOUTS = [
    very_slow_decay,
    noisy,
    slowly_converging,
    warmup_spikes,
    step_schedule,
    cosine_restarts,
    with_evaluations,
    long_run,
]


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("layout", LAYOUTS, ids=lambda f: f.__name__)
def test_healthy_run_raises_nothing_serious(tmp_path: Path, layout: Layout, seed: int) -> None:
    run = make_run(tmp_path, **layout(np.random.default_rng(seed)))
    alerts = AlertEngine().update(run, now=run.last_time + 1)
    serious = [a.message for a in alerts if a.severity.rank >= Severity.WARNING.rank]
    assert serious == []


def test_diagnostic_milestones_are_info(tmp_path: Path) -> None:
    run = make_run(tmp_path, **with_evaluations(np.random.default_rng(0)))
    alerts = AlertEngine().update(run, now=run.last_time)
    assert [(a.kind, a.epoch) for a in alerts] == [
        ("silhouette_crossed", 40),
        ("blob_formed", 20),
        ("blob_formed", 40),
    ] or sorted((a.kind, a.epoch) for a in alerts) == [
        ("blob_formed", 20),
        ("blob_formed", 40),
        ("silhouette_crossed", 40),
    ]
