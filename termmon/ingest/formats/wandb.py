"""W&B runs: ``wandb/offline-run-<date>-<id>/run-<id>.wandb`` (offline) and ``wandb/run-*`` (synced).

Everything termmon needs lives in the one ``.wandb`` file, which the wandb process appends to while
the run trains (in bursts, every ~15 s) and closes with an exit record: in wandb 0.31 ``files/``
holds no summary or config of its own in offline mode. The file is read by record
(:mod:`~termmon.ingest.formats.leveldb_log`) and decoded by hand
(:mod:`~termmon.ingest.formats.wandb_records`), so neither wandb nor protobuf is needed.

``wandb/latest-run`` is a symlink to the newest run directory; discovery does not walk links to a
sibling, so that run is found once, under its own name (given directly, the link reads as the run).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from termmon.ingest.formats.base import Format, FormatReader, ReadStatus, RunLocation, Sink

# The reader's modules (LevelDB log framing, the record decoder) are imported by a reader when it is
# made: discovery and the monitor's first frame need only the declaration.

#: Records handed to the sink at a time.
_SLICE = 4096


class WandbReader:
    """Tails one run's ``.wandb`` file."""

    def __init__(self, path: Path) -> None:
        from termmon.ingest.formats.leveldb_log import LogFile
        from termmon.ingest.formats.wandb_records import WandbRecords

        self._new_records = WandbRecords
        self._log = LogFile(path)
        self._records = WandbRecords()

    @property
    def pending_bytes(self) -> int:
        return self._log.pending_bytes

    def close(self) -> None:
        self._log.close()

    def read(self, sink: Sink, max_bytes: int) -> ReadStatus:
        got = self._log.read(max_bytes)
        status = ReadStatus(
            reset=got.reset,
            more=got.more,
            bytes_read=got.bytes_read,
            bad_lines=got.bad_records,
            error=got.error,
        )
        status.saw_mtime(got.mtime)
        if got.reset:
            self._records = self._new_records()
        from termmon.ingest.formats.protowire import WireError

        out: list[dict[str, Any]] = []
        for payload in got.records:
            try:
                self._records.decode(payload, out)
            except WireError as exc:  # the CRC held, so this is a writer we do not understand
                status.bad_lines += 1
                status.error = f"{self._log.path}: unreadable record ({exc}), skipped"
            if len(out) >= _SLICE:
                sink(out)
                out = []
        if out:
            sink(out)
        return status


class Wandb(Format):
    name = "wandb"
    label = "W&B run"
    pattern = "wandb/offline-run-*/run-*.wandb"
    remote_markers = ("*.wandb",)
    rank = 60
    tailable = True
    has_end_events = True

    def recognises(self, name: str) -> bool:
        return name.startswith("run-") and name.endswith(".wandb")

    def open(self, location: RunLocation) -> FormatReader:
        files = self.files(location)
        return WandbReader(files[0] if files else location.dir / f"run-{location.dir.name}.wandb")
