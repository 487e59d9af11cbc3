"""Keras' ``CSVLogger`` callback: one row per epoch, ``epoch`` (0-based) first, then the logs
(``loss``, ``val_loss``, metrics as compiled), NaN written as ``nan``.

The file name is the user's choice (``training.log`` in Keras' docs), so a ``.csv`` or ``.log`` file
is recognised by its header, which starts with ``epoch`` (Keras sorts the other keys) and has no
``step`` column (Lightning's metrics.csv, also sorted, has one).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from termmon.format import EV_EPOCH, METRICS_CSV
from termmon.ingest.formats.base import Format, FormatReader, Located, RunLocation
from termmon.ingest.formats.csv_rows import CsvRowsReader, header_of, number


def row_record(header: list[str], cells: list[str]) -> dict[str, Any] | None:
    record: dict[str, Any] = {"event": EV_EPOCH}
    for name, cell in zip(header, cells, strict=False):
        value = number(cell)
        if value is None:
            continue
        record[name] = int(value) if name == "epoch" and value.is_integer() else value
    return record if "epoch" in record else None


def _keras_header(header: list[str]) -> bool:
    return header[:1] == ["epoch"] and "step" not in header


def _no_start() -> list[dict[str, Any]]:
    return []


class KerasCsv(Format):
    name = "keras_csv"
    label = "Keras CSVLogger log"
    pattern = "CSVLogger file (*.csv, *.log)"
    rank = 48

    def recognises(self, name: str) -> bool:
        return name.endswith((".csv", ".log")) and name != METRICS_CSV

    def _logs(self, directory: Path, names: Sequence[str]) -> list[str]:
        return sorted(n for n in names if self.recognises(n) and _keras_header(header_of(directory / n, 512)))

    def locate(self, directory: Path, names: Sequence[str]) -> Located | None:
        logs = self._logs(directory, names)
        if not logs:
            return None
        if len(logs) == 1:
            return Located([RunLocation(directory, self.name)], descend=True)
        # Several logs in one directory are several runs: each is a run keyed by its file name.
        runs = [RunLocation(directory, self.name, file=directory / n, key=n) for n in logs]
        return Located(runs, descend=True)

    def files(self, location: RunLocation) -> list[Path]:
        if location.file is not None:
            return [location.file]
        try:
            names = sorted(p.name for p in location.dir.iterdir())
        except OSError:
            return []
        return [location.dir / n for n in self._logs(location.dir, names)[:1]]

    def open(self, location: RunLocation) -> FormatReader:
        files = self.files(location)
        path = files[0] if files else location.dir / "training.log"
        return CsvRowsReader(path, row_record, _no_start)
