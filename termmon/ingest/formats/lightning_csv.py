"""Lightning's CSVLogger: ``<save_dir>/<name>/version_N/metrics.csv`` with ``hparams.yaml`` beside it.

One wide row per log call: ``epoch`` and ``step`` columns (0-based), metrics as logged
(``train_loss_step``, ``train_loss_epoch``, ``val_loss``, ``lr-SGD`` from LearningRateMonitor). When
a metric first appears Lightning rewrites the whole file in place with the new header (same inode,
larger); the CSV tailer sees the first bytes change and re-reads it. termmon's own ``metrics.csv``
mirror is told apart by where it sits (beside metrics.jsonl) and its header (it starts with
``event``).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from termmon.format import EV_START, EV_STEP, METRICS_CSV, METRICS_JSONL
from termmon.ingest.formats.base import Format, FormatReader, Located, RunLocation
from termmon.ingest.formats.csv_rows import CsvRowsReader, header_of, number
from termmon.ingest.formats.yaml_config import read_yaml_config

HPARAMS = "hparams.yaml"


def row_record(header: list[str], cells: list[str]) -> dict[str, Any] | None:
    record: dict[str, Any] = {"event": EV_STEP}
    for name, cell in zip(header, cells, strict=False):
        value = number(cell)
        if value is None:
            continue
        if name in ("step", "epoch"):
            record[name] = int(value) if value.is_integer() else value
        else:
            record[name] = value
    return record if len(record) > 1 else None


class LightningCsv(Format):
    name = "lightning_csv"
    label = "Lightning CSVLogger metrics.csv"
    pattern = "lightning_logs/version_N/metrics.csv"
    remote_markers = (METRICS_CSV,)
    remote_files = ("hparams.yaml",)
    rank = 45
    replays_on_reset = True  # its only reset is the in-place rewrite, which keeps the earlier rows

    def recognises(self, name: str) -> bool:
        return name == METRICS_CSV

    def locate(self, directory: Path, names: Sequence[str]) -> Located | None:
        if METRICS_CSV not in names or METRICS_JSONL in names:
            return None
        header = header_of(directory / METRICS_CSV)
        if header[:1] == ["event"]:
            return None  # termmon's mirror whose metrics.jsonl is gone: not Lightning's
        return Located([RunLocation(directory, self.name)])

    def files(self, location: RunLocation) -> list[Path]:
        return [location.dir / METRICS_CSV]

    def open(self, location: RunLocation) -> FormatReader:
        def first() -> list[dict[str, Any]]:
            config = read_yaml_config(location.dir / HPARAMS)
            return [{"event": EV_START, "config": config}] if config else []

        return CsvRowsReader(location.dir / METRICS_CSV, row_record, first)
