"""The real ``termmon`` command on a real pseudo-terminal (120x35), for the tests that watch its bytes."""

from __future__ import annotations

import os
import select
import struct
import subprocess
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

import pytest

pty = pytest.importorskip("pty")
fcntl = pytest.importorskip("fcntl")
termios = pytest.importorskip("termios")
REPO = Path(__file__).resolve().parents[1]


def read(fd: int, timeout: float) -> bytes:
    """What the terminal received within ``timeout`` seconds (b"" if nothing, or once it closed)."""
    ready, _, _ = select.select([fd], [], [], timeout)
    if not ready:
        return b""
    try:
        return os.read(fd, 65536)
    except OSError:
        return b""


@contextmanager
def termmon_in_pty(*args: str, env: Mapping[str, str] = {}) -> Iterator[tuple[subprocess.Popen[bytes], int]]:
    """``python -m termmon ARGS`` with stdin, stdout and stderr on a fresh 120x35 pty: the process and the
    pty's leader end to read from. The process is ended (terminate, then kill) and the pty closed after."""
    leader, follower = pty.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 35, 120, 0, 0))
    proc = subprocess.Popen(
        [sys.executable, "-m", "termmon", *args],
        cwd=REPO,
        stdin=follower,
        stdout=follower,
        stderr=follower,
        env={**os.environ, "TERM": "xterm-256color", "COLUMNS": "120", "LINES": "35", **env},
        start_new_session=True,
    )
    os.close(follower)
    try:
        yield proc, leader
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        os.close(leader)
