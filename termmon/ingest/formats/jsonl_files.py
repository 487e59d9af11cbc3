"""Tailing one or more JSONL files of a run (termmon's metrics.jsonl, seed 004's debug logs).

Lines go from parser to sink a slice at a time, so the dicts of a whole chunk never exist at once:
that keeps a million-line load near the cost of parsing alone.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from termmon.ingest.formats.base import ReadStatus, Sink
from termmon.ingest.jsonl import JsonlTailer
from termmon.ingest.parse import SLICE_LINES, LineParser

#: Maps one parsed line to a termmon record, or None for a line that is not one (a bad line).
Adapter = Callable[[object], "dict[str, Any] | None"]


class JsonlFilesReader:
    """Reads new complete lines of the files ``list_files()`` returns, in order, through ``adapter``.

    ``list_files`` is asked on every read, so a file that appears later (a second debug log) is
    picked up. A truncated or replaced file starts the whole run over.

    ``tail_window``: each file is first read from its last ``tail_window`` bytes, not its start (the
    monitor's first look at a big run), also after a reset.
    """

    def __init__(
        self,
        list_files: Callable[[], list[Path]],
        adapter_factory: Callable[[], Adapter] | None = None,
        *,
        tail_window: int | None = None,
    ) -> None:
        self._list_files = list_files
        self._adapter_factory = adapter_factory
        self._tail_window = tail_window
        self._tailers: dict[Path, JsonlTailer] = {}
        self._parsers: dict[Path, LineParser] = {}
        self._adapters: dict[Path, Adapter] = {}

    @property
    def pending_bytes(self) -> int:
        return sum(t.pending_bytes for t in self._tailers.values())

    def close(self) -> None:
        for tailer in self._tailers.values():
            tailer.close()
        self._tailers.clear()

    def _start_over(self) -> None:
        self.close()
        self._parsers.clear()
        self._adapters.clear()

    def read(self, sink: Sink, max_bytes: int) -> ReadStatus:
        status = ReadStatus()
        files = list(dict.fromkeys([*self._tailers, *self._list_files()]))
        for path in files:
            tailer = self._tailers.get(path)
            if tailer is None:
                tailer = self._tailers[path] = JsonlTailer(path)
                if self._tail_window is not None:
                    tailer.start_at_tail(self._tail_window)
            tail = tailer.read(max_bytes)
            if tail.error:
                status.error = tail.error
            status.saw_mtime(tail.mtime)
            if tail.reset:
                # A file was truncated or replaced: start the whole run over, from every file's start.
                self._start_over()
                return ReadStatus(reset=True, more=True, mtime=status.mtime, error=status.error)
            status.bad_lines += tail.oversized_lines
            status.more = status.more or tail.more
            status.bytes_read += tail.bytes_read
            if tail.lines:
                self._parse(path, tail.lines, sink, status)
        return status

    def _parse(self, path: Path, lines: list[bytes], sink: Sink, status: ReadStatus) -> None:
        parser = self._parsers.setdefault(path, LineParser())
        adapter = None
        if self._adapter_factory is not None:
            adapter = self._adapters.get(path)
            if adapter is None:
                adapter = self._adapters[path] = self._adapter_factory()
        for i in range(0, len(lines), SLICE_LINES):
            values, bad_lines = parser.parse(lines[i : i + SLICE_LINES])
            status.bad_lines += bad_lines
            if adapter is not None:
                mapped = [adapter(v) for v in values]
                status.bad_lines += sum(1 for m in mapped if m is None)
                values = [m for m in mapped if m is not None]
            sink(values)
