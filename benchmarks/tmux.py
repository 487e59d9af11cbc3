"""A command in a real terminal for the benchmarks: a detached tmux pane of a fixed size, on its own server.

Each pane gets a private tmux server (``tmux -L NAME``) so a benchmark never touches the user's sessions
and ``kill`` takes everything it started with it. The one tmux helper of the benchmarks: how many bytes a
command sends to the terminal (``terminal_bytes``, bench_tui), when its first useful frame is on screen
(``Pane.screen`` polled by bench_first_frame), and how much CPU it uses while it draws there
(``cpu_percent`` of ``Pane.pid``, bench_live and bench_many).
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import tempfile
import time
import uuid
from functools import cached_property
from pathlib import Path
from types import TracebackType

PIPE_SECONDS = 10.0
TICKS = os.sysconf("SC_CLK_TCK")


def have_tmux() -> bool:
    return shutil.which("tmux") is not None


class Pane:
    """``command`` running alone in a ``width`` x ``height`` tmux pane until ``kill`` (or the ``with`` ends).

    ``started`` is the wall time (``time.time()``) at which the pane's shell was about to ``exec`` the
    command, written by the shell itself, so tmux's own server start is not counted as the command's.
    ``cwd`` is where the command starts (``python -m termmon`` imports the termmon found there).
    """

    def __init__(
        self, command: list[str], width: int = 120, height: int = 35, cwd: Path | None = None
    ) -> None:
        self.name = f"termmon-bench-{uuid.uuid4().hex[:10]}"
        self._tmux = ["tmux", "-L", self.name]
        self._dir = Path(tempfile.mkdtemp(prefix="termmon-pane-"))
        self._stamp = self._dir / "started"
        stamp, partial = shlex.quote(str(self._stamp)), shlex.quote(f"{self._stamp}.tmp")
        # Written whole (mv) so a reader never sees half a timestamp.
        shell = f"date +%s.%N > {partial} && mv {partial} {stamp} && exec {shlex.join(command)}"
        window = ["-x", str(width), "-y", str(height), *(["-c", str(cwd)] if cwd is not None else [])]
        keep = [";", "set-option", "-t", self.name, "remain-on-exit", "on"]
        # remain-on-exit in the same tmux call: a command that dies at once leaves its last screen to read.
        subprocess.run(
            [*self._tmux, "-f", "/dev/null", "new-session", "-d", "-s", self.name, *window, shell, *keep],
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

    @cached_property
    def pid(self) -> int:
        """The command's process id: the pane's shell ``exec``s it, so the shell's pid is the command's.

        Asked of tmux on first use only, so a pane that never needs it (bench_first_frame) starts polling
        its screen no later than before.
        """
        out = subprocess.run(
            [*self._tmux, "display-message", "-p", "-t", self.name, "#{pane_pid}"],
            check=True,
            capture_output=True,
            text=True,
        )
        return int(out.stdout.strip())

    def wait_for(self, needle: str, timeout: float = 120.0) -> None:
        """Until ``needle`` is on screen (the condition a measurement starts from)."""
        deadline = time.monotonic() + timeout
        while needle not in (screen := self.screen()):
            if time.monotonic() > deadline:
                raise TimeoutError(f"{needle!r} not on screen after {timeout:.0f} s:\n{screen}")
            time.sleep(0.2)

    def keys(self, *keys: str) -> None:
        """Type ``keys`` into the pane (tmux ``send-keys`` names: ``q``, ``Enter``, ``C-c``)."""
        subprocess.run([*self._tmux, "send-keys", "-t", self.name, *keys], check=False)

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


def cpu_seconds(pid: int, thread: int | None = None) -> float:
    """utime + stime of ``pid`` (every thread), or of one ``thread`` of it, from /proc: CPU the process
    really used, whatever else the loaded machine runs meanwhile."""
    path = f"/proc/{pid}/stat" if thread is None else f"/proc/{pid}/task/{thread}/stat"
    # The command name (field 2) may hold spaces and parentheses: split after its closing one.
    fields = Path(path).read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS  # utime, stime (fields 14 and 15)


def cpu_percent(pid: int, seconds: float) -> tuple[float, float]:
    """Percent of one core ``pid`` uses over the next ``seconds``: the whole process (every thread), and
    its main thread alone (for a Textual app its event loop: alerts, layout, drawing), both over the
    same window so they can be compared."""
    wall0, cpu0, main0 = time.monotonic(), cpu_seconds(pid), cpu_seconds(pid, pid)
    time.sleep(seconds)
    cpu1, main1, wall1 = cpu_seconds(pid), cpu_seconds(pid, pid), time.monotonic()
    return (cpu1 - cpu0) / (wall1 - wall0) * 100, (main1 - main0) / (wall1 - wall0) * 100


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
