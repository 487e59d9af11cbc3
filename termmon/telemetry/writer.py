"""The writer thread: every file in the run directory is written here, never on the training thread.

Training hands over plain dicts through a bounded queue without blocking; when the queue is full the
item is dropped and counted rather than blocking a training step. The queue is a ``SimpleQueue``, whose
``put`` is reentrant, so the SIGTERM handler can hand over the ``end`` record even when the signal
interrupted the training thread in the middle of a ``put``.

The thread writes in batches: after the first item it waits up to ``WRITE_EVERY_S`` for more, so a loop
logging every few milliseconds pays for one file append, one CSV open and one thread switch per batch,
not per record (the writer's Python holds the GIL the training thread needs between its tensor ops).
``start``, ``end``, ``epoch``, ``checkpoint`` and ``alert`` records, and ``close``, cut the wait short: what a
post-mortem or the person at the monitor needs at once is written at once. Step records are encoded
with orjson when they are flat, finite and ASCII (~1 us against ~20 us), else as before.

Failures are isolated per output (metrics.jsonl, metrics.csv, results.json, each telemetry/*.csv): one
that raises, for any reason, is reported once (a line on stderr and a ``telemetry`` alert record) and
counted, the others go on, and it is tried again with the next item, so a directory made writable again
recovers. A record that json cannot encode as given (a tuple key, a cycle) is written with those values
as text; one that cannot be written at all is counted. The counts go into the ``end`` record
(``write_errors``). Only a run directory that has disappeared switches writing off altogether.
"""

from __future__ import annotations

import contextlib
import csv
import io
import math
import os
import queue
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Protocol

import orjson

from termmon.atomic import atomic_replace, atomic_write
from termmon.format import (
    EV_ALERT,
    EV_CHECKPOINT,
    EV_END,
    EV_EPOCH,
    EV_START,
    EV_STEP,
    METRICS_CSV,
    METRICS_JSONL,
    RESULTS_JSON,
    encode_record,
)

#: Events after which the JSONL file is fsynced: rare, and the ones a post-mortem needs.
_DURABLE_EVENTS = frozenset({EV_EPOCH, EV_CHECKPOINT, EV_END})
#: Events mirrored into the wide metrics.csv.
_CSV_EVENTS = frozenset({EV_STEP, EV_EPOCH})
_CSV_FIXED = ("event", "time", "step", "epoch")
#: CSV text is UTF-8; bytes that are not (in a reused run directory's metrics.csv) survive a rewrite.
_CSV_ENCODING = "utf-8"
_CSV_ERRORS = "surrogateescape"
#: Deeper structures are cut when a record is made encodable (json itself recurses).
_MAX_DEPTH = 64
#: Items one pass of the writer loop takes from the queue.
_MAX_BATCH = 10_000
#: Seconds the writer waits after a batch's first item for more (records reach the files this much later).
WRITE_EVERY_S = 0.5
#: Events written without that wait.
_URGENT_EVENTS = frozenset({EV_START, EV_END, EV_EPOCH, EV_CHECKPOINT, EV_ALERT})
#: Values a flat record may hold for the orjson path (and that a CSV cell can hold).
_SCALARS = (str, int, float, bool, type(None))

#: The name under which a deferred item that fails to build is counted in ``write_errors``.
_STEP_RECORDS = "step records"
#: A record forwarded to an integration (TensorBoard, W&B) after it is on disk.
Sink = Callable[[Mapping[str, Any]], None]


@dataclass(frozen=True)
class Results:
    """A full results.json document, rewritten atomically."""

    document: Mapping[str, Any]


@dataclass(frozen=True)
class CsvRows:
    """Rows for a long-format CSV with fixed columns (telemetry/per_layer_stats.csv and the like)."""

    relpath: str
    header: Sequence[str]
    rows: Sequence[Sequence[Any]]


class Deferred(Protocol):
    """An item the writer thread turns into records and rows itself, in its place in the queue
    (step_record.RawStep: a log step's record is built there, not on the training thread)."""

    @property
    def urgent(self) -> bool:
        """Write it without the batch's wait (it may hold an alert)."""
        ...

    def items(self) -> Sequence[Mapping[str, Any] | CsvRows]: ...


#: What ``put`` takes.
Item = Mapping[str, Any] | Results | CsvRows | Deferred


class _Stop:
    pass


_STOP = _Stop()


class RunWriter:
    """Owns the run directory's files; ``put`` never blocks and never raises."""

    def __init__(self, run_dir: Path, queue_size: int = 10_000, sinks: Iterable[Sink] = ()) -> None:
        self.run_dir = run_dir
        self.dropped = 0
        #: Failures per output (file name relative to the run directory), for the ``end`` record.
        self.errors: dict[str, int] = {}
        self.failed = False
        self._maxsize = max(1, queue_size)
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        #: A token per urgent item (and one from ``close``): ends the writer's wait for a fuller batch.
        #: A second SimpleQueue rather than an Event, whose ``set`` takes a lock a signal handler could
        #: find held by the very thread it interrupted.
        self._hurry: queue.SimpleQueue[None] = queue.SimpleQueue()
        self._sinks = list(sinks)
        self._jsonl: int | None = None
        self._notes: list[dict[str, Any]] = []
        self._csv_columns: list[str] = []
        self._csv_known: set[str] = set()
        self._long_csv_ready: set[str] = set()
        self._thread = threading.Thread(target=self._run, name="termmon-writer", daemon=True)
        self._thread.start()

    # --- training-thread side ----------------------------------------------------------------------------
    def put(self, item: Item) -> bool:
        """Queue an item; False (and one more in ``dropped``) when full or when writing has failed.

        The ``end`` record is never dropped: it is the one a post-mortem needs most."""
        if self.failed:
            return False
        if self._queue.qsize() >= self._maxsize and not (
            isinstance(item, Mapping) and item.get("event") == EV_END
        ):
            self.dropped += 1
            return False
        self._queue.put(item)
        if isinstance(item, Mapping):
            urgent = item.get("event") in _URGENT_EVENTS
        else:
            urgent = not isinstance(item, Results | CsvRows) and item.urgent
        if urgent:
            self._hurry.put(None)
        return True

    def close(self, timeout: float = 5.0) -> None:
        """Write what is queued, then stop; gives up after ``timeout`` so exit never hangs on a slow disk."""
        if not self._thread.is_alive():
            return
        self._queue.put(_STOP)
        self._hurry.put(None)
        self._thread.join(timeout)

    # --- writer-thread side ----------------------------------------------------------------------------------
    def _run(self) -> None:
        try:
            while True:
                batch = [self._queue.get()]
                with contextlib.suppress(queue.Empty):
                    self._hurry.get(timeout=WRITE_EVERY_S)
                with contextlib.suppress(queue.Empty):
                    while True:  # tokens of items this batch takes (a later item brings its own)
                        self._hurry.get_nowait()
                with contextlib.suppress(queue.Empty):
                    while len(batch) < _MAX_BATCH:
                        batch.append(self._queue.get_nowait())
                stop = any(item is _STOP for item in batch)
                if not self.failed:
                    try:
                        self._write_batch([item for item in batch if item is not _STOP])
                    except Exception as exc:  # the thread must outlive any bug: training goes on, logged
                        self._output_failed("writer", exc)
                if stop:
                    return
        finally:
            self._close_jsonl()

    def _write_batch(self, batch: list[Any]) -> None:
        """Each file's items in queue order. The batch's records go in one run (one append to
        metrics.jsonl and one to metrics.csv, where rows for another file between them would split the run:
        each append opens its file, ~0.3 ms on the writer's cold caches), then each long CSV's rows in one
        append, then results.json. A batch that holds the ``end`` record is written strictly in queue
        order, so that the end record counts every failure before it."""
        items = list(self._expanded(batch))
        if any(isinstance(item, Mapping) and item.get("event") == EV_END for item in items):
            self._write_in_order(items)
            return
        records = [item for item in items if isinstance(item, Mapping)]
        if records or self._notes:
            self._write_records(records)
        rows: dict[str, list[CsvRows]] = {}
        for item in items:
            if isinstance(item, CsvRows):
                rows.setdefault(item.relpath, []).append(item)
        for relpath, parts in rows.items():
            if self.failed:
                return
            joined = CsvRows(relpath, parts[0].header, [row for part in parts for row in part.rows])
            self._guarded(relpath, self._append_long_csv, joined)
        for item in items:
            if isinstance(item, Results) and not self.failed:
                self._guarded(RESULTS_JSON, self._write_results, item)

    def _write_in_order(self, items: list[Mapping[str, Any] | Results | CsvRows]) -> None:
        """Records in runs between the other items, all in queue order."""
        records: list[Mapping[str, Any]] = []
        for item in items:
            if self.failed:
                return
            if isinstance(item, Mapping):
                records.append(item)
                continue
            if records:
                self._write_records(records)
                records = []
            if isinstance(item, Results):
                self._guarded(RESULTS_JSON, self._write_results, item)
            else:
                self._guarded(item.relpath, self._append_long_csv, item)
        if records or self._notes:
            self._write_records(records)

    def _expanded(self, batch: list[Any]) -> Iterator[Mapping[str, Any] | Results | CsvRows]:
        """The batch with each deferred item replaced by what it builds; one that fails to build is
        reported once and counted, like an output that fails."""
        for item in batch:
            if isinstance(item, Mapping | Results | CsvRows):
                yield item
                continue
            try:
                built = item.items()
            except Exception as exc:
                self._output_failed(_STEP_RECORDS, exc)
                continue
            yield from built

    def _write_records(self, records: list[Mapping[str, Any]]) -> None:
        lines: list[bytes] = []
        durable = False
        flat: set[int] = set()  # ids of the records of scalars only (those _fast_line wrote)
        for record in records:
            if record.get("event") == EV_END and self.errors:
                record = {**record, "write_errors": dict(self.errors)}
            line = _fast_line(record)
            if line is not None:
                flat.add(id(record))
            else:
                text = self._encode(record, METRICS_JSONL)
                line = None if text is None else text.encode() + b"\n"  # encode_record writes ASCII only
            if self._notes:  # a record's own problem is said just before it
                lines += self._take_notes()
            if line is not None:
                lines.append(line)
                durable = durable or record.get("event") in _DURABLE_EVENTS
        lines += self._take_notes()
        if lines:
            self._guarded(METRICS_JSONL, self._append_jsonl, lines, durable)
        csv_records = [r for r in records if r.get("event") in _CSV_EVENTS]
        if csv_records:
            self._guarded(METRICS_CSV, self._append_wide_csv, csv_records, flat)
        for sink in self._sinks:  # integrations guard themselves (integrations._guarded)
            for record in records:
                sink(record)

    def _take_notes(self) -> list[bytes]:
        notes, self._notes = self._notes, []
        return [encode_record(note).encode() + b"\n" for note in notes]

    # --- outputs ---------------------------------------------------------------------------------------------
    def _append_jsonl(self, lines: list[bytes], durable: bool) -> None:
        if self._jsonl is None:
            self._jsonl = self._open_jsonl()
        data = b"".join(lines)
        view = memoryview(data)
        while view:
            view = view[os.write(self._jsonl, view) :]
        if durable:
            os.fsync(self._jsonl)

    def _open_jsonl(self) -> int:
        """Append; a file whose last line is torn (an earlier run killed mid-write, or our own failed
        write) gets a newline first, so the torn line stays one bad line and our first record is whole."""
        flags = os.O_RDWR | os.O_APPEND | os.O_CREAT | getattr(os, "O_CLOEXEC", 0)
        fd = os.open(self.run_dir / METRICS_JSONL, flags, 0o666)
        try:
            size = os.fstat(fd).st_size
            if size and os.pread(fd, 1, size - 1) != b"\n":
                os.write(fd, b"\n")
        except BaseException:
            os.close(fd)
            raise
        return fd

    def _close_jsonl(self) -> None:
        if self._jsonl is not None:
            with contextlib.suppress(OSError):
                os.close(self._jsonl)
            self._jsonl = None

    def _write_results(self, item: Results) -> None:
        text = self._encode(item.document, RESULTS_JSON)
        if text is not None:
            atomic_write(self.run_dir / RESULTS_JSON, text.encode())

    def _append_wide_csv(self, records: list[Mapping[str, Any]], flat: set[int]) -> None:
        """``flat``: ids of records known to hold scalars only, whose cells need no check (csv writes
        None as an empty cell itself): a row of them is one C-level ``map``."""
        path = self.run_dir / METRICS_CSV
        if not self._csv_columns:
            self._csv_columns = _existing_header(path)
            self._csv_known = set(self._csv_columns)
        known = self._csv_known
        new_columns = [] if known else list(_CSV_FIXED)
        seen = set(new_columns)
        for record in records:
            if known.issuperset(record.keys()):  # the common case: one C-level check a record
                continue
            for key, value in record.items():
                if key not in known and key not in seen and isinstance(value, _SCALARS):
                    seen.add(key)
                    new_columns.append(key)
        if new_columns:
            self._rewrite_csv_header(path, self._csv_columns + new_columns)
            self._csv_columns.extend(new_columns)
            known.update(new_columns)  # only once the header has them: a failed rewrite is tried again
        columns = self._csv_columns
        rows = [
            list(map(r.get, columns))
            if id(r) in flat
            else ["" if (v := r.get(c)) is None or not isinstance(v, _SCALARS) else v for c in columns]
            for r in records
        ]
        with _open_csv(path, "a") as fh:
            csv.writer(fh).writerows(rows)

    def _rewrite_csv_header(self, path: Path, columns: list[str]) -> None:
        """Columns grow as metrics appear: rewrite the file once with the wider header (atomically)."""
        old_rows: list[dict[str, str]] = []
        if path.exists():
            with _open_csv(path, "r") as fh:
                old_rows = list(csv.DictReader(fh))
        with atomic_replace(path) as raw:
            fh = io.TextIOWrapper(raw, encoding=_CSV_ENCODING, errors=_CSV_ERRORS, newline="")
            writer = csv.DictWriter(fh, fieldnames=columns, extrasaction="ignore")
            writer.writeheader()
            writer.writerows(old_rows)
            fh.flush()
            fh.detach()  # atomic_replace syncs and closes the binary file itself

    def _append_long_csv(self, item: CsvRows) -> None:
        path = self.run_dir / item.relpath
        if item.relpath not in self._long_csv_ready:
            path.parent.mkdir(exist_ok=True)  # never parents=True: a deleted run dir stays deleted
            if not path.exists() or path.stat().st_size == 0:
                with _open_csv(path, "w") as fh:
                    csv.writer(fh).writerow(item.header)
            self._long_csv_ready.add(item.relpath)
        with _open_csv(path, "a") as fh:
            csv.writer(fh).writerows(item.rows)

    # --- failures --------------------------------------------------------------------------------------------
    def _guarded(self, output: str, write: Callable[..., None], *args: Any) -> None:
        try:
            write(*args)
        except Exception as exc:
            self._output_failed(output, exc)

    def _output_failed(self, output: str, exc: Exception) -> None:
        """Count the failure; the first one of each output is reported; the others keep working."""
        if self.failed:
            return
        if output == METRICS_JSONL:
            self._close_jsonl()  # reopened (and its torn line closed) by the next write
        if isinstance(exc, OSError) and not self.run_dir.is_dir():
            self._fail(exc)
            return
        first = output not in self.errors
        self.errors[output] = self.errors.get(output, 0) + 1
        if first:
            reason = (
                exc.strerror if isinstance(exc, OSError) and exc.strerror else f"{type(exc).__name__}: {exc}"
            )
            others = "telemetry writing goes on" if output != METRICS_JSONL else "records are lost"
            self._report(
                f"cannot write {output} ({reason}); {others}, failures are counted in the end record"
            )

    def _encode(self, record: Mapping[str, Any], output: str) -> str | None:
        """The record as one JSON text; values json refuses become text (reported once per output)."""
        try:
            return encode_record(record)
        except Exception as exc:
            error = exc
        try:
            text: str | None = encode_record(_json_safe(record))
        except Exception:
            text = None
        first = f"{output}:encode" not in self.errors
        self.errors[f"{output}:encode"] = self.errors.get(f"{output}:encode", 0) + 1
        if first:
            what = f"a {record.get('event', 'results')} record for {output}"
            outcome = "written with those values as text" if text is not None else "dropped"
            self._report(
                f"{what} holds values json cannot encode ({type(error).__name__}: {error}); {outcome}",
                step=record.get("step"),
            )
        return text

    def _report(self, message: str, step: Any = None) -> None:
        print(f"termmon: {self.run_dir}: {message}", file=sys.stderr)
        note: dict[str, Any] = {
            "event": EV_ALERT,
            "time": time.time(),
            "kind": "telemetry",
            "severity": "warning",
            "message": message,
        }
        if isinstance(step, int) and not isinstance(step, bool):
            note["step"] = step
        self._notes.append(note)

    def _fail(self, exc: OSError) -> None:
        self.failed = True
        reason = exc.strerror or str(exc)
        print(f"termmon: cannot write to {self.run_dir}: {reason}; telemetry writing is off", file=sys.stderr)
        self._notes = []
        # Nothing more will be written: let training's put() calls fail fast instead of filling the queue.
        with contextlib.suppress(queue.Empty):
            while True:
                if self._queue.get_nowait() is _STOP:
                    self._queue.put(_STOP)
                    return


def _existing_header(path: Path) -> list[str]:
    """A run directory reused by a second run keeps the first run's columns."""
    try:
        with _open_csv(path, "r") as fh:
            return next(csv.reader(fh), [])
    except FileNotFoundError:
        return []


def _open_csv(path: Path, mode: str) -> IO[Any]:
    return open(path, mode, encoding=_CSV_ENCODING, errors=_CSV_ERRORS, newline="")


def _fast_line(record: Mapping[str, Any]) -> bytes | None:
    """One metrics.jsonl line by orjson, or None where it would differ from ``encode_record``: a nested or
    non-finite value (orjson writes NaN as null), a key that is not text, non-ASCII text."""
    for value in record.values():
        if isinstance(value, float):
            if not math.isfinite(value):
                return None
        elif not isinstance(value, _SCALARS):
            return None
    try:
        line = orjson.dumps(record, option=orjson.OPT_APPEND_NEWLINE)
    except TypeError:  # a key that is not a str, an int beyond 64 bits
        return None
    return line if line.isascii() else None


def _json_safe(value: Any, depth: int = 0, active: set[int] | None = None) -> Any:
    """A copy json can encode: keys as text, a cycle as ``"<cycle>"``, nesting cut at ``_MAX_DEPTH``."""
    if not isinstance(value, Mapping | list | tuple):
        return value
    if depth >= _MAX_DEPTH:
        return "<nested too deep>"
    active = set() if active is None else active
    if id(value) in active:
        return "<cycle>"
    active.add(id(value))
    try:
        if isinstance(value, Mapping):
            return {_json_key(k): _json_safe(v, depth + 1, active) for k, v in value.items()}
        return [_json_safe(v, depth + 1, active) for v in value]
    finally:
        active.discard(id(value))


def _json_key(key: Any) -> Any:
    return key if key is None or isinstance(key, str | int | float | bool) else repr(key)
