"""All the runs under the paths the user gave, kept up to date.

Reading is split from applying so a UI can keep parsing off its own thread: :meth:`Workspace.poll`
does the file IO and parsing (call it from a worker thread) and returns updates; :meth:`Workspace.apply`
folds them into the :class:`Run` objects (call it on the thread that reads the runs).

Tail first: the first poll of a big run reads only its last window (:meth:`RunSource.tail_source`), so
the monitor can draw it at once; later polls read the history from the start into a hidden run, while
the window keeps following appends. When the history read reaches the end of the file, the shown run
takes the hidden run's records (:meth:`Run.adopt`) and the window is dropped. Everything shown from
then on came from the one history reader, so no record is lost or shown twice across the swap. Until
then the run is ``loading``: no status or alert is judged from it.
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
#: The first poll reads at most about this much of the new runs' recent windows, so the first frame
#: waits for little parsing; windows past it are read on the next polls (the loop comes straight back).
TAIL_BUDGET = 2 << 20
#: The run the monitor shows first gets a window that fills the widest panel (1 MiB: ~4,000-9,000
#: metrics.jsonl lines, a few points for every braille column; 4 MiB made the first frame wait ~70 ms
#: for parsing) ...
LEAD_WINDOW = 1 << 20
#: ... every other run one that fills its picker row (the sparkline and the last values: ~60 lines).
#: 100 runs at an even share of 8 MiB made the first frame wait ~0.5 s for 30,000 records nobody saw.
ROW_WINDOW = 16 << 10
#: A run no bigger than this is read whole at once: little more than a window, and no "loading".
WHOLE_BYTES = 128 << 10


def tail_window(lead: bool, budget: int = TAIL_BUDGET) -> int:
    """Bytes of recent window to read of a new run: the lead run's (the one shown first), or a row's."""
    return max(ROW_WINDOW, min(LEAD_WINDOW, budget)) if lead else ROW_WINDOW


#: Runs holding more than this are listed before they are read (announce()).
ANNOUNCE_BYTES = 8 << 20


@dataclass
class RunUpdate:
    """One read of one run. ``tail``: from its recent-window reader (shown while the history loads);
    ``behind``: from the history reader while a window is shown, into the hidden run; ``caught_up``:
    that history read reached the end of the files (swap the hidden run in); ``fraction``: how much
    of the history is read."""

    path: Path
    name: str
    update: SourceUpdate
    has_end_events: bool
    tail: bool = False
    behind: bool = False
    caught_up: bool = False
    fraction: float = 0.0


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


def _tail(source: RunSource, window: int, min_size: int) -> RunSource | None:
    """The recent-window reader of a run, or None: small (up to ``min_size``, read whole in one go
    rather than twice, window then history), or it failed (the history reader then meets and reports
    the same problem)."""
    try:
        return source.tail_source(window, min_size=min_size)
    except Exception:
        return None


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
        self,
        paths: list[str],
        *,
        max_bytes: int = READ_CHUNK,
        run: RunLocation | None = None,
        tail_budget: int = TAIL_BUDGET,
    ) -> None:
        """``run``: watch that one run only (``paths`` then name its root), not all runs found.
        ``tail_budget``: bytes of recent windows the first poll of new runs reads (see
        :func:`tail_window`); 0 reads every run from its start only."""
        self.roots = resolve_paths(paths)
        self._only = run
        self.max_bytes = max_bytes
        self.tail_budget = tail_budget
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
        self._read_once: set[Path] = set()  # runs whose first read was handed on (reader thread)
        #: Runs not read yet: poll() reads their recent window first. The reader thread owns it,
        #: with ``_tails`` (the window readers of runs whose history is loading) and ``_progress``
        #: (history bytes read, and the size to read); the UI thread owns ``_history`` (hidden runs).
        self._unread: set[Path] = set()
        self._tails: dict[Path, RunSource] = {}
        self._progress: dict[Path, tuple[int, int]] = {}
        self._history: dict[Path, Run] = {}
        #: The real path of the run a monitor shows first (:meth:`show_first`); None: the first found.
        self._lead: str | None = None
        self._first: Path | None = None
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
                    self._unread.add(run_dir)
                    self._first = self._first or run_dir
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
        with self._lock:
            sources = list(self._sources.values())
        return sum(_size(path) for source in sources for path in source.files())

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
                targets |= self._more | self._unread  # loading runs are in _more: their reads said more
                sources = [
                    (run_dir, self._sources[run_dir]) for run_dir in self._sources if run_dir in targets
                ]
        # Past the budget's worth of windows, the rest wait for the next polls (the windows started
        # say ``more``, so the loop comes back at once); the first one a poll finds always starts.
        budget = self.tail_budget
        for run_dir, source in sources:
            if run_dir in self._unread:
                if self.tail_budget > 0 and budget <= 0:
                    continue
                self._unread.discard(run_dir)
                window = tail_window(self._is_lead(run_dir), self.tail_budget)
                if self.tail_budget > 0 and self._start_tail(run_dir, source, window, updates):
                    budget -= window
                    continue  # its history starts on the next poll: the first frame comes first
            if run_dir in self._tails:
                self._read_behind(run_dir, source, updates)
                continue
            unchanged, taken = self._unchanged.check(run_dir, source)
            if unchanged and host_error(run_dir) is None:
                continue
            update = _read(source, self.max_bytes)
            self._unchanged.read(run_dir, taken, update)
            update.error = update.error or host_error(run_dir)
            # A run's first read is handed on even when empty: it ends the "loading" of its listing.
            if not update.empty or math.isfinite(update.mtime) or run_dir not in self._read_once:
                self._read_once.add(run_dir)
                updates.append(RunUpdate(run_dir, self._names[run_dir], update, source.has_end_events))
        self._more = {item.path for item in updates if item.update.more}
        return updates

    def show_first(self, run_dir: Path) -> None:
        """Give ``run_dir`` (any path to it) the big recent window, for a monitor that shows it first."""
        self._lead = os.path.realpath(run_dir)

    def _is_lead(self, run_dir: Path) -> bool:
        if self._lead is None:
            return run_dir == self._first
        return os.path.realpath(run_dir) == self._lead

    def _start_tail(self, run_dir: Path, source: RunSource, window: int, updates: list[RunUpdate]) -> bool:
        """Read a new big run's recent window into ``updates``; False for a run read whole instead."""
        tail = _tail(source, window, max(2 * window, WHOLE_BYTES))
        if tail is None:
            return False
        self._tails[run_dir] = tail
        self._progress[run_dir] = (0, sum(_size(path) for path in source.files()))
        update = _read(tail, max(self.max_bytes, 2 * window))
        update.error = update.error or host_error(run_dir)
        update.more = True  # the history is still to read: the reading loop must come back for it
        updates.append(RunUpdate(run_dir, self._names[run_dir], update, source.has_end_events, tail=True))
        return True

    def _read_behind(self, run_dir: Path, source: RunSource, updates: list[RunUpdate]) -> None:
        """A loading run: what its window reader finds appended (shown now), then the next chunk of
        history (into the hidden run); the window reader is closed once the history reaches the end."""
        tail = self._tails[run_dir]
        name, ends = self._names[run_dir], source.has_end_events
        recent = _read(tail, self.max_bytes)
        if not recent.empty:
            updates.append(RunUpdate(run_dir, name, recent, ends, tail=True))
        update = _read(source, self.max_bytes)
        update.error = update.error or host_error(run_dir)
        done, total = self._progress[run_dir]
        done += update.bytes_read
        self._progress[run_dir] = (done, total)
        caught_up = not update.more or update.failed
        if caught_up:
            tail.close()
            del self._tails[run_dir], self._progress[run_dir]
        fraction = 1.0 if caught_up else min(0.99, done / total) if total else 0.0
        updates.append(
            RunUpdate(run_dir, name, update, ends, behind=True, caught_up=caught_up, fraction=fraction)
        )

    def name_of(self, run_dir: Path) -> str:
        """The name ``run_dir``'s run is shown under (unique among the runs found)."""
        with self._lock:
            return self._names[run_dir]

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

    def iter_poll(self, skip: Collection[Path] = ()) -> Iterator[RunUpdate]:
        """Poll until everything on disk now has been read, in chunks of ``max_bytes`` per run; the runs
        in ``skip`` are left alone (a one-shot loader read them its own way)."""
        pending = [run_dir for run_dir in self.run_dirs if run_dir not in skip]
        self._unread.difference_update(self.run_dirs)  # read whole here: no recent window first
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
            run.loading = True
            changed.add(item.path)
        run.has_end_events = item.has_end_events
        if item.tail:
            run.window_only = True
            self._fold(run, item, changed)
        elif item.behind:
            self._fold_behind(run, item, changed)
        else:
            self._fold(run, item, changed)
            if not item.update.more:
                run.loading = False

    def _fold_behind(self, run: Run, item: RunUpdate, changed: set[Path]) -> None:
        """A chunk of a loading run's history, into its hidden run; swapped in once caught up."""
        hidden = self._history.get(item.path)
        if hidden is None:
            hidden = self._history[item.path] = Run(item.path, item.name, has_end_events=item.has_end_events)
        self._fold(hidden, item, set())
        run.loaded_fraction = item.fraction
        changed.add(item.path)  # the progress shown moved
        if item.caught_up:
            del self._history[item.path]
            run.adopt(hidden)
            run.loading = False

    def _fold(self, run: Run, item: RunUpdate, changed: set[Path]) -> None:
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
            for source in [*self._sources.values(), *self._tails.values()]:
                source.close()


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0
