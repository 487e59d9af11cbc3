"""The trainer's side of control.json: notice a new request cheaply, never trust the file's content.

A poll is one ``os.stat`` at most every ``interval`` seconds (a monotonic deadline, so the check in every
``step()`` costs a clock read). The file is parsed only when ``(st_mtime_ns, st_size)`` changed, and a
request counts only when its ``seq`` is higher than the last one acted on (mtime can be coarse), or, for a
writer that sends no ``seq``, when the content changed. A file that does not parse is ignored and
retried on its next change.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from pathlib import Path

from termmon.format import CONTROL_JSON, CONTROL_KEYS


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
        self._signature: tuple[int, int] | None = None
        self._seq = -1
        self._content: bytes | None = None
        self._reported: set[str] = set()
        self.poll(force=True)  # baseline: the user's log_every wins over a stale file from an earlier run

    def poll(self, force: bool = False) -> ControlRequest | None:
        """A new request, or None; cheap when called every step."""
        now = time.monotonic()
        if not force and now < self._deadline:
            return None
        self._deadline = now + self._interval
        try:
            st = os.stat(self._path)
        except OSError:
            return None
        signature = (st.st_mtime_ns, st.st_size)
        if signature == self._signature:
            return None
        self._signature = signature
        try:
            content = self._path.read_bytes()
            data = json.loads(content)
        except (OSError, ValueError):
            return None
        if not isinstance(data, dict):
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
        if force or isinstance(value, bool) or not isinstance(value, int | float):
            return None
        unknown = tuple(sorted(k for k in data if k not in CONTROL_KEYS and k not in self._reported))
        self._reported.update(unknown)
        return ControlRequest(log_every=int(value), unknown_keys=unknown)
