"""The run-directory format: file names, event and metric names, and the control.json protocol.

This module is the only thing the producer (``termmon.telemetry``) and the reader side (ingest, model,
views) share, so it imports nothing heavier than the standard library. docs/formats.md is the
user-facing description of the same contract.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping
from typing import Any, Final

# --- files in a run directory -------------------------------------------------------------------------
METRICS_JSONL: Final = "metrics.jsonl"
METRICS_CSV: Final = "metrics.csv"
RESULTS_JSON: Final = "results.json"
CONTROL_JSON: Final = "control.json"
TELEMETRY_DIR: Final = "telemetry"
PER_LAYER_STATS_CSV: Final = "telemetry/per_layer_stats.csv"
WEIGHT_SNAPSHOTS_DIR: Final = "telemetry/weight_snapshots"
DEBUG_LOG_GLOB: Final = "debug_log_*.jsonl"

PER_LAYER_STATS_COLUMNS: Final = (
    "batch_idx",
    "epoch",
    "layer_name",
    "mean",
    "std",
    "min",
    "max",
    "l2_norm",
    "num_params",
)


def weight_snapshot_name(epoch: int, batch: int) -> str:
    """Seed 000's snapshot file name; compare-weights aligns runs on the (epoch, batch) it encodes."""
    return f"weights_epoch{epoch}_batch{batch}.pt"


# --- metrics.jsonl records ------------------------------------------------------------------------------
EV_START: Final = "start"
EV_STEP: Final = "step"
EV_EPOCH: Final = "epoch"
EV_CHECKPOINT: Final = "checkpoint"
EV_CONTROL_CHANGE: Final = "control_change"
EV_ALERT: Final = "alert"
EV_END: Final = "end"
EVENTS: Final = (EV_START, EV_STEP, EV_EPOCH, EV_CHECKPOINT, EV_CONTROL_CHANGE, EV_ALERT, EV_END)

#: Keys every record may carry besides its metrics.
RESERVED_KEYS: Final = frozenset({"event", "time", "step", "epoch"})

END_FINISHED: Final = "finished"
END_CRASHED: Final = "crashed"
END_KILLED: Final = "killed"

# Step metric names (seed 002).
TRAIN_LOSS: Final = "train_loss"
LR: Final = "lr"
GRAD_NORM: Final = "grad_norm"
SAMPLES_PER_SEC: Final = "samples_per_sec"
SEC_PER_STEP: Final = "sec_per_step"
GPU_MEM_ALLOCATED: Final = "gpu_mem_allocated"
GPU_MEM_RESERVED: Final = "gpu_mem_reserved"
GPU_UTIL: Final = "gpu_util"
CPU_MEM_RSS_MB: Final = "cpu_mem_rss_mb"
NAN_INF_DETECTED: Final = "nan_inf_detected"

# Epoch metric names (seed 001's results.json history, flattened).
EPOCH_TRAIN_LOSS: Final = "train/loss"
EPOCH_TEST_LOSS: Final = "test/loss"
DIAG_SILHOUETTE: Final = "diagnostics/silhouette_score"
DIAG_N_CLUSTERS: Final = "diagnostics/n_clusters_dbscan"
DIAG_WEIGHT_CORRELATION: Final = "diagnostics/weight_correlation"

# Seed 004's data sanity check, and what termmon's logger adds when it aggregates it over a log interval.
DATA_SANITY: Final = "data_sanity_check/"
SANITY_LABEL_MIN: Final = DATA_SANITY + "label_min"
SANITY_LABEL_MAX: Final = DATA_SANITY + "label_max"
SANITY_N_CODES: Final = DATA_SANITY + "n_codes"
SANITY_IN_RANGE: Final = DATA_SANITY + "labels_in_range"
SANITY_BAD_BATCHES: Final = DATA_SANITY + "bad_batches"
SANITY_BATCHES: Final = DATA_SANITY + "batches"
# Parameter updates (seed 004), and the optimizer steps termmon's logger counts between log steps.
OPTIMIZER_STEPS: Final = "param_updates/optimizer_steps"

SEP: Final = "/"


def flatten(obj: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Flatten nested mappings with ``/`` (``{"train": {"loss": 1}}`` -> ``{"train/loss": 1}``).

    Lists are kept as values: they are data (cluster centres, top modules), not namespaces.
    """
    out: dict[str, Any] = {}
    for key, value in obj.items():
        name = f"{prefix}{SEP}{key}" if prefix else str(key)
        if isinstance(value, Mapping):
            out.update(flatten(value, name))
        else:
            out[name] = value
    return out


def encode_record(record: Mapping[str, Any]) -> str:
    """One metrics.jsonl line, without the newline.

    Non-finite floats are written as Python's json writes them (``NaN``, ``Infinity``): the contract
    promises readers those tokens, and a diverged run must stay legible with ``jq``-like tools that
    accept them. Values json cannot encode become text (paths as paths, anything else its ``repr``)
    rather than failing the record.
    """
    return json.dumps(record, separators=(",", ":"), default=_as_text, allow_nan=True)


def _as_text(value: object) -> str:
    return os.fspath(value) if isinstance(value, os.PathLike) else repr(value)


def strict_json_value(value: Any) -> Any:
    """Make a value strict-JSON safe: non-finite floats become ``"NaN"``, ``"Infinity"``, ``"-Infinity"``."""
    if isinstance(value, float) and not math.isfinite(value):
        if math.isnan(value):
            return "NaN"
        return "Infinity" if value > 0 else "-Infinity"
    if isinstance(value, Mapping):
        return {str(k): strict_json_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [strict_json_value(v) for v in value]
    return value


# --- control.json ----------------------------------------------------------------------------------------
LOG_EVERY_MIN: Final = 5
LOG_EVERY_MAX: Final = 2000
CONTROL_KEYS: Final = frozenset({"log_every", "timestamp", "seq", "source"})
CONTROL_SOURCE: Final = "termmon"
CONTROL_POLL_SECONDS: Final = 2.0
#: A control request is ~100 bytes; readers refuse anything larger than this.
CONTROL_MAX_BYTES: Final = 4096


def parse_control(content: bytes) -> dict[str, Any] | None:
    """A control.json request object, or None for anything else: torn text, a non-object, ``NaN``/``Infinity``
    tokens, nesting deep enough to exhaust the parser's recursion."""
    try:
        data = json.loads(content, parse_constant=_refuse_constant)
    except (ValueError, RecursionError):
        return None
    return data if isinstance(data, dict) else None


def _refuse_constant(token: str) -> Any:
    raise ValueError(f"{token} is not a number a control request may hold")


def clamp_log_every(value: int) -> int:
    """The trainer's clamp; the monitor applies the same one so it never asks for what it cannot get."""
    return max(LOG_EVERY_MIN, min(LOG_EVERY_MAX, int(value)))
