"""CRC-32C (Castagnoli), as TensorFlow's record framing uses it, with the C extension when present.

The ``crc32c`` wheel (a dependency, ~80 KB) checks a million records' CRCs in a few hundredths of a
second; the pure-Python table below is the fallback for a platform without a wheel, ~30x slower
(docs/formats.md has both figures).
"""

from __future__ import annotations

from collections.abc import Callable

_POLY = 0x82F63B78
MASK_DELTA = 0xA282EAD8


def _table() -> list[int]:
    table = []
    for n in range(256):
        c = n
        for _ in range(8):
            c = (c >> 1) ^ _POLY if c & 1 else c >> 1
        table.append(c)
    return table


_TABLE = _table()


def crc32c_python(data: bytes) -> int:
    crc = 0xFFFFFFFF
    table = _TABLE
    for byte in data:
        crc = table[(crc ^ byte) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


def _fast() -> Callable[[bytes], int] | None:
    try:
        from crc32c import crc32c as fast
    except ImportError:
        return None
    return fast


crc32c: Callable[[bytes], int] = _fast() or crc32c_python
#: Which implementation is in use ("c" or "python"), for the benchmark and docs.
IMPLEMENTATION = "python" if crc32c is crc32c_python else "c"


def masked_crc(data: bytes) -> int:
    """TFRecord's masked CRC: rotate right by 15 and add a constant (a CRC of CRCs stays strong)."""
    crc = crc32c(data)
    return (((crc >> 15) | (crc << 17)) + MASK_DELTA) & 0xFFFFFFFF
