"""TensorBoard's ``Event`` protobuf, decoded by hand to what termmon reads: scalars, restarts, hparams.

Field numbers from tensorboard/compat/proto (event.proto, summary.proto, tensor.proto,
plugins/hparams/plugin_data.proto). Scalars come as ``Summary.Value.simple_value`` (torch's
SummaryWriter, TF1) or as a rank-0 tensor under the ``scalars`` plugin (TF2, ``new_style=True``);
both are read. A text summary holding a JSON object (HF's ``args`` and ``model_config``) becomes
config; other summaries (histograms, images, other text) are skipped without decoding their payload.
"""

from __future__ import annotations

import json
import math
import struct
from typing import Any

from termmon.ingest.formats.protowire import (
    WIRE_BYTES,
    WIRE_FIXED32,
    WIRE_FIXED64,
    WireError,
    as_double,
    as_float,
    as_int64,
    as_text,
    fields,
    varint,
)

SESSION_START = 1
_DT_FLOAT, _DT_DOUBLE, _DT_INT32, _DT_INT64, _DT_HALF, _DT_BFLOAT16 = 1, 2, 3, 9, 19, 14
_SCALARS_PLUGIN = "scalars"
_HPARAMS_PLUGIN = "hparams"
_TEXT_PLUGIN = "text"
_TEXT_SUFFIX = "/text_summary"


class Event:
    """What termmon takes from one Event record."""

    __slots__ = ("file_version", "hparams", "scalars", "session_start", "step", "wall_time")

    def __init__(self) -> None:
        self.wall_time = math.nan
        self.step = 0
        self.scalars: list[tuple[str, float]] = []
        self.session_start = False
        self.file_version: str | None = None
        self.hparams: dict[str, Any] | None = None


_unpack_double = struct.Struct("<d").unpack_from
_unpack_float = struct.Struct("<f").unpack_from


def _varint_at(data: bytes, pos: int) -> tuple[int, int]:
    byte = data[pos]
    if byte < 0x80:
        return byte, pos + 1
    return varint(data, pos)


def _skip(data: bytes, pos: int, wire: int) -> int:
    """The position after a field's value, for fields termmon does not read."""
    if wire == 0:
        return varint(data, pos)[1]
    if wire == WIRE_FIXED64:
        return pos + 8
    if wire == WIRE_FIXED32:
        return pos + 4
    if wire == WIRE_BYTES:
        length, pos = _varint_at(data, pos)
        return pos + length
    raise WireError(f"unsupported wire type {wire}")


def decode_event(data: bytes) -> Event:
    """One Event record; raises WireError for bytes that are not one.

    Walks positions in the one buffer (no copies, no generators) for the fields every scalar event
    has; the rare ones (plugin payloads, tensors, hparams) go through :func:`fields`.
    """
    event = Event()
    pos, n = 0, len(data)
    try:
        while pos < n:
            key = data[pos]
            pos += 1
            if key >= 0x80:
                key, pos = varint(data, pos - 1)
            if key == 0x09:  # 1: wall_time, double
                event.wall_time = _unpack_double(data, pos)[0]
                pos += 8
            elif key == 0x10:  # 2: step, int64
                step, pos = _varint_at(data, pos)
                event.step = as_int64(step)
            elif key == 0x2A:  # 5: summary
                length = data[pos]
                pos += 1
                if length >= 0x80:
                    length, pos = varint(data, pos - 1)
                _summary(data, pos, pos + length, event)
                pos += length
            elif key == 0x1A:  # 3: file_version
                length, pos = _varint_at(data, pos)
                event.file_version = as_text(data[pos : pos + length])
                pos += length
            elif key == 0x3A:  # 7: session_log
                length, pos = _varint_at(data, pos)
                for number, _, value in fields(data[pos : pos + length]):
                    if number == 1 and value == SESSION_START:
                        event.session_start = True
                pos += length
            else:
                pos = _skip(data, pos, key & 7)
    except (IndexError, struct.error) as exc:
        raise WireError("truncated event") from exc
    if pos != n:
        raise WireError("truncated event")
    return event


def _summary(data: bytes, pos: int, end: int, event: Event) -> None:
    while pos < end:
        key = data[pos]
        pos += 1
        if key >= 0x80:
            key, pos = varint(data, pos - 1)
        if key == 0x0A:  # 1: repeated Value
            length = data[pos]
            pos += 1
            if length >= 0x80:
                length, pos = varint(data, pos - 1)
            _value(data, pos, pos + length, event)
            pos += length
        else:
            pos = _skip(data, pos, key & 7)


def _value(data: bytes, pos: int, end: int, event: Event) -> None:
    tag = ""
    simple: float | None = None
    tensor: bytes | None = None
    plugin = ""
    content = b""
    while pos < end:
        key = data[pos]
        pos += 1
        if key >= 0x80:
            key, pos = varint(data, pos - 1)
        if key == 0x0A:  # 1: tag
            length, pos = _varint_at(data, pos)
            tag = data[pos : pos + length].decode("utf-8", "replace")
            pos += length
        elif key == 0x15:  # 2: simple_value, float
            simple = _unpack_float(data, pos)[0]
            pos += 4
        elif key == 0x42:  # 8: tensor
            length, pos = _varint_at(data, pos)
            tensor = data[pos : pos + length]
            pos += length
        elif key == 0x4A:  # 9: metadata
            length, pos = _varint_at(data, pos)
            plugin, content = _plugin(data[pos : pos + length])
            pos += length
        else:
            pos = _skip(data, pos, key & 7)
    if simple is not None:
        event.scalars.append((tag, simple))
    elif plugin == _SCALARS_PLUGIN and tensor is not None:
        number_ = _scalar_tensor(tensor)
        if number_ is not None:
            event.scalars.append((tag, number_))
    elif plugin == _HPARAMS_PLUGIN and content:
        hparams = _session_hparams(content)
        if hparams:
            event.hparams = {**(event.hparams or {}), **hparams}
    elif plugin == _TEXT_PLUGIN and tensor is not None:
        config = _json_text(tensor)
        if config is not None:
            # HF's TensorBoardCallback writes its TrainingArguments and model config as JSON text.
            name = tag.removesuffix(_TEXT_SUFFIX)
            event.hparams = {**(event.hparams or {}), name: config}


def _json_text(tensor: bytes) -> dict[str, Any] | None:
    """A text summary (TensorProto.string_val) holding a JSON object, or None for any other text."""
    for number, wire, value in fields(tensor):
        if number == 8 and wire == WIRE_BYTES:
            try:
                parsed = json.loads(value)  # type: ignore[arg-type]
            except (ValueError, RecursionError):
                return None
            return parsed if isinstance(parsed, dict) else None
    return None


def _plugin(metadata: bytes) -> tuple[str, bytes]:
    """SummaryMetadata.plugin_data: (plugin_name, content)."""
    for number, wire, value in fields(metadata):
        if number == 1 and wire == WIRE_BYTES:
            name, content = "", b""
            for n, w, v in fields(value):  # type: ignore[arg-type]
                if n == 1 and w == WIRE_BYTES:
                    name = as_text(v)
                elif n == 2 and w == WIRE_BYTES:
                    content = v  # type: ignore[assignment]
            return name, content
    return "", b""


_UNPACK = {
    _DT_FLOAT: struct.Struct("<f"),
    _DT_DOUBLE: struct.Struct("<d"),
    _DT_INT32: struct.Struct("<i"),
    _DT_INT64: struct.Struct("<q"),
    _DT_HALF: struct.Struct("<e"),
}


def _scalar_tensor(data: bytes) -> float | None:
    """The value of a rank-0 numeric TensorProto (tensor_content, or the typed repeated fields)."""
    dtype = 0
    content = b""
    typed: float | None = None
    for number, wire, value in fields(data):
        if number == 1 and isinstance(value, int):
            dtype = value
        elif number == 4 and wire == WIRE_BYTES:
            content = value  # type: ignore[assignment]
        elif number == 5:  # float_val: packed (bytes) or not (fixed32)
            typed = as_float(value[:4] if wire == WIRE_BYTES else value)  # type: ignore[index]
        elif number == 6:
            typed = as_double(value[:8] if wire == WIRE_BYTES else value)  # type: ignore[index]
        elif number in (7, 10):  # int_val, int64_val
            typed = float(as_int64(varint(value, 0)[0] if isinstance(value, bytes) else value))
        elif number == 13:  # half_val, as int32 bit patterns
            bits = varint(value, 0)[0] if isinstance(value, bytes) else value
            typed = float(struct.unpack("<e", struct.pack("<H", int(bits) & 0xFFFF))[0])  # type: ignore[call-overload]
    if typed is not None:
        return typed
    if dtype == _DT_BFLOAT16 and len(content) == 2:
        return float(struct.unpack("<f", b"\0\0" + content)[0])
    unpack = _UNPACK.get(dtype)
    if unpack is not None and len(content) == unpack.size:
        return float(unpack.unpack(content)[0])
    return None


def _session_hparams(content: bytes) -> dict[str, Any]:
    """HParamsPluginData.session_start_info.hparams (a map of google.protobuf.Value)."""
    out: dict[str, Any] = {}
    try:
        for number, wire, value in fields(content):
            if number != 3 or wire != WIRE_BYTES:  # session_start_info
                continue
            for n, w, entry in fields(value):  # type: ignore[arg-type]
                if n != 1 or w != WIRE_BYTES:
                    continue
                key, item = "", None
                for en, ew, ev in fields(entry):  # type: ignore[arg-type]
                    if en == 1 and ew == WIRE_BYTES:
                        key = as_text(ev)
                    elif en == 2 and ew == WIRE_BYTES:
                        item = _proto_value(ev)  # type: ignore[arg-type]
                if key:
                    out[key] = item
    except WireError:
        return out
    return out


def _proto_value(data: bytes) -> Any:
    """google.protobuf.Value: number, string or bool (structs and lists as their text)."""
    for number, wire, value in fields(data):
        if number == 2 and wire == WIRE_FIXED64:
            return as_double(value)
        if number == 3 and wire == WIRE_BYTES:
            return as_text(value)
        if number == 4 and not isinstance(value, bytes):
            return bool(value)
    return None
