"""One run as a stream of record batches, whatever format it is written in.

A directory may hold several files that describe the same run (termmon's logger writes metrics.jsonl
and mirrors epochs into results.json; an HF output dir holds event files and trainer_state.json). The
best-ranked format in the registry reads it. If a better one appears later, the source switches to
it and starts over.

:meth:`RunSource.tail_source` gives a second reader of a big run that starts near its end: the monitor
shows what it reads while this source reads the history from the start.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from termmon.ingest.batch import BatchBuilder, RecordBatch
from termmon.ingest.formats import registry
from termmon.ingest.formats.base import Format, FormatReader, ReadStatus, RunLocation
from termmon.ingest.jsonl import READ_CHUNK


@dataclass
class SourceUpdate:
    """What one read found. ``reset``: drop what was read before, then add what is here: ``batch`` from
    :meth:`RunSource.read`, or ``objects`` (parsed values) from :meth:`RunSource.read_objects`."""

    batch: RecordBatch = field(default_factory=RecordBatch.empty)
    objects: list[object] = field(default_factory=list)
    bad_lines: int = 0
    reset: bool = False
    mtime: float = float("nan")
    more: bool = False
    bytes_read: int = 0
    error: str | None = None
    failed: bool = False  # the reader raised: ``error`` says why; nothing else here is trustworthy

    @property
    def empty(self) -> bool:
        return len(self.batch) == 0 and not self.batch.bad_lines and not self.reset and self.error is None


def _as_location(location: RunLocation | Path) -> RunLocation:
    return location if isinstance(location, RunLocation) else RunLocation(Path(location), "")


class RunSource:
    """Incremental reader of one run. Not thread-safe: one reader thread at a time."""

    def __init__(self, location: RunLocation | Path) -> None:
        self.location = _as_location(location)
        self.run_dir = self.location.dir
        self.format: Format | None = None
        self._reader: FormatReader | None = None
        self._last_error: str | None = None
        self._pinned = False  # a tail source keeps the reader it was made with

    def tail_source(self, window: int, *, min_size: int | None = None) -> RunSource | None:
        """A reader of this run's most recent records (about its last ``window`` bytes), following
        appends from there; None where the run's files are no bigger than ``min_size`` (default:
        the window), or its format has no such reader: read whole, it costs little more."""
        fmt = self._detect()
        if fmt is None or not fmt.tailable:
            return None
        size = 0
        for path in fmt.files(self.location):
            try:
                size += path.stat().st_size
            except OSError:
                continue
        if size <= (window if min_size is None else min_size):
            return None
        reader = fmt.open_tail(self.location, window)
        if reader is None:
            return None
        tail = RunSource(self.location)
        tail.format, tail._reader, tail._pinned = fmt, reader, True
        return tail

    @property
    def has_end_events(self) -> bool:
        """Whether this run's format marks the end of a run (termmon's own, W&B, MLflow)."""
        return self.format is not None and self.format.has_end_events

    @property
    def pending_bytes(self) -> int:
        """Bytes of an incomplete trailing record being held back (a writer mid-record, or one that died)."""
        return 0 if self._reader is None else self._reader.pending_bytes

    def files(self) -> list[Path]:
        """The files this run is read from, as its format sees them now."""
        fmt = self.format or self._detect()
        return [] if fmt is None else fmt.files(self.location)

    def close(self) -> None:
        if self._reader is not None:
            self._reader.close()

    def read(self, max_bytes: int = READ_CHUNK) -> SourceUpdate:
        """What is new, as a column batch (the model's input)."""
        builder = BatchBuilder()
        update = self._read(max_bytes, builder.add_objects)
        update.batch = builder.build(update.bad_lines)
        return update

    def read_objects(self, max_bytes: int = READ_CHUNK) -> SourceUpdate:
        """What is new, as parsed values in termmon's record shape (other formats already mapped)."""
        objects: list[object] = []
        update = self._read(max_bytes, objects.extend)
        update.objects = objects
        return update

    def _detect(self) -> Format | None:
        if self.location.key is not None:
            return registry.get(self.location.format)
        try:
            names = os.listdir(self.run_dir)
        except OSError:
            return self.format
        return registry.best_for_dir(self.run_dir, names)

    def _read(self, max_bytes: int, sink: Callable[[list[Any]], None]) -> SourceUpdate:
        best = None if self._pinned else self._detect()
        switched = False
        if best is not None and (self.format is None or best.rank < self.format.rank):
            switched = self.format is not None
            self.close()
            self.format = best
            self._reader = best.open(self.location)
        status = ReadStatus() if self._reader is None else self._reader.read(sink, max_bytes)
        update = SourceUpdate(
            bad_lines=status.bad_lines,
            reset=status.reset or switched,
            mtime=status.mtime,
            more=status.more,
            bytes_read=status.bytes_read,
            error=status.error,
        )
        # Report a persistent error once, not on every poll.
        if update.error is not None and update.error == self._last_error:
            update.error = None
        else:
            self._last_error = update.error
        return update
