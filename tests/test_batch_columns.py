"""The column fast path gives what the one record rule gives, whatever the values in a run of records.

A run of records with the same keys is packed into columns in bulk; any value the bulk pass cannot take
sends the run down the general path. Either way each record must come out as :func:`normalize_record`
and :func:`numeric_value` say, record by record: that is the reference here.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from termmon.ingest.batch import RESERVED, RecordBatch, build_batch, normalize_record, numeric_value

#: Numbers at the edges of the rule: not finite, past a float step's exactness, too big for a float.
EDGES = st.sampled_from([math.inf, -math.inf, math.nan, 1e300, -(2**60), 2**53 + 1, 10**400, True, False])
VALUES = st.one_of(
    EDGES,
    st.floats(allow_nan=True, allow_infinity=True),
    st.integers(-(2**60), 2**60),
    st.sampled_from(["1.5", "-2", "nan", "train", ""]),
    st.none(),
    st.just({"a": 1.0}),
    st.just([1, 2]),
)
NUMBERS = st.one_of(st.floats(allow_nan=False, allow_infinity=False), st.integers(0, 10**6), st.booleans())


@st.composite
def same_key_records(draw: st.DrawFn) -> list[dict[str, Any]]:
    """A run of records with the same keys holding plain numbers (the bulk pass's case), then a few
    cells, often none, replaced by any value at all."""
    keys = draw(st.lists(st.sampled_from(["event", *RESERVED]), unique=True))
    keys += draw(st.lists(st.sampled_from(["loss", "lr", "acc"]), unique=True, min_size=1))
    event = draw(st.sampled_from(["step", "epoch"]))
    count = draw(st.integers(1, 12))
    records = [
        {
            key: event if key == "event" else draw(st.integers(0, 10**6) if key in RESERVED else NUMBERS)
            for key in keys
        }
        for _ in range(count)
    ]
    for _ in range(draw(st.integers(0, 2))):
        key = draw(st.sampled_from([k for k in keys if k != "event"]))
        records[draw(st.integers(0, count - 1))][key] = draw(st.one_of(EDGES, VALUES))
    return records


def reference(
    records: list[dict[str, Any]],
) -> tuple[list[tuple[float, float, float]], dict[str, list[Any]], int]:
    """(time, step, epoch) per kept record, metric name -> (row, value) pairs, bad lines: record by record."""
    rows: list[tuple[float, float, float]] = []
    metrics: dict[str, list[Any]] = {}
    bad = 0
    for obj in records:
        record = normalize_record(obj)
        if record is None:
            bad += 1
            continue
        row = len(rows)
        fixed = [record.get(key) for key in RESERVED]
        rows.append(tuple(math.nan if v is None else float(v) for v in fixed))  # type: ignore[arg-type]
        for key, value in record.items():
            if key in ("event", *RESERVED):
                continue
            number = numeric_value(value)
            if number is not None:
                metrics.setdefault(key, []).append((row, number))
    return rows, metrics, bad


def same(a: float, b: float) -> bool:
    return (math.isnan(a) and math.isnan(b)) or a == b


def pairs(batch: RecordBatch) -> dict[str, list[Any]]:
    return {
        name: list(zip(rows.tolist(), values.tolist(), strict=True))
        for name, (rows, values) in batch.metrics.items()
    }


@settings(max_examples=400, deadline=None)
@given(same_key_records())
def test_columns_hold_what_the_record_rule_says(records: list[dict[str, Any]]) -> None:
    rows, metrics, bad = reference(records)
    batch = build_batch(records)
    assert batch.bad_lines == bad
    assert len(batch) == len(rows)
    for j, key in enumerate(RESERVED):
        column = getattr(batch, key).tolist()
        assert all(same(got, want[j]) for got, want in zip(column, rows, strict=True)), key
    got = pairs(batch)
    assert got.keys() == metrics.keys()
    for name, expected in metrics.items():
        assert [r for r, _ in got[name]] == [r for r, _ in expected], name
        assert all(same(g, w) for (_, g), (_, w) in zip(got[name], expected, strict=True)), name


def test_a_long_run_of_plain_numbers_is_exact() -> None:
    """The bulk pass on the common case: ints, floats, booleans and a NaN the trainer wrote, kept bit for
    bit (a NaN stays a NaN, never a missing value)."""
    records = [
        {"event": "step", "time": 1.5 + i, "step": i, "loss": 1 / (i + 1), "ok": i % 2 == 0, "n": i * 3}
        for i in range(5000)
    ]
    records[7]["loss"] = math.nan
    batch = build_batch(records)
    assert batch.bad_lines == 0
    assert batch.step.tolist() == [float(i) for i in range(5000)]
    loss_rows, loss = batch.metrics["loss"]
    assert loss_rows.tolist() == list(range(5000))
    assert math.isnan(loss[7])
    assert np.array_equal(np.delete(loss, 7), np.delete(np.array([1 / (i + 1) for i in range(5000)]), 7))
    assert batch.metrics["ok"][1].tolist() == [1.0 if i % 2 == 0 else 0.0 for i in range(5000)]
    assert batch.metrics["n"][1].tolist() == [float(i * 3) for i in range(5000)]
