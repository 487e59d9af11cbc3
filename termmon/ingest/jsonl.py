"""An incremental reader of a JSONL file that another process is appending to.

What the most trusted tailers do (reference/tailing.md), and why:

* The newline is the commit marker: only bytes up to the last ``\\n`` are handed on; the torn tail is
  held until its newline arrives, so a half-written record is never parsed or shown.
* The file stays open between reads, as ``tail -F`` does. Holding the descriptor pins the inode, so a
  deleted-and-recreated file cannot come back with the same inode number and fool the identity check,
  and a renamed (rotated) file can be drained to its end before the new one is read.
* A truncation shows as size < offset; a rewrite that ends up *larger* than before is caught by a
  fingerprint of the file's first bytes. Either means "re-read from the start" (``reset``).
* A line longer than ``max_line`` is skipped up to its newline and counted, never buffered without
  bound. NUL bytes at a line's start are padding (a filesystem after a crash shows unwritten blocks
  as NULs) and never part of a record, so the record that follows padding of any length is kept.
* Only regular files are read: a FIFO would block the reader forever and ``/dev/zero`` never ends,
  so anything else is reported (``not a regular file: PATH``) and left alone.
* :meth:`JsonlTailer.start_at_tail` starts a reader near the end instead (the monitor's first frame
  shows a run's recent window before its history is read): it starts one byte before the window and
  skips up to the first newline, so the first whole line is kept and a partial one never is.
"""

from __future__ import annotations

import contextlib
import os
import stat
from dataclasses import dataclass, field
from pathlib import Path

from termmon.atomic import NotRegularFileError
from termmon.errors import os_error_text

FINGERPRINT_BYTES = 1024
READ_CHUNK = 8 << 20
DEFAULT_MAX_LINE = 256 << 20
_BOM = b"\xef\xbb\xbf"


@dataclass
class TailRead:
    """Complete lines read this time (without their newlines). ``reset``: the file was truncated or
    replaced, so earlier records no longer describe it; ``lines`` then start at the new content's start."""

    lines: list[bytes] = field(default_factory=list)
    bytes_read: int = 0
    reset: bool = False
    oversized_lines: int = 0
    missing: bool = False
    error: str | None = None
    mtime: float = float("nan")
    more: bool = False  # stopped at max_bytes: call again for the rest


class JsonlTailer:
    """Reads new complete lines of one file; call :meth:`read` whenever the file may have changed."""

    def __init__(self, path: Path, *, max_line: int = DEFAULT_MAX_LINE) -> None:
        self.path = path
        self.max_line = max_line
        self._fd: int | None = None
        self._ident: tuple[int, int] | None = None
        self._offset = 0
        self._pending = bytearray()
        self._skipping = False  # inside an oversized line, dropping bytes until its newline
        self._fingerprint = b""

    # --- state --------------------------------------------------------------------------------------
    @property
    def offset(self) -> int:
        """Bytes consumed from the current file, including the held-back partial line."""
        return self._offset

    @property
    def pending_bytes(self) -> int:
        """Length of the incomplete last line being held back."""
        return len(self._pending)

    def close(self) -> None:
        if self._fd is not None:
            with contextlib.suppress(OSError):
                os.close(self._fd)
        self._fd = None
        self._ident = None

    def __del__(self) -> None:
        self.close()

    def start_at_tail(self, window: int) -> bool:
        """Position the next :meth:`read` at the first line that starts in the file's last ``window``
        bytes; True if that skipped anything (False: the file is no bigger, it is read whole).

        Call before the first read. The fingerprint of the file's head is taken here, so a rewrite
        is still caught as a reset although this reader never read the head itself.
        """
        try:
            self._open()
            assert self._fd is not None
            size = os.fstat(self._fd).st_size
            if size <= max(window, FINGERPRINT_BYTES):
                return False
            self._fingerprint = os.pread(self._fd, FINGERPRINT_BYTES, 0)
        except OSError:
            self.close()  # read() meets the same problem and reports it
            return False
        # One byte early: when the window starts exactly at a line start, the skip eats only the
        # newline before it, and the line is kept.
        self._offset = size - window - 1
        self._skipping = True
        return True

    # --- reading ------------------------------------------------------------------------------------
    def read(self, max_bytes: int = READ_CHUNK) -> TailRead:
        """Up to about ``max_bytes`` of new complete lines (call again while ``data`` is non-empty)."""
        result = TailRead()
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            st = None
            result.missing = True
        except OSError as exc:
            result.error = os_error_text(self.path, exc)
            return result

        if self._fd is not None and st is not None and (st.st_dev, st.st_ino) != self._ident:
            # Renamed away or replaced: finish the old file first, then switch on a later call.
            drained = self._read_fd(max_bytes, result)
            if drained:
                return result
            replaced = self._old_file_deleted()
            self.close()
            self._start_new_file()
            result.reset = replaced
        if st is None:
            if self._fd is not None:
                self._read_fd(max_bytes, result)
            return result
        result.mtime = st.st_mtime
        if self._fd is None:
            try:
                self._open()
            except OSError as exc:
                result.error = os_error_text(self.path, exc)
                return result
        assert self._fd is not None
        try:
            size = os.fstat(self._fd).st_size
            if size < self._offset or not self._same_head(size):
                self._start_new_file()
                result.reset = True
            self._read_fd(max_bytes, result)
        except OSError as exc:
            result.error = os_error_text(self.path, exc)
            self.close()
        return result

    def _open(self) -> None:
        # O_NONBLOCK: opening a FIFO would otherwise wait for a writer; the fstat then turns it away.
        fd = os.open(self.path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            os.close(fd)
            raise NotRegularFileError(self.path)
        self._fd = fd
        self._ident = (st.st_dev, st.st_ino)

    def _start_new_file(self) -> None:
        self._offset = 0
        self._pending.clear()
        self._skipping = False
        self._fingerprint = b""

    def _old_file_deleted(self) -> bool:
        """True when the file we hold was unlinked (replaced or deleted), False when it was renamed."""
        if self._fd is None:
            return True
        try:
            return os.fstat(self._fd).st_nlink == 0
        except OSError:
            return True

    def _same_head(self, size: int) -> bool:
        """Whether the file still starts with the bytes it started with when we first read it."""
        if not self._fingerprint or self._fd is None:
            return True
        want = len(self._fingerprint)
        if size < want:
            return False
        return os.pread(self._fd, want, 0) == self._fingerprint

    def _read_fd(self, max_bytes: int, result: TailRead) -> int:
        """Read up to ``max_bytes`` from the held file into ``result``; returns bytes read."""
        assert self._fd is not None
        chunk = os.pread(self._fd, max_bytes, self._offset)
        if not chunk:
            return 0
        result.more = len(chunk) == max_bytes
        if self._offset < FINGERPRINT_BYTES:
            head = self._fingerprint + chunk[: FINGERPRINT_BYTES - self._offset]
            self._fingerprint = head[:FINGERPRINT_BYTES]
        start_of_file = self._offset == 0
        self._offset += len(chunk)
        result.bytes_read += len(chunk)
        if start_of_file and chunk.startswith(_BOM):
            chunk = chunk[len(_BOM) :]
        result.lines.extend(self._complete_lines(chunk, result))
        return len(chunk)

    def _complete_lines(self, chunk: bytes, result: TailRead) -> list[bytes]:
        if self._skipping:
            newline = chunk.find(b"\n")
            if newline < 0:
                return []
            chunk = chunk[newline + 1 :]
            self._skipping = False
        if not self._pending:
            chunk = chunk.lstrip(b"\0")  # padding at a line start (returns the chunk itself if none)
        cut = chunk.rfind(b"\n")
        if cut < 0:
            self._pending += chunk
            if len(self._pending) > self.max_line:
                self._overflow(result)
            return []
        # Split the chunk in place (no copy of it); its last piece is the torn line to hold back.
        lines = chunk.split(b"\n")
        if self._pending:
            lines[0] = bytes(self._pending) + lines[0]
            self._pending.clear()
        self._pending += lines.pop().lstrip(b"\0")
        return lines

    def _overflow(self, result: TailRead) -> None:
        """The held line outgrew ``max_line``: count it, and skip it up to its newline, unless NUL
        padding ends inside it (a writer that died mid-line, then padding, then a restarted writer):
        what follows the padding is a record's start and is kept."""
        result.oversized_lines += 1
        nul = self._pending.rfind(b"\0")
        if nul >= 0 and len(self._pending) - nul - 1 <= self.max_line:
            del self._pending[: nul + 1]
        else:
            self._pending.clear()
            self._skipping = True
