"""Run directories as sources: results.json rewrites, seed formats, discovery, change notification."""

from __future__ import annotations

import json
import os
import threading
import time
from pathlib import Path

import pytest

from termmon.errors import UsageError
from termmon.ingest.discovery import find_runs, resolve_paths
from termmon.ingest.source import RunSource
from termmon.ingest.watch import ChangeWatcher
from termmon.ingest.whole_file import WholeFileReader
from termmon.model.workspace import Workspace


def history(epochs: int) -> dict[str, object]:
    return {
        "run_name": "blob",
        "config": {"lr": 0.01},
        "training_history": [
            {
                "epoch": e,
                "train": {"loss": 10.0 - e},
                "test": {"loss": 11.0 - e},
                "diagnostics": {
                    "silhouette_score": None if e < 2 else 0.6,
                    "n_clusters_dbscan": 1 + (e >= 2) * 2,
                },
            }
            for e in range(1, epochs + 1)
        ],
    }


def test_results_json_written_non_atomically_never_shows_half_a_file(tmp_path: Path) -> None:
    path = tmp_path / "results.json"
    path.write_text(json.dumps(history(1)))
    reader = WholeFileReader(path)
    assert reader.read().changed
    stop = threading.Event()
    lengths_written = set()

    def writer() -> None:
        n = 1
        while not stop.is_set():
            n = n % 40 + 1
            text = json.dumps(history(n), indent=1)
            lengths_written.add(n)
            with open(path, "w") as fh:  # truncate, then write in pieces: the torn-read window
                for i in range(0, len(text), 700):
                    fh.write(text[i : i + 700])
                    fh.flush()

    thread = threading.Thread(target=writer)
    thread.start()
    seen = []
    stale = 0
    deadline = time.monotonic() + 1.5
    while time.monotonic() < deadline:
        read = reader.read()
        stale += read.stale
        if read.changed:
            seen.append(len(read.value["training_history"]))
        assert reader.value is not None and "training_history" in reader.value
    stop.set()
    thread.join()
    assert seen, "the reader never caught a complete file"
    assert set(seen) <= lengths_written | {1}
    assert stale > 0, "expected to catch the writer mid-write at least once"


def test_seed001_results_json_maps_to_epoch_series(tmp_path: Path) -> None:
    (tmp_path / "results.json").write_text(json.dumps(history(4)))
    source = RunSource(tmp_path)
    update = source.read()
    assert source.format is not None and source.format.name == "results" and update.reset
    batch = update.batch
    _, values = batch.metrics["diagnostics/silhouette_score"]
    assert list(values) == [0.6, 0.6, 0.6]  # null (fewer than two clusters) is no point, not NaN
    assert list(batch.metrics["train/loss"][1]) == [9.0, 8.0, 7.0, 6.0]
    assert list(batch.metrics["diagnostics/n_clusters_dbscan"][1]) == [1, 3, 3, 3]
    assert source.read().batch.metrics == {}  # unchanged file: nothing new


def test_seed004_debug_log_maps_to_standard_names(tmp_path: Path) -> None:
    lines = [
        {
            "event_type": "fit_start",
            "step": 0,
            "data": {"trainable_params": 10, "total_params": 12, "epochs": 2},
        },
        {
            "event_type": "data_sanity_check",
            "step": 0,
            "data": {"label_min": 0, "label_max": 1030, "n_codes": 1024, "labels_in_range": False},
        },
        {
            "event_type": "epoch_start",
            "step": 0,
            "data": {"lr": 2e-5, "betas": [0.9, 0.99], "weight_decay": 0.01},
        },
        {
            "event_type": "training_step",
            "step": 10,
            "time": 5.0,
            "data": {"loss": 6.8, "accuracy": 0.02, "learning_rate": 2e-5},
        },
        {
            "event_type": "gradient_stats",
            "step": 10,
            "data": {
                "total_norm": 3.5,
                "max_grad": 0.2,
                "min_grad": 0.0,
                "num_params_with_grad": 8,
                "top_modules": [["enc.fc", 2.0], ["dec.fc", 1.0]],
            },
        },
        {
            "event_type": "param_updates",
            "step": 50,
            "data": {
                "num_updated": 0,
                "num_total": 8,
                "top_changed": {"enc.fc.weight": 0.0},
                "no_update_warning": True,
            },
        },
        {"event_type": "epoch_start", "step": 60, "data": {"lr": 2e-4}},
        {
            "event_type": "training_step",
            "step": 70,
            "data": {"loss": 6.2, "accuracy": 0.04, "learning_rate": 2e-4},
        },
    ]
    (tmp_path / "debug_log_1700000000.jsonl").write_text("".join(json.dumps(x) + "\n" for x in lines))
    workspace = Workspace([str(tmp_path)])
    workspace.refresh()
    run = next(iter(workspace.runs.values()))
    assert run.start is not None and run.start["config"]["epochs"] == 2
    loss = run.series("train_loss")
    assert loss is not None and list(loss.value) == [6.8, 6.2] and list(loss.epoch) == [0, 1]
    assert list(run.series("grad_norm").value) == [3.5]  # type: ignore[union-attr]
    assert list(run.series("gradients/enc.fc/norm").value) == [2.0]  # type: ignore[union-attr]
    assert list(run.series("param_updates/no_update_warning").value) == [1.0]  # type: ignore[union-attr]
    assert list(run.series("data_sanity_check/labels_in_range").value) == [0.0]  # type: ignore[union-attr]
    assert list(run.series("lr").value) == [2e-5, 2e-5, 2e-4, 2e-4]  # type: ignore[union-attr]
    assert run.status(time.time() + 10**6) == "unknown"  # seed logs carry no end marker: never "stalled"


def test_metrics_jsonl_wins_over_its_results_json_mirror(tmp_path: Path) -> None:
    (tmp_path / "results.json").write_text(json.dumps(history(3)))
    source = RunSource(tmp_path)
    source.read()
    (tmp_path / "metrics.jsonl").write_text(
        json.dumps({"event": "step", "step": 1, "train_loss": 1.0}) + "\n"
    )
    update = source.read()
    assert source.format is not None and source.format.name == "termmon" and update.reset
    assert set(update.batch.metrics) == {"train_loss"}


def test_discovery_finds_a_thousand_runs_and_new_ones(tmp_path: Path) -> None:
    for i in range(1000):
        run = tmp_path / f"sweep{i // 100}" / f"run{i:04d}"
        run.mkdir(parents=True)
        (run / "metrics.jsonl").write_text(json.dumps({"event": "step", "step": i, "train_loss": 1.0}) + "\n")
    (tmp_path / "sweep0" / "run0000" / "telemetry").mkdir()
    assert len(find_runs(tmp_path)) == 1000
    workspace = Workspace([str(tmp_path)])
    workspace.refresh()
    assert len(workspace.runs) == 1000
    assert sum(r.records for r in workspace.runs.values()) == 1000
    late = tmp_path / "sweep9" / "late"
    late.mkdir()
    (late / "metrics.jsonl").write_text("{}\n")
    assert workspace.rescan() == [late.resolve()]
    workspace.close()


def test_paths_globs_and_missing_paths(tmp_path: Path) -> None:
    for name in ("exp_a", "exp_b", "other"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "metrics.jsonl").touch()
    roots = resolve_paths([str(tmp_path / "exp_*")])
    assert [r.name for r in roots] == ["exp_a", "exp_b"]
    assert resolve_paths([str(tmp_path / "other" / "metrics.jsonl")]) == [(tmp_path / "other").resolve()]
    with pytest.raises(UsageError, match="no such file or directory"):
        resolve_paths([str(tmp_path / "nope")])
    with pytest.raises(UsageError, match="no file or directory matches"):
        resolve_paths([str(tmp_path / "zzz_*")])


@pytest.mark.parametrize("poll", [None, 0.2], ids=["watchdog", "polling"])
def test_an_appended_line_is_noticed(tmp_path: Path, poll: float | None) -> None:
    path = tmp_path / "metrics.jsonl"
    path.write_text(json.dumps({"event": "step", "step": 0}) + "\n")
    workspace = Workspace([str(tmp_path)])
    workspace.refresh()
    woke = threading.Event()
    watcher = ChangeWatcher(workspace.roots, woke.set, poll_interval=poll)
    watcher.start()
    try:
        assert watcher.mode == ("events" if poll is None else "polling")
        time.sleep(0.3)
        woke.clear()
        started = time.monotonic()
        with open(path, "a") as fh:
            fh.write(json.dumps({"event": "step", "step": 1, "train_loss": 0.5}) + "\n")
        assert woke.wait(3.0)
        latency = time.monotonic() - started
        workspace.refresh()
        run = workspace.runs[tmp_path.resolve()]
        assert run.last_step == 1
        if poll is None:
            assert latency < 1.0, (
                f"an event should wake the reader well before the backstop poll ({latency:.2f}s)"
            )
    finally:
        watcher.stop()
        workspace.close()


def test_unreadable_run_reports_an_error_and_recovers(tmp_path: Path) -> None:
    if os.geteuid() == 0:
        pytest.skip("root reads files whatever their mode")
    path = tmp_path / "metrics.jsonl"
    path.write_text(json.dumps({"event": "step", "step": 0}) + "\n")
    path.chmod(0)
    source = RunSource(tmp_path)
    assert source.read().error
    path.chmod(0o644)
    assert len(source.read().batch) == 1
