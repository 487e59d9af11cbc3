"""The alerts each run has raised, as rows the alert log, the picker and the panels show.

One function, :meth:`AlertFeed.update`, turns a run's new state into new alerts, so the source of
alerts is swapped in exactly one place.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from termmon.format import EV_ALERT
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


def _row(run: Run, alert: Any) -> AlertRow:
    get = alert.get if isinstance(alert, dict) else lambda key, default=None: getattr(alert, key, default)
    severity = str(get("severity", "warning"))
    time_value = get("time")
    return AlertRow(
        run_path=run.path,
        run_name=run.name,
        kind=str(get("kind", "alert")),
        severity=severity if severity in ("info", "warning", "critical") else "warning",
        step=_int_or_none(get("step")),
        epoch=_int_or_none(get("epoch")),
        time=float(time_value) if isinstance(time_value, int | float) else None,
        message=str(get("message", "")),
    )


class AlertFeed:
    """Per-run alert state; starts over for a run whose source was reset (``run.generation``)."""

    def __init__(self, config: Path | None = None) -> None:
        self._config = config
        self._engine_config: Any = None
        self._engines: dict[Path, Any] = {}
        self._rows: dict[Path, list[AlertRow]] = {}
        self._generation: dict[Path, int] = {}
        self._seen_events: dict[Path, int] = {}
        try:
            from termmon.analysis.alerts import load_alert_config
        except ImportError:  # the engine is being written in parallel (issue 3); producer alerts until then
            self._load = None
        else:
            self._engine_config = load_alert_config(config)
            self._load = load_alert_config

    def update(self, run: Run) -> list[AlertRow]:
        """The alerts new since the last call for this run (all of them after a reset)."""
        if self._generation.get(run.path) != run.generation:
            self._generation[run.path] = run.generation
            self._rows[run.path] = []
            self._engines.pop(run.path, None)
            self._seen_events[run.path] = 0
        new = [_row(run, alert) for alert in self._new_alerts(run)]
        self._rows[run.path].extend(new)
        return new

    def _new_alerts(self, run: Run) -> list[Any]:
        if self._load is not None:
            from termmon.analysis.alerts import AlertEngine

            engine = self._engines.get(run.path)
            if engine is None:
                engine = self._engines[run.path] = AlertEngine(self._engine_config)
            return list(engine.update(run))
        seen = self._seen_events.get(run.path, 0)
        events = run.events[seen:]
        self._seen_events[run.path] = len(run.events)
        return [e for e in events if e.get("event") == EV_ALERT]

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
