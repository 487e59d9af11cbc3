"""Detector thresholds, their defaults, and the ``[alerts]`` table of the user's TOML config file.

Every threshold lives here so that docs/alerts.md, the engine and the validation read one definition.
A typo in a config file must not silently leave a detector at its default, so unknown detectors and
keys are errors that name the file, the key and what is allowed.
"""

from __future__ import annotations

import math
import os
import tomllib
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from termmon.errors import UsageError
from termmon.model.run import STALL_INTERVALS, STALL_MIN_SECONDS
from termmon.roles import Role, spec

#: The gradient norms the gradient detectors watch unless a config names others.
GRAD_NORM_METRICS = spec(Role.GRAD_NORM).names


def _num(default: float, lo: float = 0.0, hi: float = math.inf, *, above: bool = False) -> Any:
    """A float setting in [lo, hi] (or (lo, hi] with ``above``)."""
    return field(default=default, metadata={"lo": lo, "hi": hi, "above": above})


def _count(default: int, lo: int = 1) -> Any:
    return field(default=default, metadata={"lo": lo, "hi": math.inf, "above": False})


def _names(default: tuple[str, ...]) -> Any:
    return field(default=default)


@dataclass(frozen=True)
class NanInfConfig:
    enabled: bool = True
    rearm_points: int = _count(10)


@dataclass(frozen=True)
class ExplodingGradientsConfig:
    enabled: bool = True
    abs_threshold: float = _num(1000.0, above=True)
    ratio: float = _num(50.0, 1.0, above=True)
    window: int = _count(100, 2)
    min_history: int = _count(20)
    rearm_points: int = _count(10)
    metrics: tuple[str, ...] = _names(GRAD_NORM_METRICS)


@dataclass(frozen=True)
class VanishingGradientsConfig:
    enabled: bool = True
    threshold: float = _num(1e-3, above=True)
    consecutive: int = _count(5)
    metrics: tuple[str, ...] = _names(GRAD_NORM_METRICS)


@dataclass(frozen=True)
class NoParamUpdatesConfig:
    enabled: bool = True
    consecutive: int = _count(1)


@dataclass(frozen=True)
class LossPlateauConfig:
    enabled: bool = True
    warmup_points: int = _count(200, 0)
    min_window: int = _count(50, 2)
    max_window: int = _count(10_000, 2)
    min_rel_change: float = _num(0.01, 0.0, 1.0)
    z_score: float = _num(2.0)
    max_pace_ratio: float = _num(0.05, 0.0, 1.0)
    consecutive: int = _count(20)


@dataclass(frozen=True)
class OverfittingConfig:
    enabled: bool = True
    consecutive: int = _count(3)
    min_rise: float = _num(0.02)


@dataclass(frozen=True)
class LowGpuUtilConfig:
    enabled: bool = True
    threshold: float = _num(30.0, 0.0, 100.0, above=True)
    consecutive: int = _count(20)
    warmup_points: int = _count(10, 0)


@dataclass(frozen=True)
class ModelCollapseConfig:
    enabled: bool = True
    max_token_ratio: float = _num(0.7, 0.0, 1.0)
    min_unique_tokens: int = _count(10)
    min_total_tokens: int = _count(50)
    max_eos_ratio: float = _num(0.8, 0.0, 1.0)
    rearm_points: int = _count(3)


@dataclass(frozen=True)
class LabelOutOfRangeConfig:
    enabled: bool = True


@dataclass(frozen=True)
class StalledConfig:
    enabled: bool = True
    min_seconds: float = _num(STALL_MIN_SECONDS, above=True)
    intervals: float = _num(STALL_INTERVALS, above=True)


@dataclass(frozen=True)
class DiagnosticsConfig:
    enabled: bool = True
    silhouette: float = _num(0.5, -1.0, 1.0)


@dataclass(frozen=True)
class ProducerConfig:
    enabled: bool = True
    dedup_steps: int = _count(100, 0)


@dataclass(frozen=True)
class AlertConfig:
    """All detector settings; ``AlertConfig()`` is the documented defaults."""

    nan_inf: NanInfConfig = field(default_factory=NanInfConfig)
    exploding_gradients: ExplodingGradientsConfig = field(default_factory=ExplodingGradientsConfig)
    vanishing_gradients: VanishingGradientsConfig = field(default_factory=VanishingGradientsConfig)
    no_param_updates: NoParamUpdatesConfig = field(default_factory=NoParamUpdatesConfig)
    loss_plateau: LossPlateauConfig = field(default_factory=LossPlateauConfig)
    overfitting: OverfittingConfig = field(default_factory=OverfittingConfig)
    low_gpu_util: LowGpuUtilConfig = field(default_factory=LowGpuUtilConfig)
    model_collapse: ModelCollapseConfig = field(default_factory=ModelCollapseConfig)
    label_out_of_range: LabelOutOfRangeConfig = field(default_factory=LabelOutOfRangeConfig)
    stalled: StalledConfig = field(default_factory=StalledConfig)
    diagnostics: DiagnosticsConfig = field(default_factory=DiagnosticsConfig)
    producer: ProducerConfig = field(default_factory=ProducerConfig)


def default_config_path() -> Path:
    """``$XDG_CONFIG_HOME/termmon/config.toml``, else ``~/.config/termmon/config.toml``."""
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "termmon" / "config.toml"


def load_alert_config(path: Path | None = None) -> AlertConfig:
    """The ``[alerts]`` settings of ``path`` (an explicit ``--config``: it must exist), or of the per-user
    default file when it exists, else the defaults. Other top-level tables belong to other features and
    are left alone. Raises UsageError with one clear line for anything wrong in the file.
    """
    if path is None:
        path = default_config_path()
        if not path.is_file():
            return AlertConfig()
    elif not path.is_file():
        raise UsageError(f"config file not found: {path}")
    try:
        document = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"cannot read config file {path}: {exc}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise UsageError(f"{path}: invalid TOML: {exc}") from exc
    return parse_alert_config(document.get("alerts", {}), str(path))


def parse_alert_config(table: object, origin: str = "config") -> AlertConfig:
    """Validate an ``[alerts]`` table (already parsed) into an AlertConfig."""
    if not isinstance(table, dict):
        raise UsageError(f"{origin}: 'alerts' must be a table")
    config = AlertConfig()
    detectors = {f.name for f in fields(AlertConfig)}
    changes: dict[str, Any] = {}
    for name, settings in table.items():
        if name not in detectors:
            raise UsageError(
                f"{origin}: unknown detector 'alerts.{name}' (allowed: {', '.join(sorted(detectors))})"
            )
        if not isinstance(settings, dict):
            raise UsageError(f"{origin}: 'alerts.{name}' must be a table")
        changes[name] = _parse_section(getattr(config, name), settings, f"{origin}: 'alerts.{name}", name)
    return replace(config, **changes)


def _parse_section(default: Any, settings: dict[str, Any], where: str, name: str) -> Any:
    allowed = {f.name: f for f in fields(default)}
    values: dict[str, Any] = {}
    for key, value in settings.items():
        spec = allowed.get(key)
        if spec is None:
            raise UsageError(f"{where}.{key}': unknown key (allowed: {', '.join(sorted(allowed))})")
        values[key] = _check(getattr(default, key), value, spec.metadata, f"{where}.{key}'")
    section = replace(default, **values)
    if name == "loss_plateau" and section.min_window > section.max_window:
        raise UsageError(
            f"{where}': min_window ({section.min_window}) exceeds max_window ({section.max_window})"
        )
    return section


def _check(default: object, value: object, limits: Any, where: str) -> object:
    if isinstance(default, bool):
        if not isinstance(value, bool):
            raise UsageError(f"{where} must be true or false, not {value!r}")
        return value
    if isinstance(default, tuple):
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise UsageError(f"{where} must be a list of metric names, not {value!r}")
        return tuple(value)
    if isinstance(default, int):
        if isinstance(value, bool) or not isinstance(value, int):
            raise UsageError(f"{where} must be a whole number, not {value!r}")
    elif isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise UsageError(f"{where} must be a finite number, not {value!r}")
    lo, hi, above = limits["lo"], limits["hi"], limits["above"]
    if value < lo or (above and value == lo) or value > hi:
        low = f"> {lo:g}" if above else f">= {lo:g}"
        bounds = low if math.isinf(hi) else f"{low} and <= {hi:g}"
        raise UsageError(f"{where} must be {bounds}, not {value!r}")
    return float(value) if isinstance(default, float) else value
