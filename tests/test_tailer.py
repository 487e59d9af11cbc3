"""The JSONL tailer and parser against real files: torn writes, truncation, rotation, garbage."""

from __future__ import annotations

import json
import math
import os
import random
import threading
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from termmon.ingest.batch import normalize_record
from termmon.ingest.jsonl import JsonlTailer
from termmon.ingest.parse import LineParser


def drain(tailer: JsonlTailer) -> tuple[list[Any], int, bool]:
    """Read everything available now: (parsed values, bad lines, whether a reset was seen)."""
    values: list[Any] = []
    bad = 0
    reset = False
    while True:
        tail = tailer.read(max_bytes=1 << 16)
        reset = reset or tail.reset
        if reset and tail.reset:
            values.clear()
        bad += tail.oversized_lines
        if tail.lines:
            got, b = LineParser().parse(tail.lines)
            values.extend(got)
            bad += b
        if not tail.more and not tail.lines:
            return values, bad, reset


def canonical(value: Any) -> str:
    """Compare records NaN-safely: NaN != NaN, but their JSON text is equal."""
    return json.dumps(value, sort_keys=True)


finite_or_not = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.integers(min_value=-(2**63) + 1, max_value=2**63 - 1),
)
records_strategy = st.lists(
    st.fixed_dictionaries(
        {"event": st.just("step"), "step": st.integers(0, 10**9)},
        optional={
            "train_loss": finite_or_not,
            "note": st.text(max_size=12),  # multi-byte UTF-8 lands on chunk borders
            "nested": st.dictionaries(st.text(min_size=1, max_size=4), finite_or_not, max_size=3),
        },
    ),
    min_size=1,
    max_size=30,
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(records=records_strategy, cuts=st.lists(st.integers(0, 10_000), max_size=40), crlf=st.booleans())
def test_any_chunking_yields_every_record_once_in_order(
    tmp_path: Path, records: list[dict[str, Any]], cuts: list[int], crlf: bool
) -> None:
    path = tmp_path / f"m{random.random()}.jsonl"
    newline = "\r\n" if crlf else "\n"
    stream = "".join(json.dumps(r, ensure_ascii=False) + newline for r in records).encode()
    points = sorted({c % (len(stream) + 1) for c in cuts} | {len(stream)})
    tailer = JsonlTailer(path)
    got: list[Any] = []
    previous = 0
    with open(path, "wb") as fh:
        for point in points:
            fh.write(stream[previous:point])
            fh.flush()
            previous = point
            values, bad, reset = drain(tailer)
            assert bad == 0 and not reset
            got.extend(values)
    tailer.close()
    assert [canonical(v) for v in got] == [canonical(r) for r in records]


def test_writer_thread_tearing_lines_while_reading(tmp_path: Path) -> None:
    path = tmp_path / "metrics.jsonl"
    expected = [
        {"event": "step", "step": i, "train_loss": 1.0 / (i + 1), "s": "é" * (i % 5)} for i in range(3000)
    ]
    stream = b"".join(json.dumps(r).encode() + b"\n" for r in expected)
    path.touch()
    done = threading.Event()

    def writer() -> None:
        rng = random.Random(7)
        with open(path, "ab", buffering=0) as fh:
            pos = 0
            while pos < len(stream):
                n = rng.randint(1, 300)
                fh.write(stream[pos : pos + n])
                pos += n
        done.set()

    thread = threading.Thread(target=writer)
    tailer = JsonlTailer(path)
    got: list[Any] = []
    thread.start()
    while not done.is_set() or len(got) < len(expected):
        values, bad, reset = drain(tailer)
        assert bad == 0 and not reset
        got.extend(values)
        if done.is_set() and not values:
            break
    thread.join()
    got.extend(drain(tailer)[0])
    assert got == expected


def write_lines(path: Path, records: list[dict[str, Any]], mode: str = "w") -> None:
    with open(path, mode) as fh:
        for record in records:
            fh.write(json.dumps(record) + "\n")


def steps(lo: int, hi: int, tag: str = "a") -> list[dict[str, Any]]:
    return [{"event": "step", "step": i, "tag": tag} for i in range(lo, hi)]


def test_truncate_and_rewrite_smaller_resets(tmp_path: Path) -> None:
    path = tmp_path / "metrics.jsonl"
    write_lines(path, steps(0, 50))
    tailer = JsonlTailer(path)
    assert len(drain(tailer)[0]) == 50
    write_lines(path, steps(0, 3, "b"))  # open('w'): truncate, then write less
    values, bad, reset = drain(tailer)
    assert reset and values == steps(0, 3, "b") and bad == 0


def test_truncate_and_rewrite_larger_in_one_write_is_detected(tmp_path: Path) -> None:
    path = tmp_path / "metrics.jsonl"
    write_lines(path, steps(0, 10))
    tailer = JsonlTailer(path)
    assert len(drain(tailer)[0]) == 10
    bigger = b"".join(json.dumps(r).encode() + b"\n" for r in steps(100, 200, "new"))
    with open(path, "r+b") as fh:  # same inode, size only grows: size alone cannot see it
        fh.truncate(0)
        fh.write(bigger)
    values, _, reset = drain(tailer)
    assert reset and values == steps(100, 200, "new")


def test_rename_rotation_drains_old_file_then_reads_new(tmp_path: Path) -> None:
    path = tmp_path / "metrics.jsonl"
    old = open(path, "w")  # noqa: SIM115 - the writer keeps its handle across the rotation on purpose
    for r in steps(0, 5):
        old.write(json.dumps(r) + "\n")
    old.flush()
    tailer = JsonlTailer(path)
    got = drain(tailer)[0]
    os.rename(path, tmp_path / "metrics.jsonl.1")
    for r in steps(5, 8):  # still written through the old handle
        old.write(json.dumps(r) + "\n")
    old.close()
    write_lines(path, steps(8, 12))
    values, _, reset = drain(tailer)
    got.extend(values)
    assert not reset, "a rotation continues the stream"
    assert got == steps(0, 12)


def test_delete_and_recreate_reads_new_file_from_start(tmp_path: Path) -> None:
    path = tmp_path / "metrics.jsonl"
    write_lines(path, steps(0, 20))
    tailer = JsonlTailer(path)
    drain(tailer)
    path.unlink()
    assert drain(tailer)[0] == []
    write_lines(path, steps(0, 40, "again"))
    values, _, reset = drain(tailer)
    assert reset and values == steps(0, 40, "again")


def test_zero_byte_and_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "metrics.jsonl"
    tailer = JsonlTailer(path)
    assert tailer.read().missing
    path.touch()
    tail = tailer.read()
    assert not tail.missing and tail.lines == [] and tail.error is None
    write_lines(path, steps(0, 1), mode="a")
    assert drain(tailer)[0] == steps(0, 1)


def test_garbage_between_valid_lines_is_counted_and_neighbours_survive(tmp_path: Path) -> None:
    path = tmp_path / "metrics.jsonl"
    lines = [
        b'\xef\xbb\xbf{"event":"step","step":0}',  # BOM at the start of the file
        b"not json at all",
        b"\xff\xfe\x00binary\x80",
        b'{"event":"step","step":1,"train_loss":NaN,"x":Infinity,"y":-Infinity}',
        b"[1, 2, 3]",
        b"",
        b"   ",
        b'"a string"',
        b"[" * 100_000,
        b'{"event":"step","step":2,"s":"\\ud800"}',
        b'{"event":"step","step":"three"}',
        b'{"event":"step","step":3,"huge":' + b"9" * 5000 + b',"big":' + str(2**70).encode() + b"}\r",
    ]
    path.write_bytes(b"\n".join(lines) + b"\n")
    values, bad, _ = drain(JsonlTailer(path))
    records = [r for v in values if (r := normalize_record(v)) is not None]
    assert [r["step"] for r in records] == [0, 1, 2, 3]
    assert (
        math.isnan(records[1]["train_loss"]) and records[1]["x"] == math.inf and records[1]["y"] == -math.inf
    )
    # garbage, binary and deep nesting fail to parse; the array, the string and the string step parse but are
    # not records.
    assert bad == 3
    assert len(values) - len(records) == 3
    assert records[3]["big"] == 2**70 and records[3]["huge"] > 1e300


def test_a_20_mib_line_is_one_record(tmp_path: Path) -> None:
    path = tmp_path / "metrics.jsonl"
    big = "x" * (20 << 20)
    with open(path, "w") as fh:
        fh.write(json.dumps({"event": "step", "step": 0}) + "\n")
        fh.write(json.dumps({"event": "step", "step": 1, "blob": big}) + "\n")
        fh.write(json.dumps({"event": "step", "step": 2}) + "\n")
    values, bad, _ = drain(JsonlTailer(path))
    assert bad == 0 and [v["step"] for v in values] == [0, 1, 2] and len(values[1]["blob"]) == len(big)


def test_a_line_over_the_limit_is_skipped_and_counted(tmp_path: Path) -> None:
    path = tmp_path / "metrics.jsonl"
    tailer = JsonlTailer(path, max_line=1000)
    values: list[Any] = []
    bad = 0
    with open(path, "wb") as fh:
        fh.write(b'{"step":0}\n')
        for _ in range(10):  # a line that keeps growing, written in pieces
            fh.write(b"y" * 300)
            fh.flush()
            got, b, _ = drain(tailer)
            values += got
            bad += b
            assert tailer.pending_bytes <= 1000, "the held-back line must stay bounded"
        fh.write(b'\n{"step":1}\n')
    got, b, _ = drain(tailer)
    values += got
    bad += b
    assert [v["step"] for v in values] == [0, 1]
    assert bad == 1
    assert tailer.pending_bytes == 0


def test_partial_line_is_held_until_its_newline(tmp_path: Path) -> None:
    path = tmp_path / "metrics.jsonl"
    tailer = JsonlTailer(path)
    path.write_bytes(b'{"step": 1, "lo')
    assert drain(tailer)[0] == [] and tailer.pending_bytes == len(b'{"step": 1, "lo')
    with open(path, "ab") as fh:
        fh.write(b'ss": 0.5}\n')
    assert drain(tailer)[0] == [{"step": 1, "loss": 0.5}]
