"""The monitor's side of control.json: ask a running trainer to change its log interval.

The file is replaced atomically (temp file in the same directory, fsync, ``os.replace``, fsync of the
directory) so a trainer polling it sees the old content or the new, never half of either. ``seq``
grows with every request so the trainer can tell a new request from a rewrite with the same mtime.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from pathlib import Path

from termmon.atomic import atomic_write
from termmon.errors import TermmonError, UsageError
from termmon.format import CONTROL_JSON, CONTROL_SOURCE, clamp_log_every
from termmon.ingest.formats import registry


@dataclass(frozen=True)
class ControlRequest:
    """What was written: the value after clamping, whether clamping changed it, and its sequence number."""

    log_every: int
    seq: int
    clamped: bool
    timestamp: float


def read_control(run_dir: Path) -> dict[str, object] | None:
    """The current control.json, or None when it is absent or unreadable."""
    try:
        data = json.loads((run_dir / CONTROL_JSON).read_bytes())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def request_log_every(run_dir: Path, log_every: int) -> ControlRequest:
    """Write ``{"log_every", "timestamp", "seq", "source"}`` atomically; raise with a clear message.

    Raises UsageError when ``run_dir`` is not a run directory, TermmonError when it cannot be written
    (a read-only run directory, a full disk).
    """
    if not run_dir.is_dir():
        raise UsageError(f"termmon control: {run_dir}: no such run directory")
    try:
        names = os.listdir(run_dir)
    except OSError as exc:
        raise TermmonError(f"termmon control: {run_dir}: {exc.strerror}") from exc
    fmt = registry.best_for_dir(run_dir, names)
    if fmt is None:
        raise UsageError(
            f"termmon control: {run_dir}: not a run directory (no metrics.jsonl or results.json)"
        )
    if not fmt.controllable:
        raise UsageError(
            f"termmon control: {run_dir}: a {fmt.label} run; only trainers that use termmon's "
            "logger read control.json"
        )

    previous = read_control(run_dir) or {}
    prev_seq = previous.get("seq")
    seq = (prev_seq if isinstance(prev_seq, int) and not isinstance(prev_seq, bool) else 0) + 1
    value = clamp_log_every(log_every)
    now = time.time()
    payload = {"log_every": value, "timestamp": now, "seq": seq, "source": CONTROL_SOURCE}
    try:
        atomic_write(run_dir / CONTROL_JSON, json.dumps(payload).encode(), sync_dir=True)
    except OSError as exc:
        reason = exc.strerror or str(exc)
        raise TermmonError(f"cannot write {run_dir / CONTROL_JSON}: {reason}") from exc
    return ControlRequest(log_every=value, seq=seq, clamped=value != log_every, timestamp=now)
