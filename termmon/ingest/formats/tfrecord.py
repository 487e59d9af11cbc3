"""TFRecord framing, read incrementally: the container TensorBoard event files use.

Each record is ``u64 length | u32 masked crc32c(length) | data | u32 masked crc32c(data)``, little
endian. The length's own CRC is what makes tailing safe: a record is taken only when its 12-byte
header checks out and all ``length + 4`` bytes after it are on disk; anything shorter is a writer
mid-record and is held back, exactly as a torn JSON line is. A header that does not check out is
damage (or not an event file at all): reading that file stops there with one error naming the byte.
A data CRC that fails skips that one record (its length is trusted), counts it as bad and says so.
"""

from __future__ import annotations

import os
import struct
from dataclasses import dataclass, field

from termmon.ingest.formats.append_only import AppendOnlyFile
from termmon.ingest.formats.crc32c import MASK_DELTA, crc32c

HEADER = 12
FOOTER = 4
_U64 = struct.Struct("<Q")
_U32 = struct.Struct("<I")
#: Records up to this size are read even when larger than a read chunk (a graph, an image); past it the
#: file is reported rather than read into memory.
MAX_RECORD = 256 << 20


@dataclass
class FrameRead:
    """Complete records' data read this time, in order, with where each started."""

    records: list[bytes] = field(default_factory=list)
    offsets: list[int] = field(default_factory=list)
    bytes_read: int = 0
    bad_records: int = 0
    more: bool = False
    reset: bool = False
    mtime: float = float("nan")
    error: str | None = None


class RecordFile(AppendOnlyFile):
    """New complete records of one append-only TFRecord file; the file stays open between reads."""

    @property
    def pending_bytes(self) -> int:
        """Bytes past the last complete record (a record being written, or a torn end)."""
        return 0 if self._dead else max(0, self.size - self.offset)

    def read(self, max_bytes: int) -> FrameRead:
        result = FrameRead()
        if not self._refresh(result):
            return result
        assert self._fd is not None
        try:
            remaining = self.size - self.offset
            if remaining <= 0:
                return result
            want = min(max_bytes, remaining)
            chunk = os.pread(self._fd, want, self.offset)
            self._frames(chunk, result)
            if not result.bytes_read and self._dead is None and want < remaining and len(chunk) >= HEADER:
                # One record larger than max_bytes: read exactly that record.
                need = HEADER + _U64.unpack_from(chunk)[0] + FOOTER
                if need > MAX_RECORD:
                    self._dead = result.error = f"{self.path}: record at byte {self.offset} is {need} bytes"
                else:
                    self._frames(os.pread(self._fd, need, self.offset), result)
        except OSError as exc:
            self._fail(result, exc)
            return result
        result.more = bool(result.bytes_read) and want < remaining
        return result

    def _frames(self, chunk: bytes, result: FrameRead) -> None:
        pos = 0
        n = len(chunk)
        records, offsets = result.records, result.offsets
        unpack_u64, unpack_u32 = _U64.unpack_from, _U32.unpack_from
        crc, delta = crc32c, MASK_DELTA
        while n - pos >= HEADER:
            (length,) = unpack_u64(chunk, pos)
            c = crc(chunk[pos : pos + 8])
            if unpack_u32(chunk, pos + 8)[0] != (((c >> 15) | (c << 17)) + delta) & 0xFFFFFFFF:
                self._dead = (
                    f"{self.path}: not a readable event file: damaged record header at byte "
                    f"{self.offset + pos}"
                )
                result.error = self._dead
                break
            end = pos + HEADER + length
            if end + FOOTER > n:
                break  # the rest of this record is not here yet (or not in this chunk)
            data = chunk[pos + HEADER : end]
            c = crc(data)  # masked_crc, inlined: this loop runs once per record
            if unpack_u32(chunk, end)[0] == (((c >> 15) | (c << 17)) + delta) & 0xFFFFFFFF:
                records.append(data)
                offsets.append(self.offset + pos)
            else:
                result.bad_records += 1
                result.error = (
                    f"{self.path}: damaged record at byte {self.offset + pos} (checksum mismatch), skipped"
                )
            pos = end + FOOTER
        self.offset += pos
        result.bytes_read += pos
