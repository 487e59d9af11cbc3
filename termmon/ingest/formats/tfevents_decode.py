"""TensorBoard's ``Event`` protobuf, decoded by hand to what termmon reads: scalars, restarts, hparams.

Field numbers from tensorboard/compat/proto (event.proto, summary.proto, tensor.proto,
plugins/hparams/plugin_data.proto). Scalars come as ``Summary.Value.simple_value`` (torch's
SummaryWriter, TF1) or as a rank-0 tensor under the ``scalars`` plugin (TF2, ``new_style=True``);
both are read. Other summaries (histograms, images, text) are skipped without decoding their payload.
"""

from __future__ import annotations

import math
import struct
from dataclasses import dataclass, field
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


@dataclass
class Event:
    wall_time: float = math.nan
    step: int = 0
    scalars: list[tuple[str, float]] = field(default_factory=list)
    session_start: bool = False
    file_version: str | None = None
    hparams: dict[str, Any] | None = None


def decode_event(data: bytes) -> Event:
    """One Event record; raises WireError for bytes that are not one."""
    event = Event()
    for number, wire, value in fields(data):
        if number == 1 and wire == WIRE_FIXED64:
            event.wall_time = as_double(value)
        elif number == 2 and not isinstance(value, bytes):
            event.step = as_int64(value)
        elif number == 3 and wire == WIRE_BYTES:
            event.file_version = as_text(value)
        elif number == 5 and wire == WIRE_BYTES:
            _summary(value, event)  # type: ignore[arg-type]
        elif number == 7 and wire == WIRE_BYTES:
            for n, _, v in fields(value):  # type: ignore[arg-type]
                if n == 1 and v == SESSION_START:
                    event.session_start = True
    return event


def _summary(data: bytes, event: Event) -> None:
    for number, wire, value in fields(data):
        if number == 1 and wire == WIRE_BYTES:
            _value(value, event)  # type: ignore[arg-type]


def _value(data: bytes, event: Event) -> None:
    tag = ""
    simple: float | None = None
    tensor: bytes | None = None
    plugin = ""
    content = b""
    for number, wire, value in fields(data):
        if number == 1 and wire == WIRE_BYTES:
            tag = as_text(value)
        elif number == 2 and wire == WIRE_FIXED32:
            simple = as_float(value)
        elif number == 8 and wire == WIRE_BYTES:
            tensor = value  # type: ignore[assignment]
        elif number == 9 and wire == WIRE_BYTES:
            plugin, content = _plugin(value)  # type: ignore[arg-type]
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
