"""MLflow's SQLite store, ``mlflow.db``: MLflow 3's default (``sqlite:///mlflow.db``), many runs in one file.

Tables read (MLflow 3.17's schema, created by its alembic migrations): ``runs`` (``run_uuid``,
``name``, ``status`` RUNNING/SCHEDULED/FINISHED/FAILED/KILLED, ``start_time``/``end_time`` in ms,
``lifecycle_stage``), ``experiments``, ``params`` (the config) and ``metrics`` (``key, value,
timestamp, step, is_nan``). SQL has no NaN or Inf, so MLflow stores NaN as 0.0 with ``is_nan = 1``
and ±Inf as ±1.7976931348623157e308 (``sanitize_metric_value``); both are mapped back here, so a
diverged run reads as one.

Each run is one :class:`RunLocation` keyed ``<experiment_id>/<run_uuid>`` (as ``mlruns/`` lays them
out); runs and experiments the user deleted are skipped. Read live: each read takes the metric rows
past the last rowid seen (MLflow only inserts), and the run's status for its end.
"""

from __future__ import annotations

import math
import sqlite3
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from termmon.format import EV_END, EV_START
from termmon.ingest.formats import mlflow_status, sqlite_store
from termmon.ingest.formats.base import Format, FormatReader, Located, ReadStatus, RunLocation
from termmon.ingest.formats.tracker_metrics import Point, step_records

DB_NAME = "mlflow.db"
#: What MLflow writes for +Inf (and its negative for -Inf).
_INF_STORED = 1.7976931348623157e308
_TABLES = {"runs": {"run_uuid", "status"}, "metrics": {"key", "value", "is_nan", "run_uuid"}, "params": set()}


def _is_mlflow(tables: dict[str, set[str]]) -> bool:
    return all(t in tables and cols <= tables[t] for t, cols in _TABLES.items())


def _run_keys(conn: sqlite3.Connection) -> list[str] | None:
    """``<experiment_id>/<run_uuid>`` of every live run, oldest first; None for another kind of database."""
    if not _is_mlflow(sqlite_store.columns(conn)):
        return None
    rows = conn.execute(
        "SELECT r.experiment_id, r.run_uuid FROM runs r LEFT JOIN experiments e USING (experiment_id)"
        " WHERE coalesce(r.lifecycle_stage, '') != ? AND coalesce(e.lifecycle_stage, '') != ?"
        " ORDER BY r.start_time, r.run_uuid",
        (mlflow_status.DELETED, mlflow_status.DELETED),
    )
    return [f"{exp}/{run}" for exp, run in rows]


def metric_value(value: float, is_nan: int) -> float:
    """A stored metric value as it was logged: NaN and ±Inf mapped back."""
    if is_nan:
        return math.nan
    if value == _INF_STORED:
        return math.inf
    if value == -_INF_STORED:
        return -math.inf
    return float(value)


class MlflowDbReader(sqlite_store.SqliteRunReader):
    """One run of an mlflow.db, read live."""

    def __init__(self, db: Path, key: str) -> None:
        super().__init__(db)
        self.run_uuid = key.rsplit("/", 1)[-1]
        self._forget()

    def _forget(self) -> None:
        self._last_rowid = 0
        self._config_sig: tuple[int, int] | None = None
        self._ended = False

    def _snapshot(self, conn: sqlite3.Connection, status: ReadStatus, out: list[dict[str, Any]]) -> None:
        run = conn.execute(
            "SELECT name, status, start_time, end_time, experiment_id FROM runs WHERE run_uuid = ?",
            (self.run_uuid,),
        ).fetchone()
        if run is None:
            status.error = f"{self.db}: run {self.run_uuid} is no longer in the database"
            return
        name, state, started, ended, experiment = run
        code = mlflow_status.BY_NAME.get(str(state))
        end_status = mlflow_status.END_STATUS.get(code) if code is not None else None
        finished = end_status is not None
        config_sig = conn.execute(
            "SELECT (SELECT count(*) FROM params WHERE run_uuid = ?), (SELECT count(*) FROM tags WHERE run_uuid = ?)",
            (self.run_uuid, self.run_uuid),
        ).fetchone()
        rows = conn.execute(
            "SELECT rowid, key, value, timestamp, step, is_nan FROM metrics WHERE run_uuid = ? AND rowid > ?"
            " ORDER BY rowid LIMIT ?",
            (self.run_uuid, self._last_rowid, sqlite_store.ROWS_PER_READ),
        ).fetchall()
        status.more = len(rows) == sqlite_store.ROWS_PER_READ
        start = None
        if (
            self._config_sig is None
            or (self._ended and not finished)
            or (not self._ended and config_sig != self._config_sig)
        ):
            # The first read, new params or tags, or a finished run resumed.
            start = self._start_record(conn, name, started, experiment)
        # Every query has succeeded: now move this reader on.
        if start is not None:
            self._config_sig = config_sig
            self._ended = False
            out.append(start)
        points: list[Point] = [
            (int(step), int(ts), key, metric_value(value, is_nan)) for _, key, value, ts, step, is_nan in rows
        ]
        out.extend(step_records(points))
        if rows:
            self._last_rowid = rows[-1][0]
        if finished and not self._ended and not status.more:
            self._ended = True
            end: dict[str, Any] = {"event": EV_END, "status": end_status}
            if isinstance(ended, int):
                end["time"] = ended / 1000
            out.append(end)

    def _start_record(
        self, conn: sqlite3.Connection, name: object, started: object, experiment: object
    ) -> dict[str, Any]:
        params = dict(
            conn.execute("SELECT key, value FROM params WHERE run_uuid = ? ORDER BY key", (self.run_uuid,))
        )
        tags = dict(
            conn.execute("SELECT key, value FROM tags WHERE run_uuid = ? ORDER BY key", (self.run_uuid,))
        )
        record: dict[str, Any] = {"event": EV_START}
        if isinstance(started, int):
            record["time"] = started / 1000
        record["run_name"] = str(name or tags.get("mlflow.runName") or self.run_uuid)
        record["run_id"] = self.run_uuid
        record["experiment_id"] = str(experiment)
        record["config"] = params
        user_tags = {k: v for k, v in tags.items() if not str(k).startswith("mlflow.")}
        if user_tags:
            record["tags"] = user_tags
        return record


class MlflowDb(Format):
    name = "mlflow_db"
    label = "MLflow database"
    pattern = "mlflow.db"
    remote_files = ("mlflow.db",)
    rank = 64
    tailable = True
    has_end_events = True

    def recognises(self, name: str) -> bool:
        return name.endswith(".db")

    def locate(self, directory: Path, names: Sequence[str]) -> Located | None:
        runs: list[RunLocation] = []
        for name in names:
            if not self.recognises(name):
                continue
            db = directory / name
            keys = sqlite_store.cached(db, self.name, _run_keys)
            if isinstance(keys, list):
                runs.extend(RunLocation(directory, self.name, file=db, key=key) for key in keys)
            elif isinstance(keys, sqlite3.Error) and name == DB_NAME and not sqlite_store.is_transient(keys):
                # Named as MLflow names it but unreadable: one run whose reader says why.
                runs.append(RunLocation(directory, self.name, file=db, key=None))
        return Located(runs, descend=True) if runs else None

    def open(self, location: RunLocation) -> FormatReader:
        if location.key is None:
            return sqlite_store.UnreadableDb(location.file or location.dir / DB_NAME, self.label)
        assert location.file is not None
        return MlflowDbReader(location.file, location.key)
