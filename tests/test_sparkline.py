"""The picker's sparkline: one block per chunk of the last values, at the chunk mean's height between
the tail's finite minimum and maximum; a chunk holding a non-finite value is a red ×."""

from __future__ import annotations

import math

import numpy as np
from hypothesis import example, given
from hypothesis import strategies as st

from termmon.views.widgets.run_picker import SPARK, SPARK_WIDTH, sparkline


def test_levels_follow_the_chunk_means() -> None:
    values = np.array([0.0, 0.0, 0.0, 0.0, 7.0, 7.0, 7.0, 7.0, 3.5, 3.5, 3.5, 3.5])
    assert sparkline(values, width=3).plain == SPARK[0] + SPARK[7] + SPARK[3]


def test_a_chunk_with_nan_is_a_red_cross() -> None:
    values = np.array([1.0, 2.0, math.nan, 4.0, 5.0, 6.0, math.inf, 8.0])
    text = sparkline(values, width=4)
    assert text.plain == SPARK[0] + "×" + SPARK[4] + "×"
    assert [(span.start, span.end, str(span.style)) for span in text.spans] == [
        (1, 2, "bold red"),
        (3, 4, "bold red"),
    ]


def test_only_the_last_values_count() -> None:
    values = np.concatenate([np.full(100, 1e9), np.arange(SPARK_WIDTH * 4, dtype=np.float64)])
    assert sparkline(values).plain == sparkline(values[-SPARK_WIDTH * 4 :]).plain
    # chunks of 4 of 0..31: means 1.5 .. 29.5 over a span of 31
    assert sparkline(values).plain == "".join(SPARK[int((1.5 + 4 * i) / 31 * 7)] for i in range(8))


@given(st.lists(st.floats(), max_size=3 * SPARK_WIDTH * 4), st.integers(1, 2 * SPARK_WIDTH))
@example([1e300, -1.7976931348623157e308], 2)  # the span overflows
@example([1.7e308] * 4 + [0.0] * 4, 2)  # a chunk's sum overflows
def test_any_values_give_one_cell_per_chunk(values: list[float], width: int) -> None:
    """Near the float limits (a span or a sum past them) too: a row must render, whatever was logged."""
    tail = values[-width * 4 :]
    text = sparkline(np.array(values, dtype=np.float64), width=width)
    assert len(text.plain) == min(width, len(tail))
    assert set(text.plain) <= set(SPARK) | {"×"}
    assert ("×" in text.plain) == (not all(math.isfinite(v) for v in tail))
