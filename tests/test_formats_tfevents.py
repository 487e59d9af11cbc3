"""TensorBoard event files written by torch's SummaryWriter (tests/data/tensorboard, made by
scripts/make_format_fixtures.py): whole, torn, restarted, damaged, diverged, and growing live."""

from __future__ import annotations

import contextlib
import shutil
import tempfile
import threading
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import termmon
from termmon.ingest.discovery import find_runs
from termmon.ingest.formats.crc32c import crc32c_python, masked_crc
from termmon.ingest.formats.protowire import WireError
from termmon.ingest.formats.tfevents_decode import decode_event
from termmon.ingest.formats.tfrecord import HEADER
from tests.format_helpers import DATA, alert_kinds, grow_and_read, only_run, points, read_run, summary

TB = DATA / "tensorboard"


def events(run: Path) -> list[Path]:
    return sorted(run.glob("events.out.tfevents.*"))


def series(records: list[dict], tag: str) -> list[tuple[int, float]]:
    return [(r["step"], r[tag]) for r in records if tag in r and "step" in r]


def test_crc32c_matches_the_reference_check_value() -> None:
    # RFC 3720's check value for "123456789"; the C extension and the fallback agree on real records.
    assert crc32c_python(b"123456789") == 0xE3069283
    data = events(TB / "healthy")[0].read_bytes()
    assert int.from_bytes(data[8:12], "little") == masked_crc(data[:8])


def test_reads_simple_value_and_tensor_scalars_and_the_hparams_subrun() -> None:
    records = read_run(TB / "healthy")
    assert [s for s, _ in series(records, "train/loss")] == list(range(40))
    assert [s for s, _ in series(records, "train/grad_norm")] == list(range(40))
    # train/lr is written with new_style=True: a rank-0 float tensor under the scalars plugin.
    assert {round(v, 6) for _, v in series(records, "train/lr")} == {0.05}
    starts = [r for r in records if r["event"] == "start"]
    assert starts and starts[-1]["config"] == {"lr": 0.05, "optimizer": "SGD"}
    final = [r for r in records if "hparam/final_loss" in r]
    assert len(final) == 1 and "step" not in final[0]


def test_the_add_hparams_subrun_is_part_of_its_run_not_a_run() -> None:
    found = {r.path.relative_to(TB).as_posix() for r in find_runs(TB)}
    assert found == {"healthy", "diverged", "restarted", "restarted_purge_step"}


@pytest.mark.parametrize("name", ["restarted", "restarted_purge_step"])
def test_a_restarted_run_counts_rewritten_steps_once(name: str, tmp_path: Path) -> None:
    records = read_run(TB / name)
    first, second = events(TB / name)
    # Naively the two files hold 30 + 20 points per tag; the restart re-wrote steps 20..29.
    for tag in ("train/loss", "train/grad_norm", "train/lr"):
        assert [s for s, _ in series(records, tag)] == list(range(40)), tag
    shutil.copy(second, tmp_path / second.name)
    after_restart = dict(series(read_run(tmp_path), "train/loss"))
    assert dict(series(records, "train/loss"))[25] == after_restart[25]
    shutil.copy(first, tmp_path / first.name)
    assert dict(series(read_run(tmp_path), "train/loss")) == dict(series(records, "train/loss"))


def test_a_restart_found_while_tailing_takes_back_the_rewritten_points(tmp_path: Path) -> None:
    first, second = events(TB / "restarted")
    run = tmp_path / "run"
    run.mkdir()
    shutil.copy(first, run / first.name)
    source_records, source = grow_and_read(second, run / second.name, cuts=[])
    source.close()
    assert [s for s, _ in series(source_records, "train/loss")] == list(range(40))


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_torn_at_any_byte_reads_as_whole(data: st.DataObject) -> None:
    src = events(TB / "diverged")[0]
    size = src.stat().st_size
    cuts = data.draw(st.lists(st.integers(0, size), max_size=8))
    whole = read_run(TB / "diverged")
    with tempfile.TemporaryDirectory() as tmp:
        grown, source = grow_and_read(src, Path(tmp) / "run" / src.name, cuts)
        source.close()
    # One step's scalars are separate events, merged into one record per read: compare the points.
    assert points(whole, times=False) == points(grown, times=False)


def test_a_half_written_record_is_held_back(tmp_path: Path) -> None:
    src = events(TB / "healthy")[0]
    data = src.read_bytes()
    length = int.from_bytes(data[:8], "little")
    first_end = HEADER + length + 4
    cut = first_end + HEADER + 3  # the second record's header and three bytes of its data
    records, source = grow_and_read(src, tmp_path / "run" / src.name, cuts=[cut])
    source.close()
    dst = tmp_path / "partial"
    dst.mkdir()
    (dst / src.name).write_bytes(data[:cut])
    from termmon.ingest.source import RunSource

    partial = RunSource(only_run(dst))
    update = partial.read_objects()
    assert partial.pending_bytes == HEADER + 3 and update.error is None
    partial.close()
    assert points(records, times=False) == points(read_run(tmp_path / "run"), times=False)


def test_a_damaged_record_is_skipped_and_named(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run = tmp_path / "tb"
    shutil.copytree(TB / "healthy", run)
    path = events(run)[0]
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    code, out, err = summary([run], capsys)
    assert code == 0 and len(out["runs"]) == 1
    assert out["runs"][0]["bad_lines"] == 1 and out["runs"][0]["last_step"] == 39
    line = [e for e in err.splitlines() if path.name in e]
    assert len(line) == 1 and "damaged record at byte" in line[0]


def test_a_file_that_is_not_an_event_file_is_named(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = tmp_path / "tb"
    run.mkdir()
    (run / "events.out.tfevents.1.host.1.0").write_bytes(b"this is not a TFRecord file at all\n" * 4)
    code, out, err = summary([run], capsys)
    assert code == 0 and out["runs"][0]["records"] == 0
    assert "events.out.tfevents.1.host.1.0: not a readable event file" in err


def test_a_diverged_run_raises_nan_inf(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = summary([TB / "diverged"], capsys)
    assert code == 0 and "nan_inf" in alert_kinds(out["runs"][0])


def test_follow_sees_a_run_grow(tmp_path: Path) -> None:
    src = events(TB / "healthy")[0]
    data = src.read_bytes()
    run = tmp_path / "live"
    run.mkdir()
    dst = run / src.name
    dst.write_bytes(data[:200])
    stop = threading.Event()

    def write_rest() -> None:
        with open(dst, "ab") as fh:
            for i in range(200, len(data), 500):
                fh.write(data[i : i + 500])
                fh.flush()
                time.sleep(0.02)

    writer = threading.Thread(target=write_rest)
    steps: list[int] = []
    deadline = time.monotonic() + 60
    writer.start()
    for records in termmon.follow(run, stop=stop, poll_interval=0.05):
        steps += [r["step"] for r in records if "train/loss" in r]
        if steps[-1:] == [39] or time.monotonic() > deadline:
            stop.set()
    writer.join()
    assert steps == list(range(40))


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=120))
def test_the_event_decoder_rejects_garbage_with_wire_error_only(data: bytes) -> None:
    with contextlib.suppress(WireError):
        event = decode_event(data)
        assert all(isinstance(tag, str) and isinstance(v, float) for tag, v in event.scalars)
