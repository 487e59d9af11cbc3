"""Every format termmon reads, in one list: adding a format is a module and a line here.

Discovery, the run source, ``resolve_paths`` and the messages ask this module, never a list of
their own.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from termmon.ingest.formats.base import Format, Located, RunLocation
from termmon.ingest.formats.debug_log import DebugLog
from termmon.ingest.formats.hf_trainer import HfTrainerState
from termmon.ingest.formats.keras_csv import KerasCsv
from termmon.ingest.formats.lightning_csv import LightningCsv
from termmon.ingest.formats.mlflow_db import MlflowDb
from termmon.ingest.formats.mlflow_files import MlflowFiles
from termmon.ingest.formats.results_json import ResultsJson
from termmon.ingest.formats.termmon_jsonl import TermmonJsonl
from termmon.ingest.formats.tfevents import TfEvents
from termmon.ingest.formats.trackio_db import TrackioDb
from termmon.ingest.formats.wandb import Wandb

#: Best rank first, so the first format that finds a directory's run is the one to read it with.
FORMATS: tuple[Format, ...] = tuple(
    sorted(
        (
            TermmonJsonl(),
            DebugLog(),
            ResultsJson(),
            TfEvents(),
            HfTrainerState(),
            LightningCsv(),
            KerasCsv(),
            Wandb(),
            MlflowFiles(),
            MlflowDb(),
            TrackioDb(),
        ),
        key=lambda f: f.rank,
    )
)
_BY_NAME = {f.name: f for f in FORMATS}


def get(name: str) -> Format:
    """The format called ``name`` (a :attr:`RunLocation.format`)."""
    return _BY_NAME[name]


def is_run_file(name: str) -> bool:
    """A file name some format reads as (part of) a run."""
    return any(f.recognises(name) for f in FORMATS)


def locate(directory: Path, names: Sequence[str]) -> Located:
    """The runs every format sees in one directory listing, one per run.

    Where several formats find the same run (metrics.jsonl beside its results.json mirror, event
    files beside trainer_state.json) the best-ranked one reads it. Discovery descends only if every
    format that found something says the subdirectories are not part of its runs.
    """
    runs: dict[Path, RunLocation] = {}
    descend = True
    for fmt in FORMATS:
        located = fmt.locate(directory, names)
        if located is None:
            continue
        descend = descend and located.descend
        for run in located.runs:
            runs.setdefault(run.path, run)
    return Located(list(runs.values()), descend=descend)


def best_for_dir(directory: Path, names: Sequence[str]) -> Format | None:
    """The best-ranked format that finds the run in ``directory`` itself (key None)."""
    for fmt in FORMATS:
        located = fmt.locate(directory, names)
        if located is not None and any(r.key is None and r.dir == directory for r in located.runs):
            return fmt
    return None
