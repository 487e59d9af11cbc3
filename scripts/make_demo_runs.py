"""Regenerate ``demo_runs/`` and the demo's replay recording from real CPU trainings.

    python scripts/make_demo_runs.py [--out demo_runs]

Weight snapshots are off: the shipped runs stay a few hundred KB each.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

import torch

from termmon.demo.training import train_denoiser, train_diverging, train_lora_style, train_overfitting

RECORDING = Path(__file__).resolve().parents[1] / "termmon" / "demo" / "recordings" / "denoiser.jsonl"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("demo_runs"))
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    for name, train in (
        ("denoiser_blobs", train_denoiser),
        ("diverging_lr", train_diverging),
        ("overfitting_tiny", train_overfitting),
        ("lora_steps", train_lora_style),
    ):
        shutil.rmtree(args.out / name, ignore_errors=True)
        train(args.out, name)
        print(f"wrote {args.out / name}", file=sys.stderr)
    RECORDING.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(args.out / "denoiser_blobs" / "metrics.jsonl", RECORDING)
    print(f"wrote {RECORDING}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
