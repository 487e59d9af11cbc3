"""Which files of a remote run directory are copied, derived from the format registry.

Each format declares its globs (``remote_markers``, ``remote_files`` on
:class:`~termmon.ingest.formats.base.Format`), relative to the run directory (``fnmatch`` rules, ``/``
separates levels). MARKERS make a directory a run directory (as
``termmon.ingest.formats.registry.is_run_file`` does locally); MIRRORED are all the files read from
one. control.json is never mirrored: the monitor writes it on the remote side.
"""

from __future__ import annotations

from fnmatch import fnmatchcase
from typing import Final

from termmon.format import CONTROL_JSON
from termmon.ingest.formats import registry

MARKERS: Final = tuple(glob for fmt in registry.FORMATS for glob in fmt.remote_markers)
MIRRORED: Final = (*MARKERS, *(glob for fmt in registry.FORMATS for glob in fmt.remote_files))

NEVER: Final = frozenset({CONTROL_JSON})

#: How deep below a run directory a mirrored file may be (``metrics/loss`` is 2).
FILE_DEPTH: Final = max(glob.count("/") + 1 for glob in MIRRORED)


def is_marker(name: str) -> bool:
    return any(fnmatchcase(name, glob) for glob in MARKERS)


def is_mirrored(relative: str) -> bool:
    """Whether a file at ``relative`` (below its run directory) is copied."""
    if relative in NEVER or relative.startswith(".") or "/." in relative:
        return False
    depth = relative.count("/")
    return any(glob.count("/") == depth and fnmatchcase(relative, glob) for glob in MIRRORED)


def subdirs() -> list[str]:
    """Directories below a run directory that hold mirrored files (``metrics`` for MLflow)."""
    return sorted({glob.split("/", 1)[0] for glob in MIRRORED if "/" in glob})
