"""Reading a tracker's SQLite database (MLflow's mlflow.db, trackio's project databases) safely.

The tracker is often writing while termmon reads, so every connection is read-only (``mode=ro``: no
write, no lock that could stall the trainer) and waits only briefly for a lock. "database is locked"
or "busy" is a moment in the writer's commit, not a problem: the read is retried on the next poll
with no error shown. Anything else (not a database, damaged, a schema termmon does not know) is one
line naming the file.

Discovery asks each database which runs it holds on every scan; :func:`cached` answers from
memory until the file changes (in WAL mode new rows sit in the ``-wal`` file, so its size counts).

A lock is retried, never taken as the answer: discovery waits up to DISCOVERY_WAIT_S for it (a run
named by its path, ``mlflow.db/1/<run>``, must not be "no such file" because the trainer was
committing), and a read cut short by one says ``more`` so that a one-shot command reads again instead
of printing what it had; a lock held through BUSY_READS_LIMIT reads in a row is reported.
"""

from __future__ import annotations

import os
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from termmon.ingest.formats.base import ReadStatus, Sink

T = TypeVar("T")

#: How long one statement waits for a writer's lock before the read is left for the next poll.
LOCK_WAIT_S = 0.2
#: How long discovery keeps asking a locked database which runs it holds (each try waits LOCK_WAIT_S).
DISCOVERY_WAIT_S = 3.0
#: Reads in a row that found the database locked before the run says so (about 5 s of lock waits).
BUSY_READS_LIMIT = 25
_CACHE: dict[tuple[Path, str], tuple[tuple[int, ...], object]] = {}


def connect(path: Path) -> sqlite3.Connection:
    """A read-only connection in autocommit mode (reads take their own ``BEGIN`` for a snapshot)."""
    uri = path.absolute().as_uri() + "?mode=ro"
    return sqlite3.connect(uri, uri=True, timeout=LOCK_WAIT_S, isolation_level=None, check_same_thread=False)


def is_transient(exc: sqlite3.Error) -> bool:
    """A lock held by the writer for a moment: retry later, say nothing."""
    text = str(exc).lower()
    return isinstance(exc, sqlite3.OperationalError) and ("locked" in text or "busy" in text)


def describe(path: Path, exc: sqlite3.Error) -> str:
    """The one-line error for a database that cannot be read."""
    return f"{path}: cannot read the database ({exc})"


def signature(path: Path) -> tuple[int, ...]:
    """Changes whenever the database's content may have (its file, or its write-ahead log)."""
    sig: list[int] = []
    for p in (path, path.with_name(path.name + "-wal")):
        try:
            st = os.stat(p)
        except OSError:
            sig.extend((0, 0, 0))
        else:
            sig.extend((st.st_ino, st.st_mtime_ns, st.st_size))
    return tuple(sig)


def columns(conn: sqlite3.Connection) -> dict[str, set[str]]:
    """Each table's column names."""
    tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
    return {t: {r[1] for r in conn.execute(f"PRAGMA table_info('{t}')")} for t in tables if "'" not in t}


def cached(path: Path, kind: str, compute: Callable[[sqlite3.Connection], T]) -> T | sqlite3.Error:
    """``compute(connection)`` for this database, from memory while the file is unchanged.

    Returns the exception instead of raising it, so a caller can decide what a failure means (a
    transient lock is not cached: the next call tries again).
    """
    deadline = time.monotonic() + DISCOVERY_WAIT_S
    while True:
        sig = signature(path)
        hit = _CACHE.get((path, kind))
        if hit is not None and hit[0] == sig:
            return hit[1]  # type: ignore[return-value]
        try:
            conn = connect(path)
            try:
                value: T | sqlite3.Error = compute(conn)
            finally:
                conn.close()
        except sqlite3.Error as exc:
            if not is_transient(exc):
                value = exc
            elif time.monotonic() < deadline:
                continue  # the writer's commit: each try already waited LOCK_WAIT_S for it
            else:
                return exc
        _CACHE[(path, kind)] = (sig, value)
        return value


#: Rows taken per read: about a megabyte of metric rows, so a long run loads in slices.
ROWS_PER_READ = 20_000


class SqliteRunReader:
    """One run in a tracker database, read in snapshots; subclasses say what a snapshot reads.

    Each :meth:`read` opens a read transaction (one consistent snapshot, so a run's status and its
    rows agree), hands :meth:`_snapshot` the connection, and closes the transaction at once, so the
    writer is never held up. A database replaced by a new file starts the run over (``reset``).
    """

    pending_bytes = 0

    def __init__(self, db: Path) -> None:
        self.db = db
        self._conn: sqlite3.Connection | None = None
        self._ino: int | None = None
        self._busy_reads = 0

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
        self._conn = None

    def _forget(self) -> None:
        """Back to the state of a reader that has read nothing (the subclass's own state)."""
        raise NotImplementedError

    def _snapshot(self, conn: sqlite3.Connection, status: ReadStatus, out: list[dict[str, Any]]) -> None:
        """Append what is new since the last snapshot to ``out``; set ``status.more`` if cut short."""
        raise NotImplementedError

    def read(self, sink: Sink, max_bytes: int) -> ReadStatus:
        status = ReadStatus()
        try:
            st = os.stat(self.db)
        except FileNotFoundError:
            return status
        except OSError as exc:
            return ReadStatus(error=f"{self.db}: {exc.strerror or exc}")
        wal = signature(self.db)[4]
        status.saw_mtime(max(st.st_mtime, wal / 1e9))
        if self._ino is not None and st.st_ino != self._ino:
            self.close()
            self._forget()
            status.reset = True
        out: list[dict[str, Any]] = []
        try:
            if self._conn is None:
                self._conn = connect(self.db)
                self._ino = st.st_ino
            self._conn.execute("BEGIN")
            try:
                self._snapshot(self._conn, status, out)
            finally:
                self._conn.execute("COMMIT")
        except sqlite3.Error as exc:
            out.clear()  # nothing of a failed snapshot is handed on; the next read redoes it
            if not is_transient(exc):
                status.error = describe(self.db, exc)
                self.close()
            elif (busy := self._busy_reads + 1) < BUSY_READS_LIMIT:
                self._busy_reads = busy
                status.more = True  # not the end of what is on disk: read again
            else:
                self._busy_reads = 0
                status.error = f"{self.db}: locked by another process through {busy} reads in a row ({exc})"
        else:
            self._busy_reads = 0
        if out:
            sink(out)
        return status


class UnreadableDb:
    """The reader of a database named as a tracker names its own that could not be read: says why."""

    pending_bytes = 0

    def __init__(self, db: Path, label: str) -> None:
        self.db = db
        self.label = label

    def read(self, sink: Sink, max_bytes: int) -> ReadStatus:
        probe = cached(self.db, "tables", columns)
        if isinstance(probe, sqlite3.Error):
            return ReadStatus(error=None if is_transient(probe) else describe(self.db, probe))
        return ReadStatus(error=f"{self.db}: not an {self.label} (its tables are not the tracker's)")

    def close(self) -> None:
        """Nothing is held open."""
