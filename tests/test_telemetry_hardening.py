"""Issue 11, trainer side: one bad value, file, thread or signal never stops training or loses records.

Real training loops, real threads, real files and real signals (a trainer subprocess that is sent
SIGTERM); every wait polls for a condition with a deadline.
"""

from __future__ import annotations

import contextlib
import csv
import json
import os
import signal
import stat
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import torch
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from telemetry_helpers import TinyTask, events, records

from termmon import Telemetry
from termmon.control import request_log_every

pytestmark = pytest.mark.torch
torch.set_num_threads(1)

ROOT = Path(__file__).resolve().parent.parent


def _wait_until(condition: Callable[[], bool], timeout: float = 60.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"{what} not met within {timeout}s"
        time.sleep(0.02)


def _no_op(_: int) -> None:
    return None


def _train(
    tm: Telemetry, task: TinyTask, epochs: int, steps: int, between: Callable[[int], None] = _no_op
) -> None:
    tm.watch(task.model, task.optimizer)
    for epoch in range(epochs):
        for _ in range(steps):
            tm.step(loss=task.train_step(), batch_size=64)
            task.zero_grad()
        tm.epoch(epoch, train={"loss": 1.0})
        between(epoch)


def _telemetry_alerts(run: Path) -> list[dict[str, Any]]:
    return [a for a in events(run, "alert") if a.get("kind") == "telemetry"]


# --- 1. the writer thread survives any record --------------------------------------------------------------
def _tuple_key() -> dict[str, Any]:
    return {"lr": 1e-3, "grid": {(16, 32): "small", (64, 128): "large"}}


def _self_reference() -> dict[str, Any]:
    config: dict[str, Any] = {"lr": 1e-3}
    config["parent"] = config
    return config


@pytest.mark.parametrize("make_config", [_tuple_key, _self_reference], ids=["tuple-key", "self-reference"])
def test_a_config_json_cannot_encode_keeps_every_record(
    tmp_path: Path, make_config: Callable[[], Any]
) -> None:
    with Telemetry(tmp_path, "cfg", log_every=1, config=make_config()) as tm:
        _train(tm, TinyTask(), epochs=3, steps=100)
    run = tmp_path / "cfg"
    assert [r["step"] for r in events(run, "step")] == list(range(1, 301))
    assert len(events(run, "epoch")) == 3
    end = events(run, "end")
    assert len(end) == 1 and end[0]["status"] == "finished"
    # The start record and results.json keep the config, its odd parts as text; each output says so once.
    start = events(run, "start")[0]
    results = json.loads((run / "results.json").read_text())
    assert start["config"]["lr"] == results["config"]["lr"] == 1e-3
    assert len(results["training_history"]) == 3
    reported = _telemetry_alerts(run)
    assert len(reported) == 2 and all("json cannot encode" in a["message"] for a in reported)
    assert {"metrics.jsonl:encode", "results.json:encode"} <= set(end[0]["write_errors"])


def test_a_reused_run_dir_whose_metrics_csv_is_not_utf8_keeps_every_record(tmp_path: Path) -> None:
    run = tmp_path / "reused"
    run.mkdir()
    old = b"event,time,step,epoch,train_loss\nstep,1.0,1,0,0.5\xff\xfe broken\n"
    (run / "metrics.csv").write_bytes(old)
    with Telemetry(tmp_path, "reused", log_every=1) as tm:
        _train(tm, TinyTask(), epochs=2, steps=100)
    assert [r["step"] for r in events(run, "step")] == list(range(1, 201))
    assert events(run, "end")[0]["status"] == "finished"
    data = (run / "metrics.csv").read_bytes()
    assert b"0.5\xff\xfe broken" in data  # the earlier run's bytes survive the header rewrite
    rows = list(csv.DictReader(data.decode("utf-8", "replace").splitlines()))
    assert sum(1 for r in rows if r["event"] == "step") == 201 and "grad_norm" in rows[0]


# --- 2. SIGTERM, SIGHUP and Ctrl-C end the run on the record ------------------------------------------------
TRAINER = textwrap.dedent(
    """
    import signal, sys, time
    import torch
    from termmon import Telemetry

    log_dir, mode = sys.argv[1], sys.argv[2]
    # Ctrl-C as a trainer started from a shell gets it. A parent that ignores SIGINT (a job started in
    # the background, as a CI runner may be) passes that on, and Python then installs no handler.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    if mode == "own-handler":
        def stop(signum, frame):
            print("own handler ran", flush=True)
            sys.exit(3)
        signal.signal(signal.SIGTERM, stop)
    torch.manual_seed(0)
    model = torch.nn.Linear(8, 1)
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    x, y = torch.randn(32, 8), torch.randn(32, 1)
    with Telemetry(log_dir, "job", log_every=1) as tm:
        tm.watch(model, opt)
        while True:
            loss = torch.nn.functional.mse_loss(model(x), y)
            loss.backward()
            opt.step()
            tm.step(loss=loss)
            opt.zero_grad()
            time.sleep(0.005)
    """
)


@contextlib.contextmanager
def _trainer(tmp_path: Path, mode: str = "plain") -> Iterator[subprocess.Popen[str]]:
    script = tmp_path / "trainer.py"
    script.write_text(TRAINER)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(
        [sys.executable, "-X", "faulthandler", str(script), str(tmp_path / "logs"), mode],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        jsonl = tmp_path / "logs" / "job" / "metrics.jsonl"
        _wait_until(lambda: jsonl.exists() and jsonl.read_text().count('"event":"step"') >= 5, what="5 steps")
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.communicate(timeout=60)


def _ended(proc: subprocess.Popen[str], timeout: float = 60) -> None:
    """Wait for the trainer to end; if it does not, fail with where each of its threads was (SIGABRT:
    faulthandler prints them), so that a rare hang says where it hangs."""
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGABRT)
        _, err = proc.communicate(timeout=30)
        pytest.fail(f"the trainer did not end within {timeout} s; its threads:\n{err}")


def _summary_status(run: Path) -> str:
    result = subprocess.run(
        [sys.executable, "-m", "termmon", "summary", "--json", str(run)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    return str(json.loads(result.stdout)["runs"][0]["status"])


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP], ids=["SIGTERM", "SIGHUP"])
def test_a_stopping_signal_writes_a_killed_end_record_then_ends_the_process(
    tmp_path: Path, signum: signal.Signals
) -> None:
    with _trainer(tmp_path) as proc:
        proc.send_signal(signum)
        _ended(proc)
        assert proc.returncode == -signum  # the signal took its normal course
    run = tmp_path / "logs" / "job"
    last = records(run)[-1]
    assert last["event"] == "end" and last["status"] == "killed" and last["signal"] == signum.name
    # The signal may land between a step's count and its record: the end is at the last step or one on.
    assert 0 <= last["step"] - events(run, "step")[-1]["step"] <= 1
    assert _summary_status(run) == "killed"


def test_a_trainer_with_its_own_sigterm_handler_keeps_it(tmp_path: Path) -> None:
    with _trainer(tmp_path, "own-handler") as proc:
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=60)
        assert proc.returncode == 3 and "own handler ran" in out
    end = records(tmp_path / "logs" / "job")[-1]
    assert end["event"] == "end" and end["status"] == "killed" and end["signal"] == "SIGTERM"
    assert end["error"] == "SystemExit: 3"


def test_ctrl_c_is_recorded_as_killed_by_sigint(tmp_path: Path) -> None:
    with _trainer(tmp_path) as proc:
        proc.send_signal(signal.SIGINT)
        _ended(proc)
        assert proc.returncode != 0
    end = records(tmp_path / "logs" / "job")[-1]
    assert end["event"] == "end" and end["status"] == "killed" and end["signal"] == "SIGINT"


def test_handlers_are_installed_from_the_main_thread_only_and_put_back_on_close(tmp_path: Path) -> None:
    # Lightning restores, at teardown, the handler it saw when fit began: after a Lightning test in this
    # process that is termmon's (inert once no run is open: it re-raises with the default action).
    # Start from the default so that what this test installs and removes is its own.
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    before = signal.getsignal(signal.SIGTERM)
    made: list[Telemetry] = []
    worker = threading.Thread(target=lambda: made.append(Telemetry(tmp_path, "in_thread", log_every=1)))
    worker.start()
    worker.join()
    assert signal.getsignal(signal.SIGTERM) is before  # Python forbids handlers outside the main thread
    made[0].close()
    with Telemetry(tmp_path, "main", log_every=1):
        assert signal.getsignal(signal.SIGTERM) is not before
    assert signal.getsignal(signal.SIGTERM) is before


# --- 3. control.json is read with a bound, and a bad one never turns live control off -----------------------
def test_control_json_that_is_a_device_a_fifo_or_huge_never_hangs_and_control_stays_on(
    tmp_path: Path,
) -> None:
    run = tmp_path / "dev"
    run.mkdir()
    control = run / "control.json"
    control.symlink_to("/dev/zero")
    t0 = time.monotonic()
    task = TinyTask()
    with Telemetry(tmp_path, "dev", log_every=5, control_poll_s=0.0) as tm:
        assert time.monotonic() - t0 < 10  # no 28 s read, no MemoryError
        tm.watch(task.model, task.optimizer)
        for step in range(1, 61):
            tm.step(loss=task.train_step())
            task.zero_grad()
            if step == 10:
                control.unlink()
                os.mkfifo(control)  # opening a FIFO for reading would block until a writer came
            if step == 20:
                control.unlink()
                control.write_text(json.dumps({"log_every": 7, "seq": 1, "pad": "x" * 10_000}))
            if step == 30:
                control.unlink()
                _wait_until((run / "metrics.jsonl").exists, what="metrics.jsonl")
                request_log_every(run, 10)
    assert [(c["step"], c["new"]) for c in events(run, "control_change")] == [(31, 10)]
    messages = [a["message"] for a in _telemetry_alerts(run)]
    assert sum("not a regular file" in m for m in messages) == 1  # the device and the FIFO: one message
    assert sum("larger than 4096 bytes" in m for m in messages) == 1


@pytest.mark.parametrize(
    "bad",
    ['{"log_every": NaN, "seq": 1}', '{"log_every": Infinity, "seq": 1}', '{"log_every": 1e999, "seq": 1}',
     '{"seq": 1, "x": ' + "[" * 5000 + "]" * 5000 + "}"],
    ids=["NaN", "Infinity", "overflow", "deep"],
)  # fmt: skip
def test_a_control_value_that_is_not_a_number_is_ignored_and_a_later_request_applies(
    tmp_path: Path, bad: str
) -> None:
    run = tmp_path / "ctl"
    task = TinyTask()
    with Telemetry(tmp_path, "ctl", log_every=5, control_poll_s=0.0) as tm:
        tm.watch(task.model, task.optimizer)
        for step in range(1, 41):
            tm.step(loss=task.train_step())
            task.zero_grad()
            if step == 8:
                (run / "control.json").write_text(bad)
            if step == 20:
                _wait_until((run / "metrics.jsonl").exists, what="metrics.jsonl")
                request_log_every(run, 10)
    assert [(c["step"], c["new"]) for c in events(run, "control_change")] == [(21, 10)]
    assert not [a for a in _telemetry_alerts(run) if "switched off" in a["message"]]
    assert len(_telemetry_alerts(run)) == 1  # the bad file, said once


_JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=20,
)
_REQUESTS = st.fixed_dictionaries(
    {}, optional={"log_every": _JSON_VALUES, "seq": _JSON_VALUES, "source": _JSON_VALUES, "x": _JSON_VALUES}
).map(lambda d: json.dumps(d).encode())
_NESTED = st.integers(min_value=900, max_value=3000).map(
    lambda n: b'{"seq": 1, "a": ' + b"[" * n + b"]" * n + b"}"
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(content=st.binary(max_size=5000) | _REQUESTS | _NESTED)
@example(content=b'{"seq": -2}')  # a request written after a negative seq was numbered -1 and ignored
def test_no_control_json_content_stops_training_or_live_control(content: bytes) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        run = Path(tmp) / "any"
        with Telemetry(tmp, "any", log_every=5, control_poll_s=0.0, track_system=False) as tm:
            for step in range(1, 31):
                tm.step(loss=1.0)
                if step == 5:
                    (run / "control.json").write_bytes(content)
                if step == 15:
                    _wait_until((run / "metrics.jsonl").exists, what="metrics.jsonl")
                    request_log_every(run, 10)
        assert tm.global_step == 30
        changes = events(run, "control_change")
        assert changes and changes[-1]["new"] == 10 and changes[-1]["step"] == 16
        assert not [a for a in _telemetry_alerts(run) if "switched off" in a["message"]]


# --- 4. outputs fail alone; step is thread-safe; run_name stays inside log_dir ----------------------------
def test_results_json_failing_mid_run_does_not_stop_metrics_jsonl(tmp_path: Path) -> None:
    run = tmp_path / "res"

    def break_results(epoch: int) -> None:
        if epoch == 0:
            _wait_until(lambda: (run / "results.json").is_file(), what="results.json")
            (run / "results.json").unlink()
            (run / "results.json").mkdir()  # os.replace onto a directory fails, even as root

    with Telemetry(tmp_path, "res", log_every=5) as tm:
        _train(tm, TinyTask(), epochs=3, steps=20, between=break_results)
    assert [r["step"] for r in events(run, "step")] == list(range(5, 61, 5))
    assert [r["epoch"] for r in events(run, "epoch")] == [0, 1, 2]
    end = events(run, "end")[0]
    assert end["status"] == "finished" and end["write_errors"] == {"results.json": 2}
    reported = _telemetry_alerts(run)
    assert len(reported) == 1 and "cannot write results.json" in reported[0]["message"]
    assert len(list(csv.DictReader((run / "metrics.csv").open()))) == 12 + 3


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only directories")
def test_a_run_dir_made_read_only_mid_run_keeps_metrics_jsonl(tmp_path: Path) -> None:
    run = tmp_path / "ro"

    def read_only(epoch: int) -> None:
        if epoch == 0:
            _wait_until(lambda: (run / "results.json").is_file(), what="results.json")
            run.chmod(0o555)

    try:
        with Telemetry(tmp_path, "ro", log_every=5) as tm:
            _train(tm, TinyTask(), epochs=3, steps=20, between=read_only)
    finally:
        run.chmod(0o755)
    assert [r["step"] for r in events(run, "step")] == list(range(5, 61, 5))
    assert events(run, "end")[0]["write_errors"]["results.json"] == 2


def test_step_from_two_threads_loses_no_record_and_repeats_no_step(tmp_path: Path) -> None:
    per_thread = 3000
    with Telemetry(tmp_path, "threads", log_every=1, queue_size=100_000, track_system=False) as tm:
        barrier = threading.Barrier(2)

        def work() -> None:
            barrier.wait()
            for i in range(per_thread):
                tm.step(loss=float(i))

        threads = [threading.Thread(target=work) for _ in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    steps = [r["step"] for r in events(tmp_path / "threads", "step")]
    assert sorted(steps) == list(range(1, 2 * per_thread + 1))
    assert tm.global_step == 2 * per_thread


@pytest.mark.parametrize("name", ["../../x", "../x", "/tmp/x", "a/b", "..", ".", "", "a\\b"])
def test_a_run_name_that_leaves_log_dir_is_refused(tmp_path: Path, name: str) -> None:
    log_dir = tmp_path / "a" / "b"
    with pytest.raises(ValueError, match="run_name must be a single directory name"):
        Telemetry(log_dir, name)
    with pytest.raises(ValueError, match="run_name must be a single directory name"):
        Telemetry.from_config({"telemetry": {"log_dir": str(log_dir), "run_name": name}})
    assert not (tmp_path / "x").exists() and not (tmp_path / "a").exists()


# --- 5. files honour the umask; unreadable control.json is said -------------------------------------------
@pytest.fixture
def umask_027() -> Iterator[None]:
    old = os.umask(0o027)
    try:
        yield
    finally:
        os.umask(old)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_every_file_gets_the_mode_the_umask_gives(tmp_path: Path) -> None:
    old = os.umask(0o022)
    try:
        with Telemetry(tmp_path, "modes", log_every=5) as tm:
            _train(tm, TinyTask(), epochs=1, steps=20)
        request_log_every(tmp_path / "modes", 10)
    finally:
        os.umask(old)
    run = tmp_path / "modes"
    for name in (
        "metrics.jsonl",
        "metrics.csv",
        "results.json",
        "control.json",
        "telemetry/per_layer_stats.csv",
    ):
        assert _mode(run / name) == 0o644, name


def test_the_mode_follows_a_stricter_umask_too(tmp_path: Path, umask_027: None) -> None:
    with Telemetry(tmp_path, "strict", log_every=5) as tm:
        _train(tm, TinyTask(), epochs=1, steps=20)
    run = tmp_path / "strict"
    for name in ("metrics.jsonl", "metrics.csv", "results.json"):
        assert _mode(run / name) == 0o640, name


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files of mode 000")
def test_a_control_json_the_trainer_cannot_read_is_reported(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = tmp_path / "perm"
    task = TinyTask()
    with Telemetry(tmp_path, "perm", log_every=5, control_poll_s=0.0) as tm:
        tm.watch(task.model, task.optimizer)
        for step in range(1, 21):
            tm.step(loss=task.train_step())
            task.zero_grad()
            if step == 5:
                _wait_until((run / "metrics.jsonl").exists, what="metrics.jsonl")
                request_log_every(run, 10)
                (run / "control.json").chmod(0)
    alerts = [a["message"] for a in _telemetry_alerts(run)]
    assert any("cannot read control.json" in m for m in alerts)
    assert "cannot read control.json" in capsys.readouterr().err
