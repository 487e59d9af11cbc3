"""Monitor benchmarks: first complete frame, redraw cost of a 1M-point panel, idle CPU, terminal bytes.

Each figure sits next to a floor measured in the same run: the ingest alone (``Workspace.refresh``)
for the first frame (drawn from each run's recent window while its history loads) and for the whole
history shown, a bare Textual app started the same way for the first frame from process start, a plain copy of the series for the redraw, an idle bare Textual app for CPU and
for the bytes a real terminal receives (``tmux pipe-pane`` on a 120x35 pane; skipped without tmux).
Run: ``python -m benchmarks.bench_tui`` (about two minutes).
"""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import psutil
from textual.app import App, ComposeResult
from textual.widgets import Static
from textual_plotext.plot import Plot

from benchmarks.tmux import terminal_bytes
from termmon.model.workspace import Workspace
from termmon.views.app import MonitorApp
from termmon.views.colors import RunColors
from termmon.views.panels import DIAGNOSTICS_PANELS, build_panel
from termmon.views.plotext_draw import build_chart, matrix_ansi
from termmon.views.widgets.chart import ChartPanel
from termmon.views.widgets.run_picker import RunPicker

IDLE_SECONDS = 10.0
BARE_APP = "from textual.app import App\nfrom textual.widgets import Footer, Static\n" + (
    "class Bare(App):\n    def compose(self):\n        yield Static('idle')\n        yield Footer()\nBare().run()\n"
)
DEMO_RUNS = Path(__file__).resolve().parents[1] / "demo_runs"


def write_big_run(run_dir: Path, lines: int = 1_000_000) -> None:
    run_dir.mkdir(parents=True)
    rng = np.random.default_rng(0)
    loss = np.exp(-np.arange(lines) / 2e5) + 0.05 * rng.random(lines)
    with open(run_dir / "metrics.jsonl", "w") as fh:
        fh.write('{"event":"start","time":1767225600.0,"step":0,"log_every":1}\n')
        for start in range(0, lines, 100_000):
            chunk = [
                f'{{"event":"step","time":{1767225600.0 + i * 0.01:.2f},"step":{i + 1},"train_loss":{loss[i]:.6f},'
                f'"lr":0.001,"grad_norm":{0.5 + loss[i]:.5f}}}\n'
                for i in range(start, min(lines, start + 100_000))
            ]
            fh.writelines(chunk)


def ingest_floor(root: Path) -> float:
    t0 = time.perf_counter()
    workspace = Workspace([str(root)])
    workspace.refresh()
    workspace.close()
    return time.perf_counter() - t0


async def _first_frame(root: Path) -> tuple[float, float]:
    """Seconds from creating the workspace to (the first frame: every run listed, every panel drawn,
    from the recent window if the history is still loading; the whole history shown)."""
    t0 = time.perf_counter()
    workspace = Workspace([str(root)])
    runs = len(workspace.run_dirs)
    app = MonitorApp(workspace, live=True)
    async with app.run_test(size=(120, 35)) as pilot:
        while not (
            app.query_one(RunPicker).option_count == runs
            and all(p.data is not None for p in app.query(ChartPanel))
        ):
            await pilot.pause(0.005)
        first = time.perf_counter() - t0
        while not (app.loaded and all(p.note is None for p in app.query(ChartPanel))):
            await pilot.pause(0.01)
        whole = time.perf_counter() - t0
        await pilot.press("q")
    workspace.close()
    return first, whole


#: A fresh interpreter that starts the monitor headless on ``argv[1]`` and prints when the first frame
#: (every run listed, every panel drawn) is there; the parent times it from process start.
SPAWNED_FIRST_FRAME = """
import asyncio, sys
from termmon.model.workspace import Workspace
from termmon.views.app import MonitorApp
from termmon.views.widgets.chart import ChartPanel
from termmon.views.widgets.run_picker import RunPicker
from termmon.views.widgets.run_picker import RunPicker

async def main():
    workspace = Workspace([sys.argv[1]])
    runs = len(workspace.run_dirs)
    app = MonitorApp(workspace, live=True)
    async with app.run_test(size=(120, 35)) as pilot:
        while not (app.query_one(RunPicker).option_count == runs and all(
            p.data is not None for p in app.query(ChartPanel))):
            await pilot.pause(0.005)
        print("frame", flush=True)
        app.exit(0)

asyncio.run(main())
"""
SPAWNED_BARE = """
import asyncio
from textual.app import App
from textual.widgets import Static

class Bare(App):
    def compose(self):
        yield Static("bare")

async def main():
    app = Bare()
    async with app.run_test(size=(120, 35)) as pilot:
        await pilot.pause(0)
        print("frame", flush=True)
        app.exit(0)

asyncio.run(main())
"""


def spawned_first_frame(code: str, *args: str, repeats: int = 3) -> float:
    """Best of ``repeats``: seconds from starting a fresh interpreter to its ``frame`` line."""
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        proc = subprocess.Popen([sys.executable, "-c", code, *args], stdout=subprocess.PIPE, text=True)
        assert proc.stdout is not None
        for line in proc.stdout:
            if line.startswith("frame"):
                best = min(best, time.perf_counter() - t0)
                break
        proc.wait()
    return best


def redraw_cost(root: Path, repeats: int = 10) -> tuple[float, float]:
    workspace = Workspace([str(root)])
    workspace.refresh()
    run = next(iter(workspace.runs.values()))
    series = run.series("train_loss")
    assert series is not None and len(series) >= 1_000_000
    t0 = time.perf_counter()
    for _ in range(repeats):
        np.copy(series.value), np.copy(series.step)
    floor = (time.perf_counter() - t0) / repeats
    colors = RunColors()
    plot = Plot()
    t0 = time.perf_counter()
    for _ in range(repeats):
        data = build_panel(DIAGNOSTICS_PANELS[3], [run], colors=colors, max_points=120)
        build_chart(plot, data, 60, 16, theme=None, labels=False)
        matrix_ansi(plot)
    cost = (time.perf_counter() - t0) / repeats
    workspace.close()
    return cost, floor


class _Bare(App[None]):
    def compose(self) -> ComposeResult:
        yield Static("idle")


async def _idle_cpu(app: App[None] | MonitorApp) -> float:
    proc = psutil.Process()
    async with app.run_test(size=(120, 35)) as pilot:
        await pilot.pause(2.0)  # past loading
        before = proc.cpu_times()
        await asyncio.sleep(IDLE_SECONDS)
        after = proc.cpu_times()
    return ((after.user - before.user) + (after.system - before.system)) / IDLE_SECONDS * 100


def write_live(run_dir: Path, stop: threading.Event, per_second: float = 20.0) -> None:
    """A trainer logging ``per_second`` step records a second until ``stop``."""
    run_dir.mkdir(parents=True, exist_ok=True)
    with open(run_dir / "metrics.jsonl", "a") as fh:
        fh.write(
            json.dumps({"event": "start", "time": time.time(), "step": 0, "run_name": run_dir.name}) + "\n"
        )
        step = 0
        while not stop.wait(1.0 / per_second):
            step += 1
            record = {
                "event": "step",
                "time": time.time(),
                "step": step,
                "train_loss": 1.0 / step,
                "lr": 1e-3,
            }
            fh.write(json.dumps(record) + "\n")
            fh.flush()


def pipe_rows(demo: Path, live_root: Path) -> list[tuple[str, float | None, float | None]]:
    termmon = [sys.executable, "-m", "termmon"]
    bare = terminal_bytes([sys.executable, "-c", BARE_APP])
    rows = [("terminal bytes/s, idle on 4 finished runs", terminal_bytes([*termmon, str(demo)]), bare)]
    stop = threading.Event()
    writer = threading.Thread(target=write_live, args=(live_root / "live", stop), daemon=True)
    writer.start()
    try:
        rows.append(
            ("terminal bytes/s, one run logging 20 steps/s", terminal_bytes([*termmon, str(live_root)]), bare)
        )
    finally:
        stop.set()
        writer.join()
    return rows


def main() -> None:
    tmp = Path(tempfile.mkdtemp(prefix="termmon-bench-"))
    try:
        demo = tmp / "demo"
        shutil.copytree(DEMO_RUNS, demo)
        big = tmp / "big"
        write_big_run(big / "million")
        many = tmp / "many"
        for i in range(25):
            shutil.copytree(DEMO_RUNS, many / f"group{i}")  # 100 runs
        many_big = tmp / "many_big"
        for i in range(100):
            write_big_run(many_big / f"run{i:03d}", lines=10_000)
        rows = []
        for label, root in (
            ("demo runs (4)", demo),
            ("1M-line run", big),
            ("100 runs x 10k lines", many_big),
        ):
            floor = ingest_floor(root)
            first, whole = asyncio.run(_first_frame(root))
            rows.append((f"first frame, {label}", first, floor, "ingest of the same runs"))
            rows.append((f"whole history shown, {label}", whole, floor, "ingest of the same runs"))
        bare_start = spawned_first_frame(SPAWNED_BARE)
        for label, root in (("1M-line run", big), ("100 runs x 10k lines", many_big)):
            got = spawned_first_frame(SPAWNED_FIRST_FRAME, str(root))
            rows.append(
                (f"process start to first frame, {label}", got, bare_start, "bare Textual app, same way")
            )
        cost, floor = redraw_cost(big)
        rows.append(("redraw of a panel holding 1M points", cost, floor, "copy of the series"))
        workspace = Workspace([str(many)])
        idle = asyncio.run(_idle_cpu(MonitorApp(workspace, live=True)))
        bare = asyncio.run(_idle_cpu(_Bare()))
        print("| measure | termmon | floor | floor is |")
        print("|---|---:|---:|---|")
        for name, value, base, what in rows:
            print(f"| {name} | {value * 1000:.0f} ms | {base * 1000:.0f} ms | {what} |")
        print(f"| CPU while idle, 100 runs watched | {idle:.1f} % | {bare:.1f} % | bare Textual app |")
        for name, got, floor_bytes in pipe_rows(demo, tmp / "live"):
            if got is None or floor_bytes is None:
                print(f"| {name} | (no tmux) | | |")
            else:
                print(f"| {name} | {got:,.0f} B/s | {floor_bytes:,.0f} B/s | bare Textual app |")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
