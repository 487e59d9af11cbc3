"""What ``termmon summary`` reports about each run: the DESIGN.md ``summary --json`` blocks."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from termmon.analysis.alerts import AlertEngine
from termmon.ingest.discovery import display_path
from termmon.model.run import Run

#: Records between two judgements of a run while it loads: a few judgements per million records (each
#: has a fixed numpy cost per detector), and what is left after the last one, at most this many records,
#: is judged after the load (~0.02 s of a 1M-line summary's end, against ~0.1 s for the whole run).
JUDGE_RECORDS = 1 << 17


def _finite_or_none(value: float) -> float | None:
    return value if math.isfinite(value) else None


def summarize_run(run: Run, alerts: list[dict[str, Any]], now: float) -> dict[str, Any]:
    """The DESIGN.md ``summary --json`` block for one run (non-finite values still as floats)."""
    metrics = {}
    for name in run.metric_names():
        stats = run.metrics[name].stats
        metrics[name] = {
            "last": stats.last,
            "min": stats.min if stats.count - stats.nonfinite else math.nan,
            "max": stats.max if stats.count - stats.nonfinite else math.nan,
            "count": stats.count,
        }
    return {
        "name": run.name,
        "path": display_path(run.path),
        "status": str(run.status(now)),
        "records": run.records,
        "bad_lines": run.bad_lines,
        "first_time": _finite_or_none(run.first_time),
        "last_time": _finite_or_none(run.last_time),
        "last_step": run.last_step,
        "last_epoch": run.last_epoch,
        "metrics": metrics,
        "alerts": alerts,
    }


def summarize(runs: list[Run], engine: AlertEngine, now: float) -> dict[str, Any]:
    """The summary of ``runs``, their alerts from ``engine``: it judges what it has not judged yet (a
    fresh one all of it; one that judged the runs as they loaded, :class:`JudgedWhileLoading`, the rest),
    and the alerts are the same either way."""
    blocks = []
    for run in runs:
        engine.update(run, now=now)
        blocks.append(summarize_run(run, [a.to_dict() for a in engine.alerts_for(run)], now))
    return {"runs": blocks}


class JudgedWhileLoading:
    """A ``meanwhile`` for :func:`~termmon.loading.load_workspace`: judges a big run every
    :data:`JUDGE_RECORDS` records as its pieces come in, so that most of the alert pass (~0.1 s of a
    1M-line ``summary``) runs while the ingest workers parse on, not after them on one core. Nothing
    is judged from the part read that needs the whole run: ``stalled`` waits while the run is loading."""

    def __init__(self, engine: AlertEngine) -> None:
        self.engine = engine
        self._judged: dict[Path, int] = {}

    def __call__(self, run: Run) -> None:
        if run.loading and run.records - self._judged.get(run.path, 0) >= JUDGE_RECORDS:
            self._judged[run.path] = run.records
            self.engine.update(run)
