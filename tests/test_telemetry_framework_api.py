"""The pieces of ``Telemetry`` that framework integrations drive: their cadence, their optimizer hooks, and
records off the step cadence. Real training steps of a tiny model."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from termmon.telemetry import Telemetry
from tests.telemetry_helpers import TinyTask, events

pytestmark = pytest.mark.torch


@pytest.mark.parametrize(
    ("on_multiples", "logged"),
    [(True, [10, 15]), (False, [8, 13, 18])],  # a framework's rule; the plain loop's "every N since the last"
)
def test_log_on_multiples_logs_on_the_frameworks_steps_after_a_resume(
    tmp_path: Path, on_multiples: bool, logged: list[int]
) -> None:
    task = TinyTask()
    with Telemetry(tmp_path, "r", log_every=5, log_on_multiples=on_multiples) as tm:
        tm.watch(task.model, task.optimizer)
        tm.global_step = 7  # resumed from a checkpoint at step 7
        for _ in range(11):
            tm.step(loss=task.train_step())
            task.zero_grad()
    assert [r["step"] for r in events(tmp_path / "r", "step")] == logged


def test_a_caller_reported_optimizer_step_gives_the_same_signals_as_the_hooks(tmp_path: Path) -> None:
    task = TinyTask()
    with Telemetry(tmp_path, "r", log_every=5) as tm:
        tm.watch(task.model, task.optimizer, optimizer_hooks=False)
        assert not task.optimizer._optimizer_step_pre_hooks  # nothing registered on the optimizer
        for _ in range(5):
            loss = torch_loss(task)
            loss.backward()
            tm.before_optimizer_step()
            task.optimizer.step()
            tm.after_optimizer_step()
            tm.step(loss=loss)
            task.zero_grad()
    [record] = events(tmp_path / "r", "step")
    assert record["grad_norm"] > 0
    assert record["param_updates/num_updated"] == record["param_updates/num_total"] == 4
    assert "gradients/0.weight/norm" in record


def torch_loss(task: TinyTask) -> torch.Tensor:
    return torch.nn.functional.cross_entropy(task.model(task.x), task.y)


def test_record_writes_off_cadence_metrics_at_the_current_step_without_counting_one(tmp_path: Path) -> None:
    task = TinyTask()
    with Telemetry(tmp_path, "r", log_every=5) as tm:
        tm.watch(task.model, task.optimizer)
        for _ in range(3):
            tm.step(loss=task.train_step())
            task.zero_grad()
        tm.record({"eval_loss": 0.5, "eval": {"acc": 0.9}})
        assert tm.global_step == 3
    [record] = events(tmp_path / "r", "step")
    assert record["step"] == 3
    assert record["eval_loss"] == 0.5 and record["eval/acc"] == 0.9
    assert "train_loss" not in record
