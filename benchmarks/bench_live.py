"""Live cost: CPU of a real monitor process watching runs that are being written (docs/performance.md).

    python -m benchmarks.bench_live [--runs 20] [--rate 20] [--seconds 20] [--profile FILE]

``--runs`` run directories each get ``--rate`` step records a second (and an epoch record with a test
loss every 100 steps) from a writer subprocess, so the writer's CPU is not the monitor's. ``termmon ROOT`` runs in a
tmux pane at 120x35 (a real terminal, so the compositor's output is part of the cost); its CPU is read
from /proc/PID/stat (all threads) over ``--seconds`` once the first frame is up and a settle time has
passed. The floor is a bare Textual app in the same pane, measured the same way while the same writer
runs. ``--baseline DIR`` also measures the monitor of another checkout (its termmon package; same
interpreter), interleaved round by round with this one. ``--profile FILE`` runs the monitor under cProfile instead and writes FILE (for finding the cost).
"""

from __future__ import annotations

import argparse
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.generate import step_record
from benchmarks.tmux import Pane, cpu_percent, cpu_seconds, have_tmux
from termmon.format import encode_record

BARE_APP = (
    "from textual.app import App\nfrom textual.widgets import Footer, Static\n"
    "class Bare(App):\n    def compose(self):\n        yield Static('bare idle app')\n        yield Footer()\n"
    "Bare().run()\n"
)
HISTORY = 200  # steps each run holds before the measurement, so charts have something to draw


def write_runs(root: Path, runs: int, rate: float) -> None:
    """The writer subprocess: ``runs`` trainers appending ``rate`` step records a second, until killed."""
    rng = random.Random(0)
    files = []
    for i in range(runs):
        run_dir = root / f"run{i:03d}"
        run_dir.mkdir(parents=True, exist_ok=True)
        fh = open(run_dir / "metrics.jsonl", "a")  # noqa: SIM115 - held open for the writer's life
        start = {"event": "start", "time": time.time() - HISTORY / rate, "run_name": run_dir.name, "step": 0}
        fh.write(encode_record(start) + "\n")
        files.append(fh)
    step = 0

    def write_step() -> None:
        nonlocal step
        step += 1
        now = time.time()
        for fh in files:
            record = step_record(step, rng, layers=4)
            record["time"] = now
            fh.write(encode_record(record) + "\n")
            if step % 100 == 0:
                epoch = {
                    "event": "epoch",
                    "time": now,
                    "step": step,
                    "epoch": step // 100,
                    "train/loss": record["train_loss"],
                    "test/loss": 1.0 + rng.random(),
                }
                fh.write(encode_record(epoch) + "\n")
            fh.flush()

    for _ in range(HISTORY):
        write_step()
    print("ready", flush=True)
    period = 1.0 / rate
    deadline = time.monotonic()
    while True:
        deadline += period
        time.sleep(max(0.0, deadline - time.monotonic()))
        write_step()


def measure(
    command: list[str], needle: str, settle: float, seconds: float, cwd: Path | None = None
) -> tuple[float, float]:
    """Percent of a core ``command`` uses over ``seconds`` after ``needle`` appears and ``settle`` s: the
    whole process, and its main thread alone (Textual's event loop: alerts, layout, drawing)."""
    with Pane(command, cwd=cwd) as pane:
        pane.wait_for(needle)
        time.sleep(settle)
        return cpu_percent(pane.pid, seconds)


def profile(root: Path, out: Path, seconds: float) -> None:
    """The monitor under cProfile for ``seconds`` of steady state, quit with ``q`` so the profile is written.
    cProfile sees the UI thread only: alerts and drawing, not the ingest thread's parsing."""
    here = Path(__file__).resolve().parents[1]
    command = [sys.executable, "-m", "cProfile", "-o", str(out), "-m", "termmon", str(root)]
    with Pane(command, cwd=here) as pane:
        pane.wait_for("run000")
        time.sleep(seconds)
        pane.keys("q")
        deadline = time.monotonic() + 60
        while Path(f"/proc/{pane.pid}").exists() and time.monotonic() < deadline:
            time.sleep(0.2)  # until the process has written the profile and exited


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--rate", type=float, default=20.0, help="step records a second, per run")
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--settle", type=float, default=5.0)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--profile", type=Path)
    parser.add_argument(
        "--baseline", type=Path, help="another checkout (e.g. main's worktree): its monitor is measured too"
    )
    parser.add_argument("--write", type=Path, help=argparse.SUPPRESS)  # the writer subprocess
    args = parser.parse_args()
    if args.write is not None:
        write_runs(args.write, args.runs, args.rate)
        return
    if not have_tmux():
        sys.exit("bench_live needs tmux")
    root = Path(tempfile.mkdtemp(prefix="termmon-live-"))
    writer = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "benchmarks.bench_live",
            "--write",
            str(root),
            "--runs",
            str(args.runs),
            "--rate",
            str(args.rate),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert writer.stdout is not None
        assert writer.stdout.readline().strip() == "ready"
        if args.profile is not None:
            profile(root, args.profile.resolve(), args.seconds)
            return
        here = Path(__file__).resolve().parents[1]
        monitor = [sys.executable, "-m", "termmon", str(root)]  # python -m: the termmon of the pane's cwd
        rows = []
        for _ in range(args.rounds):
            bare, _ = measure([sys.executable, "-c", BARE_APP], "bare idle app", args.settle, args.seconds)
            w0, t0 = cpu_seconds(writer.pid), time.monotonic()
            mon = measure(monitor, "run000", args.settle, args.seconds, here)
            wrote = (cpu_seconds(writer.pid) - w0) / (time.monotonic() - t0) * 100
            base = None
            if args.baseline is not None:
                base = measure(monitor, "run000", args.settle, args.seconds, args.baseline.resolve())
            rows.append((mon, base, bare, wrote))
        print(
            f"{args.runs} runs x {args.rate:g} records/s, tmux pane 120x35, CPU over {args.seconds:g} s "
            f"after {args.settle:g} s settle (% of one core; in brackets the main thread: alerts and drawing)\n"
        )
        print("| round | termmon | baseline checkout | floor: bare Textual app | writer (not counted) |")
        print("|---|---:|---:|---:|---:|")
        for i, (mon, base, bare, wrote) in enumerate(rows, 1):
            shown = f"{base[0]:.1f} % ({base[1]:.1f} %)" if base is not None else "-"
            print(f"| {i} | {mon[0]:.1f} % ({mon[1]:.1f} %) | {shown} | {bare:.1f} % | {wrote:.1f} % |")
    finally:
        writer.kill()
        writer.wait()
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
