"""A command in a real terminal for the benchmarks: a detached tmux pane of a fixed size, on its own server.

Each pane gets a private tmux server (``tmux -L NAME``) so a benchmark never touches the user's sessions
and ``kill`` takes everything it started with it. Two uses: how many bytes a command sends to the
terminal (``terminal_bytes``, bench_tui) and when its first useful frame is on screen (``Pane.screen``
polled by bench_first_frame).
"""

from __future__ import annotations

import shlex
import shutil
import subprocess
import tempfile
import time
import uuid
from pathlib import Path
from types import TracebackType

PIPE_SECONDS = 10.0


def have_tmux() -> bool:
    return shutil.which("tmux") is not None


class Pane:
    """``command`` running alone in a ``width`` x ``height`` tmux pane until ``kill`` (or the ``with`` ends).

    ``started`` is the wall time (``time.time()``) at which the pane's shell was about to ``exec`` the
    command, written by the shell itself, so tmux's own server start is not counted as the command's.
    """

    def __init__(self, command: list[str], width: int = 120, height: int = 35) -> None:
        self.name = f"termmon-bench-{uuid.uuid4().hex[:10]}"
        self._tmux = ["tmux", "-L", self.name]
        self._dir = Path(tempfile.mkdtemp(prefix="termmon-pane-"))
        self._stamp = self._dir / "started"
        stamp, partial = shlex.quote(str(self._stamp)), shlex.quote(f"{self._stamp}.tmp")
        # Written whole (mv) so a reader never sees half a timestamp.
        shell = f"date +%s.%N > {partial} && mv {partial} {stamp} && exec {shlex.join(command)}"
        size = ["-x", str(width), "-y", str(height)]
        keep = [";", "set-option", "-t", self.name, "remain-on-exit", "on"]
        # remain-on-exit in the same tmux call: a command that dies at once leaves its last screen to read.
        subprocess.run(
            [*self._tmux, "-f", "/dev/null", "new-session", "-d", "-s", self.name, *size, shell, *keep],
            check=True,
        )

    @property
    def started(self) -> float | None:
        """The command's start (wall clock), once the pane's shell has written it."""
        try:
            return float(self._stamp.read_text())
        except (OSError, ValueError):
            return None

    def screen(self) -> str:
        """What the pane shows now, one line per row, without colours."""
        return subprocess.run(
            [*self._tmux, "capture-pane", "-p", "-t", self.name], capture_output=True, text=True, check=False
        ).stdout

    def pipe(self, out: Path | None) -> None:
        """Copy what the command writes to the terminal into ``out`` from now on; ``None`` stops it."""
        extra = ["-o", f"cat > {shlex.quote(str(out))}"] if out is not None else []
        # Stopping may find the command gone (the pane stays, dead): nothing is left to stop then.
        subprocess.run([*self._tmux, "pipe-pane", "-t", self.name, *extra], check=out is not None)

    def kill(self) -> None:
        subprocess.run([*self._tmux, "kill-server"], capture_output=True, check=False)
        shutil.rmtree(self._dir, ignore_errors=True)

    def __enter__(self) -> Pane:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.kill()


def terminal_bytes(command: list[str], seconds: float = PIPE_SECONDS, settle: float = 6.0) -> float | None:
    """Bytes a second that ``command`` sends to a real terminal (a tmux pane), after ``settle`` s."""
    if not have_tmux():
        return None
    out = Path(tempfile.mkdtemp(prefix="termmon-pipe-")) / "pane.out"
    try:
        with Pane(command) as pane:
            time.sleep(settle)  # past start-up and loading: only the steady state is measured
            pane.pipe(out)
            time.sleep(seconds)
            pane.pipe(None)
        return out.stat().st_size / seconds if out.exists() else 0.0
    finally:
        shutil.rmtree(out.parent, ignore_errors=True)
