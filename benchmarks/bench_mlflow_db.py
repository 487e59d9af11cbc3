"""Reading a long run from an MLflow sqlite store (docs/formats.md).

    python -m benchmarks.bench_mlflow_db [--steps 100000] [--rounds 3]

The database is the committed fixture (tests/data/mlflow/sqlite, written by mlflow 3.17), its
``healthy`` run given ``--steps`` steps of three metrics, inserted as MLflow inserts them. Readings,
best of ``--rounds``:

* floor: one ``SELECT`` of the run's metric rows with sqlite3, nothing else;
* termmon: ``RunSource.read`` to the end: rows mapped back (NaN, Inf), grouped into step records,
  columns;
* mlflow: ``MlflowClient.get_metric_history`` of each metric (what a script using MLflow would
  call), when mlflow is importable.
"""

from __future__ import annotations

import argparse
import gzip
import sqlite3
import tempfile
from pathlib import Path

from benchmarks.reading import best_of, points_read
from termmon.ingest.discovery import find_runs

DB_GZ = Path(__file__).resolve().parent.parent / "tests" / "data" / "mlflow" / "sqlite" / "mlflow.db.gz"
KEYS = ("train/loss", "train/grad_norm", "train/lr")


def make_db(directory: Path, steps: int) -> tuple[Path, str]:
    db = directory / "mlflow.db"
    db.write_bytes(gzip.decompress(DB_GZ.read_bytes()))
    with sqlite3.connect(db) as conn:
        (run,) = conn.execute("SELECT run_uuid FROM runs WHERE name = 'healthy'").fetchone()
        conn.execute("DELETE FROM metrics WHERE run_uuid = ?", (run,))
        conn.executemany(
            "INSERT INTO metrics (key, value, timestamp, run_uuid, step, is_nan) VALUES (?, ?, ?, ?, ?, 0)",
            (
                (key, 1 / (step + 1), 1_800_000_000_000 + step, run, step)
                for step in range(steps)
                for key in KEYS
            ),
        )
    return db, run


def floor(db: Path, run: str) -> int:
    conn = sqlite3.connect(db.absolute().as_uri() + "?mode=ro", uri=True)
    rows = conn.execute(
        "SELECT rowid, key, value, timestamp, step, is_nan FROM metrics WHERE run_uuid = ? ORDER BY rowid",
        (run,),
    ).fetchall()
    conn.close()
    return len(rows)


def termmon_read(db: Path, run: str) -> int:
    location = next(r for r in find_runs(db.parent) if r.key is not None and r.key.endswith(run))
    return points_read(location)


def mlflow_read(db: Path, run: str) -> int | None:
    try:
        from mlflow.tracking import MlflowClient
    except ImportError:
        return None
    client = MlflowClient(tracking_uri=f"sqlite:///{db}")
    return sum(len(client.get_metric_history(run, key)) for key in KEYS)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        db, run = make_db(Path(tmp), args.steps)
        t_floor, rows = best_of(lambda: floor(db, run), args.rounds)
        t_termmon, points = best_of(lambda: termmon_read(db, run), args.rounds)
        t_mlflow, mlflow_points = best_of(lambda: mlflow_read(db, run), args.rounds)
    print(f"| mlflow.db run: {args.steps} steps x {len(KEYS)} metrics ({rows} rows) | seconds |")
    print("|---|---|")
    print(f"| floor (sqlite3 SELECT of the rows) | {t_floor:.2f} |")
    print(
        f"| termmon `RunSource.read` to columns ({points} points) | {t_termmon:.2f} ({t_termmon / t_floor:.1f}x the floor) |"
    )
    if mlflow_points is None:
        print("| mlflow `get_metric_history` per metric | skipped (mlflow not importable) |")
    else:
        print(f"| mlflow `get_metric_history` per metric ({mlflow_points} points) | {t_mlflow:.2f} |")


if __name__ == "__main__":
    main()
