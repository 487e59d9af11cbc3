"""W&B's ``.wandb`` framing, read incrementally: a LevelDB-style log behind a 7-byte file header.

The file starts with ``":W&B"``, the magic ``0xBEE1`` (u16) and a version byte (0). From there on it
is a LevelDB log: 32 KiB blocks counted from the start of the file, each holding chunks with a 7-byte
header ``u32 crc | u16 length | u8 type`` (full, first, middle, last); a block's last < 7 bytes are
zero padding, and a record longer than what is left of a block continues as middle/last chunks in
the next ones. The checksum is zlib's CRC-32 (IEEE, unmasked) of the type byte and the payload, as
wandb's own writer and its old Python reader compute it (checked on files wandb 0.31 wrote).

Tailing is by record: a record is handed on only once its last chunk is on disk and checks out; the
bytes of a record still being written are held back and re-read on the next call. A chunk that does
not check out is damage: it is counted, named in one error line, and reading resumes at the next
block, as LevelDB's reader does. Bytes that are not a W&B log, or a newer log version, stop the file
with one error naming it.
"""

from __future__ import annotations

import os
import struct
import zlib
from dataclasses import dataclass, field
from pathlib import Path

from termmon.ingest.formats.append_only import AppendOnlyFile

BLOCK = 32 * 1024
CHUNK_HEADER = 7
FILE_HEADER = 7
IDENT = b":W&B"
MAGIC = 0xBEE1
VERSION = 0
FULL, FIRST, MIDDLE, LAST = 1, 2, 3, 4
#: A record up to this size is read even when larger than a read chunk; past it the file is reported.
MAX_RECORD = 256 << 20

_FILE_HEADER = struct.Struct("<4sHB")
_CHUNK = struct.Struct("<IHB")
#: The CRC of each type byte, the seed each chunk's checksum continues from.
_TYPE_CRC = [zlib.crc32(bytes([t])) for t in range(256)]


@dataclass
class LogRead:
    """Complete records read this time, in order."""

    records: list[bytes] = field(default_factory=list)
    bytes_read: int = 0
    bad_records: int = 0
    more: bool = False
    reset: bool = False
    mtime: float = float("nan")
    error: str | None = None


class LogFile(AppendOnlyFile):
    """New complete records of one append-only ``.wandb`` file; the file stays open between reads.

    :attr:`offset` is past the file header once it has been checked.
    """

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        #: After damage, where reading resumes (the next block), once the file reaches it.
        self._resume_at = 0
        #: After damage, the next block's leading middle/last chunks belong to the lost record.
        self._resyncing = False

    @property
    def pending_bytes(self) -> int:
        """Bytes past the last complete record (a record being written, or a torn end)."""
        return 0 if self._dead else max(0, self.size - max(self.offset, FILE_HEADER))

    def _reset(self) -> None:
        super()._reset()
        self._resume_at = 0
        self._resyncing = False

    def read(self, max_bytes: int) -> LogRead:
        result = LogRead()
        if not self._refresh(result):
            return result
        assert self._fd is not None
        try:
            if self.offset == 0 and not self._check_header(result):
                return result
            if self._resume_at > self.offset:
                if self.size < self._resume_at:
                    return result
                result.bytes_read += self._resume_at - self.offset
                self.offset = self._resume_at
            remaining = self.size - self.offset
            want = min(max(max_bytes, BLOCK), remaining)
            while want > 0:
                start = self.offset
                self._chunks(os.pread(self._fd, want, start), want == remaining, result)
                if self.offset != start or self._resume_at > start or want == remaining:
                    break
                if want >= MAX_RECORD:  # one record bigger than anything a tracker writes
                    self._dead = result.error = (
                        f"{self.path}: record at byte {self.offset} is over {MAX_RECORD} bytes"
                    )
                    break
                want = min(want * 4, remaining)
        except OSError as exc:
            self._fail(result, exc)
            return result
        result.more = bool(result.bytes_read) and self.offset < self.size and want < remaining
        return result

    def _check_header(self, result: LogRead) -> bool:
        """Check the file header (once); False when there is nothing more to read now."""
        assert self._fd is not None
        if self.size < FILE_HEADER:
            head = os.pread(self._fd, self.size, 0)
            if not IDENT.startswith(head[: len(IDENT)]):
                self._dead = result.error = f"{self.path}: not a W&B run log (bad file header)"
            return False
        ident, magic, version = _FILE_HEADER.unpack(os.pread(self._fd, FILE_HEADER, 0))
        if ident != IDENT or magic != MAGIC:
            self._dead = result.error = f"{self.path}: not a W&B run log (bad file header)"
            return False
        if version != VERSION:
            self._dead = result.error = (
                f"{self.path}: written by a newer wandb (log format version {version}; termmon reads {VERSION})"
            )
            return False
        self.offset = FILE_HEADER
        result.bytes_read += FILE_HEADER
        return True

    def _chunks(self, data: bytes, at_eof: bool, result: LogRead) -> None:
        """Take the complete records in ``data`` (the file from :attr:`offset`); advance past them."""
        base = self.offset
        n = len(data)
        pos = 0
        committed = 0  # end of the last complete record (or skipped damage), relative to base
        parts: list[bytes] | None = None  # chunks of the record being assembled
        unpack = _CHUNK.unpack_from
        while True:
            left = BLOCK - (base + pos) % BLOCK
            if left < CHUNK_HEADER:  # block trailer: zero padding
                if pos + left > n:
                    break
                pos += left
                if parts is None:
                    committed = pos
                continue
            if n - pos < CHUNK_HEADER:
                break
            crc, length, kind = unpack(data, pos)
            end = pos + CHUNK_HEADER + length
            damage = None
            if kind == 0 and length == 0 and crc == 0:
                # Zeros: a file preallocated or zero-filled by a crash. Zeros up to the end of the file
                # are held back (a writer may yet fill them); zeros with data after them are damage.
                if at_eof and not data[pos:].strip(b"\x00"):
                    break
                damage = "zero-filled block"
            elif length > left - CHUNK_HEADER or kind > LAST:
                damage = "bad chunk header"
            elif end > n:
                break  # the rest of this chunk is not on disk yet (or not in this read)
            elif zlib.crc32(data[pos + CHUNK_HEADER : end], _TYPE_CRC[kind]) != crc:
                damage = "checksum mismatch"
            elif kind in (FULL, FIRST):
                self._resyncing = False
                if parts is not None:
                    damage = "record cut short"
                else:
                    parts = [data[pos + CHUNK_HEADER : end]]
            elif parts is None and self._resyncing:
                pos = committed = end  # the rest of a record lost to damage already reported
                continue
            elif parts is None:
                damage = "continuation without a start"
            else:
                parts.append(data[pos + CHUNK_HEADER : end])
            if damage is not None:
                # As LevelDB's reader does: drop what was being assembled and the rest of this block.
                result.bad_records += 1
                result.error = f"{self.path}: damaged record at byte {base + pos} ({damage}), skipped"
                parts = None
                self._resyncing = True
                skip = pos + left
                if skip > n:
                    self._resume_at = base + skip
                    break
                pos = committed = skip
                continue
            pos = end
            if kind in (FULL, LAST):
                assert parts is not None
                result.records.append(parts[0] if len(parts) == 1 else b"".join(parts))
                parts = None
                committed = pos
        self.offset = base + committed
        result.bytes_read += committed
