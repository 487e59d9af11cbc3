"""Run directories for the monitor's tests: small, fixed, written as real files the way trainers write them."""

from __future__ import annotations

import asyncio
import functools
import json
import math
import time
from collections.abc import Callable, Coroutine, Iterable
from pathlib import Path
from typing import Any

from textual.pilot import Pilot

from termmon.format import METRICS_JSONL, encode_record

T0 = 1_767_225_600.0
#: The frozen "now" of snapshot and Pilot tests: 30 s after the last record of the fixture runs.
NOW = T0 + 400.0

Record = dict[str, Any]


def append(run_dir: Path, records: Iterable[Record]) -> None:
    run_dir.mkdir(parents=True, exist_ok=True)
    with open(run_dir / METRICS_JSONL, "a", encoding="utf-8") as fh:
        for record in records:
            fh.write(encode_record(record) + "\n")


def start(name: str, log_every: int = 10, diagnostics: bool = True) -> Record:
    return {
        "event": "start",
        "time": T0,
        "step": 0,
        "run_name": name,
        "log_every": log_every,
        "config": {"log_every": log_every, "enable_diagnostics": diagnostics},
    }


def steps(first: int, last: int, every: int = 10, loss: float = 1.0, t: float = T0) -> list[Record]:
    return [
        {
            "event": "step",
            "time": t + s * 0.1,
            "step": s,
            "train_loss": round(loss * math.exp(-s / 300) + 0.05, 5),
            "lr": 1e-3,
            "grad_norm": round(0.5 + 0.1 * math.sin(s), 4),
        }
        for s in range(first, last + 1, every)
    ]


def epoch(e: int, step: int, diagnostics: bool = True) -> Record:
    record: Record = {
        "event": "epoch",
        "time": T0 + step * 0.1,
        "step": step,
        "epoch": e,
        "train": {"loss": round(math.exp(-step / 300) + 0.05, 5)},
        "test": {"loss": round(math.exp(-step / 300) + 0.08, 5)},
    }
    if diagnostics:
        record["diagnostics"] = {
            "silhouette_score": round(0.1 + 0.06 * e, 3),
            "n_clusters_dbscan": 1 + e // 4,
            "weight_correlation": round(0.2 + 0.05 * e, 3),
        }
    return record


def healthy(run_dir: Path, epochs: int = 10, per_epoch: int = 100) -> Path:
    """A finished run with diagnostics: step loss, epoch train/test loss, the three diagnostics."""
    records = [start(run_dir.name)]
    for e in range(epochs):
        records += steps(e * per_epoch + 10, (e + 1) * per_epoch)
        records.append(epoch(e, (e + 1) * per_epoch))
    records.append({"event": "end", "time": T0 + epochs * per_epoch * 0.1, "status": "finished"})
    append(run_dir, records)
    return run_dir


def no_diagnostics(run_dir: Path) -> Path:
    """A step-level run (LoRA-style) that never computed diagnostics."""
    append(run_dir, [start(run_dir.name, diagnostics=False), *steps(10, 1500, every=10, loss=0.3)])
    return run_dir


def diverging(run_dir: Path) -> Path:
    """Loss goes to +inf then NaN: the panels must mark these points, not drop them."""
    records = [start(run_dir.name), *steps(10, 500)]
    for s, value in ((510, math.inf), (520, math.nan), (530, math.nan)):
        records.append({"event": "step", "time": T0 + s * 0.1, "step": s, "train_loss": value, "lr": 1e-3})
    append(run_dir, records)
    return run_dir


def exploding(run_dir: Path) -> Path:
    """A run that diverges for real: loss and grad norm climb to ~1e30, then NaN to step 3000."""
    records = [start(run_dir.name, diagnostics=False)]
    for s in range(10, 3001, 10):
        if s <= 300:
            loss, grad = round(2.0 * math.exp(-s / 150) + 0.3, 5), round(1.0 + 0.2 * math.sin(s), 4)
        elif s < 590:
            loss, grad = 0.5 * math.exp((s - 300) / 4.0), math.exp((s - 300) / 5.0)
        else:
            loss, grad = math.nan, math.nan
        records.append(
            {
                "event": "step",
                "time": T0 + s * 0.1,
                "step": s,
                "train_loss": loss,
                "lr": 1e-3,
                "grad_norm": grad,
            }
        )
    append(run_dir, records)
    return run_dir


def workspace_dir(root: Path) -> Path:
    """Three runs under one parent, as `termmon experiments/` would see them."""
    healthy(root / "blobs_a")
    no_diagnostics(root / "lora_b")
    diverging(root / "diverging_c")
    return root


def read_json(path: Path) -> Any:
    return json.loads(path.read_text())


def run_async(test: Callable[..., Coroutine[Any, Any, None]]) -> Callable[..., None]:
    """Run an async Pilot test with asyncio.run (the project does not use an async pytest plugin)."""

    @functools.wraps(test)
    def wrapper(*args: Any, **kwargs: Any) -> None:
        asyncio.run(test(*args, **kwargs))

    return wrapper


async def wait_for(pilot: Pilot[Any], condition: Callable[[], bool], timeout: float = 15.0) -> None:
    """Let the app run until ``condition`` holds: a condition, never a fixed sleep (the suite must pass on
    a loaded machine, hence the generous timeout)."""
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not met in time")
        await pilot.pause(0.05)


def wait_until(condition: Callable[[], bool], timeout: float = 20.0) -> None:
    """The same wait, for code that runs without an app (a watcher, follow()): polls the condition."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.02)
