"""trackio runs written by trackio itself (tests/data/trackio/fixtures.db.gz, made by
scripts/make_tracker_fixtures.py): whole reads, "NaN"/"Infinity" strings mapped back, one run per run
in the project database, and the database read live while another connection writes in WAL mode."""

from __future__ import annotations

import gzip
import json
import math
import sqlite3
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from termmon.ingest.discovery import find_runs
from termmon.ingest.source import RunSource
from tests.format_helpers import DATA, alert_kinds, read_all, summary

DB_GZ = DATA / "trackio" / "fixtures.db.gz"


def unpack_db(directory: Path) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    db = directory / "fixtures.db"
    db.write_bytes(gzip.decompress(DB_GZ.read_bytes()))
    return db


def by_name(root: Path) -> dict[str, list[dict[str, Any]]]:
    runs = {}
    for location in find_runs(root):
        source = RunSource(location)
        records = read_all(source)
        source.close()
        runs[records[0]["run_name"]] = records
    return runs


def series(records: list[dict[str, Any]], name: str) -> list[tuple[int, float]]:
    return [(r["step"], r[name]) for r in records if name in r]


def test_each_run_of_the_project_database_reads_whole(tmp_path: Path) -> None:
    unpack_db(tmp_path)
    runs = by_name(tmp_path)
    assert sorted(runs) == ["crashed", "diverged", "healthy"]
    start = runs["healthy"][0]
    assert start["event"] == "start" and start["config"] == {"lr": 0.05, "optimizer": "SGD"}
    assert [s for s, _ in series(runs["healthy"], "train/loss")] == list(range(30))
    assert [(r["step"], r["epoch"]) for r in runs["healthy"] if "epoch" in r] == [(9, 0), (19, 1), (29, 2)]
    assert [s for s, _ in series(runs["crashed"], "train/loss")] == list(range(20))
    times = [r["time"] for r in runs["healthy"]]
    assert times == sorted(times) and "end" not in [r["event"] for r in runs["crashed"]]  # no status kept


def test_nan_and_infinity_strings_read_back_and_raise_nan_inf(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    unpack_db(tmp_path)
    losses = [v for _, v in series(by_name(tmp_path)["diverged"], "train/loss")]
    assert any(math.isinf(v) for v in losses) and math.isnan(losses[-1])
    code, out, _ = summary([tmp_path], capsys)
    assert code == 0 and len(out["runs"]) == 3
    flagged = [b for b in out["runs"] if "nan_inf" in alert_kinds(b)]
    assert len(flagged) == 1 and flagged[0]["metrics"]["train/loss"]["last"] == "NaN"


def test_discovery_finds_each_run_once_and_ignores_other_databases(tmp_path: Path) -> None:
    trackio_dir = tmp_path / "cache" / "huggingface" / "trackio"
    unpack_db(trackio_dir)
    with sqlite3.connect(trackio_dir / "other.db") as conn:  # some other program's database
        conn.execute("CREATE TABLE metrics (id INTEGER, value REAL)")
    for root in (tmp_path, trackio_dir):
        found = find_runs(root)
        assert [r.format for r in found] == ["trackio"] * 3
        assert len({r.path for r in found}) == 3 and all(r.path.parent.name == "fixtures.db" for r in found)


def test_the_database_read_while_trackio_style_writer_appends(tmp_path: Path) -> None:
    """A real writer thread in WAL mode, as trackio writes: rows land in the -wal file first."""
    db = unpack_db(tmp_path)
    with sqlite3.connect(db) as conn:
        conn.execute("PRAGMA journal_mode = WAL")
        run_id = conn.execute("SELECT run_id FROM configs WHERE run_name = 'healthy'").fetchone()[0]
        conn.execute("DELETE FROM metrics WHERE run_id = ?", (run_id,))
    location = next(r for r in find_runs(tmp_path) if r.key == run_id)
    source = RunSource(location)
    steps = 300

    def write() -> None:
        conn = sqlite3.connect(db, timeout=30)
        for step in range(steps):
            value: object = "NaN" if step == steps - 1 else 1 / (step + 1)
            with conn:
                conn.execute(
                    "INSERT INTO metrics (run_id, timestamp, run_name, step, metrics) VALUES (?, ?, ?, ?, ?)",
                    (
                        run_id,
                        datetime.now(UTC).isoformat(),
                        "healthy",
                        step,
                        json.dumps({"train/loss": value}),
                    ),
                )
        conn.close()

    writer = threading.Thread(target=write)
    records: list[dict[str, Any]] = []
    errors: list[str] = []
    writer.start()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and len(series(records, "train/loss")) < steps:
        update = source.read_objects()
        records.extend(update.objects)  # type: ignore[arg-type]
        if update.error:
            errors.append(update.error)
        time.sleep(0.005)
    writer.join()
    source.close()
    losses = series(records, "train/loss")
    assert errors == [] and [s for s, _ in losses] == list(range(steps)) and math.isnan(losses[-1][1])
    assert [r["event"] for r in records].count("start") == 1


def test_a_database_from_before_run_ids_reads_runs_by_name(tmp_path: Path) -> None:
    """trackio before 0.24 named runs only by run_name: the fixture's rows in that schema."""
    source_db = unpack_db(tmp_path / "new")
    legacy = tmp_path / "old" / "fixtures.db"
    legacy.parent.mkdir()
    with sqlite3.connect(legacy) as old, sqlite3.connect(source_db) as new:
        old.execute(
            "CREATE TABLE metrics (id INTEGER PRIMARY KEY AUTOINCREMENT, timestamp TEXT NOT NULL,"
            " run_name TEXT NOT NULL, step INTEGER NOT NULL, metrics TEXT NOT NULL)"
        )
        old.execute(
            "CREATE TABLE configs (id INTEGER PRIMARY KEY AUTOINCREMENT, run_name TEXT NOT NULL,"
            " config TEXT NOT NULL, created_at TEXT NOT NULL, UNIQUE(run_name))"
        )
        old.executemany(
            "INSERT INTO metrics (timestamp, run_name, step, metrics) VALUES (?, ?, ?, ?)",
            new.execute("SELECT timestamp, run_name, step, metrics FROM metrics ORDER BY id").fetchall(),
        )
        old.executemany(
            "INSERT INTO configs (run_name, config, created_at) VALUES (?, ?, ?)",
            new.execute("SELECT run_name, config, created_at FROM configs ORDER BY id").fetchall(),
        )
    found = find_runs(legacy.parent)
    assert sorted(r.key or "" for r in found) == ["crashed", "diverged", "healthy"]
    runs = by_name(legacy.parent)
    assert runs["healthy"][0]["config"] == {"lr": 0.05, "optimizer": "SGD"}
    assert [s for s, _ in series(runs["healthy"], "train/loss")] == list(range(30))
