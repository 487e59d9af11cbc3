"""Linux inotify, read in batches: which directories saw changes, at a cost per look, not per event.

watchdog turns every kernel event into Python objects on its own thread: 100 runs appending 50 lines
a second are 5,000 events a second, an eighth of a core before termmon looks at anything. Here the
events stay in the kernel's queue until the watcher is ready to look; one read (``inotify_simple``,
which does the ctypes binding) then drains them all, and only the directory and name of each are
kept. A queue that overflows (more than ``/proc/sys/fs/inotify/max_queued_events`` between two looks)
says so, and the caller looks at everything, as it does on its backstop poll.

``inotify_simple`` is imported when a watcher is made, not with this module: it is installed on Linux
only, and where it is missing (or libc has no inotify) making one raises OSError, so the caller
falls back to watchdog or polling.
"""

from __future__ import annotations

import errno
import os
from pathlib import Path
from typing import Any

#: Errors from adding a watch that mean "not this directory", not "no more watches".
_SKIPPABLE = (errno.ENOENT, errno.ENOTDIR, errno.EACCES)


class Inotify:
    """Recursive inotify watches on directory trees; :meth:`drain` says what changed.

    Raises OSError when inotify cannot be used (not Linux, ``inotify_simple`` not installed, no
    instances or watches left), so the caller can fall back to another watcher or to polling.
    """

    def __init__(self, roots: list[Path], skip: frozenset[str] = frozenset()) -> None:
        try:
            from inotify_simple import INotify, flags
        except ImportError as exc:  # not Linux (no termios/fcntl), or not installed there
            raise OSError(errno.ENOSYS, f"inotify is not available ({exc})") from exc
        try:
            queue: Any = INotify(nonblocking=True)
        except AttributeError as exc:  # a libc without inotify_init1
            raise OSError(errno.ENOSYS, "inotify is not available") from exc
        self._queue = queue
        self.fd: int = queue.fileno()
        # Plain ints, read once: the event loop in drain() tests every event against them.
        self._mask = int(
            flags.MODIFY
            | flags.ATTRIB
            | flags.CLOSE_WRITE
            | flags.MOVED_FROM
            | flags.MOVED_TO
            | flags.CREATE
            | flags.DELETE
            | flags.DELETE_SELF
            | flags.MOVE_SELF
            | flags.ONLYDIR
        )
        self._overflowed = int(flags.Q_OVERFLOW)
        self._ignored = int(flags.IGNORED)
        self._isdir = int(flags.ISDIR)
        self._appeared = int(flags.CREATE | flags.MOVED_TO)
        self._skip = skip
        self._dirs: dict[int, Path] = {}
        try:
            for root in roots:
                self._watch_tree(root)
        except OSError:
            self.close()
            raise

    def _watch(self, directory: Path) -> None:
        try:
            wd: int = self._queue.add_watch(directory, self._mask)
        except OSError as exc:
            if exc.errno in _SKIPPABLE:
                return  # gone already, or not ours to read: discovery reports it
            raise OSError(exc.errno, f"{exc.strerror}: {directory}") from exc
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
        try:
            events = self._queue.read(timeout=0)  # what the kernel holds now, in one read
        except (OSError, ValueError):  # ValueError: closed
            return paths, True
        # 100 streaming runs queue 5,000 events a second naming 100 files: a Path is built per name,
        # not per event (building one per event was a fifth of the drain's cost).
        named: set[tuple[Path, str]] = set()
        rare = self._overflowed | self._ignored | self._isdir
        dirs = self._dirs
        for wd, mask, _cookie, name in events:
            if mask & rare:
                if mask & self._overflowed:
                    overflow = True
                    continue
                if mask & self._ignored:
                    dirs.pop(wd, None)
                    continue
            directory = dirs.get(wd)
            if directory is None:
                continue
            named.add((directory, name))
            if mask & self._isdir and mask & self._appeared and name not in self._skip:
                try:
                    self._watch_tree(directory / name)
                except OSError:
                    overflow = True  # no watches left: only the backstop sees this tree
        paths.update(directory / name if name else directory for directory, name in named)
        return paths, overflow

    def close(self) -> None:
        if self.fd >= 0:
            self._queue.close()
            self.fd = -1
