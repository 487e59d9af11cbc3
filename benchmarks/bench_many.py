"""Many runs: the time to list 1,000 runs, idle CPU with 100 and 1,000 runs, 100 runs appending live.

* listing: in-process (``App.run_test`` at 120x35, Pilot), from building the workspace to the run
  picker holding every run; the floor is discovery alone (``find_runs`` over the same tree).
* idle and live CPU: a real ``termmon`` process in a tmux pane (120x35), its utime+stime read from
  /proc/PID/stat over ``CPU_SECONDS`` once loading is over; the floor is a bare Textual app measured
  the same way. Live: a separate writer process appends ``LIVE_RATE`` lines/s to each of 100 runs,
  with filesystem events and with ``--poll 1``.

Run: ``python -m benchmarks.bench_many`` (about five minutes; ``--quick`` for 10 s windows).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.generate import write_benchmark_run
from benchmarks.tmux import Pane, cpu_percent
from termmon.ingest.discovery import find_runs
from termmon.model.workspace import Workspace
from termmon.views.app import MonitorApp
from termmon.views.widgets.run_picker import RunPicker

CPU_SECONDS = 20.0
LIVE_RATE = 50
RECORDS = 1000
BARE_APP = "from textual.app import App\nfrom textual.widgets import Footer, Static\n" + (
    "class Bare(App):\n    def compose(self):\n        yield Static('idle')\n        yield Footer()\nBare().run()\n"
)
WRITER = """
import sys, time, json
paths = sys.argv[2:]
rate = float(sys.argv[1])
fhs = [open(p, "a", buffering=1) for p in paths]
step = 10**6
t0 = time.monotonic()
n = 0
while True:
    n += 1
    for fh in fhs:
        fh.write(json.dumps({"event": "step", "time": time.time(), "step": step + n, "train/loss": 1.0 / n}) + "\\n")
    delay = t0 + n / rate - time.monotonic()
    if delay > 0:
        time.sleep(delay)
"""


def make_runs(root: Path, count: int, *, finished: bool) -> Path:
    for i in range(count):
        write_benchmark_run(root / f"run_{i:04d}", RECORDS, seed=i, finished=finished)
    return root


async def _listing(root: Path, count: int) -> tuple[float, float]:
    t0 = time.perf_counter()
    workspace = Workspace([str(root)])
    app = MonitorApp(workspace, live=True)
    listed = math_nan = float("nan")
    async with app.run_test(size=(120, 35)) as pilot:
        while len(app.query_one(RunPicker).paths) < count:
            await pilot.pause(0.01)
        listed = time.perf_counter() - t0
        while not app.loaded:
            await pilot.pause(0.01)
        loaded = time.perf_counter() - t0 if app.loaded else math_nan
        await pilot.press("q")
    workspace.close()
    return listed, loaded


def discovery_floor(root: Path) -> float:
    t0 = time.perf_counter()
    find_runs(root)
    return time.perf_counter() - t0


#: Consecutive 2 s windows under the settle threshold that mean loading is over: loading 1,000 runs
#: (~20 s at 20-45 % of a core) dips under 10 % for a single window now and then, and one window let the
#: idle measure start inside the load (18 % "idle" in one run, 0.3-2.0 % once loaded).
SETTLED_WINDOWS = 3


def tmux_cpu(command: list[str], seconds: float, settle_below: float = 10.0) -> float:
    """% of a core used by ``command`` in a 120x35 tmux pane, once it has settled
    (:data:`SETTLED_WINDOWS` 2 s windows in a row under ``settle_below`` %, so loading is over)."""
    with Pane(command) as pane:
        deadline = time.monotonic() + 180
        calm = 0
        while time.monotonic() < deadline and calm < SETTLED_WINDOWS:
            calm = calm + 1 if cpu_percent(pane.pid, 2.0)[0] < settle_below else 0
        return cpu_percent(pane.pid, seconds)[0]


def termmon_command(root: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "termmon", str(root), *extra]


def live_cpu(root: Path, seconds: float, *extra: str) -> float:
    files = sorted(str(p / "metrics.jsonl") for p in root.iterdir())
    writer = subprocess.Popen([sys.executable, "-c", WRITER, str(LIVE_RATE), *files])
    try:
        # Settled while writing: loading is over when CPU falls under 60 % of a core.
        return tmux_cpu(termmon_command(root, *extra), seconds, settle_below=60.0)
    finally:
        writer.kill()
        writer.wait()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="10 s CPU windows instead of 20 s")
    seconds = 10.0 if parser.parse_args().quick else CPU_SECONDS
    base = Path(tempfile.mkdtemp(prefix="termmon-many-"))
    try:
        many = make_runs(base / "r1000", 1000, finished=False)
        hundred = make_runs(base / "r100", 100, finished=False)
        live = make_runs(base / "live", 100, finished=False)
        time.sleep(2.5)  # the files' mtimes are past the "just modified" window
        floor = discovery_floor(many)
        listed, loaded = asyncio.run(_listing(many, 1000))
        bare = tmux_cpu([sys.executable, "-c", BARE_APP], seconds)
        idle100 = tmux_cpu(termmon_command(hundred), seconds)
        idle1000 = tmux_cpu(termmon_command(many), seconds)
        events = live_cpu(live, seconds)
        polling = live_cpu(live, seconds, "--poll", "1")
    finally:
        shutil.rmtree(base, ignore_errors=True)
    print(
        f"{RECORDS:,} records a run; CPU over {seconds:g} s windows; {os.cpu_count()} cores, load {os.getloadavg()[0]:.1f}\n"
    )
    print("| measure | termmon | floor | floor is |")
    print("|---|---:|---:|---|")
    print(
        f"| 1,000 runs listed in the picker (Pilot, in-process) | {listed:.2f} s | {floor:.2f} s | find_runs over the same tree |"
    )
    print(
        f"| 1,000 runs all loaded (Pilot, in-process) | {loaded:.2f} s | {floor:.2f} s | find_runs over the same tree |"
    )
    print(f"| idle CPU, 100 open runs (tmux) | {idle100:.2f} % | {bare:.2f} % | a bare Textual app |")
    print(f"| idle CPU, 1,000 open runs (tmux) | {idle1000:.2f} % | {bare:.2f} % | a bare Textual app |")
    print(
        f"| 100 runs x {LIVE_RATE} lines/s, filesystem events (tmux) | {events:.1f} % | {bare:.2f} % | a bare Textual app |"
    )
    print(
        f"| 100 runs x {LIVE_RATE} lines/s, --poll 1 (tmux) | {polling:.1f} % | {bare:.2f} % | a bare Textual app |"
    )


if __name__ == "__main__":
    main()
