"""Write termmon run directories' records again as W&B offline runs, for the first-frame rival rows.

    WANDB_VENV/bin/python benchmarks/wandb_offline_runs.py SOURCE_ROOT WANDB_DIR [--max-steps N]

Run by the python of a separate venv that has wandb (the project does not depend on it), so this file
imports nothing from termmon: it reads each ``metrics.jsonl`` under SOURCE_ROOT with the standard
library and logs every numeric field of its step and epoch records with ``run.log(..., step=step)``,
one ``wandb.init(mode="offline")`` per run directory, into WANDB_DIR/wandb/offline-run-*. The metric
names and steps are the same as termmon reads, so both viewers draw the same data. Records that share a
step are merged into one row (wandb's history has one row per step); a step lower than the last one is
dropped (wandb refuses them too). ``--max-steps`` keeps the first N rows of each run, for runs too long
to log in reasonable time.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

# Event records that carry no chart data (start/end/alerts); everything else with a step is a row.
SKIP_EVENTS = frozenset({"start", "end", "alert", "control"})
SKIP_KEYS = frozenset({"event", "time", "step", "run_name"})


def rows(metrics: Path, max_steps: int | None) -> Iterator[tuple[int, dict[str, float]]]:
    """(step, numeric fields) in file order, records of one step merged, at most ``max_steps`` rows."""
    current: int | None = None
    row: dict[str, float] = {}
    count = 0
    with open(metrics, encoding="utf-8") as fh:
        for line in fh:
            try:
                record = json.loads(line)
            except ValueError:
                continue
            if not isinstance(record, dict) or record.get("event") in SKIP_EVENTS:
                continue
            step = record.get("step")
            if not isinstance(step, int) or isinstance(step, bool):
                continue
            values = {
                k: float(v)
                for k, v in record.items()
                if k not in SKIP_KEYS
                and isinstance(v, int | float)
                and not isinstance(v, bool)
                and math.isfinite(v)
            }
            if current is not None and step < current:
                continue
            if step != current:
                if current is not None and row:
                    yield current, row
                    count += 1
                    if max_steps is not None and count >= max_steps:
                        return
                current, row = step, {}
            row.update(values)
    if current is not None and row:
        yield current, row


def log_run(wandb: Any, run_dir: Path, out: Path, max_steps: int | None) -> int:
    """One offline wandb run holding ``run_dir``'s rows; returns how many rows it logged."""
    run = wandb.init(
        mode="offline",
        dir=str(out),
        project="termmon-bench",
        name=run_dir.name,
        settings=wandb.Settings(
            console="off", x_disable_stats=True, x_disable_meta=True, x_save_requirements=False
        ),
    )
    logged = 0
    for step, values in rows(run_dir / "metrics.jsonl", max_steps):
        run.log(values, step=step)
        logged += 1
    run.finish()
    return logged


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("source", type=Path, help="a run directory or a parent of run directories")
    parser.add_argument("out", type=Path, help="wandb's dir= (runs land in OUT/wandb/offline-run-*)")
    parser.add_argument("--max-steps", type=int, default=None)
    args = parser.parse_args()
    os.environ.setdefault("WANDB_SILENT", "true")
    os.environ["WANDB_MODE"] = "offline"
    import wandb  # only in the wandb venv that runs this script

    run_dirs = sorted(p.parent for p in args.source.rglob("metrics.jsonl"))
    if not run_dirs:
        print(f"no metrics.jsonl under {args.source}", file=sys.stderr)
        return 1
    args.out.mkdir(parents=True, exist_ok=True)
    total = sum(log_run(wandb, d, args.out, args.max_steps) for d in run_dirs)
    print(f"{len(run_dirs)} runs, {total} rows -> {args.out / 'wandb'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
