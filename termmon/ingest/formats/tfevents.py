"""TensorBoard event files (``events.out.tfevents.*``): torch's SummaryWriter, HF Trainer's ``runs/*``,
Lightning's TensorBoardLogger, Keras' TensorBoard callback.

A run is a directory of event files, read in name order (their names start with the creation time)
as one stream, as TensorBoard does. A restart re-writes steps, so points are purged as TensorBoard
purges them: a ``SessionLog(START)`` at step *s* (``purge_step``) drops every earlier point with step
>= *s*; a tag whose step goes backwards drops its own earlier points with step >= that step.
(TensorBoard compares with the last step of *any* tag, and only for pre-2 file versions, so a torch
run restarted without ``purge_step`` shows duplicates there; per tag, a restart is caught for every
tag and a tag logged per epoch beside one logged per batch never looks like one.) Purges found after points were handed on restart the read (``reset``), now knowing them, so a
restarted run is never counted twice. ``add_hparams`` writes a sub-run in a subdirectory named by a
float timestamp: it belongs to the run above it, and its hparams become the run's config.
"""

from __future__ import annotations

import bisect
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from termmon.format import EV_START, EV_STEP
from termmon.ingest.formats.base import Format, FormatReader, Located, ReadStatus, RunLocation, Sink
from termmon.ingest.gc_pause import gc_paused
from termmon.roles import Role, role_of

if TYPE_CHECKING:
    from termmon.ingest.formats.tfrecord import RecordFile

# The reader's decoding modules (TFRecord framing, CRC-32C, the Event decoder) are imported where a
# reader first reads: discovery and the monitor's first frame need only the declaration below.

PREFIX = "events.out.tfevents."
#: Files are at most 2**40 bytes: a record's position in the stream is file_index * 2**40 + offset.
_FILE_SPAN = 1 << 40


def is_event_file(name: str) -> bool:
    return name.startswith(PREFIX)


def is_subrun_name(name: str) -> bool:
    """``add_hparams``' sub-run directory: named by ``time.time()``."""
    try:
        float(name)
    except ValueError:
        return False
    return "." in name


def event_file_names(directory: Path) -> list[str]:
    """The event files of one directory, in the order TensorBoard reads them."""
    try:
        return sorted(n for n in os.listdir(directory) if is_event_file(n))
    except OSError:
        return []


def run_directories(directory: Path) -> list[Path]:
    """A run's directory and its add_hparams sub-runs."""
    try:
        return [directory, *sorted(directory / n for n in os.listdir(directory) if is_subrun_name(n))]
    except OSError:
        return [directory]


@dataclass
class _Purges:
    """Purges in stream order, answering "is a point at (position, tag, step) purged?" in O(log n)."""

    all_tags: list[tuple[int, int]] = field(default_factory=list)  # (position, step), sorted
    by_tag: dict[str, list[tuple[int, int]]] = field(default_factory=dict)
    _suffix: dict[str | None, tuple[list[int], list[int]]] = field(default_factory=dict)

    def add(self, position: int, step: int, tags: list[str] | None) -> None:
        targets = [self.all_tags] if tags is None else [self.by_tag.setdefault(t, []) for t in tags]
        for target in targets:
            bisect.insort(target, (position, step))
        self._suffix.clear()

    def __bool__(self) -> bool:
        return bool(self.all_tags or self.by_tag)

    def _index(self, key: str | None) -> tuple[list[int], list[int]]:
        index = self._suffix.get(key)
        if index is None:
            entries = self.all_tags if key is None else self.by_tag.get(key, [])
            positions = [p for p, _ in entries]
            suffix = [s for _, s in entries]
            for i in range(len(suffix) - 2, -1, -1):
                suffix[i] = min(suffix[i], suffix[i + 1])
            index = self._suffix[key] = (positions, suffix)
        return index

    def purged(self, position: int, tag: str, step: int) -> bool:
        for key in (None, tag) if tag in self.by_tag else (None,):
            positions, suffix = self._index(key)
            i = bisect.bisect_right(positions, position)
            if i < len(suffix) and suffix[i] <= step:
                return True
        return False


class _Stream:
    """The event files of one directory, as TensorBoard reads one run."""

    def __init__(self, directory: Path, *, subrun: bool) -> None:
        self.directory = directory
        self.subrun = subrun
        self.files: list[RecordFile] = []
        self.purges = _Purges()
        self.scanned = -1  # the last position already checked for purges
        self.restart()

    def restart(self) -> None:
        """Read again from the start, keeping the purges found (they are what the re-read needs)."""
        for f in self.files:
            f.close()
        self.files = []
        self.most_recent: dict[str, int] = {}
        self.max_emitted = -math.inf

    def names(self) -> list[str]:
        return event_file_names(self.directory)


class TfEventsReader:
    """Reads a run's event files (and its add_hparams sub-runs) incrementally; see the module doc."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._streams: dict[Path, _Stream] = {}
        self._epoch_tags: dict[str, bool] = {}  # tag -> plays the epoch role (termmon.roles)
        self._config: dict[str, Any] = {}

    @property
    def pending_bytes(self) -> int:
        return sum(f.pending_bytes for s in self._streams.values() for f in s.files)

    def close(self) -> None:
        for stream in self._streams.values():
            stream.restart()

    def read(self, sink: Sink, max_bytes: int) -> ReadStatus:
        with gc_paused():
            return self._read(sink, max_bytes)

    def _read(self, sink: Sink, max_bytes: int) -> ReadStatus:
        status = ReadStatus()
        out: list[dict[str, Any]] = []
        for directory in run_directories(self.directory):
            stream = self._streams.get(directory)
            if stream is None:
                stream = self._streams[directory] = _Stream(directory, subrun=directory != self.directory)
            if not self._read_stream(stream, out, status, max_bytes):
                self._restart_all()
                return ReadStatus(reset=True, more=True, mtime=status.mtime, error=status.error)
        if out:
            sink(out)
        return status

    def _restart_all(self) -> None:
        self._config = {}
        for stream in self._streams.values():
            stream.restart()

    def _read_stream(
        self, stream: _Stream, out: list[dict[str, Any]], status: ReadStatus, max_bytes: int
    ) -> bool:
        """Read what is new; False when what was handed on must be taken back (start over)."""
        from termmon.ingest.formats.tfrecord import RecordFile

        names = stream.names()
        known = [f.path.name for f in stream.files]
        if names[: len(known)] != known:
            return not known  # a file appeared before one already read, or went away
        stream.files += [RecordFile(stream.directory / n) for n in names[len(known) :]]
        for index, record_file in enumerate(stream.files):
            frames = record_file.read(max_bytes)
            status.saw_mtime(frames.mtime)
            status.bytes_read += frames.bytes_read
            status.bad_lines += frames.bad_records
            status.more = status.more or frames.more
            if frames.error:
                status.error = frames.error
            if frames.reset:
                return False
            if not self._events(stream, index * _FILE_SPAN, frames.offsets, frames.records, out):
                return False
        return True

    def _events(
        self, stream: _Stream, base: int, offsets: list[int], records: list[bytes], out: list[dict[str, Any]]
    ) -> bool:
        """Decode and hand on one read's records; False when a restart takes back points handed on.

        One loop with its state in locals: it runs once per scalar, so a million-scalar file spends
        little here beyond the decode (benchmarks/bench_tfevents.py).
        """
        from termmon.ingest.formats.protowire import WireError
        from termmon.ingest.formats.tfevents_decode import decode_event

        latest = stream.most_recent
        purges = stream.purges
        purging = bool(purges)  # purges change only where this returns False
        epoch_tags = self._epoch_tags
        last: dict[str, Any] | None = None
        for offset, data in zip(offsets, records, strict=True):
            try:
                event = decode_event(data)
            except WireError:
                continue  # a record whose CRC holds but is not an Event: nothing to show
            if event.hparams:
                # Config arrives in pieces (add_hparams, HF's args and model_config texts): each start
                # carries all of it so far, as the run keeps the last start.
                self._config.update(event.hparams)
                out.append({"event": EV_START, "time": event.wall_time, "config": dict(self._config)})
                last = None
            step = event.step
            scalars = event.scalars
            position = base + offset
            new = position > stream.scanned  # not yet checked for purges
            if new:
                stream.scanned = position
                if event.session_start:
                    purges.add(position, step, None)
                    if stream.max_emitted >= step:
                        return False
                    purging = True
            if not scalars:
                continue
            if stream.subrun:
                # add_hparams' metrics describe the whole run: values without a place on the step axis.
                out.append({"event": EV_STEP, "time": event.wall_time, **dict(scalars)})
                last = None
                continue
            for tag, value in scalars:
                previous = latest.get(tag)
                if new and previous is not None and step < previous:
                    # A restart: the tag's later points were handed on; take them back and re-read.
                    purges.add(position, step, [t for t, _ in scalars if step < latest.get(t, step)])
                    return False
                latest[tag] = step
                if purging and purges.purged(position, tag, step):
                    continue
                if last is None or last["step"] != step or tag in last:
                    last = {"event": EV_STEP, "time": event.wall_time, "step": step}
                    out.append(last)
                last[tag] = value
                epoch_tag = epoch_tags.get(tag)
                if epoch_tag is None:
                    epoch_tag = epoch_tags[tag] = role_of(tag) == Role.EPOCH
                if epoch_tag:
                    last["epoch"] = value  # HF's train/epoch: the run's epoch axis too, name kept
            if step > stream.max_emitted:
                stream.max_emitted = step
        return True


class TfEvents(Format):
    name = "tfevents"
    label = "TensorBoard event file"
    pattern = "events.out.tfevents.*"
    remote_markers = ("events.out.tfevents.*",)
    rank = 30

    def recognises(self, name: str) -> bool:
        return is_event_file(name)

    def locate(self, directory: Path, names: Sequence[str]) -> Located | None:
        if not any(is_event_file(n) for n in names):
            return None
        if is_subrun_name(directory.name) and _has_event_files(directory.parent):
            return Located([], descend=False)  # part of the run above (add_hparams)
        # Subdirectories may be runs of their own (add_scalars writes one per tag, as TensorBoard shows).
        return Located([RunLocation(directory, self.name)], descend=True)

    def files(self, location: RunLocation) -> list[Path]:
        return [d / n for d in run_directories(location.dir) for n in event_file_names(d)]

    def open(self, location: RunLocation) -> FormatReader:
        return TfEventsReader(location.dir)


def _has_event_files(directory: Path) -> bool:
    try:
        return any(is_event_file(n) for n in os.listdir(directory))
    except OSError:
        return False
