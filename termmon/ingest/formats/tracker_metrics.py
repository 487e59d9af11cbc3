"""What the tracker formats (W&B, MLflow, trackio) share about metric names and points.

Trackers keep metrics under the names the user logged. A name that is one of termmon's record
fields (``event``, ``step``, ``time``) cannot be a series beside them and is skipped; ``epoch``,
which users log as a metric, becomes the record's epoch, as it is in termmon's own records.

MLflow keeps one series per metric (``key, value, timestamp_ms, step``) rather than rows; a monitor
wants rows, so :func:`step_records` groups the points of one read by step, one record per step
holding every metric logged at it (a metric logged twice at one step starts a second record).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from termmon.format import EV_STEP, RESERVED_KEYS

#: Logged names that clash with a record's own fields.
FIELD_NAMES = RESERVED_KEYS - {"epoch"}

#: (step, timestamp_ms, name, value): one logged metric value.
Point = tuple[int, int, str, float]


def step_records(points: Iterable[Point]) -> list[dict[str, Any]]:
    """One step record per step (in step, then time order), each with every metric logged at it."""
    records: list[dict[str, Any]] = []
    current: dict[str, Any] | None = None
    for step, timestamp, name, value in sorted(points, key=lambda p: (p[0], p[1])):
        if name in FIELD_NAMES:
            continue
        if current is None or current["step"] != step or name in current:
            current = {"event": EV_STEP, "step": step, "time": timestamp / 1000}
            records.append(current)
        current[name] = value
    return records
