"""Alert evaluation cost on the 1M-line benchmark run (docs/performance.md).

    python -m benchmarks.bench_alerts [--lines 1000000] [--run-dir DIR]

One pass: a fresh AlertEngine over the whole run, next to two floors measured here: reading the run
(``load_runs``, the ingest path) and one numpy pass that gathers every metric's points and tests them
for finiteness (the least any detector over all series must touch). Incremental: 1,000 new step records
on the run already holding ``--lines``, engine update next to ``Run.add`` of the same batch. Records
carry ``--layers`` per-tensor gradient norms (default 8), so the per-layer vanishing check is measured.
Run it at two ``--lines`` to see that an update's cost does not grow with the run. Live refresh: the
monitor's case, a few new records per update on a small run, where per-call overhead, not the points,
is the cost.
"""

from __future__ import annotations

import argparse
import random
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from benchmarks.generate import step_record, write_benchmark_run
from termmon.analysis.alerts import AlertEngine
from termmon.analysis.alerts.points import read_points
from termmon.ingest.batch import build_batch
from termmon.loading import load_runs
from termmon.model.run import Run

NEW_POINTS = 1000
#: A live refresh: a run logging 20 records a second, read ~5 times a second, on a run of LIVE_HISTORY.
LIVE_RECORDS = 4
LIVE_HISTORY = 2000
LIVE_ROUNDS = 300


def _best(fn: Callable[[], object], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def _touch_all(run: Run) -> int:
    bad = 0
    for name in run.metrics:
        points = read_points(run, name)
        assert points is not None
        bad += int(np.count_nonzero(~np.isfinite(points.value)))
    return bad


def timed_updates(
    run: Run, engine: AlertEngine, *, batch: int, rounds: int, layers: int, seed: int
) -> tuple[float, float]:
    """Median engine update and median ``Run.add`` for ``batch`` new records, ``rounds`` times over."""
    rng = random.Random(seed)
    step = (run.last_step or 0) + 1
    add_s, update_s = [], []
    for _ in range(rounds):
        records = build_batch([step_record(i, rng, layers) for i in range(step, step + batch)])
        step += batch
        t0 = time.perf_counter()
        run.add(records)
        add_s.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        engine.update(run, now=run.last_time)
        update_s.append(time.perf_counter() - t0)
    return statistics.median(update_s), statistics.median(add_s)


def live_refresh(layers: int) -> tuple[float, float]:
    """Median engine update and ``Run.add`` for LIVE_RECORDS new records, LIVE_ROUNDS times over."""
    with tempfile.TemporaryDirectory() as tmp:
        write_benchmark_run(Path(tmp) / "live", LIVE_HISTORY, finished=False, layers=layers)
        [run] = load_runs([str(Path(tmp) / "live")], progress=False)
    engine = AlertEngine()
    engine.update(run, now=run.last_time)
    return timed_updates(run, engine, batch=LIVE_RECORDS, rounds=LIVE_ROUNDS, layers=layers, seed=2)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--lines", type=int, default=1_000_000)
    parser.add_argument("--run-dir", type=Path, help="reuse (or create) the benchmark run here")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--layers", type=int, default=8, help="per-tensor gradient norms per record")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        run_dir = args.run_dir or Path(tmp) / "bench"
        if not (run_dir / "metrics.jsonl").exists():
            write_benchmark_run(run_dir, args.lines, finished=False, layers=args.layers)
        t0 = time.perf_counter()
        [run] = load_runs([str(run_dir)], progress=False)
        load_s = time.perf_counter() - t0
    now = run.last_time
    records, metrics = run.records, len(run.metrics)
    points = sum(len(c.values) for c in run.metrics.values())

    floor_s = _best(lambda: _touch_all(run), args.rounds)
    one_pass_s = _best(lambda: AlertEngine().update(run, now=now), max(1, args.rounds - 2))

    engine = AlertEngine()
    engine.update(run, now=now)
    upd, add = timed_updates(run, engine, batch=NEW_POINTS, rounds=args.rounds, layers=args.layers, seed=1)

    print(f"Run: {records:,} records, {metrics} metrics, {points:,} points\n")
    print("| measurement | time | floor (same run) | ratio |")
    print("|---|---|---|---|")
    print(f"| read the run (`load_runs`) | {load_s:.2f} s | | |")
    print(
        f"| alerts, one pass over {args.lines:,} lines | {one_pass_s:.2f} s | gather + isfinite of every metric:"
        f" {floor_s:.3f} s | {one_pass_s / floor_s:.1f}x |"
    )
    print(
        f"| alerts, {NEW_POINTS:,} new records on a {args.lines:,}-line run (median of {args.rounds}) |"
        f" {upd * 1e3:.1f} ms | `Run.add` of the same batch: {add * 1e3:.1f} ms | {upd / add:.1f}x |"
    )
    upd, add = live_refresh(args.layers)
    print(
        f"| alerts, live refresh: {LIVE_RECORDS} new records on a {LIVE_HISTORY:,}-record run (median of "
        f"{LIVE_ROUNDS}) | {upd * 1e6:.0f} µs | `Run.add` of the same batch: {add * 1e6:.0f} µs | "
        f"{upd / add:.1f}x |"
    )


if __name__ == "__main__":
    main()
