"""A local copy of one remote file that a local tailer cannot tell from the original.

The rules are the local tailer's (termmon/ingest/jsonl.py) seen from the other side: new bytes of the
same file (same device and inode, at least as long, same head) are appended; the same file shorter or
with a different head is truncated in place and rewritten; a different file at the path replaces the
copy by a rename, so the local reader sees a new inode. When the old remote file still exists under
another name (a rotation), the copy is first drained to the old file's end and then renamed aside, so
the local reader drains it and goes on without a reset, exactly as it would on the remote disk.
A replacement is staged under a hidden name until it is complete, so whole-file readers never see half.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass, field
from pathlib import Path

from termmon.ingest.jsonl import FINGERPRINT_BYTES


def _crc_table() -> list[int]:
    table = []
    for i in range(256):
        crc = i << 24
        for _ in range(8):
            crc = ((crc << 1) ^ 0x04C11DB7) if crc & 0x80000000 else crc << 1
        table.append(crc & 0xFFFFFFFF)
    return table


_TABLE = _crc_table()


def cksum(data: bytes) -> str:
    """What POSIX ``cksum`` prints for ``data`` on stdin ("CRC LENGTH"): the remote computes the same
    over the file's head, so a rewrite is caught without sending the head over the wire."""
    crc = 0
    for byte in data:
        crc = ((crc << 8) & 0xFFFFFFFF) ^ _TABLE[(crc >> 24) ^ byte]
    n = len(data)
    while n:
        crc = ((crc << 8) & 0xFFFFFFFF) ^ _TABLE[(crc >> 24) ^ (n & 0xFF)]
        n >>= 8
    return f"{~crc & 0xFFFFFFFF} {len(data)}"


@dataclass
class MirrorFile:
    """The state of one remote file's copy: which remote file it is and how much of it is here."""

    remote_dir: str
    remote: str
    local: Path
    dev: str = "0"
    ino: str = "0"
    offset: int = 0
    mtime_seen: str = "-"  # the remote mtime at the last look, as stat printed it
    head: bytearray = field(default_factory=bytearray)
    stage_size: int | None = None  # staging a replacement until this many bytes are here
    rotated: bool = False  # the replaced remote file still exists: keep the old copy linked
    clock_offset: float = 0.0
    _head_sum: tuple[int, str] = (0, cksum(b""))

    @property
    def stage(self) -> Path:
        return self.local.with_name(f".{self.local.name}.termmon-part")

    @property
    def target(self) -> Path:
        return self.stage if self.stage_size is not None else self.local

    def fingerprint(self) -> tuple[int, str]:
        """(length, cksum) of the head the remote must still start with."""
        if self._head_sum[0] != len(self.head):
            self._head_sum = (len(self.head), cksum(bytes(self.head)))
        return self._head_sum

    # --- applying one reply -------------------------------------------------------------------------------
    def append(self, data: bytes, mtime: float | None = None, size: int | None = None) -> None:
        """New bytes of the file we hold (tag A, with the remote ``size`` now), or the rest of a rotated
        one (tag D). A staged replacement is complete once it holds the remote file's current size."""
        if data:
            self._write(self.target, data, append=True)
        if self.stage_size is not None and size is not None:
            self.stage_size = size
        self._grow(data)
        self._maybe_finish(mtime)

    def rewrite(self, data: bytes, size: int, mtime: float) -> None:
        """The same remote file, truncated or rewritten in place (tag R)."""
        self.offset = 0
        self.head.clear()
        self._write(self.target, data, append=False)
        if self.stage_size is not None:
            self.stage_size = size
        self._grow(data)
        self._maybe_finish(mtime)

    def replace(self, dev: str, ino: str, data: bytes, size: int, mtime: float, rotated: bool) -> None:
        """A different file at the path (tag N): stage it, swap it in when complete."""
        self.dev, self.ino = dev, ino
        self.offset = 0
        self.head.clear()
        self.stage_size = size
        self.rotated = rotated and self.local.exists()
        self._write(self.stage, data, append=False)
        self._grow(data)
        self._maybe_finish(mtime)

    def _grow(self, data: bytes) -> None:
        if len(self.head) < FINGERPRINT_BYTES:
            self.head += data[: FINGERPRINT_BYTES - len(self.head)]
        self.offset += len(data)

    def _maybe_finish(self, mtime: float | None) -> None:
        if self.stage_size is not None and self.offset >= self.stage_size:
            if self.rotated:
                os.replace(self.local, self.local.with_name(f".{self.local.name}.termmon-rotated"))
            os.replace(self.stage, self.local)
            self.stage_size = None
            self.rotated = False
        if mtime is not None and self.stage_size is None:
            # The remote's mtime on the local clock, so "last record 3s ago" is right across hosts.
            with contextlib.suppress(OSError):
                os.utime(self.local, (mtime + self.clock_offset, mtime + self.clock_offset))

    @staticmethod
    def _write(path: Path, data: bytes, *, append: bool) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        flags = os.O_WRONLY | os.O_CREAT | (os.O_APPEND if append else os.O_TRUNC)
        fd = os.open(path, flags, 0o600)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
        finally:
            os.close(fd)
