"""What the HF and Lightning integration tests share: reading a run the way a user does."""

from __future__ import annotations

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
