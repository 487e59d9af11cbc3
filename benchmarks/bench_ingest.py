"""Ingest benchmark: `termmon summary` on a big run against the floor, latency, and idle cost.

    python -m benchmarks.bench_ingest [--lines 1000000] [--repeat 3]

* floor: a fresh process that reads the same metrics.jsonl and parses every line with orjson (the
  fastest JSON parser installed), doing nothing else.
* `termmon summary --json` on the same run, in a fresh process: wall time and peak RSS.
  The two are interleaved, ``--repeat`` times each, and the medians compared.
* latency from appending a line to the model holding it, via filesystem events and via polling.
* CPU used while idle with 100 runs watched (events mode, with the backstop stat poll).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from benchmarks.generate import write_benchmark_run

FLOOR = """
import sys, orjson
loads = orjson.loads
with open(sys.argv[1], "rb") as fh:
    for line in fh:
        loads(line)
"""


def run_measured(argv: list[str]) -> tuple[float, float]:
    """(wall seconds, peak RSS MiB) of a child process, stdout discarded."""
    started = time.perf_counter()
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - started
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"{argv} failed with {proc.returncode}")
    return wall, usage.ru_maxrss / 1024


def bench_summary(run_dir: Path, repeat: int) -> dict[str, float]:
    floor_walls, walls, rss = [], [], []
    for _ in range(repeat):
        floor_walls.append(run_measured([sys.executable, "-c", FLOOR, str(run_dir / "metrics.jsonl")])[0])
        wall, peak = run_measured([sys.executable, "-m", "termmon", "summary", "--json", str(run_dir)])
        walls.append(wall)
        rss.append(peak)
    return {
        "floor_s": statistics.median(floor_walls),
        "summary_s": statistics.median(walls),
        "summary_rss_mib": max(rss),
    }


def bench_latency(poll: float | None, appends: int = 20) -> list[float]:
    from termmon.ingest.watch import ChangeWatcher
    from termmon.model.workspace import Workspace

    with tempfile.TemporaryDirectory() as tmp:
        run_dir = Path(tmp) / "run"
        run_dir.mkdir()
        path = run_dir / "metrics.jsonl"
        path.write_text(json.dumps({"event": "step", "step": 0, "train_loss": 1.0}) + "\n")
        workspace = Workspace([str(run_dir)])
        workspace.refresh()
        run = workspace.runs[run_dir.resolve()]
        seen = threading.Condition()

        def on_change() -> None:
            workspace.refresh()
            with seen:
                seen.notify_all()

        latencies = []
        with ChangeWatcher(workspace.roots, on_change, poll_interval=poll):
            time.sleep(0.3)
            for i in range(1, appends + 1):
                started = time.perf_counter()
                with open(path, "a") as fh:
                    fh.write(json.dumps({"event": "step", "step": i, "train_loss": 1.0 / i}) + "\n")
                with seen:
                    seen.wait_for(lambda i=i: run.last_step == i, timeout=10)
                latencies.append(time.perf_counter() - started)
                time.sleep(0.05)
        workspace.close()
        return latencies


def bench_idle(runs: int = 100, seconds: float = 10.0) -> float:
    from termmon.ingest.watch import ChangeWatcher
    from termmon.model.workspace import Workspace

    with tempfile.TemporaryDirectory() as tmp:
        for i in range(runs):
            write_benchmark_run(Path(tmp) / f"run{i:03d}", lines=100)
        workspace = Workspace([tmp])
        workspace.refresh()
        with ChangeWatcher(workspace.roots, workspace.refresh):
            time.sleep(1.0)
            cpu = time.process_time()
            time.sleep(seconds)
            used = time.process_time() - cpu
        workspace.close()
        return 100.0 * used / seconds


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--lines", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--data", type=Path, default=Path(tempfile.gettempdir()) / "termmon-bench")
    args = parser.parse_args()

    run_dir = args.data / f"run_{args.lines}"
    if not (run_dir / "metrics.jsonl").exists():
        print(f"writing {args.lines:,}-line benchmark run to {run_dir} ...", file=sys.stderr)
        write_benchmark_run(run_dir, args.lines)
    size_mb = (run_dir / "metrics.jsonl").stat().st_size / 1e6

    summary = bench_summary(run_dir, args.repeat)
    events = bench_latency(None)
    polling = bench_latency(0.5)
    idle = bench_idle()

    ratio = summary["summary_s"] / summary["floor_s"]
    print(f"### Ingest ({args.lines:,} lines, {size_mb:.0f} MB, median of {args.repeat})\n")
    print("| measure | termmon | floor | ratio |")
    print("|---|---|---|---|")
    print(
        f"| `termmon summary --json` wall | {summary['summary_s']:.2f} s | {summary['floor_s']:.2f} s | {ratio:.2f}x |"
    )
    print(f"| peak RSS of `termmon summary` | {summary['summary_rss_mib']:.0f} MiB | | |")
    for name, values in (("watchdog events", events), ("polling every 0.5 s", polling)):
        values = sorted(values)
        p95 = values[int(0.95 * (len(values) - 1))]
        print(
            f"| append -> model, {name} | median {statistics.median(values) * 1000:.0f} ms, p95 {p95 * 1000:.0f} ms | | |"
        )
    print(f"| CPU while idle, 100 runs watched | {idle:.2f}% of one core | | |")


if __name__ == "__main__":
    main()
