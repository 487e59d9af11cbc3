"""The shipped demo runs and the live recording, generated from a fixed seed.

Each run shows one story a researcher meets: blobs forming in a healthy run, a run diverging to
NaN, a run overfitting, and a step-level LoRA-style log with a log-interval change. The files are
committed under ``demo_runs/`` and ``termmon/demo/recordings/``; this module regenerates them
(``python -m termmon.demo.synthetic``) and is the fallback when an install lacks ``demo_runs/``.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from termmon.format import METRICS_JSONL, encode_record

T0 = 1_767_225_600.0  # 2026-01-01 00:00 UTC: fixed, so the files are byte-for-byte reproducible

Record = dict[str, Any]


def _round(value: float, digits: int = 5) -> float:
    return value if not math.isfinite(value) else round(value, digits)


def _start(name: str, t: float, **config: Any) -> Record:
    log_every = config.get("log_every")
    return {
        "event": "start",
        "time": t,
        "step": 0,
        "run_name": name,
        "log_every": log_every,
        "config": config,
    }


def blob_run(
    name: str, *, epochs: int, steps_per_epoch: int, log_every: int, sec_per_step: float, seed: int
) -> Iterator[Record]:
    """A denoiser learning well: loss falls, weight pairs separate into three blobs over the epochs."""
    rng = np.random.default_rng(seed)
    t = T0
    yield _start(
        name, t, log_every=log_every, enable_diagnostics=True, lr=3e-3, batch_size=128, epochs=epochs
    )
    step = 0
    total = epochs * steps_per_epoch
    for epoch in range(epochs):
        for _ in range(steps_per_epoch):
            step += 1
            t += sec_per_step
            if step % log_every:
                continue
            progress = step / total
            loss = 0.08 + 0.9 * math.exp(-5 * progress) * (1 + 0.12 * rng.standard_normal())
            yield {
                "event": "step",
                "time": round(t, 3),
                "step": step,
                "epoch": epoch,
                "train_loss": _round(loss),
                "lr": _round(3e-3 * 0.5 * (1 + math.cos(math.pi * progress)), 7),
                "grad_norm": _round(0.4 + 1.5 * math.exp(-4 * progress) + 0.1 * abs(rng.standard_normal())),
                "samples_per_sec": _round(128 / sec_per_step * (1 + 0.03 * rng.standard_normal()), 1),
                "gpu_util": _round(min(100.0, 88 + 6 * rng.standard_normal()), 1),
            }
        formed = 1 / (1 + math.exp(-(epoch - epochs * 0.45) / (epochs * 0.08)))
        train = 0.08 + 0.9 * math.exp(-5 * (epoch + 1) / epochs)
        yield {
            "event": "epoch",
            "time": round(t, 3),
            "step": step,
            "epoch": epoch,
            "train": {"loss": _round(train)},
            "test": {"loss": _round(train * 1.08 + 0.01)},
            "diagnostics": {
                "silhouette_score": _round(0.08 + 0.62 * formed + 0.02 * rng.standard_normal(), 4),
                "n_clusters_dbscan": 1 + round(2 * formed),
                "weight_correlation": _round(0.15 + 0.7 * formed + 0.02 * rng.standard_normal(), 4),
            },
        }
    yield {"event": "end", "time": round(t + 1, 3), "step": step, "status": "finished"}


def diverging_run(name: str) -> Iterator[Record]:
    """Learning rate too high: loss dips, grad norm climbs, loss goes to inf and then NaN; the run crashes."""
    rng = np.random.default_rng(2)
    t = T0
    yield _start(name, t, log_every=10, enable_diagnostics=True, lr=0.05, batch_size=64, epochs=20)
    step = 0
    for epoch in range(20):
        for _ in range(100):
            step += 1
            t += 0.05
            if step % 10:
                continue
            blowup = math.exp((step - 1000) / 120)
            loss = 0.9 * math.exp(-step / 400) + 0.15 + 0.05 * blowup * (1 + 0.2 * rng.standard_normal())
            grad = 0.8 + 2.0 * blowup * (1 + 0.3 * abs(rng.standard_normal()))
            if step >= 1620:
                loss, grad = math.nan, math.nan
            elif step >= 1580:
                loss, grad = math.inf, math.inf
            yield {
                "event": "step",
                "time": round(t, 3),
                "step": step,
                "epoch": epoch,
                "train_loss": _round(loss),
                "lr": 0.05,
                "grad_norm": _round(grad),
                "nan_inf_detected": int(not math.isfinite(loss)),
                "gpu_util": _round(min(100.0, 93 + 3 * rng.standard_normal()), 1),
            }
            if step == 1580:
                yield {
                    "event": "alert",
                    "time": round(t, 3),
                    "step": step,
                    "kind": "nan_inf",
                    "severity": "critical",
                    "message": "train_loss is inf at step 1580",
                }
            if step >= 1650:
                yield {
                    "event": "end",
                    "time": round(t, 3),
                    "step": step,
                    "status": "crashed",
                    "error": "FloatingPointError: loss is NaN",
                }
                return
        silhouette = 0.1 + 0.3 * min(1.0, epoch / 10)
        yield {
            "event": "epoch",
            "time": round(t, 3),
            "step": step,
            "epoch": epoch,
            "train": {"loss": _round(0.9 * math.exp(-step / 400) + 0.15)},
            "test": {"loss": _round(0.9 * math.exp(-step / 400) + 0.2)},
            "diagnostics": {
                "silhouette_score": _round(silhouette, 4),
                "n_clusters_dbscan": 1 + int(epoch > 8),
                "weight_correlation": _round(0.2 + 0.25 * min(1.0, epoch / 10), 4),
            },
        }


def overfitting_run(name: str) -> Iterator[Record]:
    """A big model on little data, diagnostics off: train loss keeps falling while test loss turns up."""
    rng = np.random.default_rng(3)
    t = T0
    yield _start(name, t, log_every=25, enable_diagnostics=False, lr=1e-3, batch_size=32, epochs=40)
    step = 0
    for epoch in range(40):
        for _ in range(50):
            step += 1
            t += 0.04
            if step % 25:
                continue
            yield {
                "event": "step",
                "time": round(t, 3),
                "step": step,
                "epoch": epoch,
                "train_loss": _round(1.2 * math.exp(-step / 500) + 0.02 + 0.03 * rng.standard_normal()),
                "lr": 1e-3,
                "grad_norm": _round(0.6 + 0.2 * abs(rng.standard_normal())),
            }
        train = 1.2 * math.exp(-step / 500) + 0.02
        test = (
            0.55 + 0.6 * math.exp(-step / 300) + 0.00025 * max(0, step - 600) + 0.01 * rng.standard_normal()
        )
        yield {
            "event": "epoch",
            "time": round(t, 3),
            "step": step,
            "epoch": epoch,
            "train": {"loss": _round(train), "accuracy": _round(min(1.0, 1 - train / 1.3), 4)},
            "test": {
                "loss": _round(test),
                "accuracy": _round(max(0.0, 0.82 - 0.0001 * max(0, step - 600)), 4),
            },
        }
    yield {"event": "end", "time": round(t + 1, 3), "step": step, "status": "finished"}


def lora_run(name: str) -> Iterator[Record]:
    """Seed 002's LoRA fine-tune: step-level only, warm-up then cosine lr, and a log_every change."""
    rng = np.random.default_rng(4)
    t = T0
    yield {
        **_start(name, t, log_every=10, lora_rank=16, lora_alpha=16, target_modules=["to_q", "to_k", "to_v"]),
        "trainable_params": 9_437_184,
        "total_params": 11_901_000_000,
    }
    log_every = 10
    for step in range(1, 3001):
        t += 1.9
        if step == 1500:
            yield {
                "event": "control_change",
                "time": round(t, 3),
                "step": step,
                "key": "log_every",
                "old": 10,
                "new": 50,
                "requested": 50,
                "clamped": False,
            }
            log_every = 50
        if step % log_every:
            continue
        warm = min(1.0, step / 200)
        lr = 1e-4 * warm * 0.5 * (1 + math.cos(math.pi * step / 3000))
        yield {
            "event": "step",
            "time": round(t, 3),
            "step": step,
            "train_loss": _round(0.11 + 0.06 * math.exp(-step / 700) + 0.035 * abs(rng.standard_normal())),
            "lr": _round(lr, 9),
            "grad_norm": _round(0.05 + 0.03 * abs(rng.standard_normal())),
            "samples_per_sec": _round(0.52 + 0.01 * rng.standard_normal(), 3),
            "sec_per_step": _round(1.9 + 0.04 * rng.standard_normal(), 3),
            "gpu_mem_allocated": _round(21.3 + 0.05 * rng.standard_normal(), 2),
            "gpu_mem_reserved": 23.5,
            "gpu_util": _round(min(100.0, 97 + 1.5 * rng.standard_normal()), 1),
            "cpu_mem_rss_mb": _round(14_200 + 3 * step / 100, 1),
        }
    yield {"event": "end", "time": round(t + 1, 3), "step": 3000, "status": "finished"}


def demo_runs() -> dict[str, Iterator[Record]]:
    return {
        "blobs_healthy": blob_run(
            "blobs_healthy", epochs=30, steps_per_epoch=100, log_every=20, sec_per_step=0.05, seed=1
        ),
        "diverging_lr": diverging_run("diverging_lr"),
        "overfitting_small_data": overfitting_run("overfitting_small_data"),
        "lora_flux_step_log": lora_run("lora_flux_step_log"),
    }


def recording() -> Iterator[Record]:
    """The live demo's recording: a small denoiser logged every 5 steps, ~4 minutes at real pace."""
    return blob_run("denoiser_live", epochs=24, steps_per_epoch=200, log_every=5, sec_per_step=0.05, seed=7)


def write_jsonl(path: Path, records: Iterator[Record]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8") as fh:
        for record in records:
            fh.write(encode_record(record) + "\n")


def write_demo_runs(root: Path) -> list[Path]:
    """Write the demo runs under ``root``; returns their directories."""
    out = []
    for name, records in demo_runs().items():
        write_jsonl(root / name / METRICS_JSONL, records)
        out.append(root / name)
    return out


RECORDING = Path(__file__).parent / "recordings" / "denoiser.jsonl"

if __name__ == "__main__":
    repo = Path(__file__).resolve().parents[2]
    write_demo_runs(repo / "demo_runs")
    write_jsonl(RECORDING, recording())
    print(f"wrote {repo / 'demo_runs'} and {RECORDING}")
