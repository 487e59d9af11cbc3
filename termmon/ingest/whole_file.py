"""Reading a JSON file that its writer rewrites in place (seed 001's results.json).

Not every writer replaces the file atomically: with a plain ``open('w')`` writer a reader catches an
empty or half-written file a few percent of the time (reference/tailing.md). So a read is accepted only
if it parses *and* the file's identity, size and times are the same before and after it; otherwise
the last good content stays in force, marked stale, and the next change is retried. A file that
fails to parse on two reads with nothing changed between them is damaged, not mid-write: that read
says so in ``error`` (one line naming the file), and still keeps the last good content.

Only a regular file of at most ``max_size`` bytes is read (a FIFO would block, ``/dev/zero`` never
ends, and a results.json of gigabytes is not one): anything else is reported and left alone.
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from termmon.atomic import NotRegularFileError
from termmon.errors import os_error_text

_BOM = b"\xef\xbb\xbf"
#: Larger than any results.json a trainer writes (seed 001's is kilobytes), small enough to hold.
MAX_SIZE = 256 << 20


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

    def __init__(self, path: Path, *, max_size: int = MAX_SIZE) -> None:
        self.path = path
        self.max_size = max_size
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
            return WholeFileRead(error=os_error_text(self.path, exc), value=self.value)
        if _signature(before) == self._signature:
            return WholeFileRead(value=self.value)
        if stat.S_ISREG(before.st_mode) and before.st_size > self.max_size:
            error = f"larger than {self.max_size >> 20} MiB, not read: {self.path}"
            return WholeFileRead(stale=True, error=error, value=self.value)
        try:
            data, after = self._read_bounded()
        except OSError as exc:
            return WholeFileRead(stale=True, error=os_error_text(self.path, exc), value=self.value)
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

    def _read_bounded(self) -> tuple[bytes, os.stat_result]:
        """The whole file, if it is a regular one (opened without blocking, so a FIFO cannot hang us)."""
        fd = os.open(self.path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
        try:
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode):
                raise NotRegularFileError(self.path)
            data = os.read(fd, min(st.st_size, self.max_size) + 1)
            return data, os.fstat(fd)
        finally:
            os.close(fd)
