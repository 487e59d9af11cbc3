"""First useful frame from process start, in a real terminal (tmux), beside W&B's viewer (issue 15).

    python -m benchmarks.bench_first_frame [--repeats 3] [--quick] [--wandb /path/to/wandb-venv/bin]
        [--termmon "CMD"] [--data DIR] [--cases demo,big,...] [--timeout 90]

Each measurement starts the command alone in a detached tmux pane (its own tmux server; 120x35, and
80x24 for the demo runs) and polls ``tmux capture-pane -p`` every ~30 ms until the first *useful* frame
is on screen; the time is from the moment the pane's shell ``exec``s the command (the shell writes the
wall clock just before) to the end of the capture that first showed it, so it is an upper bound by at
most one poll. Criteria, on the plain text of the screen:

* termmon: a chart with data: a numeric y tick label at a plotext axis (``0.8┤``), an x axis with ticks
  (``└...┬``) and at least 20 plotted cells (braille dots or quadrant blocks; the run picker's
  sparkline blocks ``▁▂▃▄▅▆▇█`` do not count), i.e. a panel drawing a series, not "loading…";
* W&B ``wandb leet``: its chart's corner with a numeric y label (``452└``) and at least 20 braille cells;
* floor: a bare Textual app (a Static and a Footer, run by this checkout's python): its text on screen.

Cases (both tools read the same records: same metric names and steps):

* ``demo``: the four demo runs (``demo_runs/``), at 120x35 and 80x24;
* ``big``: one 1M-line run (``benchmarks.generate``); W&B gets the same run's first ``--wandb-big-rows``
  rows (default 100,000: wandb's own logging of all 1M rows took 875 s on the 2-core box);
* ``r100x10k``, ``r10x1k``, ``r100x1k``, ``r1000x1k``: N runs of L lines, each a copy of one generated run
  (termmon: the jsonl copied under N directory names; W&B: that run logged once by wandb, its offline
  run directory copied under N run ids), because logging 1,000 runs with wandb takes longer than this
  whole benchmark.

The W&B data is written by ``benchmarks/wandb_offline_runs.py`` under the wandb venv's python; without
``--wandb`` those rows are skipped. ``--data DIR`` keeps the generated runs between invocations.
Measurements alternate tool by tool within a case, so the floor and the rival see the same load.
"""

from __future__ import annotations

import argparse
import os
import re
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from benchmarks.generate import write_benchmark_run
from benchmarks.tmux import Pane, have_tmux

REPO = Path(__file__).resolve().parents[1]
DEMO_RUNS = REPO / "demo_runs"
POLL_SECONDS = 0.03
FLOOR_TEXT = "first-frame-floor"
BARE_APP = (
    "from textual.app import App\nfrom textual.widgets import Footer, Static\n"
    "class Bare(App):\n"
    f"    def compose(self):\n        yield Static({FLOOR_TEXT!r})\n        yield Footer()\n"
    "Bare().run()\n"
)
BRAILLE = {chr(c) for c in range(0x2801, 0x2900)}
QUADRANTS = set("▖▗▘▙▚▛▜▝▞▟▀▌▐")
TERMMON_Y_TICK = re.compile(r"\d[\w.+-]*┤")
TERMMON_X_AXIS = re.compile(r"└[─┬┴┼]*┬")
LEET_CORNER = re.compile(r"\d(?:\.\d+)?(?:e[+-]?\d+)?└─")
MIN_MARKS = 20


def termmon_ready(screen: str) -> bool:
    marks = sum(1 for ch in screen if ch in BRAILLE or ch in QUADRANTS)
    return marks >= MIN_MARKS and bool(TERMMON_Y_TICK.search(screen)) and bool(TERMMON_X_AXIS.search(screen))


def leet_ready(screen: str) -> bool:
    marks = sum(1 for ch in screen if ch in BRAILLE)
    return marks >= MIN_MARKS and bool(LEET_CORNER.search(screen))


def floor_ready(screen: str) -> bool:
    return FLOOR_TEXT in screen


@dataclass
class Case:
    """One data set, built once for termmon (``root``) and, with ``--wandb``, for W&B (``wandb_root``)."""

    key: str
    label: str
    runs: int
    lines: int
    sizes: tuple[tuple[int, int], ...] = ((120, 35),)
    wandb_rows: int | None = None  # rows per run W&B gets, when fewer than termmon's
    root: Path = field(default=Path())
    wandb_root: Path | None = None


CASES = {
    "demo": Case("demo", "demo runs (4)", 4, 0, ((120, 35), (80, 24))),
    "big": Case("big", "1M-line run", 1, 1_000_000),
    "r100x10k": Case("r100x10k", "100 runs × 10k lines", 100, 10_000),
    "r10x1k": Case("r10x1k", "10 runs × 1k lines", 10, 1_000),
    "r100x1k": Case("r100x1k", "100 runs × 1k lines", 100, 1_000),
    "r1000x1k": Case("r1000x1k", "1,000 runs × 1k lines", 1000, 1_000),
}
QUICK = ("demo", "r10x1k", "big")


def _stamped(directory: Path, stamp: str, build: Callable[[Path], object]) -> Path:
    """``build(directory)`` unless a previous invocation finished it with the same parameters."""
    done = directory / ".complete"
    if done.exists() and done.read_text() == stamp:
        return directory
    shutil.rmtree(directory, ignore_errors=True)
    directory.mkdir(parents=True)
    build(directory)
    done.write_text(stamp)
    return directory


def _copies(template: Path, root: Path, runs: int) -> None:
    for i in range(runs):
        run = root / f"run{i:04d}"
        run.mkdir()
        shutil.copyfile(template / "metrics.jsonl", run / "metrics.jsonl")


def build_termmon(case: Case, data: Path) -> Path:
    """The case's run directories, under one root as a user would point termmon at them."""

    def build(root: Path) -> None:
        if case.key == "demo":
            shutil.copytree(DEMO_RUNS, root, dirs_exist_ok=True)
        elif case.runs == 1:
            write_benchmark_run(root / "run0000", case.lines)
        else:
            template = data / f"template-{case.lines}"
            _stamped(template, str(case.lines), lambda d: write_benchmark_run(d, case.lines))
            _copies(template, root, case.runs)

    return _stamped(data / case.key, f"{case.runs}x{case.lines}", build)


def build_wandb(case: Case, data: Path, wandb_bin: Path) -> Path:
    """A wandb dir (``.../wandb/offline-run-*``) holding the case's records, logged by wandb itself."""
    python = wandb_bin / "python"
    writer = Path(__file__).resolve().parent / "wandb_offline_runs.py"

    def log(source: Path, out: Path, max_steps: int | None) -> None:
        extra = ["--max-steps", str(max_steps)] if max_steps is not None else []
        subprocess.run([str(python), str(writer), str(source), str(out), *extra], check=True, cwd=out)

    def build(root: Path) -> None:
        if case.runs == 1 or case.key == "demo":
            log(case.root, root, case.wandb_rows)
            return
        template = data / f"template-{case.lines}"
        logged = _stamped(
            data / f"wandb-template-{case.lines}", str(case.lines), lambda d: log(template, d, None)
        )
        (source,) = (logged / "wandb").glob("offline-run-*")
        stamp_prefix = source.name.rsplit("-", 1)[0]
        run_id = source.name.rsplit("-", 1)[1]
        (root / "wandb").mkdir()
        for i in range(case.runs):
            new_id = f"c{i:07d}"
            target = root / "wandb" / f"{stamp_prefix}-{new_id}"
            shutil.copytree(source, target, symlinks=True)
            (target / f"run-{run_id}.wandb").rename(target / f"run-{new_id}.wandb")

    stamp = f"{case.runs}x{case.lines}:{case.wandb_rows}"
    return _stamped(data / f"wandb-{case.key}", stamp, build) / "wandb"


def first_frame(
    command: list[str],
    size: tuple[int, int],
    ready: Callable[[str], bool],
    timeout: float,
    keep_screen: Path | None = None,
) -> float | None:
    """Seconds from the command's start to the first screen ``ready`` accepts; ``None`` past ``timeout``."""
    with Pane(command, *size) as pane:
        deadline = time.monotonic() + timeout
        screen = ""
        while time.monotonic() < deadline:
            screen = pane.screen()
            seen = time.time()
            if ready(screen):
                started = pane.started
                assert started is not None  # the shell wrote it before exec, and the command drew since
                if keep_screen is not None:
                    keep_screen.write_text(screen)
                return seen - started
            time.sleep(POLL_SECONDS)
        print(
            f"timed out after {timeout:.0f} s: {shlex.join(command)}; last screen:\n{screen}", file=sys.stderr
        )
        return None


@dataclass
class Row:
    label: str
    size: tuple[int, int]
    times: dict[str, list[float | None]]


def _cell(times: list[float | None], timeout: float) -> str:
    if not times:
        return "skipped (no --wandb)"
    done = [t for t in times if t is not None]
    if not done:
        return f"> {timeout:.0f} s"
    if len(done) < len(times):
        return f"{min(done):.2f} s ({len(times) - len(done)} of {len(times)} > {timeout:.0f} s)"
    return f"{min(done):.2f} / {statistics.median(done):.2f} s"


def _ratio(times: list[float | None], floor: list[float | None]) -> str:
    done, base = [t for t in times if t is not None], [t for t in floor if t is not None]
    if not done or not base or len(done) < len(times):
        return ""
    return f"{statistics.median(done) / statistics.median(base):.1f}x"


def compile_checkout(python: str) -> None:
    """Write this checkout's bytecode, as ``pip install`` does for an installed termmon (and the wheels
    of every dependency here): an editable install compiles only when first run, and never where
    ``PYTHONDONTWRITEBYTECODE`` is set (this box), which had put the compiling of ~90 modules (0.15-0.3 s)
    into every measured start but none of the floor's."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    subprocess.run([python, "-m", "compileall", "-q", str(REPO / "termmon")], env=env, check=True)


def measure(args: argparse.Namespace, cases: list[Case]) -> list[Row]:
    termmon = shlex.split(args.termmon)
    floor_cmd = [args.python, "-c", BARE_APP]
    leet = [str(args.wandb / "wandb"), "leet"] if args.wandb else None
    rows: list[Row] = []
    for case in cases:
        for size in case.sizes:
            tools: dict[str, tuple[list[str], Callable[[str], bool]]] = {
                "termmon": ([*termmon, str(case.root)], termmon_ready),
                "floor": (floor_cmd, floor_ready),
            }
            if leet is not None and case.wandb_root is not None:
                tools["leet"] = ([*leet, str(case.wandb_root)], leet_ready)
            times: dict[str, list[float | None]] = {name: [] for name in tools}
            for i in range(args.repeats):
                for name, (command, ready) in tools.items():
                    keep = None
                    if args.screens is not None:
                        keep = args.screens / f"{case.key}-{size[0]}x{size[1]}-{name}-{i}.txt"
                    times[name].append(first_frame(command, size, ready, args.timeout, keep))
            print(f"  {case.label} {size[0]}x{size[1]}: {times}", file=sys.stderr, flush=True)
            rows.append(Row(case.label, size, times))
    return rows


def table(rows: list[Row], timeout: float, cases: dict[str, Case]) -> str:
    lines = [
        "| case | pane | termmon | W&B `wandb leet` | floor: bare Textual app | termmon / floor | termmon / W&B |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    partial = {c.label: c.wandb_rows for c in cases.values() if c.wandb_rows}
    for row in rows:
        leet = _cell(row.times.get("leet", []), timeout)
        if row.label in partial and row.times.get("leet"):
            leet += f" ({partial[row.label]:,} rows)"
        lines.append(
            f"| {row.label} | {row.size[0]}x{row.size[1]} | {_cell(row.times['termmon'], timeout)} | {leet} "
            f"| {_cell(row.times['floor'], timeout)} | {_ratio(row.times['termmon'], row.times['floor'])} "
            f"| {_ratio(row.times['termmon'], row.times.get('leet', []))} |"
        )
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repeats", type=int, default=3, help="measurements per tool and case (min, median)")
    parser.add_argument("--quick", action="store_true", help=f"only {', '.join(QUICK)}")
    parser.add_argument("--cases", help=f"comma-separated, from {', '.join(CASES)}")
    parser.add_argument(
        "--termmon", default=str(REPO / ".venv" / "bin" / "termmon"), help="command; PATH appended"
    )
    parser.add_argument("--python", default=sys.executable, help="python with textual, for the floor")
    parser.add_argument("--wandb", type=Path, help="bin/ of a venv with wandb (its python and wandb)")
    parser.add_argument("--wandb-big-rows", type=int, default=100_000, help="rows of the 1M run W&B gets")
    parser.add_argument("--data", type=Path, help="keep generated runs here (reused when already built)")
    parser.add_argument(
        "--screens", type=Path, help="write each first frame seen here, to check the criteria"
    )
    parser.add_argument("--timeout", type=float, default=90.0, help="seconds before a measurement gives up")
    args = parser.parse_args()
    if not have_tmux():
        print("tmux is not installed: nothing to measure", file=sys.stderr)
        return 0
    keys = args.cases.split(",") if args.cases else list(QUICK if args.quick else CASES)
    unknown = [k for k in keys if k not in CASES]
    if unknown:
        parser.error(f"unknown case(s) {', '.join(unknown)}; choose from {', '.join(CASES)}")
    if args.wandb is not None and not (args.wandb / "wandb").exists():
        parser.error(f"no wandb in {args.wandb}")
    data = args.data or Path(tempfile.mkdtemp(prefix="termmon-first-frame-"))
    data = data.resolve()
    data.mkdir(parents=True, exist_ok=True)
    if args.screens is not None:
        args.screens.mkdir(parents=True, exist_ok=True)
    try:
        cases = [CASES[k] for k in keys]
        for case in cases:
            t0 = time.perf_counter()
            if case.key == "big" and args.wandb_big_rows < case.lines:
                case.wandb_rows = args.wandb_big_rows
            case.root = build_termmon(case, data)
            if args.wandb is not None:
                case.wandb_root = build_wandb(case, data, args.wandb)
            print(f"data for {case.label}: {time.perf_counter() - t0:.0f} s", file=sys.stderr, flush=True)
        compile_checkout(args.python)
        rows = measure(args, cases)
    finally:
        if args.data is None:
            shutil.rmtree(data, ignore_errors=True)
    print(f"\nFirst useful frame from process start in tmux, min / median of {args.repeats} (seconds)\n")
    print(table(rows, args.timeout, CASES))
    return 0


if __name__ == "__main__":
    sys.exit(main())
