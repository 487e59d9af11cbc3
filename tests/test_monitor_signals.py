"""SIGTERM and SIGHUP end the real monitor as `q` does: the terminal restored, the demo's files removed."""

from __future__ import annotations

import signal
import time
from pathlib import Path

import pytest

from tests.pty_terminal import read, termmon_in_pty

#: The sequence that leaves the alternate screen: sent by Textual when it restores the terminal.
LEAVE_ALT_SCREEN = b"\x1b[?1049l"


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP], ids=["SIGTERM", "SIGHUP"])
def test_a_signal_ends_the_demo_cleanly(tmp_path: Path, sig: signal.Signals) -> None:
    # TMPDIR: the demo's temporary copy of the runs goes here, where the test can see what is left.
    with termmon_in_pty("demo", env={"TMPDIR": str(tmp_path)}) as (proc, leader):
        seen = b""
        deadline = time.monotonic() + 90
        while b"denoiser_live" not in seen or b"alerts" not in seen:  # the first screen, the live run on it
            assert proc.poll() is None and time.monotonic() < deadline, f"no screen; got {seen[-400:]!r}"
            seen += read(leader, 0.5)
        assert any(tmp_path.glob("termmon-demo-*"))
        proc.send_signal(sig)
        after = b""
        while proc.poll() is None:
            assert time.monotonic() < deadline, "the monitor did not end on the signal"
            after += read(leader, 0.2)
        after += read(leader, 0.5)
        assert proc.returncode == 128 + sig
        assert LEAVE_ALT_SCREEN in after
        assert not any(tmp_path.glob("termmon-demo-*"))
