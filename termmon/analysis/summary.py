"""What ``termmon summary`` reports about each run: the DESIGN.md ``summary --json`` blocks."""

from __future__ import annotations

import math
from typing import Any

from termmon.analysis.alerts import AlertEngine
from termmon.ingest.discovery import display_path
from termmon.model.run import Run


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


def summarize(runs: list[Run], engine_config: Any, now: float) -> dict[str, Any]:
    blocks = []
    for run in runs:
        engine = AlertEngine(engine_config)
        engine.update(run, now=now)
        blocks.append(summarize_run(run, [a.to_dict() for a in engine.alerts], now))
    return {"runs": blocks}
