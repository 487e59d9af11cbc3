"""SIGTERM and SIGHUP end the real monitor as `q` does: the terminal restored, the demo's files removed."""

from __future__ import annotations

import os
import select
import signal
import struct
import subprocess
import sys
import time
from pathlib import Path

import pytest

pty = pytest.importorskip("pty")
fcntl = pytest.importorskip("fcntl")
termios = pytest.importorskip("termios")
REPO = Path(__file__).resolve().parents[1]
#: The sequence that leaves the alternate screen: sent by Textual when it restores the terminal.
LEAVE_ALT_SCREEN = b"\x1b[?1049l"


def _read(fd: int, timeout: float) -> bytes:
    ready, _, _ = select.select([fd], [], [], timeout)
    if not ready:
        return b""
    try:
        return os.read(fd, 65536)
    except OSError:
        return b""


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP], ids=["SIGTERM", "SIGHUP"])
def test_a_signal_ends_the_demo_cleanly(tmp_path: Path, sig: signal.Signals) -> None:
    leader, follower = pty.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 35, 120, 0, 0))
    # TMPDIR: the demo's temporary copy of the runs goes here, where the test can see what is left.
    env = {**os.environ, "TERM": "xterm-256color", "TMPDIR": str(tmp_path)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "termmon", "demo"],
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
        deadline = time.monotonic() + 90
        while b"denoiser_live" not in seen or b"alerts" not in seen:  # the first screen, the live run on it
            assert proc.poll() is None and time.monotonic() < deadline, f"no screen; got {seen[-400:]!r}"
            seen += _read(leader, 0.5)
        assert any(tmp_path.glob("termmon-demo-*"))
        proc.send_signal(sig)
        after = b""
        while proc.poll() is None:
            assert time.monotonic() < deadline, "the monitor did not end on the signal"
            after += _read(leader, 0.2)
        after += _read(leader, 0.5)
        assert proc.returncode == 128 + sig
        assert LEAVE_ALT_SCREEN in after
        assert not any(tmp_path.glob("termmon-demo-*"))
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        os.close(leader)
