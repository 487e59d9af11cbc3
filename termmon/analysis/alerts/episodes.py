"""One alert per episode: a condition must hold for ``min_run`` consecutive points to start an episode,
and fail for ``rearm`` consecutive points before another can start.

State is three numbers, carried across calls, so feeding a condition in any number of slices fires at
exactly the points a single pass would. Work is per run of equal values, not per point.
"""

from __future__ import annotations

import numpy as np


class EpisodeTracker:
    def __init__(self, min_run: int = 1, rearm: int = 1) -> None:
        self.min_run = max(1, min_run)
        self.rearm = max(1, rearm)
        self.active = False
        self._true_run = 0
        self._false_run = 0

    def feed(self, condition: np.ndarray) -> list[int]:
        """Indices into ``condition`` where an episode starts."""
        cond = np.asarray(condition, dtype=bool)
        n = len(cond)
        if n == 0:
            return []
        edges = np.flatnonzero(cond[1:] != cond[:-1]) + 1
        starts = [0, *edges.tolist()]
        ends = [*edges.tolist(), n]
        fired: list[int] = []
        for start, end in zip(starts, ends, strict=True):
            length = end - start
            if cond[start]:
                if not self.active and self._true_run + length >= self.min_run:
                    fired.append(start + max(0, self.min_run - self._true_run - 1))
                    self.active = True
                self._true_run += length
                self._false_run = 0
            else:
                self._false_run += length
                self._true_run = 0
                if self.active and self._false_run >= self.rearm:
                    self.active = False
        return fired
