"""Gradient and optimizer health: ``exploding_gradients``, ``vanishing_gradients``, ``no_param_updates``."""

from __future__ import annotations

import math
import re

import numpy as np

from termmon.analysis.alerts.base import Found, spot
from termmon.analysis.alerts.config import (
    ExplodingGradientsConfig,
    NoParamUpdatesConfig,
    VanishingGradientsConfig,
)
from termmon.analysis.alerts.criteria import CriteriaDetector, Criterion
from termmon.analysis.alerts.episodes import EpisodeTracker
from termmon.analysis.alerts.loss import earliest_metric
from termmon.analysis.alerts.model import Severity, fmt_limit, fmt_ratio, fmt_value
from termmon.analysis.alerts.points import BLOCK_POINTS, Cursor, Points, blocks, merge_flags, value_at
from termmon.analysis.alerts.rolling import rolling_median_before, rolling_min_before
from termmon.format import OPTIMIZER_STEPS
from termmon.model.run import Run
from termmon.roles import Role, names_for, spec

EXPLODING_ADVICE = "clip gradients (torch.nn.utils.clip_grad_norm_(params, 1.0)) or lower the lr"


def _lr_text(run: Run, row: int) -> str:
    """The advice for an explosion, with the lr of that record when it was logged."""
    lr = next(
        (
            v
            for n in names_for(Role.LR, run.metrics)
            if np.isfinite(v := value_at(run, n, np.array([row]))[0])
        ),
        None,
    )
    return EXPLODING_ADVICE + (f" (lr is {fmt_value(float(lr))})" if lr is not None else "")


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
        # The median is at least the window's minimum: only where a point is above ``ratio`` times that
        # (with a margin for rounding) can it be ``ratio`` times the median, so only there is it taken.
        lowest = rolling_min_before(np.concatenate([state.history, values]), len(state.history), cfg.window)
        with np.errstate(invalid="ignore", over="ignore"):
            maybe = (values > 0) & ~(values < cfg.ratio * lowest * (1 - 1e-9))
        baseline = np.full(len(points), np.nan)
        baseline[finite] = rolling_median_before(state.history, values, cfg.window, cfg.min_history, maybe)
        before = np.zeros(len(points), dtype=np.int64)
        before[finite] = np.minimum(state.seen + np.arange(len(values)), cfg.window)
        state.seen += len(values)
        state.history = np.concatenate([state.history, values])[-cfg.window :]
        with np.errstate(invalid="ignore", divide="ignore"):
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
            message = f"{name} {fmt_value(value)} at {at.where}: {'; '.join(reasons)}; {_lr_text(points.run, at.row)}"
            found.append(at.found("exploding_gradients", Severity.CRITICAL, message, name, value))
        return found


#: Per-tensor gradient norms: ``gradients/<parameter>/norm`` (termmon's logger, seed 003).
LAYER_NORM = re.compile(r"^gradients/(?!global/)(.+)/norm$")
VANISHING_ADVICE = (
    "check the init (kaiming/xavier for the activation), the activation (sigmoid/tanh saturate; dead "
    "ReLUs after a bad bias or a too-high lr: try LeakyReLU) and the depth (residual connections, "
    "normalisation layers)"
)


class _LossFloor:
    """Whether the training loss has reached ~0 at a record: tiny gradients there are convergence, not a
    gradient-flow bug."""

    def __init__(self, ratio: float) -> None:
        self.ratio = ratio
        self.metric: str | None = None
        self.first = math.nan

    def converged(self, run: Run, rows: np.ndarray) -> np.ndarray:
        if self.metric is None:
            self.metric = earliest_metric(run, Role.TRAIN_LOSS)
        if self.metric is None:
            return np.zeros(len(rows), dtype=bool)
        if not math.isfinite(self.first):
            values = run.metrics[self.metric].values.view
            finite = values[np.isfinite(values)]
            if len(finite) == 0:
                return np.zeros(len(rows), dtype=bool)
            self.first = float(abs(finite[0]))
        column = run.metrics[self.metric]
        haystack = column.rows.view
        index = np.searchsorted(haystack, rows.astype(haystack.dtype, copy=False), side="right") - 1
        loss = np.where(index >= 0, column.values.view[np.maximum(index, 0)], np.nan)
        with np.errstate(invalid="ignore"):
            return np.abs(loss) <= self.ratio * self.first


class VanishingGradientsDetector:
    """The global norm below ``threshold`` for ``consecutive`` points, or, judged per layer from the
    per-tensor norms, for ``layer_consecutive`` records: the input-side layer's tensors, or at least
    ``layer_share`` of all tensors, with a norm of 0 or ``layer_decades`` decades below the largest.
    A record whose training loss is within ``converged_ratio`` of 0 (relative to its first value) is
    convergence, not a vanishing gradient, and counts as healthy.
    """

    def __init__(self, config: VanishingGradientsConfig) -> None:
        self.config = config
        self.cursor = Cursor()
        self.trackers: dict[str, EpisodeTracker] = {}
        self.layers: list[str] = []
        self.metrics_seen = 0
        self.layer_tracker = EpisodeTracker(config.layer_consecutive, config.layer_consecutive)
        self.floor = _LossFloor(config.converged_ratio)

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
            if tiny.any():  # the loss lookup only where it can matter: a healthy refresh has no tiny norm
                tiny &= ~self.floor.converged(run, points.rows)
            for i in tracker.feed(tiny):
                at = spot(points, i)
                value = float(points.value[i])
                message = (
                    f"{name} {fmt_value(value)} at {at.where}: below {fmt_limit(cfg.threshold)} "
                    f"for {cfg.consecutive} points in a row while the loss is far from 0; {VANISHING_ADVICE}"
                )
                found.append(at.found("vanishing_gradients", Severity.WARNING, message, name, value))
        return found + self._per_layer(run)

    def _per_layer(self, run: Run) -> list[Found]:
        if len(run.metrics) != self.metrics_seen:  # new metric names only: the check is per name
            known = set(self.layers)
            self.layers += [n for n in run.metrics if n not in known and LAYER_NORM.match(n)]
            self.metrics_seen = len(run.metrics)
        taken = {name: p for name in self.layers if (p := self.cursor.take(run, name)) is not None}
        if not taken:
            return []
        rows = merge_flags(run, [(p.rows, np.zeros(len(p.rows), dtype=bool)) for p in taken.values()]).rows
        return [
            f
            for lo in range(0, len(rows), BLOCK_POINTS)
            for f in self._judge(run, rows[lo : lo + BLOCK_POINTS], taken)
        ]

    def _judge(self, run: Run, rows: np.ndarray, taken: dict[str, Points]) -> list[Found]:
        """Per-layer verdicts on the records ``rows`` (new ones, in order). ``taken``: the layers' new
        points; a layer with none has no value in these records, and one whose new points are exactly
        these records needs no lookup (the usual live refresh: every tensor in every record)."""
        cfg = self.config
        missing = np.full(len(rows), np.nan)

        def norms_of(name: str) -> np.ndarray:
            p = taken.get(name)
            if p is None:
                return missing
            if len(p.rows) == len(rows) and np.array_equal(p.rows, rows):
                return p.value
            return value_at(run, name, rows)

        norms = np.stack([norms_of(name) for name in self.layers])  # (layers, rows)
        present = np.isfinite(norms)
        with np.errstate(invalid="ignore"):
            largest = np.nanmax(np.where(present, norms, -np.inf), axis=0)
            tiny = present & ((norms <= 0) | (norms < largest * 10.0**-cfg.layer_decades))
        counted = present.sum(axis=0)
        first = _module(self.layers[0])
        inputs = np.array([_module(n) == first for n in self.layers])
        input_dead = (tiny | ~present)[inputs].all(axis=0) & present[inputs].any(axis=0)
        share = tiny.sum(axis=0) / np.maximum(counted, 1)
        bad = (counted >= 2) & (largest > 0) & (input_dead | (share >= cfg.layer_share))
        if bad.any():
            bad &= ~self.floor.converged(run, rows)
        found = []
        merged = merge_flags(run, [(rows, bad)])
        for i in self.layer_tracker.feed(merged.flagged):
            at = spot(merged, i)
            names = [_short(n) for n, t in zip(self.layers, tiny[:, i], strict=True) if t]
            top = int(np.nanargmax(np.where(present[:, i], norms[:, i], -np.inf)))
            shown = ", ".join(names[:4]) + (f" and {len(names) - 4} more" if len(names) > 4 else "")
            where = "the input-side layer" if input_dead[i] else "most layers"
            message = (
                f"gradients vanish in {where} at {at.where}: {len(names)} of {int(counted[i])} tensors "
                f"have a gradient norm of 0 or over {cfg.layer_decades:g} decades below the largest "
                f"({_short(self.layers[top])} {fmt_value(float(largest[i]))}): {shown}; {VANISHING_ADVICE}"
            )
            found.append(
                at.found("vanishing_gradients", Severity.WARNING, message, self.layers[top], float(share[i]))
            )
        return found


def _short(metric: str) -> str:
    match = LAYER_NORM.match(metric)
    return match.group(1) if match else metric


def _module(metric: str) -> str:
    """The module a parameter's norm belongs to (``gradients/0.weight/norm`` -> ``0``)."""
    return _short(metric).rsplit(".", 1)[0]


_NUM_UPDATED = "param_updates/num_updated"
_NUM_TOTAL = "param_updates/num_total"
_NO_UPDATE_WARNING = "param_updates/no_update_warning"
_OPTIMIZER_STEPS = OPTIMIZER_STEPS


def _none_updated(run: Run, rows: np.ndarray, values: np.ndarray) -> np.ndarray:
    total = value_at(run, _NUM_TOTAL, rows)
    none: np.ndarray = (values == 0) & ~(total == 0)
    return none


def _updated_reason(run: Run, row: int, value: float) -> str:
    """What was seen, and the likely cause: gradients present, the optimizer not stepping, an lr of 0."""
    at = np.array([row])
    total = value_at(run, _NUM_TOTAL, at)[0]
    of = f" of {total:,.0f}" if np.isfinite(total) else ""
    parts = [f"{_NUM_UPDATED} is {value:,.0f}{of}"]
    grad = next(
        ((n, g) for n in spec(Role.GRAD_NORM).names if np.isfinite(g := value_at(run, n, at)[0])), None
    )
    if grad is not None and grad[1] > 0:
        parts.append(f"gradients present ({grad[0]} {fmt_value(float(grad[1]))}), parameters unchanged")
    steps = value_at(run, _OPTIMIZER_STEPS, at)[0]
    lrs = [(n, value_at(run, n, at)[0]) for n in names_for(Role.LR, run.metrics)]
    if steps == 0:
        parts.append("optimizer.step() was not called since the previous log step: call it after backward()")
    elif any(lr == 0 for _, lr in lrs):
        zero = ", ".join(n for n, lr in lrs if lr == 0)
        parts.append(f"{zero} is 0: check the lr schedule (a warm-up starting at 0, a decay to 0)")
    else:
        parts.append("check that the optimizer was given these parameters and that they require grad")
    return "; ".join(parts)


def no_param_updates_detector(config: NoParamUpdatesConfig) -> CriteriaDetector:
    """The producer reports that an optimizer step changed no parameter."""
    criteria = [
        Criterion(_NUM_UPDATED, _none_updated, _updated_reason),
        Criterion(
            _NO_UPDATE_WARNING,
            lambda run, rows, values: values > 0,
            lambda run, row, value: (
                "" if _NUM_UPDATED in run.metrics else "the trainer's no-update warning is set"
            ),
        ),
    ]
    tracker = EpisodeTracker(config.consecutive, 1)
    return CriteriaDetector("no_param_updates", Severity.WARNING, "no parameters changed", criteria, tracker)
