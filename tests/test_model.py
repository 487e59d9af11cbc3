"""The run model: compact growth, status from events and data age, display series that keep what matters."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from termmon.ingest.batch import build_batch
from termmon.model.columns import GrowableArray
from termmon.model.display import downsample, smooth
from termmon.model.run import STALL_MIN_SECONDS, Run, RunStatus


@given(st.lists(st.integers(0, 300), max_size=30))
def test_growable_array_holds_everything_in_order(sizes: list[int]) -> None:
    array = GrowableArray(np.int64)
    expected: list[int] = []
    for i, size in enumerate(sizes):
        values = np.arange(len(expected), len(expected) + size)
        array.extend(values)
        expected.extend(values.tolist())
        if i % 3 == 0:  # reads in between, as a live view does
            assert array.view.tolist() == expected
    assert array.view.tolist() == expected and len(array) == len(expected)


@given(st.lists(st.integers(0, 300), max_size=30), st.integers(0, 3000), st.integers(0, 29))
def test_growable_array_reserved_room_holds_the_same(sizes: list[int], room: int, at: int) -> None:
    """Room reserved part-way (too little, enough or more) changes where values go, never what is held."""
    array = GrowableArray(np.int64)
    expected: list[int] = []
    for i, size in enumerate(sizes):
        if i == at:
            array.reserve(room)
        values = np.arange(len(expected), len(expected) + size)
        array.extend(values)
        expected.extend(values.tolist())
    assert array.view.tolist() == expected and len(array) == len(expected)


def test_a_reserved_run_copies_appends_into_place() -> None:
    """What a one-shot load in pieces relies on: with room reserved, appended batches are not queued."""
    records = [{"event": "step", "step": i, "loss": 1.0 / (i + 1)} for i in range(100)]
    run = Run(Path("r"))
    run.add(build_batch(records[:10]))
    run.reserve(100)
    steps, losses = run.step.view, run.metrics["loss"].values.view
    for i in range(10, 100, 10):
        run.add(build_batch(records[i : i + 10]))
    # The same buffers, filled further: nothing was queued to be joined into new ones.
    assert np.shares_memory(run.step.view, steps) and np.shares_memory(
        run.metrics["loss"].values.view, losses
    )
    assert run.step.view.tolist() == list(range(100))
    assert run.metrics["loss"].values.view.tolist() == [r["loss"] for r in records]


@settings(max_examples=80, deadline=None)
@given(
    values=st.lists(
        st.one_of(st.floats(-1e6, 1e6), st.sampled_from([float("nan"), float("inf"), float("-inf")])),
        min_size=1,
        max_size=3000,
    ),
    max_points=st.integers(2, 300),
)
def test_downsample_keeps_extremes_ends_and_every_kind_of_nonfinite(
    values: list[float], max_points: int
) -> None:
    y = np.array(values)
    x = np.arange(len(y), dtype=np.float64)
    shown = downsample(x, y, max_points)
    finite = np.isfinite(y)
    assert len(shown.x) <= max_points + 4
    assert np.isfinite(shown.y).all()
    if finite.any():
        assert shown.y.max() == y[finite].max() and shown.y.min() == y[finite].min()
        assert shown.x[-1] == x[finite][-1] and shown.x[0] == x[finite][0]
        assert (np.diff(shown.x) > 0).all()
    assert bool(np.isnan(y).any()) == bool(len(shown.nan_x))
    assert bool((y == np.inf).any()) == bool(len(shown.posinf_x))
    assert bool((y == -np.inf).any()) == bool(len(shown.neginf_x))


def test_smoothing_is_debiased_and_skips_nonfinite() -> None:
    x = np.arange(6, dtype=np.float64)
    y = np.array([10.0, 10.0, np.nan, 10.0, 10.0, 10.0])
    sx, sy = smooth(x, y, weight=0.9)
    assert list(sx) == [0, 1, 3, 4, 5]
    assert np.allclose(sy, 10.0), "a constant series smooths to itself from the first point (no pull to zero)"
    big_x = np.arange(200_000, dtype=np.float64)
    bx, by = smooth(big_x, np.ones_like(big_x))
    assert len(bx) <= 20_001 and np.allclose(by, 1.0) and bx[-1] >= 199_990


def run_with(records: list[dict[str, object]]) -> Run:
    run = Run(Path("/runs/x"))
    run.add(build_batch(records))
    return run


def test_status_from_end_events_and_data_age() -> None:
    steps = [{"event": "step", "time": 1000.0 + i, "step": i, "train_loss": 1.0} for i in range(50)]
    running = run_with(steps)
    assert running.status(now=1050.0) == RunStatus.RUNNING
    assert running.status(now=1049.0 + STALL_MIN_SECONDS + 1) == RunStatus.STALLED
    finished = run_with([*steps, {"event": "end", "time": 1050.0, "status": "finished"}])
    assert finished.status(now=10**9) == RunStatus.FINISHED
    crashed = run_with([*steps, {"event": "end", "time": 1050.0, "status": "crashed", "error": "boom"}])
    assert crashed.status(now=10**9) == RunStatus.CRASHED
    assert run_with([]).status(now=0.0) == RunStatus.UNKNOWN


def test_slow_runs_stall_only_after_many_of_their_own_intervals() -> None:
    hourly = run_with([{"event": "step", "time": 3600.0 * i, "step": i} for i in range(10)])
    last = 3600.0 * 9
    assert hourly.status(now=last + 3 * 3600) == RunStatus.RUNNING
    assert hourly.status(now=last + 25 * 3600) == RunStatus.STALLED


def test_series_epoch_points_and_control_state() -> None:
    records: list[dict[str, object]] = [
        {"event": "start", "time": 1.0, "log_every": 10, "config": {"lr": 0.1}},
        {"event": "step", "time": 2.0, "step": 10, "epoch": 0, "train_loss": 1.0},
        {"event": "epoch", "time": 3.0, "step": 10, "epoch": 0, "train": {"loss": 0.9}},
        {"event": "control_change", "time": 4.0, "step": 20, "key": "log_every", "old": 10, "new": 40},
        json.loads('{"event":"step","time":5.0,"step":20,"epoch":1,"train_loss":NaN}'),
    ]
    run = run_with(records)
    loss = run.series("train_loss")
    assert loss is not None and list(loss.step) == [10, 20] and np.isnan(loss.value[1])
    epoch_loss = run.series("train/loss")
    assert epoch_loss is not None and epoch_loss.epoch_level.tolist() == [True]
    assert run.log_every == 40 and run.last_control_change is not None and run.last_step == 20
    stats = run.stats("train_loss")
    assert stats is not None and stats.count == 2 and stats.nonfinite == 1 and stats.min == 1.0
    run.reset()
    assert run.records == 0 and run.metric_names() == [] and run.generation == 1
