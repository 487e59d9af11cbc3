"""Finding run directories from what the user typed: run dirs, parents of run dirs, or globs."""

from __future__ import annotations

import glob
import os
from pathlib import Path

from termmon.errors import UsageError
from termmon.format import TELEMETRY_DIR, is_run_file

MAX_DEPTH = 3
_SKIP_DIRS = frozenset(
    {TELEMETRY_DIR, "__pycache__", "node_modules", "site-packages", "wandb", "tensorboard"}
)
_GLOB_CHARS = frozenset("*?[")


def resolve_paths(paths: list[str]) -> list[Path]:
    """The roots to watch, in the order given; raises UsageError for a path that is not there.

    A glob is expanded here, so quoting it (``termmon 'runs/exp_*'``) works as well as letting the
    shell expand it. A run file given directly (``metrics.jsonl``) stands for its directory.
    """
    roots: list[Path] = []
    for raw in paths or ["."]:
        path = Path(raw).expanduser()
        if (mirrored := _remote_roots(raw)) is not None:
            candidates = mirrored
        elif path.exists():
            candidates = [path]
        elif _GLOB_CHARS & set(raw):
            candidates = [Path(p) for p in sorted(glob.glob(os.path.expanduser(raw)))]
            if not candidates:
                raise UsageError(f"termmon: {raw}: no file or directory matches")
        else:
            raise UsageError(f"termmon: {raw}: no such file or directory")
        for candidate in candidates:
            if candidate.is_file():
                if not is_run_file(candidate.name):
                    raise UsageError(f"termmon: {candidate}: not a run directory or run file")
                candidate = candidate.parent
            resolved = candidate.resolve()
            if resolved not in roots:
                roots.append(resolved)
    return roots


def resolve_run_dir(path: str | Path, prog: str = "termmon") -> Path:
    """One run directory from what the user typed (a run file stands for its directory).

    Raises UsageError naming ``prog`` for a missing path, a directory with no run, or one holding
    several runs (the message lists them, so the user can pick).
    """
    if isinstance(path, str) and (mirrored := _remote_roots(path, prog)) is not None:
        if len(mirrored) > 1:
            raise UsageError(f"{prog}: {path} matches {len(mirrored)} directories; choose one of them")
        path = mirrored[0]
    path = Path(path).expanduser()
    if not path.exists():
        raise UsageError(f"{prog}: {path}: no such file or directory")
    if path.is_file():
        if is_run_file(path.name):
            return path.parent
        raise UsageError(f"{prog}: {path}: not a run directory or run file")
    if is_run_dir(path):
        return path
    found = find_run_dirs(path)
    shown = display_path(path)
    if not found:
        raise UsageError(
            f"{prog}: {shown}: not a run directory (no metrics.jsonl, results.json or debug_log_*.jsonl)"
        )
    names = ", ".join(display_path(p) for p in found[:5]) + (
        f", ... ({len(found)} in all)" if len(found) > 5 else ""
    )
    raise UsageError(f"{prog}: {shown} holds {len(found)} runs; choose one of them: {names}")


def _remote_roots(raw: str, prog: str = "termmon") -> list[Path] | None:
    """The local mirrors of a remote path (``host:path``, termmon/remote), or None for a local path."""
    from termmon.remote.registry import resolve

    return resolve(raw, prog)


def display_path(path: Path) -> str:
    """A path as the user knows it: ``host:/path`` for a mirrored remote directory (never the local
    mirror's, which is gone when termmon exits)."""
    from termmon.remote.registry import label

    return label(path) or str(path)


def is_run_dir(path: Path) -> bool:
    """A directory that directly holds metrics.jsonl, results.json or debug_log_*.jsonl."""
    try:
        with os.scandir(path) as entries:
            return any(is_run_file(entry.name) for entry in entries)
    except OSError:
        return False


def find_run_dirs(root: Path, max_depth: int = MAX_DEPTH) -> list[Path]:
    """Run directories at or below ``root`` (depth-first, sorted); a run dir's own children are not searched."""
    found: list[Path] = []

    def walk(directory: Path, depth: int) -> None:
        try:
            with os.scandir(directory) as it:
                entries = list(it)
        except OSError:
            return
        if any(is_run_file(entry.name) and _is_file(entry) for entry in entries):
            found.append(directory)
            return
        if depth >= max_depth:
            return
        subdirs = sorted(
            entry.name
            for entry in entries
            if not entry.name.startswith(".") and entry.name not in _SKIP_DIRS and _is_dir(entry)
        )
        for name in subdirs:
            walk(directory / name, depth + 1)

    walk(root, 0)
    return found


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
