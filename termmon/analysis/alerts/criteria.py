"""Detectors that flag a record when any of several per-metric criteria holds (model collapse, bad labels,
no parameter updates): the criteria are evaluated on the new points of their metric, merged per record,
and an episode starts on the first flagged record.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from termmon.analysis.alerts.base import Found, spot
from termmon.analysis.alerts.episodes import EpisodeTracker
from termmon.analysis.alerts.model import Severity
from termmon.analysis.alerts.points import Cursor, merge_flags
from termmon.model.run import Run


@dataclass(frozen=True)
class Criterion:
    """``flag(run, rows, values)`` says which new points of ``metric`` are bad; ``reason(run, row, value)``
    says why, in words, for the message."""

    metric: str
    flag: Callable[[Run, np.ndarray, np.ndarray], np.ndarray]
    reason: Callable[[Run, int, float], str]


class CriteriaDetector:
    def __init__(
        self,
        kind: str,
        severity: Severity,
        headline: str,
        criteria: list[Criterion],
        tracker: EpisodeTracker,
        context: Callable[[Run, int], str] | None = None,
    ) -> None:
        """``context(run, row)``: text appended to the message (what was logged there, what to try)."""
        self.context = context
        self.kind = kind
        self.severity = severity
        self.headline = headline
        self.criteria = criteria
        self.tracker = tracker
        self.cursor = Cursor()

    def update(self, run: Run, now: float) -> list[Found]:
        parts: list[tuple[np.ndarray, np.ndarray]] = []
        hits: list[tuple[Criterion, np.ndarray, np.ndarray, np.ndarray]] = []
        for criterion in self.criteria:
            points = self.cursor.take(run, criterion.metric)
            if points is None:
                continue
            flags = np.asarray(criterion.flag(run, points.rows, points.value), dtype=bool)
            parts.append((points.rows, flags))
            hits.append((criterion, points.rows, points.value, flags))
        merged = merge_flags(run, parts)
        found = []
        for i in self.tracker.feed(merged.flagged):
            at = spot(merged, i)
            reasons = []
            metric: str | None = None
            value: float | None = None
            for criterion, rows, values, flags in hits:
                j = int(np.searchsorted(rows, at.row))
                if j < len(rows) and rows[j] == at.row and flags[j]:
                    reasons.append(criterion.reason(run, at.row, float(values[j])))
                    if metric is None:
                        metric, value = criterion.metric, float(values[j])
            detail = "; ".join(dict.fromkeys(r for r in reasons if r))
            message = f"{self.headline} at {at.where}" + (f": {detail}" if detail else "")
            extra = self.context(run, at.row) if self.context is not None else ""
            message += f"; {extra}" if extra else ""
            found.append(at.found(self.kind, self.severity, message, metric, value))
        return found
