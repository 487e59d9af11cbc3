"""Regenerate ``demo_runs/`` and the demo's replay recording from real CPU trainings.

    python scripts/make_demo_runs.py [--out demo_runs]

Weight snapshots are off: the shipped runs stay a few hundred KB each.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

from termmon.demo.live import RECORDING
from termmon.demo.training import DEMO_TRAININGS, write_demo_runs


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("demo_runs"))
    args = parser.parse_args(argv)
    for name in DEMO_TRAININGS:
        shutil.rmtree(args.out / name, ignore_errors=True)
    for name in write_demo_runs(args.out):
        print(f"wrote {args.out / name}", file=sys.stderr)
    RECORDING.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(args.out / "denoiser_blobs" / "metrics.jsonl", RECORDING)
    print(f"wrote {RECORDING}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
