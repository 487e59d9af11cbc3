"""New points of a run's metrics since a detector last looked, and per-record merging of several metrics.

``Run.series`` gathers a whole metric (O(points)); detectors run on every refresh of runs with millions of
points, so they read only the slice past their cursor from the run's columns. All metrics of one record
share its row and arrive in the same batch, so "the rows past the cursor" is the same set however a run's
records were split into batches: that is what makes incremental evaluation equal to one pass.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np

from termmon.model.run import Run


class _RowFields:
    """step/epoch/time of ``rows``, gathered from the run table only when a detector asks for them:
    most passes look at values alone, and gathering three columns for a million points costs ~24 MB."""

    run: Run
    rows: np.ndarray

    def _gather(self, column: np.ndarray) -> np.ndarray:
        gathered: np.ndarray = column[self.rows]
        return gathered

    @cached_property
    def step(self) -> np.ndarray:
        return self._gather(self.run.step.view)

    @cached_property
    def epoch(self) -> np.ndarray:
        return self._gather(self.run.epoch.view)

    @cached_property
    def time(self) -> np.ndarray:
        return self._gather(self.run.time.view)

    def __len__(self) -> int:
        return len(self.rows)


@dataclass(frozen=True)
class Points(_RowFields):
    """A slice of one metric's points: row in the run table, value; step, epoch and time on demand."""

    run: Run
    name: str
    rows: np.ndarray
    value: np.ndarray


def metric_length(run: Run, name: str) -> int:
    column = run.metrics.get(name)
    return 0 if column is None else len(column.values)


def read_points(run: Run, name: str, start: int = 0) -> Points | None:
    """Points ``start:`` of ``name`` (None when the metric does not exist); cost O(new points)."""
    column = run.metrics.get(name)
    if column is None:
        return None
    return Points(run=run, name=name, rows=column.rows.view[start:], value=column.values.view[start:])


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
    # Needles in the haystack's dtype: numpy would otherwise cast the whole (int32) column each call,
    # an O(run) cost on every refresh.
    index = np.searchsorted(metric_rows, rows.astype(metric_rows.dtype, copy=False))
    inside = index < len(metric_rows)
    hit = np.zeros(len(rows), dtype=bool)
    hit[inside] = metric_rows[index[inside]] == rows[inside]
    out[hit] = column.values.view[index[hit]]
    return out


@dataclass(frozen=True)
class Merged(_RowFields):
    """Records that carry any of several metrics, in row order, with whether any of them flagged."""

    run: Run
    rows: np.ndarray
    flagged: np.ndarray


def merge_flags(run: Run, parts: list[tuple[np.ndarray, np.ndarray]]) -> Merged:
    """Merge (rows, flag) pairs from several metrics into one flag per record (any of them set).

    New rows of a refresh are a contiguous range of the run table, so two boolean arrays over that
    range do the merge in O(rows) time and a byte per row, with no sort.
    """
    parts = [(r, f) for r, f in parts if len(r)]
    if not parts:
        return Merged(run=run, rows=np.empty(0, dtype=np.int64), flagged=np.empty(0, dtype=bool))
    first = parts[0][0]
    if all(r is first or np.array_equal(r, first) for r, _ in parts[1:]):
        # The usual case: every metric is in every new record (a metric's rows are strictly increasing).
        flagged = np.logical_or.reduce([np.asarray(f, dtype=bool) for _, f in parts])
        return Merged(run=run, rows=first.astype(np.int64), flagged=flagged)
    lo = min(int(r[0]) for r, _ in parts)
    hi = max(int(r[-1]) for r, _ in parts)
    present = np.zeros(hi - lo + 1, dtype=bool)
    flags = np.zeros(hi - lo + 1, dtype=bool)
    for rows, flag in parts:
        present[rows - lo] = True
        flags[rows[flag.astype(bool)] - lo] = True
    return Merged(run=run, rows=np.flatnonzero(present) + lo, flagged=flags[present])


#: Detectors that vectorise over their new points take them in blocks of this size, so the first pass
#: over a run of millions of points needs megabytes of temporaries, not hundreds of them.
BLOCK_POINTS = 1 << 16


def blocks(points: Points, size: int | None = None) -> list[Points]:
    """``points`` in consecutive slices of at most ``size``; detectors' state carries across them."""
    size = size or BLOCK_POINTS
    if len(points) <= size:
        return [points]
    return [
        Points(
            run=points.run,
            name=points.name,
            rows=points.rows[lo : lo + size],
            value=points.value[lo : lo + size],
        )
        for lo in range(0, len(points), size)
    ]
