"""Exceptions that the command line turns into exit codes and one clear line on stderr."""

from __future__ import annotations


class TermmonError(Exception):
    """Something failed that is not the user's typing: exit 1 with this message."""

    exit_code = 1


class UsageError(TermmonError):
    """Bad usage or a path that does not exist: exit 2 with this message (DESIGN.md)."""

    exit_code = 2
