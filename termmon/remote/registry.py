"""The process's remote hosts: one :class:`HostSyncer` per host, and the private mirror directory.

The mirror lives in a temporary directory private to this process (mode 0700, removed at exit): runs
are read again in full by each new monitor, but no two monitors share or race on a cache, and nothing
is left behind. The rest of termmon meets this module only through a few calls that take local paths:
``resolve`` (a path the user typed to local mirror roots), ``label`` (a path as the user knows it),
``run_label`` (a run's name), ``host_error``
(the host's state, as run error text), ``start_live``/``stop_live`` (from the change watcher) and
``owner`` (control.json writes).
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
import threading
from collections.abc import Iterable
from pathlib import Path, PurePosixPath

from termmon.remote.paths import RemotePath, parse_remote
from termmon.remote.syncer import HostSyncer

_lock = threading.Lock()
_syncers: dict[str, HostSyncer] = {}
_mirror_root: Path | None = None


def _root() -> Path:
    global _mirror_root
    if _mirror_root is None:
        # Short and private; under $XDG_RUNTIME_DIR when there is one (a per-user tmpfs).
        base = os.environ.get("XDG_RUNTIME_DIR")
        _mirror_root = Path(
            tempfile.mkdtemp(prefix="termmon-remote-", dir=base if base and os.path.isdir(base) else None)
        )
        atexit.register(shutdown)
    return _mirror_root


def syncer_for(remote: RemotePath) -> HostSyncer:
    with _lock:
        syncer = _syncers.get(remote.host_key)
        if syncer is None:
            safe = "".join(c if c.isalnum() or c in "-_.@" else "_" for c in remote.host_key)
            syncer = HostSyncer(remote, _root() / f"{len(_syncers)}-{safe}")
            _syncers[remote.host_key] = syncer
        return syncer


def resolve(raw: str, prog: str = "termmon") -> list[Path] | None:
    """The local mirror roots for a remote path (synced to what is there now), or None when ``raw`` is
    local. Raises UsageError (nothing there) or TermmonError (host unreachable)."""
    remote = parse_remote(raw)
    if remote is None:
        return None
    return syncer_for(remote).add_root(remote.path, prog)


def owner(path: Path) -> tuple[HostSyncer, str] | None:
    """The syncer mirroring ``path`` and the remote path it stands for, or None for a local path."""
    if _mirror_root is None:
        return None
    with _lock:
        syncers = list(_syncers.values())
    for syncer in syncers:
        remote = syncer.remote_path(path)
        if remote is not None:
            return syncer, remote
    return None


def label(path: Path) -> str | None:
    """``host:/remote/path`` for a mirrored directory."""
    found = owner(path)
    return None if found is None else found[0].remote.label(found[1])


def run_label(run_dir: Path, roots: list[Path]) -> str | None:
    """A remote run's short name, as a local one's but with its host: ``gpu1:exp_3`` (the path below
    the root it was found under; the directory's name when it is a root itself)."""
    found = owner(run_dir)
    if found is None:
        return None
    syncer, remote = found
    for root in roots:
        if root == run_dir:
            return f"{syncer.remote.host_key}:{PurePosixPath(remote).name or remote}"
    for root in roots:
        if run_dir.is_relative_to(root) and root.is_relative_to(syncer.mirror_dir):
            return f"{syncer.remote.host_key}:{run_dir.relative_to(root).as_posix()}"
    return syncer.remote.label(remote)


def host_error(path: Path) -> str | None:
    """Why the host of a mirrored run is not updating (None when it is, or the run is local)."""
    found = owner(path)
    return None if found is None else found[0].error


def start_live(roots: Iterable[Path], interval: float | None) -> list[HostSyncer]:
    """Keep the hosts of these roots syncing in the background; pass the result to stop_live."""
    started: list[HostSyncer] = []
    for root in roots:
        found = owner(root)
        if found is not None and found[0] not in started:
            found[0].start(interval)
            started.append(found[0])
    return started


def stop_live(syncers: Iterable[HostSyncer]) -> None:
    for syncer in syncers:
        syncer.stop()


def shutdown() -> None:
    """Close every session and remove the mirror (at exit)."""
    global _mirror_root
    with _lock:
        syncers = list(_syncers.values())
        _syncers.clear()
    for syncer in syncers:
        syncer.close()
    if _mirror_root is not None:
        shutil.rmtree(_mirror_root, ignore_errors=True)
        _mirror_root = None
