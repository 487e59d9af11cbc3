"""The monitor's side of control.json: ask a running trainer to change its log interval.

The file is replaced atomically (temp file in the same directory, fsync, ``os.replace``, fsync of the
directory) so a trainer polling it sees the old content or the new, never half of either.

``seq`` must grow with every request, across every writer: the trainer ignores a request whose ``seq``
is not above the last one it applied. Two monitors (two people, or a script beside the TUI) that each
read the file and add one would reuse numbers when their read-and-replace interleave, so the read and
the replace happen under an exclusive ``flock`` on the run directory: writers serialise, each one
reads the seq the previous one wrote. (A filesystem that refuses the lock, some network mounts, gets
the unlocked read-and-add-one.) Keeping ``seq`` a plain counter lets another tool join the protocol
by the documented rule: read the current ``seq``, write a higher one.
"""

from __future__ import annotations

import contextlib
import json
import os
import stat
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from termmon.atomic import atomic_write, read_small_file
from termmon.errors import TermmonError, UsageError
from termmon.format import (
    CONTROL_JSON,
    CONTROL_MAX_BYTES,
    CONTROL_SOURCE,
    clamp_log_every,
    parse_control,
)
from termmon.ingest.formats import registry


@dataclass(frozen=True)
class ControlRequest:
    """What was written: the value after clamping, whether clamping changed it, and its sequence number."""

    log_every: int
    seq: int
    clamped: bool
    timestamp: float


def read_control(run_dir: Path) -> dict[str, object] | None:
    """The current control.json, or None when it is absent, unreadable or not a request object."""
    try:
        return parse_control(read_small_file(run_dir / CONTROL_JSON, CONTROL_MAX_BYTES))
    except OSError:
        return None


def control_payload(previous: dict[str, object] | None, log_every: int) -> tuple[bytes, ControlRequest]:
    """The next control.json after ``previous``: ``{"log_every", "timestamp", "seq", "source"}``, with
    ``seq`` one past the previous request's and the value clamped; local and remote writes share it.
    A previous ``seq`` below zero (another tool's, or garbage) counts as 0: the trainer acts only on a
    ``seq`` above every one it saw, and it starts from -1, so a request must never be numbered under 1."""
    prev_seq = (previous or {}).get("seq")
    last = prev_seq if isinstance(prev_seq, int) and not isinstance(prev_seq, bool) else 0
    seq = max(last, 0) + 1
    value = clamp_log_every(log_every)
    now = time.time()
    payload = {"log_every": value, "timestamp": now, "seq": seq, "source": CONTROL_SOURCE}
    request = ControlRequest(log_every=value, seq=seq, clamped=value != log_every, timestamp=now)
    return json.dumps(payload).encode(), request


def request_log_every(run_dir: Path | str, log_every: int) -> ControlRequest:
    """Write ``{"log_every", "timestamp", "seq", "source"}`` atomically; raise with a clear message.

    ``run_dir`` may be remote (``host:path``) or the local mirror of a remote run: the file is then
    written on the remote machine (termmon/remote/control.py). Raises UsageError when ``run_dir`` is
    not a run directory, TermmonError when it cannot be written (a read-only run directory, another
    user's directory, a full disk).
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
    target = run_dir / CONTROL_JSON
    try:
        with _exclusive(run_dir):
            data, request = control_payload(_current(target, run_dir), log_every)
            atomic_write(target, data, sync_dir=True)
    except OSError as exc:
        hint = "; the trainer's user must let you write there (e.g. a shared group with g+w)"
        raise TermmonError(
            f"cannot write {target}: {_why(exc, run_dir)}"
            + (hint if isinstance(exc, PermissionError) else "")
        ) from exc
    return request


def _current(target: Path, run_dir: Path) -> dict[str, object] | None:
    """The request now in the file. One that exists but cannot be read is an error: its ``seq`` is
    unknown, and a request numbered from 1 would be ignored by a trainer that has seen higher."""
    try:
        return parse_control(read_small_file(target, CONTROL_MAX_BYTES))
    except FileNotFoundError:
        return None
    except PermissionError as exc:
        raise TermmonError(
            f"cannot read {target}: {_why(exc, target)}; remove it or make it readable"
        ) from exc
    except OSError:
        return None  # not a regular file or far too large: the replace puts a proper request there


@contextlib.contextmanager
def _exclusive(run_dir: Path) -> Iterator[None]:
    """Hold ``flock`` on the directory while reading and replacing control.json (released when the
    descriptor closes); where the filesystem refuses the lock, go on without it."""
    try:
        import fcntl
    except ImportError:  # not on POSIX
        yield
        return
    try:
        fd = os.open(run_dir, os.O_RDONLY)
    except OSError:
        yield
        return
    try:
        with contextlib.suppress(OSError):
            fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing releases the lock


def _why(exc: OSError, path: Path) -> str:
    """The reason, and for a permission problem who owns ``path`` and its mode: the fix is theirs."""
    reason = exc.strerror or str(exc)
    if isinstance(exc, PermissionError):
        with contextlib.suppress(OSError, KeyError, ImportError):
            import pwd

            st = os.stat(path)
            owner = pwd.getpwuid(st.st_uid).pw_name
            return f"{reason} ({path.name} is {stat.filemode(st.st_mode)}, owned by {owner})"
    return reason
