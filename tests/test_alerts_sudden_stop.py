"""The loss_plateau rule for progress that stopped suddenly (:func:`sudden_stops`, vectorised window by
window) equals its plain definition, judged one point and one window at a time."""

from __future__ import annotations

import math

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from termmon.analysis.alerts.config import LossPlateauConfig
from termmon.analysis.alerts.loss import FAST_MIN_WINDOW, sudden_stops, window_ladder


def _prefix_sums(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """sums[k]: sum of the first k values; sq_diffs[k]: sum of the squared steps among them (as the
    detector keeps them)."""
    steps = np.concatenate([[0.0], np.diff(values)])
    return np.concatenate([[0.0], np.cumsum(values)]), np.concatenate([[0.0], np.cumsum(steps**2)])


def _reference(
    sums: np.ndarray, sq_diffs: np.ndarray, n: int, ladder: list[int], cfg: LossPlateauConfig
) -> list[tuple[float, float, float, int, float, bool]]:
    """Per point (count c of the last n): the shortest window W where three significant steps down
    (A00 -> A0 -> A -> B) are followed by none (B -> C), with the means of A, B and C and the noise."""
    s, q = sums.tolist(), sq_diffs.tolist()
    out = []
    for c in range(len(s) - n, len(s)):
        result = (0.0, 0.0, 0.0, 1, 0.0, False)
        for w in ladder:
            if c - cfg.fast_warmup_points < 5 * w:
                break
            a00, a0, a, b, cur = ((s[c - k * w] - s[c - (k + 1) * w]) / w for k in (4, 3, 2, 1, 0))
            se = math.sqrt((q[c] - q[c - 5 * w + 1]) / (5 * w - 1) / 2 * 2 / w)
            first, second, recent = a0 - a, a - b, b - cur
            visible = max(cfg.fast_z * se, cfg.min_rel_change / 10 * abs(b))
            if (
                a00 - a0 > visible
                and first > visible
                and second > visible
                and abs(recent) <= cfg.z_score * se
                and abs(recent) <= cfg.min_rel_change * abs(b)
                and recent <= cfg.fast_pace_ratio * min(first, second)
            ):
                result = (a, b, cur, w, se, True)
                break
        out.append(result)
    return out


# A loss in segments: falling steadily, then flat, then falling again..., with noise (sometimes rounded,
# so exact ties and exactly constant stretches occur): the shapes the rule tells apart.
segments = st.lists(
    st.tuples(st.integers(1, 120), st.sampled_from([0.0, 0.001, 0.01, 0.05])), min_size=1, max_size=6
)


@st.composite
def losses(draw: st.DrawFn) -> np.ndarray:
    slopes = np.concatenate([np.full(length, slope) for length, slope in draw(segments)])
    noise = np.random.default_rng(draw(st.integers(0, 2**32 - 1))).normal(
        0, draw(st.sampled_from([0, 1e-3, 0.02])), len(slopes)
    )
    values = 3.0 - np.cumsum(slopes) + noise
    return np.round(values, 2) if draw(st.booleans()) else values


@settings(max_examples=200, deadline=None)
@given(
    values=losses(),
    new=st.integers(1, 800),
    chunk=st.sampled_from([1, 7, 64, 1 << 16]),
    max_window=st.integers(4, 40),
    warmup=st.integers(0, 30),
)
def test_sudden_stops_equal_the_plain_definition(
    values: np.ndarray, new: int, chunk: int, max_window: int, warmup: int
) -> None:
    cfg = LossPlateauConfig(fast_max_window=max_window, fast_warmup_points=warmup)
    ladder = window_ladder(FAST_MIN_WINDOW, cfg.fast_max_window)
    sums, sq_diffs = _prefix_sums(values)
    n = min(new, len(values))
    got = sudden_stops(sums, sq_diffs, n, ladder, cfg, chunk=chunk)
    want = _reference(sums, sq_diffs, n, ladder, cfg)
    assert got.window.dtype == np.int64 and got.flat.dtype == bool
    assert list(zip(*(column.tolist() for column in got), strict=True)) == want


def test_a_loss_that_falls_then_stops_is_found_at_the_shortest_window() -> None:
    values = np.concatenate([np.linspace(3.0, 1.0, 60), np.full(40, 1.0)])
    cfg = LossPlateauConfig()
    sums, sq_diffs = _prefix_sums(values)
    got = sudden_stops(sums, sq_diffs, len(values), window_ladder(FAST_MIN_WINDOW, cfg.fast_max_window), cfg)
    first = int(np.flatnonzero(got.flat)[0])
    assert 60 < first < 70 and got.window[first] == FAST_MIN_WINDOW
    assert got.cur[first] == 1.0
