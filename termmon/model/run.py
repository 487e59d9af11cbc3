"""The state of one run: its rows, metric series, meta events and status, grown from record batches.

Series are stored as columns (one shared table of time/step/epoch per record, and per metric the row
indices and values it has), so a run of millions of records costs tens of MiB, not hundreds.
"""

from __future__ import annotations

import bisect
import math
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

import numpy as np

from termmon.format import END_CRASHED, END_FINISHED, END_KILLED, EV_CONTROL_CHANGE, EV_END, EV_START
from termmon.ingest.batch import KIND_EPOCH, RecordBatch, number
from termmon.model.columns import GrowableArray

#: A run has stalled after no new records for the longest of: this floor, this many usual intervals, and
#: this many times the longest silence it has had so far (an evaluation, a checkpoint: its own rhythm).
STALL_MIN_SECONDS = 60.0
STALL_INTERVALS = 20.0
STALL_LONGEST_GAPS = 2.0


class RunStatus(StrEnum):
    RUNNING = "running"
    FINISHED = "finished"
    STALLED = "stalled"
    CRASHED = "crashed"
    KILLED = "killed"
    UNKNOWN = "unknown"
    #: Its history is still being read (the monitor shows the recent window meanwhile): judging it
    #: now would call a finished run "stalled" at whatever step the read has reached.
    LOADING = "loading"


@dataclass(frozen=True)
class Series:
    """One metric's points, aligned arrays (views: copy before keeping across updates)."""

    name: str
    step: np.ndarray
    epoch: np.ndarray
    time: np.ndarray
    value: np.ndarray
    epoch_level: np.ndarray  # True where the point came from an epoch record

    def __len__(self) -> int:
        return len(self.value)


@dataclass
class MetricStats:
    """Running aggregates for summaries: last value, finite min/max, point count."""

    count: int = 0
    nonfinite: int = 0
    last: float = math.nan
    min: float = math.inf
    max: float = -math.inf

    def update(self, values: np.ndarray) -> None:
        if len(values) == 0:
            return
        self.count += len(values)
        self.last = float(values[-1])
        finite = values[np.isfinite(values)]
        self.nonfinite += len(values) - len(finite)
        if len(finite):
            self.min = min(self.min, float(finite.min()))
            self.max = max(self.max, float(finite.max()))


class MetricColumn:
    """A metric's row indices into the run table, and its values."""

    __slots__ = ("rows", "stats", "values")

    def __init__(self) -> None:
        self.rows = GrowableArray(np.int32)  # a run of over 2**31 records is not a run we can chart
        self.values = GrowableArray(np.float64)
        self.stats = MetricStats()

    def extend(self, rows: np.ndarray, values: np.ndarray) -> None:
        self.rows.extend(rows)
        self.values.extend(values)
        self.stats.update(values)


class Run:
    """Everything known about one run directory, updated by :meth:`add` as batches arrive.

    ``version`` grows with every change and ``generation`` with every reset (the source was truncated
    or replaced), so views can tell cheaply whether to redraw or to start over.
    """

    def __init__(self, path: Path, name: str | None = None, *, has_end_events: bool = True) -> None:
        self.path = path
        self.name = name or path.name
        #: Formats without end events (results.json, debug logs) are "unknown" when old, not "stalled".
        self.has_end_events = has_end_events
        self.generation = 0
        self.last_write = math.nan
        self.errors: list[str] = []
        #: True while the history is incomplete: no status is judged and no alert raised from it.
        #: Only the monitor's :class:`Workspace` sets it; a Run built any other way is whole.
        self.loading = False
        #: How much of the history is read, 0..1, while ``loading``.
        self.loaded_fraction = 0.0
        #: True while the records held are the recent window only (the history read separately).
        self.window_only = False
        self._clear()

    def _clear(self) -> None:
        self.version = 0
        self.time = GrowableArray(np.float64)
        self.step = GrowableArray(np.float64)
        self.epoch = GrowableArray(np.float64)
        self.kind = GrowableArray(np.int8)
        self.event = GrowableArray(object)
        self.metrics: dict[str, MetricColumn] = {}
        self.events: list[dict[str, Any]] = []
        self.texts: dict[str, list[tuple[int, str]]] = {}  # string values of measurement records, by row
        self.records = 0
        self.bad_lines = 0
        self.first_time = math.nan
        self.last_time = math.nan
        self.longest_gap = 0.0  # seconds between consecutive record times, the longest so far
        self._previous_time = math.nan  # the last record's time (not the latest: clocks go back)
        self.last_step: int | None = None
        self.last_epoch: int | None = None
        self.start: dict[str, Any] | None = None
        self.end: dict[str, Any] | None = None
        self.log_every: int | None = None
        self.last_control_change: dict[str, Any] | None = None

    def reset(self) -> None:
        """Forget everything read so far: the source is being re-read from its start."""
        self._clear()
        self.generation += 1

    def adopt(self, history: Run) -> None:
        """Take ``history``'s records in place of those held (the recent window shown while the
        history loaded), keeping this object, so whoever holds it sees the whole run. Counts as a
        reset (``generation`` moves): views and detectors start over on the complete run."""
        for key, value in vars(history).items():
            if key not in _IDENTITY:
                setattr(self, key, value)
        self.errors.extend(e for e in history.errors if e not in self.errors)
        self.touch(history.last_write)
        self.generation += 1
        self.window_only = False

    # --- growing ------------------------------------------------------------------------------------
    def reserve(self, records: int) -> None:
        """Room for about ``records`` records in all, for a one-shot load that can tell from its file's
        size about how many are coming: the table's columns take ``records``, each metric already held
        its share so far of them. Appends beyond the room still work (queued and joined later)."""
        held = self.records
        if held == 0 or records <= held:
            return
        for table_column in (self.time, self.step, self.epoch, self.kind, self.event):
            table_column.reserve(records)
        for column in self.metrics.values():
            points = len(column.values) * records // held
            column.rows.reserve(points)
            column.values.reserve(points)

    def add(self, batch: RecordBatch) -> None:
        self.bad_lines += batch.bad_lines
        if len(batch) == 0:
            if batch.bad_lines:
                self.version += 1
            return
        base = len(self.time)
        self.time.extend(batch.time)
        self.step.extend(batch.step)
        self.epoch.extend(batch.epoch)
        self.kind.extend(batch.kind)
        self.event.extend(batch.event)
        for name, (rows, values) in batch.metrics.items():
            column = self.metrics.get(name)
            if column is None:
                column = self.metrics[name] = MetricColumn()
            column.extend(rows + base, values)
        for row, record in batch.meta:
            self._add_meta(base + row, record)
        for name, texts in batch.texts.items():
            self.texts.setdefault(name, []).extend((base + row, text) for row, text in texts)
        self.records += len(batch)
        self._update_progress(batch)
        self.version += 1

    def _update_progress(self, batch: RecordBatch) -> None:
        times = batch.time[np.isfinite(batch.time)]
        if len(times):
            # Gaps between consecutive records wherever batches were cut (a load in pieces, a tail read).
            previous = self._previous_time if math.isfinite(self._previous_time) else times[0]
            gaps = np.diff(np.concatenate([[previous], times]))
            self.longest_gap = max(self.longest_gap, float(gaps.max()))
            self._previous_time = float(times[-1])
            if math.isnan(self.first_time):
                self.first_time = float(times[0])
            self.last_time = max(
                float(times.max()), self.last_time if math.isfinite(self.last_time) else -math.inf
            )
        steps = batch.step[np.isfinite(batch.step)]
        if len(steps):
            self.last_step = int(steps[-1])
        epochs = batch.epoch[np.isfinite(batch.epoch)]
        if len(epochs):
            self.last_epoch = int(epochs[-1])

    def _add_meta(self, row: int, record: dict[str, Any]) -> None:
        event = record.get("event")
        self.events.append({**record, "_row": row})
        if event == EV_START:
            self.start = record
            self.log_every = _positive_int(record.get("log_every")) or _positive_int(
                (record.get("config") or {}).get("log_every")
                if isinstance(record.get("config"), dict)
                else None
            )
            if self.end is not None:  # a restarted run writing into the same file
                self.end = None
        elif event == EV_END:
            self.end = record
        elif event == EV_CONTROL_CHANGE and record.get("key", "log_every") == "log_every":
            self.last_control_change = record
            self.log_every = _positive_int(record.get("new")) or self.log_every

    def touch(self, mtime: float) -> None:
        """Note a write seen on disk (file mtime): the clock for 'stalled' when records carry no time."""
        if not math.isfinite(self.last_write) or mtime > self.last_write:
            self.last_write = mtime

    # --- reading --------------------------------------------------------------------------------------
    def metric_names(self) -> list[str]:
        return sorted(self.metrics)

    def series(self, name: str) -> Series | None:
        column = self.metrics.get(name)
        if column is None:
            return None
        rows = column.rows.view
        return Series(
            name=name,
            step=self.step.view[rows],
            epoch=self.epoch.view[rows],
            time=self.time.view[rows],
            value=column.values.view,
            epoch_level=self.kind.view[rows] == KIND_EPOCH,
        )

    def text_at(self, name: str, row: int) -> str | None:
        """The text ``name`` logged at ``row`` or the latest before it (a sample logged every few steps)."""
        texts = self.texts.get(name)
        if not texts:
            return None
        i = bisect.bisect_right(texts, row, key=lambda item: item[0]) - 1
        return texts[i][1] if i >= 0 else None

    def stats(self, name: str) -> MetricStats | None:
        column = self.metrics.get(name)
        return None if column is None else column.stats

    @property
    def last_activity(self) -> float:
        candidates = [t for t in (self.last_time, self.last_write) if math.isfinite(t)]
        return max(candidates) if candidates else math.nan

    def typical_interval(self) -> float:
        """Median gap between the last records' times; NaN when unknown."""
        times = self.time.view[-51:]
        times = times[np.isfinite(times)]
        if len(times) < 3:
            return math.nan
        gaps = np.diff(times)
        gaps = gaps[gaps > 0]
        return float(np.median(gaps)) if len(gaps) else math.nan

    def stall_limit(
        self, min_seconds: float = STALL_MIN_SECONDS, intervals: float = STALL_INTERVALS
    ) -> float:
        """Seconds of silence after which this run counts as stalled: adapted to its own cadence (usual
        interval and longest silence so far), never below ``min_seconds``."""
        interval = self.typical_interval()
        usual = intervals * interval if math.isfinite(interval) else 0.0
        return max(min_seconds, usual, STALL_LONGEST_GAPS * self.longest_gap)

    def status(self, now: float) -> RunStatus:
        if self.loading:
            return RunStatus.LOADING
        if self.end is not None:
            return _END_STATUS.get(str(self.end.get("status")), RunStatus.FINISHED)
        activity = self.last_activity
        if not math.isfinite(activity):
            return RunStatus.UNKNOWN
        if now - activity <= self.stall_limit():
            return RunStatus.RUNNING
        return RunStatus.STALLED if self.has_end_events else RunStatus.UNKNOWN

    @property
    def finished_cleanly(self) -> bool:
        return self.end is not None and self.end.get("status") == END_FINISHED


#: What :meth:`Run.adopt` keeps of its own: which run this is and what was said about it.
_IDENTITY = frozenset(
    {"path", "name", "has_end_events", "generation", "last_write", "errors", "loading", "loaded_fraction"}
)

#: How an ``end`` record's status reads; anything else a writer puts there counts as finished.
_END_STATUS = {END_CRASHED: RunStatus.CRASHED, END_KILLED: RunStatus.KILLED}


def _positive_int(value: object) -> int | None:
    """A positive, finite number from a record as an int (a 400-digit one is not: None)."""
    x = number(value)
    if x is None or not math.isfinite(x) or x <= 0:
        return None
    return int(x)
