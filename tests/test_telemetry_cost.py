"""What the logger skips to stay cheap on a small model, and that skipping it loses nothing.

Each shortcut (batched writes, orjson for plain records, memory sampled by time, control.json checked
by time, no batch-size hook when ``step`` is told the size) is proved here through the files a run
writes, so a shortcut that dropped, reordered or mis-encoded a record fails a test.
"""

from __future__ import annotations

import csv
import json
import math
import time
from pathlib import Path

import pytest
import torch
from telemetry_helpers import TinyTask, events, records, wait_until_exists

from termmon import Telemetry
from termmon.control import request_log_every
from termmon.telemetry import writer
from termmon.telemetry.logger import LOSS_WINDOW, SYSTEM_SAMPLE_S

pytestmark = pytest.mark.torch
torch.set_num_threads(1)


def test_every_record_of_a_fast_loop_reaches_both_files_in_order(tmp_path: Path) -> None:
    run = tmp_path / "fast"
    task = TinyTask()
    with Telemetry(tmp_path, "fast", log_every=1, track_system=False) as tm:
        tm.watch(task.model, task.optimizer)
        for step in range(1, 401):
            tm.step(loss=task.train_step(), extra={"phase": "warm" if step < 200 else "main"})
            task.zero_grad()
            if step == 250:
                tm.alert("custom", "midway", severity="info")
    steps = events(run, "step")
    assert [r["step"] for r in steps] == list(range(1, 401))
    assert [r["extra/phase"] for r in steps[198:201]] == ["warm", "main", "main"]
    kinds = [r["event"] for r in records(run)]
    assert kinds[0] == "start" and kinds[-1] == "end"
    alert_at = kinds.index("alert")
    assert kinds[alert_at - 1 : alert_at + 2] == ["step", "alert", "step"]  # the alert kept its place
    with open(run / "metrics.csv", newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    assert [int(r["step"]) for r in rows] == list(range(1, 401))
    assert float(rows[-1]["train_loss"]) == steps[-1]["train_loss"]  # same value in both files
    assert rows[0]["extra/phase"] == "warm" and rows[-1]["extra/phase"] == "main"


def test_records_orjson_cannot_write_exactly_are_written_as_before(tmp_path: Path) -> None:
    run = tmp_path / "odd"
    with Telemetry(tmp_path, "odd", log_every=1, track_system=False) as tm:
        tm.step(loss=1.0, note="µ-batch ✓")  # non-ASCII text
        tm.step(loss=float("inf"), big=2**70)  # a non-finite float, an int beyond 64 bits
        tm.step(loss=2.0, shape=[3, 4])  # a list value
        tm.step(loss=0.1 + 0.2)
    text = (run / "metrics.jsonl").read_text(encoding="ascii")  # every line still ASCII only
    assert "Infinity" in text and str(2**70) in text
    steps = events(run, "step")
    assert steps[0]["note"] == "µ-batch ✓"
    assert math.isinf(steps[1]["train_loss"]) and steps[1]["big"] == 2**70
    assert steps[2]["shape"] == [3, 4]
    assert steps[3]["train_loss"] == 0.1 + 0.2  # orjson's float text reads back to the same float
    for line in text.splitlines():
        json.loads(line)


def test_memory_is_sampled_by_time_and_carried_by_every_log_step(tmp_path: Path) -> None:
    run = tmp_path / "mem"
    task = TinyTask()
    ballast = []
    with Telemetry(tmp_path, "mem", log_every=1) as tm:
        tm.watch(task.model, task.optimizer)
        for _ in range(60):
            ballast.append(b"x" * (1 << 20))  # resident memory grows by 1 MiB a step
            tm.step(loss=task.train_step())
            task.zero_grad()
    steps = events(run, "step")
    assert all(r["cpu_mem_rss_mb"] > 10 for r in steps)  # present on every log step
    elapsed = steps[-1]["time"] - steps[0]["time"]
    samples = len({r["cpu_mem_rss_mb"] for r in steps})
    assert samples <= 1 + elapsed / SYSTEM_SAMPLE_S + 1  # not one fresh reading per log step


def test_control_json_is_not_looked_at_before_the_poll_interval_has_passed(tmp_path: Path) -> None:
    run = tmp_path / "slow"
    task = TinyTask()
    with Telemetry(tmp_path, "slow", log_every=5, control_poll_s=3600.0) as tm:
        tm.watch(task.model, task.optimizer)
        for step in range(1, 41):
            tm.step(loss=task.train_step())
            task.zero_grad()
            if step == 3:
                wait_until_exists(run / "metrics.jsonl")  # what makes it a run directory
                request_log_every(run, 20)
    assert not events(run, "control_change")
    assert [r["step"] for r in events(run, "step")] == list(range(5, 41, 5))


def test_the_batch_size_hook_is_there_only_while_step_is_not_given_one(tmp_path: Path) -> None:
    run = tmp_path / "rows"
    task = TinyTask()
    with Telemetry(tmp_path, "rows", log_every=5, track_system=False) as tm:
        tm.watch(task.model, task.optimizer)
        assert len(task.model._forward_pre_hooks) == 1
        for _ in range(5):
            tm.step(loss=task.train_step(), batch_size=64)
            task.zero_grad()
        assert not task.model._forward_pre_hooks  # the caller says the size: no hook on its forward
        tm.step(loss=task.train_step())  # a step without a size brings the hook back for the next
        task.zero_grad()
        assert len(task.model._forward_pre_hooks) == 1
        for _ in range(9):
            tm.step(loss=task.train_step())
            task.zero_grad()
    assert not task.model._forward_pre_hooks  # close removes it
    _, second, third = events(run, "step")
    # samples per step: in steps 6-10 the size of step 6 was not known (the hook was off), steps 7-10's
    # came from the input; in steps 11-15 every size came from the input
    per_step = [r["samples_per_sec"] * r["sec_per_step"] for r in (second, third)]
    assert per_step == [pytest.approx(64 * 4 / 5), pytest.approx(64)]


def test_the_optimizer_post_hook_is_there_only_for_a_step_that_is_logged(tmp_path: Path) -> None:
    run = tmp_path / "post"
    task = TinyTask()
    post_hooks = task.optimizer._optimizer_step_post_hooks
    seen: list[int] = []  # post-hooks present in each optimizer step, this test's own included
    with Telemetry(tmp_path, "post", log_every=5, track_system=False) as tm:
        tm.watch(task.model, task.optimizer)
        task.optimizer.register_step_post_hook(lambda *_: seen.append(len(post_hooks)))
        for _ in range(15):
            tm.step(loss=task.train_step())
            task.zero_grad()
            assert len(post_hooks) == 1  # each log step took termmon's away
    assert seen == ([1] * 4 + [2]) * 3  # termmon's only in the optimizer step of a logged step
    steps = events(run, "step")
    assert [r["step"] for r in steps] == [5, 10, 15]
    # each log step still compared the parameters across its own optimizer step
    assert all(r["param_updates/num_updated"] == r["param_updates/num_total"] == 4 for r in steps)
    assert all(r["updates/0.weight/change"] > 0 for r in steps)


def test_every_loss_of_a_long_window_is_checked_and_the_last_is_train_loss(tmp_path: Path) -> None:
    run = tmp_path / "window"
    task = TinyTask()
    log_every = 3 * LOSS_WINDOW + 1  # the window's losses are summed on the way, more than once
    losses = []
    with Telemetry(tmp_path, "window", log_every=log_every, track_system=False) as tm:
        tm.watch(task.model, task.optimizer)
        for step in range(1, 2 * log_every + 1):
            loss = task.train_step()
            if step == 2:
                loss = loss * math.inf  # one bad batch early in the first window, none in the second
            losses.append(float(loss.detach()))
            tm.step(loss=loss)
            task.zero_grad()
    first, second = events(run, "step")
    assert first["nan_inf_detected"] is True and first["train_loss"] == losses[log_every - 1]
    assert second["nan_inf_detected"] is False and second["train_loss"] == losses[-1]


def _lines_now(run: Path) -> list[dict[str, object]]:
    path = run / "metrics.jsonl"
    return records(run) if path.exists() else []


def test_a_step_record_built_on_the_writer_thread_brings_its_alert_at_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The record of a log step and its alerts are built by the writer thread; a step that may raise an
    alert is not left waiting for a fuller batch (here the batch wait is an hour)."""
    monkeypatch.setattr(writer, "WRITE_EVERY_S", 3600.0)
    run = tmp_path / "late"
    task = TinyTask()
    with Telemetry(tmp_path, "late", log_every=5, track_system=False) as tm:
        tm.watch(task.model, task.optimizer)
        for _ in range(4):
            tm.step(loss=task.train_step())
            task.zero_grad()
        task.train_step()
        tm.step(loss=torch.tensor(math.nan))  # step 5, a log step with a NaN loss
        task.zero_grad()
        deadline = time.monotonic() + 60
        while not any(r["event"] == "alert" for r in _lines_now(run)):
            assert time.monotonic() < deadline, "the nan_inf alert waited for the batch"
            time.sleep(0.01)
        kinds = [r["event"] for r in records(run)]
        assert kinds[-2:] == ["step", "alert"]  # the alert right after its own step record
    step, alert = events(run, "step")[0], events(run, "alert")[0]
    assert step["step"] == alert["step"] == 5 and step["nan_inf_detected"] is True
    assert alert["kind"] == "nan_inf" and alert["metric"] == "train_loss" and alert["time"] == step["time"]
    assert list(step)[:4] == ["event", "time", "step", "epoch"] and list(step)[-1] == "nan_inf_detected"


def test_per_layer_rows_between_step_records_keep_every_file_complete_and_in_order(tmp_path: Path) -> None:
    """A batch's records go in one append and its per-layer rows in another: nothing lost or reordered."""
    run = tmp_path / "layers"
    task = TinyTask()
    with Telemetry(tmp_path, "layers", log_every=1, per_layer_stats_every_logs=2, track_system=False) as tm:
        tm.watch(task.model, task.optimizer)
        for _ in range(40):
            tm.step(loss=task.train_step())
            task.zero_grad()
    assert [r["step"] for r in events(run, "step")] == list(range(1, 41))
    with open(run / "metrics.csv", newline="", encoding="utf-8") as fh:
        assert [int(r["step"]) for r in csv.DictReader(fh)] == list(range(1, 41))
    with open(run / "telemetry" / "per_layer_stats.csv", newline="", encoding="utf-8") as fh:
        layer_steps = [int(r["batch_idx"]) for r in csv.DictReader(fh)]
    tensors = len(list(task.model.parameters()))
    assert layer_steps == [s for s in range(1, 41, 2) for _ in range(tensors)]
    assert records(run)[-1]["event"] == "end"
