"""The real monitor on a real pseudo-terminal sends nothing while nothing changes (0 bytes idle)."""

from __future__ import annotations

import os
import time
from pathlib import Path

from tests.pty_terminal import read, termmon_in_pty
from tests.tui_fixtures import T0, workspace_dir


def test_idle_monitor_writes_nothing_to_its_terminal(tmp_path: Path) -> None:
    runs = workspace_dir(tmp_path / "runs")
    for path in runs.rglob("*"):  # written on a day long past: "last record 2d ago" does not tick
        os.utime(path, (T0, T0))
    with termmon_in_pty(str(runs)) as (_, leader):
        seen = b""
        deadline = time.monotonic() + 60
        # Condition 1: the first complete screen (a chart's x axis and the alert log are drawn).
        while not (b"step" in seen and b"alerts" in seen and b"lora_b" in seen):
            assert time.monotonic() < deadline, f"no complete screen; got {seen[-400:]!r}"
            seen += read(leader, 0.5)
        # Condition 2: loading has settled (a full second without output).
        while read(leader, 1.0):
            assert time.monotonic() < deadline, "the monitor never went quiet"
        # Idle: nothing changes on disk, so nothing may reach the terminal.
        sent = b""
        end = time.monotonic() + 2.0
        while (left := end - time.monotonic()) > 0:
            sent += read(leader, left)
        assert sent == b"", f"{len(sent)} bytes sent while idle: {sent!r}"
