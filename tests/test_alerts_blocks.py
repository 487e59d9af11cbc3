"""Detectors that work in blocks of points give exactly the alerts of one pass over everything."""

from __future__ import annotations

from pathlib import Path

import pytest

import termmon.analysis.alerts.points as points_module
from termmon.analysis.alerts import AlertEngine
from tests.runs import run_of
from tests.test_alerts_engine import troubled_records


@pytest.mark.parametrize("block", [1, 7, 100])
def test_tiny_blocks_give_the_same_alerts_as_one_pass(
    tmp_path: Path, block: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    run = run_of(tmp_path, troubled_records())
    whole = [a.to_dict() for a in AlertEngine().update(run, now=run.last_time)]
    assert any(a["kind"] == "loss_plateau" for a in whole) and any(
        a["kind"] == "exploding_gradients" for a in whole
    )
    monkeypatch.setattr(points_module, "BLOCK_POINTS", block)
    blocked = [a.to_dict() for a in AlertEngine().update(run, now=run.last_time)]
    assert repr(blocked) == repr(whole)
