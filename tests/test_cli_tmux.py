"""The real ``termmon`` command in a real terminal (tmux): it draws, takes keys, writes control.json, quits 0."""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.tui_fixtures import workspace_dir

pytestmark = pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed")
REPO = Path(__file__).resolve().parents[1]


def _wait(condition: Callable[[], bool], screen: Callable[[], str], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out; the screen:\n{screen()}")
        time.sleep(0.2)


@pytest.mark.parametrize("size", [(120, 35), (80, 24)])
def test_termmon_under_tmux(tmp_path: Path, size: tuple[int, int]) -> None:
    runs = workspace_dir(tmp_path / "runs")
    exit_file = tmp_path / "exit"
    session = f"termmon-test-{uuid.uuid4().hex[:8]}"
    tmux = ["tmux", "-L", session]  # a private server: the user's sessions (and `tmux kill-server`) apart
    command = (
        f"cd {shlex.quote(str(REPO))} && {shlex.quote(sys.executable)} -m termmon {shlex.quote(str(runs))}; "
        f"echo $? > {shlex.quote(str(exit_file))}"
    )
    env = {**os.environ, "TERM": "xterm-256color"}
    subprocess.run(
        [*tmux, "new-session", "-d", "-s", session, "-x", str(size[0]), "-y", str(size[1]), command],
        check=True,
        env=env,
    )

    def screen() -> str:
        return subprocess.run(
            [*tmux, "capture-pane", "-p", "-t", session], capture_output=True, text=True, check=False
        ).stdout

    def status_line() -> str:
        lines = screen().splitlines()
        return lines[1] if len(lines) > 1 else ""

    try:
        # The whole layout: picker, a panel with data (x axis "step"), the alert log.
        _wait(
            lambda: all(word in screen() for word in ("blobs_a", "step", "silhouette", "alerts", "runs")),
            screen,
        )
        # blobs_a has finished, so its keys write nothing; the next run's files were just written: live.
        subprocess.run([*tmux, "send-keys", "-t", session, "j"], check=True)
        _wait(lambda: "diverging_c running" in status_line(), screen)
        subprocess.run([*tmux, "send-keys", "-t", session, "+", "+"], check=True)
        control = runs / "diverging_c" / "control.json"
        _wait(control.exists, screen)
        assert json.loads(control.read_text())["log_every"] == 40
        _wait(lambda: "requested, was 10" in screen(), screen)
        subprocess.run([*tmux, "send-keys", "-t", session, "q"], check=True)
        # The shell creates the file before it writes the status: wait for the status itself.
        _wait(lambda: exit_file.exists() and exit_file.read_text().strip() != "", screen)
        assert exit_file.read_text().strip() == "0"
    finally:
        subprocess.run([*tmux, "kill-server"], capture_output=True, check=False)
