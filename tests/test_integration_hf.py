"""``TermmonCallback`` under a real ``transformers.Trainer``: a tiny GPT-2 built from a config, on CPU."""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("transformers")

import torch
from transformers import GPT2Config, GPT2LMHeadModel, Trainer, TrainerCallback, TrainingArguments

import termmon
from termmon.control import request_log_every
from termmon.integrations.hf import TermmonCallback
from tests.integration_helpers import step_records, summary
from tests.telemetry_helpers import events, records

pytestmark = [pytest.mark.torch, pytest.mark.slow]

TEXT = "the quick brown fox jumps over the lazy dog. " * 40
VOCAB = sorted(set(TEXT))
SEQ = 16


class CharWindows(torch.utils.data.Dataset[dict[str, torch.Tensor]]):
    """Next-character prediction on fixed windows of a synthetic text (a char-level vocabulary)."""

    def __init__(self, n: int, offset: int = 0) -> None:
        ids = torch.tensor([VOCAB.index(c) for c in TEXT])
        starts = [(offset + 7 * i) % (len(ids) - SEQ) for i in range(n)]
        self.windows = torch.stack([ids[s : s + SEQ] for s in starts])

    def __len__(self) -> int:
        return len(self.windows)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        return {"input_ids": self.windows[i], "labels": self.windows[i]}


def tiny_gpt2() -> GPT2LMHeadModel:
    torch.manual_seed(0)
    config = GPT2Config(
        vocab_size=len(VOCAB), n_positions=SEQ, n_embd=32, n_layer=2, n_head=2, bos_token_id=0, eos_token_id=0
    )
    return GPT2LMHeadModel(config)


def arguments(out: Path, **overrides: Any) -> TrainingArguments:
    options: dict[str, Any] = {
        "output_dir": str(out),
        "run_name": "tiny",
        "max_steps": 20,
        "per_device_train_batch_size": 8,
        "logging_steps": 5,
        "save_strategy": "no",
        "report_to": "none",
        "use_cpu": True,
        "disable_tqdm": True,
        "dataloader_num_workers": 0,
    }
    options.update(overrides)
    return TrainingArguments(**options)


def test_a_trainer_run_is_a_termmon_run_with_metrics_by_role(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = arguments(
        tmp_path,
        gradient_accumulation_steps=2,
        eval_strategy="steps",
        eval_steps=10,
        save_strategy="steps",
        save_steps=10,
        learning_rate=1e-3,
    )
    trainer = Trainer(
        model=tiny_gpt2(),
        args=args,
        train_dataset=CharWindows(64),
        eval_dataset=CharWindows(16, offset=3),
        callbacks=[TermmonCallback()],
    )
    trainer.train()

    run_dir = tmp_path / "tiny"  # default: inside output_dir, named after args.run_name
    recs = records(run_dir)
    start = recs[0]
    assert start["event"] == "start" and start["model"] == "GPT2LMHeadModel"
    assert start["config"]["gradient_accumulation_steps"] == 2  # the Trainer's arguments are the config
    assert start["config"]["logging_steps"] == 5
    assert start["config"]["hub_token"] in (None, "<HUB_TOKEN>")  # HF masks tokens in to_dict()

    # One step per optimizer step (20, not the 40 micro-batches), logged at HF's own logging steps...
    logged = step_records(recs)
    assert [r["step"] for r in logged] == [5, 10, 15, 20]
    # ...with HF's own numbers under termmon's names.
    hf_logs = [h for h in trainer.state.log_history if "loss" in h]
    assert [h["step"] for h in hf_logs] == [5, 10, 15, 20]
    for ours, theirs in zip(logged, hf_logs, strict=True):
        assert ours["train_loss"] == pytest.approx(theirs["loss"])
        assert ours["lr"] == pytest.approx(theirs["learning_rate"])
        assert ours["grad_norm"] == pytest.approx(theirs["grad_norm"])  # the pre-clip norm HF measured
        assert ours["samples_per_sec"] > 0
        assert ours["nan_inf_detected"] is False
        assert any(k.startswith("gradients/transformer.h.0.") for k in ours)
        assert ours["param_updates/num_updated"] == ours["param_updates/num_total"] > 0

    evals = [r for r in recs if r["event"] == "step" and "eval_loss" in r]
    assert [r["step"] for r in evals] == [10, 20]
    assert [r["eval_loss"] for r in evals] == pytest.approx(
        [h["eval_loss"] for h in trainer.state.log_history if "eval_loss" in h]
    )
    checkpoints = events(run_dir, "checkpoint")
    assert [c["step"] for c in checkpoints] == [10, 20]
    assert all(Path(c["checkpoint_path"]).is_dir() for c in checkpoints)
    epochs = {e["step"]: e for e in events(run_dir, "epoch")}  # 4 optimizer steps an epoch
    assert sorted(epochs) == [4, 8, 12, 16, 20]
    assert "train/loss" not in epochs[4]  # no log step in the first epoch
    assert epochs[8]["train/loss"] == pytest.approx(hf_logs[0]["loss"])  # the mean of the epoch's logs
    assert (run_dir / "telemetry" / "per_layer_stats.csv").stat().st_size > 0
    assert recs[-1]["event"] == "end" and recs[-1]["status"] == "finished"

    # termmon reads it back: the Python API and `summary --json`.
    df = termmon.load(run_dir)
    assert df["train_loss"].dropna().size == 4
    run = summary(run_dir, capsys)
    assert run["status"] == "finished"
    assert run["last_step"] == 20
    for name in ("train_loss", "lr", "grad_norm", "eval_loss", "samples_per_sec", "cpu_mem_rss_mb"):
        assert name in run["metrics"], name
    assert run["metrics"]["train_loss"]["count"] == 4
    assert not [a for a in run["alerts"] if a["severity"] == "critical"]


def test_a_diverging_trainer_run_raises_nan_inf(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # Plain SGD at an absurd rate with no clipping: the weights overflow within a few steps. HF's default
    # logging_nan_inf_filter hides the NaN loss; the gradient norms still show it.
    args = arguments(tmp_path, optim="sgd", learning_rate=1e6, max_grad_norm=0.0, max_steps=30)
    trainer = Trainer(
        model=tiny_gpt2(), args=args, train_dataset=CharWindows(64), callbacks=[TermmonCallback()]
    )
    trainer.train()

    run = summary(tmp_path / "tiny", capsys)
    kinds = {a["kind"]: a for a in run["alerts"]}
    assert "nan_inf" in kinds, run["alerts"]
    assert kinds["nan_inf"]["severity"] == "critical"
    flagged = [r for r in step_records(records(tmp_path / "tiny")) if r["nan_inf_detected"]]
    assert flagged and not math.isfinite(flagged[0]["grad_norm"])


class AskForLogEvery(TrainerCallback):
    """Plays the monitor: at ``at_step`` it asks for a new interval, as the ``+`` key does."""

    def __init__(self, run_dir: Path, at_step: int, log_every: int) -> None:
        self.run_dir, self.at_step, self.log_every = run_dir, at_step, log_every

    def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if state.global_step != self.at_step:
            return
        deadline = time.monotonic() + 30
        while not (self.run_dir / "metrics.jsonl").exists():  # the writer thread creates it
            assert time.monotonic() < deadline, "metrics.jsonl never appeared"
            time.sleep(0.01)
        request_log_every(self.run_dir, self.log_every)


def test_control_json_changes_logging_steps_while_the_trainer_runs(tmp_path: Path) -> None:
    args = arguments(tmp_path, max_steps=30)
    callback = TermmonCallback(control_poll_s=0.0)  # look at control.json at every step
    trainer = Trainer(
        model=tiny_gpt2(),
        args=args,
        train_dataset=CharWindows(64),
        callbacks=[callback, AskForLogEvery(tmp_path / "tiny", at_step=7, log_every=7)],
    )
    trainer.train()

    recs = records(tmp_path / "tiny")
    [change] = [r for r in recs if r["event"] == "control_change"]
    assert change["step"] == 8  # seen at the next step boundary
    assert {k: change[k] for k in ("key", "old", "new", "requested", "clamped")} == {
        "key": "log_every",
        "old": 5,
        "new": 7,
        "requested": 7,
        "clamped": False,
    }
    assert [r["step"] for r in step_records(recs)] == [5, 14, 21, 28]
    # The Trainer itself now logs every 7 steps: its logging_steps followed the request.
    assert trainer.state.logging_steps == 7
    assert [h["step"] for h in trainer.state.log_history if "loss" in h] == [5, 14, 21, 28]


def fail_on_call(model: torch.nn.Module, call: int) -> None:
    """The model raises inside its ``call``-th forward pass, as a real bug in a model would."""
    calls = 0

    def hook(module: torch.nn.Module, inputs: Any) -> None:
        nonlocal calls
        calls += 1
        if calls == call:
            raise RuntimeError("shape mismatch in block 3")

    model.register_forward_pre_hook(hook)


def test_an_exception_inside_training_records_crashed_and_is_re_raised(tmp_path: Path) -> None:
    model = tiny_gpt2()
    fail_on_call(model, 4)
    trainer = Trainer(
        model=model, args=arguments(tmp_path), train_dataset=CharWindows(64), callbacks=[TermmonCallback()]
    )
    with pytest.raises(RuntimeError, match="shape mismatch"):
        trainer.train()

    end = records(tmp_path / "tiny")[-1]
    assert end["event"] == "end"
    assert end["status"] == "crashed"
    assert end["error"] == "RuntimeError: shape mismatch in block 3"
    assert end["step"] == 3


def test_an_unwritable_log_dir_leaves_training_alone(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    blocker = tmp_path / "not_a_dir"
    blocker.write_text("a file where the run directory would go")
    args = arguments(tmp_path / "out", max_steps=6)
    trainer = Trainer(
        model=tiny_gpt2(),
        args=args,
        train_dataset=CharWindows(64),
        callbacks=[TermmonCallback(log_dir=blocker)],
    )
    trainer.train()  # no exception: telemetry is off, training is not
    assert trainer.state.global_step == 6
    assert "telemetry is off" in capsys.readouterr().err


_DECODER = json.JSONDecoder()


def test_two_processes_agree_on_a_live_logging_steps_and_only_rank_zero_writes(tmp_path: Path) -> None:
    # torchrun, two CPU ranks (gloo). The Trainer gathers the loss across ranks at every log step, so had the
    # ranks disagreed on logging_steps the run would fail or hang (pytest-timeout).
    root = Path(__file__).resolve().parent.parent
    env = {**os.environ, "PYTHONPATH": str(root), "OMP_NUM_THREADS": "1"}
    # --standalone: a local rendezvous on a port torchrun picks itself (no race for a port chosen here).
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2"]
    proc = subprocess.Popen(
        [*cmd, str(root / "tests" / "hf_ddp_worker.py"), str(tmp_path)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=root, start_new_session=True,
    )  # fmt: skip
    try:
        stdout, stderr = proc.communicate(timeout=280)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)  # the launcher and both ranks
            proc.communicate()
    # Both ends of stderr: a rank's Python traceback comes before the launcher's long report of it.
    assert proc.returncode == 0, stderr[:4000] + "\n[...]\n" + stderr[-3000:]
    results = sorted(
        # raw_decode: the two ranks share one stdout, and the other rank's print can land on the same line.
        (
            _DECODER.raw_decode(line.split("RESULT ", 1)[1])[0]
            for line in stdout.splitlines()
            if "RESULT " in line
        ),
        key=lambda r: r["rank"],
    )
    assert [r["rank"] for r in results] == [0, 1]
    for r in results:  # both ranks' Trainers switched at the same step
        assert r["logging_steps"] == 6
        assert r["logged"] == [5, 10, 12]

    recs = records(tmp_path / "tiny")
    assert [r["event"] for r in recs].count("start") == 1 and recs[0]["world_size"] == 2
    [change] = [r for r in recs if r["event"] == "control_change"]
    assert (change["step"], change["old"], change["new"]) == (10, 5, 6)
    assert [r["step"] for r in step_records(recs)] == [5, 10, 12]


def test_a_failing_callback_switches_itself_off_and_training_goes_on(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # log_every=0 makes Telemetry refuse to start inside on_train_begin: the callback must swallow that.
    args = arguments(tmp_path, max_steps=6)
    trainer = Trainer(
        model=tiny_gpt2(), args=args, train_dataset=CharWindows(64), callbacks=[TermmonCallback(log_every=0)]
    )
    trainer.train()
    assert trainer.state.global_step == 6
    err = [line for line in capsys.readouterr().err.splitlines() if line.startswith("termmon:")]
    assert len(err) == 1 and "on_train_begin failed (ValueError" in err[0], err
