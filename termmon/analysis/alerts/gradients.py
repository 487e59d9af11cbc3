"""Gradient and optimizer health: ``exploding_gradients``, ``vanishing_gradients``, ``no_param_updates``."""

from __future__ import annotations

import numpy as np

from termmon.analysis.alerts.base import Found, spot
from termmon.analysis.alerts.config import (
    ExplodingGradientsConfig,
    NoParamUpdatesConfig,
    VanishingGradientsConfig,
)
from termmon.analysis.alerts.criteria import CriteriaDetector, Criterion
from termmon.analysis.alerts.episodes import EpisodeTracker
from termmon.analysis.alerts.model import Severity, fmt_limit, fmt_ratio, fmt_value
from termmon.analysis.alerts.points import Cursor, Points, blocks, value_at
from termmon.model.run import Run


def rolling_median_before(
    history: np.ndarray, values: np.ndarray, window: int, min_history: int
) -> np.ndarray:
    """For each of ``values``, the median of the ``window`` values before it (``history`` then ``values``),
    NaN while fewer than ``min_history`` precede it. Exact, so any split of a series gives the same result.
    """
    import pandas as pd  # a skip-list rolling median: O(n log window), imported only when gradients appear

    combined = np.concatenate([history, values])
    medians = pd.Series(combined).rolling(window, min_periods=min_history).median().to_numpy()
    before = np.concatenate([[np.nan], medians[:-1]])
    return before[len(history) :]


class _Explosion:
    def __init__(self, config: ExplodingGradientsConfig) -> None:
        self.history = np.empty(0)
        self.seen = 0  # finite points so far
        self.tracker = EpisodeTracker(1, config.rearm_points)


class ExplodingGradientsDetector:
    """Above an absolute bound, or ``ratio`` times the median of its own last ``window`` finite points."""

    def __init__(self, config: ExplodingGradientsConfig) -> None:
        self.config = config
        self.cursor = Cursor()
        self.states: dict[str, _Explosion] = {}

    def update(self, run: Run, now: float) -> list[Found]:
        cfg = self.config
        found = []
        for name in cfg.metrics:
            taken = self.cursor.take(run, name)
            if taken is None:
                continue
            state = self.states.setdefault(name, _Explosion(cfg))
            for points in blocks(taken):
                found.extend(self._update_block(name, state, points))
        return found

    def _update_block(self, name: str, state: _Explosion, points: Points) -> list[Found]:
        cfg = self.config
        found = []
        finite = np.isfinite(points.value)
        values = points.value[finite]
        baseline = np.full(len(points), np.nan)
        baseline[finite] = rolling_median_before(state.history, values, cfg.window, cfg.min_history)
        before = np.zeros(len(points), dtype=np.int64)
        before[finite] = np.minimum(state.seen + np.arange(len(values)), cfg.window)
        state.seen += len(values)
        state.history = np.concatenate([state.history, values])[-cfg.window :]
        with np.errstate(invalid="ignore"):
            ratio = points.value / baseline
            above = finite & (points.value > cfg.abs_threshold)
            far = finite & (baseline > 0) & (ratio > cfg.ratio)
        for i in state.tracker.feed(above | far):
            at = spot(points, i)
            value = float(points.value[i])
            reasons = []
            if far[i]:
                reasons.append(f"{fmt_ratio(float(ratio[i]))} its median of the last {before[i]} points")
            if above[i]:
                reasons.append(f"above the bound {fmt_limit(cfg.abs_threshold)}")
            message = f"{name} {fmt_value(value)} at {at.where}: {'; '.join(reasons)}"
            found.append(at.found("exploding_gradients", Severity.CRITICAL, message, name, value))
        return found


class VanishingGradientsDetector:
    """Below ``threshold`` for ``consecutive`` points in a row."""

    def __init__(self, config: VanishingGradientsConfig) -> None:
        self.config = config
        self.cursor = Cursor()
        self.trackers: dict[str, EpisodeTracker] = {}

    def update(self, run: Run, now: float) -> list[Found]:
        cfg = self.config
        found = []
        for name in cfg.metrics:
            points = self.cursor.take(run, name)
            if points is None:
                continue
            tracker = self.trackers.setdefault(name, EpisodeTracker(cfg.consecutive, cfg.consecutive))
            with np.errstate(invalid="ignore"):
                tiny = np.abs(points.value) < cfg.threshold
            for i in tracker.feed(tiny):
                at = spot(points, i)
                value = float(points.value[i])
                message = (
                    f"{name} {fmt_value(value)} at {at.where}: below {fmt_limit(cfg.threshold)} "
                    f"for {cfg.consecutive} points in a row"
                )
                found.append(at.found("vanishing_gradients", Severity.WARNING, message, name, value))
        return found


_NUM_UPDATED = "param_updates/num_updated"
_NUM_TOTAL = "param_updates/num_total"
_NO_UPDATE_WARNING = "param_updates/no_update_warning"


def _none_updated(run: Run, rows: np.ndarray, values: np.ndarray) -> np.ndarray:
    total = value_at(run, _NUM_TOTAL, rows)
    return (values == 0) & ~(total == 0)


def _updated_reason(run: Run, row: int, value: float) -> str:
    total = value_at(run, _NUM_TOTAL, np.array([row]))[0]
    of = f" of {total:,.0f}" if np.isfinite(total) else ""
    return f"{_NUM_UPDATED} is {value:,.0f}{of}"


def no_param_updates_detector(config: NoParamUpdatesConfig) -> CriteriaDetector:
    """The producer reports that an optimizer step changed no parameter."""
    criteria = [
        Criterion(_NUM_UPDATED, _none_updated, _updated_reason),
        Criterion(
            _NO_UPDATE_WARNING,
            lambda run, rows, values: values > 0,
            lambda run, row, value: "the trainer's no-update warning is set",
        ),
    ]
    tracker = EpisodeTracker(config.consecutive, 1)
    return CriteriaDetector("no_param_updates", Severity.WARNING, "no parameters changed", criteria, tracker)
