"""termmon.load and termmon.follow, as a notebook or a live script uses them."""

from __future__ import annotations

import json
import math
import os
import random
import threading
import time
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import termmon
from termmon.errors import UsageError


def line(record: dict[str, Any]) -> bytes:
    return json.dumps(record).encode() + b"\n"


def step(i: int, tag: str = "a", **extra: Any) -> dict[str, Any]:
    return {"event": "step", "time": 1000.0 + i, "step": i, "train_loss": 1.0 / (i + 1), "tag": tag, **extra}


class Follower:
    """Runs termmon.follow in a thread and collects what it yields."""

    def __init__(self, path: Path) -> None:
        self.stop = threading.Event()
        self.records: list[dict[str, Any]] = []
        self.batches = 0
        self.thread = threading.Thread(target=self._run)
        self.path = path
        self.thread.start()

    def _run(self) -> None:
        for batch in termmon.follow(self.path, stop=self.stop):
            self.batches += 1
            self.records.extend(batch)

    def wait_for(self, n: int, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while len(self.records) < n and time.monotonic() < deadline:
            time.sleep(0.02)
        assert len(self.records) >= n, f"got {len(self.records)} of {n} records"

    def close(self) -> float:
        started = time.monotonic()
        self.stop.set()
        self.thread.join(5)
        assert not self.thread.is_alive(), "follow() did not return after stop was set"
        return time.monotonic() - started


def test_load_returns_one_row_per_record(tmp_path: Path) -> None:
    with open(tmp_path / "metrics.jsonl", "wb") as fh:
        fh.write(line({"event": "start", "time": 999.0, "run_name": "x", "config": {"lr": 0.1}}))
        for i in range(5):
            fh.write(line(step(i)))
        fh.write(line({"event": "epoch", "time": 1010.0, "step": 4, "epoch": 0, "train": {"loss": 0.3}}))
        fh.write(b'{"event":"step","time":1011.0,"step":5,"train_loss":NaN}\n')
        fh.write(line({"event": "end", "time": 1012.0, "status": "finished"}))
        fh.write(b'{"event":"step","ti')  # torn: never a row
    df = termmon.load(tmp_path)
    assert list(df["event"]) == ["start", "step", "step", "step", "step", "step", "epoch", "step", "end"]
    assert df["train/loss"].dropna().tolist() == [0.3]
    assert math.isnan(df["train_loss"].iloc[7])
    assert df["status"].iloc[8] == "finished" and df["run_name"].iloc[0] == "x"
    assert df["step"].iloc[1:6].tolist() == [0, 1, 2, 3, 4]


scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**63), 2**64 - 1),  # past 64 bits the reader gives a float (as before this column)
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=4),
)


@settings(max_examples=60, deadline=None)
@given(notes=st.lists(scalars, min_size=1, max_size=4))
def test_a_meta_field_is_the_column_pandas_makes_of_its_values(
    tmp_path_factory: pytest.TempPathFactory, notes: list[Any]
) -> None:
    """A field of the meta events is a column with its values at their rows and None elsewhere, of
    whatever dtype pandas gives such a list (str, float, object), however the column is built."""
    run = tmp_path_factory.mktemp("run")
    expected: list[Any] = []
    with open(run / "metrics.jsonl", "wb") as fh:
        for i, note in enumerate(notes):
            fh.write(line(step(i)))
            fh.write(
                line({"event": "checkpoint", "time": 1000.5 + i, "checkpoint_path": "c.pt", "note": note})
            )
            expected += [None, note]
    df = termmon.load(run)
    pd.testing.assert_series_equal(df["note"], pd.Series(expected, name="note"), check_exact=True)
    assert list(map(repr, df["note"])) == list(map(repr, pd.Series(expected)))


@settings(max_examples=40, deadline=None)
@given(spans=st.lists(st.tuples(st.booleans(), st.booleans(), st.integers(1, 150)), min_size=1, max_size=12))
def test_a_metric_is_nan_where_its_record_lacks_it(
    tmp_path_factory: pytest.TempPathFactory, spans: list[tuple[bool, bool, int]]
) -> None:
    """Metrics logged in runs of records and left out in others (long runs and short ones, as a metric
    logged every step between epoch records, or every few steps) have their values at their rows, each
    its own: two metrics with other rows than the loss's, logged together or apart."""
    run = tmp_path_factory.mktemp("run")
    present = [(grad, acc) for grad, acc, length in spans for _ in range(length)]
    with open(run / "metrics.jsonl", "wb") as fh:
        for i, (grad, acc) in enumerate(present):
            fh.write(line(step(i, **({"grad_norm": i / 4} if grad else {}), **({"acc": -i} if acc else {}))))
    df = termmon.load(run)
    pd.testing.assert_series_equal(
        df["train_loss"], pd.Series([1.0 / (i + 1) for i in range(len(present))], name="train_loss")
    )
    for name, which, value in (("grad_norm", 0, lambda i: i / 4), ("acc", 1, lambda i: float(-i))):
        expected = [value(i) if logged[which] else math.nan for i, logged in enumerate(present)]
        if any(logged[which] for logged in present):
            pd.testing.assert_series_equal(df[name], pd.Series(expected, name=name))
        else:
            assert name not in df.columns


@pytest.mark.parametrize(
    ("steps", "dtype"),
    [
        ([0, 1, None], "Int64"),
        ([-3, 2**52, None, 7], "Int64"),
        ([0, 0.5, None], "float64"),
        ([None, None], "float64"),
    ],
)
def test_whole_steps_are_an_integer_column(tmp_path: Path, steps: list[float | None], dtype: str) -> None:
    """Steps are Int64 (missing: <NA>) when every step given is whole, float64 otherwise."""
    with open(tmp_path / "metrics.jsonl", "wb") as fh:
        for i, at in enumerate(steps):
            fh.write(
                line(
                    {
                        "event": "step",
                        "time": 1000.0 + i,
                        "loss": 1.0,
                        **({"step": at} if at is not None else {}),
                    }
                )
            )
    df = termmon.load(tmp_path)
    assert str(df["step"].dtype) == dtype
    expected = pd.Series(steps, name="step", dtype="float64").astype(dtype)
    pd.testing.assert_series_equal(df["step"], expected)


def test_load_missing_path_is_a_usage_error(tmp_path: Path) -> None:
    with pytest.raises(UsageError):
        termmon.load(tmp_path / "nope")
    with pytest.raises(UsageError, match="not a run directory"):
        termmon.load(tmp_path)


def test_follow_delivers_torn_writes_once_in_order(tmp_path: Path) -> None:
    path = tmp_path / "metrics.jsonl"
    path.touch()
    follower = Follower(tmp_path)
    expected = [step(i) for i in range(500)]
    stream = b"".join(line(r) for r in expected)
    rng = random.Random(3)
    with open(path, "ab", buffering=0) as fh:
        pos = 0
        while pos < len(stream):
            n = rng.randint(1, 2000)
            fh.write(stream[pos : pos + n])
            pos += n
            if rng.random() < 0.1:
                time.sleep(0.005)
    follower.wait_for(500)
    follower.close()
    assert follower.records == expected


def test_follow_across_truncation_rewrite_larger_and_rotation(tmp_path: Path) -> None:
    path = tmp_path / "metrics.jsonl"
    path.write_bytes(b"".join(line(step(i, "first")) for i in range(10)))
    follower = Follower(tmp_path)
    follower.wait_for(10)

    # Truncate and rewrite to *more* than the old size in one write: size alone cannot see it.
    rewritten = b"".join(line(step(i, "second")) for i in range(30))
    with open(path, "r+b") as fh:
        fh.truncate(0)
        fh.write(rewritten)
    follower.wait_for(40)

    # Rename rotation: the new file continues the stream.
    os.rename(path, tmp_path / "metrics.jsonl.1")
    path.write_bytes(b"".join(line(step(i, "third")) for i in range(30, 35)))
    follower.wait_for(45)
    follower.close()
    tags = [(r["tag"], r["step"]) for r in follower.records]
    assert tags == (
        [("first", i) for i in range(10)]
        + [("second", i) for i in range(30)]
        + [("third", i) for i in range(30, 35)]
    )


def test_follow_returns_promptly_when_stopped_while_idle(tmp_path: Path) -> None:
    (tmp_path / "metrics.jsonl").write_bytes(line(step(0)))
    follower = Follower(tmp_path)
    follower.wait_for(1)
    time.sleep(0.3)
    assert follower.close() < 1.0


def test_follow_results_json_yields_only_new_epochs(tmp_path: Path) -> None:
    path = tmp_path / "results.json"

    def write(n: int) -> None:
        history = [{"epoch": e, "train": {"loss": 1.0 / e}} for e in range(1, n + 1)]
        tmp = tmp_path / "results.json.tmp"
        tmp.write_text(json.dumps({"run_name": "r", "training_history": history}))
        os.replace(tmp, path)

    write(2)
    follower = Follower(tmp_path)
    follower.wait_for(3)  # start + 2 epochs
    write(5)
    follower.wait_for(6)
    time.sleep(0.3)
    follower.close()
    epochs = [r["epoch"] for r in follower.records if r["event"] == "epoch"]
    assert epochs == [1, 2, 3, 4, 5]
