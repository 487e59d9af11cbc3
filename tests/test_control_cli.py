"""``termmon control`` as several users run it at once: seq never reused, clear errors, sane modes."""

from __future__ import annotations

import json
import os
import re
import stat
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

#: Presses `+` N times through the CLI's entry point, printing what each press wrote.
PRESSER = textwrap.dedent(
    """
    import os, sys, time
    from termmon.cli import main

    run, count, go = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    print("ready", flush=True)
    while not os.path.exists(go):  # both writers start together
        time.sleep(0.001)
    for i in range(count):
        assert main(["control", run, "--log-every", str(10 + i % 50)]) == 0
    """
)


def _run_dir(tmp_path: Path) -> Path:
    run = tmp_path / "run"
    run.mkdir()
    (run / "metrics.jsonl").write_text(json.dumps({"event": "start", "time": 1.0, "run_name": "run"}) + "\n")
    return run


def _termmon(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "termmon", *args], capture_output=True, text=True, timeout=120
    )


def test_two_writers_pressing_plus_on_one_run_never_reuse_a_seq(tmp_path: Path) -> None:
    run = _run_dir(tmp_path)
    script = tmp_path / "presser.py"
    script.write_text(PRESSER)
    go = tmp_path / "go"
    count = 300
    writers = [
        subprocess.Popen(
            [sys.executable, str(script), str(run), str(count), str(go)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    for w in writers:
        assert w.stdout is not None and w.stdout.readline() == "ready\n"
    go.touch()
    outputs = [w.communicate(timeout=300) for w in writers]
    for w, (_, err) in zip(writers, outputs, strict=True):
        assert w.returncode == 0, err
    seqs = [int(s) for out, _ in outputs for s in re.findall(r"\[seq (\d+)\]", out)]
    assert len(seqs) == 2 * count
    assert sorted(seqs) == list(range(1, 2 * count + 1))  # each number once, none skipped
    assert json.loads((run / "control.json").read_text())["seq"] == 2 * count


def test_control_json_is_written_with_the_umask_mode(tmp_path: Path) -> None:
    run = _run_dir(tmp_path)
    old = os.umask(0o022)
    try:
        result = _termmon("control", str(run), "--log-every", "40")
    finally:
        os.umask(old)
    assert result.returncode == 0, result.stderr
    assert stat.S_IMODE((run / "control.json").stat().st_mode) == 0o644


def test_control_json_that_cannot_be_replaced_fails_with_one_clear_line(tmp_path: Path) -> None:
    run = _run_dir(tmp_path)
    (run / "control.json").mkdir()  # os.replace onto a directory fails, even as root
    result = _termmon("control", str(run), "--log-every", "40")
    assert result.returncode == 1
    assert result.stderr.strip() == f"cannot write {run / 'control.json'}: Is a directory"


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads and writes regardless of mode")
def test_control_on_another_users_files_says_whose_and_what_to_do(tmp_path: Path) -> None:
    run = _run_dir(tmp_path)
    (run / "control.json").write_text(json.dumps({"log_every": 10, "seq": 7}))
    (run / "control.json").chmod(0)
    result = _termmon("control", str(run), "--log-every", "40")
    assert result.returncode == 1 and len(result.stderr.strip().splitlines()) == 1
    assert "cannot read" in result.stderr and "owned by" in result.stderr
    (run / "control.json").chmod(0o644)
    run.chmod(0o555)
    try:
        result = _termmon("control", str(run), "--log-every", "40")
    finally:
        run.chmod(0o755)
    assert result.returncode == 1 and "cannot write" in result.stderr and "g+w" in result.stderr
