"""The writer thread: every file in the run directory is written here, never on the training thread.

Training hands over plain dicts through a bounded queue with ``put_nowait``; when the queue is full the
item is dropped and counted rather than blocking a training step. An ``OSError`` (disk full, directory
removed or made read-only) switches writing off with one warning on stderr: the run goes on, unlogged.
"""

from __future__ import annotations

import contextlib
import csv
import os
import queue
import sys
import tempfile
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from termmon.atomic import atomic_write
from termmon.format import (
    EV_ALERT,
    EV_CHECKPOINT,
    EV_END,
    EV_EPOCH,
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


class _Stop:
    pass


_STOP = _Stop()


class RunWriter:
    """Owns the run directory's files; ``put`` never blocks and never raises."""

    def __init__(self, run_dir: Path, queue_size: int = 10_000, sinks: Iterable[Sink] = ()) -> None:
        self.run_dir = run_dir
        self.dropped = 0
        self.failed = False
        self._queue: queue.Queue[Any] = queue.Queue(maxsize=max(1, queue_size))
        self._sinks = list(sinks)
        self._jsonl: TextIO | None = None
        self._csv_columns: list[str] = []
        self._long_csv_ready: set[str] = set()
        self._thread = threading.Thread(target=self._run, name="termmon-writer", daemon=True)
        self._thread.start()

    # --- training-thread side ----------------------------------------------------------------------------
    def put(self, item: Mapping[str, Any] | Results | CsvRows) -> bool:
        """Queue an item; False (and one more in ``dropped``) when full or when writing has failed."""
        if self.failed:
            return False
        try:
            self._queue.put_nowait(item)
        except queue.Full:
            self.dropped += 1
            return False
        return True

    def close(self, timeout: float = 5.0) -> None:
        """Write what is queued, then stop; gives up after ``timeout`` so exit never hangs on a slow disk."""
        if not self._thread.is_alive():
            return
        with contextlib.suppress(queue.Full):
            self._queue.put(_STOP, timeout=timeout)
        self._thread.join(timeout)

    # --- writer-thread side ----------------------------------------------------------------------------------
    def _run(self) -> None:
        try:
            while True:
                batch = [self._queue.get()]
                while True:
                    try:
                        batch.append(self._queue.get_nowait())
                    except queue.Empty:
                        break
                stop = any(item is _STOP for item in batch)
                if not self.failed:
                    self._write_batch([item for item in batch if item is not _STOP])
                if stop:
                    return
        finally:
            if self._jsonl is not None:
                with contextlib.suppress(OSError):
                    self._jsonl.close()

    def _write_batch(self, batch: list[Any]) -> None:
        try:
            records = [item for item in batch if isinstance(item, Mapping)]
            if records:
                self._write_records(records)
            for item in batch:
                if isinstance(item, Results):
                    atomic_write(self.run_dir / RESULTS_JSON, encode_record(item.document).encode())
                elif isinstance(item, CsvRows):
                    self._append_long_csv(item)
        except OSError as exc:
            self._fail(exc)

    def _write_records(self, records: list[Mapping[str, Any]]) -> None:
        if self._jsonl is None:
            self._jsonl = open(self.run_dir / METRICS_JSONL, "a", encoding="utf-8", buffering=1 << 16)  # noqa: SIM115
        durable = False
        written: list[Mapping[str, Any]] = []
        for record in records:
            try:
                line = encode_record(record)
            except (ValueError, TypeError, RecursionError) as exc:
                line = encode_record(_unwritable_alert(record, exc))
            self._jsonl.write(line + "\n")
            written.append(record)
            durable = durable or record.get("event") in _DURABLE_EVENTS
        self._jsonl.flush()
        if durable:
            os.fsync(self._jsonl.fileno())
        self._append_wide_csv([r for r in written if r.get("event") in _CSV_EVENTS])
        for sink in self._sinks:
            for record in written:
                sink(record)

    def _append_wide_csv(self, records: list[Mapping[str, Any]]) -> None:
        if not records:
            return
        rows = [{k: v for k, v in r.items() if _is_csv_scalar(v)} for r in records]
        path = self.run_dir / METRICS_CSV
        if not self._csv_columns:
            self._csv_columns = _existing_header(path)
        known = set(self._csv_columns)
        new_columns = [] if known else list(_CSV_FIXED)
        known.update(new_columns)
        for row in rows:
            for key in row:
                if key not in known:
                    known.add(key)
                    new_columns.append(key)
        if new_columns:
            self._csv_columns.extend(new_columns)
            self._rewrite_csv_header(path)
        with open(path, "a", newline="", encoding="utf-8") as fh:
            writer = csv.DictWriter(fh, fieldnames=self._csv_columns, extrasaction="ignore")
            writer.writerows(rows)

    def _rewrite_csv_header(self, path: Path) -> None:
        """Columns grow as metrics appear: rewrite the file once with the wider header (tmp + replace)."""
        old_rows: list[dict[str, str]] = []
        if path.exists():
            with open(path, newline="", encoding="utf-8") as fh:
                old_rows = list(csv.DictReader(fh))
        fd, tmp = tempfile.mkstemp(prefix=".metrics.", suffix=".csv.tmp", dir=self.run_dir)
        try:
            with os.fdopen(fd, "w", newline="", encoding="utf-8") as fh:
                writer = csv.DictWriter(fh, fieldnames=self._csv_columns, extrasaction="ignore")
                writer.writeheader()
                writer.writerows(old_rows)
            os.replace(tmp, path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise

    def _append_long_csv(self, item: CsvRows) -> None:
        path = self.run_dir / item.relpath
        if item.relpath not in self._long_csv_ready:
            path.parent.mkdir(parents=True, exist_ok=True)
            if not path.exists() or path.stat().st_size == 0:
                with open(path, "w", newline="", encoding="utf-8") as fh:
                    csv.writer(fh).writerow(item.header)
            self._long_csv_ready.add(item.relpath)
        with open(path, "a", newline="", encoding="utf-8") as fh:
            csv.writer(fh).writerows(item.rows)

    def _fail(self, exc: OSError) -> None:
        self.failed = True
        reason = exc.strerror or str(exc)
        print(f"termmon: cannot write to {self.run_dir}: {reason}; telemetry writing is off", file=sys.stderr)
        # Nothing more will be written: let training's put() calls fail fast instead of filling the queue.
        with contextlib.suppress(queue.Empty):
            while True:
                self._queue.get_nowait()


def _existing_header(path: Path) -> list[str]:
    """A run directory reused by a second run keeps the first run's columns."""
    try:
        with open(path, newline="", encoding="utf-8") as fh:
            return next(csv.reader(fh), [])
    except FileNotFoundError:
        return []


def _is_csv_scalar(value: Any) -> bool:
    return value is None or isinstance(value, int | float | str | bool)


def _unwritable_alert(record: Mapping[str, Any], exc: BaseException) -> dict[str, Any]:
    """Stand-in for a record json cannot encode (a cycle, say): the log says what was lost and why."""
    out: dict[str, Any] = {
        "event": EV_ALERT,
        "time": record.get("time"),
        "kind": "telemetry",
        "severity": "warning",
        "message": f"dropped an unserialisable {record.get('event')!s} record: {type(exc).__name__}",
    }
    for key in ("step", "epoch"):
        if isinstance(record.get(key), int):
            out[key] = record[key]
    return out
