"""TFRecord event files and W&B run logs are append-only: a replaced or truncated file is a new one.

Both readers share termmon/ingest/formats/append_only.py; these read real files (a TensorBoard event
file and a W&B offline log written by the libraries, tests/data) through each reader's public class.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from termmon.ingest.formats.leveldb_log import LogFile
from termmon.ingest.formats.tfrecord import RecordFile
from tests.format_helpers import DATA

EVENTS = next((DATA / "tensorboard" / "diverged").glob("events.out.tfevents.*"))
WANDB = next((DATA / "wandb" / "wandb").glob("offline-run-*/run-*.wandb"))


def _read_all(reader: Any) -> tuple[int, bool]:
    """Records read until nothing is left, and whether any read said ``reset``."""
    count, reset = 0, False
    while True:
        got = reader.read(1 << 16)
        assert got.error is None
        count += len(got.records)
        reset = reset or got.reset
        if not got.bytes_read:
            return count, reset


@pytest.mark.parametrize(
    ("source", "reader"), [(EVENTS, RecordFile), (WANDB, LogFile)], ids=["tfrecord", "wandb"]
)
def test_replaced_and_truncated_files_start_over(
    tmp_path: Path, source: Path, reader: Callable[[Path], Any]
) -> None:
    path = tmp_path / source.name
    shutil.copyfile(source, path)
    file = reader(path)
    total, reset = _read_all(file)
    assert total > 2 and not reset
    assert _read_all(file) == (0, False)  # unchanged: nothing new

    copy = tmp_path / "copy"
    shutil.copyfile(source, copy)
    os.replace(copy, path)  # a new inode at the same path
    assert _read_all(file) == (total, True)

    os.truncate(path, 0)
    assert _read_all(file) == (0, True)
    with open(path, "wb") as fh:
        fh.write(source.read_bytes())
    assert _read_all(file) == (total, False)  # same inode, grown again from 0
    file.close()

    path.unlink()
    missing = file.read(1 << 16)
    assert missing.error is None and not missing.records
