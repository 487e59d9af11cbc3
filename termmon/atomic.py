"""Small files read and written whole, safely: replaced atomically, read with a bound.

Shared by the monitor (control.json) and the logger (results.json, metrics.csv, control.json);
standard library only, so the logger's imports stay light.

Writing: a concurrent reader sees the old content or the new, never half of either, and the new file
gets the mode every other file of the run gets (``0o666`` less the umask, applied by the kernel), not
the ``0600`` of ``tempfile.mkstemp``: a colleague's monitor must be able to read results.json.

Reading: a control file is a few hundred bytes; whatever sits at its path (a FIFO, ``/dev/zero``, a
multi-gigabyte file) must neither hang nor exhaust memory the process that reads it.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

#: What ``read_small_file`` accepts by default: control.json is ~100 bytes.
SMALL_FILE_LIMIT = 4096


class NotRegularFileError(OSError):
    """The path names a FIFO, a device, a directory or a socket: never opened for reading as data
    (it could block or never end). Raised here and by ingest's readers of run files."""

    def __init__(self, path: object) -> None:
        super().__init__(0, "not a regular file", str(path))


class FileTooLarge(OSError):
    """The file is larger than the caller's bound; nothing of it is returned."""


@contextlib.contextmanager
def atomic_replace(target: Path, *, sync_dir: bool = False) -> Iterator[BinaryIO]:
    """A binary file that replaces ``target`` when the block ends without an exception.

    Temp file in the same directory (created with ``0o666`` so the umask applies, as it does to any
    ``open``), fsync, ``os.replace``; optionally fsync the directory too, so the rename itself survives
    a power cut. The temp file is removed if anything fails.
    """
    fd, tmp = _create_temp(target)
    try:
        with os.fdopen(fd, "wb") as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    if sync_dir:
        _fsync_dir(target.parent)


def atomic_write(target: Path, data: bytes, *, sync_dir: bool = False) -> None:
    """Replace ``target`` with ``data`` atomically (see :func:`atomic_replace`)."""
    with atomic_replace(target, sync_dir=sync_dir) as fh:
        fh.write(data)


def read_small_file(path: Path, limit: int = SMALL_FILE_LIMIT) -> bytes:
    """The whole content of a small regular file.

    Raises :class:`NotRegularFileError` for anything else (checked before opening, so a FIFO never blocks
    the open, and again on the open descriptor, so a swap in between is caught), :class:`FileTooLarge`
    beyond ``limit`` bytes (at most ``limit + 1`` are read), and ``OSError`` as ``open`` raises it.
    """
    if not stat.S_ISREG(os.stat(path).st_mode):
        raise NotRegularFileError(path)
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0))
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise NotRegularFileError(path)
        chunks: list[bytes] = []
        size = 0
        while size <= limit:
            chunk = os.read(fd, limit + 1 - size)
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
    finally:
        os.close(fd)
    if size > limit:
        raise FileTooLarge(f"{path}: larger than {limit} bytes")
    return b"".join(chunks)


def _create_temp(target: Path) -> tuple[int, str]:
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)
    for _ in range(100):
        tmp = os.path.join(target.parent, f".{target.name}.{secrets.token_hex(6)}.tmp")
        try:
            return os.open(tmp, flags, 0o666), tmp
        except FileExistsError:
            continue
    raise FileExistsError(f"{target.parent}: could not create a unique temporary file")


def _fsync_dir(directory: Path) -> None:
    dir_fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    except OSError:
        pass  # some filesystems refuse fsync on a directory; the replace itself has happened
    finally:
        os.close(dir_fd)
