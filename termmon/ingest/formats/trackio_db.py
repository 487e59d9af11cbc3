"""trackio's local databases: ``~/.cache/huggingface/trackio/<project>.db`` (``$TRACKIO_DIR``), many runs each.

trackio 0.43 keeps one SQLite database per project, in WAL mode while it writes. Tables read:
``metrics`` (``id``, ``run_id``, ``run_name``, ``step``, ``timestamp`` as ISO 8601 text, and
``metrics``: one JSON object per ``trackio.log`` call, non-finite numbers as the strings ``"NaN"``,
``"Infinity"``, ``"-Infinity"``) and ``configs`` (the run's config as JSON, with trackio's own
``_Username``/``_Created``/``_Group`` keys, which are left out). Databases written before trackio 0.24
have no ``run_id``: there a run is its name.

Each run is one :class:`RunLocation` keyed by its run id. Read live: each read takes the rows past
the last id seen. trackio records no run status, so a run's state comes from how recent its rows are
(a crash shows as a run that stopped); ``system_metrics`` and media are not read.
"""

from __future__ import annotations

import json
import math
import sqlite3
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from termmon.format import EV_START, EV_STEP
from termmon.ingest.formats import sqlite_store
from termmon.ingest.formats.base import Format, FormatReader, Located, ReadStatus, RunLocation
from termmon.ingest.formats.tracker_metrics import FIELD_NAMES

_NON_FINITE = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}
_NEEDED = {"id", "run_name", "step", "timestamp", "metrics"}


def _id_column(tables: dict[str, set[str]]) -> str | None:
    """The column that names a run (``run_id``; ``run_name`` before trackio 0.24), or None: not trackio."""
    metrics = tables.get("metrics", set())
    if not metrics >= _NEEDED or "configs" not in tables:
        return None
    return "run_id" if "run_id" in metrics else "run_name"


def _run_keys(conn: sqlite3.Connection) -> list[str] | None:
    column = _id_column(sqlite_store.columns(conn))
    if column is None:
        return None
    rows = conn.execute(
        f"SELECT {column} FROM (SELECT {column}, min(id) AS first FROM metrics GROUP BY {column}"
        f" UNION ALL SELECT {column}, 1e18 + min(id) FROM configs GROUP BY {column})"
        f" GROUP BY {column} ORDER BY min(first)"
    )
    return [str(r[0]) for r in rows]


def _time(text: object) -> float | None:
    try:
        return datetime.fromisoformat(str(text)).timestamp()
    except ValueError:
        return None


def _json(raw: object) -> Any:
    try:
        return json.loads(raw)  # type: ignore[arg-type]
    except (TypeError, ValueError, RecursionError):
        return None


def _metric(value: object) -> float | int | None:
    if isinstance(value, str):
        return _NON_FINITE.get(value)
    if isinstance(value, int | float) and not isinstance(value, bool):
        return value
    return None  # text, media, nested tables: not series


class TrackioReader(sqlite_store.SqliteRunReader):
    """One run of a trackio database, read live."""

    def __init__(self, db: Path, key: str) -> None:
        super().__init__(db)
        self.key = key
        self._forget()

    def _forget(self) -> None:
        self._last_id = 0
        self._column: str | None = None
        self._started = False
        self._has_config = False

    def _snapshot(self, conn: sqlite3.Connection, status: ReadStatus, out: list[dict[str, Any]]) -> None:
        column = self._column or _id_column(sqlite_store.columns(conn))
        if column is None:
            status.error = f"{self.db}: not a trackio database any more (no metrics and configs tables)"
            return
        rows = conn.execute(
            f"SELECT id, run_name, step, timestamp, metrics FROM metrics WHERE {column} = ? AND id > ?"
            " ORDER BY id LIMIT ?",
            (self.key, self._last_id, sqlite_store.ROWS_PER_READ),
        ).fetchall()
        start = None
        if not self._has_config:
            # trackio writes a run's config row with its first batch of metrics, or just after it.
            config_row = conn.execute(
                f"SELECT run_name, config FROM configs WHERE {column} = ?", (self.key,)
            ).fetchone()
            if config_row is not None or (rows and not self._started):
                start = self._start_record(config_row, rows)
        # Every query has succeeded: now move this reader on.
        self._column = column
        status.more = len(rows) == sqlite_store.ROWS_PER_READ
        if start is not None:
            self._started = True
            self._has_config = config_row is not None
            out.append(start)
        for _, _, step, timestamp, metrics in rows:
            record: dict[str, Any] = {"event": EV_STEP, "step": step}
            when = _time(timestamp)
            if when is not None:
                record["time"] = when
            values = _json(metrics)
            if not isinstance(values, dict):
                status.bad_lines += 1
                continue
            for name, value in values.items():
                number = _metric(value)
                if number is not None and name not in FIELD_NAMES:
                    record[name] = number
            out.append(record)
        if rows:
            self._last_id = rows[-1][0]

    def _start_record(
        self, config_row: tuple[Any, Any] | None, rows: list[tuple[Any, ...]]
    ) -> dict[str, Any]:
        config = _json(config_row[1]) if config_row else None
        config = config if isinstance(config, dict) else {}
        record: dict[str, Any] = {"event": EV_START}
        when = (
            _time(config.get("_Created")) if "_Created" in config else (_time(rows[0][3]) if rows else None)
        )
        if when is not None:
            record["time"] = when
        record["run_name"] = str(config_row[0] if config_row else rows[0][1])
        record["run_id"] = self.key
        record["config"] = {k: v for k, v in config.items() if not str(k).startswith("_")}
        return record


class TrackioDb(Format):
    name = "trackio"
    label = "trackio database"
    pattern = "~/.cache/huggingface/trackio/<project>.db"
    rank = 66
    tailable = True

    def recognises(self, name: str) -> bool:
        return name.endswith(".db")

    def locate(self, directory: Path, names: Sequence[str]) -> Located | None:
        runs: list[RunLocation] = []
        for name in names:
            if self.recognises(name):
                db = directory / name
                keys = sqlite_store.cached(db, self.name, _run_keys)
                if isinstance(keys, list):
                    runs.extend(RunLocation(directory, self.name, file=db, key=key) for key in keys)
        return Located(runs, descend=True) if runs else None

    def open(self, location: RunLocation) -> FormatReader:
        assert location.file is not None and location.key is not None
        return TrackioReader(location.file, location.key)
