"""What a format module declares, and what its reader hands back.

A *format* is a way some library writes a training run to disk (termmon's metrics.jsonl, TensorBoard
event files, Lightning's metrics.csv, ...). Each one is declared once, as a :class:`Format` subclass
in its own module and one line in :mod:`termmon.ingest.formats.registry`; discovery, the run source,
the commands' messages and the docs all read that declaration instead of keeping their own lists.

A reader turns a format's bytes into termmon's record shape: dicts with ``event`` (``start``,
``step``, ``epoch``, ``end``, ...), ``time`` (Unix seconds), ``step``, ``epoch`` and the metrics under
the names the library wrote (``train/loss``, ``eval_loss``, ``lr-SGD``). Mapping names onto roles
(which one is the loss) is :mod:`termmon.roles`' job, not the reader's.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Protocol

#: Where a reader hands records: lists of termmon-shaped dicts, in file order, a slice at a time.
Sink = Callable[[list[Any]], None]


@dataclass(frozen=True)
class RunLocation:
    """Where one run lives: a directory, and for files that hold many runs, the file and a run key.

    Most formats keep one run per directory (``key`` is None). A SQLite store (``mlflow.db``,
    trackio's database) holds many: each run is ``(dir, format, file, key)`` with ``key`` the
    store's own run id, and :attr:`path` makes that a unique path-like identity
    (``.../mlflow.db/<key>``) for names and dict keys. It is an identity, not a file to open.
    """

    dir: Path
    format: str
    file: Path | None = None
    key: str | None = None

    @property
    def path(self) -> Path:
        if self.key is None:
            return self.dir
        return (self.file or self.dir) / self.key


@dataclass
class Located:
    """What a format found in one directory listing: the runs it holds, and whether to look deeper.

    ``descend=False`` tells discovery that the subdirectories belong to these runs (a Lightning
    version dir's checkpoints, an HF output dir's ``checkpoint-N``) and are not runs of their own.
    """

    runs: list[RunLocation] = field(default_factory=list)
    descend: bool = False


@dataclass
class ReadStatus:
    """What one :meth:`FormatReader.read` call did besides handing records to the sink.

    ``reset``: forget everything read before; the records handed on this call start over.
    ``more``: stopped at ``max_bytes``, call again. ``error``: one line naming the file and the reason
    (a damaged record, a newer version), shown by every command and the TUI; the run keeps what was
    read. ``bad_lines``: records that could not be read, counted, not fatal.
    """

    reset: bool = False
    more: bool = False
    mtime: float = math.nan
    bytes_read: int = 0
    bad_lines: int = 0
    error: str | None = None

    def saw_mtime(self, mtime: float) -> None:
        """Keep the newest modification time of the files read."""
        if math.isfinite(mtime):
            self.mtime = mtime if math.isnan(self.mtime) else max(self.mtime, mtime)


class FormatReader(Protocol):
    """Incremental reader of one run. Not thread-safe: one reader thread at a time.

    ``read`` hands everything new since the last call to ``sink`` (lists of records, so a big read
    never holds all its dicts at once) and returns the status. A tailable format reads only what was
    appended and holds back a half-written last record; a whole-file format re-reads the file when it
    changed and answers ``reset=True`` with all of its records.
    """

    def read(self, sink: Sink, max_bytes: int) -> ReadStatus: ...

    @property
    def pending_bytes(self) -> int:
        """Bytes of a half-written last record being held back."""
        ...

    def close(self) -> None: ...


class Format:
    """One on-disk format. Subclass it, set the class attributes, override what differs.

    ``rank`` orders formats that find the same run directory (lower wins): termmon's metrics.jsonl
    beats its own results.json mirror, event files beat a trainer_state.json written only at
    checkpoints. ``tailable``: new data is read incrementally and live; otherwise the whole file is
    re-read when it changes. ``replays_on_reset``: a reset re-delivers records already read (a
    whole-file re-read, Lightning's in-place rewrite), so ``termmon.follow`` skips those it already
    handed on. ``has_end_events``: the format records the end of a run (finished, crashed); without it
    a run's status comes from how old its data is.
    """

    name: ClassVar[str]
    label: ClassVar[str]
    #: The file names it reads, as a user would type them (messages, docs): ``metrics.jsonl``.
    pattern: ClassVar[str]
    rank: ClassVar[int] = 50
    tailable: ClassVar[bool] = True
    replays_on_reset: ClassVar[bool] = False
    has_end_events: ClassVar[bool] = False
    #: Its writer polls control.json (termmon's logger; the seed trainers, as DESIGN.md has it).
    controllable: ClassVar[bool] = False
    #: What a remote mirror (termmon/remote/files.py) copies of a run: globs relative to the run
    #: directory. A file matching ``remote_markers`` makes a remote directory a run directory;
    #: ``remote_files`` are copied besides (MLflow's meta.yaml is no marker: an experiment directory
    #: holds one too). A format with neither is not mirrored.
    remote_markers: ClassVar[tuple[str, ...]] = ()
    remote_files: ClassVar[tuple[str, ...]] = ()

    def recognises(self, name: str) -> bool:
        """Whether a file of this name is one of this format's run files."""
        raise NotImplementedError

    def locate(self, directory: Path, names: Sequence[str]) -> Located | None:
        """The runs this format sees in ``directory`` (``names``: its entries), or None for none.

        The default: a directory holding a recognised file is one run, and its subdirectories are
        part of it.
        """
        if any(self.recognises(name) for name in names):
            return Located([RunLocation(directory, self.name)])
        return None

    def files(self, location: RunLocation) -> list[Path]:
        """The files a reader of ``location`` reads, best first (for progress and messages)."""
        if location.file is not None:
            return [location.file]
        try:
            names = sorted(p.name for p in location.dir.iterdir())
        except OSError:
            return []
        return [location.dir / name for name in names if self.recognises(name)]

    def open(self, location: RunLocation) -> FormatReader:
        """A reader positioned at the start of the run."""
        raise NotImplementedError

    def open_tail(self, location: RunLocation, window: int) -> FormatReader | None:
        """A reader of only the run's most recent records (about the last ``window`` bytes of each
        file), which then follows what is appended: the monitor shows that while the history loads.
        None (the default): this format is read from the start only."""
        return None
