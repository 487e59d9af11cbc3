"""What holding a loaded run costs before any parsing: the first write to each page of fresh memory.

    python -m benchmarks.bench_first_touch [--data DIR] [--lines 1000000] [--repeat 5]

The ingest floor (bench_ingest: orjson parses every line and keeps nothing) never touches fresh memory;
`summary` and `termmon.load` keep every record in columns. On this box (a VM whose memory the host backs
on first use) the first write to a page costs far more than writing it again, so part of the gap to the
floor is the price of keeping the data, whatever parses it. This benchmark measures that part:

* the bytes of the columns a loaded run holds (``load_runs``: the run table and each metric's rows and
  values, as filled);
* a fresh process writing that many bytes into a fresh buffer twice: the first pass (page faults
  included) and the second (the same pages, already there), median of ``--repeat``;
* the floor's wall time on the same file in the same run, for scale.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from benchmarks.bench_ingest import FLOOR, ensure_run, run_measured

HELD = """
import json, sys
from termmon.loading import load_runs
run = load_runs([sys.argv[1]], progress=False)[0]
table = (run.time, run.step, run.epoch, run.kind, run.event)
held = sum(c.view.nbytes for c in table)
held += sum(m.rows.view.nbytes + m.values.view.nbytes for m in run.metrics.values())
print(json.dumps({"bytes": held, "records": run.records}))
"""
TOUCH = """
import json, sys, time
import numpy as np
buf = np.empty(int(sys.argv[1]) // 8)
t0 = time.perf_counter(); buf[:] = 1.0; first = time.perf_counter() - t0
t0 = time.perf_counter(); buf[:] = 2.0; again = time.perf_counter() - t0
print(json.dumps({"first": first, "again": again}))
"""


def _json_of(code: str, *args: str) -> dict[str, float]:
    out = subprocess.run([sys.executable, "-c", code, *args], check=True, capture_output=True, text=True)
    return dict(json.loads(out.stdout))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, help="where the benchmark run is (written if missing)")
    parser.add_argument("--lines", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        run_dir = ensure_run(args.data or Path(scratch), args.lines)
        held = _json_of(HELD, str(run_dir))
        first, again, floor = [], [], []
        for _ in range(args.repeat):
            touch = _json_of(TOUCH, str(int(held["bytes"])))
            first.append(touch["first"])
            again.append(touch["again"])
            floor.append(run_measured([sys.executable, "-c", FLOOR, str(run_dir / "metrics.jsonl")]).wall)
    mib = held["bytes"] / 2**20
    touch_first, touch_again, floor_wall = (statistics.median(x) for x in (first, again, floor))
    print(f"{int(held['records']):,} records; median of {args.repeat}\n")
    print("| measure | time | per MiB | share of the floor's wall |\n|---|---:|---:|---:|")
    print(f"| floor (orjson, keeps nothing) | {floor_wall:.2f} s | | 1.00 |")
    for label, seconds in (("first write", touch_first), ("second write", touch_again)):
        print(
            f"| {label} of the {mib:.0f} MiB of columns the loaded run holds | {seconds * 1e3:.0f} ms "
            f"| {seconds / mib * 1e3:.2f} ms | {seconds / floor_wall:.2f} |"
        )


if __name__ == "__main__":
    main()
