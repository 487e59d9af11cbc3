"""Loss trends: ``loss_plateau`` on the training loss, ``overfitting`` from evaluation vs training loss."""

from __future__ import annotations

import math

import numpy as np

from termmon.analysis.alerts.base import Found, spot
from termmon.analysis.alerts.config import LossPlateauConfig, OverfittingConfig
from termmon.analysis.alerts.episodes import EpisodeTracker
from termmon.analysis.alerts.model import Severity, fmt_value
from termmon.analysis.alerts.points import Cursor, Points, blocks
from termmon.format import EPOCH_TRAIN_LOSS
from termmon.model.columns import GrowableArray
from termmon.model.run import Run
from termmon.roles import Role, names_for


def _earliest(run: Run, role: Role) -> str | None:
    """The candidate that appeared first in the run (then by preference): a choice that does not depend on
    how the run's records were split into updates, because no later metric can start at an earlier row."""
    names = names_for(role, run.metrics)
    present = [(int(run.metrics[n].rows.view[0]), i, n) for i, n in enumerate(names)]
    return min(present)[2] if present else None


def _epoch_train_loss_before(run: Run, row: int) -> str | None:
    """The training loss to compare an evaluation with: one with a point at or before ``row``, the epoch's
    own (``train/loss``) before step-level points."""
    names = sorted(names_for(Role.TRAIN_LOSS, run.metrics), key=lambda n: n != EPOCH_TRAIN_LOSS)
    return next((n for n in names if run.metrics[n].rows.view[0] <= row), None)


class LossPlateauDetector:
    """The loss made real progress, and has stopped making it.

    Three means of W finite training-loss points, by prefix sums (O(1) a point): the first W after
    warm-up, the W before the last W, and the last W. W is a quarter of the points since warm-up, clipped
    to [min_window, max_window], so a long run is judged over a long stretch. Flat: the last two means
    differ by less than ``z_score`` standard errors (noise from successive differences, which a trend
    barely touches) and by less than ``min_rel_change`` of the loss. Stopped: that change per point is
    under ``max_pace_ratio`` of the average pace since the first window, and that earlier progress is
    itself significant. A run early in a long, slow descent has made no significant progress yet and a
    steadily converging one keeps its pace, so neither is a plateau; nor is a loss that rises.

    The episode ends when the loss improves by ``min_rel_change`` on the level reported.
    """

    def __init__(self, config: LossPlateauConfig) -> None:
        self.config = config
        self.cursor = Cursor()
        self.metric: str | None = None
        self.sums = GrowableArray(np.float64)  # sums[k]: sum of the first k finite values
        self.sq_diffs = GrowableArray(np.float64)  # sq_diffs[k]: sum of squared steps among the first k
        self.sums.extend(np.zeros(1))
        self.sq_diffs.extend(np.zeros(1))
        self.last = math.nan
        self.tracker = EpisodeTracker(config.consecutive)
        self.level: float | None = None  # the plateau reported, while its episode lasts

    def update(self, run: Run, now: float) -> list[Found]:
        if self.metric is None:
            self.metric = _earliest(run, Role.TRAIN_LOSS)
            if self.metric is None:
                return []
        points = self.cursor.take(run, self.metric)
        if points is None:
            return []
        return [f for block in blocks(points) for f in self._update_block(block)]

    def _update_block(self, points: Points) -> list[Found]:
        assert self.metric is not None
        finite = np.isfinite(points.value)
        values = points.value[finite]
        if len(values) == 0:
            return []
        first, prev, cur, w, flat = self._windows(values)
        kept = _subset(points, finite)
        found = []
        i = 0
        while i < len(values):
            if self.level is not None:
                better = np.flatnonzero(cur[i:] < self.level - self.config.min_rel_change * abs(self.level))
                if len(better) == 0:
                    break
                i += int(better[0]) + 1
                self.level = None
                self.tracker = EpisodeTracker(self.config.consecutive)
                continue
            fired = self.tracker.feed(flat[i:])
            if not fired:
                break
            j = i + fired[0]
            self.level = float(cur[j])
            at = spot(kept, j)
            rel = (cur[j] - prev[j]) / abs(prev[j]) if prev[j] else 0.0
            message = (
                f"{self.metric} plateaued at {at.where}: mean {fmt_value(float(cur[j]))} over the last "
                f"{w[j]} points vs {fmt_value(float(prev[j]))} over the {w[j]} before ({rel:+.2%}), "
                f"down from {fmt_value(float(first[j]))} after warm-up"
            )
            found.append(at.found("loss_plateau", Severity.WARNING, message, self.metric, float(cur[j])))
            i = j + 1
        return found

    def _windows(
        self, values: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Add ``values`` to the prefix sums; per new point: first, previous and last window means, W, flat."""
        cfg = self.config
        n0 = len(self.sums) - 1
        self.sums.extend(np.cumsum(np.concatenate([self.sums.view[-1:], values]))[1:])
        steps = (
            np.diff(np.concatenate([[self.last], values])) if n0 else np.concatenate([[0.0], np.diff(values)])
        )
        self.sq_diffs.extend(np.cumsum(np.concatenate([self.sq_diffs.view[-1:], steps**2]))[1:])
        self.last = float(values[-1])
        count = np.arange(n0 + 1, n0 + len(values) + 1)
        window = np.minimum((count - cfg.warmup_points) // 4, cfg.max_window)
        valid = window >= cfg.min_window
        w = np.where(valid, window, 1)
        start = np.where(valid, cfg.warmup_points, 0)
        s, q = self.sums.view, self.sq_diffs.view
        first = (s[start + w] - s[start]) / w
        prev = (s[np.maximum(count - w, 0)] - s[np.maximum(count - 2 * w, 0)]) / w
        cur = (s[count] - s[count - w]) / w
        noise_var = (q[count] - q[np.maximum(count - 2 * w + 1, 0)]) / np.maximum(2 * w - 1, 1) / 2
        stderr = np.sqrt(noise_var * 2 / w)
        change = np.abs(prev - cur)
        progress = first - cur
        pace = progress / np.maximum(count - w - start, 1)
        flat = (
            valid
            & (change <= cfg.z_score * stderr)
            & (change <= cfg.min_rel_change * np.abs(prev))
            & (progress > cfg.z_score * stderr)
            & (change / w <= cfg.max_pace_ratio * pace)
        )
        return first, prev, cur, w, flat


def _subset(points: Points, keep: np.ndarray) -> Points:
    return Points(run=points.run, name=points.name, rows=points.rows[keep], value=points.value[keep])


class OverfittingDetector:
    """Evaluation loss rose ``consecutive`` evaluations in a row while the training loss fell, and now sits
    ``min_rise`` above its best: one noisy evaluation, or a flat one at convergence, is not overfitting.

    The training loss at an evaluation is the mean of its points since the previous evaluation (the
    epoch's own value where train and eval share a record), so step-level noise does not decide it.
    """

    def __init__(self, config: OverfittingConfig) -> None:
        self.config = config
        self.cursor = Cursor()
        self.eval_metric: str | None = None
        self.train_metric: str | None = None
        self.prev_row = -1
        self.prev_eval = math.nan
        self.prev_train = math.nan
        self.best = math.inf
        self.streak = 0
        self.active = False

    def update(self, run: Run, now: float) -> list[Found]:
        if self.eval_metric is None:
            self.eval_metric = _earliest(run, Role.EVAL_LOSS)
            if self.eval_metric is None:
                return []
        points = self.cursor.take(run, self.eval_metric)
        if points is None:
            return []
        cfg = self.config
        found = []
        for i in np.flatnonzero(np.isfinite(points.value)).tolist():
            row, value = int(points.rows[i]), float(points.value[i])
            if self.train_metric is None:
                self.train_metric = _epoch_train_loss_before(run, row)
                if self.train_metric is None:  # no training loss yet to compare with
                    continue
            column = run.metrics[self.train_metric]
            train_rows, train_values = column.rows.view, column.values.view
            lo = int(np.searchsorted(train_rows, self.prev_row, side="right"))
            hi = int(np.searchsorted(train_rows, row, side="right"))
            recent = train_values[lo:hi]
            recent = recent[np.isfinite(recent)]
            train = float(recent.mean()) if len(recent) else math.nan
            if value > self.prev_eval and train < self.prev_train:
                self.streak += 1
            else:
                self.streak = 0
                self.active = False
            risen = value > self.best + cfg.min_rise * abs(self.best)
            if self.streak >= cfg.consecutive and risen and not self.active:
                self.active = True
                at = spot(points, i)
                message = (
                    f"{self.eval_metric} rose {self.streak} evaluations in a row to {fmt_value(value)} at "
                    f"{at.where} (best {fmt_value(self.best)}) while {self.train_metric} fell to {fmt_value(train)}"
                )
                found.append(at.found("overfitting", Severity.WARNING, message, self.eval_metric, value))
            self.best = min(self.best, value)
            self.prev_row, self.prev_eval, self.prev_train = row, value, train
        return found
