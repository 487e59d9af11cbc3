"""W&B's ``Record`` protobufs (wandb_internal.proto) as termmon records, decoded by hand.

Only the messages a monitor needs are decoded; every other record (output, telemetry, stats, files,
artifacts, requests) is skipped by its field number without being parsed. Field numbers are those
of wandb 0.31's ``wandb_internal.proto`` (checked against its generated descriptors); unknown fields
are skipped as protobuf does, so records from newer writers with extra fields still read.

- ``run``: the start record: display name, id, project, start time and config.
- ``config``: config updates after ``wandb.init`` (a fresh start record with the merged config).
- ``history``: one step record per ``run.log``: ``_step`` is the step, ``_timestamp`` the time;
  numbers keep their logged names (``train/loss``; a nested dict's keys joined with ``.``, as W&B
  shows them); text, media and histograms are not series and are skipped, as are W&B's own ``_``
  keys and names that clash with a record's fields (``step``, ``time``). ``value_json`` holds bare ``NaN``/``Infinity`` tokens, which Python's ``json`` reads.
- ``summary``: the run's latest summary, attached to the end record (``summary``).
- ``exit``: the end record: exit code 0 is ``finished``, anything else ``crashed``.
"""

from __future__ import annotations

import json
import math
from typing import Any

from termmon.format import END_CRASHED, END_FINISHED, EV_END, EV_START, EV_STEP
from termmon.ingest import batch
from termmon.ingest.formats.protowire import (
    WIRE_BYTES,
    WIRE_FIXED64,
    WIRE_VARINT,
    as_double,
    as_int64,
    as_text,
    fields,
)
from termmon.ingest.formats.tracker_metrics import FIELD_NAMES

# Record (oneof record_type)
_HISTORY, _SUMMARY, _CONFIG, _RUN, _EXIT = 2, 3, 5, 17, 18
# HistoryItem / SummaryItem / ConfigItem
_KEY, _NESTED_KEY, _INTEGER, _NUMBER, _VALUE_JSON = 1, 2, 5, 6, 16
# HistoryRecord
_ITEM, _STEP = 1, 2
# RunRecord
_RUN_ID, _PROJECT, _RUN_CONFIG, _DISPLAY_NAME, _START_TIME = 1, 3, 4, 8, 17
# RunExitRecord
_EXIT_CODE, _RUNTIME = 1, 2
#: Items of a Config/Summary record: ``update`` (set) and ``remove``.
_UPDATE, _REMOVE = 1, 2
_WANTED = frozenset({_HISTORY, _SUMMARY, _CONFIG, _RUN, _EXIT})


class _Unusual(Exception):
    """Bytes the fast paths below do not handle: decode them with :func:`protowire.fields`."""


def _messages(data: bytes) -> list[tuple[int, bytes]]:
    """The length-delimited fields of a message as ``(number, payload)``.

    wandb's items and rows use one-byte tags and lengths below 16 KiB; this loop handles exactly that
    (a third of the time of the generic decoder) and hands anything else to ``fields``.
    """
    out: list[tuple[int, bytes]] = []
    pos, n = 0, len(data)
    try:
        while pos < n:
            tag = data[pos]
            if tag & 0x80 or tag & 7 != WIRE_BYTES:
                raise _Unusual
            length = data[pos + 1]
            start = pos + 2
            if length & 0x80:
                high = data[pos + 2]
                if high & 0x80:
                    raise _Unusual
                length = (length & 0x7F) | high << 7
                start = pos + 3
            end = start + length
            if end > n:
                raise _Unusual
            out.append((tag >> 3, data[start:end]))
            pos = end
    except (IndexError, _Unusual):
        return [(n, raw) for n, wire, raw in fields(data) if wire == WIRE_BYTES and isinstance(raw, bytes)]
    return out


def _item(data: bytes) -> tuple[str, Any]:
    """A History/Summary/Config item's name and value: ``key`` or ``nested_key`` parts, and
    ``value_json`` (what wandb writes), on a fast path; typed values and the rest via ``fields``."""
    key = ""
    nested: list[str] = []
    text: str | None = None
    pos, n = 0, len(data)
    try:
        while pos < n:
            tag = data[pos]
            if tag == 0x82 and data[pos + 1] == 0x01:  # field 16, length-delimited: value_json
                start = pos + 3
                length = data[pos + 2]
            elif tag in (0x0A, 0x12):  # field 1 (key) or 2 (nested_key)
                start = pos + 2
                length = data[pos + 1]
            else:
                raise _Unusual
            end = start + length
            if length & 0x80 or end > n:
                raise _Unusual
            piece = data[start:end].decode("utf-8", "replace")
            if tag == 0x12:
                nested.append(piece)
            elif tag == 0x0A:
                key = piece
            else:
                text = piece
            pos = end
    except (IndexError, _Unusual):
        return _item_fields(data)
    return (".".join(nested) if nested else key), (None if text is None else _json_value(text))


def _item_fields(data: bytes) -> tuple[str, Any]:
    key = ""
    nested: list[str] = []
    value: Any = None
    for number, wire, raw in fields(data):
        if number == _VALUE_JSON:
            value = _json_value(as_text(raw))
        elif number == _NESTED_KEY:
            nested.append(as_text(raw))
        elif number == _KEY:
            key = as_text(raw)
        elif number == _NUMBER and wire == WIRE_FIXED64:
            value = as_double(raw)
        elif number == _INTEGER and wire == WIRE_VARINT:
            assert isinstance(raw, int)
            value = (raw >> 1) ^ -(raw & 1)  # sint64: zigzag
    return (".".join(nested) if nested else key), value


def _json_value(text: str) -> Any:
    try:
        return float(text)  # the common case, and NaN/Infinity/-Infinity as W&B writes them
    except ValueError:
        pass
    try:
        return json.loads(text)
    except (ValueError, RecursionError):
        return None


def _updates(data: bytes, into: dict[str, Any]) -> None:
    """Apply a ConfigRecord/SummaryRecord's updates and removals to ``into``."""
    for number, raw in _messages(data):
        if number not in (_UPDATE, _REMOVE):
            continue
        name, value = _item(raw)
        if number == _UPDATE:
            into[name] = value
        else:
            into.pop(name, None)


class WandbRecords:
    """Turns one run's Record payloads, in file order, into termmon records (keeps the run's state)."""

    def __init__(self) -> None:
        self.start: dict[str, Any] | None = None
        self.config: dict[str, Any] = {}
        self.summary: dict[str, Any] = {}
        self.last_time = math.nan

    def decode(self, payload: bytes, out: list[dict[str, Any]]) -> None:
        """Append what one Record says to ``out`` (nothing for records a monitor does not need)."""
        for number, wire, raw in fields(payload):
            if number in _WANTED and wire == WIRE_BYTES:
                assert isinstance(raw, bytes)
                if number == _HISTORY:
                    self._history(raw, out)
                elif number == _SUMMARY:
                    _updates(raw, self.summary)
                elif number == _CONFIG:
                    _updates(raw, self.config)
                    if self.start is not None:
                        out.append(self._start_record())
                elif number == _RUN:
                    self._run(raw, out)
                else:
                    self._exit(raw, out)
                return

    def _history(self, data: bytes, out: list[dict[str, Any]]) -> None:
        record: dict[str, Any] = {"event": EV_STEP}
        step: int | None = None
        for number, raw in _messages(data):
            if number == _ITEM:
                name, value = _item(raw)
                if batch.number(value) is None:
                    continue
                if name == "_step":
                    step = int(value)
                elif name == "_timestamp":
                    record["time"] = float(value)
                elif not name.startswith("_") and name not in FIELD_NAMES:
                    record[name] = value
            elif number == _STEP and step is None:
                step = next((as_int64(v) for n, w, v in fields(raw) if n == 1 and w == WIRE_VARINT), 0)
        if step is not None:
            record["step"] = step
        if "time" in record:
            self.last_time = record["time"]
        out.append(record)

    def _run(self, data: bytes, out: list[dict[str, Any]]) -> None:
        start: dict[str, Any] = {"event": EV_START}
        run_id = project = name = ""
        for number, wire, raw in fields(data):
            if wire != WIRE_BYTES:
                continue
            assert isinstance(raw, bytes)
            if number == _RUN_ID:
                run_id = as_text(raw)
            elif number == _PROJECT:
                project = as_text(raw)
            elif number == _DISPLAY_NAME:
                name = as_text(raw)
            elif number == _RUN_CONFIG:
                _updates(raw, self.config)
            elif number == _START_TIME:  # google.protobuf.Timestamp: seconds = 1, nanos = 2
                parts = {n: v for n, w, v in fields(raw) if w == WIRE_VARINT}
                seconds, nanos = as_int64(parts.get(1, 0)), as_int64(parts.get(2, 0))
                start["time"] = seconds + nanos / 1e9
        start["run_name"] = name or run_id
        start["run_id"] = run_id
        if project:
            start["project"] = project
        self.start = start
        out.append(self._start_record())

    def _start_record(self) -> dict[str, Any]:
        assert self.start is not None
        config = {k: v for k, v in self.config.items() if not k.startswith("_wandb")}
        return {**self.start, "config": config}

    def _exit(self, data: bytes, out: list[dict[str, Any]]) -> None:
        code = runtime = 0
        for number, wire, raw in fields(data):
            if wire == WIRE_VARINT and number == _EXIT_CODE:
                code = as_int64(raw)
            elif wire == WIRE_VARINT and number == _RUNTIME:
                runtime = as_int64(raw)
        end: dict[str, Any] = {"event": EV_END, "status": END_FINISHED if code == 0 else END_CRASHED}
        began = self.start.get("time") if self.start else None
        times = [t for t in (self.last_time, (began or math.nan) + runtime) if math.isfinite(t)]
        if times:
            end["time"] = max(times)
        if code:
            end["exit_code"] = code
        summary = {k: v for k, v in self.summary.items() if not k.startswith("_")}
        if summary:
            end["summary"] = summary
        out.append(end)
