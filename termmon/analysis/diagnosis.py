"""What went wrong in a run, and what to check: seed 004's analyser and seed 000's notebook conclusions.

Pure functions over a :class:`Run`; ``termmon report`` renders the result. Thresholds that the alert
engine also uses (near-zero and exploding gradient norms) come from the same :class:`AlertConfig`, so a
``--config`` file moves both together. Every section is ``None`` when its metrics were never logged,
so the renderer can say what to turn on instead of printing an empty table.
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Final

import numpy as np

from termmon.analysis.alerts import Alert, AlertConfig, AlertEngine
from termmon.format import DATA_SANITY, EV_STEP, OPTIMIZER_STEPS
from termmon.model.run import Run, RunStatus
from termmon.roles import Role, names_for

#: Seed 004 compares the first and the last ten logged steps.
IMPROVEMENT_WINDOW: Final = 10
#: A change smaller than this fraction of the loss (or accuracy) is "flat", not an improvement.
IMPROVEMENT_MIN_REL: Final = 0.01
#: Seed 004's good range for the total gradient norm.
GOOD_GRAD_RANGE: Final = (0.1, 100.0)
#: A class this many percentage points above an even split of the batch labels is a label bias.
LABEL_BIAS_POINTS: Final = 15.0
TOP_N: Final = 10
#: An lr that starts at or below this fraction of its peak is warming up (seed 004's good sign)...
WARMUP_START_FRACTION: Final = 0.5
#: ...if it reaches its peak within this fraction of the run and levels off or decays after it: an lr
#: that climbs to the end (1.2e-4 to 13.6 on a diverging run) is not a warm-up.
WARMUP_PEAK_BY: Final = 0.75

_MODULE_NORM = re.compile(r"^gradients/(.+)/norm$")
_PARAM_CHANGE = re.compile(r"^updates/(.+)/change$")
_WINNER_PCT = re.compile(r"^(.*?)winner_(\d+)_pct$")
_SANITY = DATA_SANITY
_NUM_UPDATED, _NUM_TOTAL, _NO_UPDATE = (
    "param_updates/num_updated",
    "param_updates/num_total",
    "param_updates/no_update_warning",
)
_OPTIMIZER_STEPS = OPTIMIZER_STEPS


class Verdict(StrEnum):
    IMPROVED = "IMPROVED"
    FLAT = "did not improve (flat)"
    WORSE = "did not improve (got worse)"
    NONFINITE = "did not improve (became non-finite)"
    UNKNOWN = "too few points to tell"

    @property
    def bad(self) -> bool:
        return self in (Verdict.FLAT, Verdict.WORSE, Verdict.NONFINITE)


@dataclass(frozen=True)
class Span:
    """A sequence of values summarised: first/last/mean/min/max over the finite ones."""

    count: int
    nonfinite: int
    first: float
    last: float
    mean: float
    min: float
    max: float

    @classmethod
    def of(cls, values: np.ndarray) -> Span:
        finite = values[np.isfinite(values)]
        if not len(finite):
            return cls(len(values), len(values), math.nan, math.nan, math.nan, math.nan, math.nan)
        return cls(
            count=len(values),
            nonfinite=len(values) - len(finite),
            first=float(finite[0]),
            last=float(finite[-1]),
            mean=float(finite.mean()),
            min=float(finite.min()),
            max=float(finite.max()),
        )


@dataclass(frozen=True)
class EpochRow:
    """One epoch of step-level points (``epoch`` None: points logged without an epoch)."""

    epoch: int | None
    points: int
    loss: Span | None
    accuracy: Span | None
    lr: Span | None


@dataclass(frozen=True)
class Progression:
    loss_metric: str | None
    accuracy_metric: str | None
    epochs: list[EpochRow]
    epoch_metrics: dict[str, Span]
    lr: Span | None
    lr_ramps_up: bool


@dataclass(frozen=True)
class Change:
    """Mean of the first vs the last ``window`` points of a metric."""

    metric: str
    unit: str  # "steps" or "epochs": what a point is
    window: int
    first: float
    last: float
    verdict: Verdict

    @property
    def delta(self) -> float:
        return self.last - self.first


@dataclass(frozen=True)
class Improvement:
    loss: Change | None
    accuracy: Change | None


@dataclass(frozen=True)
class NamedValue:
    name: str
    mean: float
    last: float


@dataclass(frozen=True)
class Gradients:
    metric: str
    norms: Span
    near_zero: int
    near_zero_threshold: float
    exploding: int
    exploding_threshold: float
    top_modules: list[NamedValue]
    silent_modules: list[str]  # every logged norm below the near-zero threshold
    flowing_modules: int = 0  # modules whose gradient was not always near zero


@dataclass(frozen=True)
class Updates:
    measurements: int
    last_updated: float
    last_total: float
    min_updated: float
    no_update_steps: list[int | None]
    partial: int  # measurements where some but not all parameters changed
    top_changed: list[NamedValue]
    optimizer_idle: int = 0  # no-update measurements where the watched optimizer never stepped


@dataclass(frozen=True)
class LabelRangeCheck:
    step: int | None
    label_min: float
    label_max: float
    n_codes: float
    in_range: bool


@dataclass(frozen=True)
class LabelBias:
    metric_prefix: str
    batches: int
    class_pct: list[tuple[int, float]]  # (class, mean % of the batch labels)
    even_pct: float
    dominant: int
    dominant_pct: float

    @property
    def biased(self) -> bool:
        return self.dominant_pct - self.even_pct >= LABEL_BIAS_POINTS


@dataclass(frozen=True)
class DataChecks:
    label_ranges: list[LabelRangeCheck]
    bias: LabelBias | None

    @property
    def out_of_range(self) -> list[LabelRangeCheck]:
        return [check for check in self.label_ranges if not check.in_range]


@dataclass(frozen=True)
class Advice:
    """A bad sign that was found, and seed 004's list of what it usually means."""

    key: str
    finding: str
    checks: tuple[str, ...]


@dataclass
class Diagnosis:
    run_name: str
    status: RunStatus
    records: int
    bad_lines: int
    last_step: int | None
    last_epoch: int | None
    crash_error: str | None
    progression: Progression | None
    improvement: Improvement | None
    gradients: Gradients | None
    updates: Updates | None
    data: DataChecks | None
    alerts: list[Alert]
    good_signs: list[str] = field(default_factory=list)
    advice: list[Advice] = field(default_factory=list)


# --- series helpers ---------------------------------------------------------------------------------------
def role_metrics(run: Run, role: Role) -> list[str]:
    """The run's metrics that play ``role``, best first (see termmon.roles)."""
    return names_for(role, run.metrics)


def _step_points(run: Run, names: Sequence[str]) -> tuple[str, np.ndarray, np.ndarray, np.ndarray] | None:
    """(name, step, epoch, value) of the first of ``names`` with step-level points."""
    for name in names:
        series = run.series(name)
        if series is None:
            continue
        rows = run.metrics[name].rows.view
        keep = run.event.view[rows] == EV_STEP  # not epoch records, nor seed 004's epoch_start lr
        if keep.any():
            return name, series.step[keep], series.epoch[keep], series.value[keep]
    return None


def _epoch_points(run: Run, names: Sequence[str]) -> tuple[str, np.ndarray] | None:
    for name in names:
        series = run.series(name)
        if series is not None and series.epoch_level.any():
            return name, series.value[series.epoch_level]
    return None


def _as_int(value: float) -> int | None:
    return int(value) if math.isfinite(value) else None


def _values_by_row(run: Run, name: str) -> dict[int, float]:
    column = run.metrics.get(name)
    if column is None:
        return {}
    return dict(zip(column.rows.view.tolist(), column.values.view.tolist(), strict=True))


def _ranked(run: Run, pattern: re.Pattern[str]) -> list[NamedValue]:
    """Metrics matching ``pattern`` (group 1 is the name) by mean finite value, largest first."""
    found = []
    for metric in run.metric_names():
        match = pattern.match(metric)
        series = run.series(metric) if match else None
        if match is None or series is None:
            continue
        span = Span.of(series.value)
        if math.isfinite(span.mean):
            found.append(NamedValue(match.group(1), span.mean, span.last))
    return sorted(found, key=lambda item: -item.mean)


# --- sections ----------------------------------------------------------------------------------------------
def progression(run: Run) -> Progression | None:
    """Seed 004's per-epoch table (loss/accuracy first -> last, averages, lr) plus epoch-level metrics."""
    loss = _step_points(run, role_metrics(run, Role.TRAIN_LOSS))
    accuracy = _step_points(run, role_metrics(run, Role.TRAIN_ACCURACY))
    lr = _step_points(run, role_metrics(run, Role.LR))
    epoch_metrics = {
        name: Span.of(series.value[series.epoch_level])
        for name in run.metric_names()
        if ("loss" in name or "acc" in name)
        and (series := run.series(name)) is not None
        and series.epoch_level.any()
    }
    if loss is None and accuracy is None and not epoch_metrics:
        return None
    groups = sorted(
        {_as_int(e) for pts in (loss, accuracy) if pts for e in pts[2].tolist()}, key=_epoch_order
    )
    rows = []
    for epoch in groups:
        spans = [_epoch_span(pts, epoch) for pts in (loss, accuracy, lr)]
        points = max((s.count for s in spans[:2] if s is not None), default=0)
        rows.append(EpochRow(epoch, points, *spans))
    lr_span = Span.of(lr[3]) if lr is not None else None
    return Progression(
        loss_metric=loss[0] if loss else None,
        accuracy_metric=accuracy[0] if accuracy else None,
        epochs=rows,
        epoch_metrics=epoch_metrics,
        lr=lr_span,
        lr_ramps_up=lr is not None and warms_up(lr[3]),
    )


def warms_up(lr: np.ndarray) -> bool:
    """A warm-up by its shape: starts well below its peak, reaches the peak early, then levels off."""
    values = lr[np.isfinite(lr)]
    if len(values) < 3:
        return False
    peak_at = int(np.argmax(values))
    peak = float(values[peak_at])
    return (
        peak > 0
        and float(values[0]) <= WARMUP_START_FRACTION * peak
        and peak_at <= WARMUP_PEAK_BY * (len(values) - 1)
    )


def _epoch_order(epoch: int | None) -> float:
    return math.inf if epoch is None else epoch


def _epoch_span(
    points: tuple[str, np.ndarray, np.ndarray, np.ndarray] | None, epoch: int | None
) -> Span | None:
    if points is None:
        return None
    epochs = points[2]
    mask = ~np.isfinite(epochs) if epoch is None else epochs == epoch
    return Span.of(points[3][mask]) if mask.any() else None


def compare_ends(metric: str, unit: str, values: np.ndarray, *, higher_is_better: bool) -> Change:
    """Seed 004's improvement check: the mean of the first vs the last ``IMPROVEMENT_WINDOW`` points."""
    window = min(IMPROVEMENT_WINDOW, len(values) // 2)
    if window < 1:
        return Change(metric, unit, window, math.nan, math.nan, Verdict.UNKNOWN)
    head, tail = values[:window], values[-window:]
    first, last = _finite_mean(head), _finite_mean(tail)
    if not np.isfinite(tail).all() or not math.isfinite(last):
        return Change(metric, unit, window, first, last, Verdict.NONFINITE)
    if not math.isfinite(first):
        return Change(metric, unit, window, first, last, Verdict.UNKNOWN)
    gain = (last - first) if higher_is_better else (first - last)
    scale = max(abs(first), abs(last), 1e-12)
    if gain >= IMPROVEMENT_MIN_REL * scale:
        verdict = Verdict.IMPROVED
    elif -gain >= IMPROVEMENT_MIN_REL * scale:
        verdict = Verdict.WORSE
    else:
        verdict = Verdict.FLAT
    return Change(metric, unit, window, first, last, verdict)


def _finite_mean(values: np.ndarray) -> float:
    finite = values[np.isfinite(values)]
    return float(finite.mean()) if len(finite) else math.nan


def improvement(run: Run) -> Improvement | None:
    def check(role: Role, higher: bool) -> Change | None:
        names = role_metrics(run, role)
        steps = _step_points(run, names)
        if steps is not None and len(steps[3]) >= 2:
            return compare_ends(steps[0], "steps", steps[3], higher_is_better=higher)
        epochs = _epoch_points(run, names)
        if epochs is not None:
            return compare_ends(epochs[0], "epochs", epochs[1], higher_is_better=higher)
        return None

    loss = check(Role.TRAIN_LOSS, False)
    accuracy = check(Role.TRAIN_ACCURACY, True)
    return None if loss is None and accuracy is None else Improvement(loss, accuracy)


def gradients(run: Run, config: AlertConfig) -> Gradients | None:
    near_zero_threshold = config.vanishing_gradients.threshold
    series = next(
        (s for name in role_metrics(run, Role.GRAD_NORM) if (s := run.series(name)) is not None), None
    )
    modules = _ranked(run, _MODULE_NORM)
    if series is None and not modules:
        return None
    values = series.value if series is not None else np.empty(0)
    finite = values[np.isfinite(values)]
    silent = []
    for item in modules:
        module_series = run.series(f"gradients/{item.name}/norm")
        if module_series is not None and np.all(np.abs(module_series.value) < near_zero_threshold):
            silent.append(item.name)
    return Gradients(
        metric=series.name if series is not None else "",
        norms=Span.of(values),
        near_zero=int((np.abs(finite) < near_zero_threshold).sum()),
        near_zero_threshold=near_zero_threshold,
        exploding=int((finite > config.exploding_gradients.abs_threshold).sum()),
        exploding_threshold=config.exploding_gradients.abs_threshold,
        top_modules=modules[:TOP_N],
        silent_modules=sorted(silent),
        flowing_modules=len(modules) - len(silent),
    )


def updates(run: Run) -> Updates | None:
    updated = _values_by_row(run, _NUM_UPDATED)
    flags = _values_by_row(run, _NO_UPDATE)
    if not updated and not flags:
        return None
    totals = _values_by_row(run, _NUM_TOTAL)
    optimizer_steps = _values_by_row(run, _OPTIMIZER_STEPS)
    rows = sorted(set(updated) | set(flags))
    steps = run.step.view
    none_rows = [r for r in rows if updated.get(r, math.nan) == 0 or flags.get(r, 0.0) == 1]
    partial = sum(1 for r in rows if 0 < updated.get(r, math.nan) < totals.get(r, math.nan))
    counts = np.array([updated.get(r, math.nan) for r in rows])
    last_row = rows[-1]
    return Updates(
        measurements=len(rows),
        last_updated=updated.get(last_row, math.nan),
        last_total=totals.get(last_row, math.nan),
        min_updated=Span.of(counts).min,
        no_update_steps=[_as_int(float(steps[r])) for r in none_rows],
        partial=partial,
        top_changed=_ranked(run, _PARAM_CHANGE)[:TOP_N],
        optimizer_idle=sum(1 for r in none_rows if optimizer_steps.get(r, math.nan) == 0),
    )


def label_ranges(run: Run) -> list[LabelRangeCheck]:
    """Seed 004's ``data_sanity_check``: labels must lie in ``[0, n_codes)``."""
    columns = {key: _values_by_row(run, _SANITY + key) for key in ("label_min", "label_max", "n_codes")}
    flags = _values_by_row(run, _SANITY + "labels_in_range")
    rows = sorted(set(flags).union(*columns.values()))
    checks = []
    for row in rows:
        lo, hi, n = (columns[key].get(row, math.nan) for key in ("label_min", "label_max", "n_codes"))
        in_range = flags.get(row, 1.0) != 0 and not lo < 0 and not hi >= n
        checks.append(LabelRangeCheck(_as_int(float(run.step.view[row])), lo, hi, n, in_range))
    return checks


def label_bias(run: Run) -> LabelBias | None:
    """Seed 000's batch label shares (``winner_<k>_pct``): the mean share of each class over the batches.

    A batch that lacks a class's column had none of that class (termmon's logger writes classes up to the
    largest label in the batch), so it counts as 0%, not as a missing point.
    """
    by_prefix: dict[str, dict[int, str]] = {}
    for name in run.metric_names():
        match = _WINNER_PCT.match(name)
        if match:
            by_prefix.setdefault(match.group(1), {})[int(match.group(2))] = name
    if not by_prefix:
        return None
    prefix, classes = next(iter(sorted(by_prefix.items(), key=lambda item: -len(item[1]))))
    columns = {k: run.metrics[name] for k, name in classes.items()}
    rows = np.unique(np.concatenate([c.rows.view for c in columns.values()]))
    shares = []
    for k, column in sorted(columns.items()):
        values = column.values.view
        finite = np.isfinite(values)
        shares.append((k, float(values[finite].sum()) / len(rows)))
    dominant, dominant_pct = max(shares, key=lambda item: item[1])
    return LabelBias(prefix, len(rows), shares, 100.0 / len(shares), dominant, dominant_pct)


def data_checks(run: Run) -> DataChecks | None:
    ranges, bias = label_ranges(run), label_bias(run)
    return None if not ranges and bias is None else DataChecks(ranges, bias)


# --- conclusions -------------------------------------------------------------------------------------------
_FLAT_CHECKS = (
    "Check the labels: do they match the inputs (not shuffled apart from them, not all one class)?",
    "Check the data pipeline: inputs that vary (not constant or all zero), the normalisation, the augmentations",
    "Check the learning-rate schedule (too small, or decayed to zero)",
    "Optimizer not updating weights: see the parameter updates section",
    "Check that gradients are flowing: see the gradient analysis",
)
_VANISHING_CHECKS: tuple[str, ...] = (
    "Initialisation: kaiming/xavier for the activation; a bias init that kills ReLUs",
    "Activation: sigmoid/tanh saturate in deep stacks; dead ReLUs: LeakyReLU/GELU or a lower lr",
    "Depth: add residual connections or normalisation layers so the gradient reaches the input side",
)
_NO_FLOW_CHECKS: tuple[str, ...] = (
    "No gradient flow: check that the loss is connected to the parameters",
    "Check for detached tensors (.detach(), .item(), .numpy(), torch.no_grad() around the forward pass)",
    "Check requires_grad on the layers you mean to train",
)
_NO_STEP_CHECKS: tuple[str, ...] = (
    "Call optimizer.step() after loss.backward() in every training step (and zero_grad after it)",
    "With gradient accumulation: check the condition that decides when to step",
)
_NO_UPDATE_CHECKS: tuple[str, ...] = (
    "The learning rate might be too small (or zero)",
    "Gradients might be zero: see the gradient analysis",
    "The optimizer might not be stepping: optimizer.step() called, and given these parameters?",
)
_LABEL_RANGE_CHECKS = (
    "Data preprocessing issue: labels must lie in [0, n_codes)",
    "Check n_codes against the actual codec vocabulary",
    "Regenerate the metadata if needed",
)
_EXPLODING_CHECKS = ("Gradient explosion: clip gradients harder", "Reduce the learning rate")
_NONFINITE_CHECKS = (
    "Reduce the learning rate and clip gradients",
    "Look for log(0), division by zero or fp16 overflow in the loss",
)
_BIAS_CHECKS = (
    "Check the dataloader's sampling and shuffling, and the class balance of the data",
    "For pairs: randomise which item comes first so the label is not the position",
    "Compare against a run whose batches are balanced (seed 000's debug notebook)",
)
_ALERT_ADVICE: dict[str, tuple[str, ...]] = {
    "overfitting": ("Test loss rises while training loss falls: regularise, augment or stop earlier",),
    "model_collapse": ("Generations collapsed onto few tokens: check sampling, temperature and the loss",),
    "low_gpu_util": ("The GPU waits: more dataloader workers, pinned memory, or a larger batch",),
    "loss_plateau": ("The loss has plateaued: a learning-rate decay or early stop may be due",),
    "vanishing_gradients": _VANISHING_CHECKS,
}
#: A "no progress since the start" plateau is a run that never learned: the checks of a flat loss.
_NEVER_LEARNED = "no progress since the start"


def _conclude(diagnosis: Diagnosis) -> None:
    """Seed 004's good and bad signs, from what the sections found."""
    good, advice = diagnosis.good_signs, diagnosis.advice
    if diagnosis.crash_error is not None:
        advice.append(Advice("crashed", f"The run crashed: {diagnosis.crash_error}", ()))
    imp = diagnosis.improvement
    pairs = [(imp.loss, "decreasing"), (imp.accuracy, "increasing")] if imp is not None else []
    changes = [c for c, _ in pairs if c is not None]
    good += [f"{c.metric} {trend}" for c, trend in pairs if c is not None and c.verdict is Verdict.IMPROVED]
    diverged = [c for c in changes if c.verdict is Verdict.NONFINITE]
    if diverged:
        finding = "; ".join(f"{c.metric} became non-finite (NaN/Inf)" for c in diverged)
        advice.append(Advice("nonfinite_loss", finding, _NONFINITE_CHECKS))
    flat = [c for c in changes if c.verdict in (Verdict.FLAT, Verdict.WORSE)]
    if flat:
        finding = "; ".join(f"{c.metric} {c.verdict.value} over the {c.unit} logged" for c in flat)
        advice.append(Advice("not_improving", finding, _FLAT_CHECKS))
    grads = diagnosis.gradients
    if grads is not None:
        norms = grads.norms
        if grads.near_zero or grads.silent_modules:
            parts = []
            if grads.near_zero:
                parts.append(
                    f"{grads.near_zero} of {norms.count} logged gradient norms below {grads.near_zero_threshold:g}"
                )
            if grads.silent_modules:
                parts.append(f"always near zero in {', '.join(grads.silent_modules[:5])}")
            # Some layers flowing while others are silent is a gradient-flow problem of the architecture;
            # nothing flowing anywhere is a graph cut from the loss.
            checks = _VANISHING_CHECKS if grads.silent_modules and grads.flowing_modules else _NO_FLOW_CHECKS
            advice.append(Advice("no_gradient_flow", f"Zero gradients: {'; '.join(parts)}", checks))
        elif norms.count and not any(a.kind == "vanishing_gradients" for a in diagnosis.alerts):
            good.append("No zero-gradient warnings")
        if grads.exploding:
            finding = f"Gradient norms exploding: {grads.exploding} above {grads.exploding_threshold:,g}"
            advice.append(Advice("exploding_gradients", finding, _EXPLODING_CHECKS))
        if norms.nonfinite:
            finding = f"{norms.nonfinite} non-finite gradient norms (NaN/Inf)"
            advice.append(Advice("nonfinite_gradients", finding, _NONFINITE_CHECKS))
        lo, hi = GOOD_GRAD_RANGE
        if norms.count and not norms.nonfinite and lo <= norms.min and norms.max <= hi:
            good.append(f"Gradient norms in a reasonable range ({lo:g} - {hi:g})")
    upd = diagnosis.updates
    if upd is not None:
        if upd.no_update_steps:
            finding = f"NO PARAMETER UPDATES in {len(upd.no_update_steps)} of {upd.measurements} measurements"
            if upd.optimizer_idle:
                finding += f"; optimizer.step() was not called before {upd.optimizer_idle} of them"
            checks = _NO_STEP_CHECKS if upd.optimizer_idle else _NO_UPDATE_CHECKS
            advice.append(Advice("no_param_updates", finding, checks))
        elif upd.partial == 0:
            good.append("All parameters updating")
    data = diagnosis.data
    if data is not None:
        if data.out_of_range:
            advice.append(Advice("labels_out_of_range", "Labels out of range", _LABEL_RANGE_CHECKS))
        if data.bias is not None and data.bias.biased:
            bias = data.bias
            finding = (
                f"Label bias: class {bias.dominant} is {bias.dominant_pct:.1f}% of batch labels "
                f"(an even split is {bias.even_pct:.1f}%)"
            )
            advice.append(Advice("label_bias", finding, _BIAS_CHECKS))
    prog = diagnosis.progression
    if prog is not None and prog.lr is not None and prog.lr_ramps_up:
        good.append("LR starts small and ramps up (warmup)")
    _advise_from_alerts(diagnosis.alerts, advice)
    if advice:  # a loss that fell is no good sign of a run this report shows is broken
        improved = {f"{c.metric} {trend}" for c, trend in pairs if c is not None}
        good[:] = [sign for sign in good if sign not in improved]


def _advise_from_alerts(alerts: Iterable[Alert], advice: list[Advice]) -> None:
    have = {a.key for a in advice}
    for kind, checks in _ALERT_ADVICE.items():
        first = next((a for a in alerts if a.kind == kind), None)
        if first is None or (kind == "vanishing_gradients" and "no_gradient_flow" in have):
            continue
        if kind == "loss_plateau" and _NEVER_LEARNED in first.message:
            if "not_improving" in have:  # the same finding, with the same checks, is listed already
                continue
            checks = _FLAT_CHECKS
        advice.append(Advice(kind, first.message, checks))


def diagnose(run: Run, config: AlertConfig | None = None, now: float | None = None) -> Diagnosis:
    """Every section of the report for ``run``; ``now`` (unix time) is what ``stalled`` measures against."""
    config = config or AlertConfig()
    now = time.time() if now is None else now
    engine = AlertEngine(config)
    engine.update(run, now=now)
    end = run.end or {}
    status = run.status(now)
    diagnosis = Diagnosis(
        run_name=run.name,
        status=status,
        records=run.records,
        bad_lines=run.bad_lines,
        last_step=run.last_step,
        last_epoch=run.last_epoch,
        crash_error=str(end.get("error") or "no error recorded") if status is RunStatus.CRASHED else None,
        progression=progression(run),
        improvement=improvement(run),
        gradients=gradients(run, config),
        updates=updates(run),
        data=data_checks(run),
        alerts=engine.alerts_for(run),
    )
    _conclude(diagnosis)
    return diagnosis
