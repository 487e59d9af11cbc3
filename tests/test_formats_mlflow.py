"""MLflow runs written by mlflow itself (tests/data/mlflow, made by scripts/make_tracker_fixtures.py), in
both stores: the file store (``mlruns/``) and the sqlite store (``mlflow.db``, committed gzipped).
Whole reads, NaN/Inf mapped back, status, discovery at the natural depth, metric files growing, a
database read while another connection writes to it, and damaged input named in one line."""

from __future__ import annotations

import gzip
import math
import shutil
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from termmon.ingest.discovery import find_runs
from termmon.ingest.source import RunSource
from tests.format_helpers import DATA, alert_kinds, read_all, read_run, summary

MLRUNS = DATA / "mlflow" / "file_store" / "mlruns"
DB_GZ = DATA / "mlflow" / "sqlite" / "mlflow.db.gz"


def unpack_db(tmp_path: Path) -> Path:
    db = tmp_path / "mlflow.db"
    db.write_bytes(gzip.decompress(DB_GZ.read_bytes()))
    return db


def file_store_runs() -> dict[str, Path]:
    """Run name -> run directory, from each run's meta.yaml."""
    runs = {}
    for meta in MLRUNS.glob("*/*/meta.yaml"):
        name = next(
            line.split(": ", 1)[1] for line in meta.read_text().splitlines() if line.startswith("run_name:")
        )
        runs[name] = meta.parent
    return runs


def by_name(root: Path) -> dict[str, list[dict[str, Any]]]:
    """Every run under ``root``, read whole, by its MLflow run name."""
    runs = {}
    for location in find_runs(root):
        source = RunSource(location)
        records = read_all(source)
        source.close()
        runs[records[0]["run_name"]] = records
    return runs


def series(records: list[dict[str, Any]], name: str) -> list[tuple[int, float]]:
    return [(r["step"], r[name]) for r in records if name in r]


@pytest.fixture(params=["file_store", "sqlite"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Path:
    if request.param == "sqlite":
        unpack_db(tmp_path)
        return tmp_path
    return Path(shutil.copytree(MLRUNS, tmp_path / "mlruns"))


def test_both_stores_read_whole_with_params_status_and_epochs(store: Path) -> None:
    runs = by_name(store)
    assert sorted(runs) == ["crashed", "diverged", "healthy"]
    healthy = runs["healthy"]
    start, end = healthy[0], healthy[-1]
    assert start["event"] == "start" and start["config"] == {"lr": "0.05", "optimizer": "SGD"}
    # File-store experiment ids are 18-digit numbers, sqlite ones count from 1.
    assert start["tags"] == {"purpose": "termmon fixture"} and start["experiment_id"].isdigit()
    # One record per step, with every metric logged at it (MLflow keeps one series per metric).
    step_records = [r for r in healthy if r["event"] == "step"]
    assert [r["step"] for r in step_records] == list(range(30))
    assert all({"train/loss", "train/grad_norm", "train/lr"} <= r.keys() for r in step_records)
    assert [(r["step"], r["epoch"]) for r in step_records if "epoch" in r] == [(9, 0), (19, 1), (29, 2)]
    assert end == {"event": "end", "status": "finished", "time": end["time"]} and end["time"] >= start["time"]
    crashed = runs["crashed"]
    assert crashed[-1]["status"] == "crashed" and [s for s, _ in series(crashed, "train/loss")] == list(
        range(20)
    )


def test_nan_and_inf_read_back_as_logged(store: Path, capsys: pytest.CaptureFixture[str]) -> None:
    losses = [v for _, v in series(by_name(store)["diverged"], "train/loss")]
    # mlflow.db stores NaN as 0.0 with is_nan = 1 and Inf as 1.797e308; the file store writes nan / inf.
    assert any(map(math.isinf, losses)) and math.isnan(losses[-1]) and 0.0 not in losses
    code, out, _ = summary([store], capsys)
    blocks = {Path(b["path"]).name: b for b in out["runs"]}
    assert code == 0 and len(blocks) == 3
    diverged = [b for b in out["runs"] if "nan_inf" in alert_kinds(b)]
    assert len(diverged) == 1 and diverged[0]["metrics"]["train/loss"]["last"] == "NaN"
    assert sorted(b["status"] for b in out["runs"]) == ["crashed", "finished", "finished"]


def test_the_two_stores_agree(tmp_path: Path) -> None:
    unpack_db(tmp_path)
    files, db = by_name(MLRUNS), by_name(tmp_path)

    def logged(records: list[dict[str, Any]]) -> set[tuple[int, str]]:
        return {
            (r["step"], k)
            for r in records
            if r["event"] == "step"
            for k in r
            if k not in ("event", "step", "time")
        }

    for name in files:
        assert logged(files[name]) == logged(db[name]), name
        assert [r["event"] for r in files[name]] == [r["event"] for r in db[name]], name


def test_discovery_finds_mlruns_at_its_natural_depth_and_each_db_run_once(tmp_path: Path) -> None:
    project = tmp_path / "work" / "project"
    shutil.copytree(MLRUNS, project / "mlruns")
    unpack_db(project)
    for root in (tmp_path, project, project / "mlruns"):
        found = find_runs(root)
        formats = sorted(r.format for r in found)
        expected = ["mlflow"] * 3 + (["mlflow_db"] * 3 if root != project / "mlruns" else [])
        assert formats == expected, root
        assert len({r.path for r in found}) == len(found)
        assert all(len(r.dir.parent.name) == 18 for r in found if r.format == "mlflow")
    # The experiment's own meta.yaml is not a run, and a db run is named <db>/<experiment>/<run>.
    db_paths = [r.path for r in find_runs(project) if r.format == "mlflow_db"]
    assert all(p.parent.parent.name == "mlflow.db" for p in db_paths)


def test_deleted_runs_are_skipped(tmp_path: Path) -> None:
    mlruns = Path(shutil.copytree(MLRUNS, tmp_path / "mlruns"))
    meta = next(mlruns.glob("*/*/meta.yaml"))
    meta.write_text(meta.read_text().replace("lifecycle_stage: active", "lifecycle_stage: deleted"))
    db = unpack_db(tmp_path)
    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE runs SET lifecycle_stage = 'deleted' WHERE name = 'crashed'")
    assert len(find_runs(tmp_path)) == 4


def test_metric_files_growing_read_live(tmp_path: Path) -> None:
    run = Path(shutil.copytree(file_store_runs()["healthy"], tmp_path / "exp" / "run"))
    meta = run / "meta.yaml"
    finished = meta.read_text()
    meta.write_text(finished.replace("status: 3", "status: 1"))  # still running
    metrics = {p: p.read_bytes() for p in (run / "metrics").rglob("*") if p.is_file()}
    for path, data in metrics.items():
        path.write_bytes(data[:10])  # the first line torn
    source = RunSource(find_runs(tmp_path)[0])
    records = read_all(source)
    assert [r["event"] for r in records] == ["start"] and source.pending_bytes == 10 * len(metrics)
    half = {p: len(d) // 2 for p, d in metrics.items()}
    for path, data in metrics.items():
        with open(path, "ab") as fh:
            fh.write(data[10 : half[path]])
    records += read_all(source)
    assert "end" not in [r["event"] for r in records] and 5 < len(series(records, "train/loss")) < 25
    for path, data in metrics.items():
        with open(path, "ab") as fh:
            fh.write(data[half[path] :])
    meta.write_text(finished)
    records += read_all(source)
    source.close()
    assert [s for s, _ in series(records, "train/loss")] == list(range(30))
    assert records[-1]["event"] == "end" and records[-1]["status"] == "finished"
    whole = read_run(file_store_runs()["healthy"])
    for name in ("train/loss", "val_loss", "epoch"):
        assert sorted(series(records, name)) == sorted(series(whole, name)), name


def test_a_database_read_while_another_connection_writes(tmp_path: Path) -> None:
    """A real writer thread inserts rows as MLflow does (NaN as 0.0 + is_nan, Inf as 1.797e308)."""
    db = unpack_db(tmp_path)
    with sqlite3.connect(db) as conn:
        run_uuid, experiment = conn.execute(
            "SELECT run_uuid, experiment_id FROM runs WHERE name = 'healthy'"
        ).fetchone()
        conn.execute("DELETE FROM metrics WHERE run_uuid = ?", (run_uuid,))
        conn.execute("UPDATE runs SET status = 'RUNNING', end_time = NULL WHERE run_uuid = ?", (run_uuid,))
    location = next(r for r in find_runs(tmp_path) if r.key == f"{experiment}/{run_uuid}")
    source = RunSource(location)
    steps = 300

    def write() -> None:
        conn = sqlite3.connect(db, timeout=30)
        for step in range(steps):
            value, is_nan = (
                (0.0, 1)
                if step == steps - 2
                else ((1.7976931348623157e308, 0) if step == steps - 1 else (1 / (step + 1), 0))
            )
            with conn:
                conn.execute(
                    "INSERT INTO metrics (key, value, timestamp, run_uuid, step, is_nan) VALUES (?, ?, ?, ?, ?, ?)",
                    ("train/loss", value, 1_800_000_000_000 + step, run_uuid, step, is_nan),
                )
        with conn:
            conn.execute(
                "UPDATE runs SET status = 'FINISHED', end_time = ? WHERE run_uuid = ?",
                (1_800_000_001_000, run_uuid),
            )
        conn.close()

    writer = threading.Thread(target=write)
    records: list[dict[str, Any]] = []
    errors: list[str] = []
    writer.start()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not (records and records[-1]["event"] == "end"):
        update = source.read_objects()
        records.extend(update.objects)  # type: ignore[arg-type]
        if update.error:
            errors.append(update.error)
        time.sleep(0.005)
    writer.join()
    source.close()
    assert errors == []  # a lock held by the writer is retried, never shown
    losses = series(records, "train/loss")
    assert [s for s, _ in losses] == list(range(steps))
    assert math.isnan(losses[-2][1]) and losses[-1][1] == math.inf
    assert records[-1] == {"event": "end", "status": "finished", "time": 1_800_000_001.0}


def test_a_damaged_database_is_named_in_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "mlflow.db").write_bytes(b"this is not an SQLite database, whatever its name says" * 100)
    code, out, err = summary([tmp_path], capsys)
    assert code == 1 and len(out["runs"]) == 1 and out["runs"][0]["records"] == 0  # named: exit 1
    lines = [e for e in err.splitlines() if "mlflow.db" in e]
    assert len(lines) == 1 and "cannot read the database (file is not a database)" in lines[0]


def test_a_malformed_metric_line_is_counted_not_fatal(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = Path(shutil.copytree(file_store_runs()["healthy"], tmp_path / "exp" / "run"))
    with open(run / "metrics" / "train" / "loss", "ab") as fh:
        fh.write(b"not a metric line at all\n")
    code, out, _ = summary([tmp_path], capsys)
    assert (
        code == 0
        and out["runs"][0]["bad_lines"] == 1
        and out["runs"][0]["metrics"]["train/loss"]["count"] == 30
    )


def test_one_run_of_a_database_is_named_by_its_path(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import termmon
    from termmon.cli import main

    db = unpack_db(tmp_path)
    assert main(["report", str(db)]) == 2  # three runs: the message lists their paths
    listed = capsys.readouterr().err.split("choose one of them: ")[1].strip().split(", ")
    assert len(listed) == 3 and all(p.startswith(f"{db}/") for p in listed)
    frames = {}
    for path in listed:
        frame = termmon.load(path)
        frames[frame["run_name"].dropna().iloc[0]] = frame
    assert sorted(frames) == ["crashed", "diverged", "healthy"]
    assert frames["healthy"]["train/loss"].notna().sum() == 30
    assert frames["crashed"]["status"].dropna().tolist() == ["crashed"]
    with pytest.raises(Exception, match="no such file or directory"):
        termmon.load(f"{db}/1/not-a-run")


def test_follow_sees_a_database_run_grow(tmp_path: Path) -> None:
    import termmon

    db = unpack_db(tmp_path)
    with sqlite3.connect(db) as conn:
        run_uuid, experiment = conn.execute(
            "SELECT run_uuid, experiment_id FROM runs WHERE name = 'healthy'"
        ).fetchone()
        rows = conn.execute(
            "SELECT key, value, timestamp, step, is_nan FROM metrics WHERE run_uuid = ? ORDER BY rowid",
            (run_uuid,),
        ).fetchall()
        conn.execute("DELETE FROM metrics WHERE run_uuid = ?", (run_uuid,))
        conn.execute("UPDATE runs SET status = 'RUNNING' WHERE run_uuid = ?", (run_uuid,))

    def write() -> None:
        conn = sqlite3.connect(db, timeout=30)
        for key, value, timestamp, step, is_nan in rows:
            with conn:
                conn.execute(
                    "INSERT INTO metrics (key, value, timestamp, run_uuid, step, is_nan) VALUES (?, ?, ?, ?, ?, ?)",
                    (key, value, timestamp, run_uuid, step, is_nan),
                )
            time.sleep(0.002)
        with conn:
            conn.execute("UPDATE runs SET status = 'FINISHED' WHERE run_uuid = ?", (run_uuid,))
        conn.close()

    writer = threading.Thread(target=write)
    stop = threading.Event()
    seen: list[tuple[int, float]] = []
    events: list[str] = []
    deadline = time.monotonic() + 60
    writer.start()
    for records in termmon.follow(db / str(experiment) / run_uuid, stop=stop, poll_interval=0.02):
        seen += series(records, "train/loss")
        events += [r["event"] for r in records]
        if "end" in events or time.monotonic() > deadline:
            stop.set()
    writer.join()
    assert sorted(s for s, _ in seen) == list(range(30)) and events[0] == "start" and events[-1] == "end"


def test_a_lock_held_through_a_one_shot_read_is_waited_out(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A trainer's commit can hold the database for longer than one lock wait (a loaded box, a slow
    disk): a one-shot command then waits for it instead of printing "no such file" or an empty run."""
    import termmon

    db = unpack_db(tmp_path)
    with sqlite3.connect(db) as conn:
        run_uuid, experiment = conn.execute(
            "SELECT run_uuid, experiment_id FROM runs WHERE name = 'healthy'"
        ).fetchone()
    held, release = threading.Event(), threading.Event()

    def hold() -> None:
        conn = sqlite3.connect(db, isolation_level=None)
        conn.execute("BEGIN EXCLUSIVE")  # what a commit holds: no reader gets in
        held.set()
        release.wait(60)
        time.sleep(1.0)  # five times the reader's own lock wait
        conn.execute("COMMIT")
        conn.close()

    def read() -> tuple[object, object]:
        frame = termmon.load(f"{db}/{experiment}/{run_uuid}")
        return frame["train/loss"].notna().sum(), summary([db], capsys)[1]["runs"]

    unlocked = read()
    assert unlocked[0] == 30 and len(unlocked[1]) == 3  # type: ignore[arg-type]
    holder = threading.Thread(target=hold)
    holder.start()
    assert held.wait(60)
    release.set()
    locked = read()
    holder.join()
    assert locked == unlocked
