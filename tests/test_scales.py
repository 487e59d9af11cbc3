"""The one set of axis rules (termmon.views.scales) that every chart follows."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from termmon.views.scales import Scale, choose_scale, compact, is_integer_series, ticks


@pytest.mark.parametrize(
    ("value", "label"),
    [
        (1e30, "1e30"),
        (2500, "2.5k"),
        (-3.1e-4, "-3.1e-4"),
        (0.25, "0.25"),
        (12, "12"),
        (0, "0"),
        (40e6, "40M"),
        (999.7, "1k"),
        (math.nan, "NaN"),
        (math.inf, "+Inf"),
    ],
)
def test_compact_labels(value: float, label: str) -> None:
    assert compact(value) == label


def test_log_labels_are_values_not_exponents() -> None:
    placed = ticks(0.0, 30.0, Scale("log"))
    assert [label.strip() for _, label in placed] == ["1", "1e10", "1e20", "1e30"]
    assert [p for p, _ in placed] == [0.0, 10.0, 20.0, 30.0]


def test_scale_choice() -> None:
    assert choose_scale(np.array([0.5, 0.4, 0.3])).kind == "linear"
    assert choose_scale(np.array([0.5, 2e30, np.nan, np.inf])).kind == "log"  # NaN/Inf do not count
    assert choose_scale(np.array([-1.0, 0.0, 2.0, 3.0, 1e9])).kind == "symlog"  # crosses zero
    assert choose_scale(np.array([-1.0, 0.5, 2.0, 1e-9])).kind == "linear"  # one tiny value is not a span
    assert choose_scale(np.array([0.5, 0.4]), "log").kind == "log"  # the user's `l`
    assert choose_scale(np.array([-0.5, 0.4]), "log").kind == "symlog"
    assert choose_scale(np.array([0.5, 2e30]), "linear").kind == "linear"


def test_integer_series_get_integer_ticks() -> None:
    counts = np.array([1.0, 1.0, 2.0, 3.0])
    assert is_integer_series(counts) and not is_integer_series(counts / 2)
    placed = ticks(0.9, 3.1, Scale(), integer=True)
    assert [p for p, _ in placed] == [1.0, 2.0, 3.0]


@settings(max_examples=300, deadline=None)
@given(
    st.floats(-1e30, 1e30, allow_nan=False),
    st.floats(1e-6, 1e3),
)
def test_linear_ticks_are_round_inside_short_and_distinct(lo: float, relative: float) -> None:
    hi = lo + max(abs(lo) * relative, 1e-9)
    placed = ticks(lo, hi, Scale())
    assert placed, "no ticks"
    positions = [p for p, _ in placed]
    labels = [label for _, label in placed]
    assert all(lo - 1e-9 * max(1.0, abs(lo)) <= p <= hi + 1e-9 * max(1.0, abs(hi)) for p in positions)
    assert len(set(labels)) == len(labels)
    assert len({len(label) for label in labels}) == 1  # fixed width
    if len(positions) > 1:
        step = positions[1] - positions[0]
        mantissa = step / 10 ** math.floor(math.log10(step))
        assert any(math.isclose(mantissa, m, rel_tol=1e-6) for m in (1, 2, 2.5, 5, 10))


@settings(max_examples=300, deadline=None)
@given(st.floats(-1e30, 1e30, allow_nan=False), st.floats(1e-2, 1e6))
def test_tick_labels_stay_short(lo: float, relative: float) -> None:
    """Unless the ticks are closer together than a hundredth of their size, a label fits 10 cells."""
    hi = lo + max(abs(lo) * relative, 1e-9)
    for _, label in ticks(lo, hi, Scale()):
        assert len(label.strip()) <= 10, label


def test_symlog_round_trip_and_ticks() -> None:
    scale = Scale("symlog", linthresh=1.0)
    values = np.array([-1e6, -1.0, 0.0, 0.5, 1e30])
    assert np.allclose(scale.inverse(scale.forward(values)), values, rtol=1e-9)
    placed = ticks(float(scale.forward(np.array([-1e6]))[0]), 30.0, scale)
    assert "0" in [label.strip() for _, label in placed]
