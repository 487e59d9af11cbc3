"""Exceptions that the command line turns into exit codes and one clear line on stderr."""

from __future__ import annotations


class TermmonError(Exception):
    """Something failed that is not the user's typing: exit 1 with this message."""

    exit_code = 1


class UsageError(TermmonError):
    """Bad usage or a path that does not exist: exit 2 with this message (DESIGN.md)."""

    exit_code = 2


class NoRunsError(UsageError):
    """Paths that exist but hold no run termmon can read: every command says so in the same words and
    exits 1 (docs/formats.md). A UsageError for Python callers (``termmon.load``), who passed the path."""

    exit_code = 1
