"""The ingest worker processes of termmon.ingest.parallel: starting them, and talking to one.

Kept apart from the parsing (and free of numpy) so that a command can start its workers first thing,
before its own imports: a worker takes about as long to start (an interpreter, numpy) as those
imports, so it is ready when the load begins instead of joining it late (:func:`prestart`).
"""

from __future__ import annotations

import contextlib
import os
import pickle
import socket
import stat
import struct
import subprocess
import sys
import threading
from collections.abc import Iterable
from pathlib import Path
from typing import IO, TYPE_CHECKING

from termmon.format import METRICS_JSONL

if TYPE_CHECKING:
    from termmon.ingest.batch import RecordBatch
    from termmon.ingest.parallel import Plan

#: Files smaller than this are read in one process: a worker's start (an interpreter, numpy) costs
#: about as much as parsing this many bytes, so it would not pay for itself.
MIN_PARALLEL_BYTES = 48 << 20
#: More workers than this do not help: the caller's own work (applying batches) becomes the limit.
MAX_WORKERS = 7
#: Environment variable that sets the number of workers (0: parse in the calling process only).
WORKERS_VARIABLE = "TERMMON_INGEST_WORKERS"
REQUEST = struct.Struct("<qqQQI")  # start, end, st_dev, st_ino, path length; then the path's bytes
REPLY = struct.Struct("<Q")
READY = b"R"
#: A worker does no linear algebra, and numpy's OpenBLAS starts a thread per core as it loads unless told
#: otherwise: ~0.06 CPU-s a worker, taken from the parse on a box whose every core is parsing.
ONE_BLAS_THREAD = {"OPENBLAS_NUM_THREADS": "1"}


def one_blas_thread() -> None:
    """Ask for one OpenBLAS thread in this process, unless the user chose a number or numpy is loaded
    already (it reads the setting as it loads). For a one-shot command that uses numpy only to hold
    columns: the threads would cost it ~0.04 s of a 1M-line ``summary`` on two cores."""
    if "numpy" not in sys.modules:
        for name, value in ONE_BLAS_THREAD.items():
            os.environ.setdefault(name, value)


def usable_cores() -> int:
    """Cores this process may run on (its affinity mask, as taskset or a container's cpuset set it)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def worker_count(workers: int | None = None) -> int:
    """``workers``, else $TERMMON_INGEST_WORKERS (0: one process), else one per usable core but one."""
    if workers is not None:
        return max(0, workers)
    with contextlib.suppress(ValueError):
        return max(0, int(os.environ.get(WORKERS_VARIABLE, "")))
    return max(0, min(MAX_WORKERS, usable_cores() - 1))


def read_exactly(stream: IO[bytes], n: int) -> bytes | None:
    data = stream.read(n)
    return data if len(data) == n else None


def receive_exactly(sock: socket.socket, n: int) -> bytearray | None:
    """``n`` bytes from ``sock``, or None at its end: one blocking call (``MSG_WAITALL``) in the usual
    case. A reply read from a pipe takes the GIL back once per pipe buffer (64 KiB), and each time waits
    for the caller's main thread to let go of it (a few ms while it parses): the worker sat blocked in
    its write for ~0.4 s of a 2.5 s load of 1M lines. Here the kernel hands the whole reply over at
    memory speed."""
    data = bytearray(n)
    view = memoryview(data)
    got = 0
    while got < n:
        k = sock.recv_into(view[got:], n - got, socket.MSG_WAITALL)
        if k == 0:
            return None
        got += k
    return data


class _Worker:
    """One worker process, driven from one thread of the caller over a Unix socket, its stdin and stdout
    (see :func:`receive_exactly` for why not pipes)."""

    def __init__(self) -> None:
        import termmon

        # The same termmon as the caller's, whatever the current directory holds: the worker starts in
        # the directory termmon was imported from, and finds it there first.
        root = str(Path(termmon.__file__).resolve().parent.parent)
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [root, env.get("PYTHONPATH")]))
        env.update(ONE_BLAS_THREAD)
        ours, theirs = socket.socketpair()  # neither end is inherited by other children
        try:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "termmon.ingest.parallel"],
                stdin=theirs.fileno(),
                stdout=theirs.fileno(),
                stderr=subprocess.DEVNULL,
                cwd=root,
                env=env,
                start_new_session=True,  # a Ctrl-C in the terminal is the caller's to handle, not the workers'
            )
        except BaseException:
            ours.close()
            raise
        finally:
            theirs.close()  # the worker holds it now: our end reads its end as soon as the worker exits
        self.sock = ours
        self.ready = False

    def wait_ready(self) -> None:
        """Block until the worker has started (its imports take a while): only then does it take pieces,
        so the caller never waits for a piece that sat with a worker still starting."""
        if self.ready:
            return
        if receive_exactly(self.sock, len(READY)) != bytearray(READY):
            raise EOFError("worker did not start")
        self.ready = True

    def send(self, plan: Plan, start: int, end: int) -> None:
        """Ask for the batch of ``plan``'s bytes ``start:end``; :meth:`receive` returns the batches in
        the order they were asked for."""
        path = os.fsencode(os.path.abspath(plan.path))  # the worker runs in another directory
        self.sock.sendall(REQUEST.pack(start, end, *plan.ident, len(path)) + path)

    def receive(self) -> RecordBatch:
        """The batch of the oldest request not yet received (the worker's error raised as RuntimeError)."""
        from termmon.ingest.parallel import unpack

        header = receive_exactly(self.sock, REPLY.size)
        if header is None:
            raise EOFError("worker exited")
        data = receive_exactly(self.sock, REPLY.unpack(header)[0])
        if data is None:
            raise EOFError("worker exited")
        status, payload = pickle.loads(data)
        if status != "ok":
            raise RuntimeError(payload)
        return unpack(payload)

    def close(self) -> None:
        """Closing our end of the socket ends the worker (its stdin ends); it is reaped on a thread of its
        own, so the caller does not wait for an interpreter's exit."""
        with contextlib.suppress(OSError):
            self.sock.close()
        threading.Thread(target=self._reap, daemon=True, name="termmon-ingest-reap").start()

    def _reap(self) -> None:
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


#: Workers started by :func:`prestart`, for the next :class:`~termmon.ingest.parallel.ParallelReader`.
_prestarted: list[_Worker] = []
_prestarted_lock = threading.Lock()


def prestart(paths: Iterable[str | Path], min_bytes: int = MIN_PARALLEL_BYTES) -> None:
    """Start the workers that a load of ``paths`` will want, now. Only when a path is, or directly
    holds, a metrics.jsonl of ``min_bytes`` or more (a stat or two; a big run found deeper gets its
    workers when its load starts, as without this). The next ParallelReader takes them; a worker
    never taken ends with the caller, when its stdin closes."""
    count = worker_count()
    if count == 0 or not any(_worth_splitting(Path(p), min_bytes) for p in paths):
        return
    with _prestarted_lock:
        for _ in range(count - len(_prestarted)):
            try:
                _prestarted.append(_Worker())
            except OSError:  # the reader tries again, or parses alone
                return


def _worth_splitting(path: Path, min_bytes: int) -> bool:
    for candidate in (path, path / METRICS_JSONL):
        with contextlib.suppress(OSError):
            st = candidate.stat()
            if stat.S_ISREG(st.st_mode):
                return candidate.name == METRICS_JSONL and st.st_size >= min_bytes
    return False


def take_prestarted(count: int) -> list[_Worker]:
    """Up to ``count`` of the workers :func:`prestart` started (the caller owns them from now on)."""
    with _prestarted_lock:
        taken = _prestarted[:count]
        del _prestarted[:count]
    return taken
