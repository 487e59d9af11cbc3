"""Lightning's CSVLogger and Keras' CSVLogger files (tests/data/lightning, tests/data/keras, made by
scripts/make_format_fixtures.py): whole, torn, rewritten in place, diverged; termmon's own
metrics.csv mirror is not taken for Lightning's."""

from __future__ import annotations

import json
import os
import tempfile
import threading
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import termmon
from termmon.ingest.discovery import find_runs
from termmon.ingest.source import RunSource
from tests.format_helpers import (
    DATA,
    alert_kinds,
    grow_and_read,
    only_run,
    points,
    read_all,
    read_run,
    summary,
)

LIGHTNING = DATA / "lightning"
VERSION = "lightning_logs/version_0"
KERAS = DATA / "keras"


def test_lightning_version_dir_is_the_run_with_hparams_as_config() -> None:
    run = only_run(LIGHTNING / "csv")
    assert run.format == "lightning_csv" and run.dir == LIGHTNING / "csv" / VERSION
    records = read_run(LIGHTNING / "csv")
    assert records[0] == {"event": "start", "config": {"lr": 0.05}}
    steps = [r["step"] for r in records if "train_loss_step" in r]
    assert steps[0] == 1 and steps == sorted(steps)  # 0-based: log_every_n_steps=2 logs at 1, 3, ...
    val = [r for r in records if "val_loss" in r]
    assert [r["epoch"] for r in val] == [0, 1, 2] and [r["step"] for r in val] == [7, 15, 23]
    assert any("lr-SGD" in r for r in records) and any("train_loss_epoch" in r for r in records)


def test_lightning_tensorboard_logger_dir_is_one_run() -> None:
    run = only_run(LIGHTNING / "tb")
    assert run.format == "tfevents" and run.dir == LIGHTNING / "tb" / VERSION
    assert any("val_loss" in r for r in read_run(LIGHTNING / "tb"))


def test_lightning_in_place_rewrite_is_re_read(tmp_path: Path) -> None:
    final = (LIGHTNING / "csv" / VERSION / "metrics.csv").read_bytes()
    before = (LIGHTNING / "csv" / "metrics.before_rewrite.snapshot").read_bytes()
    run = tmp_path / VERSION
    run.mkdir(parents=True)
    path = run / "metrics.csv"
    path.write_bytes(before)
    source = RunSource(only_run(tmp_path))
    first = read_all(source)
    assert [r["step"] for r in first if "train_loss_step" in r] == [1, 3, 5]
    inode = path.stat().st_ino
    with open(path, "r+b") as fh:  # what Lightning does: rewrite the same file, header first
        fh.write(final)
    assert path.stat().st_ino == inode and path.stat().st_size > len(before)
    update = source.read_objects()
    assert update.reset
    records = list(update.objects)
    while update.more:
        update = source.read_objects()
        records += update.objects
    source.close()
    whole = [r for r in read_run(LIGHTNING / "csv") if r["event"] != "start"]  # no hparams.yaml here
    assert points(records) == points(whole)


def test_termmon_mirror_is_not_lightning(tmp_path: Path) -> None:
    run = tmp_path / "run"
    run.mkdir()
    (run / "metrics.csv").write_text("event,time,step,epoch,train_loss\nstep,1.0,1,,0.5\n")
    (run / "metrics.jsonl").write_text(
        json.dumps({"event": "step", "time": 1.0, "step": 1, "train_loss": 0.5}) + "\n"
    )
    assert only_run(tmp_path).format == "termmon"
    os.remove(run / "metrics.jsonl")
    assert find_runs(tmp_path) == []


@pytest.mark.parametrize(
    "src",
    [LIGHTNING / "csv" / VERSION / "metrics.csv", KERAS / "healthy" / "training.log"],
    ids=["lightning", "keras"],
)
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_csv_torn_at_any_byte_reads_as_whole(src: Path, data: st.DataObject) -> None:
    cuts = data.draw(st.lists(st.integers(0, src.stat().st_size), max_size=8))
    with tempfile.TemporaryDirectory() as tmp:
        whole_dir = Path(tmp) / "whole"
        whole_dir.mkdir()
        (whole_dir / src.name).write_bytes(src.read_bytes())
        whole = [r for r in read_run(whole_dir) if r["event"] != "start"]
        grown, source = grow_and_read(src, Path(tmp) / "grown" / src.name, cuts)
        assert source.pending_bytes == 0
        source.close()
    assert points(whole) == points(grown) and whole


def test_keras_log_is_one_epoch_record_per_row() -> None:
    run = only_run(KERAS / "healthy")
    assert run.format == "keras_csv"
    records = read_run(KERAS / "healthy")
    assert [r["epoch"] for r in records] == list(range(6)) and {r["event"] for r in records} == {"epoch"}
    assert records[-1]["val_loss"] < records[0]["val_loss"]


def test_several_keras_logs_in_one_dir_are_several_runs(tmp_path: Path) -> None:
    for name in ("a.csv", "b.log"):
        (tmp_path / name).write_bytes((KERAS / "healthy" / "training.log").read_bytes())
    (tmp_path / "notes.csv").write_text("name,value\nx,1\n")
    assert sorted(r.path.name for r in find_runs(tmp_path)) == ["a.csv", "b.log"]


@pytest.mark.parametrize("run", [LIGHTNING / "diverged", KERAS / "diverged"], ids=["lightning", "keras"])
def test_diverged_csv_runs_raise_nan_inf(run: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, data, _ = summary([run], capsys)
    assert code == 0 and len(data["runs"]) == 1 and "nan_inf" in alert_kinds(data["runs"][0])


def test_follow_hands_on_each_lightning_row_once_across_the_rewrite(tmp_path: Path) -> None:
    final = (LIGHTNING / "csv" / VERSION / "metrics.csv").read_bytes()
    before = (LIGHTNING / "csv" / "metrics.before_rewrite.snapshot").read_bytes()
    run = tmp_path / VERSION
    run.mkdir(parents=True)
    (run / "metrics.csv").write_bytes(before)
    stop = threading.Event()
    got: list[dict] = []
    deadline = time.monotonic() + 60
    rewritten = False
    for records in termmon.follow(run, stop=stop, poll_interval=0.05):
        got += records
        if not rewritten:
            with open(run / "metrics.csv", "r+b") as fh:
                fh.write(final)
            rewritten = True
        if len(got) >= 30 or time.monotonic() > deadline:
            stop.set()
    whole = [r for r in read_run(LIGHTNING / "csv") if r["event"] != "start"]
    assert points(got) == points(whole)
