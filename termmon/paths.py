"""Checks of the paths a command was given, made before any work: a wrong path is exit 2 and one line.

A sweep that runs for an hour and then finds that ``--output``'s folder does not exist throws away
every measurement; a comparison that says "no snapshots in A" when B does not exist sends the user
the wrong way. So commands check every path they were given first, here, the same way everywhere.
"""

from __future__ import annotations

from pathlib import Path

from termmon.errors import TermmonError, UsageError, os_error_text


def _is(path: Path, prog: str, test: str) -> bool:
    try:
        return bool(getattr(path, test)())
    except OSError as exc:  # EACCES on a parent: say so, not a traceback
        raise TermmonError(f"{prog}: {os_error_text(path, exc)}") from exc


def require_dir(path: Path, prog: str, what: str = "directory") -> None:
    """``path`` is an existing directory, else UsageError: ``no such run: PATH`` / ``not a directory``."""
    if not _is(path, prog, "exists"):
        raise UsageError(f"{prog}: no such {what}: {path}")
    if not _is(path, prog, "is_dir"):
        raise UsageError(f"{prog}: {path}: not a directory")


def require_output_file(path: Path, prog: str, option: str = "--output") -> None:
    """``path`` can be created as a file: not a directory, and its folder exists."""
    if _is(path, prog, "is_dir"):
        raise UsageError(f"{prog}: {option} {path} is a directory; give a file name")
    parent = path.parent
    if not _is(parent, prog, "exists"):
        raise UsageError(f"{prog}: {option} {path}: no such directory: {parent}")
    if not _is(parent, prog, "is_dir"):
        raise UsageError(f"{prog}: {option} {path}: not a directory: {parent}")


def require_output_dir(path: Path, prog: str, option: str = "--output") -> None:
    """``path`` is a directory or can be made one: it is not an existing file."""
    if _is(path, prog, "exists") and not _is(path, prog, "is_dir"):
        raise UsageError(f"{prog}: {option} {path} exists and is not a directory")
