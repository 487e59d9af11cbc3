"""Helpers for format tests: read a run whole, or while its file grows a piece at a time.

They go through the public reading path (:class:`RunSource`, discovery), never a format's internals,
so a format is tested as every command sees it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from termmon.ingest.discovery import find_runs
from termmon.ingest.formats.base import RunLocation
from termmon.ingest.source import RunSource

DATA = Path(__file__).parent / "data"


def only_run(root: Path) -> RunLocation:
    """The one run discovery finds under ``root`` (fails the test if it finds another number)."""
    found = find_runs(root)
    assert len(found) == 1, found
    return found[0]


def read_all(source: RunSource) -> list[dict[str, Any]]:
    """Every record the source has now, applying resets as the model does."""
    records: list[dict[str, Any]] = []
    while True:
        update = source.read_objects(max_bytes=1 << 16)
        if update.reset:
            records.clear()
        records.extend(update.objects)  # type: ignore[arg-type]
        if not update.more:
            return records


def read_run(root: Path) -> list[dict[str, Any]]:
    """The records of the one run under ``root``, read whole."""
    source = RunSource(only_run(root))
    try:
        return read_all(source)
    finally:
        source.close()


def grow_and_read(src: Path, dst: Path, cuts: list[int]) -> tuple[list[dict[str, Any]], RunSource]:
    """Copy ``src`` to ``dst`` in pieces ending at ``cuts`` (then the rest), reading after each.

    The file keeps its inode, as a real writer's does. Returns the records as the model would hold
    them at the end, and the source (for ``pending_bytes``); the caller closes it.
    """
    data = src.read_bytes()
    dst.parent.mkdir(parents=True, exist_ok=True)
    dst.write_bytes(b"")
    source = RunSource(RunLocation(dst.parent, ""))
    records: list[dict[str, Any]] = []
    done = 0
    for cut in [*sorted(set(cuts)), len(data)]:
        with open(dst, "ab") as fh:
            fh.write(data[done:cut])
        done = max(done, cut)
        while True:
            update = source.read_objects(max_bytes=1 << 16)
            if update.reset:
                records.clear()
            records.extend(update.objects)  # type: ignore[arg-type]
            if not update.more:
                break
    return records, source


def summary(paths: list[Path], capsys: Any) -> tuple[int, dict[str, Any], str]:
    """``termmon summary --json PATHS`` in this process: (exit code, parsed stdout, stderr)."""
    import json

    from termmon.cli import main

    code = main(["summary", "--json", *map(str, paths)])
    captured = capsys.readouterr()
    return code, json.loads(captured.out), captured.err


def alert_kinds(block: dict[str, Any]) -> set[str]:
    return {a["kind"] for a in block["alerts"]}


def points(records: list[dict[str, Any]], *, times: bool = True) -> list[tuple[Any, ...]]:
    """Records as (event, step, epoch, time, name, value) points, so readings that group one step's
    values into different records (read whole, or a record at a time) compare equal; NaN equals NaN.
    ``times=False`` leaves time out, for readers whose merged records take the first value's time."""
    out: list[tuple[Any, ...]] = []
    for r in records:
        where = (r.get("event"), r.get("step"), r.get("epoch"), r.get("time") if times else None)
        for key, value in r.items():
            if key not in ("event", "step", "epoch", "time"):
                shown = repr(value) if isinstance(value, float) else value
                out.append((*where, key, shown if not isinstance(shown, dict) else sorted(shown.items())))
    return out
