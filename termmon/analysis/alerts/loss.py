"""Loss trends: ``loss_plateau`` on the training loss, ``overfitting`` from evaluation vs training loss."""

from __future__ import annotations

import math
from typing import NamedTuple

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


def earliest_metric(run: Run, role: Role) -> str | None:
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


STOP_ADVICE = (
    "If the lr just dropped (a schedule, a scheduler bug) it may be too small now; otherwise the model has "
    "converged at this setting: try a higher lr floor, a larger model, or stop here"
)
#: The sudden-stop rule's windows: from this many points, growing by LADDER_GROWTH.
FAST_MIN_WINDOW = 4
LADDER_GROWTH = 1.5
#: Points judged together, window by window: temporaries of this many values.
LADDER_CHUNK = 1 << 16


def window_ladder(lo: int, hi: int) -> list[int]:
    """``lo, 1.5 lo, ...`` up to ``hi``: a few windows, so a point's cost does not grow with the run."""
    out, w = [], lo
    while w <= hi:
        out.append(w)
        w = max(w + 1, int(w * LADDER_GROWTH))
    return out


class LossPlateauDetector:
    """Two ways a training loss fails to improve, both ``loss_plateau``:

    * **No progress since the start**: after ``start_points`` points spanning ``start_steps`` steps, the
      mean of the second half of the run is not significantly (``z_score`` standard errors) below the
      first half's, nor above it. Reported once, and only until the loss first makes significant progress.
    * **Progress that stopped suddenly**: five consecutive windows of W points (W the shortest of a
      ladder 4..``fast_max_window`` where it shows): three significant steps down, then none
      (:func:`sudden_stops`). The window is set by the noise and the pace, not by the history.
    * **Progress that stopped, slowly**: three means of W finite points by prefix sums: the first W after
      warm-up, the W before the last W, and the last W, with W a quarter of the points since warm-up
      clipped to [min_window, max_window]. Flat: the last two differ by under ``z_score`` standard errors
      and ``min_rel_change`` of the loss, the progress since the first window is significant, and the pace
      between the last two is under ``max_pace_ratio`` of the average pace, for ``consecutive`` points.

    Noise is estimated from successive differences, which a trend barely touches. A point costs O(ladder),
    whatever the length of the run. The episode ends when the loss improves by ``min_rel_change`` on the
    level reported.
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
        self.start_tracker = EpisodeTracker(config.start_consecutive)
        self.fast_tracker = EpisodeTracker(config.fast_consecutive)
        self.level_window = 0  # the window of the sudden-stop episode, 0 for the quarter-history rule
        self.level_margin = 0.0  # and how far below its level (noise) the loss must fall to end it
        self.ladder = window_ladder(FAST_MIN_WINDOW, config.fast_max_window)
        self.progressed = False  # the loss has made significant progress since the start
        self.start_reported = False
        self.first_step = math.nan
        self.level: float | None = None  # the plateau reported, while its episode lasts

    def update(self, run: Run, now: float) -> list[Found]:
        if self.metric is None:
            self.metric = earliest_metric(run, Role.TRAIN_LOSS)
            if self.metric is None:
                return []
        points = self.cursor.take(run, self.metric)
        if points is None:
            return []
        parts = blocks(points)
        if len(parts) > 1:
            # Room for every block's sums at once: grown block by block, the prefix sums were joined
            # anew (a copy of all the sums so far) after each.
            for prefix in (self.sums, self.sq_diffs):
                prefix.reserve(len(prefix) + len(points))
        return [f for block in parts for f in self._update_block(block)]

    def _update_block(self, points: Points) -> list[Found]:
        finite = np.isfinite(points.value)
        values = points.value[finite]
        if len(values) == 0:
            return []
        count = self._extend(values)
        kept = _subset(points, finite)
        return self._from_start(kept, count) + self._stopped(kept, values)

    def _extend(self, values: np.ndarray) -> np.ndarray:
        """Add ``values`` to the prefix sums; the point count after each of them."""
        n0 = len(self.sums) - 1
        self.sums.extend(np.cumsum(np.concatenate([self.sums.view[-1:], values]))[1:])
        steps = (
            np.diff(np.concatenate([[self.last], values])) if n0 else np.concatenate([[0.0], np.diff(values)])
        )
        self.sq_diffs.extend(np.cumsum(np.concatenate([self.sq_diffs.view[-1:], steps**2]))[1:])
        self.last = float(values[-1])
        return np.arange(n0 + 1, n0 + len(values) + 1)

    def _noise_stderr(self, count: np.ndarray, span: np.ndarray, w: np.ndarray) -> np.ndarray:
        """Standard error of the difference of two means of ``w`` points, from the noise in the last ``span``."""
        q = self.sq_diffs.view
        lo = np.maximum(count - span + 1, 0)
        var = (q[count] - q[lo]) / np.maximum(span - 1, 1) / 2
        stderr: np.ndarray = np.sqrt(var * 2 / np.maximum(w, 1))
        return stderr

    def _from_start(self, kept: Points, count: np.ndarray) -> list[Found]:
        if self.progressed or self.start_reported:
            return []
        cfg = self.config
        s = self.sums.view
        half = np.maximum(count // 2, 1)
        first = s[half] / half
        second = (s[count] - s[count - half]) / half
        se = self._noise_stderr(count, half, half)  # noise of the second half: an early drop is not noise
        bound = np.maximum(cfg.z_score * se, cfg.min_rel_change * np.abs(first))
        steps = kept.step - self.first_step if math.isfinite(self.first_step) else np.zeros(len(count))
        if not math.isfinite(self.first_step) and len(kept.step):
            self.first_step = float(kept.step[0])
            steps = kept.step - self.first_step
        ready = (count >= cfg.start_points) & ~(steps < cfg.start_steps)  # no step numbers: points decide
        gain = first - second
        # Progress ends the check for good, so before the window is full it must be beyond doubt.
        sure = np.where(ready, cfg.z_score, 2 * cfg.z_score) * se
        gained = (count >= 8) & (gain > sure)
        rose = ready & (second - first > bound)
        end = len(count)
        progress_at = np.flatnonzero(gained)
        if len(progress_at):
            end = int(progress_at[0])
            self.progressed = True
        fired = self.start_tracker.feed((ready & ~gained & ~rose)[:end])
        if not fired:
            return []
        self.start_reported = True
        j = fired[0]
        at = spot(kept, j)
        h = int(half[j])
        message = (
            f"{self.metric} made no progress since the start: mean {fmt_value(float(second[j]))} over the "
            f"last {h} points to {at.where} vs {fmt_value(float(first[j]))} over the first {h}. "
            "Check the labels (do they match the inputs, are they shuffled apart from them?), the lr "
            "(0 or far too small?) and the data pipeline (constant or all-zero inputs, a wrong "
            "normalisation)"
        )
        return [at.found("loss_plateau", Severity.WARNING, message, self.metric, float(second[j]))]

    def _stopped(self, kept: Points, values: np.ndarray) -> list[Found]:
        """Progress that stopped: the original quarter-of-history windows (see the class docstring)."""
        first, prev, cur, w, flat = self._windows(values)
        fa, fb, fc, fw, fse, fast = sudden_stops(
            self.sums.view, self.sq_diffs.view, len(values), self.ladder, self.config
        )
        found = []
        i = 0
        while i < len(values):
            if self.level is not None:
                better = np.flatnonzero(self._below_level(cur, i))
                if len(better) == 0:
                    break
                i += int(better[0]) + 1
                self.level = None
                self.tracker = EpisodeTracker(self.config.consecutive)
                self.fast_tracker = EpisodeTracker(self.config.fast_consecutive)
                continue
            slow_fired = self.tracker.feed(flat[i:])
            fast_fired = self.fast_tracker.feed(fast[i:])
            if not slow_fired and not fast_fired:
                break
            if fast_fired and (not slow_fired or fast_fired[0] < slow_fired[0]):
                j = i + fast_fired[0]
                self.level = float(fc[j])
                self.level_window = int(fw[j])
                self.level_margin = self.config.fast_z * float(fse[j])
                found.append(self._sudden(kept, j, int(fw[j]), float(fa[j]), float(fb[j]), float(fc[j])))
                i = j + 1
                continue
            j = i + slow_fired[0]
            self.level = float(cur[j])
            self.level_window = 0
            self.level_margin = 0.0
            at = spot(kept, j)
            rel = (cur[j] - prev[j]) / abs(prev[j]) if prev[j] else 0.0
            message = (
                f"{self.metric} plateaued at {at.where}: mean {fmt_value(float(cur[j]))} over the last "
                f"{w[j]} points vs {fmt_value(float(prev[j]))} over the {w[j]} before ({rel:+.2%}), "
                f"down from {fmt_value(float(first[j]))} after warm-up. {STOP_ADVICE}"
            )
            found.append(at.found("loss_plateau", Severity.WARNING, message, self.metric, float(cur[j])))
            i = j + 1
        return found

    def _below_level(self, cur: np.ndarray, i: int) -> np.ndarray:
        """Whether the loss improved by ``min_rel_change`` on the level reported, at each point from ``i``:
        judged on the rule's own window (a sudden stop's is short, so a mean of it, not a point)."""
        assert self.level is not None
        target = self.level - max(self.config.min_rel_change * abs(self.level), self.level_margin)
        if not self.level_window:
            return cur[i:] < target
        s, w = self.sums.view, self.level_window
        count = np.arange(len(self.sums) - len(cur) + i, len(self.sums))
        improved: np.ndarray = (s[count] - s[np.maximum(count - w, 0)]) / w < target
        return improved

    def _sudden(self, kept: Points, j: int, w: int, a: float, b: float, cur: float) -> Found:
        at = spot(kept, j)
        rel = (cur - b) / abs(b) if b else 0.0
        message = (
            f"{self.metric} stopped improving at {at.where}: mean {fmt_value(cur)} over the last {w} points "
            f"vs {fmt_value(b)} over the {w} before ({rel:+.2%}), after falling steadily from "
            f"{fmt_value(a)} in the {w} before those. {STOP_ADVICE}"
        )
        return at.found("loss_plateau", Severity.WARNING, message, self.metric, cur)

    def _windows(
        self, values: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Per new point (already in the prefix sums): first, previous and last window means, W, flat."""
        cfg = self.config
        n0 = len(self.sums) - 1 - len(values)  # _extend has added them already
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


class SuddenStops(NamedTuple):
    """Per new point: the means of the windows A, B and C (C the latest), the window W, the standard error
    of a difference of two window means, and whether the sudden-stop rule holds there (where it does not,
    W is 1 and the rest 0)."""

    a: np.ndarray
    b: np.ndarray
    cur: np.ndarray
    window: np.ndarray
    noise: np.ndarray
    flat: np.ndarray


def sudden_stops(
    sums: np.ndarray,
    sq_diffs: np.ndarray,
    n: int,
    ladder: list[int],
    cfg: LossPlateauConfig,
    chunk: int = LADDER_CHUNK,
) -> SuddenStops:
    """The sudden-stop rule at each of the last ``n`` points of the prefix sums (``sums[k]``: sum of the
    first k finite values; ``sq_diffs[k]``: sum of the squared steps among them): progress that was steady
    over three windows (A00->A0->A->B, each beyond ``fast_z`` standard errors) stopped in the last (B->C
    within noise, under ``min_rel_change`` and under ``fast_pace_ratio`` of either earlier step), for the
    shortest W of ``ladder`` (ascending) where it shows.

    Window by window over ``chunk`` points at a time: the five window means of every point are shifted slices of
    one array of rolling means, so a point costs a few contiguous operations per window, and only the
    points already stepping down three times are looked at further.
    """
    total = len(sums)  # counts of the new points: total - n .. total - 1
    flat = np.zeros(n, dtype=bool)
    chosen = np.ones(n, dtype=np.int64)
    noise = np.zeros(n)
    means = np.zeros((3, n))
    for lo_point in range(0, n, chunk):
        hi = total - n + min(n, lo_point + chunk)  # end (exclusive) of the chunk's counts
        for w in ladder:
            lo = max(total - n + lo_point, cfg.fast_warmup_points + 5 * w)  # first count this W holds at
            m = hi - lo
            if m <= 0:
                break  # longer windows start later still
            at = lo - (total - n)  # the point at count lo
            # rolling[k]: the mean of the W points to count lo - 4W + k; the windows A00, A0, A, B and C
            # of the point at count lo + k are rolling[k], rolling[k + W], ..., rolling[k + 4W].
            rolling = (sums[lo - 4 * w : hi] - sums[lo - 5 * w : hi - w]) / w
            # Each of the three steps must exceed a bound that is never negative, so it is a step down:
            # one cheap pass keeps the few points with A00 > A0 > A > B, and the rule is judged on those.
            down = rolling[:-w] > rolling[w:]
            k = np.flatnonzero(down[:m] & down[w : w + m] & down[2 * w : 2 * w + m] & ~flat[at : at + m])
            if len(k) == 0:
                continue
            a00, a0, a, b, cur = (rolling[k + j * w] for j in range(5))
            var = (sq_diffs[lo + k] - sq_diffs[lo + k - 5 * w + 1]) / (5 * w - 1) / 2
            se = np.sqrt(var * 2 / w)
            first, second, recent = a0 - a, a - b, b - cur
            # Steps must also be visible against the loss itself: a loss that is exactly constant has no
            # noise, and its last-digit wobble would otherwise read as significant progress.
            visible = np.maximum(cfg.fast_z * se, cfg.min_rel_change / 10 * np.abs(b))
            hit = (
                (a00 - a0 > visible)
                & (first > visible)
                & (second > visible)
                & (np.abs(recent) <= cfg.z_score * se)
                & (np.abs(recent) <= cfg.min_rel_change * np.abs(b))
                & (recent <= cfg.fast_pace_ratio * np.minimum(first, second))
            )
            found = np.flatnonzero(hit)
            points = at + k[found]
            flat[points] = True
            chosen[points] = w
            noise[points] = se[found]
            means[:, points] = np.stack([a[found], b[found], cur[found]])
    return SuddenStops(means[0], means[1], means[2], chosen, noise, flat)


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
            self.eval_metric = earliest_metric(run, Role.EVAL_LOSS)
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
            # needles in the column's dtype: a Python int makes numpy cast the whole column (O(run))
            lo, hi = np.searchsorted(
                train_rows, np.array([self.prev_row, row], dtype=train_rows.dtype), side="right"
            ).tolist()
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
