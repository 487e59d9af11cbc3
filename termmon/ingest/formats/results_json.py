"""Seed 001's ``results.json``: a JSON document rewritten whole at each epoch (not tailable)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from termmon.format import RESULTS_JSON
from termmon.ingest.adapters import results_history_records
from termmon.ingest.formats.base import Format, FormatReader, ReadStatus, RunLocation, Sink
from termmon.ingest.whole_file import WholeFileReader


class WholeJsonReader:
    """Re-reads a JSON file when it changes (last good content kept) and maps it to records."""

    pending_bytes = 0

    def __init__(self, path: Path, to_records: Callable[[object], list[dict[str, Any]]]) -> None:
        self._reader = WholeFileReader(path)
        self._to_records = to_records

    def read(self, sink: Sink, max_bytes: int) -> ReadStatus:
        whole = self._reader.read()
        status = ReadStatus(error=whole.error, mtime=self._reader.mtime)
        if whole.changed:
            status.reset = True
            sink(self._to_records(whole.value))
        return status

    def close(self) -> None:
        """Nothing is held open between reads."""


class ResultsJson(Format):
    name = "results"
    label = "seed results.json"
    pattern = "results.json"
    remote_markers = (RESULTS_JSON,)
    controllable = True
    rank = 20
    tailable = False
    replays_on_reset = True

    def recognises(self, name: str) -> bool:
        return name == RESULTS_JSON

    def files(self, location: RunLocation) -> list[Path]:
        return [location.dir / RESULTS_JSON]

    def open(self, location: RunLocation) -> FormatReader:
        return WholeJsonReader(location.dir / RESULTS_JSON, results_history_records)
