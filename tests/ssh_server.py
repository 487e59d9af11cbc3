"""A real OpenSSH server for the remote tests: Debian's sshd on 127.0.0.1, a free port, throwaway keys.

Everything lives in one temporary directory: the host key, the user key, sshd_config (no PAM, no
strict modes, keys only, its own pid file) and an ssh_config with two host aliases for the same
server, so "two hosts" can be watched at once. Tests point termmon at it with
``TERMMON_SSH_COMMAND="ssh -F <dir>/ssh_config"``. Also used by benchmarks/bench_remote.py.
"""

from __future__ import annotations

import contextlib
import getpass
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

SSHD = shutil.which("sshd") or next(
    (p for p in ("/usr/sbin/sshd", "/usr/local/sbin/sshd") if os.path.exists(p)), None
)
ALIASES = ("hosta", "hostb", "hostc", "hostd")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class SshServer:
    dir: Path
    port: int
    proc: subprocess.Popen[bytes]

    @property
    def ssh_config(self) -> Path:
        return self.dir / "ssh_config"

    @property
    def ssh_command(self) -> str:
        return f"ssh -F {self.ssh_config}"

    def env(self) -> dict[str, str]:
        return {**os.environ, "TERMMON_SSH_COMMAND": self.ssh_command}

    def session_pids(self) -> list[int]:
        """The per-connection sshd processes (children of the listener), to kill a session."""
        children: dict[int, list[int]] = {}
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
            children.setdefault(ppid, []).append(int(entry))
        out: list[int] = []
        todo = list(children.get(self.proc.pid, []))
        while todo:
            pid = todo.pop()
            out.append(pid)
            todo += children.get(pid, [])
        return out

    def kill_sessions(self) -> int:
        pids = self.session_pids()
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        return len(pids)


def _keygen(path: Path, kind: str = "ed25519") -> None:
    subprocess.run(
        ["ssh-keygen", "-q", "-t", kind, "-N", "", "-f", str(path)], check=True, stdout=subprocess.DEVNULL
    )


@contextlib.contextmanager
def ssh_server(tmp: Path) -> Iterator[SshServer]:
    """Start sshd; yields once it accepts logins. Raises RuntimeError when it cannot start."""
    if SSHD is None:
        raise RuntimeError("sshd is not installed (apt-get install openssh-server)")
    tmp.mkdir(parents=True, exist_ok=True)
    os.chmod(tmp, 0o700)
    _keygen(tmp / "host_key")
    _keygen(tmp / "user_key")
    _keygen(tmp / "other_key")
    shutil.copy(tmp / "user_key.pub", tmp / "authorized_keys")
    port = free_port()
    user = getpass.getuser()
    (tmp / "sshd_config").write_text(
        f"""Port {port}
ListenAddress 127.0.0.1
HostKey {tmp}/host_key
PidFile {tmp}/sshd.pid
AuthorizedKeysFile {tmp}/authorized_keys
UsePAM no
StrictModes no
PasswordAuthentication no
KbdInteractiveAuthentication no
PubkeyAuthentication yes
PermitRootLogin prohibit-password
AllowUsers {user}
MaxStartups 200
MaxSessions 200
LogLevel ERROR
"""
    )
    known = f"[127.0.0.1]:{port} " + (tmp / "host_key.pub").read_text().split(" ", 2)[1]
    (tmp / "known_hosts").write_text(
        "\n".join(
            f"[{alias}]:{port} ssh-ed25519 {known.split(' ', 1)[1]}" for alias in ("127.0.0.1", *ALIASES)
        )
        + "\n"
    )
    common = f"""  HostName 127.0.0.1
  Port {port}
  User {user}
  IdentityFile {tmp}/user_key
  IdentitiesOnly yes
  UserKnownHostsFile {tmp}/known_hosts
  StrictHostKeyChecking yes
  LogLevel ERROR
"""
    blocks = [f"Host {alias}\n{common}" for alias in ALIASES]
    # Same server, but its key is not in known_hosts: BatchMode must fail, not ask.
    blocks.append(
        common.replace(f"{tmp}/known_hosts", f"{tmp}/empty_known_hosts").join(["Host stranger\n", ""])
    )
    # Same server, a key it does not accept: it would want a password, which BatchMode never asks for.
    blocks.append(common.replace(f"{tmp}/user_key", f"{tmp}/other_key").join(["Host nokey\n", ""]))
    # Nobody listens on this port.
    blocks.append(
        f"Host deadhost\n  HostName 127.0.0.1\n  Port {free_port()}\n  User {user}\n  LogLevel ERROR\n"
    )
    # Accepts TCP connections (the kernel's backlog) but never says a word: a hung host.
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(64)
    blocks.append(
        f"Host silent\n  HostName 127.0.0.1\n  Port {silent.getsockname()[1]}\n  User {user}\n  LogLevel ERROR\n"
    )
    (tmp / "empty_known_hosts").write_text("")
    (tmp / "ssh_config").write_text("\n".join(blocks))
    if os.geteuid() == 0:
        os.makedirs("/run/sshd", mode=0o755, exist_ok=True)
    log = open(tmp / "sshd.log", "wb")  # noqa: SIM115
    proc = subprocess.Popen([SSHD, "-D", "-e", "-f", str(tmp / "sshd_config")], stdout=log, stderr=log)
    server = SshServer(tmp, port, proc)
    try:
        deadline = time.monotonic() + 30
        while True:
            probe = subprocess.run(
                ["ssh", "-F", str(server.ssh_config), "-o", "BatchMode=yes", "hosta", "true"],
                capture_output=True,
                timeout=30,
            )
            if probe.returncode == 0:
                break
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(
                    "sshd did not start: "
                    + (tmp / "sshd.log").read_text(errors="replace")[-500:]
                    + probe.stderr.decode(errors="replace")[-300:]
                )
            time.sleep(0.1)
        yield server
    finally:
        silent.close()
        proc.terminate()
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=5)
        if proc.poll() is None:
            proc.kill()
        log.close()
