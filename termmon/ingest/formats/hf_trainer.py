"""Hugging Face ``Trainer``'s ``trainer_state.json``: the ``log_history`` list, rewritten whole.

HF writes it at checkpoints and at the end only (not live), in place and not atomically, with bare
``NaN`` tokens: so it is read whole with the last good parse kept (whole_file.py), and Python's json
reads the tokens. Each ``log_history`` entry becomes a step record at its optimizer ``step`` with its
fractional ``epoch``; eval entries share the training step and become a record of their own. Names
stay as HF wrote them (``loss``, ``grad_norm``, ``learning_rate``, ``eval_loss``, final ``train_*``).

HF's default NaN filter logs ``loss: 0.0`` once a run is NaN; ``grad_norm`` and ``eval_loss`` keep the
NaN, which is what raises the alert.

Layout: ``output_dir/{trainer_state.json, checkpoint-N/trainer_state.json, runs/<date>_<host>/events*}``.
The event files are written at every log, so when ``runs/`` holds them *they* are the run (read live
by the tfevents format) and trainer_state.json adds no second run. Without them (``report_to="none"``)
the output dir is the run, read from its newest trainer_state.json: the final one, else the latest
checkpoint's, so a run in progress shows up at its first checkpoint. The checkpoints are never runs
of their own.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from termmon.format import EV_START, EV_STEP
from termmon.ingest.batch import number
from termmon.ingest.formats.base import Format, FormatReader, Located, ReadStatus, RunLocation, Sink
from termmon.ingest.formats.results_json import WholeJsonReader
from termmon.ingest.formats.tfevents import event_file_names

TRAINER_STATE = "trainer_state.json"
_CHECKPOINT = re.compile(r"checkpoint-\d+")
#: trainer_state.json's settings worth showing as the run's config.
_CONFIG_KEYS = (
    "train_batch_size",
    "num_train_epochs",
    "max_steps",
    "logging_steps",
    "eval_steps",
    "save_steps",
    "best_metric",
    "best_model_checkpoint",
)


def state_records(state: object) -> list[dict[str, Any]]:
    """trainer_state.json as records: a start with its settings, one step record per log entry."""
    if not isinstance(state, Mapping):
        return []
    config = {k: state[k] for k in _CONFIG_KEYS if k in state and state[k] is not None}
    records: list[dict[str, Any]] = [{"event": EV_START, "config": config}]
    history = state.get("log_history")
    if not isinstance(history, list):
        return records
    for entry in history:
        if not isinstance(entry, Mapping):
            continue
        record: dict[str, Any] = {"event": EV_STEP}
        for key, value in entry.items():
            if number(value) is not None:
                record[str(key)] = value
        if len(record) > 1:
            records.append(record)
    return records


def _has_tensorboard_runs(directory: Path) -> bool:
    runs = directory / "runs"
    try:
        return any(event_file_names(p) for p in runs.iterdir() if p.is_dir())
    except OSError:
        return False


def latest_state(directory: Path) -> Path | None:
    """The newest trainer_state.json of an output dir: its own (written at the end), else the one in
    the checkpoint with the highest step (written during training)."""
    own = directory / TRAINER_STATE
    if own.is_file():
        return own
    try:
        steps = [
            (int(p.name.split("-")[1]), p / TRAINER_STATE)
            for p in directory.iterdir()
            if _CHECKPOINT.fullmatch(p.name) and (p / TRAINER_STATE).is_file()
        ]
    except OSError:
        return None
    return max(steps)[1] if steps else None


class HfStateReader:
    """Reads the newest trainer_state.json; a newer checkpoint's (or the final one) starts it over."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._path: Path | None = None
        self._reader: WholeJsonReader | None = None

    pending_bytes = 0

    def read(self, sink: Sink, max_bytes: int) -> ReadStatus:
        path = latest_state(self.directory)
        if path is None:
            return ReadStatus()
        if path != self._path or self._reader is None:
            self._path, self._reader = path, WholeJsonReader(path, state_records)
        return self._reader.read(sink, max_bytes)

    def close(self) -> None:
        """Nothing is held open between reads."""


class HfTrainerState(Format):
    name = "hf_trainer"
    label = "Hugging Face trainer_state.json"
    pattern = TRAINER_STATE
    remote_markers = (TRAINER_STATE,)
    rank = 40
    tailable = False
    replays_on_reset = True

    def recognises(self, name: str) -> bool:
        return name == TRAINER_STATE

    def locate(self, directory: Path, names: Sequence[str]) -> Located | None:
        checkpoints = [n for n in names if _CHECKPOINT.fullmatch(n)]
        if TRAINER_STATE not in names and not checkpoints:
            return None
        if TRAINER_STATE in names and _CHECKPOINT.fullmatch(directory.name):
            return Located([], descend=False)  # a checkpoint's copy of the run above
        if _has_tensorboard_runs(directory):
            return Located([], descend=True)  # runs/* hold the same logs, live
        if latest_state(directory) is None:
            return None
        return Located([RunLocation(directory, self.name)])

    def files(self, location: RunLocation) -> list[Path]:
        path = latest_state(location.dir)
        return [] if path is None else [path]

    def open(self, location: RunLocation) -> FormatReader:
        return HfStateReader(location.dir)
