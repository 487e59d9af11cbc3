"""Ingest benchmark: `termmon summary` and `termmon.load` on big runs against the floor, latency, idle cost.

    python -m benchmarks.bench_ingest [--lines 1000000] [--repeat 3] [--sizes 10000 100000 1000000 5000000]
        [--against /path/to/checkout/before] [--columnar /path/to/python]

* floor: a fresh process that reads the same metrics.jsonl and parses every line with orjson (the
  fastest JSON parser installed), doing nothing else.
* floor with pandas: the same, after ``import pandas``: what any reader that returns a DataFrame pays in
  a fresh process (a notebook has paid it already), the floor ``termmon.load`` is held to.
* `termmon summary --json`, `termmon.load` (the DataFrame) and `termmon.loading.load_runs` (the runs,
  no DataFrame) on the same run, each in a fresh process: wall time and peak RSS of the process and its
  ingest workers together (the sum of each process's own peak, read from /proc while they run).
  `summary` also with TERMMON_INGEST_WORKERS=0 (one process), the way it read before the split.
  Every measure is interleaved with the floor, ``--repeat`` times, and the medians compared; the
  ratio per round divides each run by the floor's run of the same round (the box drifts between rounds).
  ``--against DIR``: `summary`, `termmon.load` and `load_runs` of another checkout (the code before a
  change) too, in turn with the rest, so before and after meet the same load on a shared box.
* ``--columnar PYTHON``: an interpreter with pyarrow and polars installed (a venv of its own: they are
  not termmon's dependencies) reads the same file into columns with ``pyarrow.json.read_json`` and
  ``polars.read_ndjson``, in turn with the rest: what a C++ or Rust columnar reader on every core costs.
* a scaling table over ``--sizes``: the same figures per record count, to show linear growth.
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
from dataclasses import dataclass
from pathlib import Path

from benchmarks.generate import write_benchmark_run

FLOOR = """
import sys, orjson
loads = orjson.loads
with open(sys.argv[1], "rb") as fh:
    for line in fh:
        loads(line)
"""
FLOOR_PANDAS = "import pandas" + FLOOR
PYARROW = """
import sys
import pyarrow.json as pj
pj.read_json(sys.argv[1], parse_options=pj.ParseOptions(unexpected_field_behavior="infer"))
"""
POLARS = "import sys, polars; polars.read_ndjson(sys.argv[1], infer_schema_length=None)"
LOAD = "import sys, termmon; termmon.load(sys.argv[1])"
LOAD_RUNS = "import sys; from termmon.loading import load_runs; load_runs([sys.argv[1]], progress=False)"
SAMPLE_SECONDS = 0.005


def _tree(pid: int) -> list[int]:
    """``pid`` and its descendants (ingest workers are its children)."""
    found, todo = [], [pid]
    while todo:
        p = todo.pop()
        found.append(p)
        try:
            with open(f"/proc/{p}/task/{p}/children") as fh:
                todo.extend(int(c) for c in fh.read().split())
        except OSError:
            continue
    return found


def _memory_kib(pid: int) -> tuple[int, int] | None:
    """(resident now, peak resident) of ``pid``, KiB."""
    found = {}
    try:
        with open(f"/proc/{pid}/status") as fh:
            for line in fh:
                if line.startswith(("VmRSS:", "VmHWM:")):
                    found[line[:5]] = int(line.split()[1])
    except OSError:
        return None
    return (found["VmRSS"], found["VmHWM"]) if len(found) == 2 else None


def _cpu_seconds(pid: int) -> float | None:
    """User + system CPU seconds ``pid`` has used so far."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            fields = fh.read().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@dataclass
class Measured:
    wall: float  # seconds from start to exit
    rss: float  # MiB: the most the caller and its workers held together (sampled sum of VmRSS)
    rss_bound: float  # MiB: the sum of each process's own peak (VmHWM), as if all peaked at once
    cpu: float  # CPU seconds of the caller alone: its critical path when a core is free for each worker
    cpu_all: float  # CPU seconds of the caller and its workers
    #: wall / the floor's wall of the same round, per round: the box's speed drifts between rounds (±20%
    #: within minutes), and a ratio taken within one round is the figure that drift moves least.
    round_ratios: tuple[float, ...] = ()


def run_measured(argv: list[str], env: dict[str, str] | None = None) -> Measured:
    """Runs a command (stdout discarded), reading /proc every few ms while it and its workers live.

    On this loaded box wall time depends on what else runs; the caller's CPU seconds do much less, and
    they are what the wall time would be with a core free for each worker.
    """
    started = time.perf_counter()
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, env=env)
    peaks: dict[int, int] = {}
    cpus: dict[int, float] = {}
    together = 0
    while proc.poll() is None:
        now = 0
        for pid in _tree(proc.pid):
            memory = _memory_kib(pid)
            cpu = _cpu_seconds(pid)
            if memory is not None:
                now += memory[0]
                peaks[pid] = max(peaks.get(pid, 0), memory[1])
            if cpu is not None:
                cpus[pid] = max(cpus.get(pid, 0.0), cpu)
        together = max(together, now)
        time.sleep(SAMPLE_SECONDS)
    wall = time.perf_counter() - started
    if proc.returncode != 0:
        raise SystemExit(f"{argv} failed with {proc.returncode}")
    caller_peak = peaks.get(proc.pid, 0)  # its true peak, which a sample may have missed
    return Measured(
        wall,
        max(together, caller_peak) / 1024,
        sum(peaks.values()) / 1024,
        cpus.get(proc.pid, 0.0),
        sum(cpus.values()),
    )


def bench_commands(
    run_dir: Path,
    repeat: int,
    *,
    one_process: bool = True,
    against: Path | None = None,
    columnar: Path | None = None,
) -> dict[str, Measured]:
    """Per command: median wall and CPU seconds, the largest peak RSS; interleaved with the floor.
    ``against``: another checkout whose `summary`, `load` and `load_runs` run in turn with these
    (``before``). ``columnar``: an interpreter that runs the pyarrow and polars readers."""
    path = str(run_dir / "metrics.jsonl")
    single = {**os.environ, "TERMMON_INGEST_WORKERS": "0"}
    commands: dict[str, tuple[list[str], dict[str, str] | None]] = {
        "floor": ([sys.executable, "-c", FLOOR, path], None),
        "floor_pandas": ([sys.executable, "-c", FLOOR_PANDAS, path], None),
        "summary": ([sys.executable, "-m", "termmon", "summary", "--json", str(run_dir)], None),
        "load": ([sys.executable, "-c", LOAD, str(run_dir)], None),
        "load_runs": ([sys.executable, "-c", LOAD_RUNS, str(run_dir)], None),
    }
    if one_process:
        commands["summary_1p"] = (commands["summary"][0], single)
    if against is not None:
        # -P: the current directory does not go first on sys.path. Run from a checkout's root, its own
        # termmon was found there before PYTHONPATH's, and "before" measured that checkout again.
        before = {**os.environ, "PYTHONPATH": str(against)}
        for name in ("summary", "load", "load_runs"):
            argv = commands[name][0]
            commands[f"{name}_before"] = ([argv[0], "-P", *argv[1:]], before)
    if columnar is not None:
        commands["pyarrow"] = ([str(columnar), "-c", PYARROW, path], None)
        commands["polars"] = ([str(columnar), "-c", POLARS, path], None)
    runs: dict[str, list[Measured]] = {name: [] for name in commands}
    for _ in range(repeat):
        for name, (argv, env) in commands.items():
            runs[name].append(run_measured(argv, env))
    return {
        name: Measured(
            statistics.median(m.wall for m in got),
            max(m.rss for m in got),
            max(m.rss_bound for m in got),
            statistics.median(m.cpu for m in got),
            statistics.median(m.cpu_all for m in got),
            tuple(m.wall / f.wall for m, f in zip(got, runs["floor"], strict=True)),
        )
        for name, got in runs.items()
    }


def round_ratio(m: Measured) -> str:
    """The median of the per-round wall ratios, and their range."""
    r = m.round_ratios
    return f"{statistics.median(r):.2f}x ({min(r):.2f}-{max(r):.2f})" if r else ""


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


def ensure_run(data: Path, lines: int) -> Path:
    run_dir = data / f"run_{lines}"
    if not (run_dir / "metrics.jsonl").exists():
        print(f"writing {lines:,}-line benchmark run to {run_dir} ...", file=sys.stderr)
        write_benchmark_run(run_dir, lines)
    return run_dir


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--lines", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--sizes", type=int, nargs="*", default=[10_000, 100_000, 1_000_000, 5_000_000])
    parser.add_argument("--no-live", action="store_true", help="skip the latency and idle rows")
    parser.add_argument("--data", type=Path, default=Path(tempfile.gettempdir()) / "termmon-bench")
    parser.add_argument(
        "--against",
        type=Path,
        help="a checkout of the code before a change: its summary, load and load_runs too",
    )
    parser.add_argument(
        "--columnar",
        type=Path,
        help="a Python with pyarrow and polars: their columnar JSON readers on the same file too",
    )
    args = parser.parse_args()

    run_dir = ensure_run(args.data, args.lines)
    size_mb = (run_dir / "metrics.jsonl").stat().st_size / 1e6
    figures = bench_commands(run_dir, args.repeat, against=args.against, columnar=args.columnar)
    floor = figures["floor"]
    print(f"### Ingest ({args.lines:,} lines, {size_mb:.0f} MB, median of {args.repeat})\n")
    print(
        "| measure | wall | ratio | ratio per round (range) | caller CPU | ratio | CPU, with workers "
        "| peak RSS, with workers | sum of each one's peak |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    labels = {
        "floor": "floor (orjson, one process)",
        "floor_pandas": "floor with pandas imported first",
        "summary": "`termmon summary --json`",
        "summary_1p": "`termmon summary --json`, one process",
        "load": "`termmon.load` (DataFrame)",
        "load_runs": "`load_runs` (runs)",
    }
    if args.against is not None:
        labels["summary_before"] = f"`termmon summary --json`, {args.against}"
        labels["load_before"] = f"`termmon.load` (DataFrame), {args.against}"
        labels["load_runs_before"] = f"`load_runs`, {args.against}"
    if args.columnar is not None:
        labels["pyarrow"] = "`pyarrow.json.read_json` (columns, every core)"
        labels["polars"] = "`polars.read_ndjson` (columns, every core)"
    for name, label in labels.items():
        m = figures[name]
        print(
            f"| {label} | {m.wall:.2f} s | {m.wall / floor.wall:.2f}x | {round_ratio(m)} | {m.cpu:.2f} s | "
            f"{m.cpu / floor.cpu:.2f}x | {m.cpu_all:.2f} s | {m.rss:.0f} MiB | {m.rss_bound:.0f} MiB |"
        )
    if not args.no_live:
        events = bench_latency(None)
        polling = bench_latency(0.5)
        idle = bench_idle()
        for name, values in (("watchdog events", events), ("polling every 0.5 s", polling)):
            values = sorted(values)
            p95 = values[int(0.95 * (len(values) - 1))]
            print(
                f"| append -> model, {name} | median {statistics.median(values) * 1000:.0f} ms, p95 {p95 * 1000:.0f} ms | | | |"
            )
        print(f"| CPU while idle, 100 runs watched | {idle:.2f}% of one core | | | |")
    with_pandas = figures["floor_pandas"]
    print(
        f"\n`termmon.load` against the floor with pandas: {figures['load'].wall / with_pandas.wall:.2f}x wall, "
        f"{figures['load'].cpu / with_pandas.cpu:.2f}x caller CPU"
    )

    if args.sizes:
        print(f"\n### Scaling (median of {args.repeat}; RSS: the caller and its workers)\n")
        print(
            "| records | MB | floor wall / CPU | summary wall / caller CPU | ratios | summary RSS "
            "| load_runs wall / caller CPU | ratios | load_runs RSS |"
        )
        print("|---|---|---|---|---|---|---|---|---|")
        for lines in args.sizes:
            sized = ensure_run(args.data, lines)
            mb = (sized / "metrics.jsonl").stat().st_size / 1e6
            got = figures if lines == args.lines else bench_commands(sized, args.repeat, one_process=False)
            row = [f"{lines:,}", f"{mb:.0f}", f"{got['floor'].wall:.2f} / {got['floor'].cpu:.2f} s"]
            for name in ("summary", "load_runs"):
                m = got[name]
                row += [
                    f"{m.wall:.2f} / {m.cpu:.2f} s",
                    f"{m.wall / got['floor'].wall:.2f}x / {m.cpu / got['floor'].cpu:.2f}x",
                    f"{m.rss:.0f} MiB",
                ]
            print("| " + " | ".join(row) + " |")


if __name__ == "__main__":
    main()
