"""Replacing a file so that a concurrent reader sees the old content or the new, never half of either.

Shared by the monitor (control.json) and the logger (results.json); standard library only, so the
logger's imports stay light.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path


def atomic_write(target: Path, data: bytes, *, sync_dir: bool = False) -> None:
    """Temp file in the same directory, fsync, ``os.replace``; optionally fsync the directory too, so
    the rename itself survives a power cut. The temp file is removed if anything fails."""
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    if sync_dir:
        dir_fd = os.open(target.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        except OSError:
            pass  # some filesystems refuse fsync on a directory; the replace itself has happened
        finally:
            os.close(dir_fd)
