"""What an alert is, and how its numbers read to a person."""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import StrEnum
from typing import Any


class Severity(StrEnum):
    INFO = "info"
    WARNING = "warning"
    CRITICAL = "critical"

    @property
    def rank(self) -> int:
        return _RANKS[self]


_RANKS = {Severity.INFO: 0, Severity.WARNING: 1, Severity.CRITICAL: 2}

#: Where an alert came from: one of termmon's detectors, or an ``alert`` record the trainer wrote.
DETECTED, PRODUCER = "detected", "producer"


@dataclass(frozen=True)
class Alert:
    """One episode of something going wrong (or, at ``info``, of something worth knowing).

    ``step``/``epoch``/``time`` locate the point that started the episode; ``metric``/``value`` say what
    was seen there. ``value`` may be NaN or ±inf: the summary writer makes it strict JSON.
    """

    kind: str
    severity: Severity
    message: str
    step: int | None = None
    epoch: int | None = None
    time: float | None = None
    metric: str | None = None
    value: float | None = None
    source: str = DETECTED

    def to_dict(self) -> dict[str, Any]:
        """The DESIGN.md alert shape, exactly."""
        return {
            "kind": self.kind,
            "severity": str(self.severity),
            "step": self.step,
            "epoch": self.epoch,
            "time": self.time,
            "metric": self.metric,
            "value": self.value,
            "message": self.message,
        }


def as_int(value: float) -> int | None:
    """A step or epoch column value as an int, None where the record lacked it."""
    return int(value) if math.isfinite(value) else None


def as_time(value: float) -> float | None:
    return float(value) if math.isfinite(value) else None


def fmt_value(value: float) -> str:
    """A metric value short enough for one line: ``0.0123``, ``4.1e3``, ``NaN``, ``+Inf``."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if value == 0:
        return "0"
    if 1e-3 <= abs(value) < 1e3:
        return f"{value:.4g}"
    mantissa, exponent = f"{value:.1e}".split("e")
    return f"{mantissa}e{int(exponent)}"


def fmt_limit(value: float) -> str:
    """A configured threshold as the user wrote it: ``1,000``, ``0.001``, ``30``."""
    return f"{value:,g}"


def fmt_ratio(ratio: float) -> str:
    """``3.5x``, ``1,200x``; beyond a million a power of ten a person can read (``1.0e13x``)."""
    if ratio >= 1e6:
        return f"{fmt_value(ratio)}x"
    return f"{ratio:,.0f}x" if ratio >= 10 else f"{ratio:.1f}x"


def fmt_where(step: int | None, epoch: int | None) -> str:
    """``step 1,660``, else ``epoch 7``, else ``the start``: where in the run a point sits."""
    if step is not None:
        return f"step {step:,}"
    if epoch is not None:
        return f"epoch {epoch:,}"
    return "an unnumbered record"
