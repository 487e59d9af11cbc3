"""W&B offline runs written by wandb itself (tests/data/wandb, made by scripts/make_tracker_fixtures.py):
whole, torn at any byte, spanning blocks, damaged, of a newer version, diverged, crashed, found under
``wandb/`` at its natural depth, and growing live."""

from __future__ import annotations

import json
import math
import os
import shutil
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import termmon
from termmon.ingest.discovery import find_runs
from termmon.ingest.source import RunSource
from tests.format_helpers import DATA, alert_kinds, grow_and_read, only_run, read_run, summary

WANDB = DATA / "wandb" / "wandb"


def _by_name() -> dict[str, Path]:
    runs = {}
    for run in sorted(WANDB.iterdir()):
        start = next(r for r in read_run(run) if r["event"] == "start")
        runs[start["run_name"]] = run
    return runs


RUNS = _by_name()


def log_file(name: str) -> Path:
    return next(RUNS[name].glob("run-*.wandb"))


def steps(records: list[dict[str, Any]], name: str) -> list[int]:
    return [r["step"] for r in records if name in r]


def test_a_finished_run_reads_whole_with_config_names_and_end() -> None:
    records = read_run(RUNS["healthy"])
    starts = [r for r in records if r["event"] == "start"]
    start, end = starts[0], records[-1]
    assert start["run_name"] == "healthy" and start["project"] == "fixtures" and records[0] is start
    assert start["config"] == {"lr": 0.05, "optimizer": "SGD"}
    # run.config.update after init is a config record: the start again, with the merged config.
    assert len(starts) == 2 and starts[1]["config"] == {"lr": 0.05, "optimizer": "SGD", "batch_size": 64}
    assert starts[1]["time"] == start["time"]
    assert steps(records, "train/loss") == list(range(30))
    assert steps(records, "train/lr") == list(range(30))
    # A nested dict is named as W&B shows it; text and W&B's own _runtime are not series.
    assert steps(records, "eval.acc") == [9, 19, 29]
    assert all("phase" not in r and "_runtime" not in r and "_step" not in r for r in records)
    assert [r["epoch"] for r in records if "epoch" in r] == [0, 1, 2]
    # Times are W&B's _timestamp: after the run's start, in order.
    times = [r["time"] for r in records if r["event"] == "step"]
    assert times == sorted(times) and times[0] >= start["time"]
    assert end["event"] == "end" and end["status"] == "finished" and end["time"] >= times[-1]
    assert end["summary"]["train/loss"] == records[-2]["train/loss"]


def test_a_crashed_run_ends_crashed(capsys: pytest.CaptureFixture[str]) -> None:
    records = read_run(RUNS["crashed"])
    assert steps(records, "train/loss") == list(range(20))
    assert records[-1]["status"] == "crashed" and records[-1]["exit_code"] == 1
    code, out, _ = summary([RUNS["crashed"]], capsys)
    assert code == 0 and out["runs"][0]["status"] == "crashed"


def test_a_diverged_run_raises_nan_inf(capsys: pytest.CaptureFixture[str]) -> None:
    records = read_run(RUNS["diverged"])
    losses = [r["train/loss"] for r in records if "train/loss" in r]
    assert math.isnan(losses[-1]) and any(math.isinf(v) for v in losses)  # bare NaN / Infinity tokens
    code, out, _ = summary([RUNS["diverged"]], capsys)
    assert code == 0 and out["runs"][0]["status"] == "finished"
    assert "nan_inf" in alert_kinds(out["runs"][0])


def test_a_log_spanning_blocks_reads_every_record() -> None:
    assert log_file("long").stat().st_size > 32 * 1024  # records cross the first block's end
    records = read_run(RUNS["long"])
    assert steps(records, "train/loss") == list(range(160))
    assert records[-1]["status"] == "finished"


def test_a_run_that_converged_to_a_constant_loss_raises_no_plateau(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The long run's loss falls, then repeats one value exactly: no noise, so its last-digit changes once
    read as "steady progress, then a sudden stop" (a warning whose numbers contradicted each other)."""
    code, out, _ = summary([RUNS["long"]], capsys)
    assert code == 0
    assert [a for a in out["runs"][0]["alerts"] if a["severity"] != "info"] == []


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_torn_at_any_byte_reads_as_whole(data: st.DataObject) -> None:
    name = data.draw(st.sampled_from(["long", "diverged"]))
    src = log_file(name)
    cuts = data.draw(st.lists(st.integers(0, src.stat().st_size), max_size=8))
    whole = read_run(RUNS[name])
    with tempfile.TemporaryDirectory() as tmp:
        grown, source = grow_and_read(src, Path(tmp) / "offline-run-x" / src.name, cuts)
        pending = source.pending_bytes
        source.close()
    # json.dumps writes NaN as NaN, so a diverged run's records (and its end's summary) compare equal.
    assert json.dumps(whole, sort_keys=True) == json.dumps(grown, sort_keys=True) and pending == 0


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_a_file_cut_at_any_byte_reads_as_a_clean_prefix(data: st.DataObject) -> None:
    src = log_file("long")
    whole = json.dumps(read_run(RUNS["long"]), sort_keys=True)
    cut = data.draw(st.integers(0, src.stat().st_size))
    with tempfile.TemporaryDirectory() as tmp:
        run = Path(tmp) / "offline-run-x"
        run.mkdir()
        (run / src.name).write_bytes(src.read_bytes()[:cut])
        source = RunSource(only_run(run))
        update = source.read_objects()
        source.close()
    assert update.error is None
    prefix = json.dumps(update.objects, sort_keys=True)
    assert whole.startswith(prefix.removesuffix("]")) and (cut < 1000 or update.objects)


def test_a_half_written_record_is_held_back(tmp_path: Path) -> None:
    src = log_file("healthy")
    data = src.read_bytes()
    run = tmp_path / "offline-run-x"
    run.mkdir()
    (run / src.name).write_bytes(data[: len(data) - 5])  # the exit record's last bytes not written yet
    source = RunSource(only_run(run))
    update = source.read_objects()
    assert update.error is None and source.pending_bytes > 0
    assert [r["event"] for r in update.objects][-1] != "end"  # type: ignore[index]
    with open(run / src.name, "ab") as fh:
        fh.write(data[len(data) - 5 :])
    assert [r["event"] for r in source.read_objects().objects] == ["end"]  # type: ignore[index]
    assert source.pending_bytes == 0
    source.close()


def _copy(name: str, tmp_path: Path) -> Path:
    return Path(shutil.copytree(RUNS[name], tmp_path / RUNS[name].name))


def test_a_damaged_record_is_skipped_and_named(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run = _copy("long", tmp_path)
    path = next(run.glob("*.wandb"))
    data = bytearray(path.read_bytes())
    data[len(data) // 3] ^= 0xFF
    path.write_bytes(bytes(data))
    code, out, err = summary([run], capsys)
    block = out["runs"][0]
    assert code == 1 and block["bad_lines"] == 1 and block["status"] == "finished"  # damage named: exit 1
    # LevelDB-style recovery: the damaged block's records are lost, every later one is read.
    assert 100 < block["metrics"]["train/loss"]["count"] < 160 and block["last_step"] == 159
    line = [e for e in err.splitlines() if path.name in e]
    assert len(line) == 1 and "damaged record at byte" in line[0]


@pytest.mark.parametrize(
    ("head", "message"),
    [
        (b":W&B\xe1\xbe\x01", "written by a newer wandb (log format version 1; termmon reads 0)"),
        (b"PK\x03\x04zip", "not a W&B run log (bad file header)"),
    ],
)
def test_a_newer_or_foreign_file_is_named_in_one_line(
    head: bytes, message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = _copy("healthy", tmp_path)
    path = next(run.glob("*.wandb"))
    path.write_bytes(head + path.read_bytes()[len(head) :])
    code, out, err = summary([run], capsys)
    assert code == 1 and out["runs"][0]["records"] == 0  # a problem named on stderr exits 1
    lines = [e for e in err.splitlines() if path.name in e]
    assert len(lines) == 1 and lines[0].endswith(f"{path}: {message}")


def test_discovery_finds_each_run_once_under_wandb_or_its_parent(tmp_path: Path) -> None:
    project = tmp_path / "project"
    wandb_dir = project / "wandb"
    shutil.copytree(WANDB, wandb_dir)
    newest = sorted(wandb_dir.iterdir())[-1]
    os.symlink(newest.name, wandb_dir / "latest-run")  # as wandb leaves it
    synced = wandb_dir / ("run-" + newest.name.removeprefix("offline-run-"))  # an online run's name
    shutil.copytree(newest, synced)
    expected = {p.name for p in wandb_dir.iterdir() if p.name != "latest-run"}
    for root in (wandb_dir, project, tmp_path):
        found = find_runs(root)
        assert sorted(r.dir.name for r in found) == sorted(expected), root
        assert {r.format for r in found} == {"wandb"}
    assert only_run(wandb_dir / "latest-run").format == "wandb"  # given directly, it is a run


def test_follow_sees_a_run_grow(tmp_path: Path) -> None:
    src = log_file("long")
    data = src.read_bytes()
    run = tmp_path / "offline-run-live"
    run.mkdir()
    dst = run / src.name
    dst.write_bytes(data[:100])

    def write_rest() -> None:
        with open(dst, "ab") as fh:
            for i in range(100, len(data), 3000):  # bursts, as wandb flushes
                fh.write(data[i : i + 3000])
                fh.flush()
                time.sleep(0.02)

    writer = threading.Thread(target=write_rest)
    stop = threading.Event()
    seen: list[int] = []
    events: list[str] = []
    deadline = time.monotonic() + 60
    writer.start()
    for records in termmon.follow(run, stop=stop, poll_interval=0.05):
        seen += steps(records, "train/loss")
        events += [r["event"] for r in records]
        if "end" in events or time.monotonic() > deadline:
            stop.set()
    writer.join()
    assert seen == list(range(160)) and events[-1] == "end"
