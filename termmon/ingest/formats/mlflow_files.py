"""MLflow's file store: ``mlruns/<experiment>/<run>/{meta.yaml, metrics/<name>, params/, tags/}``.

MLflow 3 writes it only with ``MLFLOW_ALLOW_FILE_STORE=true`` (its default is now ``mlflow.db``),
but older runs are all like this. A run directory holds ``meta.yaml`` (flat ``key: value``:
``run_name``, ``start_time``/``end_time`` in ms, ``status`` 1 running, 3 finished, 4 failed, 5
killed) and one append-only file per metric, whose name is the metric's (``train/loss`` is
``metrics/train/loss``), with one line per point: ``timestamp_ms value step`` (older files omit
the step, newer ones may add a dataset name and digest); values are Python's ``str(float)``, so
``nan`` and ``inf``. Params and tags are one small file each, holding the value.

Read live, by file: each metric file from where the last read stopped (a line without its newline
is held back), ``meta.yaml`` again only when it changes. The experiment directory's ``meta.yaml``
and MLflow 3's logged models (``<experiment>/models/<id>/``, with metrics of their own) are not
runs; runs the user deleted (``lifecycle_stage: deleted``) are skipped, as MLflow's UI does.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from termmon.format import EV_END, EV_START
from termmon.ingest.formats import mlflow_status
from termmon.ingest.formats.base import Format, FormatReader, Located, ReadStatus, RunLocation, Sink
from termmon.ingest.formats.tracker_metrics import Point, step_records
from termmon.ingest.formats.yaml_config import read_yaml_config

META = "meta.yaml"
METRICS, PARAMS, TAGS = "metrics", "params", "tags"
#: A param or tag file bigger than this is not a value worth showing (MLflow caps params at 6000 chars).
_MAX_VALUE = 1 << 16


def _is_run_meta(meta: dict[str, Any]) -> bool:
    return ("run_id" in meta or "run_uuid" in meta) and "model_id" not in meta


def _values(directory: Path) -> dict[str, str]:
    """Params or tags: one file per key (``a/b`` keys nest), the file's text the value."""
    values: dict[str, str] = {}
    for path in _files_under(directory):
        try:
            with open(path, "rb") as fh:
                data = fh.read(_MAX_VALUE)
        except OSError:
            continue
        values[path.relative_to(directory).as_posix()] = data.decode("utf-8", "replace")
    return values


def _files_under(directory: Path) -> list[Path]:
    found: list[Path] = []
    for parent, dirnames, filenames in os.walk(directory):
        dirnames.sort()
        found.extend(Path(parent) / name for name in sorted(filenames))
    return found


@dataclass
class _MetricFile:
    """One metric's file: how far it has been read, and the torn last line held back."""

    offset: int = 0
    pending: bytes = b""
    ident: tuple[int, int] | None = None


def parse_point(name: str, line: bytes) -> Point | None:
    """One metric line (``timestamp value [step [dataset digest]]``) as a point; None when malformed."""
    parts = line.split()
    if len(parts) not in (2, 3, 5):
        return None
    try:
        return (int(parts[2]) if len(parts) > 2 else 0, int(parts[0]), name, float(parts[1]))
    except ValueError:
        return None


class MlflowFilesReader:
    """Reads one file-store run live: new metric lines, and meta.yaml/params/tags when they change."""

    def __init__(self, run_dir: Path) -> None:
        self.dir = run_dir
        self._forget()

    def _forget(self) -> None:
        """Back to the state of a reader that has read nothing."""
        self._files: dict[str, _MetricFile] = {}
        self._meta_sig: tuple[int, int] | None = None
        self._meta: dict[str, Any] = {}
        self._config_sig: tuple[object, ...] | None = None
        self._ended = False

    @property
    def pending_bytes(self) -> int:
        return sum(len(f.pending) for f in self._files.values())

    def close(self) -> None:
        """Nothing is held open between reads."""

    def read(self, sink: Sink, max_bytes: int) -> ReadStatus:
        status = ReadStatus()
        self._read_meta(status)
        if not self._meta:
            return status
        out: list[dict[str, Any]] = []
        finished = self._status() in mlflow_status.END_STATUS
        config_sig = self._config_signature()
        if (
            self._config_sig is None
            or (self._ended and not finished)
            or (not self._ended and config_sig != self._config_sig)
        ):
            # The first read, new params or tags, or a finished run resumed (start_run(run_id=...)).
            self._config_sig = config_sig
            self._ended = False
            out.append(self._start_record())
        points: list[Point] = []
        for path in _files_under(self.dir / METRICS):
            if status.bytes_read >= max_bytes:
                status.more = True
                break
            name = path.relative_to(self.dir / METRICS).as_posix()
            if not self._read_metric(name, path, points, status, max_bytes):
                # MLflow only appends: a replaced or shorter metric file means the run was rewritten.
                self._forget()
                again = self.read(sink, max_bytes)
                again.reset = True
                return again
        out.extend(step_records(points))
        end = self._end_record()
        if end is not None and not self._ended and not status.more:
            self._ended = True
            out.append(end)
        if out:
            sink(out)
        return status

    def _read_meta(self, status: ReadStatus) -> None:
        path = self.dir / META
        try:
            st = os.stat(path)
        except OSError:
            return
        status.saw_mtime(st.st_mtime)
        sig = (st.st_mtime_ns, st.st_size)
        if sig == self._meta_sig:
            return
        meta = read_yaml_config(path)
        if _is_run_meta(meta):  # else being rewritten (MLflow's write is not atomic): retry next poll
            self._meta_sig = sig
            self._meta = meta

    def _status(self) -> int | None:
        value = self._meta.get("status")
        return value if isinstance(value, int) else mlflow_status.BY_NAME.get(str(value))

    def _config_signature(self) -> tuple[int, ...]:
        """Changes when a param or tag is added (MLflow params never change once logged)."""
        sig: list[int] = []
        for directory in (self.dir / PARAMS, self.dir / TAGS):
            try:
                sig.append(os.stat(directory).st_mtime_ns)
            except OSError:
                sig.append(0)
        return tuple(sig)

    def _start_record(self) -> dict[str, Any]:
        tags = _values(self.dir / TAGS)
        record: dict[str, Any] = {"event": EV_START}
        started = self._meta.get("start_time")
        if isinstance(started, int):
            record["time"] = started / 1000
        record["run_name"] = str(self._meta.get("run_name") or tags.get("mlflow.runName") or self.dir.name)
        record["run_id"] = str(self._meta.get("run_id") or self._meta.get("run_uuid"))
        record["experiment_id"] = str(self._meta.get("experiment_id", ""))
        record["config"] = _values(self.dir / PARAMS)
        user_tags = {k: v for k, v in tags.items() if not k.startswith("mlflow.")}
        if user_tags:
            record["tags"] = user_tags
        return record

    def _end_record(self) -> dict[str, Any] | None:
        status = self._status()
        end_status = mlflow_status.END_STATUS.get(status) if status is not None else None
        if end_status is None:
            return None
        record: dict[str, Any] = {"event": EV_END, "status": end_status}
        ended = self._meta.get("end_time")
        if isinstance(ended, int):
            record["time"] = ended / 1000
        return record

    def _read_metric(
        self, name: str, path: Path, points: list[Point], status: ReadStatus, max_bytes: int
    ) -> bool:
        """Read a metric file's new lines into ``points``; False when it is not the file it was."""
        state = self._files.setdefault(name, _MetricFile())
        try:
            with open(path, "rb") as fh:
                st = os.fstat(fh.fileno())
                ident = (st.st_dev, st.st_ino)
                if (state.ident is not None and ident != state.ident) or st.st_size < state.offset:
                    return False
                state.ident = ident
                status.saw_mtime(st.st_mtime)
                if st.st_size == state.offset:
                    return True
                fh.seek(state.offset)
                data = fh.read(max(max_bytes - status.bytes_read, 1 << 16))
        except OSError as exc:
            status.error = f"{path}: {exc.strerror or exc}"
            return True
        state.offset += len(data)
        status.bytes_read += len(data)
        data = state.pending + data
        cut = data.rfind(b"\n") + 1
        state.pending = data[cut:]
        for line in data[:cut].splitlines():
            if not line.strip():
                continue
            point = parse_point(name, line)
            if point is None:
                status.bad_lines += 1
            else:
                points.append(point)
        return True


class MlflowFiles(Format):
    name = "mlflow"
    label = "MLflow file store"
    pattern = "mlruns/<experiment>/<run>/meta.yaml"
    remote_files = (META, "metrics/*", "params/*", "tags/*")
    rank = 62
    tailable = True
    has_end_events = True

    def recognises(self, name: str) -> bool:
        return name == META

    def locate(self, directory: Path, names: Sequence[str]) -> Located | None:
        if META not in names or METRICS not in names:
            return None  # an experiment's meta.yaml, or nothing of MLflow's
        meta = read_yaml_config(directory / META)
        if not _is_run_meta(meta):
            return None
        if meta.get("lifecycle_stage") == mlflow_status.DELETED:
            return Located([], descend=False)
        return Located([RunLocation(directory, self.name)], descend=False)

    def files(self, location: RunLocation) -> list[Path]:
        return [location.dir / META, *_files_under(location.dir / METRICS)]

    def open(self, location: RunLocation) -> FormatReader:
        return MlflowFilesReader(location.dir)
