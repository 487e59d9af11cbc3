"""One long-lived ``ssh HOST sh`` per host: scripts go down its stdin, framed replies come up stdout.

Why one process and not ssh per command: one TCP connection and one authentication per host for the
whole session (what ControlMaster gives, without a socket path to manage), and every byte in both
directions passes through our pipes, so the cost is measured exactly (``bytes_out``/``bytes_in``).

Nothing here ever waits without a deadline: pipes are non-blocking and every read has one, so a host
that stops answering costs a timeout, never a hang. BatchMode makes ssh fail instead of prompting.
"""

from __future__ import annotations

import contextlib
import os
import select
import shlex
import subprocess
import threading
import time

from termmon.remote.paths import RemotePath

SSH_COMMAND_ENV = "TERMMON_SSH_COMMAND"
CONNECT_TIMEOUT_SECONDS = 10
#: ssh drops a connection after this many seconds of silence from the server (interval x count).
SERVER_ALIVE = (5, 3)
READY = b"TERMMON-READY"
_STDERR_KEEP = 4096


class TransportError(Exception):
    """The connection failed or broke: ``host: reason``, one line for the user."""

    def __init__(self, host: str, reason: str) -> None:
        super().__init__(f"{host}: {reason}")
        self.reason = reason


def ssh_base() -> list[str]:
    """The ssh command: ``$TERMMON_SSH_COMMAND`` split like a shell would (as git's GIT_SSH_COMMAND)."""
    custom = os.environ.get(SSH_COMMAND_ENV, "").strip()
    return shlex.split(custom) if custom else ["ssh"]


def ssh_argv(remote: RemotePath, command: str) -> list[str]:
    """argv for running ``command`` on the remote. The user's ssh config still applies; these options
    only forbid prompts, bound the connect and detect a dead link."""
    argv = [
        *ssh_base(),
        "-T",
        "-o",
        "BatchMode=yes",
        "-o",
        f"ConnectTimeout={CONNECT_TIMEOUT_SECONDS}",
        "-o",
        f"ServerAliveInterval={SERVER_ALIVE[0]}",
        "-o",
        f"ServerAliveCountMax={SERVER_ALIVE[1]}",
        "-o",
        "Compression=yes",
    ]
    if remote.user:
        argv += ["-l", remote.user]
    if remote.port:
        argv += ["-p", str(remote.port)]
    return [*argv, "--", remote.destination, command]


def one_line(text: str, limit: int = 200) -> str:
    """Remote or ssh text made safe for a terminal: control characters escaped, one line, bounded."""
    out = "".join(ch if ch.isprintable() else repr(ch)[1:-1] for ch in text.strip())
    return out if len(out) <= limit else out[: limit - 1] + "…"


class SshSession:
    """A remote ``sh`` reading our scripts. Not thread-safe: one caller at a time (the syncer's lock)."""

    def __init__(self, remote: RemotePath, prelude: str) -> None:
        self.remote = remote
        self.prelude = prelude
        self.bytes_out = 0
        self.bytes_in = 0
        self.clock_offset = 0.0  # local time minus remote time, measured at connect
        self.shell: object = None
        self._proc: subprocess.Popen[bytes] | None = None
        self._buf = bytearray()
        self._out = bytearray()
        self._stderr = bytearray()
        self._stderr_thread: threading.Thread | None = None

    @property
    def alive(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def open(self, timeout: float = CONNECT_TIMEOUT_SECONDS + 10) -> None:
        """Start ssh and wait until the remote shell has run the prelude; raise TransportError."""
        self.close()
        try:
            proc = subprocess.Popen(
                ssh_argv(self.remote, "sh"),
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                start_new_session=True,  # a Ctrl-C in the terminal is the monitor's, not ssh's
            )
        except OSError as exc:
            raise TransportError(self.remote.host_key, f"cannot run {ssh_base()[0]}: {exc.strerror}") from exc
        assert proc.stdin and proc.stdout and proc.stderr
        self._proc = proc
        self.shell = object()  # a new remote shell: what an earlier one was told is gone
        self._buf.clear()
        self._out.clear()
        self._stderr.clear()
        os.set_blocking(proc.stdin.fileno(), False)
        self._stderr_thread = threading.Thread(
            target=self._drain_stderr, args=(proc.stderr,), name="termmon-ssh-stderr", daemon=True
        )
        self._stderr_thread.start()
        deadline = time.monotonic() + timeout
        self.send(self.prelude + "\necho TERMMON-READY $(date +%s)\n")
        # A remote rc file may print before our shell starts: skip lines until the marker.
        for _ in range(1000):
            line = self.readline(deadline)
            if line.startswith(READY):
                with contextlib.suppress(ValueError, IndexError):
                    self.clock_offset = time.time() - float(line.split()[1])
                return
        raise TransportError(self.remote.host_key, "the remote shell did not start")

    def close(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None:
            return
        with contextlib.suppress(OSError):
            assert proc.stdin is not None
            proc.stdin.close()
        try:
            proc.wait(timeout=2)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=2)
        with contextlib.suppress(OSError):
            assert proc.stdout is not None
            proc.stdout.close()

    # --- IO -----------------------------------------------------------------------------------------------
    def send(self, script: str) -> None:
        """Queue a script; it is written while replies are read (so neither pipe can fill and deadlock)."""
        self._out += script.encode("utf-8", "surrogateescape")
        self._pump(time.monotonic() + 30, want_read=False)

    def readline(self, deadline: float) -> bytes:
        """One line of the reply, without its newline."""
        while True:
            cut = self._buf.find(b"\n")
            if cut >= 0:
                line = bytes(self._buf[:cut])
                del self._buf[: cut + 1]
                return line
            self._pump(deadline)

    def read(self, n: int, deadline: float) -> bytes:
        while len(self._buf) < n:
            self._pump(deadline)
        data = bytes(self._buf[:n])
        del self._buf[:n]
        return data

    def _pump(self, deadline: float, *, want_read: bool = True) -> None:
        """Write what is queued and read what is there, until some input arrived (or, with
        ``want_read=False``, until the queue is written); raise TransportError at the deadline."""
        proc = self._proc
        if proc is None:
            raise TransportError(self.remote.host_key, "not connected")
        assert proc.stdin and proc.stdout
        out_fd, in_fd = proc.stdin.fileno(), proc.stdout.fileno()
        while want_read or self._out:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TransportError(self.remote.host_key, "no answer (timed out)")
            readable, writable, _ = select.select([in_fd], [out_fd] if self._out else [], [], remaining)
            if writable:
                try:
                    n = os.write(out_fd, self._out[: 1 << 16])
                except BlockingIOError:
                    n = 0
                except OSError as exc:
                    raise self._broken() from exc
                del self._out[:n]
                self.bytes_out += n
            if readable:
                chunk = os.read(in_fd, 1 << 20)
                if not chunk:
                    raise self._broken()
                self._buf += chunk
                self.bytes_in += len(chunk)
                if want_read:
                    return

    def _broken(self) -> TransportError:
        """The session ended: why, in ssh's own words (its last stderr line)."""
        proc = self._proc
        if proc is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=2)
        if self._stderr_thread is not None:
            self._stderr_thread.join(timeout=1)
        lines = [line for line in self._stderr.decode("utf-8", "replace").splitlines() if line.strip()]
        reason = lines[-1] if lines else "connection closed"
        self.close()
        return TransportError(self.remote.host_key, one_line(reason))

    def _drain_stderr(self, stream: object) -> None:
        read = getattr(stream, "read1", None)
        if read is None:
            return
        while chunk := read(4096):
            self._stderr += chunk
            if len(self._stderr) > _STDERR_KEEP:
                del self._stderr[:-_STDERR_KEEP]
