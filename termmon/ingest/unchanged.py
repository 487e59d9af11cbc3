"""A stat-only "nothing new here" check for one run, made before any reader work.

The backstop poll looks at every run every 2 s. With 1,000 idle runs even a reader's no-op (list the
directory to pick the format, stat, fstat, pread) was most of the monitor's idle CPU, and each such
read handed the UI thread an update to apply. A run whose directory and files show the same
(inode, size, mtime_ns) as after its last complete read has nothing new, and is skipped.

It is used only where it is sound: formats whose reader reads exactly :meth:`Format.files` inside the
run's own directory (a file added there changes the directory's mtime). A file or directory modified
within ``RACY_NS`` of the check is always read: a rewrite inside one timestamp tick keeps its mtime
(git's "racily clean" problem), and a run being written to is read anyway.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from termmon.ingest.source import RunSource, SourceUpdate

#: Formats whose readers read only ``files()`` of the run's own directory, and whether that list
#: depends on the directory's entries (then the directory is stat'ed too: a file added there changes
#: its mtime). termmon's metrics.jsonl is one fixed file, and no format outranks it.
SIGNED_FORMATS = {"termmon": False, "debug_log": True}
#: Anything modified more recently than this is read whatever its stat says.
RACY_NS = 2_000_000_000

Signature = tuple[tuple[int, int, int], ...]


def signature(source: RunSource, files: list[str] | None = None) -> Signature | None:
    """(inode, size, mtime_ns) of the run's files (and directory, where the list of files depends on
    it); None where the check is not sound (another format, a file that cannot be stat'ed, something
    modified just now). ``files``: the file names as strings, when the caller knows them already."""
    fmt, location = source.format, source.location
    if fmt is None or location.key is not None or location.file is not None:
        return None
    listed = SIGNED_FORMATS.get(fmt.name)
    if listed is None:
        return None
    parts = []
    try:
        if listed:
            st = os.stat(location.dir)
            parts.append((st.st_ino, 0, st.st_mtime_ns))
        for path in files if files is not None and not listed else map(str, fmt.files(location)):
            st = os.stat(path)
            parts.append((st.st_ino, st.st_size, st.st_mtime_ns))
    except OSError:
        return None
    if not parts or time.time_ns() - max(part[2] for part in parts) < RACY_NS:
        return None
    return tuple(parts)


class UnchangedRuns:
    """Remembers each run's signature after a complete read. Used from the reader thread only."""

    def __init__(self) -> None:
        self._seen: dict[Path, Signature] = {}
        self._files: dict[Path, list[str]] = {}  # a fixed file list, as strings (no pathlib per check)

    def check(self, run_dir: Path, source: RunSource) -> tuple[bool, Signature | None]:
        """(nothing new since the last complete read, the signature taken now: pass it to :meth:`read`)."""
        files = self._files.get(run_dir)
        if files is None and source.format is not None and SIGNED_FORMATS.get(source.format.name) is False:
            files = self._files[run_dir] = [str(p) for p in source.format.files(source.location)]
        now = signature(source, files)
        return now is not None and self._seen.get(run_dir) == now, now

    def read(self, run_dir: Path, taken: Signature | None, update: SourceUpdate) -> None:
        """After reading ``run_dir``: trust ``taken`` (made before the read) only if the read got
        everything there was and went well."""
        if taken is not None and not (update.more or update.failed or update.error or update.reset):
            self._seen[run_dir] = taken
        else:
            self._seen.pop(run_dir, None)
