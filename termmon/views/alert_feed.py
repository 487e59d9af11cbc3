"""The alerts each run has raised, as rows the alert log, the picker and the panels show.

One function, :meth:`AlertFeed.update`, turns a run's new state into new alerts, so the source of
alerts is swapped in exactly one place.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

from termmon.analysis.alerts import Alert, AlertEngine, load_alert_config
from termmon.model.run import Run


@dataclass(frozen=True)
class AlertRow:
    """One alert of one run, with the strings still raw (the widgets sanitize them)."""

    run_path: Path
    run_name: str
    kind: str
    severity: str
    step: int | None
    epoch: int | None
    time: float | None
    message: str


def _int_or_none(value: object) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return None
    return int(value)


def _row(run: Run, alert: Alert) -> AlertRow:
    severity = str(alert.severity)
    return AlertRow(
        run_path=run.path,
        run_name=run.name,
        kind=alert.kind,
        severity=severity if severity in ("info", "warning", "critical") else "warning",
        step=_int_or_none(alert.step),
        epoch=_int_or_none(alert.epoch),
        time=alert.time,
        message=alert.message,
    )


class AlertFeed:
    """The alert engine's alerts per run, as rows; starts over for a run re-read from its start."""

    def __init__(self, config: Path | None = None) -> None:
        self.engine = AlertEngine(load_alert_config(config))
        self._rows: dict[Path, list[AlertRow]] = {}
        self._generation: dict[Path, int] = {}

    def update(self, run: Run, now: float | None = None, *, trends: bool = True) -> list[AlertRow]:
        """The alerts new since the last call for this run (all of them again after a reset);
        ``trends=False`` leaves the trend detectors for a later call (AlertEngine.update)."""
        if self._generation.get(run.path) != run.generation:
            self._generation[run.path] = run.generation
            self._rows[run.path] = []
        new = [_row(run, alert) for alert in self.engine.update(run, now, trends=trends)]
        self._rows[run.path].extend(new)
        return new

    def rows(self, path: Path) -> list[AlertRow]:
        return self._rows.get(path, [])

    def count(self, path: Path) -> int:
        return sum(1 for row in self._rows.get(path, []) if row.severity != "info")

    def marks(self, path: Path) -> list[tuple[float | None, float | None, str]]:
        """(step, epoch, severity) of a run's alerts, for markers on the panels."""
        return [
            (
                None if r.step is None else float(r.step),
                None if r.epoch is None else float(r.epoch),
                r.severity,
            )
            for r in self._rows.get(path, [])
        ]
