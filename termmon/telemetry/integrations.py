"""Optional forwarding of step and epoch scalars to TensorBoard and Weights & Biases.

Both run as sinks on the writer thread, after the record is on disk, so a slow or failing service never
touches a training step. Each library is imported only when its option is on; a missing library is
reported by the caller once, and a sink that raises switches itself off with one warning.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from termmon.format import EV_EPOCH, EV_STEP, RESERVED_KEYS

Sink = Callable[[Mapping[str, Any]], None]


def _scalars(record: Mapping[str, Any]) -> dict[str, float]:
    return {
        k: float(v)
        for k, v in record.items()
        if k not in RESERVED_KEYS
        and isinstance(v, int | float)
        and not isinstance(v, bool)
        and math.isfinite(v)
    }


def _guarded(name: str, forward: Sink) -> Sink:
    broken = False

    def sink(record: Mapping[str, Any]) -> None:
        nonlocal broken
        if broken or record.get("event") not in (EV_STEP, EV_EPOCH):
            return
        try:
            forward(record)
        except Exception as exc:
            broken = True
            print(
                f"termmon: {name} forwarding failed ({type(exc).__name__}: {exc}); switched off",
                file=sys.stderr,
            )

    return sink


def tensorboard_sink(run_dir: Path) -> Sink:
    """Scalars under ``RUN/tensorboard`` at the record's global step. Raises ImportError without tensorboard."""
    from torch.utils.tensorboard import SummaryWriter

    writer = SummaryWriter(log_dir=str(run_dir / "tensorboard"))

    def forward(record: Mapping[str, Any]) -> None:
        step = record.get("step")
        for name, value in _scalars(record).items():
            writer.add_scalar(name, value, global_step=step if isinstance(step, int) else None)
        writer.flush()

    return _guarded("tensorboard", forward)


def wandb_sink(run_name: str, config: Any) -> Sink:
    """Logs into the active W&B run, starting one named after the termmon run if there is none."""
    import wandb

    if wandb.run is None:
        wandb.init(name=run_name, config=dict(config) if isinstance(config, Mapping) else None)

    def forward(record: Mapping[str, Any]) -> None:
        step = record.get("step")
        wandb.log(_scalars(record), step=step if isinstance(step, int) else None)

    return _guarded("wandb", forward)
