"""Loss trends: ``loss_plateau`` on the training loss, ``overfitting`` from evaluation vs training loss."""

from __future__ import annotations

import math

import numpy as np

from termmon.analysis.alerts.base import Found, spot
from termmon.analysis.alerts.config import LossPlateauConfig, OverfittingConfig
from termmon.analysis.alerts.episodes import EpisodeTracker
from termmon.analysis.alerts.model import Severity, fmt_value
from termmon.analysis.alerts.points import Cursor, Points
from termmon.model.columns import GrowableArray
from termmon.model.run import Run

TRAIN_LOSS_METRICS = ("train_loss", "loss", "train/loss", "loss/total")
EVAL_LOSS_METRICS = (
    "test/loss",
    "val/loss",
    "valid/loss",
    "validation/loss",
    "eval/loss",
    "test_loss",
    "val_loss",
    "eval_loss",
)


#: At an evaluation, the epoch's own training loss is the better comparison than step-level points.
EPOCH_TRAIN_LOSS_METRICS = ("train/loss", "train_loss", "loss", "loss/total")


def _earliest(run: Run, names: tuple[str, ...]) -> str | None:
    """The candidate that appeared first in the run (then by preference): a choice that does not depend on
    how the run's records were split into updates, because no later metric can start at an earlier row."""
    present = [(int(run.metrics[n].rows.view[0]), i, n) for i, n in enumerate(names) if n in run.metrics]
    return min(present)[2] if present else None


def _preferred_before(run: Run, names: tuple[str, ...], row: int) -> str | None:
    """The first of ``names`` that has a point at or before ``row``."""
    return next((n for n in names if n in run.metrics and run.metrics[n].rows.view[0] <= row), None)


class LossPlateauDetector:
    """The mean of the last W finite training-loss points against the W before them.

    W is a quarter of the points since warm-up (so a long run is judged over a long stretch and slow,
    steady progress stays significant), clipped to [min_window, max_window]. The loss has plateaued
    where the two means differ by less than ``min_rel_change`` of the loss *and* by less than
    ``z_score`` standard errors (noise estimated from successive differences, which a trend barely
    touches). A rising loss is not a plateau. Prefix sums make each point O(1).
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
        self.tracker = EpisodeTracker(config.consecutive, config.max_window)

    def update(self, run: Run, now: float) -> list[Found]:
        if self.metric is None:
            self.metric = _earliest(run, TRAIN_LOSS_METRICS)
            if self.metric is None:
                return []
        points = self.cursor.take(run, self.metric)
        if points is None:
            return []
        finite = np.isfinite(points.value)
        values = points.value[finite]
        if len(values) == 0:
            return []
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
        s, q = self.sums.view, self.sq_diffs.view
        prev = (s[np.maximum(count - w, 0)] - s[np.maximum(count - 2 * w, 0)]) / w
        cur = (s[count] - s[count - w]) / w
        noise_var = (q[count] - q[np.maximum(count - 2 * w + 1, 0)]) / np.maximum(2 * w - 1, 1) / 2
        stderr = np.sqrt(noise_var * 2 / w)
        change = np.abs(prev - cur)
        flat = valid & (change <= cfg.z_score * stderr) & (change <= cfg.min_rel_change * np.abs(prev))
        kept = _subset(points, finite)
        found = []
        for i in self.tracker.feed(flat):
            at = spot(kept, i)
            rel = (cur[i] - prev[i]) / abs(prev[i]) if prev[i] else 0.0
            message = (
                f"{self.metric} plateaued at {at.where}: mean {fmt_value(float(cur[i]))} over the last "
                f"{w[i]} points vs {fmt_value(float(prev[i]))} over the {w[i]} before ({rel:+.2%})"
            )
            found.append(at.found("loss_plateau", Severity.WARNING, message, self.metric, float(cur[i])))
        return found


def _subset(points: Points, keep: np.ndarray) -> Points:
    return Points(
        points.name,
        points.rows[keep],
        points.step[keep],
        points.epoch[keep],
        points.time[keep],
        points.value[keep],
    )


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
            self.eval_metric = _earliest(run, EVAL_LOSS_METRICS)
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
                self.train_metric = _preferred_before(run, EPOCH_TRAIN_LOSS_METRICS, row)
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
