"""``label_out_of_range``: seed 004's ``data_sanity_check`` found labels outside ``[0, n_codes)``."""

from __future__ import annotations

import numpy as np

from termmon.analysis.alerts.config import LabelOutOfRangeConfig
from termmon.analysis.alerts.criteria import CriteriaDetector, Criterion
from termmon.analysis.alerts.episodes import EpisodeTracker
from termmon.analysis.alerts.model import Severity
from termmon.analysis.alerts.points import value_at
from termmon.format import DATA_SANITY, SANITY_BAD_BATCHES, SANITY_BATCHES
from termmon.model.run import Run

_PREFIX = DATA_SANITY
BAD_BATCHES, BATCHES = SANITY_BAD_BATCHES, SANITY_BATCHES
LABEL_ADVICE = "check the label mapping and n_codes against the data (an off-by-one, a vocabulary mismatch)"


def _range_text(run: Run, row: int) -> str:
    rows = np.array([row])
    lo, hi, n = (value_at(run, _PREFIX + key, rows)[0] for key in ("label_min", "label_max", "n_codes"))
    parts = []
    if np.isfinite(lo) and np.isfinite(hi):
        parts.append(f"labels span {lo:,.0f}..{hi:,.0f}")
    if np.isfinite(n):
        parts.append(f"n_codes is {n:,.0f}")
    bad, batches = value_at(run, BAD_BATCHES, rows)[0], value_at(run, BATCHES, rows)[0]
    if np.isfinite(bad) and np.isfinite(batches) and batches > 1:
        parts.append(f"{bad:,.0f} of the {batches:,.0f} batches checked since the last log step were bad")
    return ", ".join(parts) + f"; {LABEL_ADVICE}" if parts else ""


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
    tracker = EpisodeTracker(1, config.rearm_points)
    return CriteriaDetector("label_out_of_range", Severity.CRITICAL, "labels out of range", criteria, tracker)
