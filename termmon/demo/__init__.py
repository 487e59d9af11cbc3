"""``termmon demo``: the monitor on the shipped demo runs plus one run written live while you watch."""

from __future__ import annotations

import importlib.util
import multiprocessing
import shutil
import sys
import tempfile
import time
from pathlib import Path

LIVE_RUN = "denoiser_live"
#: Long enough (about 5 minutes at the demo's pace) to try `+` / `-` on a trainer that answers.
LIVE_EPOCHS = 120


def shipped_demo_runs() -> Path | None:
    """``demo_runs/`` beside the package in a source checkout, if present."""
    candidate = Path(__file__).resolve().parents[2] / "demo_runs"
    return candidate if candidate.is_dir() and any(candidate.iterdir()) else None


def prepare_demo_dir(root: Path) -> None:
    """Copy the shipped demo runs into ``root``; an install without them trains them (torch) or does
    without them, showing only the live run."""
    source = shipped_demo_runs()
    if source is not None:
        for run_dir in sorted(p for p in source.iterdir() if p.is_dir()):
            shutil.copytree(run_dir, root / run_dir.name)
    elif _can_train():
        from termmon.demo.training import write_demo_runs

        print("termmon demo: training the demo runs first (about 10 s)...", file=sys.stderr)
        write_demo_runs(root)


def _can_train() -> bool:
    return (
        importlib.util.find_spec("torch") is not None
        and importlib.util.find_spec("termmon.demo.training") is not None
    )


def _train(log_dir: str, run_name: str) -> None:
    import torch

    from termmon.demo.training import train_denoiser

    torch.set_num_threads(1)
    train_denoiser(log_dir, run_name, epochs=LIVE_EPOCHS, pace_s=0.05)


def announce(run_dir: Path) -> None:
    """A start record before the trainer is up (importing torch takes a while), so the live run is on
    the first screen, selected and shown as starting, instead of appearing half a minute later."""
    from termmon.format import EV_START, METRICS_JSONL, encode_record

    run_dir.mkdir(parents=True, exist_ok=True)
    record = {"event": EV_START, "time": time.time(), "run_name": run_dir.name, "config": {}}
    with open(run_dir / METRICS_JSONL, "a", encoding="utf-8") as fh:
        fh.write(encode_record(record) + "\n")


def run_demo(poll: float | None) -> int:
    """Open the monitor on a temporary copy of the demo runs and a live run; clean both up on exit."""
    from termmon.demo.live import RECORDING, Replay, load_recording
    from termmon.views.app import require_terminal, run_monitor

    require_terminal()  # before the copy and the trainer, which run_monitor's own check would come after
    root = Path(tempfile.mkdtemp(prefix="termmon-demo-"))
    process: multiprocessing.process.BaseProcess | None = None
    replay: Replay | None = None
    try:
        prepare_demo_dir(root)
        announce(root / LIVE_RUN)
        if _can_train():
            process = multiprocessing.get_context("spawn").Process(
                target=_train, args=(str(root), LIVE_RUN), name="termmon-demo-train", daemon=True
            )
            process.start()
        else:
            records = load_recording(RECORDING)
            replay = Replay(records, root / LIVE_RUN)
            replay.start()
            replay.started.wait(timeout=2)  # the monitor's first scan should see the live run
        return run_monitor([str(root)], poll=poll, config=None, select=root / LIVE_RUN)
    finally:
        if replay is not None:
            replay.stop()
        if process is not None:
            process.terminate()
            process.join(timeout=5)
            if process.is_alive():
                process.kill()
        shutil.rmtree(root, ignore_errors=True)
