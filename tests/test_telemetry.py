"""Telemetry in real CPU training loops: the events, files and fields the monitor reads."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import pytest
import torch
from telemetry_helpers import TinyTask, events, records

from termmon import Telemetry
from termmon.format import PER_LAYER_STATS_COLUMNS

pytestmark = pytest.mark.torch
torch.set_num_threads(1)


def _train(tm: Telemetry, task: TinyTask, epochs: int = 2, steps: int = 20) -> None:
    tm.watch(task.model, task.optimizer, holdout=(task.x, task.y))
    for epoch in range(epochs):
        for _ in range(steps):
            loss = task.train_step()
            tm.step(loss=loss, batch_size=64, labels=task.y)
            task.zero_grad()
        tm.epoch(epoch, train={"loss": loss}, test={"loss": torch.tensor(0.5)})


def test_a_run_writes_every_event_and_file(tmp_path: Path) -> None:
    task = TinyTask()
    with Telemetry(
        tmp_path,
        "run",
        log_every=10,
        config={"lr": 0.01},
        track_weight_snapshots=True,
        weight_snapshot_every_n=20,
    ) as tm:
        _train(tm, task)
        tm.checkpoint(tmp_path / "model.pt")
        tm.alert("loss_plateau", "flat for a while", severity="info")
    run = tmp_path / "run"
    recs = records(run)
    assert recs[0]["event"] == "start" and recs[-1]["event"] == "end"
    assert all(isinstance(r["time"], float) for r in recs)

    start = recs[0]
    assert start["run_name"] == "run" and start["config"] == {"lr": 0.01} and start["log_every"] == 10
    assert start["total_params"] == sum(p.numel() for p in task.model.parameters())
    assert start["trainable_params"] == start["total_params"] and start["frozen_params"] == 0
    assert start["optimizer"]["class"] == "SGD" and start["optimizer"]["param_groups"][0]["lr"] == 0.01

    steps = events(run, "step")
    assert [r["step"] for r in steps] == [10, 20, 30, 40]
    first = steps[0]
    for name in ("train_loss", "lr", "grad_norm", "grad_max", "grad_min", "sec_per_step", "samples_per_sec"):
        assert isinstance(first[name], float), name
    assert first["nan_inf_detected"] is False
    assert first["cpu_mem_rss_mb"] > 10
    assert first["grad_num_params_with_grad"] == 4
    assert set(k for k in first if k.startswith("gradients/")) == {
        f"gradients/{n}/norm" for n, _ in task.model.named_parameters()
    }
    assert math.isclose(
        first["grad_norm"],
        math.sqrt(sum(first[f"gradients/{n}/norm"] ** 2 for n, _ in task.model.named_parameters())),
        rel_tol=1e-6,
    )
    assert first["param_updates/num_updated"] == 4 and first["param_updates/num_total"] == 4
    assert first["param_updates/no_update_warning"] is False
    assert {k for k in first if k.startswith("updates/")} == {
        f"updates/{n}/change" for n, _ in task.model.named_parameters()
    }
    label_pcts = [first[f"batch_stats/winner_{k}_pct"] for k in range(3)]
    assert math.isclose(sum(label_pcts), 100.0)
    assert "gpu_mem_allocated" not in first and "gpu_util" not in first  # no GPU here: absent, not zero

    epoch_recs = events(run, "epoch")
    assert [(r["epoch"], r["step"]) for r in epoch_recs] == [(0, 20), (1, 40)]
    assert epoch_recs[0]["test/loss"] == 0.5 and isinstance(epoch_recs[0]["train/loss"], float)
    assert 0.0 <= epoch_recs[0]["holdout/accuracy"] <= 1.0
    assert events(run, "checkpoint")[0]["checkpoint_path"] == str(tmp_path / "model.pt")
    alert = events(run, "alert")[0]
    assert (alert["kind"], alert["severity"], alert["message"]) == (
        "loss_plateau",
        "info",
        "flat for a while",
    )
    assert events(run, "end")[0]["status"] == "finished" and events(run, "end")[0]["error"] is None

    with open(run / "metrics.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert [r["event"] for r in rows] == ["step", "step", "epoch", "step", "step", "epoch"]
    assert {"train_loss", "grad_norm", "train/loss", "test/loss"} <= set(rows[0])
    assert rows[2]["test/loss"] == "0.5" and rows[0]["test/loss"] == ""

    results = json.loads((run / "results.json").read_text())
    assert results["run_name"] == "run" and results["config"] == {"lr": 0.01}
    assert [h["epoch"] for h in results["training_history"]] == [0, 1]
    assert set(results["training_history"][0]) >= {"epoch", "train", "test"}

    with open(run / "telemetry" / "per_layer_stats.csv", newline="") as fh:
        layer_rows = list(csv.reader(fh))
    assert tuple(layer_rows[0]) == PER_LAYER_STATS_COLUMNS
    weight = task.model[0].weight.detach()
    last_weight_row = [r for r in layer_rows[1:] if r[2] == "0.weight"][-1]
    assert math.isclose(float(last_weight_row[4]), float(weight.std()), rel_tol=1e-4)
    assert int(last_weight_row[8]) == weight.numel()

    snaps = sorted(p.name for p in (run / "telemetry" / "weight_snapshots").iterdir())
    assert snaps == ["weights_epoch0_batch20.pt", "weights_epoch1_batch40.pt"]
    snap = torch.load(run / "telemetry" / "weight_snapshots" / snaps[-1])
    assert snap["batch_idx"] == 40 and snap["epoch"] == 1
    assert torch.equal(snap["model_state_dict"]["0.weight"], weight)


def test_an_exception_in_the_block_is_recorded_and_re_raised(tmp_path: Path) -> None:
    task = TinyTask()
    with (
        pytest.raises(RuntimeError, match="data loader died"),
        Telemetry(tmp_path, "crash", log_every=5) as tm,
    ):
        tm.watch(task.model, task.optimizer)
        for step in range(12):
            tm.step(loss=task.train_step())
            task.zero_grad()
            if step == 7:
                raise RuntimeError("data loader died")
    end = events(tmp_path / "crash", "end")
    assert len(end) == 1 and end[0]["status"] == "crashed" and "data loader died" in end[0]["error"]
    assert end[0]["step"] == 8


def test_a_diverging_run_flags_nan_once_and_writes_nan_tokens(tmp_path: Path) -> None:
    task = TinyTask(lr=1e6)
    with Telemetry(tmp_path, "nan", log_every=5) as tm:
        tm.watch(task.model, task.optimizer)
        for _ in range(40):
            tm.step(loss=task.train_step())
            task.zero_grad()
    steps = events(tmp_path / "nan", "step")
    assert steps[-1]["nan_inf_detected"] is True and math.isnan(steps[-1]["train_loss"])
    nan_alerts = [a for a in events(tmp_path / "nan", "alert") if a["kind"] == "nan_inf"]
    assert len(nan_alerts) == 1 and nan_alerts[0]["severity"] == "critical"
    assert "NaN" in (tmp_path / "nan" / "metrics.jsonl").read_text()


def test_no_parameter_update_is_reported(tmp_path: Path) -> None:
    task = TinyTask(lr=0.0)
    with Telemetry(tmp_path, "frozen", log_every=5) as tm:
        tm.watch(task.model, task.optimizer)
        for _ in range(20):
            tm.step(loss=task.train_step())
            task.zero_grad()
    step = events(tmp_path / "frozen", "step")[0]
    assert step["param_updates/num_updated"] == 0 and step["param_updates/no_update_warning"] is True
    assert [a["kind"] for a in events(tmp_path / "frozen", "alert")] == ["no_param_updates"]


def test_unserialisable_metrics_do_not_stop_training(tmp_path: Path) -> None:
    task = TinyTask()
    cyclic: dict[str, object] = {}
    cyclic["self"] = [cyclic]
    with Telemetry(tmp_path, "odd", log_every=5) as tm:
        tm.watch(task.model, task.optimizer)
        for step in range(20):
            loss = task.train_step()
            extra = {"thing": object(), "cplx": torch.tensor(1 + 2j)} if step == 4 else {}
            if step == 9:
                extra = {"loop": cyclic}
            tm.step(loss=loss, **extra)
            task.zero_grad()
    run = tmp_path / "odd"
    steps = events(run, "step")
    assert [r["step"] for r in steps] == [
        5,
        10,
        15,
        20,
    ]  # the cyclic record keeps its loss, the cycle is text
    assert steps[0]["thing"].startswith("<object object") and steps[0]["cplx"] == repr(1 + 2j)
    assert "<cycle>" in json.dumps(steps[1]["loop/self"]) and math.isfinite(steps[1]["train_loss"])
    reported = [a for a in events(run, "alert") if a["kind"] == "telemetry"]
    assert len(reported) == 1 and reported[0]["step"] == 10 and "Circular reference" in reported[0]["message"]
    end = events(run, "end")[0]
    assert end["status"] == "finished" and end["write_errors"] == {"metrics.jsonl:encode": 1}


def test_a_failing_feature_is_switched_off_with_one_alert(tmp_path: Path) -> None:
    task = TinyTask()
    bad_labels = torch.full((64,), -1)  # bincount refuses negative labels
    with Telemetry(tmp_path, "feat", log_every=5) as tm:
        tm.watch(task.model, task.optimizer)
        for _ in range(20):
            tm.step(loss=task.train_step(), labels=bad_labels)
            task.zero_grad()
    run = tmp_path / "feat"
    alerts = events(run, "alert")
    assert len(alerts) == 1 and "batch_stats failed" in alerts[0]["message"]
    steps = events(run, "step")
    assert [r["step"] for r in steps] == [5, 10, 15, 20]
    assert all("batch_stats/winner_0_pct" not in r for r in steps)


def test_an_unwritable_log_dir_warns_once_and_training_goes_on(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    blocker = tmp_path / "not_a_dir"
    blocker.write_text("")
    task = TinyTask()
    with Telemetry(blocker, "run", log_every=5) as tm:
        tm.watch(task.model, task.optimizer)
        for epoch in range(2):
            for _ in range(10):
                tm.step(loss=task.train_step())
                task.zero_grad()
            tm.epoch(epoch, train={"loss": 1.0})
    err = capsys.readouterr().err
    assert err.count("termmon:") == 1 and "telemetry is off" in err
    assert tm.global_step == 0  # disabled before any work: the no-op path


def test_losing_the_run_directory_mid_run_warns_once(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import shutil

    task = TinyTask()
    with Telemetry(tmp_path, "gone", log_every=5) as tm:
        tm.watch(task.model, task.optimizer)
        for epoch in range(3):
            for _ in range(10):
                tm.step(loss=task.train_step())
                task.zero_grad()
            tm.epoch(epoch, train={"loss": 1.0})
            if epoch == 0:
                # The writer thread may still be writing queued records while rmtree runs ("directory
                # not empty"); once the directory is gone nothing recreates it, so this ends.
                while (tmp_path / "gone").exists():
                    shutil.rmtree(tmp_path / "gone", ignore_errors=True)
    err = capsys.readouterr().err
    assert err.count("telemetry writing is off") == 1
    # A file the writer was appending to as rmtree took it may get its own line first: one per output.
    assert err.count("termmon:") <= 4
    assert not (tmp_path / "gone").exists()  # nothing recreated the directory


def test_disabled_telemetry_is_a_no_op_with_the_same_api(tmp_path: Path) -> None:
    task = TinyTask()
    with Telemetry(tmp_path, "off", enabled=False) as tm:
        _train(tm, task, epochs=1, steps=5)
        tm.checkpoint("x")
        tm.alert("info", "nothing")
    assert not (tmp_path / "off").exists()


def test_extra_metrics_are_held_until_the_next_log_step(tmp_path: Path) -> None:
    task = TinyTask()
    with Telemetry(tmp_path, "extra", log_every=5) as tm:
        tm.watch(task.model, task.optimizer)
        for step in range(10):
            loss = task.train_step()
            tm.step(loss=loss, **({"collapse/most_common_ratio": torch.tensor(0.25)} if step == 2 else {}))
            task.zero_grad()
    steps = events(tmp_path / "extra", "step")
    assert steps[0]["collapse/most_common_ratio"] == 0.25 and "collapse/most_common_ratio" not in steps[1]
