"""Data-sanity checks held across non-log steps, so that every batch counts and not only the log step's.

A loop checks each batch (seed 004's ``data_sanity_check``: ``label_min``, ``label_max``, ``n_codes``,
``labels_in_range``) and passes the result to ``tm.step``. Other held metrics keep their last value, but
a bad batch between two log steps must not be overwritten by the good one after it. Values may be
device tensors: they are kept as they are until the log step (no host sync), then join that step's one
transfer and are reduced here to the worst value of each field, the count of bad batches, and the first
bad batch with its own step, which the logger writes as a record of that step.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch

from termmon.format import (
    DATA_SANITY,
    SANITY_BAD_BATCHES,
    SANITY_BATCHES,
    SANITY_IN_RANGE,
    SANITY_LABEL_MAX,
    SANITY_LABEL_MIN,
    SANITY_N_CODES,
)

_MIN, _MAX, _CODES, _IN_RANGE = SANITY_LABEL_MIN, SANITY_LABEL_MAX, SANITY_N_CODES, SANITY_IN_RANGE
#: How each field is reduced over the batches of a log interval: the worst value; any other field: the last.
_WORST = {_MIN: min, _MAX: max, _IN_RANGE: min}
_PACKED = "_sanity/"


@dataclass(frozen=True)
class Reduced:
    """A log interval's checks: fields for the log step's record, and the first bad batch (step, fields)."""

    fields: dict[str, float]
    first_bad: tuple[int, dict[str, float]] | None


def is_sanity(name: str) -> bool:
    return name.startswith(DATA_SANITY)


class SanityChecks:
    """The checks of the batches since the last log step."""

    def __init__(self) -> None:
        self._steps: list[int] = []
        self._checks: list[dict[str, Any]] = []

    def add(self, step: int, fields: dict[str, Any]) -> None:
        self._steps.append(step)
        self._checks.append(fields)

    def __bool__(self) -> bool:
        return bool(self._steps)

    def pack(self, add: Any) -> dict[str, list[float]]:
        """Tensor fields go to ``add(name, vector)`` (the log step's one transfer); the host-side ones are
        returned. Call :meth:`reduce` with the fetched values."""
        names = list(dict.fromkeys(name for check in self._checks for name in check))
        host: dict[str, list[float]] = {}
        for name in names:
            column = [check.get(name, math.nan) for check in self._checks]
            device = next((v.device for v in column if isinstance(v, torch.Tensor)), None)
            if device is None:
                host[name] = [_number(v) for v in column]
                continue
            add(
                _PACKED + name,
                torch.stack([_scalar(v, device) for v in column]),
            )
        return host

    def reduce(self, fetched: dict[str, list[float]], host: dict[str, list[float]]) -> Reduced:
        """Pops this interval's packed values from ``fetched``, and starts the next interval."""
        columns = dict(host)
        for key in [k for k in fetched if k.startswith(_PACKED)]:
            columns[key[len(_PACKED) :]] = fetched.pop(key)
        steps, self._steps, self._checks = self._steps, [], []
        n = len(steps)
        bad = [_bad(columns, i) for i in range(n)]
        fields: dict[str, float] = {}
        for name, values in columns.items():
            finite = [v for v in values if not math.isnan(v)]
            if finite:
                fields[name] = _WORST.get(name, _last)(finite)
        fields[SANITY_BAD_BATCHES] = float(sum(bad))
        fields[SANITY_BATCHES] = float(n)
        first = next((i for i in range(n) if bad[i]), None)
        first_bad = None
        if first is not None:
            batch = {name: values[first] for name, values in columns.items() if not math.isnan(values[first])}
            first_bad = (steps[first], batch)
        return Reduced(fields, first_bad)


def _bad(columns: dict[str, list[float]], i: int) -> bool:
    def at(name: str) -> float:
        values = columns.get(name)
        return values[i] if values is not None else math.nan

    return at(_IN_RANGE) == 0 or at(_MIN) < 0 or at(_MAX) >= at(_CODES)


def _last(values: list[float]) -> float:
    return values[-1]


def _number(value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


def _scalar(value: Any, device: torch.device) -> torch.Tensor:
    if isinstance(value, torch.Tensor):
        return value.detach().reshape(()).to(device=device, dtype=torch.float64)
    return torch.tensor(_number(value), dtype=torch.float64, device=device)
