"""One large JSONL file read with every core: newline-aligned pieces parsed by worker processes.

Parsing holds the GIL (orjson builds Python objects), so threads cannot share it; processes can. A
one-shot command (``summary``, ``--static``, ``report``, ``termmon.load``) on a big file cuts it at
newlines into pieces of :data:`PIECE_BYTES`; the caller parses pieces from the front while workers take
the next ones, and batches come back in file order. Each piece goes through exactly what the tailer's
reader does with a chunk (:func:`parse_piece`: the same line parser and batch builder), and a run's
state does not depend on where its batches were cut, so the result is the single-process result.

Workers are fresh interpreters started with :mod:`subprocess` (fork + exec), never a ``fork`` of the
caller and never :mod:`multiprocessing`: a forked copy of a training script (CUDA, threads) or of the
TUI can deadlock, and spawn/forkserver re-import an unguarded ``__main__``. A worker that cannot start
or fails hands its piece back, and the caller parses it itself: workers only ever make a load faster.
"""

from __future__ import annotations

import contextlib
import gc
import io
import os
import pickle
import queue
import stat
import sys
import threading
import time
from collections import deque
from collections.abc import Generator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from termmon.ingest.batch import BatchBuilder, RecordBatch
from termmon.ingest.jsonl import DEFAULT_MAX_LINE
from termmon.ingest.parse import SLICE_BYTES, LineParser
from termmon.ingest.workers import (
    MIN_PARALLEL_BYTES,
    READY,
    REPLY,
    REQUEST,
    _Worker,
    read_exactly,
    take_prestarted,
    worker_count,
)

#: Bytes a piece holds, about: small enough that few pieces wait for their turn (memory), large enough
#: that the per-piece round trip (a request, a pickled batch) is noise.
PIECE_BYTES = 4 << 20
#: How far past a cut a newline is looked for. A line longer than this is not a trainer's record, so a
#: file holding one is read the usual way, whose rules for huge lines (DEFAULT_MAX_LINE) then apply.
MAX_CUT_SEARCH = 8 << 20
#: Pieces a worker may parse ahead of the one the caller hands on next, per worker: a bound on the
#: batches waiting (~4 MB each), wide enough that a worker is not held up while the caller parses a
#: piece of its own (at 3, a worker waited ~10% of a load for room).
AHEAD_PER_WORKER = 6
#: Requests a worker holds at once: the next one waits in its socket when it sends a reply, so it never
#: sits idle while the caller's thread waits for the GIL to take the reply and ask again (a few ms each
#: time the caller parses; asked only after each reply, a worker waited ~0.4 s of a 2.5 s load).
IN_FLIGHT = 2
#: A piece out with a worker longer than this is parsed by the caller as well (a stopped worker).
STRAGGLER_SECONDS = 30.0
# Every line in a piece is shorter than the tailer's limit, so no line is one it would have skipped.
assert PIECE_BYTES + MAX_CUT_SEARCH < DEFAULT_MAX_LINE
_BOM = b"\xef\xbb\xbf"


class FileChangedError(OSError):
    """The file shrank or was replaced while it was read: the pieces no longer describe one file."""


@dataclass(frozen=True)
class Split:
    """When and how a file is split. ``workers``: None for :meth:`worker_count`'s default."""

    min_bytes: int = MIN_PARALLEL_BYTES
    piece_bytes: int = PIECE_BYTES
    workers: int | None = None

    def worker_count(self) -> int:
        """``workers``, else $TERMMON_INGEST_WORKERS (0: one process), else one per usable core but one."""
        return worker_count(self.workers)


@dataclass
class Plan:
    """A file cut into pieces: ``pieces`` are (start, end) byte ranges, each ending just after a
    newline; ``end`` is the end of the last complete line (a torn last line is left alone, as the tailer
    holds it back)."""

    path: Path
    ident: tuple[int, int]
    mtime: float
    end: int
    pieces: list[tuple[int, int]] = field(default_factory=list)


def plan_split(path: Path, split: Split = Split()) -> Plan | None:
    """How to read ``path`` in pieces, or None when it should be read the usual way: too small, no
    workers to give pieces to, not a regular file, unreadable (the usual way reports why), or a line
    too long to cut near."""
    if split.worker_count() == 0 or split.piece_bytes + MAX_CUT_SEARCH >= DEFAULT_MAX_LINE:
        return None
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode) or st.st_size < max(split.min_bytes, 1):
            return None
        end = _last_line_end(fd, st.st_size)
        if end is None:
            return None
        plan = Plan(path, (st.st_dev, st.st_ino), st.st_mtime, end)
        start = 0
        while start < end:
            cut = _line_end_after(fd, start + split.piece_bytes, end)
            if cut is None:
                return None
            plan.pieces.append((start, cut))
            start = cut
        return plan
    except OSError:
        return None
    finally:
        os.close(fd)


def _last_line_end(fd: int, size: int) -> int | None:
    """Offset just past the file's last newline (0 if it has none), or None if its torn last line is
    longer than :data:`MAX_CUT_SEARCH`."""
    at = size
    while at > 0 and size - at < MAX_CUT_SEARCH:
        window = min(1 << 16, at, MAX_CUT_SEARCH - (size - at))
        data = os.pread(fd, window, at - window)
        newline = data.rfind(b"\n")
        if newline >= 0:
            return at - window + newline + 1
        at -= window
    return 0 if at == 0 else None


def _line_end_after(fd: int, offset: int, end: int) -> int | None:
    """Offset just past the first newline at or after ``offset`` (``end`` if none before it), or None
    if that is more than :data:`MAX_CUT_SEARCH` away."""
    at = offset
    while at < end and at - offset < MAX_CUT_SEARCH:
        data = os.pread(fd, min(1 << 16, end - at, MAX_CUT_SEARCH - (at - offset)), at)
        newline = data.find(b"\n")
        if newline >= 0:
            return at + newline + 1
        if not data:  # shrank meanwhile
            return None
        at += len(data)
    return end if at >= end else None


def parse_piece(fd: int, start: int, end: int) -> RecordBatch:
    """The records of bytes ``start:end`` (whole lines), as the tailer's reader turns a chunk into them:
    the BOM dropped at the file's start, NUL padding before a line's record ignored, about
    :data:`SLICE_BYTES` of lines at a time through one :class:`LineParser` into one batch.

    The lines are cut a slice at a time (``readlines``), not all at once: a slice's line objects are
    made, parsed and freed while their memory is still in the cache, and the next slice reuses it.
    Splitting the whole piece first made all ~15,000 line objects before the first was parsed, and
    most had left the cache by their turn: a 4 MiB piece took ~19 ms, now ~16."""
    data = os.pread(fd, end - start, start)
    if len(data) != end - start or (data and data[-1:] != b"\n"):
        raise FileChangedError(f"changed while it was read (bytes {start}-{end})")
    if start == 0 and data.startswith(_BOM):
        data = data[len(_BOM) :]
    reader = io.BytesIO(data.lstrip(b"\0"))  # shares the bytes: no copy of the piece
    del data
    parser = LineParser()
    builder = BatchBuilder()
    bad_lines = 0
    while lines := reader.readlines(SLICE_BYTES):
        values, bad = parser.parse(lines)
        bad_lines += bad
        builder.add_objects(values)
    return builder.build(bad_lines)


# --- batches over a pipe ---------------------------------------------------------------------------
# A batch's row indices are mostly runs of consecutive rows and its event names a few repeated
# strings, so both travel run-length encoded: a piece's batch crosses the pipe at about the size of its
# float columns, and waiting batches cost the caller little memory.


def _runs(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(start index of each run of equal consecutive values, run lengths)."""
    if len(values) == 0:
        return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.int64)
    starts = np.flatnonzero(np.concatenate([[True], values[1:] != values[:-1]]))
    lengths = np.diff(np.append(starts, len(values)))
    return starts, lengths


def pack(batch: RecordBatch) -> dict[str, Any]:
    """A picklable, compact form of ``batch`` (:func:`unpack` restores it exactly)."""
    event_starts, event_lengths = _runs(batch.event)
    metrics = {}
    for name, (rows, values) in batch.metrics.items():
        # Runs of consecutive rows, as each run's first row and its length.
        breaks = np.flatnonzero(np.diff(rows) != 1) + 1
        bounds = np.concatenate([[0], breaks, [len(rows)]]).astype(np.int64)
        firsts = rows[bounds[:-1]] if len(rows) else rows[:0]
        metrics[name] = (firsts.astype(np.int64), np.diff(bounds) if len(rows) else rows[:0], values)
    return {
        "time": batch.time,
        "step": batch.step,
        "epoch": batch.epoch,
        "kind": batch.kind,
        "event": (batch.event[event_starts].tolist(), event_lengths),
        "metrics": metrics,
        "meta": batch.meta,
        "bad_lines": batch.bad_lines,
        "texts": batch.texts,
    }


def unpack(packed: dict[str, Any]) -> RecordBatch:
    """The batch :func:`pack` packed."""
    names, counts = packed["event"]
    event = np.empty(len(names), dtype=object)
    event[:] = names
    metrics = {}
    for name, (firsts, lengths, values) in packed["metrics"].items():
        # Each row is its run's first row plus its place in the run.
        offsets = np.repeat(firsts - np.concatenate([[0], np.cumsum(lengths)[:-1]]), lengths)
        metrics[name] = (np.arange(len(values), dtype=np.int64) + offsets, values)
    if len(packed["time"]) == 0:
        return RecordBatch.empty(packed["bad_lines"])
    return RecordBatch(
        time=packed["time"],
        step=packed["step"],
        epoch=packed["epoch"],
        kind=packed["kind"],
        event=np.repeat(event, counts),
        metrics=metrics,
        meta=packed["meta"],
        bad_lines=packed["bad_lines"],
        texts=packed["texts"],
    )


# --- the worker process ----------------------------------------------------------------------------


def worker_main() -> int:
    """A worker: reads (path, range) requests on stdin, answers each with a pickled packed batch (or
    the error's text) on stdout, and exits when stdin closes. Replies are written by a thread of their
    own: a write blocks until the caller's thread takes the reply (the caller's GIL decides when), and
    the next piece is parsed meanwhile instead (a worker sat ~0.25 s of a 1M-line load in its writes)."""
    stdin, stdout = sys.stdin.buffer, sys.stdout.buffer
    replies: queue.SimpleQueue[tuple[bytes, bytes] | None] = queue.SimpleQueue()
    writer = threading.Thread(target=_write_replies, args=(stdout, replies), daemon=True)
    fd: int | None = None
    held: tuple[bytes, int, int] | None = None
    # A worker's records live one piece long and hold no cycles: the collector would only walk them.
    gc.disable()
    try:
        stdout.write(READY)  # imports done: the caller hands out pieces from now on
        stdout.flush()
        writer.start()
        while (header := read_exactly(stdin, REQUEST.size)) is not None:
            start, end, dev, ino, length = REQUEST.unpack(header)
            path = read_exactly(stdin, length)
            if path is None:
                break
            try:
                if held != (path, dev, ino):
                    if fd is not None:
                        os.close(fd)
                        fd, held = None, None
                    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
                    st = os.fstat(fd)
                    if (st.st_dev, st.st_ino) != (dev, ino):
                        raise FileChangedError("replaced while it was read")
                    held = (path, dev, ino)
                assert fd is not None
                reply: tuple[str, Any] = ("ok", pack(parse_piece(fd, start, end)))
            except Exception as exc:  # told to the caller, which parses the piece itself
                reply = ("error", f"{type(exc).__name__}: {exc}")
            data = pickle.dumps(reply, protocol=pickle.HIGHEST_PROTOCOL)
            replies.put((REPLY.pack(len(data)), data))
    except (BrokenPipeError, KeyboardInterrupt):  # the caller went away
        return 0
    finally:
        replies.put(None)
        if writer.is_alive():
            writer.join()
    return 0


def _write_replies(stdout: BinaryIO, replies: queue.SimpleQueue[tuple[bytes, bytes] | None]) -> None:
    """Write each reply as it comes, until None (or the caller went away)."""
    with contextlib.suppress(OSError):
        while (reply := replies.get()) is not None:
            for part in reply:
                stdout.write(part)
            stdout.flush()


class _Pieces:
    """The pieces of one plan: who takes which, and the finished batches until their turn."""

    def __init__(self, plan: Plan, ahead: int) -> None:
        self.plan = plan
        self.todo: deque[int] = deque(range(len(plan.pieces)))
        self.done: dict[int, RecordBatch] = {}
        self.out: dict[int, float] = {}  # pieces with a worker, and since when
        self.finished: set[int] = set()
        self.wanted = 0  # the piece the caller hands on next
        self.ahead = ahead
        self.cond = threading.Condition()

    def take(self, wait: bool = True) -> int | None:
        """The next piece for a worker, once it is at most ``ahead`` pieces past the one the caller
        wants: workers faster than the caller's use of the batches must not pile them up in memory.
        None when none is left, or (``wait`` False) when none may be taken yet."""
        with self.cond:
            while wait and self.todo and self.todo[0] - self.wanted >= self.ahead:
                self.cond.wait()
            if not self.todo or self.todo[0] - self.wanted >= self.ahead:
                return None
            i = self.todo.popleft()
            self.out[i] = time.monotonic()
            return i

    def hand_on(self, i: int) -> RecordBatch:
        """Piece ``i``'s batch, which is done: the caller's next piece is ``i + 1``."""
        self.wanted = i + 1
        self.cond.notify_all()
        return self.done.pop(i)

    def put(self, i: int, batch: RecordBatch) -> None:
        with self.cond:
            self.out.pop(i, None)
            if i not in self.finished:
                self.finished.add(i)
                self.done[i] = batch
            self.cond.notify_all()

    def give_back(self, i: int) -> None:
        with self.cond:
            self.out.pop(i, None)
            if i not in self.finished:
                self.todo.appendleft(i)
            self.cond.notify_all()


class ParallelReader:
    """Workers kept for a whole load (started on the first plan that needs them, shared by every file
    read after it); use as a context manager so they end with it."""

    def __init__(self, split: Split = Split()) -> None:
        self.split = split
        count = split.worker_count()
        started: list[_Worker | None] = [*take_prestarted(count)]
        self._idle = started + [None] * (count - len(started))
        self._lock = threading.Lock()

    def __enter__(self) -> ParallelReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        with self._lock:
            workers, self._idle = self._idle, []
        for worker in workers:
            if worker is not None:
                worker.close()

    def plan(self, path: Path) -> Plan | None:
        return plan_split(path, self.split)

    def read(self, plan: Plan) -> Generator[RecordBatch, None, None]:
        """The batches of ``plan``'s pieces, in file order. Raises :class:`FileChangedError` (nothing
        more comes) if the file shrank or was replaced meanwhile."""
        try:
            fd = os.open(plan.path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
        except OSError as exc:
            raise FileChangedError(f"{plan.path}: {exc}") from exc
        pieces = _Pieces(plan, ahead=AHEAD_PER_WORKER * max(1, self.split.worker_count()))
        threads: list[threading.Thread] = []
        try:
            st = os.fstat(fd)
            if (st.st_dev, st.st_ino) != plan.ident:
                raise FileChangedError(f"{plan.path}: replaced while it was read")
            with self._lock:
                slots, self._idle = self._idle, []
            for slot in slots:
                thread = threading.Thread(target=self._serve, args=(slot, pieces), daemon=True)
                thread.start()
                threads.append(thread)
            for i in range(len(plan.pieces)):
                yield self._next(pieces, i, fd)
        finally:
            with pieces.cond:
                pieces.todo.clear()
                pieces.cond.notify_all()
            for thread in threads:
                thread.join()
            os.close(fd)

    def _next(self, pieces: _Pieces, i: int, fd: int) -> RecordBatch:
        """Piece ``i``'s batch: parsing pieces from the front meanwhile, or ``i`` itself if its worker
        is slow."""
        while True:
            with pieces.cond:
                if i in pieces.done:
                    return pieces.hand_on(i)
                started = pieces.out.get(i)
                own = pieces.todo.popleft() if pieces.todo else None
                if own is None:
                    if started is not None and time.monotonic() - started < STRAGGLER_SECONDS:
                        pieces.cond.wait(timeout=1.0)
                        continue
                    own = i  # not out (given back meanwhile) or out too long: the caller's turn
            batch = parse_piece(fd, *pieces.plan.pieces[own])
            pieces.put(own, batch)

    def _serve(self, worker: _Worker | None, pieces: _Pieces) -> None:
        """One worker's loop: starts the worker if need be, then takes pieces from the front until none
        are left, :data:`IN_FLIGHT` asked of it at a time. On any failure the pieces asked go back (the
        caller parses them) and the worker is dropped."""
        asked: deque[int] = deque()  # oldest first, as the replies come
        try:
            if worker is None:
                worker = _Worker()
            worker.wait_ready()
            while True:
                while len(asked) < IN_FLIGHT and (i := pieces.take(wait=not asked)) is not None:
                    asked.append(i)
                    worker.send(pieces.plan, *pieces.plan.pieces[i])
                if not asked:
                    break
                pieces.put(asked[0], worker.receive())
                asked.popleft()
        except Exception:
            for i in reversed(asked):
                pieces.give_back(i)
            if worker is not None:
                worker.close()
            return
        with self._lock:
            self._idle.append(worker)


if __name__ == "__main__":
    sys.exit(worker_main())
