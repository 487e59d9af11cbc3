"""What the format-reader benchmarks share: the best of several timed rounds, and termmon's own read of
one run to its end (the figure each is set against its floor)."""

from __future__ import annotations

import time
from collections.abc import Callable

from termmon.ingest.formats.base import RunLocation
from termmon.ingest.source import RunSource


def best_of(fn: Callable[[], object], rounds: int) -> tuple[float, object]:
    """The fastest of ``rounds`` calls (seconds) and the last result: the least disturbed by the box's load."""
    best, result = float("inf"), None
    for _ in range(rounds):
        t0 = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - t0)
    return best, result


def points_read(location: RunLocation) -> int:
    """How many metric points termmon reads from one run, through the same source the monitor uses."""
    source = RunSource(location)
    points = 0
    while True:
        update = source.read()
        points += sum(len(values) for _, values in update.batch.metrics.values())
        if not update.more:
            break
    source.close()
    return points
