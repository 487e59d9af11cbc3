"""The seed formats mapped onto termmon records, so every view and analysis sees one shape.

Seed 001 (``results.json`` with ``training_history``) becomes one ``epoch`` record per entry, nested
sections flattened with ``/`` (``train/loss``, ``test/scaled_loss``, ``diagnostics/silhouette_score``).

Seed 004 (``debug_log_*.jsonl``, records ``{"event_type", "step", "time"?, "data"}``) maps as below;
docs/formats.md has the same table for users.

================== ===================================================================================
event_type         records
================== ===================================================================================
fit_start          ``start`` (``config`` = data; parameter counts kept at the top level too)
epoch_start        ``epoch_start`` with ``lr``, ``weight_decay`` (epoch counter advances)
training_step      ``step``: loss -> ``train_loss``, accuracy -> ``train_accuracy``,
                   learning_rate -> ``lr``, other numbers -> ``training_step/<name>``
gradient_stats     ``step``: total_norm -> ``grad_norm``, others -> ``gradient_stats/<name>``,
                   top_modules -> ``gradients/<module>/norm``
param_updates      ``step``: ``param_updates/<name>`` (no_update_warning as 0/1),
                   top_changed -> ``updates/<param>/change``
data_sanity_check  ``data_sanity_check`` with ``data_sanity_check/<name>`` (labels_in_range as 0/1)
anything else      an event of that name with ``<event_type>/<name>``
================== ===================================================================================
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from termmon.format import EV_EPOCH, EV_START, EV_STEP, GRAD_NORM, LR, TRAIN_LOSS, flatten
from termmon.ingest.batch import finite_number, nesting_exceeds


def results_history_records(results: object) -> list[dict[str, Any]]:
    """Seed 001's results.json as records: a ``start`` (run name, config) and one ``epoch`` per entry."""
    if not isinstance(results, Mapping) or nesting_exceeds(results):
        return []
    records: list[dict[str, Any]] = []
    start: dict[str, Any] = {"event": EV_START}
    if isinstance(results.get("run_name"), str):
        start["run_name"] = results["run_name"]
    if isinstance(results.get("config"), Mapping):
        start["config"] = results["config"]
    records.append(start)
    history = results.get("training_history")
    if not isinstance(history, list):
        return records
    for index, entry in enumerate(history):
        if not isinstance(entry, Mapping):
            continue
        record: dict[str, Any] = {"event": EV_EPOCH}
        epoch = finite_number(entry.get("epoch", index))
        record["epoch"] = index if epoch is None else epoch
        for key in ("step", "time"):
            value = entry.get(key)
            if finite_number(value) is not None:
                record[key] = value
        for key, value in entry.items():
            if key in ("epoch", "step", "time"):
                continue
            if isinstance(value, Mapping):
                record.update(flatten(value, str(key)))
            else:
                record[str(key)] = value
        records.append(record)
    return records


_RENAMES: dict[str, dict[str, str]] = {
    "training_step": {"loss": TRAIN_LOSS, "accuracy": "train_accuracy", "learning_rate": LR},
    "gradient_stats": {"total_norm": GRAD_NORM},
}
_STEP_EVENTS = frozenset({"training_step", "gradient_stats", "param_updates"})


def _named_values(items: object) -> Iterable[tuple[str, float]]:
    """``top_modules`` / ``top_changed`` as (name, value) whatever shape the logger chose."""
    if isinstance(items, Mapping):
        for name, value in items.items():
            if finite_number(value) is not None:
                yield str(name), float(value)
        return
    if not isinstance(items, list):
        return
    for item in items:
        if isinstance(item, list | tuple) and len(item) >= 2 and finite_number(item[1]) is not None:
            yield str(item[0]), float(item[1])
        elif isinstance(item, Mapping):
            name = item.get("name", item.get("module", item.get("param")))
            value = next(
                (
                    item[k]
                    for k in ("norm", "value", "change", "grad_norm")
                    if finite_number(item.get(k)) is not None
                ),
                None,
            )
            if name is not None and value is not None:
                yield str(name), float(value)


class DebugLogAdapter:
    """Maps seed 004 records one by one; keeps the epoch counter that ``epoch_start`` advances."""

    def __init__(self) -> None:
        self._epoch: int | None = None

    def record(self, obj: object) -> dict[str, Any] | None:
        """The termmon record for one parsed line, or None for a line that is not a seed 004 record."""
        if not isinstance(obj, Mapping) or not isinstance(obj.get("event_type"), str):
            return None
        if nesting_exceeds(obj):
            return None
        kind: str = obj["event_type"]
        data = obj.get("data")
        data = data if isinstance(data, Mapping) else {}
        record: dict[str, Any] = {}
        step = obj.get("step")
        if finite_number(step) is not None:
            record["step"] = step
        if finite_number(obj.get("time")) is not None:
            record["time"] = obj["time"]

        if kind == "fit_start":
            record["event"] = EV_START
            record["config"] = dict(data)
            for key in ("trainable_params", "frozen_params", "total_params"):
                if finite_number(data.get(key)) is not None:
                    record[key] = data[key]
            return record
        if kind == "epoch_start":
            epoch = data.get("epoch", obj.get("epoch"))
            self._epoch = (
                int(epoch)
                if finite_number(epoch) is not None
                else (0 if self._epoch is None else self._epoch + 1)
            )
        if self._epoch is not None:
            record["epoch"] = self._epoch
        record["event"] = EV_STEP if kind in _STEP_EVENTS else kind
        renames = _RENAMES.get(kind, {})
        for key, value in flatten(data).items():
            if key == "top_modules":
                for module, norm in _named_values(value):
                    record[f"gradients/{module}/norm"] = norm
            elif key == "top_changed":
                for param, change in _named_values(value):
                    record[f"updates/{param}/change"] = change
            elif key in renames:
                record[renames[key]] = value
            elif kind == "epoch_start" and key in ("lr", "weight_decay"):
                record[key] = value
            else:
                record[f"{kind}/{key}"] = float(value) if isinstance(value, bool) else value
        return record
