"""What the HF and Lightning integration tests share: reading a run the way a user does."""

from __future__ import annotations

import gc
import json
from pathlib import Path
from typing import Any

import pytest

from termmon.cli import main


def summary(run_dir: Path, capsys: pytest.CaptureFixture[str]) -> dict[str, Any]:
    """``termmon summary RUN --json`` for one run, through the real command line entry point."""
    capsys.readouterr()
    assert main(["summary", str(run_dir), "--json"]) == 0
    runs = json.loads(capsys.readouterr().out)["runs"]
    assert len(runs) == 1, runs
    run: dict[str, Any] = runs[0]
    return run


def step_records(records: list[dict[str, Any]], metric: str = "train_loss") -> list[dict[str, Any]]:
    """The training log steps (evaluation records are ``step`` records too, without a training loss)."""
    return [r for r in records if r["event"] == "step" and metric in r]


def release_process_group() -> None:
    """Destroy this rank's process group once nothing else holds it, before the interpreter exits.

    torch 2.13's gloo threads free each finished collective's tensors themselves, which takes the GIL. A
    rank that exits within a few ms of its last collective can reach that while Python is finalizing: the
    thread is then ended inside a C++ destructor, and the rank dies of SIGABRT ("terminate called without
    an active exception") after a finished fit. A group that nobody else holds joins its threads as it is
    destroyed (each rank of the HF and Lightning tests goes from 4-7 threads to 1-3), and a DDP wrapper
    holds it: hence the collection first. ``python scripts/gloo_exit_abort.py`` counts the aborts: bare
    all-reduces 14 of 30, with the group destroyed 0 of 40; DDP with the group destroyed 12 of 30, with
    the wrapper dropped first 0 of 50."""
    import torch.distributed as dist

    gc.collect()
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()
