"""``Telemetry``: three lines in a PyTorch loop, every signal the seeds describe, and no crashed runs.

Cost model (reference/producer.md): a non-log step does counters and keeps the detached loss, with no
device arithmetic and never a host sync; a log step gathers every device value into one vector and moves
it to the host once; files are written by the writer thread. Every public method is guarded: a feature that
raises is switched off with one ``alert`` record, and only the user's own exception leaves the block.
"""

from __future__ import annotations

import atexit
import os
import socket
import sys
import threading
import time
from collections.abc import Mapping
from dataclasses import asdict
from pathlib import Path
from types import TracebackType
from typing import Any

import torch

from termmon.format import (
    END_CRASHED,
    END_FINISHED,
    END_KILLED,
    EV_ALERT,
    EV_CHECKPOINT,
    EV_CONTROL_CHANGE,
    EV_END,
    EV_EPOCH,
    EV_START,
    EV_STEP,
    OPTIMIZER_STEPS,
    TELEMETRY_DIR,
    WEIGHT_SNAPSHOTS_DIR,
    clamp_log_every,
    flatten,
    weight_snapshot_name,
)
from termmon.telemetry import signals, stats
from termmon.telemetry.config import TelemetryConfig, load_config_file
from termmon.telemetry.control import ControlPoller
from termmon.telemetry.episodes import Episodes
from termmon.telemetry.probes import NvmlSampler, RssProbe, cuda_memory
from termmon.telemetry.sanity import SanityChecks, is_sanity
from termmon.telemetry.step_record import RawStep, StepRecords, layer_stats_rows
from termmon.telemetry.writer import CsvRows, Results, RunWriter

SEVERITIES = ("info", "warning", "critical")
HOLDOUT_CSV = f"{TELEMETRY_DIR}/holdout_predictions.csv"
HOLDOUT_COLUMNS = ("epoch", "step", "index", "label", "prediction", "confidence")
#: Seconds between samples of process and GPU memory (each log step carries the latest).
SYSTEM_SAMPLE_S = 5.0
#: Scalar tensor losses kept between log steps before they are summed into one (memory stays bounded
#: whatever ``log_every``; a sum keeps what they are kept for, whether any was non-finite).
LOSS_WINDOW = 64
#: How long ``close`` waits for a step running in another thread before writing ``end`` anyway.
CLOSE_LOCK_SECONDS = 2.0


class _Pack:
    """Device values of one log step, moved to the host in a single transfer.

    Two ops for all of them (a ``stack`` of the scalars, a ``cat`` with the vectors) and no ``detach`` or
    ``reshape`` per value: in a busy training loop each op costs ~15 us, and a log step packs a dozen.
    """

    def __init__(self) -> None:
        self._parts: list[tuple[str, torch.Tensor]] = []

    def add(self, name: str, tensor: torch.Tensor) -> None:
        self._parts.append((name, tensor))

    @stats.no_grad
    def fetch(self) -> dict[str, list[float]]:
        if not self._parts:
            return {}
        device = self._parts[0][1].device
        scalars: list[tuple[str, torch.Tensor]] = []
        vectors: list[tuple[str, torch.Tensor]] = []
        for name, tensor in self._parts:
            if tensor.device != device:
                tensor = tensor.to(device)
            if tensor.dtype is not torch.float32 and tensor.dtype is not torch.float64:
                tensor = tensor.double()  # half losses and integer counts: no rounding in the shared dtype
            if tensor.ndim == 0:
                scalars.append((name, tensor))
            else:
                vectors.append((name, tensor if tensor.ndim == 1 else tensor.reshape(-1)))
        pieces = [t for _, t in vectors]
        if scalars:
            pieces.insert(0, torch.stack([t for _, t in scalars]))
        flat = (torch.cat(pieces) if len(pieces) > 1 else pieces[0]).tolist()
        out: dict[str, list[float]] = {}
        offset = 0
        for name, tensor in (*scalars, *vectors):
            out[name] = flat[offset : offset + tensor.numel()]
            offset += tensor.numel()
        return out


class Telemetry:
    """Writes one run directory (``log_dir/run_name``) in the format termmon reads; see docs/logger.md."""

    def __init__(
        self,
        log_dir: str | os.PathLike[str] | None = None,
        run_name: str | None = None,
        log_every: int | None = None,
        config: Any = None,
        *,
        settings: TelemetryConfig | Mapping[str, Any] | None = None,
        enabled: bool | None = None,
        **options: Any,
    ) -> None:
        if isinstance(settings, TelemetryConfig):
            base = settings
        elif settings is not None:
            base = TelemetryConfig.from_dict(settings)
        else:
            base = TelemetryConfig()
        given = {"log_dir": log_dir, "run_name": run_name, "log_every": log_every, "enabled": enabled}
        self.settings = base.with_options(**{k: v for k, v in given.items() if v is not None}, **options)
        self.config = config
        self.run_name = self.settings.run_name or time.strftime("run_%Y%m%d_%H%M%S")
        self.run_dir = Path(self.settings.log_dir, self.run_name)
        self.log_every = self.settings.log_every
        self.global_step = 0
        self.current_epoch = 0
        self._rank, self._world = _dist_rank_world()
        self._closed = False
        self._started = False
        self._off: set[str] = set()
        self._episodes = Episodes()
        self._model: torch.nn.Module | None = None
        self._optimizer: torch.optim.Optimizer | None = None
        self._hooks: list[Any] = []
        #: The optimizer step post-hook, registered by the pre-hook of a step that will be logged and
        #: removed at that log step: a hook on every step costs PyTorch's hook call path for nothing.
        self._post_hook: Any = None
        #: The forward pre-hook that reads the batch size, only while ``step`` is not given one: a module
        #: with a hook takes PyTorch's slow call path, ~20 us a step on a small model.
        self._rows_hook: Any = None
        self._multiples = bool(self.settings.log_on_multiples)
        self._named_params: list[tuple[str, torch.nn.Parameter]] = []
        self._param_names: list[str] = []
        self._param_sizes: list[tuple[str, int]] = []
        self._sentinels: stats.UpdateSentinels | None = None
        self._param_stats: stats.ParamStats | None = None
        self._holdout: tuple[torch.Tensor, torch.Tensor | None] | None = None
        self._history: list[dict[str, Any]] = []
        self._pending_metrics: dict[str, Any] = {}
        self._pending_control: int | None = None
        self._grad_pack: torch.Tensor | None = None
        #: This window's scalar tensor losses, detached: one ``stack`` at the log step instead of a device
        #: add on every step (~20 us each in a busy loop). Other losses (numbers, vectors) are summed.
        self._losses: list[torch.Tensor] = []
        self._loss_sum: Any = 0.0
        self._last_log_step = 0
        self._logs_done = 0
        self._window_t0: float | None = None
        self._window_step0 = 0
        self._window_samples = 0
        self._grad_names: list[str] = []
        self._update_change: torch.Tensor | None = None
        self._optimizer_steps = 0  # optimizer.step() calls, counted by its pre-hook
        self._optimizer_steps_logged = 0
        self._interval_base: torch.Tensor | None = None  # sampled weights at the last log step
        self._input_rows: int | None = None  # leading dim of the model's last training input
        self._sanity = SanityChecks()
        self._late_alerts: list[tuple[str, str]] = []
        self._writer: RunWriter | None = None
        self._poller: ControlPoller | None = None
        self._rss: RssProbe | None = None
        self._nvml: NvmlSampler | None = None
        self._system_due = 0.0
        self._system_sample: dict[str, float] = {}
        # One training step at a time: ``step`` from two threads must neither lose records nor repeat
        # a step number. Reentrant, because a failing feature reports through ``alert``, and because the
        # SIGTERM handler may close the run while this thread is inside ``step``.
        self._lock = threading.RLock()
        self._signal: str | None = None  # a stopping signal the trainer's own handler was given
        # Under torch.distributed a rank that cannot write stays active: it must still join the broadcasts.
        self._active = bool(self.settings.enabled) and (self._open() or self._world > 1)
        if self._active:
            atexit.register(self._at_exit)
            signals.watch(self)

    @classmethod
    def from_config(cls, source: Mapping[str, Any] | str | os.PathLike[str], **overrides: Any) -> Telemetry:
        """From an experiment config (dict, YAML or JSON file) with a ``telemetry:`` section; the whole
        config is recorded in the ``start`` event and results.json."""
        data = dict(source) if isinstance(source, Mapping) else load_config_file(source)
        return cls(config=data, settings=TelemetryConfig.from_dict(data), **overrides)

    # --- set-up ---------------------------------------------------------------------------------------------
    def _open(self) -> bool:
        if self._rank != 0:
            return True  # other ranks write nothing but still take part in agreeing on log_every
        try:
            self.run_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            print(
                f"termmon: cannot create {self.run_dir}: {exc.strerror or exc}; telemetry is off",
                file=sys.stderr,
            )
            return False
        self._writer = RunWriter(self.run_dir, self.settings.queue_size, self._sinks())
        self._step_records = StepRecords(self._writer)
        self._poller = ControlPoller(self.run_dir, self.settings.control_poll_s)
        if self.settings.track_system:
            self._try("cpu_memory", self._start_rss)
        return True

    def _start_rss(self) -> None:
        self._rss = RssProbe()

    def _sinks(self) -> list[Any]:
        from termmon.telemetry import integrations

        sinks = []
        if self.settings.tensorboard:
            try:
                sinks.append(integrations.tensorboard_sink(self.run_dir))
            except ImportError:
                self._late_alerts.append(("tensorboard", "tensorboard is not installed; forwarding is off"))
        if self.settings.wandb:
            try:
                sinks.append(integrations.wandb_sink(self.run_name, self.config))
            except ImportError:
                self._late_alerts.append(("wandb", "wandb is not installed; forwarding is off"))
        return sinks

    def watch(
        self,
        model: torch.nn.Module,
        optimizer: torch.optim.Optimizer | None = None,
        *,
        holdout: tuple[torch.Tensor, torch.Tensor | None] | None = None,
        optimizer_hooks: bool = True,
    ) -> None:
        """Follow ``model`` (gradients, weights, updates) and ``optimizer`` (lr, grads at step time).

        ``holdout=(inputs, labels)``: a fixed batch whose predictions are logged at every epoch end
        (the first ``holdout_size`` rows). ``optimizer_hooks=False``: the caller reports the optimizer
        step itself through ``before_optimizer_step()``/``after_optimizer_step()`` (a framework whose
        ``optimizer.step`` runs the backward pass inside a closure has no gradients at the pre-hook).
        """
        if not self._active:
            return
        with self._lock:
            self._watch(model, optimizer, holdout, optimizer_hooks)

    def _watch(
        self,
        model: torch.nn.Module,
        optimizer: torch.optim.Optimizer | None,
        holdout: tuple[torch.Tensor, torch.Tensor | None] | None,
        optimizer_hooks: bool,
    ) -> None:
        try:
            self._model = model
            self._optimizer = optimizer
            self._named_params = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
            self._param_names = [n for n, _ in self._named_params]
            self._param_sizes = [(n, p.numel()) for n, p in self._named_params]
            if holdout is not None and self.settings.track_holdout_logits:
                inputs, labels = holdout
                size = self.settings.holdout_size
                self._holdout = (inputs[:size], None if labels is None else labels[:size])
            if self._rank == 0:
                self._watch_rows()
                if self._named_params:
                    self._param_stats = stats.ParamStats([p for _, p in self._named_params])
                if self.settings.track_weight_delta and self._named_params:
                    self._sentinels = stats.UpdateSentinels([p for _, p in self._named_params])
                    self._interval_base = self._sentinels.sample()
            if optimizer is not None and self._rank == 0 and optimizer_hooks:
                self._hooks.append(optimizer.register_step_pre_hook(self._before_optimizer_step))
            if self.settings.track_system and self._rank == 0:
                self._try("gpu_util", self._start_nvml)
            self._ensure_started()
        except Exception as exc:
            self._failed("watch", exc)

    def _watch_rows(self) -> None:
        if self._rows_hook is None and self._model is not None:
            self._rows_hook = self._model.register_forward_pre_hook(self._before_forward, with_kwargs=True)

    def _unwatch_rows(self) -> None:
        if self._rows_hook is not None:
            self._rows_hook.remove()
            self._rows_hook = None

    def _start_nvml(self) -> None:
        device = self._device()
        if device is not None and device.type == "cuda":
            index = device.index if device.index is not None else torch.cuda.current_device()
            self._nvml = NvmlSampler(index, self.settings.gpu_util_interval_s)

    def _device(self) -> torch.device | None:
        if self._named_params:
            return self._named_params[0][1].device
        return None

    def _ensure_started(self) -> None:
        if self._started or self._writer is None:
            return
        self._started = True
        record: dict[str, Any] = {
            "run_name": self.run_name,
            "config": self.config,
            "telemetry": asdict(self.settings),
            "log_every": self.log_every,
            "torch_version": torch.__version__,
            "host": socket.gethostname(),
            "pid": os.getpid(),
            "world_size": self._world,
        }
        if self._model is not None:
            params = list(self._model.parameters())
            trainable = sum(p.numel() for p in params if p.requires_grad)
            total = sum(p.numel() for p in params)
            device = self._device()
            record.update(
                model=type(self._model).__name__,
                total_params=total,
                trainable_params=trainable,
                frozen_params=total - trainable,
                device=str(device) if device is not None else None,
            )
        if self._optimizer is not None:
            record["optimizer"] = _optimizer_setup(self._optimizer)
        self._emit(EV_START, record)
        for feature, message in self._late_alerts:
            self.alert("telemetry", f"{feature}: {message}", severity="warning")
        self._late_alerts = []

    # --- the training loop ----------------------------------------------------------------------------------
    def step(
        self,
        loss: Any = None,
        *,
        batch_size: int | None = None,
        grad_norm: Any = None,
        labels: torch.Tensor | None = None,
        **metrics: Any,
    ) -> None:
        """Count one optimizer step; log every ``log_every`` steps.

        ``loss`` may be a tensor (no sync unless this is a log step). ``grad_norm``: pass the value
        ``clip_grad_norm_`` returned to log the pre-clip norm. ``labels``: the batch's class labels, for
        ``batch_stats/winner_{k}_pct``. Other keyword metrics (nested dicts flatten with ``/``) are held
        and written with the next log step.
        """
        if not self._active or "step" in self._off:
            return
        with self._lock:
            if self._closed:
                return
            try:
                self._step(loss, batch_size, grad_norm, labels, metrics)
            except Exception as exc:
                self._failed("step", exc)

    def _step(
        self,
        loss: Any,
        batch_size: int | None,
        grad_norm: Any,
        labels: torch.Tensor | None,
        metrics: dict[str, Any],
    ) -> None:
        # A non-log step runs only the lines up to the log check, and reads each attribute once: right
        # after backward and the optimizer step the caches are cold, and each line costs ~1 us.
        step = self.global_step = self.global_step + 1
        if self._window_t0 is None:
            self._window_t0 = time.perf_counter()
            self._window_step0 = step
        if isinstance(loss, torch.Tensor) and loss.ndim == 0:
            losses = self._losses
            if len(losses) >= LOSS_WINDOW:
                losses = self._losses = [torch.stack(losses).sum()]
            losses.append(loss.detach())
        elif loss is not None:
            self._loss_sum = self._loss_sum + (loss.detach() if isinstance(loss, torch.Tensor) else loss)
        if batch_size is None:
            batch_size, self._input_rows = self._input_rows, None
            if self._rank == 0:
                self._watch_rows()  # from the next step on, after a caller that gave sizes stops giving them
        elif self._rows_hook is not None:
            self._unwatch_rows()  # the caller says the batch size: the hook would only cost time
            self._input_rows = None
        if batch_size:
            self._window_samples += batch_size
        if metrics:
            self._hold(metrics)
        if self._log_due(step):
            self._last_log_step = step
            if self._world > 1:
                self._agree_on_control()
            if self._writer is not None:
                self._log_step(loss, grad_norm, labels)
            self._remove_post_hook()
        if self._poller is not None and self._poller.due():  # rank 0 only: no poller on the others
            self._poll_control()

    def _hold(self, metrics: dict[str, Any]) -> None:
        """Keep metrics for the next log step: data-sanity checks batch by batch, the rest by last value."""
        flat = flatten(metrics)
        checks = {k: v for k, v in flat.items() if is_sanity(k)}
        if checks:
            self._sanity.add(self.global_step, checks)
            flat = {k: v for k, v in flat.items() if not is_sanity(k)}
        self._pending_metrics.update(flat)

    def _before_forward(self, module: Any, args: Any, kwargs: Any) -> None:
        """The batch size for ``samples_per_sec`` when ``tm.step`` is not given one: the leading dimension
        of the model's first tensor input (shape is metadata: no device sync)."""
        if not module.training:
            return
        first = next((a for a in (*args, *kwargs.values()) if isinstance(a, torch.Tensor) and a.ndim), None)
        if first is not None:
            self._input_rows = int(first.shape[0])

    def _log_due(self, step: int) -> bool:
        if self._multiples:
            return step % self.log_every == 0
        return step - self._last_log_step >= self.log_every

    def before_optimizer_step(self) -> None:
        """After ``watch(..., optimizer_hooks=False)``: the gradients of the coming step are final."""
        if self._rank == 0:
            self._before_optimizer_step(None, (), {})

    def after_optimizer_step(self) -> None:
        """After ``watch(..., optimizer_hooks=False)``: the optimizer has updated the parameters."""
        if self._rank == 0:
            self._after_optimizer_step(None, (), {})

    def _before_optimizer_step(self, optimizer: Any, args: Any, kwargs: Any) -> None:
        """Grads are certain to exist here whatever the user does with ``zero_grad`` afterwards."""
        self._optimizer_steps += 1
        if not self._log_due(self.global_step + 1) or not self._active:
            return
        if self.settings.track_gradients and "gradients" not in self._off:
            self._try("gradients", self._capture_gradients)
        if self._sentinels is not None and "param_updates" not in self._off:
            self._try("param_updates", self._sentinels.capture)
            if optimizer is not None and self._post_hook is None:  # None: the caller reports the step
                self._post_hook = optimizer.register_step_post_hook(self._after_optimizer_step)

    def _remove_post_hook(self) -> None:
        if self._post_hook is not None:
            self._post_hook.remove()
            self._post_hook = None

    def _after_optimizer_step(self, optimizer: Any, args: Any, kwargs: Any) -> None:
        if self._sentinels is not None and self._log_due(self.global_step + 1) and self._active:
            self._try("param_updates", self._compare_sentinels)

    def _compare_sentinels(self) -> None:
        assert self._sentinels is not None
        self._update_change = self._sentinels.compare()

    def _compare_interval(self) -> None:
        """How far each tensor moved since the last log step, for loops whose optimizer did not step."""
        assert self._sentinels is not None
        now = self._sentinels.sample()
        if self._interval_base is not None and self._interval_base.shape == now.shape:
            self._update_change = self._sentinels.change(self._interval_base, now)
        self._interval_base = now

    def _capture_gradients(self) -> None:
        grads = [p.grad for _, p in self._named_params]  # .grad costs µs a read: once each
        present = [g for g in grads if g is not None]
        if len(present) == len(grads):
            self._grad_names = self._param_names
        else:
            self._grad_names = [
                n for (n, _), g in zip(self._named_params, grads, strict=True) if g is not None
            ]
        stats_of = self._param_stats
        self._grad_pack = stats_of.gradients(present) if present and stats_of is not None else None

    def _log_step(self, loss: Any, grad_norm: Any, labels: torch.Tensor | None) -> None:
        self._ensure_started()
        pack = _Pack()
        host: dict[str, Any] = {}
        if self._losses:
            pack.add("_losses", torch.stack(self._losses))
        loss_is_last = isinstance(loss, torch.Tensor) and loss.ndim == 0  # then _losses[-1] is train_loss
        if not loss_is_last:
            _put_value(pack, host, "train_loss", loss)
        _put_value(pack, host, "_loss_sum", self._loss_sum)
        _put_value(pack, host, "_grad_norm_given", grad_norm)
        # No optimizer step since the last log step (none watched, or step() never called): gradients are
        # read here, and the weights compared with the last log step's, so "gradients present, parameters
        # unchanged" shows.
        stepped = self._optimizer_steps - self._optimizer_steps_logged
        if self._grad_pack is None and self.settings.track_gradients and not stepped:
            self._try("gradients", self._capture_gradients)
        if self._grad_pack is not None:
            pack.add("_grads", self._grad_pack)
        if not stepped and self._sentinels is not None and "param_updates" not in self._off:
            self._try("param_updates", self._compare_interval)
        if self._update_change is not None:
            pack.add("_updates", self._update_change)
        if self._optimizer is not None:
            host[OPTIMIZER_STEPS] = stepped
        self._optimizer_steps_logged = self._optimizer_steps
        sanity_host = self._sanity.pack(pack.add) if self._sanity else None
        weights_due = (
            self.settings.track_per_layer_stats
            and self._logs_done % self.settings.per_layer_stats_every_logs == 0
        )
        if weights_due and self._named_params and "per_layer_stats" not in self._off:
            self._try("per_layer_stats", lambda: pack.add("_weights", self._weight_moments()))
        if labels is not None and self.settings.track_batch_stats and "batch_stats" not in self._off:
            self._try("batch_stats", lambda: pack.add("_labels", torch.bincount(labels.reshape(-1).long())))
        for name, value in self._pending_metrics.items():
            _put_value(pack, host, name, value)
        self._pending_metrics = {}

        values = pack.fetch()  # the one host transfer of this log step
        if sanity_host is not None:
            checked = self._sanity.reduce(values, sanity_host)
            host.update(checked.fields)
            if checked.first_bad is not None and checked.first_bad[0] < self.global_step:
                bad_step, fields = checked.first_bad  # the first bad batch, at its own step
                self._emit(EV_STEP, fields, step=bad_step, epoch=self.current_epoch)
        lr: dict[str, float] = {}
        if self.settings.track_learning_rates and self._optimizer is not None:
            lr = self._try("lr", lambda: _learning_rates(self._optimizer)) or {}
        raw = RawStep(
            records=self._step_records,
            step=self.global_step,
            epoch=self.current_epoch,
            time=time.time(),
            values=values,
            host=host,
            loss_is_last=loss_is_last,
            grad_names=self._grad_names,
            params=self._param_sizes,
            update_segments=None if self._sentinels is None else self._sentinels.segments,
            lr=lr,
            throughput=self._throughput(),
            system=self._system() if self.settings.track_system else {},
        )
        self._grad_pack = None
        self._update_change = None
        self._losses = []
        self._loss_sum = 0.0
        self._logs_done += 1
        assert self._writer is not None
        self._writer.put(raw)  # the record and its alerts are built on the writer thread
        if (
            self.settings.track_weight_snapshots
            and self.global_step % max(1, self.settings.weight_snapshot_every_n) == 0
        ):
            self._try("weight_snapshots", self._save_snapshot)

    def _weight_moments(self) -> torch.Tensor:
        assert self._param_stats is not None  # rank 0's, watching parameters: the only caller
        return self._param_stats.moments()

    def _throughput(self) -> dict[str, float]:
        now = time.perf_counter()
        steps = self.global_step - self._window_step0
        out = {}
        if self._window_t0 is not None and steps > 0:
            elapsed = now - self._window_t0
            out["sec_per_step"] = elapsed / steps
            if self._window_samples and elapsed > 0:
                out["samples_per_sec"] = self._window_samples / elapsed
        self._window_t0 = now
        self._window_step0 = self.global_step
        self._window_samples = 0
        return out

    def _system(self) -> dict[str, float]:
        """Memory is sampled every ``SYSTEM_SAMPLE_S`` and the last sample goes with each log step: reading
        /proc cost ~0.2 ms of a log step in a busy loop, and memory moves slowly."""
        now = time.monotonic()
        if now >= self._system_due:
            self._system_due = now + SYSTEM_SAMPLE_S
            sample: dict[str, float] = {}
            if self._rss is not None and "cpu_memory" not in self._off:
                self._try("cpu_memory", lambda: sample.update(self._rss.read() if self._rss else {}))
            device = self._device()
            if device is not None and device.type == "cuda" and "gpu_memory" not in self._off:
                self._try("gpu_memory", lambda: sample.update(cuda_memory(device)))
            self._system_sample = sample
        if self._nvml is None or "gpu_util" in self._off:
            return self._system_sample
        record = dict(self._system_sample)
        self._try("gpu_util", lambda: record.update(self._nvml.window() if self._nvml else {}))
        return record

    def _save_snapshot(self) -> None:
        if self._model is None:
            return
        state = {k: v.detach().to("cpu", copy=True) for k, v in self._model.state_dict().items()}
        folder = self.run_dir / WEIGHT_SNAPSHOTS_DIR
        folder.mkdir(parents=True, exist_ok=True)
        target = folder / weight_snapshot_name(self.current_epoch, self.global_step)
        tmp = target.with_suffix(".pt.tmp")
        torch.save(
            {"model_state_dict": state, "batch_idx": self.global_step, "epoch": self.current_epoch}, tmp
        )
        os.replace(tmp, target)

    # --- control.json ---------------------------------------------------------------------------------------
    def _poll_control(self) -> None:
        if self._poller is None or "control" in self._off:
            return
        try:
            request = self._poller.poll()
        except Exception as exc:
            self._failed("control", exc)
            return
        for problem in self._poller.problems:
            print(f"termmon: {self.run_dir}: {problem}", file=sys.stderr)
            self.alert("telemetry", problem, severity="warning")
        self._poller.problems.clear()
        if request is None:
            return
        if request.unknown_keys:
            self.alert(
                "info", f"control.json: ignoring unknown key(s) {list(request.unknown_keys)}", severity="info"
            )
        if self._world > 1:
            self._pending_control = request.log_every  # takes effect at the next log step, on every rank
        else:
            self._apply_log_every(request.log_every)

    def _apply_log_every(self, requested: int) -> None:
        old, new = self.log_every, clamp_log_every(requested)
        self.log_every = new
        if self._rank == 0:
            payload = {
                "key": "log_every",
                "old": old,
                "new": new,
                "requested": requested,
                "clamped": new != requested,
            }
            self._emit(EV_CONTROL_CHANGE, payload, step=self.global_step, epoch=self.current_epoch)

    def _agree_on_control(self) -> None:
        """Every rank reaches this at the same step; rank 0's pending request is broadcast and applied."""
        import torch.distributed as dist

        device = torch.device("cuda", torch.cuda.current_device()) if dist.get_backend() == "nccl" else None
        value = torch.tensor([self._pending_control or 0], dtype=torch.int64, device=device)
        dist.broadcast(value, src=0)
        requested = int(value.item())
        self._pending_control = None
        if requested:
            self._apply_log_every(requested)

    # --- epochs, checkpoints, alerts ------------------------------------------------------------------------
    def epoch(
        self,
        epoch: int,
        train: Mapping[str, Any] | None = None,
        test: Mapping[str, Any] | None = None,
        diagnostics: Mapping[str, Any] | None = None,
        **metrics: Any,
    ) -> None:
        """Close an epoch: an ``epoch`` record, a results.json history entry, and the per-epoch signals."""
        if not self._active or self._writer is None:
            self.current_epoch = epoch + 1
            return
        with self._lock:
            try:
                self._epoch(epoch, train, test, diagnostics, metrics)
            except Exception as exc:
                self._failed("epoch", exc)
            self.current_epoch = epoch + 1

    def _epoch(
        self,
        epoch: int,
        train: Mapping[str, Any] | None,
        test: Mapping[str, Any] | None,
        diagnostics: Mapping[str, Any] | None,
        metrics: Mapping[str, Any],
    ) -> None:
        self._ensure_started()
        self.current_epoch = epoch
        entry: dict[str, Any] = {"epoch": epoch, "train": _to_host(train or {}), "test": _to_host(test or {})}
        if diagnostics is None and self.settings.enable_diagnostics and self._model is not None:
            diagnostics = self._try("diagnostics", self._diagnostics)
        if diagnostics is not None:
            entry["diagnostics"] = _to_host(diagnostics)
        if self._holdout is not None and "holdout" not in self._off:
            holdout = self._try("holdout", self._holdout_predictions)
            if holdout:
                entry["holdout"] = holdout
        entry.update(_to_host(metrics))
        if self.settings.track_per_layer_stats and self._named_params and "per_layer_stats" not in self._off:
            self._try("per_layer_stats", self._write_layer_stats)
        self._history.append(entry)
        record = flatten({k: v for k, v in entry.items() if k != "epoch"})
        self._emit(EV_EPOCH, record, step=self.global_step, epoch=epoch)
        assert self._writer is not None
        self._writer.put(
            Results({"run_name": self.run_name, "config": self.config, "training_history": self._history})
        )
        self._check_blobs(entry.get("diagnostics"), epoch)

    def _write_layer_stats(self) -> None:
        assert self._writer is not None
        flat = self._weight_moments().reshape(-1).tolist()
        self._writer.put(layer_stats_rows(self.global_step, self.current_epoch, flat, self._param_sizes))

    def _diagnostics(self) -> dict[str, Any]:
        from termmon.diagnostics import compute_lightweight_blob_metrics

        assert self._model is not None
        return compute_lightweight_blob_metrics(self._model, n_samples=self.settings.diagnostic_sample_size)

    def _check_blobs(self, diagnostics: Any, epoch: int) -> None:
        if not isinstance(diagnostics, Mapping):
            return
        clusters = diagnostics.get("n_clusters_dbscan")
        if isinstance(clusters, int) and clusters >= 2 and self._episodes.first("blob_formed"):
            self.alert(
                "blob_formed",
                f"{clusters} weight clusters at epoch {epoch} (silhouette {diagnostics.get('silhouette_score')})",
                severity="info",
                metric="diagnostics/n_clusters_dbscan",
                value=clusters,
            )

    def _holdout_predictions(self) -> dict[str, float]:
        assert self._model is not None and self._holdout is not None and self._writer is not None
        inputs, labels = self._holdout
        was_training = self._model.training
        self._model.eval()
        try:
            with torch.no_grad():
                logits = self._model(inputs)
        finally:
            self._model.train(was_training)
        logits = logits.detach().float().cpu()
        if logits.ndim == 1 or logits.shape[-1] == 1:
            prob = torch.sigmoid(logits.reshape(-1))
            pred = (prob >= 0.5).long()
            conf = torch.where(pred == 1, prob, 1 - prob)
        else:
            probs = torch.softmax(logits.reshape(logits.shape[0], -1), dim=-1)
            conf, pred = probs.max(dim=-1)
        out = {"mean_confidence": float(conf.mean())}
        label_list: list[Any] = [None] * len(pred)
        if labels is not None:
            label_cpu = labels.detach().reshape(-1).cpu()
            out["accuracy"] = float((pred == label_cpu.long()).float().mean())
            label_list = label_cpu.tolist()
        rows = [
            (self.current_epoch, self.global_step, i, label_list[i], p, c)
            for i, (p, c) in enumerate(zip(pred.tolist(), conf.tolist(), strict=True))
        ]
        self._writer.put(CsvRows(HOLDOUT_CSV, HOLDOUT_COLUMNS, rows))
        return out

    def record(self, metrics: Mapping[str, Any]) -> None:
        """Metrics measured off the step cadence (an evaluation every ``eval_steps``): one ``step`` record
        at the current step, written now, without counting a step."""
        if not self._active or self._writer is None or not metrics:
            return
        try:
            self._ensure_started()
            self._emit(EV_STEP, flatten(_to_host(metrics)), step=self.global_step, epoch=self.current_epoch)
        except Exception as exc:
            self._failed("record", exc)

    def checkpoint(self, path: str | os.PathLike[str], **metrics: Any) -> None:
        """Record that a checkpoint was saved (the file itself is the user's)."""
        if not self._active or self._writer is None:
            return
        with self._lock:
            try:
                self._ensure_started()
                record = {"checkpoint_path": str(path), **flatten(_to_host(metrics))}
                self._emit(EV_CHECKPOINT, record, step=self.global_step, epoch=self.current_epoch)
            except Exception as exc:
                self._failed("checkpoint", exc)

    def alert(self, kind: str, message: str, severity: str = "warning", **fields: Any) -> None:
        """An ``alert`` record the monitor shows at once (``severity``: info, warning or critical)."""
        if not self._active or self._writer is None:
            return
        with self._lock:
            try:
                self._ensure_started()
                if severity not in SEVERITIES:
                    severity = "warning"
                record = {"kind": kind, "severity": severity, "message": message, **_to_host(fields)}
                self._emit(EV_ALERT, record, step=self.global_step, epoch=self.current_epoch)
            except Exception as exc:
                self._failed("alert", exc)

    # --- shutdown -------------------------------------------------------------------------------------------
    def close(
        self, status: str = END_FINISHED, error: str | None = None, *, signal: str | None = None
    ) -> None:
        """Write ``end``, flush, and stop the threads; safe to call twice.

        ``status``: finished, crashed or killed; ``signal`` (e.g. ``"SIGTERM"``) goes with killed, for a
        trainer that handles the signal itself and closes the run on its way out.
        """
        locked = self._lock.acquire(timeout=CLOSE_LOCK_SECONDS)
        try:
            self._close(status, error, signal)
        finally:
            if locked:
                self._lock.release()

    def _close(self, status: str, error: str | None, signal: str | None) -> None:
        if self._closed:
            return
        self._closed = True
        atexit.unregister(self._at_exit)
        signals.unwatch(self)
        for hook in self._hooks:
            hook.remove()
        self._hooks = []
        self._remove_post_hook()
        self._unwatch_rows()
        if self._nvml is not None:
            self._nvml.close()
        if not self._active or self._writer is None:
            return
        try:
            self._ensure_started()
            record: dict[str, Any] = {"status": status, "error": error}
            if signal is not None:
                record["signal"] = signal
            if self._writer.dropped:
                record["dropped_records"] = self._writer.dropped
            self._emit(EV_END, record, step=self.global_step, epoch=self.current_epoch)
        finally:
            self._writer.close()

    def _at_exit(self) -> None:
        """A script that never called ``close()``: record how it ended (an uncaught exception is a crash)."""
        self._close_for(getattr(sys, "last_value", None), at_exit=True)

    def _close_for(self, exc: BaseException | None, *, at_exit: bool = False) -> None:
        """The ``end`` record for a run left by ``exc`` (None: normally): Ctrl-C and an exit from the
        trainer's own signal handler are ``killed`` with the signal, other exceptions ``crashed``."""
        signal = "SIGINT" if isinstance(exc, KeyboardInterrupt) else self._signal
        error = None if exc is None else f"{type(exc).__name__}: {exc}"
        if signal is not None and (exc is not None or at_exit):
            self.close(status=END_KILLED, error=error, signal=signal)
        elif exc is not None:
            self.close(status=END_CRASHED, error=error)
        else:
            self.close()

    def _stopped_by_signal(self, name: str, *, final: bool) -> None:
        """From the signal handler (signals.py): ``final`` when the signal will now end the process."""
        if final:
            self.close(status=END_KILLED, signal=name)
        else:
            self._signal = name

    def __enter__(self) -> Telemetry:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        try:
            self._close_for(exc)
        except Exception as close_exc:  # only the user's own exception may leave the block
            if self.settings.strict:
                raise
            print(f"termmon: closing the run failed: {close_exc}", file=sys.stderr)

    # --- plumbing -------------------------------------------------------------------------------------------
    def _emit(self, event: str, payload: Mapping[str, Any], **keys: int) -> None:
        if self._writer is None:
            return
        record: dict[str, Any] = {"event": event, "time": time.time(), **keys}
        record.update(payload)
        self._writer.put(record)

    def _try(self, feature: str, fn: Any) -> Any:
        """Run an optional feature; on failure switch it off with one alert."""
        if feature in self._off:
            return None
        try:
            return fn()
        except Exception as exc:
            self._failed(feature, exc)
            return None

    def _failed(self, feature: str, exc: Exception) -> None:
        if self.settings.strict:
            raise exc
        if feature in self._off:
            return
        self._off.add(feature)
        self.alert(
            "telemetry",
            f"{feature} failed ({type(exc).__name__}: {exc}); switched off for the rest of the run",
            severity="warning",
        )


def _dist_rank_world() -> tuple[int, int]:
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def _put_value(pack: _Pack, host: dict[str, Any], name: str, value: Any) -> None:
    """Real scalar tensors join the single transfer; anything else is converted on the host."""
    if value is None:
        return
    if isinstance(value, torch.Tensor) and value.numel() == 1 and not value.dtype.is_complex:
        pack.add(name, value)
    else:
        host[name] = _plain(value)


def _plain(value: Any) -> Any:
    """A value json can write: tensors and numpy scalars become Python numbers or lists; others pass as they
    are (the writer falls back to ``repr``)."""
    if isinstance(value, torch.Tensor):
        value = value.detach().cpu()
        return value.item() if value.numel() == 1 else value.tolist()
    item = getattr(value, "item", None)  # numpy scalars
    if callable(item) and getattr(value, "ndim", 1) == 0:
        return item()
    return value


def _to_host(obj: Mapping[str, Any]) -> dict[str, Any]:
    return {str(k): _to_host(v) if isinstance(v, Mapping) else _plain(v) for k, v in obj.items()}


def _optimizer_setup(optimizer: torch.optim.Optimizer) -> dict[str, Any]:
    groups = []
    for group in optimizer.param_groups:
        entry = {k: _plain(v) for k, v in group.items() if k != "params"}
        entry["num_params"] = sum(p.numel() for p in group["params"])
        groups.append(entry)
    return {"class": type(optimizer).__name__, "param_groups": groups}


def _learning_rates(optimizer: torch.optim.Optimizer | None) -> dict[str, float]:
    if optimizer is None:
        return {}
    lrs = [(str(g.get("name", i)), float(g["lr"])) for i, g in enumerate(optimizer.param_groups)]
    out = {"lr": lrs[0][1]}
    if len(lrs) > 1:
        out.update({f"lr/{name}": lr for name, lr in lrs})
    return out
