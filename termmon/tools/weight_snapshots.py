"""Finding and loading seed 000's weight snapshots, one file at a time.

Snapshots can be ~100 MB each and a run may hold dozens, so nothing here keeps more than the file it
was asked for: callers load one pair, compare, and let it go.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from termmon.errors import TermmonError, UsageError
from termmon.format import WEIGHT_SNAPSHOTS_DIR

if TYPE_CHECKING:
    import torch

_NAME = re.compile(r"^weights_epoch(\d+)_batch(\d+)\.pt$")

Checkpoint = tuple[int, int]
"""(epoch, batch): the key two runs are aligned on, parsed from the file name."""


class SnapshotError(TermmonError):
    """One snapshot file could not be read as a state dict (truncated, not torch, wrong contents)."""


@dataclass(frozen=True)
class SnapshotSet:
    """The snapshot files of one run, keyed by checkpoint."""

    run: Path
    directory: Path
    files: dict[Checkpoint, Path]


def checkpoint_label(checkpoint: Checkpoint) -> str:
    epoch, batch = checkpoint
    return f"e{epoch}/b{batch}"


def find_snapshots(run: Path) -> SnapshotSet:
    """The snapshots under ``RUN/telemetry/weight_snapshots`` (or RUN itself, if it holds them directly).

    A run path that does not exist is bad usage (exit 2); one that exists but holds no snapshots is
    a failure of the comparison (exit 1), since the user typed a real run.
    """
    if not run.exists():
        raise UsageError(f"termmon compare-weights: no such run: {run}")
    for directory in (run / WEIGHT_SNAPSHOTS_DIR, run):
        files = _snapshot_files(directory)
        if files:
            return SnapshotSet(run=run, directory=directory, files=files)
    raise TermmonError(
        f"termmon compare-weights: no weight snapshots in {run} "
        f"(expected {WEIGHT_SNAPSHOTS_DIR}/weights_epoch{{E}}_batch{{B}}.pt)"
    )


def _snapshot_files(directory: Path) -> dict[Checkpoint, Path]:
    if not directory.is_dir():
        return {}
    files: dict[Checkpoint, Path] = {}
    for path in directory.iterdir():
        match = _NAME.match(path.name)
        if match and path.is_file():
            files[(int(match.group(1)), int(match.group(2)))] = path
    return files


def load_state_dict(path: Path) -> dict[str, torch.Tensor]:
    """The tensors of one snapshot, on the CPU, without running any pickled code.

    Accepts seed 000's ``{"model_state_dict": ..., "batch_idx", "epoch"}`` and a bare state dict, which is
    what ``torch.save(model.state_dict(), ...)`` writes.
    """
    import torch

    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises pickle, zip, runtime and OS errors alike for a bad file
        raise SnapshotError(f"{path.name}: cannot be loaded ({_first_line(exc)})") from exc
    state = payload.get("model_state_dict", payload) if isinstance(payload, Mapping) else None
    if not isinstance(state, Mapping):
        raise SnapshotError(f"{path.name}: not a state dict (found {type(payload).__name__})")
    return {str(name): value for name, value in state.items() if isinstance(value, torch.Tensor)}


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__
