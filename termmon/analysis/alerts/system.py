"""The machine and the process: ``low_gpu_util`` (sustained), ``stalled`` (no new records for too long)."""

from __future__ import annotations

import math

import numpy as np

from termmon.analysis.alerts.base import Found, Spot, spot
from termmon.analysis.alerts.config import LowGpuUtilConfig, StalledConfig
from termmon.analysis.alerts.episodes import EpisodeTracker
from termmon.analysis.alerts.model import Severity, fmt_limit, fmt_value
from termmon.analysis.alerts.points import Cursor
from termmon.format import GPU_UTIL
from termmon.model.run import Run


class _Utilisation:
    def __init__(self, config: LowGpuUtilConfig) -> None:
        self.seen = 0
        self.tracker = EpisodeTracker(config.consecutive, config.consecutive)


class LowGpuUtilDetector:
    """Every ``gpu_util`` metric (``gpu_util``, ``*/gpu_util`` per device) below ``threshold`` percent for
    ``consecutive`` points after the first ``warmup_points`` (data loading, compilation)."""

    def __init__(self, config: LowGpuUtilConfig) -> None:
        self.config = config
        self.cursor = Cursor()
        self.states: dict[str, _Utilisation] = {}

    def update(self, run: Run, now: float) -> list[Found]:
        cfg = self.config
        found = []
        for name in [n for n in run.metrics if n == GPU_UTIL or n.endswith("/" + GPU_UTIL)]:
            points = self.cursor.take(run, name)
            if points is None:
                continue
            state = self.states.setdefault(name, _Utilisation(cfg))
            index = np.arange(state.seen, state.seen + len(points))
            state.seen += len(points)
            low = (index >= cfg.warmup_points) & (points.value < cfg.threshold)
            for i in state.tracker.feed(low):
                at = spot(points, i)
                value = float(points.value[i])
                message = (
                    f"{name} {fmt_value(value)}% at {at.where}: below {fmt_limit(cfg.threshold)}% "
                    f"for {cfg.consecutive} points in a row"
                )
                found.append(at.found("low_gpu_util", Severity.WARNING, message, name, value))
        return found


def fmt_duration(seconds: float) -> str:
    """``12ms``, ``1.5s``, ``42s``, ``3m 05s``, ``2h 10m``: sub-second cadences must not read as 0s."""
    if seconds < 1:
        return f"{max(0.0, seconds) * 1000:.0f}ms"
    if seconds < 10:
        return f"{seconds:.1f}s"
    seconds = round(seconds)
    if seconds < 60:
        return f"{seconds}s"
    minutes, secs = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes}m {secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h {minutes:02d}m"


class StalledDetector:
    """No ``end`` event and nothing new for :meth:`Run.stall_limit`: the longest of ``min_seconds``,
    ``intervals`` x the usual interval, and twice the longest silence the run has had so far.

    One alert per stall: the episode is tied to the last activity it saw, so records arriving (and later
    stopping again) start a new one. Formats without end events (results.json, debug logs) never stall.
    """

    def __init__(self, config: StalledConfig) -> None:
        self.config = config
        self.alerted_at = math.nan

    def update(self, run: Run, now: float) -> list[Found]:
        # A run still loading has its end (and its latest records) yet to come: no verdict from a part.
        if run.end is not None or not run.has_end_events or run.loading:
            return []
        activity = run.last_activity
        if not math.isfinite(activity) or activity == self.alerted_at:
            return []
        idle = now - activity
        # The limit is never below min_seconds, and working it out takes a median of the run's gaps: a
        # live run, checked on every refresh, is almost always inside min_seconds.
        if idle <= self.config.min_seconds:
            return []
        if idle <= run.stall_limit(self.config.min_seconds, self.config.intervals):
            return []
        self.alerted_at = activity
        interval = run.typical_interval()
        usual = f" (records usually every {fmt_duration(interval)})" if math.isfinite(interval) else ""
        at = Spot(len(run.time), run.last_step, run.last_epoch, now)
        message = (
            f"no new records for {fmt_duration(idle)}{usual}; last at {at.where}. The trainer may hang "
            "(a dataloader worker, a collective waiting on another rank, I/O): py-spy dump --pid shows where"
        )
        return [at.found("stalled", Severity.WARNING, message, None, idle)]
