"""Telling a remote path (``host:path``, ``user@host:path``, ``ssh://[user@]host[:port]/path``) from a
local one. The one place that parses them, so every command accepts the same spellings."""

from __future__ import annotations

import glob
import os
import re
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

from termmon.errors import UsageError

# scp's rule: a colon before any slash makes a host; [v6]:path for addresses with colons.
_SCP = re.compile(r"^(?:(?P<user>[^@/:\s]+)@)?(?P<host>\[[^\]/]+\]|[^@/:\[\]\s]+):(?P<path>.*)$", re.S)


@dataclass(frozen=True)
class RemotePath:
    """Where a remote path lives. ``path`` is as typed: relative paths are relative to the remote home."""

    host: str
    path: str
    user: str | None = None
    port: int | None = None

    @property
    def destination(self) -> str:
        """The host as ssh takes it (user and port go as options, so odd user names stay data)."""
        return self.host

    @property
    def host_key(self) -> str:
        """One connection per distinct (user, host, port)."""
        user = f"{self.user}@" if self.user else ""
        port = f":{self.port}" if self.port else ""
        return f"{user}{self.host}{port}"

    def label(self, path: str | None = None) -> str:
        """How the monitor names it: ``host:path``."""
        return f"{self.host_key}:{self.path if path is None else path}"


def parse_remote(raw: str) -> RemotePath | None:
    """The remote path ``raw`` names, or None when it is a local path.

    A path that exists locally (or a glob that matches locally) stays local even when it holds a
    colon, and so does anything with a slash before its first colon (``./a:b``, ``/data/x:y``), as
    with scp.
    """
    if raw.startswith("ssh://"):
        return _parse_url(raw)
    local = os.path.expanduser(raw)
    if os.path.lexists(local) or (set("*?[") & set(raw) and glob.glob(local)):
        return None
    match = _SCP.match(raw)
    if match is None:
        return None
    host = match["host"]
    if host.startswith("["):
        host = host[1:-1]
    path = match["path"] or "."
    return RemotePath(host=host, path=path, user=match["user"])


def _parse_url(raw: str) -> RemotePath:
    parts = urlsplit(raw)
    try:
        port = parts.port
    except ValueError as exc:
        raise UsageError(f"termmon: {raw}: bad port in ssh:// URL") from exc
    if not parts.hostname:
        raise UsageError(f"termmon: {raw}: an ssh:// URL needs a host (ssh://[user@]host[:port]/path)")
    path = unquote(parts.path)
    # ssh://host/~/runs and ssh://host/runs are both relative to home when written with ~; an
    # absolute path is ssh://host//abs or ssh://host/abs (git's convention: /abs is absolute).
    if path.startswith("/~/"):
        path = path[3:] or "."
    elif path in ("", "/~"):
        path = "."
    return RemotePath(
        host=parts.hostname,
        path=path,
        user=unquote(parts.username) if parts.username else None,
        port=port,
    )
