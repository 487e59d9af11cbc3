"""Tailing a CSV log with a header row (Lightning's metrics.csv, Keras' CSVLogger).

Rows are lines, so the JSONL tailer's guarantees carry over: only complete lines are read, a torn
last row is held back, and a file rewritten in place is caught by the fingerprint of its first bytes
(a new header changes them) and re-read from the start as a ``reset``. Cells are text: a number
parses with ``float`` (so ``nan`` and ``inf`` read as written), an empty cell is a missing value.
"""

from __future__ import annotations

import csv
from collections.abc import Callable
from pathlib import Path
from typing import Any

from termmon.ingest.formats.base import ReadStatus, Sink
from termmon.ingest.jsonl import JsonlTailer

#: Turns (header, cells) into a record, or None for a row that is not one (a bad line).
RowMapper = Callable[[list[str], list[str]], "dict[str, Any] | None"]


def header_of(path: Path, limit: int = 4096) -> list[str]:
    """The first line of a CSV file, split into column names ([] if unreadable)."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(limit)
    except OSError:
        return []
    line = head.split(b"\n", 1)[0].decode("utf-8", "replace").strip("\r\ufeff")
    return next(csv.reader([line]), [])


def number(cell: str) -> float | None:
    """A cell as a float, or None for an empty or non-numeric cell."""
    if not cell:
        return None
    try:
        return float(cell)
    except ValueError:
        return None


class CsvRowsReader:
    """New complete rows of one CSV file, mapped to records by ``mapper``."""

    def __init__(self, path: Path, mapper: RowMapper, first: Callable[[], list[dict[str, Any]]]) -> None:
        self.path = path
        self._mapper = mapper
        self._first = first  # records that precede the rows (a start with the run's config)
        self._tailer = JsonlTailer(path)
        self._header: list[str] | None = None

    @property
    def pending_bytes(self) -> int:
        return self._tailer.pending_bytes

    def close(self) -> None:
        self._tailer.close()

    def read(self, sink: Sink, max_bytes: int) -> ReadStatus:
        tail = self._tailer.read(max_bytes)
        status = ReadStatus(
            reset=tail.reset,
            more=tail.more,
            bytes_read=tail.bytes_read,
            bad_lines=tail.oversized_lines,
            error=tail.error,
        )
        status.saw_mtime(tail.mtime)
        if tail.reset:
            self._header = None
        records: list[dict[str, Any]] = []
        lines = tail.lines
        if lines and self._header is None:
            self._header = next(csv.reader([lines[0].decode("utf-8", "replace").strip("\r")]), [])
            lines = lines[1:]
            records.extend(self._first())
        header = self._header or []
        text = (line.decode("utf-8", "replace").rstrip("\r") for line in lines)
        for cells in csv.reader(text):
            if not cells:
                continue
            record = self._mapper(header, cells)
            if record is None:
                status.bad_lines += 1
            else:
                records.append(record)
        if records:
            sink(records)
        return status
