"""The real monitor on a real pseudo-terminal sends nothing while nothing changes (0 bytes idle)."""

from __future__ import annotations

import os
import select
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.tui_fixtures import T0, workspace_dir

pty = pytest.importorskip("pty")
fcntl = pytest.importorskip("fcntl")
termios = pytest.importorskip("termios")
REPO = Path(__file__).resolve().parents[1]


def _read(fd: int, timeout: float) -> bytes:
    ready, _, _ = select.select([fd], [], [], timeout)
    if not ready:
        return b""
    try:
        return os.read(fd, 65536)
    except OSError:
        return b""


def test_idle_monitor_writes_nothing_to_its_terminal(tmp_path: Path) -> None:
    import struct

    runs = workspace_dir(tmp_path / "runs")
    for path in runs.rglob("*"):  # written on a day long past: "last record 2d ago" does not tick
        os.utime(path, (T0, T0))
    leader, follower = pty.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 35, 120, 0, 0))
    env = {**os.environ, "TERM": "xterm-256color", "COLUMNS": "120", "LINES": "35"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "termmon", str(runs)],
        cwd=REPO,
        stdin=follower,
        stdout=follower,
        stderr=follower,
        env=env,
        start_new_session=True,
    )
    os.close(follower)
    try:
        seen = b""
        deadline = time.monotonic() + 60
        # Condition 1: the first complete screen (a chart's x axis and the alert log are drawn).
        while not (b"step" in seen and b"alerts" in seen and b"lora_b" in seen):
            assert time.monotonic() < deadline, f"no complete screen; got {seen[-400:]!r}"
            seen += _read(leader, 0.5)
        # Condition 2: loading has settled (a full second without output).
        while _read(leader, 1.0):
            assert time.monotonic() < deadline, "the monitor never went quiet"
        # Idle: nothing changes on disk, so nothing may reach the terminal.
        sent = b""
        end = time.monotonic() + 2.0
        while (left := end - time.monotonic()) > 0:
            sent += _read(leader, left)
        assert sent == b"", f"{len(sent)} bytes sent while idle: {sent!r}"
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        os.close(leader)
