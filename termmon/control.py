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
from termmon.format import CONTROL_JSON, CONTROL_SOURCE, clamp_log_every, is_run_file


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


def control_payload(previous: dict[str, object] | None, log_every: int) -> tuple[bytes, ControlRequest]:
    """The next control.json after ``previous``: ``{"log_every", "timestamp", "seq", "source"}``, with
    ``seq`` one past the previous request's and the value clamped; local and remote writes share it."""
    prev_seq = (previous or {}).get("seq")
    seq = (prev_seq if isinstance(prev_seq, int) and not isinstance(prev_seq, bool) else 0) + 1
    value = clamp_log_every(log_every)
    now = time.time()
    payload = {"log_every": value, "timestamp": now, "seq": seq, "source": CONTROL_SOURCE}
    request = ControlRequest(log_every=value, seq=seq, clamped=value != log_every, timestamp=now)
    return json.dumps(payload).encode(), request


def request_log_every(run_dir: Path | str, log_every: int) -> ControlRequest:
    """Write ``{"log_every", "timestamp", "seq", "source"}`` atomically; raise with a clear message.

    ``run_dir`` may be remote (``host:path``) or the local mirror of a remote run: the file is then
    written on the remote machine (termmon/remote/control.py). Raises UsageError when ``run_dir`` is
    not a run directory, TermmonError when it cannot be written (a read-only run directory, a full disk).
    """
    from termmon.remote.control import remote_run_dir, request_remote

    remote = remote_run_dir(run_dir)
    if remote is not None:
        return request_remote(*remote, log_every)
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise UsageError(f"termmon control: {run_dir}: no such run directory")
    try:
        names = os.listdir(run_dir)
    except OSError as exc:
        raise TermmonError(f"termmon control: {run_dir}: {exc.strerror}") from exc
    if not any(is_run_file(name) for name in names):
        raise UsageError(
            f"termmon control: {run_dir}: not a run directory (no metrics.jsonl or results.json)"
        )
    data, request = control_payload(read_control(run_dir), log_every)
    try:
        atomic_write(run_dir / CONTROL_JSON, data, sync_dir=True)
    except OSError as exc:
        reason = exc.strerror or str(exc)
        raise TermmonError(f"cannot write {run_dir / CONTROL_JSON}: {reason}") from exc
    return request
