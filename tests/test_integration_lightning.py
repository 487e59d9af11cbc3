"""``TermmonCallback`` under a real ``lightning.Trainer``: a tiny LightningModule on CPU."""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("lightning")

import lightning.pytorch as pl
import torch
from lightning.pytorch.callbacks import Callback
from lightning.pytorch.loggers import CSVLogger

import termmon
from termmon.control import request_log_every
from termmon.integrations.lightning import TermmonCallback
from tests.integration_helpers import release_process_group, step_records, summary
from tests.telemetry_helpers import events, records

pytestmark = [pytest.mark.torch, pytest.mark.slow]


class Regressor(pl.LightningModule):
    """y = sum(x) with a small MLP; logs a training loss, a training metric and a validation loss."""

    def __init__(self, lr: float = 0.05, fail_at_step: int | None = None) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.net = torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.ReLU(), torch.nn.Linear(16, 1))

    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> torch.Tensor:
        if self.hparams.fail_at_step is not None and self.global_step == self.hparams.fail_at_step:
            raise RuntimeError("CUDA error: an illegal memory access was encountered")
        x, y = batch
        pred = self.net(x)
        loss = torch.nn.functional.mse_loss(pred, y)
        self.log("train_loss", loss, on_step=True, on_epoch=True)
        self.log("abs_err", (pred - y).abs().mean(), on_step=True)
        return loss

    def validation_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> None:
        x, y = batch
        self.log("val_loss", torch.nn.functional.mse_loss(self.net(x), y))

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=self.hparams.lr)


def loader(n: int = 256, seed: int = 0) -> torch.utils.data.DataLoader[Any]:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 8, generator=g)
    return torch.utils.data.DataLoader(
        torch.utils.data.TensorDataset(x, x.sum(1, keepdim=True)), batch_size=16
    )


def trainer(root: Path, callbacks: list[Callback], **overrides: Any) -> pl.Trainer:
    options: dict[str, Any] = {
        "default_root_dir": str(root),
        "max_epochs": 2,
        "log_every_n_steps": 5,
        "accelerator": "cpu",
        "devices": 1,
        "enable_progress_bar": False,
        "enable_model_summary": False,
    }
    options.update(overrides)
    return pl.Trainer(callbacks=callbacks, **options)


def test_a_lightning_fit_is_a_termmon_run_with_metrics_by_role(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    torch.manual_seed(0)
    t = trainer(tmp_path, [TermmonCallback(run_name="lit")], accumulate_grad_batches=2)
    t.fit(Regressor(), loader(), loader(64, seed=1))

    run_dir = tmp_path / "lit"  # default: inside the trainer's default_root_dir
    recs = records(run_dir)
    assert recs[0]["event"] == "start" and recs[0]["model"] == "Regressor"
    assert recs[0]["config"]["lr"] == 0.05
    assert recs[0]["config"]["trainer"]["accumulate_grad_batches"] == 2

    # 16 batches an epoch, 2 per optimizer step: 8 optimizer steps an epoch, logged on multiples of 5.
    assert t.global_step == 16
    logged = step_records(recs)
    assert [r["step"] for r in logged] == [5, 10, 15]
    for r in logged:
        assert r["lr"] == 0.05
        assert r["grad_norm"] > 0 and r["nan_inf_detected"] is False
        assert "train_loss_step" in r and "abs_err" in r  # what self.log produced, under its own names
        assert r["param_updates/num_updated"] == 4
        assert set(r) >= {"gradients/net.0.weight/norm", "samples_per_sec", "sec_per_step", "cpu_mem_rss_mb"}

    epochs = events(run_dir, "epoch")
    assert [e["epoch"] for e in epochs] == [0, 1]
    assert all(math.isfinite(e["test/loss"]) and math.isfinite(e["train/loss"]) for e in epochs)
    vals = [r for r in recs if r["event"] == "step" and "val_loss" in r]
    assert [r["step"] for r in vals] == [8, 16]
    assert [e["test/loss"] for e in epochs] == pytest.approx([r["val_loss"] for r in vals])
    checkpoints = events(run_dir, "checkpoint")
    assert [c["step"] for c in checkpoints] == [8, 16]  # one per epoch; save_top_k=1 keeps the last file
    assert Path(checkpoints[-1]["checkpoint_path"]).is_file()
    # Lightning's own logging and checkpoint paths are what they would be without termmon.
    assert (
        Path(checkpoints[-1]["checkpoint_path"]).parent
        == tmp_path / "lightning_logs" / "version_0" / "checkpoints"
    )
    assert not [lg for lg in t.loggers if type(lg).__module__.startswith("termmon")]
    assert recs[-1]["event"] == "end" and recs[-1]["status"] == "finished"

    df = termmon.load(run_dir)
    assert df["train_loss"].dropna().size == 3
    run = summary(run_dir, capsys)
    assert run["status"] == "finished" and run["last_step"] == 16
    for name in ("train_loss", "lr", "grad_norm", "val_loss", "test/loss", "train/loss", "abs_err"):
        assert name in run["metrics"], name


def test_a_diverging_lightning_run_raises_nan_inf(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    torch.manual_seed(0)
    t = trainer(
        tmp_path, [TermmonCallback(run_name="lit")], max_epochs=1, logger=False, enable_checkpointing=False
    )
    t.fit(Regressor(lr=1e4), loader())

    run = summary(tmp_path / "lit", capsys)
    kinds = {a["kind"]: a for a in run["alerts"]}
    assert "nan_inf" in kinds, run["alerts"]
    assert kinds["nan_inf"]["severity"] == "critical"
    flagged = [r for r in step_records(records(tmp_path / "lit")) if r["nan_inf_detected"]]
    assert flagged and not math.isfinite(flagged[0]["train_loss"])


class AskForLogEvery(Callback):
    """Plays the monitor: after optimizer step ``at_step`` it asks for a new interval."""

    def __init__(self, run_dir: Path, at_step: int, log_every: int) -> None:
        self.run_dir, self.at_step, self.log_every = run_dir, at_step, log_every

    def on_train_batch_end(self, trainer: pl.Trainer, *args: Any) -> None:
        if trainer.global_step != self.at_step:
            return
        deadline = time.monotonic() + 30
        while not (self.run_dir / "metrics.jsonl").exists():  # the writer thread creates it
            assert time.monotonic() < deadline, "metrics.jsonl never appeared"
            time.sleep(0.01)
        request_log_every(self.run_dir, self.log_every)


def test_control_json_changes_log_every_n_steps_while_lightning_trains(tmp_path: Path) -> None:
    torch.manual_seed(0)
    ask = AskForLogEvery(tmp_path / "lit", at_step=7, log_every=6)
    # Lightning's CSVLogger named: its default is TensorBoardLogger wherever tensorboard is installed.
    csv_logger = CSVLogger(str(tmp_path), name="lightning_logs")
    t = trainer(
        tmp_path, [TermmonCallback(run_name="lit", control_poll_s=0.0), ask], max_epochs=2, logger=csv_logger
    )
    t.fit(Regressor(), loader())  # 16 optimizer steps an epoch, 32 in all

    recs = records(tmp_path / "lit")
    [change] = [r for r in recs if r["event"] == "control_change"]
    assert change["step"] == 8
    assert (change["old"], change["new"], change["clamped"]) == (5, 6, False)
    assert [r["step"] for r in step_records(recs)] == [5, 12, 18, 24, 30]
    assert t.log_every_n_steps == 6
    # Lightning's own logger followed: its CSV rows for the step metric are at the new interval.
    lightning_csv = (tmp_path / "lightning_logs" / "version_0" / "metrics.csv").read_text().splitlines()
    header = lightning_csv[0].split(",")
    col, step_col = header.index("train_loss_step"), header.index("step")
    steps = [int(row.split(",")[step_col]) + 1 for row in lightning_csv[1:] if row.split(",")[col]]
    assert steps == [5, 12, 18, 24, 30]


def test_an_exception_inside_training_step_records_crashed_and_is_re_raised(tmp_path: Path) -> None:
    t = trainer(tmp_path, [TermmonCallback(run_name="lit")], logger=False, enable_checkpointing=False)
    with pytest.raises(RuntimeError, match="illegal memory access"):
        t.fit(Regressor(fail_at_step=3), loader())

    end = records(tmp_path / "lit")[-1]
    assert end["event"] == "end"
    assert end["status"] == "crashed"
    assert end["error"] == "RuntimeError: CUDA error: an illegal memory access was encountered"
    assert end["step"] == 3


class AskOnRankZero(AskForLogEvery):
    """The monitor talks to rank 0's run directory only; the other rank must follow through Telemetry."""

    def on_train_batch_end(self, trainer: pl.Trainer, *args: Any) -> None:
        if trainer.is_global_zero:
            super().on_train_batch_end(trainer, *args)


class ReleaseProcessGroup(Callback):
    """Each rank destroys its process group at the very end of the fit (see :func:`release_process_group`):
    callbacks' teardown hooks run after the strategy's, the last of Lightning's collectives."""

    def teardown(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        release_process_group()


def test_ddp_ranks_agree_on_a_live_log_every_and_only_rank_zero_writes(tmp_path: Path) -> None:
    # Two CPU processes (gloo). Had the ranks disagreed on the log steps, Telemetry's per-log-step broadcast
    # would pair with DDP's gradient all-reduce and the fit would fail or hang (pytest-timeout).
    ask = AskOnRankZero(tmp_path / "lit", at_step=7, log_every=6)
    t = trainer(
        tmp_path,
        [TermmonCallback(run_name="lit", control_poll_s=0.0), ask, ReleaseProcessGroup()],
        max_epochs=1,
        strategy="ddp_spawn",
        devices=2,
        logger=False,
        enable_checkpointing=False,
    )
    t.fit(Regressor(), loader(512))  # 16 optimizer steps a rank

    recs = records(tmp_path / "lit")
    assert [r["event"] for r in recs].count("start") == 1  # rank 1 wrote nothing
    assert recs[0]["world_size"] == 2
    [change] = [r for r in recs if r["event"] == "control_change"]
    assert (change["old"], change["new"]) == (5, 6)
    assert change["step"] == 10  # asked at step 7 on rank 0; agreed by broadcast at the next log step
    assert [r["step"] for r in step_records(recs)] == [5, 10, 12]
    assert recs[-1]["status"] == "finished"
