"""termmon for ``lightning.Trainer``: ``Trainer(callbacks=[TermmonCallback()])``.

Lightning's own conventions split the job: hooks belong to a ``Callback`` and metric values to a ``Logger``
(only a logger is handed exactly what ``self.log`` produced, at the step Lightning decided to log). So the
callback is the one line, and at ``setup`` it adds a small logger of its own to ``trainer.loggers``, which
feeds the ``self.log`` values and the checkpoint paths back to it, and which it removes at ``teardown``.
That logger reports the trainer's own ``default_root_dir`` with an empty name and version, so checkpoint and
``trainer.log_dir`` paths are the ones Lightning would use without it.

Gradients are read at ``on_before_optimizer_step``: Lightning runs forward and backward inside the
optimizer's closure, so a plain optimizer pre-hook would see the previous step's gradients.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from typing import Any

import lightning.pytorch as pl
import torch
from lightning.pytorch.callbacks import Callback
from lightning.pytorch.loggers import Logger

from termmon.integrations.session import FrameworkSession, batch_length, never_raises, split_by_role
from termmon.telemetry.logger import Telemetry

__all__ = ["TermmonCallback"]

#: Keys Lightning adds to what it logs that are not the user's metrics.
_NOT_METRICS = frozenset({"epoch", "step"})


class TermmonCallback(Callback):
    """Writes a termmon run directory for a ``lightning.Trainer`` fit; see docs/logger.md.

    ``log_dir`` defaults to the trainer's ``default_root_dir``, ``run_name`` to ``run_<date>_<time>``,
    ``log_every`` to the trainer's ``log_every_n_steps``. Other keyword arguments are ``Telemetry`` options.
    The ``start`` record's config is the module's ``hparams``, the trainer's settings under ``trainer``, and
    ``config`` when given.
    """

    def __init__(
        self,
        log_dir: str | os.PathLike[str] | None = None,
        run_name: str | None = None,
        log_every: int | None = None,
        config: Mapping[str, Any] | None = None,
        **options: Any,
    ) -> None:
        self._log_dir = log_dir
        self._run_name = run_name
        self._log_every = log_every
        self._config = dict(config) if config else None
        self._options = options
        self.session: FrameworkSession | None = None
        self._tap: _MetricsTap | None = None
        self._trainer: pl.Trainer | None = None
        self._off = False
        self._steps_seen = 0
        self._loss_sum: Any = None
        self._samples = 0

    @property
    def telemetry(self) -> Telemetry | None:
        """The run's ``Telemetry`` while fitting (``tm.alert(...)``, ``tm.run_dir``)."""
        return self.session.tm if self.session is not None else None

    # --- set-up and tear-down -------------------------------------------------------------------------------
    @never_raises
    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        if stage != "fit":
            return
        if self.session is not None:
            self.session.close()
        self._trainer = trainer
        config: dict[str, Any] = dict(pl_module.hparams)  # the module's hparams are the run's config
        settings = {
            "max_epochs": trainer.max_epochs,
            "max_steps": trainer.max_steps,
            "accumulate_grad_batches": trainer.accumulate_grad_batches,
            "precision": str(trainer.precision),
            "world_size": trainer.world_size,
            "log_every_n_steps": _log_every_n_steps(trainer),
        }
        config.setdefault("trainer", settings)  # an hparam of that name wins
        if self._config:
            config.update(self._config)
        options = {**self._options, "log_on_multiples": True}
        tm = Telemetry(
            log_dir=self._log_dir if self._log_dir is not None else trainer.default_root_dir,
            run_name=self._run_name,
            log_every=self._log_every
            if self._log_every is not None
            else (_log_every_n_steps(trainer) or None),
            config=config,
            **options,
        )
        self.session = FrameworkSession(tm, lambda n: _set_log_every_n_steps(trainer, n))
        _set_log_every_n_steps(trainer, tm.log_every)
        self._tap = _MetricsTap(self)
        trainer.loggers = [*trainer.loggers, self._tap]

    @never_raises
    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self.session is None:
            return
        tm = self.session.tm
        tm.global_step = self._steps_seen = trainer.global_step
        tm.current_epoch = trainer.current_epoch
        optimizer = trainer.optimizers[0] if trainer.optimizers else None
        tm.watch(pl_module, optimizer, optimizer_hooks=False)

    def teardown(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        try:
            if self._tap is not None:
                trainer.loggers = [lg for lg in trainer.loggers if lg is not self._tap]
                self._tap = None
            if stage == "fit" and self.session is not None:
                self.session.close()
        except Exception as exc:
            print(f"termmon: Lightning teardown failed ({type(exc).__name__}: {exc})", file=sys.stderr)

    # --- steps ----------------------------------------------------------------------------------------------
    @never_raises
    def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self.session is not None:
            self.session.tm.current_epoch = trainer.current_epoch

    @never_raises
    def on_before_optimizer_step(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, optimizer: torch.optim.Optimizer
    ) -> None:
        if self.session is not None:
            self.session.tm.global_step = trainer.global_step
            self.session.tm.before_optimizer_step()

    @never_raises
    def on_train_batch_end(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        if self.session is None:
            return
        loss = outputs.get("loss") if isinstance(outputs, Mapping) else outputs
        if isinstance(loss, torch.Tensor) and loss.numel() == 1:
            # Lightning divides by accumulate_grad_batches: the sum over the window is the window's mean loss.
            loss = loss.detach()
            self._loss_sum = loss if self._loss_sum is None else self._loss_sum + loss
        self._samples += batch_length(batch) or 0
        step = trainer.global_step
        if step == self._steps_seen:
            return  # a micro-batch of gradient accumulation: no optimizer step yet
        self._steps_seen = step
        tm = self.session.tm
        tm.global_step = step - 1
        tm.after_optimizer_step()
        self.session.step_ended(step, loss=self._loss_sum, batch_size=self._samples or None)
        self._loss_sum = None
        self._samples = 0

    def _logged(self, metrics: Mapping[str, Any]) -> None:
        """What Lightning logged: the open log step's values, or off-cadence (validation, epoch) ones."""
        if self._off or self.session is None or self._trainer is None:
            return
        try:
            values = {k: v for k, v in metrics.items() if k not in _NOT_METRICS}
            if not self.session.complete(self._trainer.global_step, metrics=values):
                self.session.tm.global_step = self._trainer.global_step
                self.session.tm.record(values)
        except Exception as exc:
            self._failed("log_metrics", exc)

    def _saved(self, path: str) -> None:
        if self._off or self.session is None or self._trainer is None or not path:
            return
        try:
            self.session.tm.global_step = self._trainer.global_step
            self.session.tm.checkpoint(path)
        except Exception as exc:
            self._failed("after_save_checkpoint", exc)

    @never_raises
    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self.session is None:
            return
        self.session.flush()
        epoch_values = {
            k: v
            for k, v in trainer.callback_metrics.items()
            if not k.endswith("_step") and k not in _NOT_METRICS
        }
        train, test = split_by_role(epoch_values)
        self.session.tm.global_step = trainer.global_step
        self.session.tm.epoch(trainer.current_epoch, train=train, test=test)

    @never_raises
    def on_fit_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self.session is not None:
            self.session.close()

    def on_exception(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, exception: BaseException
    ) -> None:
        try:
            if self.session is not None:
                self.session.close(status="crashed", error=f"{type(exception).__name__}: {exception}")
        except Exception as exc:
            print(f"termmon: recording the crash failed ({type(exc).__name__}: {exc})", file=sys.stderr)

    # --- plumbing -------------------------------------------------------------------------------------------
    def _failed(self, hook: str, exc: Exception) -> None:
        """Switch the callback off with one alert (or one stderr line before a run directory exists)."""
        self._off = True
        message = (
            f"Lightning callback {hook} failed ({type(exc).__name__}: {exc}); termmon is off for this run"
        )
        tm = self.telemetry
        if tm is not None:
            if tm.settings.strict:
                raise exc
            tm.alert("telemetry", message, severity="warning")  # the run's end is still recorded at exit
        print(f"termmon: {message}", file=sys.stderr)


def _log_every_n_steps(trainer: pl.Trainer) -> int:
    """The trainer's logging interval: an attribute its logger connector sets, not a declared one."""
    return int(getattr(trainer, "log_every_n_steps", 0) or 0)


def _set_log_every_n_steps(trainer: pl.Trainer, n: int) -> None:
    """Lightning's logger connector reads this attribute at every step, so a change applies at the next one."""
    trainer.log_every_n_steps = n  # type: ignore[attr-defined]


class _MetricsTap(Logger):
    """The logger half of ``TermmonCallback``: Lightning hands it ``self.log`` values and checkpoint paths.

    Called on every rank (Lightning's connector does not filter by rank), which the callback needs: a log
    step is completed at the same point on all ranks, where Telemetry's control broadcast runs.
    """

    def __init__(self, owner: TermmonCallback) -> None:
        super().__init__()
        self._owner = owner

    @property
    def name(self) -> str:
        return ""

    @property
    def version(self) -> str:
        return ""

    @property
    def save_dir(self) -> str | None:
        trainer = self._owner._trainer
        return None if trainer is None else str(trainer.default_root_dir)

    def log_hyperparams(self, params: Any, *args: Any, **kwargs: Any) -> None:
        """The hparams are already the ``start`` record's config."""

    def log_metrics(self, metrics: Mapping[str, float], step: int | None = None) -> None:
        self._owner._logged(metrics)

    def after_save_checkpoint(self, checkpoint_callback: Any) -> None:
        path = getattr(checkpoint_callback, "_last_checkpoint_saved", "") or getattr(
            checkpoint_callback, "last_model_path", ""
        )
        self._owner._saved(str(path))
