"""One host: its ssh session, the remote roots watched there, and the mirror of their run files.

:meth:`HostSyncer.sync` is one round: (re)connect if needed, list the run files under the roots when a
rescan is due, then fetch the new bytes of every file (bounded per round). It runs on the caller's
thread for one-shot commands, and on the syncer's own thread, every ``interval`` seconds, while a
live view watches. Failures become :attr:`HostSyncer.error` and a retry with backoff; the mirror's
offsets are only moved by bytes actually received, so a reconnect neither loses nor repeats a byte.
"""

from __future__ import annotations

import posixpath
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from termmon.errors import TermmonError, UsageError
from termmon.ingest.discovery import MAX_DEPTH
from termmon.remote import files, scripts
from termmon.remote.mirror import MirrorFile
from termmon.remote.paths import RemotePath
from termmon.remote.transport import SshSession, TransportError, one_line

DEFAULT_POLL_SECONDS = 2.0
#: Remote run files are listed again this often (new runs, new debug_log_N.jsonl files).
RESCAN_SECONDS = 10.0
#: Bytes fetched per host per round; a round that hits it is followed by another at once.
ROUND_BYTES = 4 << 20
REQUEST_TIMEOUT_SECONDS = 60.0
BACKOFF_SECONDS = (1.0, 2.0, 5.0, 10.0, 30.0)


@dataclass
class RemoteRoot:
    """What the user typed (``pattern``) and what it expanded to on the remote side."""

    pattern: str
    dirs: list[str] = field(default_factory=list)  # absolute remote directories
    file_dirs: list[str] = field(default_factory=list)  # dirs of run files given directly (in dirs too)
    not_runs: list[str] = field(default_factory=list)  # files given that are no run files


class HostSyncer:
    """Mirror of the runs under some roots on one host. Thread-safe: one round at a time."""

    def __init__(self, remote: RemotePath, mirror_dir: Path) -> None:
        self.remote = remote
        self.mirror_dir = mirror_dir
        self.interval = DEFAULT_POLL_SECONDS
        self.error: str | None = None
        self.session = SshSession(remote, scripts.prelude())
        self.roots: list[RemoteRoot] = []
        self.files: dict[str, MirrorFile] = {}
        self._lock = threading.RLock()
        self._last_scan = -float("inf")
        self._registered = 0  # files whose paths the current remote shell knows (tm_reg)
        self._registered_in: object = None
        self._failures = 0
        self._live = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # --- paths ---------------------------------------------------------------------------------------------
    def local_path(self, remote_path: str) -> Path:
        """Where a remote absolute path is mirrored."""
        parts = [p for p in PurePosixPath(remote_path).parts if p not in ("/", "", ".", "..")]
        return self.mirror_dir.joinpath(*parts)

    def remote_path(self, local: Path) -> str | None:
        try:
            relative = local.relative_to(self.mirror_dir)
        except ValueError:
            return None
        return "/" + relative.as_posix() if relative.parts else "/"

    # --- one-shot use --------------------------------------------------------------------------------------
    def add_root(self, pattern: str, prog: str = "termmon") -> list[Path]:
        """Expand ``pattern`` on the remote and mirror what is there now; returns the local roots.

        Raises UsageError when nothing matches, TermmonError when the host cannot be reached.
        """
        with self._lock:
            root = next((r for r in self.roots if r.pattern == pattern), None)
            if root is None:
                root = RemoteRoot(pattern)
                self.roots.append(root)
            try:
                if not self.session.alive:
                    self.session.open()
                self._discover([root])  # only the new root: typing 100 paths costs 100 scans, not 100²/2
                while self._fetch():
                    pass
            except TransportError as exc:
                self.session.close()
                self.roots.remove(root)
                raise TermmonError(f"{prog}: {self.remote.label(pattern)}: {exc.reason}") from exc
            if not root.dirs:
                self.roots.remove(root)
                what = "not a run directory or run file" if root.not_runs else "no such file or directory"
                raise UsageError(f"{prog}: {self.remote.label(pattern)}: {what}")
            return [self.local_path(d) for d in root.dirs]

    def sync(self) -> bool:
        """One round; True when more is waiting. Raises TransportError; the session is closed then,
        so the next round reconnects."""
        with self._lock:
            try:
                if not self.session.alive:
                    self.session.open()
                if time.monotonic() - self._last_scan > RESCAN_SECONDS:
                    self._discover(self.roots)
                    self._last_scan = time.monotonic()
                more = self._fetch()
            except TransportError:
                self.session.close()
                raise
            return more

    def close(self) -> None:
        """Stop the thread however many watchers started it, and end the session."""
        with self._lock:
            self._live = min(self._live, 1)
        self.stop()
        with self._lock:
            self.session.close()

    # --- live use ------------------------------------------------------------------------------------------
    def start(self, interval: float | None) -> None:
        """Keep the mirror current from a thread, every ``interval`` seconds (counted: stop() per start())."""
        with self._lock:
            if interval:
                self.interval = interval
            self._live += 1
            if self._thread is None:
                self._stop.clear()
                self._thread = threading.Thread(
                    target=self._loop, name=f"termmon-ssh-{self.remote.host_key}", daemon=True
                )
                self._thread.start()

    def stop(self) -> None:
        with self._lock:
            self._live = max(0, self._live - 1)
            thread = self._thread if self._live == 0 else None
            if thread is not None:
                self._stop.set()
                self._thread = None
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=5)

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                more = self.sync()
            except TransportError as exc:
                delay = BACKOFF_SECONDS[min(self._failures, len(BACKOFF_SECONDS) - 1)]
                self._failures += 1
                self.error = f"{exc}; retrying"
                self._stop.wait(delay)
                continue
            except OSError as exc:  # the local mirror: a full disk, say
                self.error = f"{self.remote.host_key}: local mirror: {one_line(str(exc))}"
                self._stop.wait(self.interval)
                continue
            self._failures = 0
            self.error = None
            if not more:
                self._stop.wait(self.interval)

    # --- the rounds ----------------------------------------------------------------------------------------
    def _deadline(self) -> float:
        return time.monotonic() + REQUEST_TIMEOUT_SECONDS

    def _blob(self, tag: bytes, deadline: float) -> tuple[list[bytes], bytes]:
        header = self.session.readline(deadline).split()
        if not header or header[0] != tag:
            raise TransportError(self.remote.host_key, f"unexpected reply {one_line(repr(header[:3]))}")
        return header, self.session.read(int(header[-1]), deadline)

    def _discover(self, roots: list[RemoteRoot]) -> None:
        """Expand ``roots`` on the remote and add the run files found below them."""
        self.session.send(scripts.discover(self._typed(r.pattern) for r in roots))
        deadline = self._deadline()
        wanted: list[str] = []
        for root in roots:
            _, blob = self._blob(b"B", deadline)
            root.dirs, root.file_dirs, root.not_runs = [], [], []
            candidates: list[str] = []
            tokens = blob.split(b"\0")
            i = 0
            while i + 1 < len(tokens):
                kind, value = tokens[i], tokens[i + 1].decode("utf-8", "surrogateescape")
                i += 2
                if kind == b"d":
                    root.dirs.append(value)
                elif kind == b"p":
                    candidates.append(value)
                elif kind == b"f" and i < len(tokens):
                    name = tokens[i].decode("utf-8", "surrogateescape")
                    i += 1
                    if not files.is_marker(name):
                        root.not_runs.append(posixpath.join(value, name))
                    elif value not in root.dirs:
                        root.dirs.append(value)
                        root.file_dirs.append(value)
            for directory in root.dirs:
                self.local_path(directory).mkdir(parents=True, exist_ok=True)
            wanted += _run_files(root, candidates)
        for path in wanted:
            if path not in self.files:
                mirror = MirrorFile(
                    remote_dir=posixpath.dirname(path), remote=path, local=self.local_path(path)
                )
                self.files[path] = mirror

    def _typed(self, pattern: str) -> str:
        """The remote home is the remote shell's working directory, so ``~/x`` is ``x`` there."""
        if pattern in ("~", "~/"):
            return "."
        return pattern[2:] if pattern.startswith("~/") else pattern

    def _fetch(self) -> bool:
        mirrors = list(self.files.values())
        if not mirrors:
            return False
        if self._registered_in is not self.session.shell:
            self._registered_in, self._registered = self.session.shell, 0
        if self._registered < len(mirrors):
            # Paths go over once per session; each poll then names a file by its number.
            new = mirrors[self._registered :]
            first = self._registered
            self.session.send(
                scripts.register((first + k, m.remote_dir, m.remote) for k, m in enumerate(new))
            )
            self._registered = len(mirrors)
        requests = []
        for i, m in enumerate(mirrors):
            head_len, head_sum = m.fingerprint()
            requests.append((i, m.dev, m.ino, m.offset, m.mtime_seen, head_len, head_sum))
        self.session.send(scripts.poll(requests, ROUND_BYTES))
        deadline = self._deadline()
        more = False
        while True:
            header = self.session.readline(deadline).split()
            if not header:
                raise TransportError(self.remote.host_key, "empty reply")
            tag = header[0]
            if tag == b"E":
                return more
            m = mirrors[int(header[1])]
            m.clock_offset = self.session.clock_offset
            if tag in (b"M",):
                continue
            if tag == b"S":
                more = True
                continue
            n = int(header[-1])
            data = self.session.read(n, deadline) if n else b""
            if tag == b"D":
                m.append(data)
                more = True
                continue
            dev, ino, size, mtime = header[2].decode(), header[3].decode(), int(header[4]), float(header[5])
            m.mtime_seen = header[5].decode()
            if tag == b"A":
                m.append(data, mtime, size)
                more = more or m.offset < size
            elif tag == b"R":
                m.rewrite(data, size, mtime)
                more = more or m.offset < size
            elif tag == b"N":
                m.replace(dev, ino, data, size, mtime, rotated=header[6] == b"1")
                more = more or m.offset < size
            else:
                raise TransportError(self.remote.host_key, f"unexpected reply {one_line(repr(tag))}")

    # --- control.json --------------------------------------------------------------------------------------
    def read_file(self, path: str) -> bytes:
        with self._lock:
            if not self.session.alive:
                self.session.open()
            self.session.send(scripts.cat(path))
            return self._blob(b"C", self._deadline())[1]

    def write_file(self, directory: str, name: str, content: str, temp_name: str) -> None:
        """Replace ``directory/name`` atomically on the remote (temp file there, then mv)."""
        with self._lock:
            if not self.session.alive:
                self.session.open()
            self.session.send(scripts.put(directory, name, temp_name, content))
            header = self.session.readline(self._deadline()).split()
            if header[:2] == [b"W", b"0"]:
                return
            message = self.session.read(int(header[-1]), self._deadline()) if len(header) > 2 else b""
            raise TermmonError(
                f"cannot write {self.remote.label(posixpath.join(directory, name))}: "
                f"{one_line(message.decode('utf-8', 'replace')) or 'failed'}"
            )


def _run_files(root: RemoteRoot, candidates: list[str]) -> list[str]:
    """The files to mirror: run dirs picked as the local discovery picks them, from the
    remote listing (a dir holding a marker file, at most MAX_DEPTH below a root, not inside another)."""
    by_dir: dict[str, list[str]] = {}
    for path in candidates:
        by_dir.setdefault(posixpath.dirname(path), []).append(path)
    run_dirs: set[str] = set(root.file_dirs)
    for base in root.dirs:
        prefix = base.rstrip("/") + "/"
        for directory, paths in by_dir.items():
            if directory == base:
                depth = 0
            elif directory.startswith(prefix):
                depth = directory[len(prefix) :].count("/") + 1
            else:
                continue
            if depth <= MAX_DEPTH and any(files.is_marker(posixpath.basename(p)) for p in paths):
                run_dirs.add(directory)
    outer = [d for d in run_dirs if not any(d != o and d.startswith(o.rstrip("/") + "/") for o in run_dirs)]
    pairs = []
    for path in candidates:
        for run_dir in outer:
            prefix = run_dir.rstrip("/") + "/"
            if path.startswith(prefix) and files.is_mirrored(path[len(prefix) :]):
                pairs.append(path)
    return pairs
