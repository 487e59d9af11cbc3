"""Synthetic run directories for the benchmarks: realistic step records at the contract's names.

``python -m benchmarks.generate DIR --lines 1000000`` writes DIR/metrics.jsonl (~200 MB at 1M lines,
~10 metrics a step, an epoch record every 10,000 steps) exactly as termmon's logger would.
"""

from __future__ import annotations

import argparse
import math
import random
from pathlib import Path

from termmon.format import encode_record

BENCH_START_TIME = 1_700_000_000.0


def step_record(i: int, rng: random.Random, layers: int = 0) -> dict[str, object]:
    """One step record; ``layers`` adds that many per-tensor gradient norms (``gradients/<p>/norm``)."""
    record: dict[str, object] = {
        "event": "step",
        "time": round(BENCH_START_TIME + 0.05 * i, 3),
        "step": i,
        "epoch": i // 10_000,
        "train_loss": round(2.0 * math.exp(-i / 300_000) + 0.1 * rng.random(), 6),
        "lr": 0.001,
        "grad_norm": round(1.0 + 4.0 * rng.random(), 5),
        "samples_per_sec": round(1200.0 + 50.0 * rng.random(), 2),
        "sec_per_step": round(0.05 + 0.001 * rng.random(), 6),
        "gpu_mem_allocated": 3.21,
        "gpu_mem_reserved": 4.5,
        "gpu_util": round(88.0 + 10.0 * rng.random(), 1),
        "cpu_mem_rss_mb": round(2048.0 + rng.random(), 1),
        "nan_inf_detected": False,
    }
    for k in range(layers):
        record[f"gradients/{k // 2}.{'bias' if k % 2 else 'weight'}/norm"] = round(0.1 + rng.random(), 5)
    return record


def write_benchmark_run(
    run_dir: Path, lines: int = 1_000_000, *, seed: int = 0, finished: bool = True, layers: int = 0
) -> Path:
    """Write ``run_dir/metrics.jsonl`` with ``lines`` step records (plus start/epoch/end); returns its path."""
    run_dir.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    path = run_dir / "metrics.jsonl"
    with open(path, "w") as fh:
        start = {
            "event": "start",
            "time": BENCH_START_TIME,
            "run_name": run_dir.name,
            "log_every": 10,
            "config": {"lr": 0.001},
        }
        fh.write(encode_record(start) + "\n")
        for i in range(1, lines + 1):
            fh.write(encode_record(step_record(i, rng, layers)) + "\n")
            if i % 10_000 == 0:
                epoch = {
                    "event": "epoch",
                    "time": BENCH_START_TIME + 0.05 * i,
                    "step": i,
                    "epoch": i // 10_000 - 1,
                    "train/loss": 1.0,
                    "test/loss": 1.1,
                }
                fh.write(encode_record(epoch) + "\n")
        if finished:
            fh.write(
                encode_record({"event": "end", "time": BENCH_START_TIME + 0.05 * lines, "status": "finished"})
                + "\n"
            )
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("--lines", type=int, default=1_000_000)
    args = parser.parse_args()
    path = write_benchmark_run(args.run_dir, args.lines)
    print(f"{path}: {path.stat().st_size / 1e6:.0f} MB")


if __name__ == "__main__":
    main()
