"""Reading a large W&B offline log (docs/formats.md).

    python -m benchmarks.bench_wandb [--steps 100000] [--rounds 3]

The file is made from a real one: the Record payloads wandb 0.31 wrote for the ``long`` fixture
(tests/data/wandb), its ``history`` and ``summary`` records repeated until the log holds ``--steps``
history rows, re-framed into 32 KiB blocks as wandb frames them. Readings of the same bytes, best of
``--rounds``:

* floor: the block framing and the CRC-32 of every chunk (termmon's framing loop), no decoding;
* termmon: ``RunSource.read`` to the end: the floor plus the Record decode, records and columns;
* protobuf: the floor plus ``Record.ParseFromString`` of every payload with wandb's generated classes
  and the same fields taken out (``json.loads`` of each value), when wandb is importable: what a
  protobuf dependency would buy.
"""

from __future__ import annotations

import argparse
import json
import struct
import tempfile
import zlib
from pathlib import Path

from benchmarks.reading import best_of, points_read
from termmon.ingest.formats import leveldb_log
from termmon.ingest.formats.base import RunLocation
from termmon.ingest.formats.protowire import fields

FIXTURES = Path(__file__).resolve().parent.parent / "tests" / "data" / "wandb" / "wandb"


def _fixture_records() -> list[bytes]:
    """The Record payloads of the longest committed W&B fixture, in file order."""
    log = max(FIXTURES.glob("*/run-*.wandb"), key=lambda p: p.stat().st_size)
    got = leveldb_log.LogFile(log).read(1 << 30)
    assert got.error is None
    return got.records


def write_log(path: Path, steps: int) -> Path:
    """A .wandb file: the fixture's records, its history/summary ones repeated to ``steps`` rows."""
    records = _fixture_records()
    kinds = [{number for number, _, _ in fields(r)} for r in records]
    # Field 2 is history, 3 summary (wandb_internal.proto): the per-step records.
    body = [r for r, k in zip(records, kinds, strict=True) if k & {2, 3}]
    head = [r for r, k in zip(records, kinds, strict=True) if not k & {2, 3}]
    rows_per_body = sum(1 for k in kinds if 2 in k)
    out = bytearray(struct.pack("<4sHB", leveldb_log.IDENT, leveldb_log.MAGIC, leveldb_log.VERSION))
    for payload in [*head[:-1], *body * (steps // rows_per_body), head[-1]]:
        _frame(out, payload)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(bytes(out))
    return path


def _frame(out: bytearray, payload: bytes) -> None:
    first = True
    while True:
        left = leveldb_log.BLOCK - len(out) % leveldb_log.BLOCK
        if left < leveldb_log.CHUNK_HEADER:
            out += b"\0" * left
            continue
        take = min(len(payload), left - leveldb_log.CHUNK_HEADER)
        piece, payload = payload[:take], payload[take:]
        last = not payload
        kind = (
            (leveldb_log.FULL if last else leveldb_log.FIRST)
            if first
            else (leveldb_log.LAST if last else leveldb_log.MIDDLE)
        )
        out += struct.pack("<IHB", zlib.crc32(piece, zlib.crc32(bytes([kind]))), len(piece), kind) + piece
        first = False
        if last:
            return


def floor(path: Path) -> int:
    got = leveldb_log.LogFile(path).read(1 << 40)
    assert got.error is None and not got.bad_records
    return len(got.records)


def termmon_read(path: Path) -> int:
    return points_read(RunLocation(path.parent, "wandb"))


def protobuf_read(path: Path) -> int | None:
    try:
        from wandb.proto import wandb_internal_pb2
    except ImportError:
        return None
    points = 0
    for payload in leveldb_log.LogFile(path).read(1 << 40).records:
        record = wandb_internal_pb2.Record()
        record.ParseFromString(payload)
        if record.WhichOneof("record_type") == "history":
            row = {".".join(i.nested_key) or i.key: json.loads(i.value_json) for i in record.history.item}
            points += sum(1 for k in row if not k.startswith("_"))
    return points


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = write_log(Path(tmp) / "offline-run-bench" / "run-bench.wandb", args.steps)
        size = path.stat().st_size
        t_floor, records = best_of(lambda: floor(path), args.rounds)
        t_termmon, points = best_of(lambda: termmon_read(path), args.rounds)
        t_pb, pb_points = best_of(lambda: protobuf_read(path), args.rounds)
    print(f"| .wandb log: {args.steps} history rows, {records} records, {size / 2**20:.1f} MiB | seconds |")
    print("|---|---|")
    print(f"| floor (framing + CRC-32 of every chunk) | {t_floor:.2f} |")
    print(
        f"| termmon `RunSource.read` to columns ({points} points) | {t_termmon:.2f} ({t_termmon / t_floor:.1f}x the floor) |"
    )
    if pb_points is None:
        print("| protobuf + wandb's generated classes | skipped (wandb not importable) |")
    else:
        print(f"| framing + protobuf `ParseFromString` + values ({pb_points} points) | {t_pb:.2f} |")


if __name__ == "__main__":
    main()
