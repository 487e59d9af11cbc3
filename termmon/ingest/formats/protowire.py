"""Just enough of the protobuf wire format to read the few messages termmon needs.

Reading ~10 fields of TensorBoard's ``Event`` by hand is faster than the ``protobuf`` package's
pure-Python decoder and needs no generated code or dependency (docs/formats.md has the figures).
Unknown fields are skipped, as protobuf does, so newer writers with extra fields still read.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator

WIRE_VARINT, WIRE_FIXED64, WIRE_BYTES, WIRE_FIXED32 = 0, 1, 2, 5

_DOUBLE = struct.Struct("<d")
_FLOAT = struct.Struct("<f")


class WireError(ValueError):
    """The bytes are not a valid protobuf message."""


def varint(data: bytes, pos: int) -> tuple[int, int]:
    """The varint at ``pos`` and the position after it."""
    result = 0
    shift = 0
    n = len(data)
    while True:
        if pos >= n:
            raise WireError("truncated varint")
        byte = data[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7
        if shift > 63:
            raise WireError("varint too long")


def fields(data: bytes) -> Iterator[tuple[int, int, object]]:
    """``(field_number, wire_type, value)`` for each field: ints for varints, raw bytes for the rest
    (fixed64/fixed32 as their 8/4 bytes, length-delimited as the payload)."""
    pos = 0
    n = len(data)
    while pos < n:
        key, pos = varint(data, pos)
        number, wire = key >> 3, key & 7
        if wire == WIRE_VARINT:
            value, pos = varint(data, pos)
            yield number, wire, value
        elif wire == WIRE_BYTES:
            length, pos = varint(data, pos)
            end = pos + length
            if end > n:
                raise WireError("truncated field")
            yield number, wire, data[pos:end]
            pos = end
        elif wire == WIRE_FIXED64:
            if pos + 8 > n:
                raise WireError("truncated fixed64")
            yield number, wire, data[pos : pos + 8]
            pos += 8
        elif wire == WIRE_FIXED32:
            if pos + 4 > n:
                raise WireError("truncated fixed32")
            yield number, wire, data[pos : pos + 4]
            pos += 4
        else:
            raise WireError(f"unsupported wire type {wire}")


def as_double(raw: object) -> float:
    return float(_DOUBLE.unpack(raw)[0]) if isinstance(raw, bytes) and len(raw) == 8 else float("nan")


def as_float(raw: object) -> float:
    return float(_FLOAT.unpack(raw)[0]) if isinstance(raw, bytes) and len(raw) == 4 else float("nan")


def as_int64(value: object) -> int:
    """A varint field as a signed 64-bit int (negative numbers are sent as 2**64 - n)."""
    if not isinstance(value, int):
        return 0
    return value - (1 << 64) if value >= 1 << 63 else value


def as_text(raw: object) -> str:
    return raw.decode("utf-8", "replace") if isinstance(raw, bytes) else ""
