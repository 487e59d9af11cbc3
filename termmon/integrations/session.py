"""What both framework callbacks share: a ``Telemetry`` driven by a framework's own step counter.

A framework decides its log steps itself (HF ``logging_steps``, Lightning ``log_every_n_steps``, both "steps
that are multiples of N") and hands its metrics over only *after* the step has ended. So the session:

- runs ``Telemetry`` with ``log_on_multiples`` and keeps its counter equal to the framework's, so termmon's
  log steps are the framework's log steps (and, under DDP, the same step on every rank);
- holds a log step open until the framework's metrics for it arrive (``complete``), and closes it with what it
  has if they never do (``flush``, at the next step, epoch end or train end);
- reports a ``log_every`` change from control.json (already agreed across ranks by Telemetry) to the callback,
  which writes it into the framework, so the framework's own logging follows the monitor's ``+``/``-``;
- maps epoch-level metrics to termmon's ``train/...`` and ``test/...`` names by role.

Nothing here imports a framework; every entry point is guarded as Telemetry's are.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

import torch

from termmon.telemetry.logger import Telemetry

F = TypeVar("F", bound=Callable[..., Any])


def never_raises(fn: F) -> F:
    """A callback hook that never raises into training: the first failure switches the callback off.

    The callback (either framework's) keeps an ``_off`` flag and reports through ``_failed(hook, exc)``.
    """

    @functools.wraps(fn)
    def guarded(self: Any, *args: Any, **kwargs: Any) -> Any:
        if self._off:
            return None
        try:
            return fn(self, *args, **kwargs)
        except Exception as exc:
            self._failed(fn.__name__, exc)
            return None

    return guarded  # type: ignore[return-value]


#: Name prefixes that mark an evaluation metric (HF ``eval_``, Lightning users' ``val_``/``val/`` ...).
EVAL_PREFIXES = ("eval", "val", "valid", "validation", "test")
TRAIN_PREFIXES = ("train",)
#: Lightning's suffixes for a value logged with both ``on_step`` and ``on_epoch``.
EPOCH_SUFFIXES = ("_epoch",)
#: ``Telemetry.step`` arguments that a framework metric of the same name must not collide with.
_STEP_ARGUMENTS = frozenset({"loss", "batch_size", "grad_norm", "labels"})


@dataclass
class _OpenStep:
    """A log step whose record waits for the framework's metrics."""

    step: int
    loss: Any = None
    batch_size: int | None = None
    metrics: dict[str, Any] = field(default_factory=dict)


class FrameworkSession:
    """One training run of a framework, written by one ``Telemetry`` (see the module docstring)."""

    def __init__(self, telemetry: Telemetry, on_log_every: Callable[[int], None]) -> None:
        self.tm = telemetry
        self._on_log_every = on_log_every
        self._known_log_every = telemetry.log_every
        self._open: _OpenStep | None = None
        self._broken = False

    def is_log_step(self, step: int) -> bool:
        """Whether the framework's optimizer step ``step`` is a termmon log step (same rule as the framework)."""
        return step % self.tm.log_every == 0

    def step_ended(self, step: int, loss: Any = None, batch_size: int | None = None) -> bool:
        """Optimizer step ``step`` is over: count it now, or hold it open when it is a log step.

        ``loss`` may be a device tensor: Telemetry adds it on the device and reads it only at a log step.
        """
        self.flush()
        if self.is_log_step(step):
            self._open = _OpenStep(step, loss, batch_size)
            return True
        self._count(step, loss=loss, batch_size=batch_size)
        return False

    def complete(
        self, step: int, loss: Any = None, grad_norm: Any = None, metrics: Mapping[str, Any] | None = None
    ) -> bool:
        """The framework's metrics for log step ``step``; False when no log step is open for it."""
        if self._open is None or self._open.step != step:
            return False
        held, self._open = self._open, None
        held.metrics.update(metrics or {})
        self._count(
            held.step,
            loss=loss if loss is not None else held.loss,
            grad_norm=grad_norm,
            batch_size=held.batch_size,
            metrics=held.metrics,
        )
        return True

    def flush(self) -> None:
        """Write a log step still held open with what it has (the framework logged nothing for it)."""
        if self._open is not None:
            held, self._open = self._open, None
            self._count(held.step, loss=held.loss, batch_size=held.batch_size, metrics=held.metrics)

    def _count(
        self,
        step: int,
        *,
        loss: Any = None,
        grad_norm: Any = None,
        batch_size: int | None = None,
        metrics: Mapping[str, Any] | None = None,
    ) -> None:
        extra = {k: v for k, v in (metrics or {}).items() if k not in _STEP_ARGUMENTS}
        self.tm.global_step = step - 1  # Telemetry counts this step: its counter is the framework's
        self.tm.step(loss, batch_size=batch_size, grad_norm=grad_norm, **extra)
        if self.tm.log_every != self._known_log_every:
            self._known_log_every = self.tm.log_every
            self.guarded("control", lambda: self._on_log_every(self.tm.log_every))

    def guarded(self, feature: str, fn: Callable[[], Any]) -> Any:
        """Run framework-side work (writing the new interval into the trainer) that must never raise into
        training: the first failure stops it for the run, with one alert (Telemetry's own rule)."""
        if self._broken:
            return None
        try:
            return fn()
        except Exception as exc:
            if self.tm.settings.strict:
                raise
            self._broken = True  # one alert, then the integration stays out of the way
            self.tm.alert(
                "telemetry",
                f"{feature} failed ({type(exc).__name__}: {exc}); the integration is switched off",
                severity="warning",
            )
            print(f"termmon: {feature} failed ({type(exc).__name__}: {exc}); switched off", file=sys.stderr)
            return None

    def close(self, status: str = "finished", error: str | None = None) -> None:
        if status == "finished":
            self.flush()
        self._open = None
        self.tm.close(status=status, error=error)


def split_by_role(metrics: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """``(train, test)`` sections of an epoch record: ``eval_loss``/``val_loss``/``val/acc`` -> test ``loss``/
    ``acc``; ``train_loss``/``loss_epoch`` -> train ``loss``. Names with no role prefix are training values."""
    train: dict[str, Any] = {}
    test: dict[str, Any] = {}
    for name, value in metrics.items():
        if not _is_number(value):
            continue
        base = name
        for suffix in EPOCH_SUFFIXES:
            if base.endswith(suffix):
                base = base[: -len(suffix)]
        role, rest = _strip_prefix(base, EVAL_PREFIXES)
        if role:
            test[rest] = value
            continue
        _, rest = _strip_prefix(base, TRAIN_PREFIXES)
        train[rest] = value
    return train, test


def _strip_prefix(name: str, prefixes: tuple[str, ...]) -> tuple[str | None, str]:
    for prefix in prefixes:
        for sep in ("_", "/", "."):
            head = prefix + sep
            if name.startswith(head) and len(name) > len(head):
                return prefix, name[len(head) :]
    return None, name


def _is_number(value: Any) -> bool:
    if isinstance(value, torch.Tensor):
        return value.numel() == 1
    return isinstance(value, int | float) and not isinstance(value, bool)


def batch_length(batch: Any) -> int | None:
    """Samples in a batch: the first dimension of its first tensor (tuple, list or dict batches)."""
    if isinstance(batch, torch.Tensor):
        return int(batch.shape[0]) if batch.ndim else None
    if isinstance(batch, Mapping):
        batch = list(batch.values())
    if isinstance(batch, list | tuple):
        for item in batch:
            if isinstance(item, torch.Tensor) and item.ndim:
                return int(item.shape[0])
    return None
