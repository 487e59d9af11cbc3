"""Reading a JSON file that its writer rewrites in place (seed 001's results.json).

Not every writer replaces the file atomically: with a plain ``open('w')`` writer a reader catches an
empty or half-written file a few percent of the time (reference/tailing.md). So a read is accepted only
if it parses *and* the file's identity, size and times are the same before and after it; otherwise
the last good content stays in force, marked stale, and the next change is retried. A file that
fails to parse on two reads with nothing changed between them is damaged, not mid-write: that read
says so in ``error`` (one line naming the file), and still keeps the last good content.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

_BOM = b"\xef\xbb\xbf"


def _signature(st: os.stat_result) -> tuple[int, int, int, int, int]:
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


@dataclass
class WholeFileRead:
    """``changed``: ``value`` is new content; ``stale``: the file changed but could not be read whole."""

    changed: bool = False
    value: Any = None
    stale: bool = False
    missing: bool = False
    error: str | None = None


class WholeFileReader:
    """Keeps the last good parse of one JSON file; :meth:`read` reports whether it changed."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.value: Any = None
        self.mtime = float("nan")
        self._signature: tuple[int, ...] | None = None
        self._digest: bytes | None = None
        self._failed: tuple[tuple[int, ...], str] | None = None  # (signature, reason) of a failed parse

    def read(self) -> WholeFileRead:
        first = self._read()
        if first.stale and first.error is None and self._failed is not None:
            # It did not parse: read again at once; unchanged and still bad means damaged.
            failed = self._failed
            again = self._read()
            if again.stale and self._failed == failed:
                again.error = f"{self.path}: not valid JSON ({failed[1]})"
            return again
        return first

    def _read(self) -> WholeFileRead:
        self._failed = None
        try:
            before = os.stat(self.path)
        except FileNotFoundError:
            return WholeFileRead(missing=True, value=self.value)
        except OSError as exc:
            return WholeFileRead(error=f"{self.path}: {exc.strerror or exc}", value=self.value)
        if _signature(before) == self._signature:
            return WholeFileRead(value=self.value)
        try:
            with open(self.path, "rb") as fh:
                data = fh.read()
                after = os.fstat(fh.fileno())
        except OSError as exc:
            return WholeFileRead(stale=True, error=f"{self.path}: {exc.strerror or exc}", value=self.value)
        if _signature(before) != _signature(after) or len(data) != after.st_size:
            return WholeFileRead(stale=True, value=self.value)  # written while we read: try again later
        digest = hashlib.blake2b(data, digest_size=16).digest()
        if digest == self._digest:
            self._signature = _signature(after)
            return WholeFileRead(value=self.value)
        try:
            value = json.loads(data.removeprefix(_BOM))
        except (ValueError, RecursionError) as exc:
            self._failed = (_signature(after), str(exc).split(":")[0][:80])
            return WholeFileRead(stale=True, value=self.value)
        self.value = value
        self.mtime = after.st_mtime
        self._signature = _signature(after)
        self._digest = digest
        return WholeFileRead(changed=True, value=value)
