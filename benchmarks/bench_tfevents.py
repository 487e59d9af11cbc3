"""Reading a TensorBoard event file of 1M scalars (docs/performance.md, docs/formats.md).

    python -m benchmarks.bench_tfevents [--scalars 1000000] [--file PATH]

The file holds what torch's SummaryWriter writes for ``add_scalar``: one Event per scalar (wall_time,
step, one ``simple_value``), four tags a step. Three readings of the same bytes, best of ``--rounds``:

* floor: TFRecord framing, both masked CRC-32C checks and the Event decode of every record, nothing
  else (no records, no columns), with termmon's own framing loop and decoder: the least a reader of
  this file must do;
* termmon: ``RunSource.read`` to the end, i.e. the floor plus restart purges, records and the column
  batch the model takes;
* tensorboard's ``EventAccumulator`` (``Reload()`` keeping every scalar), when tensorboard is
  importable; skipped otherwise (it is not a dependency).
"""

from __future__ import annotations

import argparse
import struct
import tempfile
from pathlib import Path

from benchmarks.reading import best_of, points_read
from termmon.ingest.formats.base import RunLocation
from termmon.ingest.formats.crc32c import IMPLEMENTATION, masked_crc
from termmon.ingest.formats.tfevents_decode import decode_event
from termmon.ingest.formats.tfrecord import RecordFile

TAGS = ("train/loss", "train/grad_norm", "train/learning_rate", "train/epoch")


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte = n & 0x7F
        n >>= 7
        if n:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _field(number: int, payload: bytes) -> bytes:
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


def _frame(data: bytes) -> bytes:
    length = struct.pack("<Q", len(data))
    return length + struct.pack("<I", masked_crc(length)) + data + struct.pack("<I", masked_crc(data))


def scalar_event(wall_time: float, step: int, tag: str, value: float) -> bytes:
    """An Event as SummaryWriter.add_scalar writes it (field order as protobuf serialises it)."""
    summary_value = _field(1, tag.encode()) + b"\x15" + struct.pack("<f", value)
    summary = _field(1, summary_value)
    return b"\x09" + struct.pack("<d", wall_time) + b"\x10" + _varint(step) + _field(5, summary)


def write_event_file(path: Path, scalars: int) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    header = b"\x09" + struct.pack("<d", 1.7e9) + _field(3, b"brain.Event:2")
    with open(path, "wb") as fh:
        fh.write(_frame(header))
        for i in range(scalars):
            step, tag = divmod(i, len(TAGS))
            fh.write(_frame(scalar_event(1.7e9 + step * 0.01, step, TAGS[tag], 1.0 / (1 + step))))
    return path


def floor(path: Path) -> int:
    """Framing and both CRC checks (termmon's own loop, the fastest we have) and the Event decode."""
    frames = RecordFile(path).read(1 << 40)
    assert frames.error is None and not frames.bad_records
    return sum(len(decode_event(data).scalars) for data in frames.records)


def termmon_read(path: Path) -> int:
    return points_read(RunLocation(path.parent, "tfevents"))


def accumulator(path: Path) -> int | None:
    try:
        from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    except ImportError:
        return None
    acc = EventAccumulator(str(path.parent), size_guidance={"scalars": 0})
    acc.Reload()
    return sum(len(acc.Scalars(tag)) for tag in acc.Tags()["scalars"])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--scalars", type=int, default=1_000_000)
    parser.add_argument("--file", type=Path, help="reuse (or create) the event file here")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = args.file or Path(tmp) / "run" / "events.out.tfevents.1700000000.bench.1.0"
        if not path.exists():
            write_event_file(path, args.scalars)
        size = path.stat().st_size
        floor_s, floor_n = best_of(lambda: floor(path), args.rounds)
        ours_s, ours_n = best_of(lambda: termmon_read(path), args.rounds)
        assert floor_n == ours_n == args.scalars, (floor_n, ours_n)
        acc_s, acc_n = best_of(lambda: accumulator(path), 1)
        print(f"event file: {args.scalars:,} scalars, {size / 2**20:.1f} MiB; crc32c: {IMPLEMENTATION}\n")
        print("| reading | time | vs floor |")
        print("|---|---:|---:|")
        print(f"| floor: framing + CRC + Event decode | {floor_s:.2f} s | 1.00x |")
        print(f"| termmon (`RunSource.read` to columns) | {ours_s:.2f} s | {ours_s / floor_s:.2f}x |")
        if acc_n is None:
            print("| tensorboard EventAccumulator | skipped (tensorboard not importable) | |")
        else:
            assert acc_n == args.scalars, acc_n
            print(
                f"| tensorboard EventAccumulator | {acc_s:.2f} s | {acc_s / floor_s:.2f}x "
                f"(termmon {acc_s / ours_s:.1f}x faster) |"
            )


if __name__ == "__main__":
    main()
