"""New points of a run's metrics since a detector last looked, and per-record merging of several metrics.

``Run.series`` gathers a whole metric (O(points)); detectors run on every refresh of runs with millions of
points, so they read only the slice past their cursor from the run's columns. All metrics of one record
share its row and arrive in the same batch, so "the rows past the cursor" is the same set however a run's
records were split into batches: that is what makes incremental evaluation equal to one pass.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from termmon.model.run import Run

#: Loss-like names (issue 3): train_loss, loss, */loss, loss/*, *_loss.
LOSS_LIKE = re.compile(r"(^|.*/)loss(/.*)?$|.*_loss$")


@dataclass(frozen=True)
class Points:
    """A slice of one metric's points: row in the run table, step, epoch, time and value."""

    name: str
    rows: np.ndarray
    step: np.ndarray
    epoch: np.ndarray
    time: np.ndarray
    value: np.ndarray

    def __len__(self) -> int:
        return len(self.rows)


def metric_length(run: Run, name: str) -> int:
    column = run.metrics.get(name)
    return 0 if column is None else len(column.values)


def read_points(run: Run, name: str, start: int = 0) -> Points | None:
    """Points ``start:`` of ``name`` (None when the metric does not exist); cost O(new points)."""
    column = run.metrics.get(name)
    if column is None:
        return None
    rows = column.rows.view[start:]
    return Points(
        name=name,
        rows=rows,
        step=run.step.view[rows],
        epoch=run.epoch.view[rows],
        time=run.time.view[rows],
        value=column.values.view[start:],
    )


class Cursor:
    """Per-metric positions: :meth:`take` returns the points added since the last call."""

    def __init__(self) -> None:
        self._seen: dict[str, int] = {}

    def take(self, run: Run, name: str) -> Points | None:
        start = self._seen.get(name, 0)
        if metric_length(run, name) <= start:
            return None
        points = read_points(run, name, start)
        assert points is not None
        self._seen[name] = start + len(points)
        return points


def value_at(run: Run, name: str, rows: np.ndarray) -> np.ndarray:
    """The value of ``name`` in each of ``rows`` (NaN where that record lacks it); O(len(rows) log n)."""
    column = run.metrics.get(name)
    out = np.full(len(rows), np.nan)
    if column is None or len(rows) == 0:
        return out
    metric_rows = column.rows.view
    index = np.searchsorted(metric_rows, rows)
    inside = index < len(metric_rows)
    hit = np.zeros(len(rows), dtype=bool)
    hit[inside] = metric_rows[index[inside]] == rows[inside]
    out[hit] = column.values.view[index[hit]]
    return out


@dataclass(frozen=True)
class Merged:
    """Records that carry any of several metrics, in row order, with whether any of them flagged."""

    rows: np.ndarray
    step: np.ndarray
    epoch: np.ndarray
    time: np.ndarray
    flagged: np.ndarray

    def __len__(self) -> int:
        return len(self.rows)


def merge_flags(run: Run, parts: list[tuple[np.ndarray, np.ndarray]]) -> Merged:
    """Merge (rows, flag) pairs from several metrics into one flag per record (any of them set)."""
    if not parts:
        rows = np.empty(0, dtype=np.int64)
        flagged = np.empty(0, dtype=bool)
    else:
        all_rows = np.concatenate([r for r, _ in parts])
        all_flags = np.concatenate([f for _, f in parts])
        order = np.argsort(all_rows, kind="stable")
        all_rows, all_flags = all_rows[order], all_flags[order]
        rows, first = np.unique(all_rows, return_index=True)
        flagged = np.logical_or.reduceat(all_flags, first) if len(first) else all_flags[:0]
    return Merged(
        rows=rows,
        step=run.step.view[rows],
        epoch=run.epoch.view[rows],
        time=run.time.view[rows],
        flagged=flagged.astype(bool),
    )
