"""An append-only binary file read by offset and kept open: what TFRecord and W&B log readers share.

Both framings are appended to and never rewritten, so a file whose identity changed, or that is now
shorter than what was read, is a new file: reading starts over and the read says ``reset``. Keeping the
descriptor open makes each read a ``pread`` of what is new.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Protocol


class ReadResult(Protocol):
    """The fields of a read that :meth:`AppendOnlyFile._refresh` fills in."""

    reset: bool
    mtime: float
    error: str | None


class AppendOnlyFile:
    """The descriptor, the read offset and replacement detection; subclasses decode the framing."""

    def __init__(self, path: Path) -> None:
        self.path = path
        #: Where the next unread record starts.
        self.offset = 0
        self.size = 0
        self._fd: int | None = None
        self._ident: tuple[int, int] | None = None
        #: Why reading this file stopped for good (damage, not the format); None while it is readable.
        self._dead: str | None = None

    def close(self) -> None:
        if self._fd is not None:
            with contextlib.suppress(OSError):
                os.close(self._fd)
        self._fd = None

    def __del__(self) -> None:
        self.close()

    def _reset(self) -> None:
        """Forget the old file (it was replaced or truncated); subclasses clear their own state too."""
        self.offset = 0
        self._dead = None

    def _refresh(self, result: ReadResult) -> bool:
        """Stat the file, notice a new one, open it, update :attr:`size`; False when there is nothing to
        read now (missing, given up on, or an error, which ``result`` then holds)."""
        try:
            st = os.stat(self.path)
        except OSError as exc:
            if not isinstance(exc, FileNotFoundError):
                result.error = f"{self.path}: {exc.strerror or exc}"
            return False
        result.mtime = st.st_mtime
        if self._ident is not None and ((st.st_dev, st.st_ino) != self._ident or st.st_size < self.offset):
            self.close()
            self._reset()
            result.reset = True
        if self._dead is not None:
            return False
        try:
            if self._fd is None:
                self._fd = os.open(self.path, os.O_RDONLY)
                fst = os.fstat(self._fd)
                self._ident = (fst.st_dev, fst.st_ino)
            self.size = os.fstat(self._fd).st_size
        except OSError as exc:
            self._fail(result, exc)
            return False
        return True

    def _fail(self, result: ReadResult, exc: OSError) -> None:
        """A read failed: say so and close, so that the next read reopens the file."""
        result.error = f"{self.path}: {exc.strerror or exc}"
        self.close()
