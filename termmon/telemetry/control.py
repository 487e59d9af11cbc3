"""The trainer's side of control.json: notice a new request cheaply, never trust the file's content.

A poll is one ``os.stat`` at most every ``interval`` seconds (a monotonic deadline, so the check in every
``step()`` costs a clock read). The file is read only when ``(st_mtime_ns, st_size, st_ino)`` changed,
and only if it is a small regular file (``read_small_file``: a FIFO, ``/dev/zero`` or a huge file is
refused without blocking or filling memory). A request counts only when its ``seq`` is higher than the
last one acted on (mtime can be coarse), or, for a writer that sends no ``seq``, when the content
changed. Content that does not parse as a control request (torn, ``NaN``, nested too deep) is ignored
and retried on the file's next change: live control stays on for the rest of the run.

Problems are collected in ``problems`` (each distinct one once) for the logger to report: the person at
the monitor, often another user, needs to know why ``+`` does nothing.
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TypeGuard

from termmon.atomic import FileTooLarge, NotRegularFileError, read_small_file
from termmon.format import CONTROL_JSON, CONTROL_KEYS, CONTROL_MAX_BYTES, parse_control


@dataclass(frozen=True)
class ControlRequest:
    """A new ``log_every`` request as written (unclamped), plus keys this trainer does not understand."""

    log_every: int
    unknown_keys: tuple[str, ...]


class ControlPoller:
    """Watches one run directory's control.json; a request already in the file at start is not applied."""

    def __init__(self, run_dir: Path, interval: float = 2.0) -> None:
        self._path = run_dir / CONTROL_JSON
        self._interval = interval
        self._deadline = 0.0
        self._signature: tuple[int, int, int] | None = None
        self._seq = -1
        self._content: bytes | None = None
        self._reported: set[str] = set()
        self._problems_seen: set[str] = set()
        #: New problems since the caller last emptied the list, each worded for the person at the monitor.
        self.problems: list[str] = []
        self.poll(force=True)  # baseline: the user's log_every wins over a stale file from an earlier run

    def due(self) -> bool:
        """Whether ``poll`` would look at the file now: one clock read, so the trainer can ask every step
        and call ``poll`` (an ``os.stat``) only about every ``interval`` seconds."""
        return time.monotonic() >= self._deadline

    def poll(self, force: bool = False) -> ControlRequest | None:
        """A new request, or None; cheap when called every step."""
        now = time.monotonic()
        if not force and now < self._deadline:
            return None
        self._deadline = now + self._interval
        try:
            st = os.stat(self._path)
        except FileNotFoundError:
            return None
        except OSError as exc:
            self._problem(f"cannot read {CONTROL_JSON} ({exc.strerror or exc}); live control is unavailable")
            return None
        signature = (st.st_mtime_ns, st.st_size, st.st_ino)
        if signature == self._signature:
            return None
        self._signature = signature
        content = self._read()
        if content is None:
            return None
        data = parse_control(content)
        if data is None:
            self._problem(f"{CONTROL_JSON} is not a JSON object; ignored until it changes")
            return None
        seq = data.get("seq")
        if isinstance(seq, int) and not isinstance(seq, bool):
            if seq <= self._seq:
                return None
            self._seq = seq
        elif content == self._content:
            return None
        self._content = content
        value = data.get("log_every")
        if force:
            return None
        if not _is_finite_number(value):
            self._problem(f"{CONTROL_JSON}: log_every must be a finite number, got {value!r:.40}; ignored")
            return None
        unknown = tuple(sorted(k for k in data if k not in CONTROL_KEYS and k not in self._reported))
        self._reported.update(unknown)
        return ControlRequest(log_every=int(value), unknown_keys=unknown)

    def _read(self) -> bytes | None:
        try:
            return read_small_file(self._path, CONTROL_MAX_BYTES)
        except NotRegularFileError:
            self._problem(f"{CONTROL_JSON} is not a regular file; ignored")
        except FileTooLarge:
            self._problem(f"{CONTROL_JSON} is larger than {CONTROL_MAX_BYTES} bytes; ignored")
        except OSError as exc:
            self._problem(f"cannot read {CONTROL_JSON} ({exc.strerror or exc}); live control is unavailable")
        return None

    def _problem(self, message: str) -> None:
        if message not in self._problems_seen:
            self._problems_seen.add(message)
            self.problems.append(message)


def _is_finite_number(value: object) -> TypeGuard[int | float]:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    return isinstance(value, int) or math.isfinite(value)
