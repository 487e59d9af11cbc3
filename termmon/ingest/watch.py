"""Turning filesystem activity into "something under these roots may have changed".

Events are hints, not truth (reference/tailing.md): inotify coalesces 200 appends into ~2 events,
drops its queue on overflow, reports an atomic replace only as a move, and network filesystems deliver
nothing at all. So every event just wakes the reader, which goes and looks; a slow stat poll runs all
the time to catch what events miss; and where events cannot work (a remote filesystem, no inotify
watches left) or the user asks for it (``--poll``), polling is all there is.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable
from pathlib import Path

from watchdog.events import FileSystemEvent, FileSystemEventHandler
from watchdog.observers import Observer
from watchdog.observers.api import BaseObserver

from termmon.remote.registry import start_live, stop_live
from termmon.remote.syncer import HostSyncer

#: Stat poll that runs beside filesystem events, to catch what they miss.
BACKSTOP_POLL_SECONDS = 2.0
#: Poll interval when events cannot be used and the user did not choose one.
FALLBACK_POLL_SECONDS = 1.0
#: Events arriving within this window are delivered as one wake-up.
COALESCE_SECONDS = 0.05

_REMOTE_FS = (
    "nfs",
    "nfs4",
    "cifs",
    "smb3",
    "smbfs",
    "9p",
    "ceph",
    "glusterfs",
    "lustre",
    "afs",
    "gpfs",
    "beegfs",
    "virtiofs",
    "fuse",
)


def filesystem_type(path: Path) -> str | None:
    """The type of the mount holding ``path`` (from /proc/mounts; None where that is unavailable)."""
    try:
        mounts = Path("/proc/mounts").read_text().splitlines()
    except OSError:
        return None
    best, best_type = "", None
    target = str(path.resolve())
    for line in mounts:
        parts = line.split()
        if len(parts) < 3:
            continue
        mount_point = parts[1].replace("\\040", " ")
        inside = target == mount_point or target.startswith(mount_point.rstrip("/") + "/")
        if inside and len(mount_point) >= len(best):
            best, best_type = mount_point, parts[2]
    return best_type


def is_remote(fs_type: str | None) -> bool:
    """Filesystems that deliver no events for writes made by other hosts (GNU tail's fremote())."""
    return fs_type is not None and fs_type.split(".")[0] in _REMOTE_FS


class _Wake(FileSystemEventHandler):
    def __init__(self, wake: threading.Event) -> None:
        self._wake = wake

    def on_any_event(self, event: FileSystemEvent) -> None:
        if event.event_type not in ("opened", "closed_no_write"):
            self._wake.set()


class ChangeWatcher:
    """Calls ``on_change()`` from its own thread whenever the roots may hold something new.

    ``poll_interval`` forces polling (``--poll``). ``mode`` says what is in use and why, for the
    status line.
    """

    def __init__(
        self,
        roots: list[Path],
        on_change: Callable[[], None],
        poll_interval: float | None = None,
    ) -> None:
        self.roots = roots
        self.on_change = on_change
        self._forced = poll_interval
        self.interval = poll_interval or BACKSTOP_POLL_SECONDS
        self.mode = "polling"
        self.reason = ""
        self.last_error: str | None = None
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._observer: BaseObserver | None = None
        self._thread: threading.Thread | None = None
        self._remote: list[HostSyncer] = []

    def start(self) -> None:
        # Remote runs (termmon/remote) are mirrored locally; keep their hosts syncing while we watch.
        self._remote = start_live(self.roots, self._forced)
        if self._forced is not None:
            self.mode, self.reason = "polling", f"--poll {self._forced:g}s"
        else:
            remote = [(root, fs) for root in self.roots if is_remote(fs := filesystem_type(root))]
            if remote:
                root, fs = remote[0]
                self.interval = FALLBACK_POLL_SECONDS
                self.mode, self.reason = "polling", f"{root} is on {fs}, which sends no change events"
            else:
                self._start_observer()
        if self._remote:
            hosts = len(self._remote)
            every = self._remote[0].interval
            self.reason += f"; {hosts} host{'s' if hosts != 1 else ''} over ssh every {every:g}s"
        self._thread = threading.Thread(target=self._loop, name="termmon-watch", daemon=True)
        self._thread.start()

    def _start_observer(self) -> None:
        observer = Observer()
        handler = _Wake(self._wake)
        try:
            for root in self.roots:
                observer.schedule(handler, str(root), recursive=True)
            observer.start()
        except OSError as exc:  # ENOSPC (no inotify watches left), EMFILE (no instances left)
            with contextlib.suppress(Exception):
                observer.stop()
            self.interval = FALLBACK_POLL_SECONDS
            self.mode, self.reason = "polling", f"filesystem events unavailable ({exc.strerror or exc})"
            return
        self._observer = observer
        self.mode, self.reason = "events", f"watchdog, with a {BACKSTOP_POLL_SECONDS:g}s stat poll"

    def _loop(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(self.interval)
            if self._stop.is_set():
                break
            if self._wake.is_set():
                # Let a burst of events settle into one look.
                self._stop.wait(COALESCE_SECONDS)
                self._wake.clear()
            try:
                self.on_change()
            except Exception as exc:  # the callback's own errors must not kill the watcher
                self.last_error = f"{type(exc).__name__}: {exc}"

    def stop(self) -> None:
        stop_live(self._remote)
        self._remote = []
        self._stop.set()
        self._wake.set()
        if self._observer is not None:
            with contextlib.suppress(Exception):
                self._observer.stop()
                self._observer.join(timeout=2)
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=2)

    def __enter__(self) -> ChangeWatcher:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
