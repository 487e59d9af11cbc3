"""``label_out_of_range``: seed 004's ``data_sanity_check`` found labels outside ``[0, n_codes)``."""

from __future__ import annotations

import numpy as np

from termmon.analysis.alerts.config import LabelOutOfRangeConfig
from termmon.analysis.alerts.criteria import CriteriaDetector, Criterion
from termmon.analysis.alerts.episodes import EpisodeTracker
from termmon.analysis.alerts.model import Severity
from termmon.analysis.alerts.points import value_at
from termmon.model.run import Run

_PREFIX = "data_sanity_check/"


def _range_text(run: Run, row: int) -> str:
    rows = np.array([row])
    lo, hi, n = (value_at(run, _PREFIX + key, rows)[0] for key in ("label_min", "label_max", "n_codes"))
    parts = []
    if np.isfinite(lo) and np.isfinite(hi):
        parts.append(f"labels span {lo:,.0f}..{hi:,.0f}")
    if np.isfinite(n):
        parts.append(f"n_codes is {n:,.0f}")
    return ", ".join(parts)


def label_out_of_range_detector(config: LabelOutOfRangeConfig) -> CriteriaDetector:
    def max_too_big(run: Run, rows: np.ndarray, values: np.ndarray) -> np.ndarray:
        return values >= value_at(run, _PREFIX + "n_codes", rows)

    criteria = [
        Criterion(
            _PREFIX + "labels_in_range",
            lambda run, rows, values: values == 0,
            lambda run, row, value: _range_text(run, row) or "the data sanity check failed",
        ),
        Criterion(
            _PREFIX + "label_min",
            lambda run, rows, values: values < 0,
            lambda run, row, value: _range_text(run, row),
        ),
        Criterion(_PREFIX + "label_max", max_too_big, lambda run, row, value: _range_text(run, row)),
    ]
    return CriteriaDetector(
        "label_out_of_range", Severity.CRITICAL, "labels out of range", criteria, EpisodeTracker(1, 1)
    )
