"""The command line as a user runs it: real processes, exit codes, stdout and stderr."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from termmon.control import read_control


def termmon(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "termmon", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=120,
        env={**os.environ, "COLUMNS": "120"},
    )


def write_run(run: Path, lines: list[str]) -> Path:
    run.mkdir(parents=True, exist_ok=True)
    (run / "metrics.jsonl").write_text("".join(line + "\n" for line in lines))
    return run


@pytest.fixture
def runs(tmp_path: Path) -> Path:
    write_run(
        tmp_path / "healthy",
        [
            json.dumps({"event": "start", "time": 100.0, "run_name": "healthy", "log_every": 10}),
            *(
                json.dumps({"event": "step", "time": 100.0 + i, "step": i * 10, "train_loss": 2.0 / (i + 1)})
                for i in range(20)
            ),
            json.dumps({"event": "end", "time": 130.0, "status": "finished"}),
        ],
    )
    write_run(
        tmp_path / "diverged",
        [
            json.dumps({"event": "start", "time": 100.0, "run_name": "diverged"}),
            '{"event":"step","time":101.0,"step":10,"train_loss":1.5,"grad_norm":2.0}',
            "this line is garbage",
            '{"event":"step","time":102.0,"step":20,"train_loss":NaN,"grad_norm":Infinity}',
            json.dumps({"event": "end", "time": 103.0, "status": "crashed", "error": "RuntimeError('nan')"}),
        ],
    )
    return tmp_path


def test_summary_json_is_strict_and_complete(runs: Path) -> None:
    result = termmon("summary", str(runs), "--json")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout, parse_constant=lambda token: pytest.fail(f"non-strict token {token}"))
    by_name = {run["name"]: run for run in data["runs"]}
    assert set(by_name) == {"healthy", "diverged"}
    keys = {
        "name",
        "path",
        "status",
        "records",
        "bad_lines",
        "first_time",
        "last_time",
        "last_step",
        "last_epoch",
        "metrics",
        "alerts",
    }
    assert all(set(run) == keys for run in data["runs"])
    healthy, diverged = by_name["healthy"], by_name["diverged"]
    assert healthy["status"] == "finished" and healthy["last_step"] == 190 and healthy["records"] == 22
    assert healthy["metrics"]["train_loss"] == {"last": 0.1, "min": 0.1, "max": 2.0, "count": 20}
    assert diverged["status"] == "crashed" and diverged["bad_lines"] == 1
    assert diverged["metrics"]["train_loss"]["last"] == "NaN"
    assert diverged["metrics"]["grad_norm"]["last"] == "Infinity"
    kinds = {alert["kind"] for alert in diverged["alerts"]}
    assert "nan_inf" in kinds
    alert = next(a for a in diverged["alerts"] if a["kind"] == "nan_inf")
    assert set(alert) == {"kind", "severity", "step", "epoch", "time", "metric", "value", "message"}
    assert alert["severity"] == "critical" and alert["step"] == 20


def test_summary_table_for_people(runs: Path) -> None:
    result = termmon("summary", str(runs))
    assert result.returncode == 0, result.stderr
    assert "healthy" in result.stdout and "finished" in result.stdout and "crashed" in result.stdout
    # Each alert under the table: its severity, then its message wrapped under itself (a hanging indent),
    # and no line padded out to the terminal's width.
    lines = result.stdout.splitlines()
    first = next(i for i, line in enumerate(lines) if line.startswith("  critical diverged: "))
    message_at = lines[first].index("diverged: ")
    following = lines[first + 1]
    assert following[:message_at].strip() == "" and following[message_at] != " ", lines
    assert all(line == line.rstrip() for line in lines)


@pytest.mark.parametrize(
    "args",
    [
        ["summary", "/no/such/path"],
        ["/no/such/path"],
        ["--static", "/no/such/path"],
        ["report", "/no/such/path"],
        ["control", "/no/such/path", "--log-every", "10"],
        ["summary", "--no-such-flag"],
        ["control", "."],
    ],
)
def test_bad_usage_exits_2_with_one_line_and_no_traceback(args: list[str], tmp_path: Path) -> None:
    result = termmon(*args, cwd=tmp_path)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr


def test_control_writes_control_json_and_clamps(runs: Path) -> None:
    run = runs / "healthy"
    result = termmon("control", str(run), "--log-every", "100000")
    assert result.returncode == 0, result.stderr
    assert "clamped" in result.stdout
    first = read_control(run)
    assert first is not None and first["log_every"] == 2000 and first["source"] == "termmon"
    termmon("control", str(run), "--log-every", "40")
    second = read_control(run)
    assert second is not None and second["log_every"] == 40 and second["seq"] == first["seq"] + 1  # type: ignore[operator]
    assert not [p for p in run.iterdir() if p.name.endswith(".tmp")], "no temp files left behind"


def test_control_on_a_read_only_run_dir_fails_clearly(runs: Path) -> None:
    if os.geteuid() == 0:
        pytest.skip("root can write to read-only directories")
    run = runs / "healthy"
    run.chmod(0o555)
    try:
        result = termmon("control", str(run), "--log-every", "40")
    finally:
        run.chmod(0o755)
    assert result.returncode == 1 and "cannot write" in result.stderr and "Traceback" not in result.stderr


def test_python_dash_m_and_version() -> None:
    result = termmon("--version")
    assert result.returncode == 0 and result.stdout.startswith("termmon ")


def test_the_monitor_with_stderr_redirected_says_so_instead_of_a_blank_screen(runs: Path) -> None:
    # Textual draws on stderr: into a file, the screen would be blank and wait for keys forever.
    result = termmon(str(runs))
    assert result.returncode == 2
    assert "stderr" in result.stderr and "--static" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.stderr
