"""termmon's own format: metrics.jsonl, appended by ``termmon.telemetry`` (DESIGN.md)."""

from __future__ import annotations

from pathlib import Path

from termmon.format import METRICS_JSONL
from termmon.ingest.formats.base import Format, FormatReader, RunLocation
from termmon.ingest.formats.jsonl_files import JsonlFilesReader


class TermmonJsonl(Format):
    name = "termmon"
    label = "termmon metrics.jsonl"
    pattern = "metrics.jsonl"
    remote_markers = (METRICS_JSONL,)
    controllable = True
    rank = 0
    has_end_events = True

    def recognises(self, name: str) -> bool:
        return name == METRICS_JSONL

    def files(self, location: RunLocation) -> list[Path]:
        return [location.dir / METRICS_JSONL]

    def open_tail(self, location: RunLocation, window: int) -> FormatReader | None:
        return JsonlFilesReader(lambda: self.files(location), tail_window=window)

    def open(self, location: RunLocation) -> FormatReader:
        return JsonlFilesReader(lambda: self.files(location))
