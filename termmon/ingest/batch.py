"""Records in columns: the unit ingest hands to the model.

A million dicts cost ~300 MiB and most of the time of a load, so parsed records are turned into numpy
columns here, in C-level passes over runs of records that share the same keys (a trainer writes the
same keys step after step). Records that do not fit the fast path (nested objects, wrong types,
non-numeric values) go through :func:`normalize_record`, the one definition of what a valid record is.
"""

from __future__ import annotations

import functools
import math
import struct
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from itertools import groupby, pairwise, starmap
from operator import countOf, itemgetter
from typing import Any

import numpy as np

from termmon.format import (
    EV_ALERT,
    EV_CHECKPOINT,
    EV_CONTROL_CHANGE,
    EV_END,
    EV_EPOCH,
    EV_START,
    EV_STEP,
    flatten,
)

#: Events that describe the run rather than measure it: kept whole, never turned into series.
META_EVENTS = frozenset({EV_START, EV_CHECKPOINT, EV_CONTROL_CHANGE, EV_ALERT, EV_END})

#: Row kinds in a batch: a step-like measurement, an epoch summary, or a meta event.
KIND_STEP, KIND_EPOCH, KIND_META = 0, 1, 2

_first = itemgetter(0)
_second = itemgetter(1)
_event = itemgetter("event")


#: Fields every record may carry that place it in the run rather than measure it.
RESERVED = ("time", "step", "epoch")
#: Steps past 2**53 cannot be held exactly in the float64 step column: such a line is a bad line.
MAX_STEP = 2**53
#: Objects and arrays nested deeper than this make a bad line. No trainer writes it, and every reader
#: (flatten, the summary's JSON, the report) may then walk a record recursively without a care.
MAX_NESTING = 64


def number(value: object) -> float | None:
    """A JSON number as a float (an integer too big for a float as +-inf); None for anything else,
    booleans included. (``type() is``, not isinstance: this runs for every value on the general path.)"""
    kind = type(value)
    if kind is float:
        return value  # type: ignore[return-value]
    if kind is int:
        try:
            return float(value)  # type: ignore[arg-type]
        except OverflowError:
            return math.inf if value > 0 else -math.inf  # type: ignore[operator]
    return None


def finite_number(value: object) -> float | None:
    """A JSON number as a finite float; None for anything else: booleans, NaN, infinities, and an
    integer too big for a float (``math.isfinite`` would raise on it)."""
    x = number(value)
    return x if x is not None and math.isfinite(x) else None


def _valid_reserved(key: str, value: object) -> bool:
    """``time``, ``step`` and ``epoch`` are finite numbers; ``step`` at most :data:`MAX_STEP` in size."""
    x = number(value)
    return x is not None and math.isfinite(x) and (key != "step" or abs(x) <= MAX_STEP)


def nesting_exceeds(value: object, limit: int = MAX_NESTING) -> bool:
    """Whether objects/arrays in ``value`` nest deeper than ``limit`` (walked without recursion)."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        children = item.values() if type(item) is dict else item if type(item) is list else ()
        for child in children:
            if type(child) is dict or type(child) is list:
                if depth >= limit:
                    return True
                stack.append((child, depth + 1))
    return False


def normalize_record(obj: object) -> dict[str, Any] | None:
    """A parsed JSON value as a valid record (flattened), or None when it is a bad line.

    Valid: a JSON object whose ``event`` (if present) is a string, whose ``time``, ``step`` and
    ``epoch`` (if present) are finite numbers (not strings, not booleans; ``step`` within
    :data:`MAX_STEP`), nested at most :data:`MAX_NESTING` deep. A record without ``event`` is a step
    record, so a plain ``{"step": 1, "loss": 0.5}`` log reads as expected. Nested objects in
    measurements flatten with ``/``; meta events (start, alert, end, ...) keep theirs, so a start's
    ``config`` stays whole. The column fast path (:meth:`BatchBuilder.add_run`) keeps the same rule.
    """
    if type(obj) is not dict:
        return None
    event = obj.get("event", EV_STEP)
    if not isinstance(event, str):
        return None
    for key in RESERVED:
        value = obj.get(key)
        if value is not None and not _valid_reserved(key, value):
            return None
    kinds = set(map(type, obj.values()))
    if (dict in kinds or list in kinds) and nesting_exceeds(obj):
        return None
    nested = event not in META_EVENTS and dict in kinds
    record = flatten(obj) if nested else dict(obj)
    record["event"] = event
    return record


#: Letters no string that ``float()`` accepts starts with (``inf`` and ``nan`` start with i and n).
_WORD_START = frozenset("abcdefghjklmopqrstuvwxyzABCDEFGHJKLMOPQRSTUVWXYZ")


def numeric_value(value: object) -> float | None:
    """A metric value as a float, or None for values that are not numbers (lists, null, text).

    Booleans are 0/1 and a string that spells a number (``"1.5"``) is that number, as docs/formats.md
    says (Python's ``float``). The column fast path takes only numbers and leaves the rest to this.
    """
    if type(value) is bool:
        return 1.0 if value else 0.0
    if type(value) is str:
        if value[:1] in _WORD_START:  # "train", "ok": skip the cost of float() raising
            return None
        try:
            return float(value)
        except ValueError:
            return None
    return number(value)


@dataclass
class RecordBatch:
    """Consecutive records of one run, in columns.

    ``time``, ``step`` and ``epoch`` have one entry per row (NaN where a record lacks the field).
    ``metrics`` maps a metric name to (row indices into this batch, float values); a NaN value is a real
    NaN that the trainer wrote, never a missing one. ``meta`` holds the meta events whole, as
    (row, record) pairs, because their strings (messages, statuses, config) are what matters. ``texts``
    holds the string values of measurement records (a logged generation sample, a collapse reason) as
    (row, text) pairs per name: data that alerts quote, never series.
    """

    time: np.ndarray
    step: np.ndarray
    epoch: np.ndarray
    kind: np.ndarray
    event: np.ndarray  # event names (object dtype)
    metrics: dict[str, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)
    meta: list[tuple[int, dict[str, Any]]] = field(default_factory=list)
    bad_lines: int = 0
    texts: dict[str, list[tuple[int, str]]] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.time)

    @classmethod
    def empty(cls, bad_lines: int = 0) -> RecordBatch:
        z = np.empty(0)
        return cls(z, z, z, np.empty(0, dtype=np.int8), np.empty(0, dtype=object), bad_lines=bad_lines)


def _equal_length_runs(records: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    """``records`` (not empty) cut into runs of consecutive records with the same number of keys."""
    n = len(records)
    counts = list(map(len, records))
    if counts.count(counts[0]) == n:  # the usual slice: one run (a count, half the cost of the cuts)
        return [records]
    lengths = np.array(counts, dtype=np.intp)
    cuts = (np.flatnonzero(lengths[1:] != lengths[:-1]) + 1).tolist()
    bounds = [0, *cuts, n]
    return [records[a:b] for a, b in pairwise(bounds)]


def _rows(keys: list[str], records: list[dict[str, Any]]) -> Iterator[tuple[Any, ...]]:
    """The values of ``keys`` in each record, as one tuple per record (a C-level iterator)."""
    getter = itemgetter(*keys)
    return map(getter, records) if len(keys) > 1 else zip(map(getter, records))


@functools.lru_cache(maxsize=64)
def _row_packer(width: int) -> Callable[..., bytes]:
    return struct.Struct(f"{width}d").pack


def _number_blocks(
    reserved_keys: list[str], value_keys: list[str], records: list[dict[str, Any]]
) -> tuple[np.ndarray, np.ndarray] | None:
    """(``time``/``step``/``epoch`` as an (n, len(reserved_keys)) block, metric values as an
    (n, len(value_keys)) block), or None when a record needs the general path.

    One C-level pass for both: each record's values packed as doubles by :mod:`struct`, which takes
    exactly the JSON numbers (floats, integers, booleans as 0/1) and refuses the rest (strings, null,
    objects, an integer too big for a float), so a refusal sends the run to the general path, where
    :func:`numeric_value` and :func:`normalize_record` decide. (This costs ~40% less than
    ``np.fromiter``, which would also take ``"1.5"`` and null and need a pass per key to tell.) The
    rest of the rule is checked on the blocks: see :func:`_reserved_ok`.
    """
    keys = reserved_keys + value_keys
    n, width = len(records), len(keys)
    if width == 0:
        return np.empty((n, 0)), np.empty((n, 0))
    try:
        packed = b"".join(starmap(_row_packer(width), _rows(keys, records)))
    except (struct.error, KeyError):
        return None
    block = np.frombuffer(packed, dtype=np.float64).reshape(n, width)
    fixed, values = block[:, : len(reserved_keys)], block[:, len(reserved_keys) :]
    if not _reserved_ok(reserved_keys, fixed, records):
        return None
    return fixed, values


def _reserved_ok(keys: list[str], block: np.ndarray, records: list[dict[str, Any]]) -> bool:
    """``time``/``step``/``epoch`` under :func:`normalize_record`'s rule: finite numbers, not booleans.

    Booleans are numbers to :mod:`struct`, so the rows reading 0 or 1 are looked at one by one (few:
    only the first steps, or an epoch counter's first values).
    """
    if not np.isfinite(block).all():
        return False
    for j, key in enumerate(keys):
        column = block[:, j]
        if key == "step" and not (np.abs(column) <= MAX_STEP).all():
            return False
        zero_one = np.flatnonzero((column == 0.0) | (column == 1.0))
        if len(zero_one) and any(type(records[i][key]) is bool for i in zero_one.tolist()):
            return False
    return True


class BatchBuilder:
    """Accumulates column pieces for one batch; finished by :meth:`build`."""

    def __init__(self) -> None:
        self.n = 0
        self.bad_lines = 0
        self.time: list[np.ndarray] = []
        self.step: list[np.ndarray] = []
        self.epoch: list[np.ndarray] = []
        self.kind: list[np.ndarray] = []
        self.event: list[np.ndarray] = []
        self.metric_rows: dict[str, list[np.ndarray]] = {}
        self.metric_values: dict[str, list[np.ndarray]] = {}
        self.meta: list[tuple[int, dict[str, Any]]] = []
        self.texts: dict[str, list[tuple[int, str]]] = {}

    def add_metric(self, name: str, rows: np.ndarray, values: np.ndarray) -> None:
        if name in self.metric_rows:
            self.metric_rows[name].append(rows)
            self.metric_values[name].append(values)
        else:
            self.metric_rows[name] = [rows]
            self.metric_values[name] = [values]

    def add_run(self, records: list[dict[str, Any]]) -> bool:
        """Columns for records with the first one's keys, in C-level passes; False if any value needs care
        or a record's keys differ (records of one length that all hold the first's keys hold no others)."""
        keys = tuple(records[0])
        event = records[0].get("event", EV_STEP)
        if not isinstance(event, str) or event in META_EVENTS:
            return False
        if "event" in keys:
            try:
                if countOf(map(_event, records), event) != len(records):
                    return False
            except KeyError:  # a missing "event": sorted out more slowly
                return False
        value_keys = [k for k in keys if k != "event" and k not in RESERVED]
        reserved_keys = [k for k in keys if k in RESERVED]
        n = len(records)
        blocks = _number_blocks(reserved_keys, value_keys, records)
        if blocks is None:
            return False
        fixed, block = blocks
        base = self.n
        columns = {k: block[:, j] for j, k in enumerate(value_keys)}
        placed = {k: fixed[:, j] for j, k in enumerate(reserved_keys)}
        nan_col = np.full(n, np.nan)
        for name, target in (("time", self.time), ("step", self.step), ("epoch", self.epoch)):
            target.append(placed.get(name, nan_col))
        kind = KIND_EPOCH if event == EV_EPOCH else KIND_STEP
        self.kind.append(np.full(n, kind, dtype=np.int8))
        self.event.append(np.full(n, event, dtype=object))
        rows = np.arange(base, base + n, dtype=np.int64)
        for name, values in columns.items():
            self.add_metric(name, rows, values)
        self.n += n
        return True

    def add_record(self, record: dict[str, Any]) -> None:
        """One normalized record, the slow and general way."""
        row = self.n
        self.n += 1
        event = record["event"]

        def reserved(key: str) -> float:
            value = record.get(key)
            return math.nan if value is None else float(value)

        self.time.append(np.array([reserved("time")]))
        self.step.append(np.array([reserved("step")]))
        self.epoch.append(np.array([reserved("epoch")]))
        self.event.append(np.array([event], dtype=object))
        if event in META_EVENTS:
            self.kind.append(np.array([KIND_META], dtype=np.int8))
            self.meta.append((row, record))
            return
        self.kind.append(np.array([KIND_EPOCH if event == EV_EPOCH else KIND_STEP], dtype=np.int8))
        row_arr = np.array([row], dtype=np.int64)
        for key, value in record.items():
            if key in ("event", "time", "step", "epoch"):
                continue
            number = numeric_value(value)
            if number is not None:
                self.add_metric(key, row_arr, np.array([number]))
            elif isinstance(value, str):
                self.texts.setdefault(key, []).append((row, value))

    def add_objects(self, objects: list[Any]) -> None:
        """Parsed JSON values in file order; runs of records with the same keys take the fast path.

        Runs are first cut where the number of keys changes (one C-level pass, no per-record tuple of
        keys): a trainer writes the same keys step after step, so a slice is usually one run. Only a run
        whose records turn out to differ (another key of the same count) is cut again by its keys.
        """
        if objects and set(map(type, objects)) == {dict}:
            for records in _equal_length_runs(objects):
                if not self.add_run(records):
                    self._add_by_keys(records)
        else:
            self._add_slowly(objects)

    def _add_by_keys(self, records: list[dict[str, Any]]) -> None:
        signatures = map(tuple, records)
        for _keys, group in groupby(zip(signatures, records, strict=True), key=_first):
            same_keys = list(map(_second, group))
            if len(same_keys) == len(records) or not self.add_run(same_keys):
                self._add_slowly(same_keys)

    def _add_slowly(self, objects: list[Any]) -> None:
        for obj in objects:
            record = normalize_record(obj)
            if record is None:
                self.bad_lines += 1
            else:
                self.add_record(record)

    def build(self, bad_lines: int = 0) -> RecordBatch:
        bad_lines += self.bad_lines
        if self.n == 0:
            return RecordBatch.empty(bad_lines)
        metrics = {
            name: (np.concatenate(rows), np.concatenate(self.metric_values[name]))
            for name, rows in self.metric_rows.items()
        }
        return RecordBatch(
            time=np.concatenate(self.time),
            step=np.concatenate(self.step),
            epoch=np.concatenate(self.epoch),
            kind=np.concatenate(self.kind),
            event=np.concatenate(self.event),
            metrics=metrics,
            meta=self.meta,
            bad_lines=bad_lines,
            texts=self.texts,
        )


def build_batch(objects: list[Any], bad_lines: int = 0) -> RecordBatch:
    """Turn parsed JSON values into a batch; values that are not valid records count as bad lines."""
    builder = BatchBuilder()
    builder.add_objects(objects)
    return builder.build(bad_lines)
