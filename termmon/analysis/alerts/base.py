"""What the engine asks of a detector, and the pieces most detectors share."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np

from termmon.analysis.alerts.model import Alert, Severity, as_int, as_time, fmt_where
from termmon.model.run import Run


@dataclass(frozen=True)
class Found:
    """An alert and the run-table row it belongs to: the engine merges detectors' finds in row order."""

    row: float
    alert: Alert


class Detector(Protocol):
    """Per-run state over a run's points; ``update`` looks only at what arrived since its last call."""

    def update(self, run: Run, now: float) -> list[Found]: ...


@dataclass(frozen=True)
class Spot:
    """Where a point sits in the run."""

    row: int
    step: int | None
    epoch: int | None
    time: float | None

    @property
    def where(self) -> str:
        return fmt_where(self.step, self.epoch)

    def found(
        self,
        kind: str,
        severity: Severity,
        message: str,
        metric: str | None = None,
        value: float | None = None,
    ) -> Found:
        alert = Alert(
            kind=kind,
            severity=severity,
            message=message,
            step=self.step,
            epoch=self.epoch,
            time=self.time,
            metric=metric,
            value=value,
        )
        return Found(float(self.row), alert)


class Located(Protocol):
    """Aligned per-point arrays (Points, Merged)."""

    @property
    def rows(self) -> np.ndarray: ...
    @property
    def step(self) -> np.ndarray: ...
    @property
    def epoch(self) -> np.ndarray: ...
    @property
    def time(self) -> np.ndarray: ...


def spot(at: Located, i: int) -> Spot:
    """The ``i``-th point of ``at``."""
    return Spot(
        int(at.rows[i]), as_int(float(at.step[i])), as_int(float(at.epoch[i])), as_time(float(at.time[i]))
    )
