"""Turning filesystem activity into "something under these roots may have changed".

Events are hints, not truth (reference/tailing.md): inotify coalesces 200 appends into ~2 events,
drops its queue on overflow, reports an atomic replace only as a move, and network filesystems deliver
nothing at all. So every event just wakes the reader, which goes and looks; a slow stat poll runs all
the time to catch what events miss; and where events cannot work (a remote filesystem, no inotify
watches left) or the user asks for it (``--poll``), polling is all there is.

With many runs being written at once, events never stop: looking at every run on every event cost
100 runs x 50 lines/s most of a core. So events are batched: the paths they name are gathered
(:meth:`ChangeWatcher.take`), a burst becomes one look, looks while events stream are at least
``MIN_LOOK_SECONDS`` apart, and a look reads only the runs those paths belong to; every run is looked
at on the backstop poll, which events streaming do not postpone.
"""

from __future__ import annotations

import contextlib
import errno
import os
import select
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from watchdog.events import FileSystemEvent, FileSystemEventHandler
from watchdog.observers import Observer
from watchdog.observers.api import BaseObserver

from termmon.ingest.inotify import Inotify
from termmon.remote.registry import start_live, stop_live
from termmon.remote.syncer import HostSyncer

#: Stat poll that runs beside filesystem events, to catch what they miss.
BACKSTOP_POLL_SECONDS = 2.0
#: Poll interval when events cannot be used and the user did not choose one.
FALLBACK_POLL_SECONDS = 1.0
#: Events arriving within this window are delivered as one wake-up.
COALESCE_SECONDS = 0.05
#: While events stream, looks are at least MIN_LOOK_SECONDS apart, plus LOOK_SECONDS_PER_PATH for each
#: path the last look was handed, up to MAX_LOOK_SECONDS: each changed run costs the reader and the UI
#: a read, a fold into the model and an alert pass, so the busier the roots, the fewer looks. One run
#: streaming is looked at nearly four times a second; 20 runs every 0.75 s (at 0.4 s, their reads and
#: folds were a third of the monitor's CPU); 30 or more once a second, the cost of ``--poll 1`` (a
#: chart that only gained records is redrawn once a second anyway).
MIN_LOOK_SECONDS = 0.25
LOOK_SECONDS_PER_PATH = 0.025
MAX_LOOK_SECONDS = 1.0
#: More distinct paths than this in one batch: look at everything rather than map each one.
MAX_PATHS = 10_000

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


@dataclass
class Changes:
    """What happened since the last :meth:`ChangeWatcher.take`: the paths events named, and whether
    to look at every run anyway (the first look, a backstop poll, polling, too many paths)."""

    paths: set[Path] = field(default_factory=set)
    everything: bool = False


def _event_paths(event: FileSystemEvent) -> list[Path]:
    paths = [event.src_path, getattr(event, "dest_path", "")]
    return [Path(os.fsdecode(p)) for p in paths if p]


class _Gather(FileSystemEventHandler):
    """Adds the paths each event names to the watcher's pending changes, and wakes it."""

    def __init__(self, watcher: ChangeWatcher) -> None:
        self._watcher = watcher

    def on_any_event(self, event: FileSystemEvent) -> None:
        if event.event_type not in ("opened", "closed_no_write"):
            self._watcher.note(_event_paths(event))


class ChangeWatcher:
    """Calls ``on_change()`` from its own thread whenever the roots may hold something new.

    The callee may call :meth:`take` to learn which paths events named since the last look, so it
    reads only those runs; a caller that ignores it simply looks at everything each time.

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
        self._lock = threading.Lock()
        self._pending = Changes(everything=True)  # the first look reads everything
        self._last_look = -float("inf")
        self._last_batch = 0  # paths handed over by the last take()
        self._last_full = time.monotonic()
        self._observer: BaseObserver | None = None
        self._inotify: Inotify | None = None
        self._stop_pipe: tuple[int, int] | None = None  # wakes the inotify wait on stop()
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
        from termmon.ingest.discovery import SKIP_DIRS

        try:  # Linux: read the kernel's queue once per look (termmon.ingest.inotify)
            self._inotify = Inotify(self.roots, SKIP_DIRS)
        except OSError as exc:
            if exc.errno in (errno.ENOSPC, errno.EMFILE):  # no watches or instances left: poll
                self.interval = FALLBACK_POLL_SECONDS
                self.mode, self.reason = "polling", f"filesystem events unavailable ({exc.strerror or exc})"
                return
        else:
            self._stop_pipe = os.pipe()
            self.mode, self.reason = "events", f"inotify, with a {BACKSTOP_POLL_SECONDS:g}s stat poll"
            return
        observer = Observer()
        handler = _Gather(self)
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

    def _wait(self, timeout: float) -> bool:
        """Wait for events (or stop()) at most ``timeout`` seconds; whether any came."""
        if self._inotify is None or self._stop_pipe is None:
            return self._wake.wait(timeout)
        try:
            ready, _, _ = select.select([self._inotify.fd, self._stop_pipe[0]], [], [], timeout)
        except (OSError, ValueError):
            return False
        return bool(ready)

    def _drain(self) -> None:
        """Hand what the kernel queued since the last look to :meth:`note` (inotify only)."""
        if self._inotify is None:
            return
        paths, overflow = self._inotify.drain()
        if overflow:
            with self._lock:
                self._pending.everything, self._pending.paths = True, set()
        elif paths:
            self.note(list(paths))

    def note(self, paths: list[Path]) -> None:
        """Paths that may have changed (an event's); the next look reads the runs they belong to."""
        with self._lock:
            pending = self._pending
            if not pending.everything:
                pending.paths.update(paths)
                if len(pending.paths) > MAX_PATHS:
                    pending.everything, pending.paths = True, set()
        self._wake.set()

    def take(self) -> Changes:
        """What changed since the last call (the caller then looks): paths, or everything."""
        with self._lock:
            taken, self._pending = self._pending, Changes()
            self._last_batch = len(taken.paths)
        return taken

    def _look_gap(self) -> float:
        """Seconds between looks while events stream (see MIN_LOOK_SECONDS)."""
        return min(MAX_LOOK_SECONDS, MIN_LOOK_SECONDS + LOOK_SECONDS_PER_PATH * self._last_batch)

    def _loop(self) -> None:
        while not self._stop.is_set():
            woke = self._wait(max(0.0, self._last_full + self.interval - time.monotonic()))
            if self._stop.is_set():
                break
            if woke:
                # Let a burst of events settle into one look, and space looks while events stream
                # (inotify's events wait in the kernel meanwhile, costing nothing).
                settle = max(COALESCE_SECONDS, self._last_look + self._look_gap() - time.monotonic())
                self._stop.wait(settle)
                self._wake.clear()
                self._drain()
            now = time.monotonic()
            if now - self._last_full >= self.interval:
                # The backstop: every run, also while events keep arriving for some of them.
                with self._lock:
                    self._pending.everything, self._pending.paths = True, set()
                self._last_full = now
            self._last_look = now
            try:
                self.on_change()
            except Exception as exc:  # the callback's own errors must not kill the watcher
                self.last_error = f"{type(exc).__name__}: {exc}"

    def stop(self) -> None:
        stop_live(self._remote)
        self._remote = []
        self._stop.set()
        self._wake.set()
        if self._stop_pipe is not None:
            with contextlib.suppress(OSError):
                os.write(self._stop_pipe[1], b"x")
        if self._observer is not None:
            with contextlib.suppress(Exception):
                self._observer.stop()
                self._observer.join(timeout=2)
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=2)
        if self._inotify is not None:
            self._inotify.close()
            self._inotify = None
        if self._stop_pipe is not None:
            for fd in self._stop_pipe:
                with contextlib.suppress(OSError):
                    os.close(fd)
            self._stop_pipe = None

    def __enter__(self) -> ChangeWatcher:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
