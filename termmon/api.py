"""The Python reading API: ``termmon.load`` for a notebook, ``termmon.follow`` for live scripts.

Only light modules are imported here: the readers (and numpy with them) are imported inside ``load``
and ``follow``, so that ``load`` starts its ingest workers before paying for those imports.
"""

from __future__ import annotations

import contextlib
import importlib
import itertools
import threading
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from termmon.errors import TermmonError
from termmon.ingest.gc_pause import gc_paused
from termmon.ingest.workers import prestart

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

    from termmon.ingest.formats.base import RunLocation
    from termmon.model.run import Run

#: The columns every frame starts with, from the run's table (its metrics and meta fields follow).
_TABLE = ("event", "time", "step", "epoch")
_DROP = frozenset({"_row", *_TABLE})


def _import_meanwhile(name: str) -> threading.Thread:
    """Import ``name`` on a thread of its own (join it, then import as usual: a failure is raised there).
    pandas takes ~0.5 CPU-s to import: imported before a big load, the ingest workers had nothing to do
    meanwhile; imported beside it, the time is shared with the caller's parsing while they parse on."""

    def run() -> None:
        with contextlib.suppress(Exception):
            importlib.import_module(name)

    thread = threading.Thread(target=run, name=f"termmon-import-{name}", daemon=True)
    thread.start()
    return thread


def load(path: str | Path) -> pd.DataFrame:
    """A run's records as a DataFrame: one row per record, columns ``event``, ``time``, ``step``,
    ``epoch`` and one per metric (NaN where a record lacks it). Meta events (start, alert, end, ...)
    keep their scalar fields as extra columns; nested config is left out.

    The collector is paused for the whole load (:func:`gc_paused`): the parse's records hold no cycles.
    """
    prestart([Path(path).expanduser()])  # first: the workers start while numpy and the readers import
    with gc_paused():
        pandas_imported = _import_meanwhile("pandas")
        try:
            from termmon.ingest.discovery import resolve_run
            from termmon.loading import load_run

            run = load_run(resolve_run(path), progress=False)
        finally:
            pandas_imported.join()
        if run is not None and run.errors:
            if run.records == 0:
                raise TermmonError(f"termmon.load: {run.errors[0]}")
            for error in run.errors:
                warnings.warn(f"termmon.load: {error}", RuntimeWarning, stacklevel=2)
        return _frame(run)


def _frame(run: Run | None) -> pd.DataFrame:
    """The frame of a loaded run, which is ours alone: its table's arrays become columns as they are
    (``copy=False``), and each metric's points go once they are spread over a column, so the frame is
    built with no second copy of the run alive."""
    import numpy as np
    import pandas as pd

    if run is None or run.records == 0:
        return pd.DataFrame(columns=list(_TABLE))
    n = run.records
    columns: dict[str, Any] = {name: getattr(run, name).view for name in _TABLE}
    columns["step"] = _steps(columns["step"])
    last_rows: np.ndarray | None = None  # the previous metric's rows, and where they break
    bounds: list[int] | None = None
    for name in run.metric_names():
        column = run.metrics.pop(name)
        rows = column.rows.view
        if last_rows is None or not np.array_equal(last_rows, rows):  # metrics logged together share them
            last_rows, bounds = rows, _run_bounds(rows)
        columns[name] = _spread(rows, column.values.view, n, bounds)
        del column, rows
    for key, cells in _meta_cells(run).items():
        if key not in columns:
            columns[key] = _sparse_column(cells, n)
    return pd.DataFrame(columns, copy=False)


def _steps(steps: np.ndarray) -> Any:
    """Whole steps as an Int64 column (missing: <NA>); the floats as they are if one is fractional or
    none is given. Made from the values and their mask at once: the reader keeps steps finite and within
    2**53, so the checks ``pd.array(..., "Int64")`` would make (~35 ms on a 1M-line run, as long as the
    rest of the frame) are the one comparison here."""
    import numpy as np
    import pandas as pd

    missing = np.isnan(steps)
    if missing.all():
        return steps
    filled = np.where(missing, 0.0, steps)
    whole = filled.astype(np.int64)
    if not np.array_equal(whole, filled):
        return steps
    return pd.arrays.IntegerArray(whole, missing)


def _run_bounds(rows: np.ndarray) -> list[int] | None:
    """Where ``rows`` break into runs of consecutive records (indices into ``rows``, first and last
    included), or None when the runs are short (logged every few records) or the rows few: those are
    stored row by row. Found once for the metrics that share their rows: a pass costs ~1.3 ms on 1M
    rows, the comparison that finds them shared ~0.1 ms."""
    import numpy as np

    breaks = np.flatnonzero(np.diff(rows) != 1) + 1
    if len(breaks) >= len(rows) // 64:
        return None
    return [0, *breaks.tolist(), len(rows)]


def _spread(rows: np.ndarray, values: np.ndarray, n: int, bounds: list[int] | None) -> np.ndarray:
    """A column of ``n`` rows holding ``values`` at ``rows`` and NaN elsewhere. A metric's rows come in
    runs of consecutive records (logged at every step, broken by the epoch records between), and each
    run (``bounds``, from :func:`_run_bounds`) is copied as one slice: a store through the (int32) rows
    converted them and wrote row by row, ~2x slower (~35 ms of a 1M-line frame)."""
    import numpy as np

    out = np.full(n, np.nan)
    if bounds is None:
        out[rows] = values
        return out
    for start, end in itertools.pairwise(bounds):
        first = int(rows[start])
        out[first : first + end - start] = values[start:end]
    return out


def _meta_cells(run: Run) -> dict[str, dict[int, Any]]:
    """The scalar fields of the run's meta events, by name: row -> value (nested config is left out)."""
    cells: dict[str, dict[int, Any]] = {}
    for record in run.events:
        row = record["_row"]
        for key, value in record.items():
            if key not in _DROP and (isinstance(value, str | int | float | bool) or value is None):
                cells.setdefault(key, {})[row] = value
    return cells


def _sparse_column(cells: dict[int, Any], n: int) -> Any:
    """A column of ``n`` rows holding ``cells`` (row -> value) and None elsewhere, as pandas makes it of
    such a list. When pandas reads the cells and a None as a type whose missing value is what it makes
    of None (str, float), the few cells are spread out by a take (-1: missing): pandas reading a million
    Nones took ~0.15 s a column, a reindex ~0.03 s. Otherwise (an object column keeps its Nones) the list
    itself, also for an integer no float holds exactly: whether pandas then makes floats or objects
    depends on where the Nones stand."""
    import numpy as np
    import pandas as pd

    values = list(cells.values())
    exact = all(not isinstance(v, int) or isinstance(v, bool) or abs(v) < 2**53 for v in values)
    sample = pd.Series([None, *values, None])
    if exact and sample.dtype != object:
        where = np.full(n, -1, dtype=np.intp)
        where[list(cells)] = np.arange(len(cells))
        return sample.array[1:-1].take(where, allow_fill=True)
    column_values = [None] * n
    for row, value in cells.items():
        column_values[row] = value
    return column_values


def follow(
    path: str | Path,
    stop: threading.Event | None = None,
    *,
    poll_interval: float = 0.25,
) -> Iterator[list[dict[str, Any]]]:
    """Yield lists of new records of a run as its trainer writes them, until ``stop`` is set.

    Each complete record is yielded once, in file order; a torn last line is held until its newline
    arrives. A truncated or rewritten file is read again from its start (its records are new records);
    a rotated file is drained before the new one is read. Records are normalized as everywhere in
    termmon: nested objects flattened with ``/``, seed formats mapped (docs/formats.md).

    A file that cannot be read (``permission denied: PATH``, not a regular file) is reported once as a
    RuntimeWarning and retried; ``stop`` is checked between chunks of at most ``READ_CHUNK`` bytes, so
    a run that never stops growing still lets ``follow`` return.
    """
    from termmon.ingest.discovery import resolve_run
    from termmon.ingest.watch import ChangeWatcher

    location = resolve_run(path)
    stop = stop or threading.Event()
    wake = threading.Event()
    reader = _RecordReader(location)
    with ChangeWatcher([location.dir], wake.set, poll_interval=None):
        while not stop.is_set():
            records, more, error = reader.read()
            if error is not None:
                warnings.warn(f"termmon.follow: {error}", RuntimeWarning, stacklevel=2)
            if records:
                yield records
            if not more:
                wake.wait(poll_interval)
                wake.clear()


class _RecordReader:
    """Valid records of a run, each once (follow()'s engine)."""

    def __init__(self, location: RunLocation) -> None:
        from termmon.ingest.source import RunSource

        self.source = RunSource(location)
        self._seen = 0  # records handed on since the last reset
        self._skip = 0  # records of a replayed reset still to pass over

    def read(self) -> tuple[list[dict[str, Any]], bool, str | None]:
        """One chunk's records, whether more is waiting, and a new error (reported once).

        A failure inside the reader is reported the same way, and the read is tried again later.
        """
        from termmon.ingest.batch import normalize_record

        try:
            raw = self.source.read_objects()
        except Exception as exc:
            return [], False, f"{self.source.location.path}: reading failed: {type(exc).__name__}: {exc}"
        records = [r for obj in raw.objects if (r := normalize_record(obj)) is not None]
        if raw.reset:
            # A whole-file re-read (results.json, trainer_state.json) or Lightning's in-place
            # rewrite delivers what was handed on again, then the new: pass over the former.
            replays = self.source.format is not None and self.source.format.replays_on_reset
            self._skip = self._seen if replays else 0
            self._seen = 0
        self._seen += len(records)
        drop = min(self._skip, len(records))
        self._skip -= drop
        return records[drop:], raw.more, raw.error
