"""Synthetic runs for tests: real metrics.jsonl files written with the producer's encoder, read back into a
``Run`` the way the monitor reads them.

``make_records`` lays out a run (start, step records, epoch records, extra events, end) from arrays or
functions of the step; ``write_run`` writes it; ``load_run`` reads a run directory; ``make_run`` does all
three. ``feed`` adds records to an existing Run in slices, for incremental tests.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from termmon.format import METRICS_JSONL, encode_record
from termmon.ingest.batch import build_batch
from termmon.model.run import Run

Values = Sequence[float] | np.ndarray | Callable[[np.ndarray], Any]

START_TIME = 1_700_000_000.0


def _column(spec: Values, x: np.ndarray) -> np.ndarray:
    values = spec(x) if callable(spec) else spec
    column = np.broadcast_to(np.asarray(values, dtype=np.float64), x.shape)
    return np.array(column)


def _number(value: float) -> float | int:
    return int(value) if float(value).is_integer() and abs(value) < 2**53 else float(value)


def make_records(
    steps: int | Sequence[int] | np.ndarray = 0,
    metrics: Mapping[str, Values] | None = None,
    *,
    log_every: int = 10,
    epoch_metrics: Mapping[str, Values] | None = None,
    epochs: int | None = None,
    events: Iterable[Mapping[str, Any]] = (),
    interval: float = 1.0,
    start_time: float = START_TIME,
    end: str | None = "finished",
    run_name: str = "run",
) -> list[dict[str, Any]]:
    """Records of one run, in file order.

    ``steps``: a count (steps ``log_every, 2*log_every, ...``) or the step numbers. ``metrics``: per step
    metric, an array (one value per step, NaN/inf welcome) or a function of the step array. Epoch records
    (``epochs`` of them, default the length of the epoch arrays) split the steps evenly, each written after
    its last step with that step number; epoch metric functions get the epoch index array. ``events``
    (records with ``event`` and ``step``) go right after the step record they name. Records are
    ``interval`` seconds apart; ``end=None`` leaves the run without an end event.
    """
    step_x = np.arange(1, steps + 1) * log_every if isinstance(steps, int) else np.asarray(steps)
    step_cols = {name: _column(spec, step_x) for name, spec in (metrics or {}).items()}
    epoch_metrics = epoch_metrics or {}
    if epochs is None:
        lengths = [len(v) for v in epoch_metrics.values() if not callable(v)]
        epochs = lengths[0] if lengths else 0
    epoch_x = np.arange(epochs)
    epoch_cols = {name: _column(spec, epoch_x) for name, spec in epoch_metrics.items()}
    per_epoch = max(1, -(-len(step_x) // epochs)) if epochs else 0

    timeline: list[tuple[float, int, dict[str, Any]]] = []
    for i, step in enumerate(step_x.tolist()):
        epoch = i // per_epoch if epochs else 0
        record = {"event": "step", "step": int(step), "epoch": int(epoch)}
        record.update({name: _number(col[i]) for name, col in step_cols.items()})
        timeline.append((float(step), 0, record))
    for e in range(epochs):
        last = min(len(step_x), (e + 1) * per_epoch) - 1
        step = int(step_x[last]) if len(step_x) else e
        record = {"event": "epoch", "step": step, "epoch": e}
        record.update({name: _number(col[e]) for name, col in epoch_cols.items()})
        timeline.append((float(step), 1, record))
    for event in events:
        timeline.append((float(event.get("step", -1)), 2, dict(event)))
    timeline.sort(key=lambda item: item[:2])
    start = {"event": "start", "run_name": run_name, "log_every": log_every, "config": {}}
    records = [start, *(r for _, _, r in timeline)]
    if end is not None:
        records.append({"event": "end", "status": end})
    for i, record in enumerate(records):
        record.setdefault("time", start_time + i * interval)
    return records


def write_run(run_dir: Path, records: Iterable[Mapping[str, Any]]) -> Path:
    run_dir.mkdir(parents=True, exist_ok=True)
    text = "".join(encode_record(r) + "\n" for r in records)
    (run_dir / METRICS_JSONL).write_text(text, encoding="utf-8")
    return run_dir


def read_records(run_dir: Path) -> list[Any]:
    lines = (run_dir / METRICS_JSONL).read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines if line.strip()]


def feed(run: Run, records: list[Any]) -> Run:
    run.add(build_batch(records))
    return run


def load_run(run_dir: Path) -> Run:
    return feed(Run(run_dir), read_records(run_dir))


def run_of(tmp_path: Path, records: Iterable[Mapping[str, Any]], name: str = "run") -> Run:
    """Write ``records`` as the run ``tmp_path/name`` and read it back."""
    return load_run(write_run(tmp_path / name, records))


def make_run(
    tmp_path: Path,
    steps: int | Sequence[int] | np.ndarray = 0,
    metrics: Mapping[str, Values] | None = None,
    *,
    name: str = "run",
    **layout: Any,
) -> Run:
    """Write a synthetic run under ``tmp_path/name`` and read it back (see :func:`make_records`)."""
    return load_run(write_run(tmp_path / name, make_records(steps, metrics, run_name=name, **layout)))
