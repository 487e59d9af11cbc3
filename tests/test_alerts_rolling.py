"""The exploding-gradient rule's rolling statistics, fed a series in any number of slices (as the monitor
does, refresh by refresh), equal a from-scratch computation over the whole series."""

from __future__ import annotations

import itertools
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from termmon.analysis.alerts.config import ExplodingGradientsConfig
from termmon.analysis.alerts.gradients import ExplodingGradientsDetector
from termmon.analysis.alerts.rolling import rolling_median_before, rolling_min_before
from termmon.format import GRAD_NORM
from termmon.model.run import Run
from tests.runs import feed, make_records


def _reference_median(x: np.ndarray, window: int, min_history: int) -> np.ndarray:
    out = np.full(len(x), np.nan)
    for k in range(len(x)):
        before = x[max(0, k - window) : k]
        if len(before) >= min_history:
            out[k] = float(np.median(before))
    return out


def _incremental(x: np.ndarray, cuts: list[int], window: int, min_history: int) -> np.ndarray:
    """Slice by slice, carrying only the last ``window`` values, as the detector does."""
    history, parts = np.empty(0), []
    bounds = [0, *sorted(c for c in set(cuts) if 0 < c < len(x)), len(x)]
    for lo, hi in itertools.pairwise(bounds):
        values = x[lo:hi]
        parts.append(rolling_median_before(history, values, window, min_history))
        history = np.concatenate([history, values])[-window:]
    return np.concatenate(parts) if parts else np.empty(0)


series = st.lists(
    st.one_of(
        st.integers(0, 3).map(float),  # ties and zeros: the even-window mean of two equal middles
        st.floats(1e-6, 1e6, allow_nan=False),
    ),
    min_size=1,
    max_size=300,
).map(np.array)


@settings(max_examples=150, deadline=None)
@given(
    x=series,
    cuts=st.lists(st.integers(0, 300), max_size=10),
    window=st.integers(2, 40),
    min_history=st.integers(1, 40),
)
def test_median_over_any_split_equals_the_reference(
    x: np.ndarray, cuts: list[int], window: int, min_history: int
) -> None:
    got = _incremental(x, cuts, window, min_history)
    want = _reference_median(x, window, min_history)
    assert np.array_equal(got, want, equal_nan=True)


@settings(max_examples=150, deadline=None)
@given(x=series, start=st.integers(0, 300), window=st.integers(1, 40))
def test_rolling_min_equals_the_reference(x: np.ndarray, start: int, window: int) -> None:
    start = min(start, len(x))
    want = [x[max(0, k - window) : k].min() if k else np.inf for k in range(start, len(x))]
    assert np.array_equal(rolling_min_before(x, start, window), np.array(want, dtype=float))


def test_median_only_where_wanted() -> None:
    x = np.arange(1.0, 11.0)
    wanted = np.zeros(10, dtype=bool)
    wanted[[3, 9]] = True
    got = rolling_median_before(np.empty(0), x, 4, 1, wanted)
    assert got[3] == 2.0 and got[9] == 7.5
    assert np.isnan(np.delete(got, [3, 9])).all()


def test_detecting_an_explosion_does_not_import_pandas(tmp_path: Path) -> None:
    """pandas costs ~0.75 CPU-s to import: the monitor's alert pass must not pull it in."""
    code = (
        "import sys\n"
        "from pathlib import Path\n"
        "from tests.runs import run_of\n"
        "from tests.test_alerts_engine import troubled_records\n"
        "from termmon.analysis.alerts import AlertEngine\n"
        "run = run_of(Path(sys.argv[1]), troubled_records())\n"
        "kinds = {a.kind for a in AlertEngine().update(run, now=run.last_time)}\n"
        "assert 'exploding_gradients' in kinds, kinds\n"
        "assert 'pandas' not in sys.modules, 'pandas imported'\n"
    )
    root = Path(__file__).resolve().parents[1]
    subprocess.run([sys.executable, "-c", code, str(tmp_path)], check=True, cwd=root)


def _reference_explosions(values: np.ndarray, cfg: ExplodingGradientsConfig) -> list[int]:
    """Indices where an exploding_gradients episode starts, from scratch: every finite point against the
    median of the finite points before it, one point at a time."""
    fired, active, calm, history = [], False, 0, []
    for i, v in enumerate(values.tolist()):
        bad = False
        if math.isfinite(v):
            window = history[-cfg.window :]
            base = float(np.median(window)) if len(window) >= cfg.min_history else math.nan
            bad = v > cfg.abs_threshold or (base > 0 and v / base > cfg.ratio)
            history.append(v)
        if bad:
            if not active:
                fired.append(i)
            active, calm = True, 0
        else:
            calm += 1
            if active and calm >= cfg.rearm_points:
                active = False
    return fired


norms = st.lists(
    st.one_of(
        st.floats(0.5, 2.0),  # a healthy norm
        st.sampled_from([0.0, 0.0, 1e-9, 150.0, 2e3, math.nan, math.inf]),  # zeros, spikes, non-finite
    ),
    min_size=1,
    max_size=160,
)


@settings(max_examples=60, deadline=None)
@given(values=norms, cuts=st.lists(st.integers(1, 159), max_size=6))
def test_exploding_gradients_over_any_split_equal_a_from_scratch_reference(
    values: list[float], cuts: list[int]
) -> None:
    """Fed in slices, the detector (exact median only where the window's minimum allows a ratio alert)
    fires exactly where a point-by-point median says it must."""
    cfg = ExplodingGradientsConfig(window=12, min_history=3, ratio=20.0)
    x = np.array(values)
    records = make_records(len(x), {GRAD_NORM: x}, log_every=1, end=None)
    run, detector, found = Run(Path("explosions")), ExplodingGradientsDetector(cfg), []
    bounds = [0, *sorted(c for c in set(cuts) if c < len(records)), len(records)]
    for lo, hi in itertools.pairwise(bounds):
        feed(run, records[lo:hi])
        found += detector.update(run, now=0.0)
    assert [f.alert.step for f in found] == [i + 1 for i in _reference_explosions(x, cfg)]
