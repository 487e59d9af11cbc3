"""Telemetry settings under the option names the seeds' configs already use.

A training config that grew a ``telemetry:`` section for one of the seed projects works unchanged:
``collect_every_n`` is read as ``log_every``, seed 001's ``training.enable_diagnostics`` and
``training.diagnostic_sample_size`` are picked up, and keys this logger does not know are reported once
rather than failing a run over a config file.
"""

from __future__ import annotations

import json
import os
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

#: Seed spellings that mean one of our fields.
ALIASES = {"collect_every_n": "log_every"}


@dataclass(frozen=True)
class TelemetryConfig:
    """What the logger records and how often; defaults keep default telemetry under ~3 % overhead."""

    enabled: bool = True
    log_dir: str = "./logs"
    run_name: str | None = None
    log_every: int = 10
    track_gradients: bool = True
    track_weight_delta: bool = True
    track_learning_rates: bool = True
    track_batch_stats: bool = True
    track_holdout_logits: bool = True
    holdout_size: int = 50
    track_per_layer_stats: bool = True
    #: Per-layer weight stats cost ~15 ms per 10 M params on CPU, so they run every this many log steps.
    per_layer_stats_every_logs: int = 5
    track_system: bool = True
    track_weight_snapshots: bool = False
    weight_snapshot_every_n: int = 500
    enable_diagnostics: bool = False
    diagnostic_sample_size: int = 5000
    tensorboard: bool = False
    wandb: bool = False
    #: Log at steps that are multiples of ``log_every`` (the rule of HF ``logging_steps`` and Lightning
    #: ``log_every_n_steps``) rather than every ``log_every`` steps since the last log: a framework
    #: integration needs termmon's log steps to be the framework's own.
    log_on_multiples: bool = False
    #: Seconds between cheap ``os.stat`` checks of control.json.
    control_poll_s: float = 2.0
    #: Seconds between NVML utilisation samples (off-thread).
    gpu_util_interval_s: float = 1.0
    #: Records the writer thread may hold before new ones are dropped (and counted).
    queue_size: int = 10_000
    #: Re-raise telemetry failures instead of switching the feature off (for tests of the logger itself).
    strict: bool = False

    def with_options(self, **options: Any) -> TelemetryConfig:
        """A copy with seed-named options applied; unknown names are reported once, not fatal."""
        known = {f.name for f in fields(self)}
        updates: dict[str, Any] = {}
        unknown: list[str] = []
        for key, value in options.items():
            name = ALIASES.get(key, key)
            if name in known:
                updates[name] = value
            else:
                unknown.append(key)
        if unknown:
            warnings.warn(f"termmon telemetry: ignoring unknown option(s) {sorted(unknown)}", stacklevel=3)
        cfg = replace(self, **updates)
        if cfg.log_every < 1:
            raise ValueError(f"termmon telemetry: log_every must be >= 1, got {cfg.log_every}")
        if cfg.run_name is not None:
            check_run_name(cfg.run_name)
        return cfg

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TelemetryConfig:
        """Read a whole experiment config (its ``telemetry`` section) or the section itself."""
        section = data.get("telemetry", data)
        if isinstance(section, bool):
            section = {"enabled": section}
        if not isinstance(section, Mapping):
            raise ValueError("termmon telemetry: the 'telemetry' section must be a mapping")
        options = dict(section)
        training = data.get("training")
        if isinstance(training, Mapping):
            for key in ("enable_diagnostics", "diagnostic_sample_size"):
                if key in training and key not in options:
                    options[key] = training[key]
        return cls().with_options(**options)

    @classmethod
    def from_file(cls, path: str | os.PathLike[str]) -> TelemetryConfig:
        """YAML (``.yaml``/``.yml``, needs PyYAML) or JSON."""
        return cls.from_dict(load_config_file(path))


def check_run_name(name: object) -> None:
    """A run name is one directory inside ``log_dir``: ``"../x"``, ``"/tmp/x"`` or ``"a/b"`` would write
    somewhere the user did not ask for (and where the monitor watching ``log_dir`` never looks)."""
    separators = {"/", "\\"} | ({os.altsep} if os.altsep else set())
    if (
        not isinstance(name, str)
        or name.strip() in ("", ".", "..")
        or "\0" in name
        or any(sep in name for sep in separators)
        or os.path.isabs(name)
    ):
        raise ValueError(
            f"termmon telemetry: run_name must be a single directory name inside log_dir "
            f"(no path separators, not '.' or '..'), got {name!r}"
        )


def load_config_file(path: str | os.PathLike[str]) -> dict[str, Any]:
    """A config file as a dict; YAML is imported only when a YAML file is given."""
    path = Path(path)
    text = path.read_text(encoding="utf-8")
    if path.suffix.lower() in (".yaml", ".yml"):
        import yaml

        data = yaml.safe_load(text)
    else:
        data = json.loads(text)
    if not isinstance(data, dict):
        raise ValueError(f"termmon telemetry: {path}: expected a mapping at the top level")
    return data
