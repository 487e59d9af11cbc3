"""termmon for Hugging Face ``transformers.Trainer``: ``Trainer(..., callbacks=[TermmonCallback()])``.

What the Trainer already computes is taken from it rather than computed again: its loss window mean,
pre-clip ``grad_norm`` and learning rate arrive in ``on_log`` (the Trainer pays its one gather and ``.item()``
for them). termmon adds what the Trainer has not got: per-parameter gradient norms (after clipping, at
``on_pre_optimizer_step``), parameter-update checks, per-layer weight stats, throughput, memory, alerts and
an ``end`` record. Live control: a ``log_every`` from control.json becomes the Trainer's ``logging_steps``
(``state.logging_steps``, which ``DefaultFlowCallback`` reads) at the step Telemetry agreed on across ranks.

The ``end`` record of a crash: a callback sees no exception, so when the callback is given to the Trainer's
constructor it wraps that trainer's ``train`` (found on the constructor's frame) to write ``crashed`` and
re-raise. Added later with ``add_callback``, an uncaught exception is still recorded at interpreter exit.
"""

from __future__ import annotations

import functools
import math
import os
import sys
from collections.abc import Callable, Mapping
from typing import Any

import torch
from transformers import Trainer, TrainerCallback

from termmon.integrations.session import FrameworkSession, never_raises, split_by_role
from termmon.telemetry.logger import Telemetry

__all__ = ["TermmonCallback"]

#: HF ``on_log`` keys with a termmon name (the rest keep theirs: ``num_input_tokens_seen``, ...).
_RENAMED = {"learning_rate": "lr"}
#: Keys of a training log that are not step metrics (``epoch`` is the record's own key, the loss and gradient
#: norm go to Telemetry as arguments).
_NOT_METRICS = frozenset({"loss", "grad_norm", "epoch", "step"})
#: Frames between ``on_init_end`` and ``Trainer.__init__`` (callback handler, subclass ``__init__``s).
_MAX_FRAMES = 8


class TermmonCallback(TrainerCallback):
    """Writes a termmon run directory for a ``transformers.Trainer`` run; see docs/logger.md.

    ``log_dir`` defaults to ``args.output_dir`` and ``run_name`` to ``args.run_name`` (else
    ``run_<date>_<time>``); ``log_every`` to the Trainer's ``logging_steps``. Other keyword arguments are
    ``Telemetry`` options (``track_per_layer_stats=False``, ``enable_diagnostics=True``, ...). ``config``
    is recorded next to the Trainer's arguments in the ``start`` record.
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
        self._off = False
        self._epoch = 0
        self._samples_per_step = 0
        self._epoch_losses: list[float] = []
        self._epoch_due: tuple[int, int] | None = None  # (epoch, step): its record waits for an evaluation

    @property
    def telemetry(self) -> Telemetry | None:
        """The run's ``Telemetry`` while training (``tm.alert(...)``, ``tm.run_dir``)."""
        return self.session.tm if self.session is not None else None

    # --- set-up ---------------------------------------------------------------------------------------------
    @never_raises
    def on_init_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        trainer = _constructing_trainer()
        if trainer is not None and not getattr(trainer.train, "_termmon_records_crashes", False):
            trainer.train = self._recording_crashes(trainer.train)  # type: ignore[method-assign]

    @never_raises
    def on_train_begin(
        self, args: Any, state: Any, control: Any, model: Any = None, optimizer: Any = None, **kwargs: Any
    ) -> None:
        if self.session is not None:
            self.session.close()
        steps_strategy = str(getattr(args.logging_strategy, "value", args.logging_strategy)) == "steps"
        log_every = (
            self._log_every
            if self._log_every is not None
            else (state.logging_steps if steps_strategy else None)
        )
        options = {"track_learning_rates": False, **self._options, "log_on_multiples": True}
        config: dict[str, Any] = args.to_dict()  # the Trainer's config is the run's config
        if self._config:
            config.update(self._config)
        tm = Telemetry(
            log_dir=self._log_dir if self._log_dir is not None else args.output_dir,
            run_name=self._run_name or args.run_name,
            log_every=log_every,
            config=config,
            **options,
        )
        self.session = FrameworkSession(tm, lambda n: setattr(state, "logging_steps", n))
        state.logging_steps = tm.log_every
        tm.global_step = state.global_step  # a resumed run goes on counting from its checkpoint
        self._samples_per_step = args.train_batch_size * args.gradient_accumulation_steps * args.world_size
        if model is not None:
            tm.watch(model, _unwrap_optimizer(optimizer), optimizer_hooks=False)
        if args.logging_nan_inf_filter and state.is_world_process_zero:
            print(
                "termmon: logging_nan_inf_filter=True hides a NaN loss behind the window mean (and syncs every "
                "step); termmon still flags NaN gradients. TrainingArguments(logging_nan_inf_filter=False) "
                "shows the loss as it is.",
                file=sys.stderr,
            )

    # --- steps ----------------------------------------------------------------------------------------------
    @never_raises
    def on_epoch_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self._close_epoch()
        self._epoch = math.floor((state.epoch or 0.0) + 1e-6)
        if self.session is not None:
            self.session.tm.current_epoch = self._epoch

    @never_raises
    def on_step_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if self._epoch_due is not None and self._epoch_due[1] != state.global_step:
            self._close_epoch()

    @never_raises
    def on_pre_optimizer_step(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if self.session is not None:
            self.session.tm.global_step = state.global_step
            self.session.tm.before_optimizer_step()

    @never_raises
    def on_optimizer_step(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if self.session is not None:
            self.session.tm.global_step = state.global_step
            self.session.tm.after_optimizer_step()

    @never_raises
    def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> Any:
        if self.session is None:
            return None
        if self.session.step_ended(state.global_step, batch_size=self._samples_per_step):
            control.should_log = True  # whatever the logging strategy: this is termmon's log step
        return control

    @never_raises
    def on_log(
        self, args: Any, state: Any, control: Any, logs: Mapping[str, Any] | None = None, **_: Any
    ) -> None:
        if self.session is None or not logs or "loss" not in logs:
            return  # evaluations arrive in on_evaluate; the final summary (train_runtime, ...) is HF's own
        metrics = {_RENAMED.get(k, k): v for k, v in logs.items() if k not in _NOT_METRICS}
        loss = logs.get("loss")
        done = self.session.complete(
            state.global_step, loss=loss, grad_norm=logs.get("grad_norm"), metrics=metrics
        )
        if done and isinstance(loss, int | float):
            self._epoch_losses.append(float(loss))

    @never_raises
    def on_evaluate(
        self, args: Any, state: Any, control: Any, metrics: Mapping[str, Any] | None = None, **_: Any
    ) -> None:
        if self.session is None or not metrics:
            return
        values = {k: v for k, v in metrics.items() if k not in ("epoch", "step")}
        self.session.tm.global_step = state.global_step
        self.session.tm.record(values)  # eval_loss, eval_runtime, eval_<metric> at this step
        if self._epoch_due is not None and self._epoch_due[1] == state.global_step:
            self._close_epoch(split_by_role(values)[1])

    @never_raises
    def on_epoch_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if self.session is None:
            return
        self._epoch_due = (self._epoch, state.global_step)
        if str(getattr(args.eval_strategy, "value", args.eval_strategy)) != "epoch":
            self._close_epoch()

    @never_raises
    def on_save(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if self.session is not None:
            self.session.tm.global_step = state.global_step
            self.session.tm.checkpoint(os.path.join(args.output_dir, f"checkpoint-{state.global_step}"))

    @never_raises
    def on_train_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self._close_epoch()
        if self.session is not None:
            self.session.close()

    # --- plumbing -------------------------------------------------------------------------------------------
    def _close_epoch(self, test: Mapping[str, Any] | None = None) -> None:
        """The epoch record, with the evaluation that ran at the epoch's end when there was one."""
        if self._epoch_due is None or self.session is None:
            return
        epoch, step = self._epoch_due
        self._epoch_due = None
        train = {"loss": sum(self._epoch_losses) / len(self._epoch_losses)} if self._epoch_losses else {}
        self._epoch_losses = []
        self.session.tm.global_step = step
        self.session.tm.epoch(epoch, train=train, test=dict(test or {}))

    def _recording_crashes(self, train: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(train)
        def train_recording_crashes(*args: Any, **kwargs: Any) -> Any:
            try:
                return train(*args, **kwargs)
            except BaseException as exc:
                if self.session is not None:
                    self.session.close(status="crashed", error=f"{type(exc).__name__}: {exc}")
                raise

        train_recording_crashes._termmon_records_crashes = True  # type: ignore[attr-defined]
        return train_recording_crashes

    def _failed(self, hook: str, exc: Exception) -> None:
        """Switch the callback off with one alert (or one stderr line before a run directory exists)."""
        self._off = True
        message = f"HF callback {hook} failed ({type(exc).__name__}: {exc}); termmon is off for this run"
        tm = self.telemetry
        if tm is not None:
            if tm.settings.strict:
                raise exc
            tm.alert("telemetry", message, severity="warning")  # the run's end is still recorded at exit
        print(f"termmon: {message}", file=sys.stderr)


def _constructing_trainer() -> Trainer | None:
    """The ``Trainer`` whose ``__init__`` is calling ``on_init_end`` (HF passes callbacks no trainer)."""
    frame = sys._getframe(1)
    for _ in range(_MAX_FRAMES):
        if frame is None:
            return None
        candidate = frame.f_locals.get("self")
        if isinstance(candidate, Trainer):
            return candidate
        frame = frame.f_back  # type: ignore[assignment]
    return None


def _unwrap_optimizer(optimizer: Any) -> torch.optim.Optimizer | None:
    """accelerate's ``AcceleratedOptimizer`` holds the torch optimizer whose param groups are the truth."""
    while isinstance(getattr(optimizer, "optimizer", None), torch.optim.Optimizer):
        optimizer = optimizer.optimizer
    return optimizer if isinstance(optimizer, torch.optim.Optimizer) else None
