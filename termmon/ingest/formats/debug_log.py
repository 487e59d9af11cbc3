"""Seed 004's ``debug_log_*.jsonl``: event-typed JSONL records mapped onto termmon's (adapters.py)."""

from __future__ import annotations

from termmon.format import DEBUG_LOG_GLOB
from termmon.ingest.adapters import DebugLogAdapter
from termmon.ingest.formats.base import Format, FormatReader, RunLocation
from termmon.ingest.formats.jsonl_files import Adapter, JsonlFilesReader


def _adapter() -> Adapter:
    return DebugLogAdapter().record


class DebugLog(Format):
    name = "debug_log"
    label = "seed debug_log_*.jsonl"
    pattern = "debug_log_*.jsonl"
    remote_markers = (DEBUG_LOG_GLOB,)
    controllable = True
    rank = 10

    def recognises(self, name: str) -> bool:
        return name.startswith("debug_log_") and name.endswith(".jsonl")

    def open_tail(self, location: RunLocation, window: int) -> FormatReader | None:
        return JsonlFilesReader(lambda: self.files(location), _adapter, tail_window=window)

    def open(self, location: RunLocation) -> FormatReader:
        return JsonlFilesReader(lambda: self.files(location), _adapter)
