"""One run directory as a stream of record batches, whatever format it is written in.

A directory may hold several files that describe the same run (termmon's logger writes metrics.jsonl
and mirrors epochs into results.json). The most complete one is read, in this order: metrics.jsonl,
seed 004's debug_log_*.jsonl, seed 001's results.json. If a better file appears later, the source
switches to it and starts over.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

from termmon.format import METRICS_JSONL, RESULTS_JSON
from termmon.ingest.adapters import DebugLogAdapter, results_history_records
from termmon.ingest.batch import BatchBuilder, RecordBatch
from termmon.ingest.jsonl import READ_CHUNK, JsonlTailer
from termmon.ingest.parse import SLICE_LINES, LineParser
from termmon.ingest.whole_file import WholeFileReader


class SourceKind(StrEnum):
    METRICS = "metrics.jsonl"
    DEBUG_LOG = "debug_log"
    RESULTS = "results.json"
    NONE = "none"


def detect_kind(run_dir: Path) -> tuple[SourceKind, list[Path]]:
    """Which files to read for this run directory, best first."""
    metrics = run_dir / METRICS_JSONL
    if metrics.is_file():
        return SourceKind.METRICS, [metrics]
    try:
        debug_logs = sorted(
            run_dir / name
            for name in os.listdir(run_dir)
            if name.startswith("debug_log_") and name.endswith(".jsonl") and (run_dir / name).is_file()
        )
    except OSError:
        debug_logs = []
    if debug_logs:
        return SourceKind.DEBUG_LOG, debug_logs
    results = run_dir / RESULTS_JSON
    if results.is_file():
        return SourceKind.RESULTS, [results]
    return SourceKind.NONE, []


_RANK = {SourceKind.METRICS: 0, SourceKind.DEBUG_LOG: 1, SourceKind.RESULTS: 2, SourceKind.NONE: 3}


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


class RunSource:
    """Incremental reader of one run directory. Not thread-safe: one reader thread at a time."""

    def __init__(self, run_dir: Path) -> None:
        self.run_dir = run_dir
        self.kind = SourceKind.NONE
        self._tailers: dict[Path, JsonlTailer] = {}
        self._adapters: dict[Path, DebugLogAdapter] = {}
        self._parsers: dict[Path, LineParser] = {}
        self._results: WholeFileReader | None = None
        self._last_error: str | None = None

    @property
    def has_end_events(self) -> bool:
        """Only termmon's own format marks the end of a run; the seed formats never do."""
        return self.kind == SourceKind.METRICS

    @property
    def pending_bytes(self) -> int:
        """Bytes of an incomplete trailing line being held back (a writer mid-line, or one that died)."""
        return sum(t.pending_bytes for t in self._tailers.values())

    def close(self) -> None:
        for tailer in self._tailers.values():
            tailer.close()
        self._tailers.clear()

    def read(self, max_bytes: int = READ_CHUNK) -> SourceUpdate:
        """What is new, as a column batch (the model's input).

        Lines go from parser to columns a slice at a time, so the dicts of a whole chunk never exist
        at once: that keeps a million-line load near the cost of parsing alone.
        """
        builder = BatchBuilder()
        update = self._read(max_bytes, builder.add_objects)
        update.batch = builder.build(update.bad_lines)
        return update

    def read_objects(self, max_bytes: int = READ_CHUNK) -> SourceUpdate:
        """What is new, as parsed values in termmon's record shape (seed formats already mapped)."""
        objects: list[object] = []
        update = self._read(max_bytes, objects.extend)
        update.objects = objects
        return update

    def _read(self, max_bytes: int, sink: Callable[[list[Any]], None]) -> SourceUpdate:
        kind, files = detect_kind(self.run_dir)
        switched = False
        if _RANK[kind] < _RANK[self.kind]:
            switched = self.kind != SourceKind.NONE
            self.close()
            self._results = None
            self._adapters.clear()
            self.kind = kind
        if self.kind == SourceKind.RESULTS:
            read = self._read_results(sink)
        elif self.kind in (SourceKind.METRICS, SourceKind.DEBUG_LOG):
            read = self._read_jsonl(files if kind == self.kind else list(self._tailers), max_bytes, sink)
        else:
            read = SourceUpdate()
        read.reset = read.reset or switched
        # Report a persistent error once, not on every poll.
        if read.error is not None and read.error == self._last_error:
            read.error = None
        else:
            self._last_error = read.error
        return read

    def _read_jsonl(
        self, files: list[Path], max_bytes: int, sink: Callable[[list[Any]], None]
    ) -> SourceUpdate:
        read = SourceUpdate()
        for path in files:
            tailer = self._tailers.get(path)
            if tailer is None:
                tailer = self._tailers[path] = JsonlTailer(path)
            tail = tailer.read(max_bytes)
            if tail.error:
                read.error = tail.error
            if math.isfinite(tail.mtime):
                read.mtime = tail.mtime if math.isnan(read.mtime) else max(read.mtime, tail.mtime)
            if tail.reset:
                # A file was truncated or replaced: start the whole run over, from every file's start.
                self.close()
                self._adapters.clear()
                self._parsers.clear()
                return SourceUpdate(reset=True, more=True, mtime=read.mtime, error=read.error)
            read.bad_lines += tail.oversized_lines
            read.more = read.more or tail.more
            read.bytes_read += tail.bytes_read
            if not tail.lines:
                continue
            parser = self._parsers.setdefault(path, LineParser())
            adapter = (
                self._adapters.setdefault(path, DebugLogAdapter())
                if self.kind == SourceKind.DEBUG_LOG
                else None
            )
            lines = tail.lines
            for i in range(0, len(lines), SLICE_LINES):
                values, bad_lines = parser.parse(lines[i : i + SLICE_LINES])
                read.bad_lines += bad_lines
                if adapter is not None:
                    mapped = [adapter.record(v) for v in values]
                    read.bad_lines += sum(1 for m in mapped if m is None)
                    values = [m for m in mapped if m is not None]
                sink(values)
        return read

    def _read_results(self, sink: Callable[[list[Any]], None]) -> SourceUpdate:
        if self._results is None:
            self._results = WholeFileReader(self.run_dir / RESULTS_JSON)
        whole = self._results.read()
        read = SourceUpdate(error=whole.error, mtime=self._results.mtime)
        if whole.changed:
            read.reset = True
            sink(results_history_records(whole.value))
        return read
