"""Exceptions that the command line turns into exit codes and one clear line on stderr."""

from __future__ import annotations


class TermmonError(Exception):
    """Something failed that is not the user's typing: exit 1 with this message."""

    exit_code = 1


class UsageError(TermmonError):
    """Bad usage or a path that does not exist: exit 2 with this message (DESIGN.md)."""

    exit_code = 2


def os_error_text(path: object, exc: OSError) -> str:
    """An OSError as the one line users see everywhere: ``permission denied: PATH``."""
    reason = exc.strerror or str(exc) or type(exc).__name__
    return f"{reason[:1].lower()}{reason[1:]}: {path}"


class NoRunsError(UsageError):
    """Paths that exist but hold no run termmon can read: every command says so in the same words and
    exits 1 (docs/formats.md). A UsageError for Python callers (``termmon.load``), who passed the path."""

    exit_code = 1
