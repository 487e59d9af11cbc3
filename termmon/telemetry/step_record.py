"""A log step's ``step`` record, built on the writer thread from the values the training thread fetched.

The training thread's part of a log step ends with its one host transfer. Turning those values into the
record (metric names, the global norm, the most-changed tensors, per-layer rows) and deciding its alerts is
Python that the writer thread does for it, in batches, while training goes on: in a busy loop, on caches
that backward and the optimizer step have just emptied, that Python cost the training thread ~0.15 ms a
log step of bench_logger's tiny MLP. What the record must say about the moment of the step (time, step,
epoch, learning rates, throughput, memory) is read on the training thread and travels in the
:class:`RawStep`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from termmon.format import EV_ALERT, EV_STEP, PER_LAYER_STATS_COLUMNS, PER_LAYER_STATS_CSV
from termmon.telemetry import stats
from termmon.telemetry.episodes import Episodes
from termmon.telemetry.writer import CsvRows, RunWriter

#: Packed device values that stay vectors (everything else packed is a scalar).
VECTORS = frozenset({"_losses", "_grads", "_updates", "_weights", "_labels"})
#: Per-module gradient norms are written for every parameter tensor up to this many; beyond, the 10 largest
#: and the 10 smallest (the ones a vanishing-gradient check needs).
MAX_MODULE_NORMS = 64
#: Batch-label classes reported as ``batch_stats/winner_{k}_pct``.
MAX_LABEL_CLASSES = 10


@dataclass(frozen=True, slots=True)
class RawStep:
    """What one log step hands the writer: its fetched values and what was read at the step itself.

    ``values``: the host copy of the packed device values by name; ``host``: metrics already on the host,
    in record order; ``grad_names``: the tensors of ``values["_grads"]``; ``params``: ``(name, numel)`` of
    the watched parameters (``_weights`` holds one entry each, and ``_updates`` too, or with
    ``update_segments`` the sampled differences that :func:`stats.rms_of_segments` reduces to one each).
    """

    records: StepRecords
    step: int
    epoch: int
    time: float
    values: dict[str, list[float]]
    host: dict[str, Any]
    loss_is_last: bool
    grad_names: Sequence[str]
    params: Sequence[tuple[str, int]]
    update_segments: tuple[int, ...] | None
    lr: Mapping[str, float]
    throughput: Mapping[str, float]
    system: Mapping[str, float]

    @property
    def urgent(self) -> bool:
        """Whether this step may raise an alert (a non-finite value, no parameter moved): then the writer
        writes it without waiting for a fuller batch. A cheap over-estimate, on the training thread."""
        if not math.isfinite(sum(map(sum, self.values.values()))):  # C-level sums: NaN, inf stay
            return True
        if _nonfinite(self.host.get("_loss_sum")) or _nonfinite(self.host.get("_grad_norm_given")):
            return True
        updates = self.values.get("_updates")
        return updates is not None and not any(updates)

    def items(self) -> list[Mapping[str, Any] | CsvRows]:
        """On the writer thread: per-layer rows (when fetched), the record, then its alerts."""
        return self.records.build(self)


class StepRecords:
    """Builds one run's step records on its writer thread, and keeps which alert episodes are open (one
    ``nan_inf`` or ``no_param_updates`` alert per episode)."""

    def __init__(self, writer: RunWriter) -> None:
        self._writer = writer
        self._episodes = Episodes()

    def build(self, raw: RawStep) -> list[Mapping[str, Any] | CsvRows]:
        values = raw.values
        record = dict(raw.host)
        losses = values.get("_losses", [])
        if raw.loss_is_last:
            record["train_loss"] = losses[-1]
        record.update({name: vals[0] for name, vals in values.items() if name not in VECTORS})
        nonfinite = _nonfinite(record.pop("_loss_sum", 0.0))
        nonfinite = nonfinite or not all(map(math.isfinite, losses))
        given = record.pop("_grad_norm_given", None)
        if "_grads" in values:
            nonfinite = _grad_metrics(record, values["_grads"], raw.grad_names) or nonfinite
        if isinstance(given, int | float):
            record["grad_norm"] = given
            nonfinite = nonfinite or _nonfinite(given)
        if "_updates" in values:
            updates = values["_updates"]
            if raw.update_segments is not None:
                updates = stats.rms_of_segments(updates, raw.update_segments)
            _update_metrics(record, updates, raw.params)
        items: list[Mapping[str, Any] | CsvRows] = []
        if "_weights" in values:
            items.append(layer_stats_rows(raw.step, raw.epoch, values["_weights"], raw.params))
        if "_labels" in values:
            counts = values["_labels"]
            total = sum(counts) or 1.0
            for k, count in enumerate(counts[:MAX_LABEL_CLASSES]):
                record[f"batch_stats/winner_{k}_pct"] = 100.0 * count / total
            record["batch_stats/n_classes_seen"] = sum(1 for c in counts if c)
        record.update(raw.lr)
        record.update(raw.throughput)
        record.update(raw.system)
        record["nan_inf_detected"] = bool(nonfinite)
        if self._writer.dropped:
            record["dropped_records"] = self._writer.dropped
        full = {"event": EV_STEP, "time": raw.time, "step": raw.step, "epoch": raw.epoch}
        full.update(record)
        items.append(full)
        items += self._alerts(raw, full)
        return items

    def _alerts(self, raw: RawStep, record: Mapping[str, Any]) -> list[dict[str, Any]]:
        alerts = []
        if record.get("nan_inf_detected"):
            if self._episodes.first("nan_inf"):
                metric = "train_loss" if _nonfinite(record.get("train_loss")) else "grad_norm"
                message = f"non-finite values at step {raw.step} ({metric})"
                alerts.append(_alert(raw, "nan_inf", "critical", message, metric, record.get(metric)))
        else:
            self._episodes.clear("nan_inf")
        if record.get("param_updates/no_update_warning"):
            if self._episodes.first("no_param_updates"):
                message = f"no parameter changed in the optimizer step before step {raw.step}"
                alerts.append(
                    _alert(raw, "no_param_updates", "warning", message, "param_updates/num_updated", 0)
                )
        elif "param_updates/num_updated" in record:
            self._episodes.clear("no_param_updates")
        return alerts


def _alert(raw: RawStep, kind: str, severity: str, message: str, metric: str, value: Any) -> dict[str, Any]:
    """The record ``Telemetry.alert`` writes, at the step's own time."""
    return {
        "event": EV_ALERT,
        "time": raw.time,
        "step": raw.step,
        "epoch": raw.epoch,
        "kind": kind,
        "severity": severity,
        "message": message,
        "metric": metric,
        "value": value,
    }


def _grad_metrics(record: dict[str, Any], vals: list[float], names: Sequence[str]) -> bool:
    global_norm, grad_max, norms = stats.gradient_summary(vals, len(names))
    record["grad_norm"] = global_norm
    record["grad_max"] = grad_max
    record["grad_min"] = min(norms) if norms else 0.0
    record["grad_num_params_with_grad"] = len(norms)
    named = list(zip(names, norms, strict=True))
    if len(named) > MAX_MODULE_NORMS:
        order = sorted(range(len(named)), key=lambda i: named[i][1] if math.isfinite(named[i][1]) else -1.0)
        keep = set(order[:10]) | set(order[-10:])
        named = [item for i, item in enumerate(named) if i in keep]
    for name, norm in named:
        record[f"gradients/{name}/norm"] = norm
    return not math.isfinite(global_norm)


def _update_metrics(record: dict[str, Any], rms: list[float], params: Sequence[tuple[str, int]]) -> None:
    updated = sum(1 for r in rms if r != 0.0)
    top = sorted(zip((n for n, _ in params), rms, strict=True), key=lambda item: item[1], reverse=True)[:10]
    record["param_updates/num_updated"] = updated
    record["param_updates/num_total"] = len(rms)
    for name, value in top:  # the same names the seed 004 adapter gives its top_changed
        record[f"updates/{name}/change"] = value
    record["param_updates/no_update_warning"] = updated == 0


def layer_stats_rows(step: int, epoch: int, flat: list[float], params: Sequence[tuple[str, int]]) -> CsvRows:
    """telemetry/per_layer_stats.csv rows from the host copy of :func:`stats.weight_moments`."""
    moments = [flat[i : i + 4] for i in range(0, len(flat), 4)]
    numels = [n for _, n in params]
    rows = [
        (step, epoch, name, *row, n)
        for (name, n), row in zip(params, stats.layer_rows(moments, numels), strict=True)
    ]
    return CsvRows(PER_LAYER_STATS_CSV, PER_LAYER_STATS_COLUMNS, rows)


def _nonfinite(value: Any) -> bool:
    return isinstance(value, float) and not math.isfinite(value)
