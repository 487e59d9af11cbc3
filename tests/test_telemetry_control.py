"""control.json written while a real loop trains changes the step spacing, per the protocol."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from telemetry_helpers import TinyTask, events, wait_until_exists

from termmon import Telemetry
from termmon.control import request_log_every

pytestmark = pytest.mark.torch
torch.set_num_threads(1)


def test_a_request_changes_the_spacing_at_the_next_step_and_is_clamped(tmp_path: Path) -> None:
    task = TinyTask()
    run = tmp_path / "ctl"
    with Telemetry(tmp_path, "ctl", log_every=5, control_poll_s=0.0) as tm:
        tm.watch(task.model, task.optimizer)
        for step in range(1, 81):
            tm.step(loss=task.train_step())
            task.zero_grad()
            if step == 12:
                wait_until_exists(run / "metrics.jsonl", timeout=10.0)
                request_log_every(run, 20)
            if step == 55:
                # termmon itself clamps before writing; another tool may not
                (run / "control.json").write_text(json.dumps({"log_every": 1, "seq": 99, "source": "script"}))
    changes = events(run, "control_change")
    assert [(c["step"], c["old"], c["new"], c["requested"], c["clamped"]) for c in changes] == [
        (13, 5, 20, 20, False),
        (56, 20, 5, 1, True),
    ]
    assert all(c["key"] == "log_every" for c in changes)
    steps = [r["step"] for r in events(run, "step")]
    assert steps == [5, 10, 30, 50, 57, 62, 67, 72, 77]  # spacing counts from the last log step


def test_a_file_that_does_not_parse_is_ignored_and_retried_on_its_next_change(tmp_path: Path) -> None:
    task = TinyTask()
    run = tmp_path / "bad"
    with Telemetry(tmp_path, "bad", log_every=5, control_poll_s=0.0) as tm:
        tm.watch(task.model, task.optimizer)
        for step in range(1, 41):
            tm.step(loss=task.train_step())
            task.zero_grad()
            if step == 3:
                (run / "control.json").write_text('{"log_every": 10, "seq"')  # torn write
            if step == 8:
                (run / "control.json").write_text(json.dumps({"log_every": 10, "seq": 1, "colour": "red"}))
            if step == 20:
                (run / "control.json").write_text(json.dumps({"log_every": 50, "seq": 1, "colour": "red"}))
    assert [(c["step"], c["new"]) for c in events(run, "control_change")] == [(9, 10)]  # seq 1 again: stale
    unknown = [a for a in events(run, "alert") if "colour" in a["message"]]
    assert len(unknown) == 1 and unknown[0]["severity"] == "info"


def test_a_request_already_in_the_file_at_start_is_not_applied(tmp_path: Path) -> None:
    run = tmp_path / "old"
    run.mkdir()
    (run / "control.json").write_text(json.dumps({"log_every": 100, "seq": 7}))
    task = TinyTask()
    with Telemetry(tmp_path, "old", log_every=5, control_poll_s=0.0) as tm:
        tm.watch(task.model, task.optimizer)
        for _ in range(10):
            tm.step(loss=task.train_step())
            task.zero_grad()
    assert [r["step"] for r in events(run, "step")] == [5, 10] and not events(run, "control_change")


def _ddp_worker(rank: int, world: int, log_dir: str, port: int, out: str) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=world)
    torch.set_num_threads(1)
    task = TinyTask()
    spacing = []
    with Telemetry(log_dir, "ddp", log_every=5, control_poll_s=0.0) as tm:
        tm.watch(task.model, task.optimizer)
        for step in range(1, 61):
            tm.step(loss=task.train_step())
            task.zero_grad()
            spacing.append(tm.log_every)
            if rank == 0 and step == 7:
                request_log_every(Path(log_dir, "ddp"), 20)
    Path(out, f"rank{rank}.json").write_text(json.dumps(spacing))
    dist.destroy_process_group()


@pytest.mark.slow
def test_under_ddp_rank_zero_decides_and_every_rank_switches_at_the_same_step(tmp_path: Path) -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    (tmp_path / "ddp").mkdir()
    (tmp_path / "ddp" / "metrics.jsonl").write_text("")  # let request_log_every see a run directory at once
    mp.spawn(_ddp_worker, args=(2, str(tmp_path), port, str(tmp_path)), nprocs=2, join=True)
    rank0 = json.loads((tmp_path / "rank0.json").read_text())
    rank1 = json.loads((tmp_path / "rank1.json").read_text())
    assert rank0 == rank1
    assert rank0.index(20) == 9  # requested at step 7, agreed at the log step 10 on both ranks
    assert [c["step"] for c in events(tmp_path / "ddp", "control_change")] == [10]
    assert [r["step"] for r in events(tmp_path / "ddp", "step")] == [5, 10, 30, 50]
