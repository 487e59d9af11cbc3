"""Alerts the trainer wrote itself (``{"event": "alert", "kind", "severity", "message"}``), as Alerts."""

from __future__ import annotations

import math
from typing import Any

from termmon.analysis.alerts.base import Found
from termmon.analysis.alerts.model import PRODUCER, Alert, Severity, as_int, as_time
from termmon.format import EV_ALERT
from termmon.ingest.batch import number
from termmon.model.run import Run

_SEVERITIES = frozenset(s.value for s in Severity)


def _reserved(record: dict[str, Any], key: str) -> float:
    value = number(record.get(key))
    return math.nan if value is None else value


def producer_alert(record: dict[str, Any]) -> Alert:
    """An ``alert`` record as an Alert, keeping the trainer's kind, severity and message."""
    kind = record.get("kind")
    kind = kind if isinstance(kind, str) and kind else "alert"
    severity = record.get("severity")
    severity = severity if isinstance(severity, str) else None
    message = record.get("message")
    metric = record.get("metric")
    return Alert(
        kind=kind,
        severity=Severity(severity) if severity in _SEVERITIES else Severity.WARNING,
        message=message if isinstance(message, str) and message else kind,
        step=as_int(_reserved(record, "step")),
        epoch=as_int(_reserved(record, "epoch")),
        time=as_time(_reserved(record, "time")),
        metric=metric if isinstance(metric, str) else None,
        value=number(record.get("value")),
        source=PRODUCER,
    )


class ProducerAlerts:
    """New ``alert`` meta events of a run."""

    def __init__(self) -> None:
        self.seen = 0

    def update(self, run: Run, now: float) -> list[Found]:
        events = run.events[self.seen :]
        self.seen = len(run.events)
        return [Found(float(e["_row"]), producer_alert(e)) for e in events if e.get("event") == EV_ALERT]
