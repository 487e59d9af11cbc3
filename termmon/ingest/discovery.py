"""Finding runs from what the user typed: run dirs, parents of run dirs, run files, or globs.

What makes a directory a run is the formats' business (:mod:`termmon.ingest.formats.registry`); this
module only walks directories and asks it.
"""

from __future__ import annotations

import glob
import os
from pathlib import Path

from termmon.errors import NoRunsError, TermmonError, UsageError, os_error_text
from termmon.format import TELEMETRY_DIR
from termmon.ingest.formats import registry
from termmon.ingest.formats.base import RunLocation

#: Deep enough for ``<root>/<project>/mlruns/<experiment>/<run>`` and ``<root>/<exp>/lightning_logs/version_N``.
MAX_DEPTH = 5
#: Directories discovery never descends into (telemetry side files, caches, installed packages); the
#: remote scan prunes the same ones.
SKIP_DIRS = frozenset({TELEMETRY_DIR, "__pycache__", "node_modules", "site-packages"})
_GLOB_CHARS = frozenset("*?[")


def resolve_paths(paths: list[str]) -> list[Path]:
    """The roots to watch, in the order given; raises UsageError for a path that is not there.

    A glob is expanded here, so quoting it (``termmon 'runs/exp_*'``) works as well as letting the
    shell expand it. A run file given directly (``metrics.jsonl``, an event file) stands for its
    directory.
    """
    roots: list[Path] = []
    for raw in paths or ["."]:
        path = Path(raw).expanduser()
        if (mirrored := _remote_roots(raw)) is not None:
            candidates = mirrored
        elif _exists(path):
            candidates = [path]
        elif _GLOB_CHARS & set(raw):
            candidates = [Path(p) for p in sorted(glob.glob(os.path.expanduser(raw)))]
            if not candidates:
                raise UsageError(f"termmon: {raw}: no file or directory matches")
        else:
            raise UsageError(f"termmon: {raw}: no such file or directory")
        for candidate in candidates:
            if candidate.is_file():
                if not registry.is_run_file(candidate.name):
                    raise UsageError(f"termmon: {candidate}: {not_a_run_file()}")
                candidate = candidate.parent
            elif not candidate.is_dir():  # /dev/null, a FIFO, a socket
                raise UsageError(f"termmon: {candidate}: {not_a_run_file()}")
            resolved = candidate.resolve()
            if resolved not in roots:
                roots.append(resolved)
    return roots


def readable_formats() -> str:
    """What termmon reads, for messages: every format's file pattern."""
    return "termmon reads " + ", ".join(f.pattern for f in registry.FORMATS)


def not_a_run_file() -> str:
    """The reason given for a file that is no run's file."""
    return f"not a run directory or run file ({readable_formats()})"


def no_runs_message(paths: list[str] | list[Path], prog: str = "termmon") -> str:
    """The one line every command prints when the paths exist but hold no run."""
    where = " ".join(str(p) for p in paths) or "."
    return f"{prog}: no runs under {where}: not a run directory or a parent of one ({readable_formats()})"


def resolve_run(path: str | Path, prog: str = "termmon") -> RunLocation:
    """One run from what the user typed (a run file stands for its directory).

    Raises UsageError naming ``prog`` for a missing path, a path with no run, or one holding
    several runs (the message lists them, so the user can pick).
    """
    if isinstance(path, str) and (mirrored := _remote_roots(path, prog)) is not None:
        if len(mirrored) > 1:
            raise UsageError(f"{prog}: {path} matches {len(mirrored)} directories; choose one of them")
        path = mirrored[0]
    path = Path(path).expanduser().absolute()  # messages name files by their full path
    if not _exists(path, prog):
        inside = _run_inside_file(path)
        if inside is None:
            raise UsageError(f"{prog}: {path}: no such file or directory")
        return inside
    file = None
    if path.is_file():
        if not registry.is_run_file(path.name):
            raise UsageError(f"{prog}: {path}: {not_a_run_file()}")
        file, path = path, path.parent
    elif not path.is_dir():  # /dev/null, a FIFO, a socket
        raise UsageError(f"{prog}: {path}: {not_a_run_file()}")
    errors: list[str] = []
    found = find_runs(path, errors=errors)
    if errors and not found:
        raise TermmonError(f"{prog}: {errors[0]}")
    if file is not None and any(r.file == file for r in found):
        found = [r for r in found if r.file == file]  # the runs of that file, not of its folder
    if len(found) == 1:
        return found[0]
    shown = display_path(path)
    if not found:
        raise NoRunsError(no_runs_message([shown], prog))
    names = ", ".join(display_path(r.path) for r in found[:5])
    more = f", ... ({len(found)} in all)" if len(found) > 5 else ""
    raise UsageError(
        f"{prog}: {display_path(file) if file else shown} holds {len(found)} runs; choose one of them: {names}{more}"
    )


def _run_inside_file(path: Path) -> RunLocation | None:
    """The run a path below a many-runs file names (``mlflow.db/<experiment>/<run>``), or None."""
    for parent in path.parents:
        if parent.is_file():
            return next((r for r in find_runs(parent.parent, max_depth=0) if r.path == path), None)
        if parent.exists():
            return None
    return None


def _remote_roots(raw: str, prog: str = "termmon") -> list[Path] | None:
    """The local mirrors of a remote path (``host:path``, termmon/remote), or None for a local path."""
    from termmon.remote.registry import resolve

    return resolve(raw, prog)


def display_path(path: Path) -> str:
    """A path as the user knows it: ``host:/path`` for a mirrored remote directory (never the local
    mirror's, which is gone when termmon exits)."""
    from termmon.remote.registry import label

    return label(path) or str(path)


def _exists(path: Path, prog: str = "termmon") -> bool:
    """``path.exists()``, but a path we may not even look at is said so (exit 1), not a traceback."""
    try:
        return path.exists()
    except OSError as exc:
        raise TermmonError(f"{prog}: {os_error_text(path, exc)}") from exc


def find_runs(root: Path, max_depth: int = MAX_DEPTH, errors: list[str] | None = None) -> list[RunLocation]:
    """Runs at or below ``root`` (depth-first, sorted), one per run however many files it has.

    A directory's subdirectories are searched only when the formats that found runs in it say they
    are not part of those runs. Each directory is visited once by its resolved path, so a symlink loop
    (or two links to one run) lists each run once, under the first path found. A directory that cannot
    be listed is added to ``errors`` (``permission denied: PATH``) when given.
    """
    found: list[RunLocation] = []
    seen: set[str] = set()

    def walk(directory: Path, depth: int, real: str) -> None:
        if real in seen:
            return
        seen.add(real)
        try:
            with os.scandir(directory) as it:
                entries = list(it)
        except OSError as exc:
            if errors is not None and not isinstance(exc, FileNotFoundError):
                errors.append(os_error_text(directory, exc))
            return
        located = registry.locate(directory, [e.name for e in entries if _is_file(e) or _is_dir(e)])
        found.extend(located.runs)
        if not located.descend or depth >= max_depth:
            return
        subdirs = sorted(
            (entry.name, entry)
            for entry in entries
            if not entry.name.startswith(".")
            and entry.name not in SKIP_DIRS
            and _is_dir(entry)
            and not _links_to_sibling(directory, entry)
        )
        for name, entry in subdirs:
            # A real directory's resolved path is its parent's plus its name: resolving every one
            # (lstat per path component) was a third of a 1,000-run walk. Only links are resolved.
            child = os.path.realpath(entry.path) if _is_link(entry) else os.path.join(real, name)
            walk(directory / name, depth + 1, child)

    walk(root, 0, os.path.realpath(root))
    return found


def _is_link(entry: os.DirEntry[str]) -> bool:
    try:
        return entry.is_symlink()
    except OSError:
        return True  # resolve it the slow way


def _links_to_sibling(directory: Path, entry: os.DirEntry[str]) -> bool:
    """A symlink to another entry of the same directory (wandb's ``latest-run``): walking it would
    find that run twice. Given as a root, such a link is read as usual."""
    try:
        return entry.is_symlink() and Path(entry.path).resolve().parent == directory.resolve()
    except OSError:
        return False


def _is_file(entry: os.DirEntry[str]) -> bool:
    try:
        return entry.is_file()
    except OSError:
        return False


def _is_dir(entry: os.DirEntry[str]) -> bool:
    try:
        return entry.is_dir()
    except OSError:
        return False


def run_name(run_dir: Path, roots: list[Path]) -> str:
    """A short unique name: the path below the root it was found under, or the dir name for a root;
    ``host:`` before it for a remote run."""
    from termmon.remote.registry import run_label

    if (remote := run_label(run_dir, roots)) is not None:
        return remote
    for root in roots:
        if run_dir == root:
            return run_dir.name or str(run_dir)
        if run_dir.is_relative_to(root):
            return run_dir.relative_to(root).as_posix()
    return run_dir.name
