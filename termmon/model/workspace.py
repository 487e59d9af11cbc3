"""All the runs under the paths the user gave, kept up to date.

Reading is split from applying so a UI can keep parsing off its own thread: :meth:`Workspace.poll`
does the file IO and parsing (call it from a worker thread) and returns updates; :meth:`Workspace.apply`
folds them into the :class:`Run` objects (call it on the thread that reads the runs).
"""

from __future__ import annotations

import math
import os
import resource
import threading
import time
from collections.abc import Collection, Iterator
from dataclasses import dataclass
from pathlib import Path

from termmon.ingest.discovery import find_runs, resolve_paths, run_name
from termmon.ingest.formats.base import RunLocation
from termmon.ingest.jsonl import READ_CHUNK
from termmon.ingest.source import RunSource, SourceUpdate
from termmon.ingest.unchanged import UnchangedRuns
from termmon.model.run import Run
from termmon.remote.registry import host_error

#: How often poll() looks for new run directories under the roots.
RESCAN_SECONDS = 5.0
#: ... where filesystem events name what appears (a path in no known run asks for a rescan), so the
#: walk over every directory is only a backstop.
EVENTS_RESCAN_SECONDS = 30.0
#: Rescans asked for by events are at least this far apart (a trainer writing outside any run).
RESCAN_MIN_SECONDS = 1.0
#: Runs holding more than this are listed before they are read (announce()).
ANNOUNCE_BYTES = 8 << 20


@dataclass
class RunUpdate:
    path: Path
    name: str
    update: SourceUpdate
    has_end_events: bool


def _raise_fd_limit() -> None:
    """A tailer holds its file open (to survive rotation), so watching 1,000 runs needs 1,000 fds."""
    try:
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        if soft != resource.RLIM_INFINITY and (hard == resource.RLIM_INFINITY or soft < hard):
            resource.setrlimit(
                resource.RLIMIT_NOFILE, (hard if hard != resource.RLIM_INFINITY else 65536, hard)
            )
    except (ValueError, OSError):
        pass


def _read(source: RunSource, max_bytes: int) -> SourceUpdate:
    """One run's read. An exception inside it (a bug, or input nobody foresaw) becomes that run's
    error; the other runs are read as usual, and this one is tried again on the next poll."""
    try:
        return source.read(max_bytes)
    except Exception as exc:
        return SourceUpdate(error=f"reading failed: {type(exc).__name__}: {exc}", failed=True)


class Workspace:
    """The run directories under ``paths`` (run dirs, parents of run dirs, or globs)."""

    def __init__(
        self, paths: list[str], *, max_bytes: int = READ_CHUNK, run: RunLocation | None = None
    ) -> None:
        """``run``: watch that one run only (``paths`` then name its root), not all runs found."""
        self.roots = resolve_paths(paths)
        self._only = run
        self.max_bytes = max_bytes
        self.runs: dict[Path, Run] = {}
        self._sources: dict[Path, RunSource] = {}
        self._names: dict[Path, str] = {}
        self._taken: set[str] = set()  # the names in _names
        self._lock = threading.Lock()
        self._last_scan = -math.inf
        #: Problems finding runs (``permission denied: DIR``), each once, oldest first.
        self.errors: list[str] = []
        self._real: set[str] = set()
        #: Run dirs by the directory their files are in (a store holding many runs: all of them).
        self._by_dir: dict[Path, list[Path]] = {}
        self._more: set[Path] = set()  # runs whose last read stopped at max_bytes
        self._rescan_wanted = False
        self._unchanged = UnchangedRuns()
        self._announced: set[Path] = set()
        _raise_fd_limit()
        self.rescan()

    # --- discovery ------------------------------------------------------------------------------------
    def rescan(self) -> list[Path]:
        """Look for runs that appeared; returns the new ones' paths (:attr:`RunLocation.path`)."""
        new: list[Path] = []
        with self._lock:
            errors: list[str] = []
            if self._only is not None:
                found = [self._only]
            else:
                found = [r for root in self.roots for r in find_runs(root, errors=errors)]
            for location in found:
                run_dir = location.path
                if run_dir in self._sources:
                    continue
                real = os.path.realpath(run_dir)  # one run reached by two paths is one run
                if real not in self._real:
                    self._real.add(real)
                    self._sources[run_dir] = RunSource(location)
                    self._names[run_dir] = self._unique_name(run_dir)
                    self._by_dir.setdefault(location.dir, []).append(run_dir)
                    new.append(run_dir)
            self.errors.extend(e for e in errors if e not in self.errors)
            self._last_scan = time.monotonic()
            self._rescan_wanted = False
        return new

    def _unique_name(self, run_dir: Path) -> str:
        name = run_name(run_dir, self.roots)
        taken = self._taken  # kept beside _names: a set built per run made finding 1,000 runs O(n^2)
        candidate, parent = name, run_dir.parent
        while candidate in taken and parent != parent.parent:
            candidate = f"{parent.name}/{candidate}"
            parent = parent.parent
        taken.add(candidate)
        return candidate

    @property
    def run_dirs(self) -> list[Path]:
        with self._lock:
            return list(self._sources)

    def total_bytes(self) -> int:
        """Bytes in the run files not yet read, roughly: for a progress bar."""
        total = 0
        with self._lock:
            sources = list(self._sources.values())
        for source in sources:
            for path in source.files():
                try:
                    total += path.stat().st_size
                except OSError:
                    continue
        return total

    # --- reading ---------------------------------------------------------------------------------------
    def poll(
        self, only: Collection[Path] | None = None, *, rescan_every: float | None = None
    ) -> list[RunUpdate]:
        """Read what is new (IO and parsing only; the runs are not touched).

        ``only``: the paths filesystem events named; just the runs holding them are read (and those
        whose last read stopped at ``max_bytes``), and a path in no known run asks for a rescan. None:
        every run, skipping those whose stat shows nothing new. ``rescan_every``: seconds between
        backstop rescans (RESCAN_SECONDS by default).
        """
        since = time.monotonic() - self._last_scan
        every = RESCAN_SECONDS if rescan_every is None else rescan_every
        with self._lock:
            targets = None if only is None else self._runs_of(only)
        if since > every or (self._rescan_wanted and since > RESCAN_MIN_SECONDS):
            new = self.rescan()
            if targets is not None:
                targets.update(new)
        updates: list[RunUpdate] = []
        with self._lock:
            if targets is None:
                sources = list(self._sources.items())
            else:
                targets |= self._more
                sources = [
                    (run_dir, self._sources[run_dir]) for run_dir in self._sources if run_dir in targets
                ]
        for run_dir, source in sources:
            unchanged, taken = self._unchanged.check(run_dir, source)
            if unchanged and host_error(run_dir) is None:
                continue
            update = _read(source, self.max_bytes)
            self._unchanged.read(run_dir, taken, update)
            update.error = update.error or host_error(run_dir)
            if not update.empty or math.isfinite(update.mtime):
                updates.append(RunUpdate(run_dir, self._names[run_dir], update, source.has_end_events))
        self._more = {item.path for item in updates if item.update.more}
        return updates

    def announce(self, min_bytes: int = ANNOUNCE_BYTES) -> list[RunUpdate]:
        """An empty update for each run found but not yet handed out, so a monitor can list 1,000 runs
        before their files are parsed; none where the runs hold less than ``min_bytes`` (reading them
        takes about a frame: they are listed with their data). ``more`` is set: the run's records are
        still to come."""
        if self.total_bytes() < min_bytes:
            return []
        with self._lock:
            fresh = [run_dir for run_dir in self._sources if run_dir not in self._announced]
            self._announced.update(fresh)
            return [
                RunUpdate(run_dir, self._names[run_dir], SourceUpdate(more=True), False) for run_dir in fresh
            ]

    def _runs_of(self, paths: Collection[Path]) -> set[Path]:
        """The runs whose directories hold ``paths``; a path in none of them (a new run directory, a
        file the discovery has not seen) makes the next poll rescan. Called with the lock held."""
        runs: set[Path] = set()
        for path in paths:
            for directory in (path, *path.parents):
                owners = self._by_dir.get(directory)
                if owners is not None:
                    runs.update(owners)
                    break
            else:
                self._rescan_wanted = True
        return runs

    def iter_poll(self) -> Iterator[RunUpdate]:
        """Poll until everything on disk now has been read, in chunks of ``max_bytes`` per run."""
        pending = self.run_dirs
        while pending:
            still: list[Path] = []
            for run_dir in pending:
                source = self._sources[run_dir]
                update = _read(source, self.max_bytes)
                yield RunUpdate(run_dir, self._names[run_dir], update, source.has_end_events)
                if update.more and not update.failed:
                    still.append(run_dir)
            pending = still

    def apply(self, updates: list[RunUpdate]) -> set[Path]:
        """Fold updates into the runs; returns the run dirs whose data changed."""
        changed: set[Path] = set()
        for item in updates:
            try:
                self._apply_one(item, changed)
            except Exception as exc:  # a failure in one run's update marks that run, never the others
                run = self.runs.get(item.path)
                message = f"reading failed: {type(exc).__name__}: {exc}"
                if run is not None and message not in run.errors:
                    run.errors.append(message)
                    changed.add(item.path)
        return changed

    def _apply_one(self, item: RunUpdate, changed: set[Path]) -> None:
        run = self.runs.get(item.path)
        if run is None:
            run = self.runs[item.path] = Run(item.path, item.name, has_end_events=item.has_end_events)
            changed.add(item.path)
        run.has_end_events = item.has_end_events
        update = item.update
        if math.isfinite(update.mtime):
            run.touch(update.mtime)
        if update.error and update.error not in run.errors:
            run.errors.append(update.error)
            changed.add(item.path)
        if update.reset:
            run.reset()
            changed.add(item.path)
        if len(update.batch) or update.batch.bad_lines:
            run.add(update.batch)
            changed.add(item.path)

    def refresh(self) -> set[Path]:
        """Read and apply everything new, on the calling thread (for one-shot commands)."""
        changed: set[Path] = set()
        for item in self.iter_poll():
            changed |= self.apply([item])
        return changed

    def close(self) -> None:
        with self._lock:
            for source in self._sources.values():
                source.close()
