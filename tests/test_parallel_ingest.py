"""A metrics.jsonl parsed in pieces over worker processes gives exactly the run that one process gives.

Every test compares against the monitor's own reading path (RunSource through the tailer, one process):
the whole state of each run (rows, columns, metric rows/values/stats, meta events, texts, progress
fields) must be equal, on files that hold every awkward line the readers know about.
"""

from __future__ import annotations

import gc
import json
import math
import os
import shutil
import subprocess
import sys
import textwrap
import threading
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from termmon.analysis import summary as summary_module
from termmon.analysis.alerts import AlertEngine, load_alert_config
from termmon.analysis.summary import summarize
from termmon.ingest import parallel, workers
from termmon.ingest.parallel import FileChangedError, ParallelReader, Split, parse_piece, plan_split
from termmon.loading import load_workspace
from termmon.model.run import Run
from tests.runs import write_run
from tests.test_alerts_engine import troubled_records

SEQUENTIAL = Split(workers=0)
#: Pieces of a few hundred bytes: many cuts in a small file, so every kind of line meets a cut.
TINY = Split(min_bytes=0, piece_bytes=300, workers=2)


def run_state(run: Run) -> dict[str, Any]:
    """Everything a Run holds that a reader fills, as plain values (NaN-safe through repr)."""
    fields = (
        "name", "records", "bad_lines", "first_time", "last_time", "longest_gap", "last_step",
        "last_epoch", "start", "end", "log_every", "last_control_change", "events", "texts", "errors",
        "last_write", "has_end_events", "generation",
    )  # fmt: skip
    state: dict[str, Any] = {name: repr(getattr(run, name)) for name in fields}
    for name in ("time", "step", "epoch", "kind", "event"):
        state[name] = repr(getattr(run, name).view.tolist())
    state["metrics"] = {
        name: (column.rows.view.tolist(), repr(column.values.view.tolist()), repr(vars(column.stats)))
        for name, column in run.metrics.items()
    }
    return state


def loaded(path: Path, split: Split) -> list[dict[str, Any]]:
    workspace = load_workspace([str(path)], progress=False, split=split)
    return [run_state(run) for run in workspace.runs.values()]


def step_line(i: int) -> dict[str, Any]:
    return {"event": "step", "time": 1_700_000_000.0 + i, "step": i, "epoch": i // 50, "loss": 1.0 / i,
            "lr": 0.001, "ok": True}  # fmt: skip


#: Lines the readers treat specially, each as the bytes written (without the newline).
AWKWARD: list[bytes] = [
    b'{"event": "step", "time": 1700000100.5, "step": 101, "loss": NaN, "lr": Infinity}',  # json only
    b"not json at all",
    b"[1, 2, 3]",
    b"null",
    b'"a string"',
    b"",
    b"   \t",
    b'{"event": "step", "step": "105", "loss": 1.0}',  # a string step: a bad line
    b'{"event": "step", "step": true, "loss": 1.0}',  # a boolean step: a bad line
    b'{"event": "step", "step": 9007199254740993, "loss": 1.0}',  # past 2**53: a bad line
    b'{"event": "step", "step": 106, "loss": 123456789012345678901234567890}',  # beyond int64
    b'{"event": "step", "step": 107, "loss": ' + b"7" * 5000 + b"}",  # past Python's digit limit
    b'{"event": "step", "step": 108, "loss": 1e400, "acc": -0.0}',
    b'{"event": "step", "step": 109, "loss": "1.5", "note": "a text"}',
    b'{"event": "step", "step": 110, "loss": null, "lr": 0.1}',
    b'{"event": "step", "step": 111, "train": {"loss": 0.5, "acc": {"top1": 0.9}}}',  # nested
    b'{"step": 112, "loss": 0.25}',  # no event: a step record
    b'{"event": "eval", "step": 112, "val_loss": 0.3}',
    b'{"event": 5, "step": 113}',
    b'{"event": "alert", "time": 1700000114.0, "kind": "nan_inf", "severity": "critical", "message": "m"}',
    b'{"event": "checkpoint", "step": 114, "checkpoint_path": "ckpt/114.pt"}',
    b'{"event": "control_change", "key": "log_every", "old": 10, "new": 20, "requested": 20}',
    b'{"event": "end", "time": 1700000115.0, "status": "crashed", "error": "boom"}',
    b'{"event": "start", "time": 1700000116.0, "run_name": "restarted", "config": {"lr": 0.1}}',
    b"\x00\x00\x00" + json.dumps(step_line(117)).encode(),  # NUL padding, then a record
    json.dumps(step_line(118)).encode() + b"\r",  # CRLF line ending
    b'{"event": "step", "step": 119, "loss": "\\ud800"}',  # a lone surrogate: json only
    b'{"event": "step", "step": 120, "loss": 0.1, "loss": 0.2}',  # a repeated key: the last wins
    b'{"event": "epoch", "step": 120, "epoch": 2, "train/loss": 0.4, "test/loss": 0.5}',
    b'{"event": "step", "step": 121, "deep": ' + b"[" * 70 + b"]" * 70 + b"}",  # nested too deep
]


def awkward_file(path: Path, *, bom: bool = True, torn: bool = True) -> Path:
    """A metrics.jsonl with a start, steps whose keys change, every awkward line between steps, an end,
    a restart, and a torn last line."""
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = [
        json.dumps({"event": "start", "time": 1_700_000_000.0, "run_name": "r", "log_every": 10}).encode()
    ]
    for i in range(1, 101):
        record = step_line(i)
        if i % 7 == 0:
            record["grad_norm"] = float(i)  # another key count for a while
        if i % 11 == 0:
            record.pop("lr")
            record["gpu_util"] = 90.0  # the same key count, another key
        lines.append(json.dumps(record).encode())
    lines.extend(AWKWARD)
    lines.extend(json.dumps(step_line(i)).encode() for i in range(122, 160))
    lines.append(json.dumps({"event": "end", "time": 1_700_000_160.0, "status": "finished"}).encode())
    data = (b"\xef\xbb\xbf" if bom else b"") + b"\n".join(lines) + b"\n"
    if torn:
        data += b'{"event": "step", "step": 161, "lo'
    path.write_bytes(data)
    return path


@pytest.fixture
def awkward_run(tmp_path: Path) -> Path:
    awkward_file(tmp_path / "run" / "metrics.jsonl")
    return tmp_path / "run"


def workers_go_first(monkeypatch: pytest.MonkeyPatch, pieces: int) -> list[int]:
    """Hold the caller's own parsing until the workers have taken ``pieces`` pieces (a small file is
    otherwise parsed whole before a worker has started); returns the starts of the workers' pieces."""
    taken: list[int] = []
    went = threading.Event()
    real_worker_send = parallel._Worker.send
    real_parse_piece = parallel.parse_piece

    def worker_send(self: parallel._Worker, plan: parallel.Plan, start: int, end: int) -> None:
        taken.append(start)
        try:
            real_worker_send(self, plan, start, end)
        finally:
            if len(taken) >= pieces:
                went.set()

    def caller_parse(fd: int, start: int, end: int) -> Any:
        went.wait(timeout=120)
        return real_parse_piece(fd, start, end)

    monkeypatch.setattr(parallel._Worker, "send", worker_send)
    monkeypatch.setattr(parallel, "parse_piece", caller_parse)
    return taken


def test_pieces_give_the_single_process_run_on_every_awkward_line(
    awkward_run: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    expected = loaded(awkward_run, SEQUENTIAL)
    assert expected[0]["bad_lines"] != "0" and expected[0]["end"] != "None"  # the file is as awkward as meant
    plan = plan_split(awkward_run / "metrics.jsonl", TINY)
    assert plan is not None and len(plan.pieces) > 20
    by_workers = workers_go_first(monkeypatch, 4)
    assert loaded(awkward_run, TINY) == expected
    assert len(by_workers) >= 4


def test_a_worker_process_parses_a_piece_as_the_caller_does(awkward_run: Path) -> None:
    path = awkward_run / "metrics.jsonl"
    plan = plan_split(path, TINY)
    assert plan is not None
    worker = parallel._Worker()
    fd = os.open(path, os.O_RDONLY)
    try:
        worker.wait_ready()
        for start, end in plan.pieces:  # all asked at once: the replies come in the order asked
            worker.send(plan, start, end)
        for start, end in plan.pieces:
            mine, theirs = Run(path), Run(path)
            mine.add(parse_piece(fd, start, end))
            theirs.add(worker.receive())
            assert run_state(theirs) == run_state(mine)
    finally:
        os.close(fd)
        worker.close()


def test_pieces_end_at_newlines_and_leave_the_torn_line(awkward_run: Path) -> None:
    path = awkward_run / "metrics.jsonl"
    data = path.read_bytes()
    plan = plan_split(path, TINY)
    assert plan is not None
    assert plan.pieces[0][0] == 0 and plan.end == data.rfind(b"\n") + 1
    for (_, end), (start, _) in zip(plan.pieces, plan.pieces[1:], strict=False):
        assert end == start and data[end - 1 : end] == b"\n"


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    picks=st.lists(st.integers(0, len(AWKWARD) + 3), max_size=60),
    piece_bytes=st.integers(1, 2000),
    torn=st.booleans(),
    bom=st.booleans(),
)
def test_any_mix_of_lines_cut_anywhere_reads_the_same(
    tmp_path_factory: pytest.TempPathFactory, picks: list[int], piece_bytes: int, torn: bool, bom: bool
) -> None:
    """Property: whatever the lines and wherever the cuts fall, the pieces' batches make the same run."""
    run_dir = tmp_path_factory.mktemp("run")
    lines = [
        AWKWARD[k] if k < len(AWKWARD) else json.dumps(step_line(n + 1)).encode() for n, k in enumerate(picks)
    ]
    data = (b"\xef\xbb\xbf" if bom else b"") + b"".join(line + b"\n" for line in lines)
    (run_dir / "metrics.jsonl").write_bytes(data + (b'{"step": 1' if torn else b""))
    expected = loaded(run_dir, SEQUENTIAL)
    plan = plan_split(run_dir / "metrics.jsonl", Split(min_bytes=0, piece_bytes=piece_bytes, workers=1))
    if not data:
        assert plan is None or plan.pieces == []
        return
    assert plan is not None
    run = Run(run_dir)
    with ParallelReader(Split(workers=1)) as reader:
        for batch in reader.read(plan):
            run.add(batch)
    state = run_state(run)
    for name in ("name", "last_write", "has_end_events"):  # set by the workspace, not by batches
        state[name] = expected[0][name]
    assert state == expected[0]


def test_summary_is_the_same_either_way(tmp_path: Path) -> None:
    for name in ("a", "b", "c"):
        awkward_file(tmp_path / name / "metrics.jsonl", torn=name != "b")
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "results.json").write_text(json.dumps({"run_name": "d", "training_history": []}))
    config = load_alert_config(None)
    one = load_workspace([str(tmp_path)], progress=False, split=SEQUENTIAL)
    pieces = load_workspace([str(tmp_path)], progress=False, split=TINY)
    assert list(one.runs) == list(pieces.runs)  # the order runs were found in, whichever way each was read
    now = 1_800_000_000.0
    as_json = [
        json.dumps(summarize(list(w.runs.values()), AlertEngine(config), now), default=repr)
        for w in (one, pieces)
    ]
    assert as_json[0] == as_json[1]


def test_no_worker_can_start_and_the_caller_reads_everything(
    awkward_run: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    expected = loaded(awkward_run, SEQUENTIAL)
    monkeypatch.setattr(sys, "executable", str(awkward_run / "no-such-python"))
    assert loaded(awkward_run, TINY) == expected


def test_a_worker_that_fails_hands_its_piece_back(awkward_run: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    expected = loaded(awkward_run, SEQUENTIAL)
    real_send = parallel._Worker.send
    killed: list[int] = []

    def die_on_the_third(self: parallel._Worker, plan: parallel.Plan, start: int, end: int) -> None:
        if len(taken) == 3:
            killed.append(start)
            self.proc.kill()  # a worker killed mid-load: the replies it owes never come
            self.proc.wait()
        real_send(self, plan, start, end)

    monkeypatch.setattr(parallel._Worker, "send", die_on_the_third)
    taken = workers_go_first(monkeypatch, 3)
    assert loaded(awkward_run, TINY) == expected
    assert len(killed) == 1  # a worker died holding a piece, and the run is whole all the same


def test_a_file_replaced_between_plan_and_read_is_read_the_usual_way(
    awkward_run: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = awkward_run / "metrics.jsonl"
    plan = plan_split(path, TINY)
    assert plan is not None
    replacement = path.with_name("new.jsonl")
    awkward_file(replacement, bom=False, torn=False)
    os.replace(replacement, path)
    with ParallelReader(TINY) as reader, pytest.raises(FileChangedError):
        next(reader.read(plan))

    # The loader, meeting the same race, reads the new file whole.
    expected = loaded(awkward_run, SEQUENTIAL)
    real_plan = ParallelReader.plan

    def plan_then_replace(self: ParallelReader, target: Path) -> parallel.Plan | None:
        found = real_plan(self, target)
        other = target.with_name("other.jsonl")
        shutil.copy2(target, other)  # the same bytes and mtime, in another file
        os.replace(other, target)
        return found

    monkeypatch.setattr(ParallelReader, "plan", plan_then_replace)
    assert loaded(awkward_run, TINY) == expected


def test_loading_from_a_thread_beside_others(awkward_run: Path) -> None:
    """As the TUI or a training script would: other threads running, the load on one of its own."""
    expected = loaded(awkward_run, SEQUENTIAL)
    stop = threading.Event()
    busy = threading.Thread(target=lambda: stop.wait(), daemon=True)
    busy.start()
    results: list[list[dict[str, Any]]] = []
    loader = threading.Thread(target=lambda: results.append(loaded(awkward_run, TINY)))
    loader.start()
    loader.join(timeout=120)
    stop.set()
    assert results == [expected]


def test_a_load_leaves_the_collector_as_it_found_it(awkward_run: Path) -> None:
    """The load pauses cyclic collection for its own records; the caller's collector is back on after,
    and off again if the caller had it off."""
    assert gc.isenabled()
    load_workspace([str(awkward_run)], progress=False, split=TINY)
    assert gc.isenabled()
    gc.disable()
    try:
        load_workspace([str(awkward_run)], progress=False, split=TINY)
        assert not gc.isenabled()
    finally:
        gc.enable()


def test_a_script_without_a_main_guard_runs_once(awkward_run: Path, tmp_path: Path) -> None:
    """Workers are fresh interpreters: the calling script is not imported again (spawn would)."""
    marker = tmp_path / "ran.txt"
    script = tmp_path / "train.py"
    script.write_text(
        textwrap.dedent(f"""
        from termmon.ingest.parallel import Split
        from termmon.loading import load_workspace
        with open({str(marker)!r}, "a") as fh:
            fh.write("ran\\n")
        workspace = load_workspace([{str(awkward_run)!r}], progress=False, split=Split(min_bytes=0, piece_bytes=300, workers=2))
        print(sum(run.records for run in workspace.runs.values()))
        """)
    )
    out = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=120, check=True
    )
    assert marker.read_text() == "ran\n"
    assert int(out.stdout) == sum(int(r["records"]) for r in loaded(awkward_run, SEQUENTIAL))


def test_small_files_and_single_cores_stay_in_one_process(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("TERMMON_INGEST_WORKERS", raising=False)
    path = awkward_file(tmp_path / "run" / "metrics.jsonl")
    assert plan_split(path, Split()) is None  # far below MIN_PARALLEL_BYTES
    assert plan_split(path, Split(min_bytes=0, workers=0)) is None
    assert Split().worker_count() == min(workers.MAX_WORKERS, workers.usable_cores() - 1)


def test_the_environment_sets_the_worker_count(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("TERMMON_INGEST_WORKERS", "0")
    assert Split().worker_count() == 0
    assert plan_split(awkward_file(tmp_path / "metrics.jsonl"), Split(min_bytes=0)) is None
    monkeypatch.setenv("TERMMON_INGEST_WORKERS", "3")
    assert Split().worker_count() == 3 and Split(workers=1).worker_count() == 1
    monkeypatch.setenv("TERMMON_INGEST_WORKERS", "many")
    assert Split().worker_count() == min(workers.MAX_WORKERS, workers.usable_cores() - 1)
    assert plan_split(tmp_path / "run", Split(min_bytes=0, workers=1)) is None  # not a regular file


def test_a_line_too_long_to_cut_near_keeps_the_file_whole(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(parallel, "MAX_CUT_SEARCH", 1000)
    path = tmp_path / "metrics.jsonl"
    long_line = json.dumps({"step": 1, "text": "x" * 5000}).encode()
    path.write_bytes(b'{"step": 0}\n' + long_line + b'\n{"step": 2}\n')
    assert plan_split(path, Split(min_bytes=0, piece_bytes=100, workers=1)) is None
    path.write_bytes(b'{"step": 0}\n' + long_line)  # a torn last line too long to look past
    assert plan_split(path, Split(min_bytes=0, piece_bytes=100, workers=1)) is None


def test_packed_batches_round_trip(awkward_run: Path) -> None:
    path = awkward_run / "metrics.jsonl"
    fd = os.open(path, os.O_RDONLY)
    try:
        batch = parse_piece(fd, 0, path.read_bytes().rfind(b"\n") + 1)
    finally:
        os.close(fd)
    back = parallel.unpack(parallel.pack(batch))
    for name in ("time", "step", "epoch", "kind", "event"):
        assert repr(getattr(back, name).tolist()) == repr(getattr(batch, name).tolist())
    assert batch.metrics.keys() == back.metrics.keys()
    for name, (rows, values) in batch.metrics.items():
        assert back.metrics[name][0].tolist() == rows.tolist()
        assert np.array_equal(back.metrics[name][1], values, equal_nan=True)
    assert (back.meta, back.texts, back.bad_lines) == (batch.meta, batch.texts, batch.bad_lines)
    assert math.isnan(parallel.unpack(parallel.pack(batch)).time[-1]) == math.isnan(batch.time[-1])


def test_prestarted_workers_serve_the_next_load(awkward_run: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Workers started before a command's imports are the ones its load uses, and read the same runs."""
    monkeypatch.setenv("TERMMON_INGEST_WORKERS", "2")
    workers.prestart([str(awkward_run)], min_bytes=1)
    started = workers.take_prestarted(2)
    assert len(started) == 2 and all(w.proc.poll() is None for w in started)
    workers._prestarted.extend(started)  # put back for the load to take
    assert loaded(awkward_run, TINY) == loaded(awkward_run, SEQUENTIAL)
    assert workers.take_prestarted(2) == []  # the load took them
    for worker in started:
        assert worker.proc.wait(timeout=30) == 0  # and ended them with it


def test_prestart_starts_nothing_for_small_or_absent_runs(
    awkward_run: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TERMMON_INGEST_WORKERS", "2")
    workers.prestart([str(awkward_run), str(awkward_run / "metrics.jsonl"), str(tmp_path / "none")])
    assert workers.take_prestarted(2) == []  # far below MIN_PARALLEL_BYTES
    monkeypatch.setenv("TERMMON_INGEST_WORKERS", "0")
    workers.prestart([str(awkward_run)], min_bytes=1)
    assert workers.take_prestarted(2) == []


@pytest.mark.skipif(
    not Path("/proc/self/task").is_dir() or workers.usable_cores() < 2, reason="needs Linux and two cores"
)
def test_a_worker_starts_no_thread_pool(awkward_run: Path) -> None:
    """numpy's OpenBLAS starts a thread per core as it loads: a worker, which only parses, runs its main
    thread and its reply writer, whatever the core count."""
    plan = plan_split(awkward_run / "metrics.jsonl", TINY)
    assert plan is not None
    worker = workers._Worker()
    try:
        worker.wait_ready()
        worker.send(plan, *plan.pieces[0])
        assert len(worker.receive()) > 0  # a reply came: its writer thread is running
        assert len(os.listdir(f"/proc/{worker.proc.pid}/task")) == 2
    finally:
        worker.close()
    assert worker.proc.wait(timeout=30) == 0


@pytest.mark.skipif(
    not Path("/proc/self/task").is_dir() or workers.usable_cores() < 2, reason="needs Linux and two cores"
)
@pytest.mark.parametrize(("chosen", "threads"), [(None, 1), ("2", 2)])
def test_a_one_shot_command_asks_for_one_blas_thread_unless_the_user_chose(
    chosen: str | None, threads: int
) -> None:
    script = (
        "import os; from termmon.ingest.workers import one_blas_thread; one_blas_thread(); import numpy; "
        "print(len(os.listdir('/proc/self/task')))"
    )
    env = {k: v for k, v in os.environ.items() if k != "OPENBLAS_NUM_THREADS"}
    if chosen is not None:
        env["OPENBLAS_NUM_THREADS"] = chosen
    out = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, check=True)
    assert int(out.stdout) == threads


def test_alerts_judged_while_a_run_loads_are_the_alerts_of_the_whole_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``summary`` judges a run read in pieces as the pieces come: after every piece here. Its alerts are
    those of one pass over the whole run, ``stalled`` included (no verdict from a part: the run has no
    end event, and each part read so far would have looked stalled since its last record)."""
    records = [r for r in troubled_records() if r.get("event") != "end"]
    metrics = write_run(tmp_path / "troubled", records) / "metrics.jsonl"
    last_write = max(r["time"] for r in records) + 1
    os.utime(metrics, (last_write, last_write))  # silent since: stalled by now, and by any clock
    config = load_alert_config(None)
    now = 1_800_000_000.0
    whole = load_workspace([str(tmp_path)], progress=False, split=SEQUENTIAL)
    expected = summarize(list(whole.runs.values()), AlertEngine(config), now)
    kinds = [alert["kind"] for alert in expected["runs"][0]["alerts"]]
    assert "stalled" in kinds and "loss_plateau" in kinds and "nan_inf" in kinds

    monkeypatch.setattr(summary_module, "JUDGE_RECORDS", 1)
    engine = AlertEngine(config)
    judged = summary_module.JudgedWhileLoading(engine)
    calls: list[int] = []

    def judge(run: Run) -> None:
        calls.append(run.records)
        judged(run)

    pieces = load_workspace(
        [str(tmp_path)],
        progress=False,
        split=Split(min_bytes=0, piece_bytes=4000, workers=1),
        meanwhile=judge,
    )
    assert len(calls) > 20 and len(engine.alerts) > 0  # judged many times, and found alerts meanwhile
    got = summarize(list(pieces.runs.values()), engine, now)
    assert json.dumps(got, default=repr) == json.dumps(expected, default=repr)
