"""Issue 11, monitor side: one bad line, file or path never stops the rest, hangs, loses records, or
reaches the terminal raw. Every test goes through a public interface (the CLI as a process or through
``main``, ``termmon.load``, ``termmon.follow``, the app under Pilot) on real files.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import termmon
from termmon.cli import main
from termmon.ingest.jsonl import JsonlTailer
from termmon.ingest.source import RunSource
from termmon.model.workspace import Workspace
from termmon.sanitize import terminal_text
from termmon.views.app import MonitorApp
from termmon.views.widgets.alert_log import AlertLog
from tests.tui_fixtures import NOW, append, run_async, start, steps, wait_until

BIG = "9" * 400
GOOD = [
    '{"event":"start","time":1.0,"run_name":"x","log_every":10}',
    '{"event":"step","time":2.0,"step":10,"train_loss":1.5}',
]
#: Characters a terminal acts on (C0, DEL, C1), that reorder or hide what it shows (bidi controls and
#: marks, line separators), or that it cannot even encode (lone surrogates).
UNSAFE_RANGES = [
    (0x00, 0x1F),
    (0x7F, 0x9F),
    (0x061C, 0x061C),
    (0x200E, 0x200F),
    (0x2028, 0x202E),
    (0x2066, 0x2069),
    (0xD800, 0xDFFF),
]


def is_unsafe(char: str) -> bool:
    return any(lo <= ord(char) <= hi for lo, hi in UNSAFE_RANGES)


def termmon_cli(*args: str, timeout: float = 120, columns: int = 200) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "termmon", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "COLUMNS": str(columns)},
    )


def write_lines(run: Path, lines: list[str], name: str = "metrics.jsonl") -> Path:
    run.mkdir(parents=True, exist_ok=True)
    (run / name).write_text("".join(line + "\n" for line in lines))
    return run


# --- 7: hostile but valid JSON is a bad line; a failure in one run's reader stays in that run ---------------
def hostile_runs(root: Path) -> dict[str, int]:
    """One run per hostile line, each beside good records; returns run name -> bad lines expected."""
    deep = "[" * 990 + "]" * 990
    nested = '{"event":"step","time":3,"step":20,"x":' + '{"a":' * 990 + "1" + "}" * 990 + "}"
    expected = {}
    write_lines(root / "deep", [*GOOD, deep, nested])
    expected["deep"] = 2
    for field in ("step", "time", "epoch"):
        write_lines(
            root / f"big_{field}", [*GOOD, f'{{"event":"step","time":3.0,"step":20,"{field}":{BIG}}}']
        )
        expected[f"big_{field}"] = 1
    write_lines(root / "big_log_every", [f'{{"event":"start","time":1.0,"log_every":{BIG}}}', GOOD[1]])
    write_lines(
        root / "big_control_change",
        [*GOOD, f'{{"event":"control_change","time":3.0,"step":20,"key":"log_every","old":10,"new":{BIG}}}'],
    )
    write_lines(
        root / "big_alert_value",
        [
            *GOOD,
            '{"event":"alert","time":3.0,"step":20,"kind":"nan_inf","severity":"critical",'
            f'"message":"m","metric":"train_loss","value":{BIG}}}',
        ],
    )
    expected.update(big_log_every=0, big_control_change=0, big_alert_value=0)
    write_lines(
        root / "seed004_nonfinite_epoch",
        [
            '{"event_type":"fit_start","step":0,"data":{}}',
            '{"event_type":"epoch_start","step":0,"data":{"epoch":NaN}}',
            '{"event_type":"training_step","step":1,"data":{"loss":1.0}}',
            '{"event_type":"epoch_start","step":2,"data":{"epoch":Infinity}}',
        ],
        name="debug_log_0.jsonl",
    )
    expected["seed004_nonfinite_epoch"] = 0
    results = root / "results_huge_epoch"
    results.mkdir()
    (results / "results.json").write_text(
        f'{{"run_name":"r","training_history":[{{"epoch":{BIG},"train":{{"loss":1.0}}}}]}}'
    )
    expected["results_huge_epoch"] = 0
    write_lines(root / "good", GOOD)
    expected["good"] = 0
    return expected


@pytest.fixture(scope="module")
def hostile(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, int]]:
    root = tmp_path_factory.mktemp("hostile")
    return root, hostile_runs(root)


def test_hostile_lines_are_counted_bad_and_every_run_is_summarised(
    hostile: tuple[Path, dict[str, int]],
) -> None:
    root, expected = hostile
    result = termmon_cli("summary", str(root), "--json")
    assert result.returncode == 0, result.stderr
    blocks = {block["name"]: block for block in json.loads(result.stdout)["runs"]}
    assert {name: block["bad_lines"] for name, block in blocks.items()} == expected
    assert blocks["good"]["records"] == 2 and blocks["deep"]["records"] == 2
    assert blocks["big_step"]["last_step"] == 10  # the good records around the bad line are all there
    assert blocks["seed004_nonfinite_epoch"]["metrics"]["train_loss"]["count"] == 1
    assert blocks["results_huge_epoch"]["metrics"]["train/loss"]["last"] == 1.0
    table = termmon_cli("summary", str(root))
    assert table.returncode == 0 and all(name in table.stdout for name in expected)


def test_hostile_lines_do_not_stop_static_report_load_or_follow(hostile: tuple[Path, dict[str, int]]) -> None:
    root, _ = hostile
    static = termmon_cli("--static", str(root))
    assert static.returncode == 0, static.stderr
    report = termmon_cli("report", str(root / "deep"))
    assert report.returncode == 0, report.stderr
    for name in hostile[1]:
        frame = termmon.load(root / name)
        assert len(frame) >= 2, name
        stop = threading.Event()
        seen: list[dict[str, Any]] = []
        for records in termmon.follow(root / name, stop=stop):
            seen.extend(records)
            stop.set()
        assert len(seen) == len(frame), name


@pytest.fixture
def one_reader_breaks(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fault injection: the reader of any run named ``broken`` raises (a bug nobody has found yet)."""
    real_read = RunSource.read

    def read(self: RunSource, *args: Any, **kwargs: Any) -> Any:
        if self.run_dir.name == "broken":
            raise RuntimeError("injected reader fault")
        return real_read(self, *args, **kwargs)

    monkeypatch.setattr(RunSource, "read", read)


def test_a_failing_reader_marks_its_run_and_the_others_are_read(
    tmp_path: Path, one_reader_breaks: None, capsys: pytest.CaptureFixture[str]
) -> None:
    write_lines(tmp_path / "broken", GOOD)
    write_lines(tmp_path / "fine", GOOD)
    assert main(["summary", str(tmp_path), "--json"]) == 1
    out, err = capsys.readouterr()
    blocks = {b["name"]: b for b in json.loads(out)["runs"]}
    assert blocks["fine"]["records"] == 2
    assert "broken: reading failed: RuntimeError: injected reader fault" in err


@run_async
async def test_tui_reader_failure_is_shown_and_reading_resumes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 10 item 9: a worker error is caught, shown in the alert log and status line, and the
    worker goes on reading (here the first poll fails outside any run, and one run's reader always)."""
    append(tmp_path / "fine", [start("fine"), *steps(10, 50)])
    append(tmp_path / "broken", [start("broken"), *steps(10, 50)])
    real_poll, real_read = Workspace.poll, RunSource.read
    calls = {"poll": 0}

    def poll(self: Workspace, *args: Any, **kwargs: Any) -> Any:
        calls["poll"] += 1
        if calls["poll"] == 1:
            raise OSError("injected poll fault")
        return real_poll(self, *args, **kwargs)

    def read(self: RunSource, *args: Any, **kwargs: Any) -> Any:
        if self.run_dir.name == "broken":
            raise RuntimeError("injected reader fault")
        return real_read(self, *args, **kwargs)

    monkeypatch.setattr(Workspace, "poll", poll)
    monkeypatch.setattr(RunSource, "read", read)
    app = MonitorApp(Workspace([str(tmp_path)]), clock=lambda: NOW)
    async with app.run_test(size=(120, 40)) as pilot:
        log = app.query_one(AlertLog)

        async def until(condition: Callable[[], bool]) -> None:
            deadline = time.monotonic() + 20
            while not condition():
                assert time.monotonic() < deadline, "condition not met in time"
                await pilot.pause(0.05)

        await until(lambda: any("injected poll fault" in t.plain for t in log.entries))
        await until(lambda: any(r.records for r in app.workspace.runs.values()))
        await until(lambda: any("injected reader fault" in t.plain for t in log.entries))
        fine = next(r for r in app.workspace.runs.values() if r.name == "fine")
        assert fine.records == 6 and app.reader_error is None  # reading resumed for the run it did not break
        app.selected = next(r.path for r in app.workspace.runs.values() if r.name == "broken")
        assert "injected reader fault" in str(app.status_text(NOW))


# --- 8: FIFOs and endless files are never opened; q exits; follow returns ----------------------------------
def test_fifos_and_dev_zero_never_hang_summary(tmp_path: Path) -> None:
    write_lines(tmp_path / "good", GOOD)
    os.mkfifo(tmp_path / "a_fifo_among_the_runs")
    fifo_run = tmp_path / "fifo_run"
    fifo_run.mkdir()
    os.mkfifo(fifo_run / "debug_log_0.jsonl")
    write_lines(
        fifo_run, ['{"event_type":"training_step","step":1,"data":{"loss":2.0}}'], "debug_log_1.jsonl"
    )
    zero_run = tmp_path / "zero_run"
    write_lines(
        zero_run, ['{"event_type":"training_step","step":1,"data":{"loss":3.0}}'], "debug_log_1.jsonl"
    )
    (zero_run / "debug_log_0.jsonl").symlink_to("/dev/zero")
    (tmp_path / "good" / "results.json").symlink_to("/dev/zero")
    result = termmon_cli("summary", str(tmp_path), "--json", timeout=60)
    # Each is named, never opened for reading; the command still summarises every run, and exits 1.
    assert result.returncode == 1, result.stderr
    for path in (fifo_run / "debug_log_0.jsonl", zero_run / "debug_log_0.jsonl"):
        assert f"not a regular file: {path}" in result.stderr
    blocks = {b["name"]: b for b in json.loads(result.stdout)["runs"]}
    assert blocks["fifo_run"]["metrics"]["train_loss"]["last"] == 2.0
    assert blocks["zero_run"]["metrics"]["train_loss"]["last"] == 3.0
    assert blocks["good"]["records"] == 2


def test_follow_returns_after_stop_when_its_file_becomes_a_fifo(tmp_path: Path) -> None:
    run = write_lines(tmp_path / "run", GOOD)
    stop = threading.Event()
    got: list[dict[str, Any]] = []
    caught: list[list[warnings.WarningMessage]] = []

    def consume() -> None:
        with warnings.catch_warnings(record=True) as seen:
            warnings.simplefilter("always")
            caught.append(seen)
            for records in termmon.follow(run, stop=stop, poll_interval=0.05):
                got.extend(records)

    def warned() -> bool:
        return bool(caught) and any("not a regular file" in str(w.message) for w in caught[0])

    thread = threading.Thread(target=consume, daemon=True)
    thread.start()
    wait_until(lambda: len(got) == 2)
    os.mkfifo(tmp_path / "fifo")
    os.replace(tmp_path / "fifo", run / "metrics.jsonl")
    wait_until(warned)  # follow met the FIFO, said so, and did not block on it:
    write_lines(tmp_path / "next", ['{"event":"step","time":5.0,"step":50,"train_loss":0.1}'])
    os.replace(tmp_path / "next" / "metrics.jsonl", run / "metrics.jsonl")
    wait_until(lambda: any(r.get("step") == 50 for r in got))  # it still reads what comes next
    stop.set()
    thread.join(timeout=10)
    assert not thread.is_alive(), "follow() did not return after stop"


@run_async
async def test_q_exits_while_a_run_file_is_a_fifo(tmp_path: Path) -> None:
    append(tmp_path / "run", [start("run"), *steps(10, 50)])
    app = MonitorApp(Workspace([str(tmp_path)]), clock=lambda: NOW, poll=0.1)
    async with app.run_test(size=(120, 40)) as pilot:
        log = app.query_one(AlertLog)
        deadline = time.monotonic() + 20
        while not any(r.records for r in app.workspace.runs.values()):
            assert time.monotonic() < deadline
            await pilot.pause(0.05)
        os.mkfifo(tmp_path / "fifo")
        os.replace(tmp_path / "fifo", tmp_path / "run" / "metrics.jsonl")
        while not any("not a regular file" in t.plain for t in log.entries):
            assert time.monotonic() < deadline, "the FIFO was not reported"
            await pilot.pause(0.05)
        await pilot.press("q")
        await pilot.pause(0.2)
    assert app.return_code == 0


# --- 9: one rule for reserved fields, on the fast path and the slow one ------------------------------------
@pytest.mark.parametrize("bad_step", [str(2**63), "1e300", "Infinity", '"105"', "true"])
def test_load_counts_a_bad_step_the_same_on_the_fast_and_the_slow_path(tmp_path: Path, bad_step: str) -> None:
    same_keys = [f'{{"event":"step","time":{i}.0,"step":{i},"train_loss":1.0}}' for i in range(1, 6)]
    bad = f'{{"event":"step","time":9.0,"step":{bad_step},"train_loss":1.0}}'
    fast = write_lines(tmp_path / "fast", [*same_keys, bad, *same_keys])  # one run of identical keys: columns
    # A text value sends a record down the general path (normalize_record): the rule must be the same.
    slow_bad = bad.replace('"train_loss":1.0', '"train_loss":1.0,"phase":"train"')
    slow = write_lines(tmp_path / "slow", [*same_keys, slow_bad, *same_keys])
    for run in (fast, slow):
        frame = termmon.load(run)
        assert len(frame) == 10, run.name
        assert str(frame["step"].dtype) == "Int64"
    result = termmon_cli("summary", str(tmp_path), "--json")
    assert [b["bad_lines"] for b in json.loads(result.stdout)["runs"]] == [1, 1]


# --- 10: resynchronise after NUL padding of any length -----------------------------------------------------
def test_the_record_after_a_huge_run_of_nul_bytes_is_kept(tmp_path: Path) -> None:
    run = write_lines(tmp_path / "run", [GOOD[1]])
    path = run / "metrics.jsonl"
    with open(path, "r+b") as fh:  # a sparse hole reads as NULs: 300 MiB, past the 256 MiB line limit
        fh.truncate(path.stat().st_size + (300 << 20))
    with open(path, "ab") as fh:
        fh.write(b'{"event":"step","time":3.0,"step":20,"train_loss":0.5}\n')
    frame = termmon.load(run)
    assert frame["step"].tolist() == [10, 20]


def test_a_torn_line_then_nul_padding_resynchronises_at_the_padding_end(tmp_path: Path) -> None:
    path = tmp_path / "metrics.jsonl"
    path.write_bytes(b'{"event":"st' + b"\0" * 5000 + b'{"step":1}\n{"step":2}\n')
    tailer = JsonlTailer(path, max_line=1000)
    lines: list[bytes] = []
    oversized = 0
    while True:
        read = tailer.read(256)
        lines += read.lines
        oversized += read.oversized_lines
        if not read.more and not read.lines:
            break
    assert lines == [b'{"step":1}', b'{"step":2}'] and oversized == 1


# --- 11: --poll outside a sane range ------------------------------------------------------------------------
@pytest.mark.parametrize(
    "argv",
    [["--poll", "nan"], ["--poll", "inf"], ["--poll", "1e-9"], ["--poll", "-1"], ["demo", "--poll", "0"]],
)
def test_poll_outside_its_range_is_exit_2_with_one_line(
    argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "--poll: must be a number of seconds from 0.05 to 3600" in err and err.count("\n") == 1


# --- 12, 13: permissions (tests drop to `nobody` when run as root, so they really run in CI) --------------
def _as_other_user() -> list[str]:
    if os.geteuid() != 0:
        return []
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        pytest.skip("running as root without setpriv: cannot drop privileges to test permissions")
    return [setpriv, "--reuid=nobody", "--regid=nogroup", "--clear-groups"]


@pytest.fixture
def shared_dir() -> Iterator[Path]:
    """A directory another user may enter (pytest's tmp_path is 0700 and root's)."""
    path = Path(tempfile.mkdtemp(prefix="termmon-perm-"))
    path.chmod(0o755)
    yield path
    for sub in path.rglob("*"):
        if not sub.is_symlink():
            sub.chmod(0o755)
    shutil.rmtree(path)


def run_unprivileged(
    args: list[str], cwd: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*_as_other_user(), sys.executable, *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=120,
        env={**os.environ, "HOME": str(cwd), "XDG_CONFIG_HOME": str(cwd / "config"), **(env or {})},
    )


def test_an_unreadable_default_config_is_skipped_with_a_warning(shared_dir: Path) -> None:
    write_lines(shared_dir / "run", GOOD)
    config = shared_dir / "config" / "termmon" / "config.toml"
    config.parent.mkdir(parents=True)
    config.write_text("[alerts]\n")
    config.chmod(0)
    default = run_unprivileged(["-m", "termmon", "summary", "run"], shared_dir)
    assert default.returncode == 0, default.stderr
    assert f"default config skipped, using the defaults (permission denied: {config})" in default.stderr
    explicit = run_unprivileged(["-m", "termmon", "summary", "run", "--config", str(config)], shared_dir)
    assert explicit.returncode == 2 and "cannot read config file" in explicit.stderr


PERMISSION_SCRIPT = """
import asyncio, sys, threading, warnings
import termmon
from termmon.errors import TermmonError
from termmon.model.workspace import Workspace
from termmon.views.app import MonitorApp
from termmon.views.widgets.alert_log import AlertLog

try:
    termmon.load("runs/unreadable")
except TermmonError as exc:
    print("load:", exc)
with warnings.catch_warnings(record=True) as seen:
    warnings.simplefilter("always")
    stop = threading.Event()
    threading.Timer(1.0, stop.set).start()
    for _ in termmon.follow("runs/unreadable", stop=stop, poll_interval=0.05):
        pass
    print("follow:", *[str(w.message) for w in seen])

async def tui():
    app = MonitorApp(Workspace(["runs"]))
    async with app.run_test(size=(120, 40)) as pilot:
        log = app.query_one(AlertLog)
        for _ in range(400):
            text = " | ".join(t.plain for t in log.entries)
            if text.count("permission denied") >= 2:
                break
            await pilot.pause(0.05)
        print("tui:", text)

asyncio.run(tui())
"""


def test_unreadable_files_and_dirs_say_permission_denied_everywhere(shared_dir: Path) -> None:
    runs = shared_dir / "runs"
    write_lines(runs / "readable", GOOD)
    metrics = write_lines(runs / "unreadable", GOOD) / "metrics.jsonl"
    metrics.chmod(0)
    locked = runs / "locked"
    write_lines(locked / "inner", GOOD)
    locked.chmod(0)
    denied_file = f"permission denied: {metrics}"
    denied_dir = f"permission denied: {locked}"
    summary = run_unprivileged(["-m", "termmon", "summary", "runs", "--json"], shared_dir)
    assert summary.returncode == 1
    assert {b["name"] for b in json.loads(summary.stdout)["runs"]} == {"readable", "unreadable"}
    assert denied_file in summary.stderr and denied_dir in summary.stderr
    static = run_unprivileged(["-m", "termmon", "--static", "runs"], shared_dir)
    assert static.returncode == 1 and denied_file in static.stderr and denied_dir in static.stderr
    report = run_unprivileged(["-m", "termmon", "report", "runs/unreadable"], shared_dir)
    assert report.returncode == 1 and denied_file in report.stderr
    script = run_unprivileged(["-c", PERMISSION_SCRIPT], shared_dir)
    assert script.returncode == 0, script.stderr
    lines = dict(line.split(": ", 1) for line in script.stdout.splitlines() if ": " in line)
    assert denied_file in lines["load"] and denied_file in lines["follow"]
    assert denied_file in lines["tui"] and denied_dir in lines["tui"]


def test_a_symlink_loop_lists_each_run_once(tmp_path: Path) -> None:
    write_lines(tmp_path / "runs" / "a", GOOD)
    (tmp_path / "runs" / "again").symlink_to(tmp_path / "runs")
    (tmp_path / "runs" / "b").symlink_to(tmp_path / "runs" / "a")
    result = termmon_cli("summary", str(tmp_path / "runs"), "--json")
    assert [b["name"] for b in json.loads(result.stdout)["runs"]] == ["a"]


# --- 14: wrong paths exit 2 before any work -----------------------------------------------------------------
def test_profile_batch_checks_its_output_before_the_sweep(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    marker = tmp_path / "imported"
    (tmp_path / "probe_target.py").write_text(
        f"open({str(marker)!r}, 'w').close()\n\ndef train(batch_size, epochs):\n    return {{}}\n"
    )
    monkeypatch.chdir(tmp_path)
    for output in ("missing/report.md", "."):
        assert main(["profile-batch", "probe_target:train", "--batch-sizes", "4", "-o", output]) == 2
    assert not marker.exists()  # not even the target check ran


def test_wrong_paths_are_exit_2_with_one_clear_line(tmp_path: Path) -> None:
    dev_null = termmon_cli("summary", "/dev/null")
    assert dev_null.returncode == 2 and "/dev/null: not a run directory or run file" in dev_null.stderr
    (tmp_path / "A").mkdir()
    missing = termmon_cli("compare-weights", str(tmp_path / "A"), str(tmp_path / "missing"), "-o", "out")
    assert missing.returncode == 2
    assert missing.stderr.strip() == f"termmon compare-weights: no such run: {tmp_path / 'missing'}"
    static = termmon_cli("--static", str(tmp_path), "-o", str(tmp_path / "no" / "x.png"))
    assert static.returncode == 2 and "no such directory" in static.stderr


# --- 15: one sanitiser for every string from disk -----------------------------------------------------------
EVIL = "\x1b]52;c;cHduZWQ=\x07\x1b[2J\x1b]8;;http://x\x1b\\link\x1b]8;;\x1b\\\x1b]0;title\x07exe.\u202etxt\u2066[red]x"


def _evil_workspace(root: Path) -> Path:
    run = root / f"run{EVIL}".replace("/", "_")
    append(run, [start("r"), *steps(10, 50)])
    alert = {
        "event": "alert",
        "time": 1.0,
        "step": 50,
        "kind": "nan_inf",
        "severity": "critical",
        "message": f"bad {EVIL}",
    }
    append(run, [alert, {"event": "step", "time": 2.0, "step": 60, f"m{EVIL}": 1.0, "train_loss": 1.0}])
    return run


def assert_terminal_safe(text: str) -> None:
    found = sorted({f"U+{ord(c):04X}" for c in text if is_unsafe(c) and c != "\n"})
    assert not found, found


def test_strings_from_disk_reach_no_terminal_raw(tmp_path: Path) -> None:
    run = _evil_workspace(tmp_path)
    summary = termmon_cli("summary", str(tmp_path), columns=1000)
    assert_terminal_safe(summary.stdout)
    assert "\\x1b]52;c;" in summary.stdout and "\\u202etxt" in summary.stdout and "[red]x" in summary.stdout
    static = termmon_cli("--static", str(tmp_path), columns=1000)
    assert_terminal_safe(static.stdout)
    report = termmon_cli("report", str(run), columns=1000)
    assert report.returncode == 0 and "\\x1b" in report.stdout
    assert_terminal_safe(report.stdout)
    error = termmon_cli("summary", str(tmp_path / f"missing{EVIL}"))
    assert error.returncode == 2 and "\\x1b]52" in error.stderr
    assert_terminal_safe(error.stderr)


@run_async
async def test_the_tui_shows_disk_strings_visibly_escaped(tmp_path: Path) -> None:
    _evil_workspace(tmp_path)
    workspace = Workspace([str(tmp_path)])
    workspace.refresh()
    app = MonitorApp(workspace, clock=lambda: NOW, live=False)
    async with app.run_test(size=(200, 40)) as pilot:
        await pilot.pause(0.1)
        status = app.status_text(NOW).plain
        log = " ".join(t.plain for t in app.query_one(AlertLog).entries)
        for text in (status, log):
            assert_terminal_safe(text)
        assert "\\x1b]52" in status and "\\u202e" in log


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.text())
def test_the_sanitiser_leaves_nothing_a_terminal_acts_on(text: str) -> None:
    from rich.console import Console
    from rich.text import Text

    shown = terminal_text(text)
    assert_terminal_safe(shown)
    assert "\n" not in shown
    if not any(map(is_unsafe, text)):
        assert shown == text  # ordinary text passes unchanged
    out = io.StringIO()
    Console(file=out, force_terminal=True, color_system=None, width=80).print(Text(shown))  # never markup
    assert_terminal_safe(out.getvalue())
