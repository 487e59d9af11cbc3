"""Which metric plays which part in a run: the one registry of metric names by role.

termmon's logger, the seed formats and every library termmon reads spell the same quantity differently:
the training loss is ``train_loss`` (termmon, seed 002), ``train/loss`` (an epoch record, HF's event
files), ``loss`` (HF's trainer_state.json, Keras), ``train_loss_step`` (Lightning); the learning rate is
``lr``, ``learning_rate``, ``train/learning_rate`` or ``lr-SGD``. Alerts, panels, the run picker, the
summary table and report all ask this module, so a run that logs plain ``loss`` is treated the same
everywhere. Names shown to the user stay as the library wrote them: a role only says which to pick.

Each role lists exact names in order of preference, then a pattern for the spellings no list can hold
(``lr-<Optimizer>``, ``*/eval_loss``). A new spelling is one entry here. This module imports only the
standard library, so the logger side may use it too.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum
from typing import Final


class Role(StrEnum):
    TRAIN_LOSS = "train_loss"
    EVAL_LOSS = "eval_loss"
    TRAIN_ACCURACY = "train_accuracy"
    EVAL_ACCURACY = "eval_accuracy"
    LR = "lr"
    GRAD_NORM = "grad_norm"
    THROUGHPUT = "throughput"
    GPU_MEM = "gpu_mem"
    GPU_UTIL = "gpu_util"
    EPOCH = "epoch"


@dataclass(frozen=True)
class RoleSpec:
    """How a role is recognised and shown. ``names``: exact names, best first; ``pattern``: a fallback
    for spellings that vary (matched against the whole name); ``title``: the panel title."""

    role: Role
    title: str
    names: tuple[str, ...]
    pattern: re.Pattern[str] | None = None


def _pattern(regex: str) -> re.Pattern[str]:
    return re.compile(regex, re.IGNORECASE)


#: Training-side prefixes and suffixes that several libraries put around a bare name.
_EVAL = r"(?:test|val|valid|validation|eval|evaluation)"

ROLES: Final[tuple[RoleSpec, ...]] = (
    RoleSpec(
        Role.TRAIN_LOSS,
        "loss",
        (
            "train_loss",  # termmon's step records, seed 002, seed 004 (mapped)
            "loss",  # HF trainer_state.json, Keras, plain scripts
            "train/loss",  # termmon's epoch records, seed 001, HF's event files
            "loss/total",
            "train_loss_step",  # Lightning's on_step=True, on_epoch=True pair
            "train_loss_epoch",
            "training_loss",
            "loss/train",
            "Loss/train",
        ),
        _pattern(r"(?:train(?:ing)?[/_])?loss(?:[/_](?:step|epoch))?|.*[/_]train(?:ing)?_loss"),
    ),
    RoleSpec(
        Role.EVAL_LOSS,
        "eval loss",
        (
            "test/loss",
            "val/loss",
            "valid/loss",
            "validation/loss",
            "eval/loss",
            "test_loss",
            "val_loss",
            "eval_loss",
            "val_loss_epoch",
            "validation_loss",
            "loss/val",
            "loss/test",
            "Loss/test",
            "Loss/val",
        ),
        _pattern(rf"{_EVAL}[/_]loss(?:[/_](?:step|epoch))?|loss[/_]{_EVAL}|.*[/_]{_EVAL}_loss"),
    ),
    RoleSpec(
        Role.TRAIN_ACCURACY,
        "accuracy",
        ("train_accuracy", "train_acc", "accuracy", "train/accuracy", "train/acc", "acc"),
        _pattern(r"train(?:ing)?[/_]acc(?:uracy)?(?:[/_](?:step|epoch))?"),
    ),
    RoleSpec(
        Role.EVAL_ACCURACY,
        "eval accuracy",
        ("test/accuracy", "val/accuracy", "eval/accuracy", "test_accuracy", "val_accuracy", "val_acc"),
        _pattern(rf"{_EVAL}[/_]acc(?:uracy)?(?:[/_](?:step|epoch))?"),
    ),
    RoleSpec(
        Role.LR,
        "learning rate",
        ("lr", "learning_rate", "train/learning_rate", "train/lr", "optimizer/lr"),
        _pattern(r"lr-[A-Za-z0-9_]+(?:/pg\d+)?|(?:.*/)?(?:lr|learning_rate)(?:[/_]group_?\d+)?"),
    ),
    RoleSpec(
        Role.GRAD_NORM,
        "grad norm",
        ("grad_norm", "gradients/global/total_norm", "train/grad_norm", "gradient_norm", "grad_norm/total"),
        _pattern(r"(?:.*/)?grad(?:ient)?_norm"),
    ),
    RoleSpec(
        Role.THROUGHPUT,
        "throughput",
        (
            "samples_per_sec",
            "train/samples_per_second",
            "train_samples_per_second",
            "tokens_per_sec",
            "throughput",
        ),
        _pattern(r"(?:.*/)?(?:samples|tokens|examples|items)_per_s(?:ec(?:ond)?)?"),
    ),
    RoleSpec(Role.GPU_MEM, "GPU memory (GB)", ("gpu_mem_allocated", "gpu_mem_reserved")),
    RoleSpec(Role.GPU_UTIL, "GPU utilisation (%)", ("gpu_util",)),
    RoleSpec(Role.EPOCH, "epoch", ("epoch", "train/epoch")),
)

_BY_ROLE: Final = {spec.role: spec for spec in ROLES}
# A name matched by an earlier role's exact list never falls to a later role's pattern (``loss/val`` is an
# eval loss, though the train pattern would not have it anyway): exact lists are checked first, all of them.
_EXACT: Final = {name: spec.role for spec in reversed(ROLES) for name in spec.names}

#: Loss-like names: the training and evaluation losses above, and any ``*_loss``, ``*/loss``, ``loss/*``.
LOSS_LIKE: Final = _pattern(r"(^|.*/)loss(/.*)?$|.*_loss(?:_step|_epoch)?$")


def spec(role: Role) -> RoleSpec:
    return _BY_ROLE[role]


@functools.lru_cache(maxsize=8192)
def role_of(name: str) -> Role | None:
    """The role a metric name plays, or None for a metric with no special part.

    Cached: detectors and panels ask about every metric of every run on each refresh, and a run's names
    are few and fixed, so the patterns are matched once per name rather than once per refresh."""
    exact = _EXACT.get(name)
    if exact is not None:
        return exact
    for entry in ROLES:
        if entry.pattern is not None and entry.pattern.fullmatch(name):
            return entry.role
    return None


def names_for(role: Role, present: Iterable[str]) -> list[str]:
    """The names among ``present`` that play ``role``: exact names in the registry's order of preference,
    then pattern matches in the order given."""
    entry = _BY_ROLE[role]
    present = list(present)
    have = set(present)
    exact = [name for name in entry.names if name in have]
    listed = set(entry.names)
    matched = [name for name in present if name not in listed and role_of(name) == role]
    return exact + matched


def first(role: Role, present: Iterable[str]) -> str | None:
    """The preferred name for ``role`` among ``present``, or None."""
    found = names_for(role, present)
    return found[0] if found else None


def is_loss_like(name: str) -> bool:
    """Watched for NaN/Inf as a loss: any loss, training or evaluation, however the library spells it."""
    return LOSS_LIKE.fullmatch(name) is not None or role_of(name) in (Role.TRAIN_LOSS, Role.EVAL_LOSS)
