"""Linux inotify, read in batches: which directories saw changes, at a cost per look, not per event.

watchdog turns every kernel event into Python objects on its own thread: 100 runs appending 50 lines
a second are 5,000 events a second, an eighth of a core before termmon looks at anything. Here the
events stay in the kernel's queue until the watcher is ready to look; one ``read`` then drains them
all, and only the directory and name of each are kept. A queue that overflows (more than
``/proc/sys/fs/inotify/max_queued_events`` between two looks) says so, and the caller looks at
everything, as it does on its backstop poll.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import os
import struct
from pathlib import Path

IN_MODIFY = 0x00000002
IN_ATTRIB = 0x00000004
IN_CLOSE_WRITE = 0x00000008
IN_MOVED_FROM = 0x00000040
IN_MOVED_TO = 0x00000080
IN_CREATE = 0x00000100
IN_DELETE = 0x00000200
IN_DELETE_SELF = 0x00000400
IN_MOVE_SELF = 0x00000800
IN_Q_OVERFLOW = 0x00004000
IN_IGNORED = 0x00008000
IN_ONLYDIR = 0x01000000
IN_ISDIR = 0x40000000
IN_NONBLOCK = os.O_NONBLOCK
IN_CLOEXEC = os.O_CLOEXEC

WATCH_MASK = (
    IN_MODIFY
    | IN_ATTRIB
    | IN_CLOSE_WRITE
    | IN_MOVED_FROM
    | IN_MOVED_TO
    | IN_CREATE
    | IN_DELETE
    | IN_DELETE_SELF
    | IN_MOVE_SELF
    | IN_ONLYDIR
)
_HEADER = struct.Struct("iIII")  # wd, mask, cookie, len
_READ_BYTES = 1 << 20


def _libc() -> ctypes.CDLL | None:
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name or "libc.so.6", use_errno=True)
        libc.inotify_init1  # noqa: B018  (raises AttributeError where there is no inotify)
    except (OSError, AttributeError):
        return None
    return libc


class Inotify:
    """Recursive inotify watches on directory trees; :meth:`drain` says what changed.

    Raises OSError when inotify cannot be used (not Linux, no instances or watches left), so the
    caller can fall back to another watcher or to polling.
    """

    def __init__(self, roots: list[Path], skip: frozenset[str] = frozenset()) -> None:
        libc = _libc()
        if libc is None or not hasattr(os, "O_NONBLOCK"):
            raise OSError(errno.ENOSYS, "inotify is not available")
        self._libc = libc
        fd = libc.inotify_init1(IN_NONBLOCK | IN_CLOEXEC)
        if fd < 0:
            code = ctypes.get_errno()
            raise OSError(code, os.strerror(code))
        self.fd: int = fd
        self._skip = skip
        self._dirs: dict[int, Path] = {}
        try:
            for root in roots:
                self._watch_tree(root)
        except OSError:
            self.close()
            raise

    def _watch(self, directory: Path) -> None:
        wd = self._libc.inotify_add_watch(self.fd, os.fsencode(directory), WATCH_MASK)
        if wd < 0:
            code = ctypes.get_errno()
            if code in (errno.ENOENT, errno.ENOTDIR, errno.EACCES):
                return  # gone already, or not ours to read: discovery reports it
            raise OSError(code, f"{os.strerror(code)}: {directory}")
        self._dirs[wd] = directory

    def _watch_tree(self, top: Path) -> None:
        self._watch(top)
        for parent, dirnames, _ in os.walk(top):
            dirnames[:] = [d for d in dirnames if d not in self._skip]
            for name in dirnames:
                self._watch(Path(parent, name))

    def drain(self) -> tuple[set[Path], bool]:
        """Everything queued: (the paths events named, whether the queue overflowed). A directory
        created inside a watched one is watched from here on."""
        paths: set[Path] = set()
        overflow = False
        while True:
            try:
                data = os.read(self.fd, _READ_BYTES)
            except BlockingIOError:
                break
            except OSError:
                return paths, True
            if not data:
                break
            offset, end = 0, len(data)
            while offset < end:
                wd, mask, _cookie, length = _HEADER.unpack_from(data, offset)
                offset += _HEADER.size
                name = data[offset : offset + length].rstrip(b"\0")
                offset += length
                if mask & IN_Q_OVERFLOW:
                    overflow = True
                    continue
                directory = self._dirs.get(wd)
                if mask & IN_IGNORED:
                    self._dirs.pop(wd, None)
                    continue
                if directory is None:
                    continue
                path = directory / os.fsdecode(name) if name else directory
                paths.add(path)
                if mask & IN_ISDIR and mask & (IN_CREATE | IN_MOVED_TO) and path.name not in self._skip:
                    try:
                        self._watch_tree(path)
                    except OSError:
                        overflow = True  # no watches left: only the backstop sees this tree
        return paths, overflow

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1
