"""One-shot loading for the commands that read runs and exit (summary, --static, report, ``load``).

A large termmon metrics.jsonl is parsed in pieces over worker processes (termmon.ingest.parallel);
everything else, and every file when no worker can help, is read as the monitor reads it. Both give
the same runs. A progress bar appears on stderr only when a load is slow enough to wonder about (half
a second), and only on a terminal, so piped output and quick loads stay clean.
"""

from __future__ import annotations

import contextlib
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from termmon.ingest.formats import registry
from termmon.ingest.formats.base import RunLocation
from termmon.ingest.formats.termmon_jsonl import TermmonJsonl
from termmon.ingest.gc_pause import gc_paused
from termmon.ingest.parallel import FileChangedError, ParallelReader, Plan, Split
from termmon.ingest.source import SourceUpdate
from termmon.model.run import Run
from termmon.model.workspace import RunUpdate, Workspace
from termmon.sanitize import terminal_text

if TYPE_CHECKING:
    from rich.progress import Progress, TaskID

PROGRESS_AFTER_SECONDS = 0.5
#: Runs of this many records or more have their columns joined at the end of a load (see _settle).
SETTLE_RECORDS = 100_000
#: How much more than the first piece's records per byte a file read in pieces is given room for (its
#: lines grow a little longer as step numbers grow; room left unfilled is mostly never touched).
RESERVE_MARGIN = 1.05


def load_workspace(
    paths: list[str],
    *,
    progress: bool = True,
    run: RunLocation | None = None,
    split: Split | None = None,
    meanwhile: Callable[[Run], object] | None = None,
) -> Workspace:
    """Discover and read every run under ``paths`` (or just ``run``) to the end of what is on disk now.

    ``split``: when a file is worth parsing in pieces over worker processes (default: a file of
    MIN_PARALLEL_BYTES or more, one worker per usable core but the caller's own). ``meanwhile``: called
    with a run read in pieces after each piece is applied (it is ``loading`` until its last): work on the
    records so far done then shares the cores with the workers' parsing, where done after the load it
    would run on one core while they sat idle.

    The cyclic collector is paused while the files are read (:func:`gc_paused`): the parsed records
    hold no cycles, and it would only walk them (~4 % of a one-process 1M-line ``summary``'s CPU).
    """
    workspace = Workspace(paths, run=run)
    order = workspace.run_dirs
    bar = _LazyProgress(workspace.total_bytes(), enabled=progress and sys.stderr.isatty())
    in_pieces: set[Path] = set()
    try:
        with gc_paused():
            with ParallelReader(split or Split()) as reader:
                for run_dir in order:
                    plan = _plan(reader, run_dir)
                    if plan is not None and _read_in_pieces(workspace, reader, plan, run_dir, bar, meanwhile):
                        in_pieces.add(run_dir)
            for item in workspace.iter_poll(skip=in_pieces):
                workspace.apply([item])
                bar.advance(item.update.bytes_read)
    finally:
        bar.close()
        workspace.close()
    # Runs read in pieces were made first: keep the order they were found in.
    workspace.runs = {run_dir: workspace.runs[run_dir] for run_dir in order if run_dir in workspace.runs}
    for loaded in workspace.runs.values():
        if loaded.records >= SETTLE_RECORDS:
            _settle(loaded)
    return workspace


def _settle(run: Run) -> None:
    """Join each column's pieces now, one column at a time, and hand the freed pieces' pages back to the
    system after each. Left to themselves, the small pieces' pages stay with the allocator, each joined
    column takes fresh ones, and a 1M-record load peaks at ~1.6x its columns (411 against 265 MiB)."""
    trim = _malloc_trim()
    columns = [run.time, run.step, run.epoch, run.kind, run.event]
    columns += [part for column in run.metrics.values() for part in (column.rows, column.values)]
    for column in columns:
        column.view  # noqa: B018  (reading the view joins the pieces)
        trim()


def _malloc_trim() -> Callable[[], object]:
    """glibc's malloc_trim(0) (free pages anywhere in the heap go back), or a no-op elsewhere."""
    import ctypes  # numpy has imported it already

    try:
        trim = ctypes.CDLL(None).malloc_trim
    except (AttributeError, OSError):
        return lambda: None
    return lambda: trim(0)


def _plan(reader: ParallelReader, run_dir: Path) -> Plan | None:
    """How to read ``run_dir`` in pieces: only a termmon metrics.jsonl (the format a source would pick
    for the directory), and only one worth it."""
    try:
        names = os.listdir(run_dir)
    except OSError:
        return None
    best = registry.best_for_dir(run_dir, names)
    if not isinstance(best, TermmonJsonl):
        return None
    return reader.plan(best.files(RunLocation(run_dir, best.name))[0])


def _read_in_pieces(
    workspace: Workspace,
    reader: ParallelReader,
    plan: Plan,
    run_dir: Path,
    bar: _LazyProgress,
    meanwhile: Callable[[Run], object] | None = None,
) -> bool:
    """Apply ``plan``'s batches to the run; False if the file changed meanwhile (the run is then reset,
    for its source to read the usual way)."""
    name = workspace.name_of(run_dir)

    def apply(update: SourceUpdate) -> None:
        workspace.apply([RunUpdate(run_dir, name, update, has_end_events=TermmonJsonl.has_end_events)])

    applied = False
    try:
        with contextlib.closing(reader.read(plan)) as batches:
            for (start, end), batch in zip(plan.pieces, batches, strict=True):
                more = end < plan.end  # the run stays "loading" until its last piece
                apply(SourceUpdate(batch=batch, mtime=plan.mtime, bytes_read=end - start, more=more))
                run = workspace.runs.get(run_dir)
                if not applied and more and run is not None:
                    # Room for the whole file at the first piece's density: each later piece is then
                    # copied into place as it comes, and nothing is left to join at the end.
                    run.reserve(int(run.records * plan.end / end * RESERVE_MARGIN))
                applied = True
                bar.advance(end - start)
                if meanwhile is not None and run is not None:
                    meanwhile(run)
    except FileChangedError:
        if applied:
            apply(SourceUpdate(reset=True))
        return False
    return True


def load_runs(paths: list[str], *, progress: bool = True) -> list[Run]:
    """The runs under ``paths``, fully read, in discovery order."""
    return list(load_workspace(paths, progress=progress).runs.values())


def problems(workspace: Workspace) -> list[str]:
    """Everything that could not be read (``permission denied: PATH``, a reader that failed), once each:
    the workspace's own errors, then each run's (alert detectors may add to these after loading)."""
    found = list(workspace.errors)
    for run in workspace.runs.values():
        for error in run.errors:
            where = error if str(run.path) in error else f"{run.path}: {error}"  # say which run
            if where not in found:
                found.append(where)
    return found


def report_problems(prog: str, workspace: Workspace) -> int:
    """Print :func:`problems` to stderr, one sanitised line each; the exit code: 1 if any, else 0.

    The command's output for the runs that could be read is printed all the same: one unreadable run
    never hides the others.
    """
    found = problems(workspace)
    for problem in found:
        print(f"{prog}: {terminal_text(problem)}", file=sys.stderr)
    return 1 if found else 0


def load_run(location: RunLocation, *, progress: bool = True) -> Run | None:
    """One run (from :func:`~termmon.ingest.discovery.resolve_run`), fully read."""
    workspace = load_workspace([str(location.dir)], progress=progress, run=location)
    return workspace.runs.get(location.path)


class _LazyProgress:
    def __init__(self, total: int, *, enabled: bool) -> None:
        self.total = total
        self.done = 0
        self.enabled = enabled
        self.started = time.monotonic()
        self._progress: Progress | None = None
        self._task: TaskID | None = None

    def advance(self, n: int) -> None:
        self.done += n
        if not self.enabled:
            return
        if self._progress is None:
            if time.monotonic() - self.started < PROGRESS_AFTER_SECONDS:
                return
            from rich.console import Console
            from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn

            self._progress = Progress(
                TextColumn("reading runs"),
                BarColumn(),
                DownloadColumn(),
                TimeRemainingColumn(),
                console=Console(stderr=True),
                transient=True,
            )
            self._progress.start()
            self._task = self._progress.add_task("read", total=max(self.total, self.done))
        assert self._task is not None
        self._progress.update(self._task, completed=self.done, total=max(self.total, self.done))

    def close(self) -> None:
        if self._progress is not None:
            self._progress.stop()
