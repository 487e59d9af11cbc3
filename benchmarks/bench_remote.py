"""Remote-run benchmark: runs read over the system's ssh from a real sshd on 127.0.0.1.

* append -> model latency over loopback ssh, at the default 2 s host poll and at 0.25 s; the floor is
  the same run on local disk with filesystem events;
* bytes per new record, through ssh's pipes (what termmon sends and receives) and on the wire (after
  ssh's compression and encryption: the ssh client's own socket traffic, from /proc/PID/io), against
  the record's own size;
* idle bytes per minute per host (one run, and 25 runs on the host);
* 100 remote runs on 4 host aliases, each appending a record a second, then idle: CPU and RSS of the
  monitor process and of its ssh clients; the floor is the same 100 runs watched on local disk.

Needs sshd (``apt-get install openssh-server``). Run: ``python -m benchmarks.bench_remote`` (~3 min).
"""

from __future__ import annotations

import json
import statistics
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

import psutil

from termmon.ingest.watch import ChangeWatcher
from termmon.model.workspace import Workspace
from termmon.remote import registry
from termmon.remote.syncer import DEFAULT_POLL_SECONDS, HostSyncer
from termmon.remote.transport import SSH_COMMAND_ENV
from tests.ssh_server import ALIASES, SshServer, ssh_server

RECORD = {"event": "step", "time": 1767225600.0, "step": 0, "train_loss": 0.123456, "lr": 0.001,
          "grad_norm": 0.54321, "samples_per_sec": 1234.5, "sec_per_step": 0.0123}  # fmt: skip


def record(i: int) -> bytes:
    return json.dumps({**RECORD, "step": i, "time": RECORD["time"] + i}).encode() + b"\n"


def write_run(run_dir: Path, records: int = 50) -> None:
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "metrics.jsonl").write_bytes(b"".join(record(i) for i in range(records)))


def append(run_dir: Path, i: int) -> None:
    with open(run_dir / "metrics.jsonl", "ab") as fh:
        fh.write(record(i))


class Watched:
    """A Workspace kept current by a ChangeWatcher, as the monitor does (remote hosts sync live)."""

    def __init__(self, paths: list[str], poll: float | None) -> None:
        self.workspace = Workspace(paths)
        self.workspace.refresh()
        self.seen = threading.Condition()
        self.watcher = ChangeWatcher(self.workspace.roots, self._changed, poll_interval=poll)

    def _changed(self) -> None:
        self.workspace.refresh()
        with self.seen:
            self.seen.notify_all()

    def wait(self, condition: Callable[[], bool], timeout: float = 30) -> None:
        with self.seen:
            if not self.seen.wait_for(condition, timeout=timeout):
                raise RuntimeError("timed out")

    def __enter__(self) -> Watched:
        self.watcher.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.watcher.stop()
        self.workspace.close()


def syncers() -> list[HostSyncer]:
    return list(registry._syncers.values())


def pipe_bytes() -> int:
    return sum(s.session.bytes_in + s.session.bytes_out for s in syncers())


def ssh_pids() -> list[int]:
    pids = []
    for s in syncers():
        proc = s.session._proc
        if proc is not None and proc.poll() is None:
            pids.append(proc.pid)
    return pids


def wire_bytes() -> int:
    """Socket traffic of the ssh clients: all their reads and writes, less what went through our pipes."""
    total = 0
    for pid in ssh_pids():
        io = psutil.Process(pid).io_counters()
        total += io.read_chars + io.write_chars
    return total - pipe_bytes()


def latency(paths: list[str], run_dir: Path, poll: float | None, appends: int = 15) -> list[float]:
    out = []
    with Watched(paths, poll) as watched:
        run = next(iter(watched.workspace.runs.values()))
        time.sleep(0.5)
        base = run.last_step or 0
        for i in range(base + 1, base + appends + 1):
            # Start at a random phase of the poll, as a trainer's writes fall.
            time.sleep(0.05 + (i * 0.37) % (poll or DEFAULT_POLL_SECONDS))
            started = time.perf_counter()
            append(run_dir, i)
            watched.wait(lambda i=i: run.last_step == i)
            out.append(time.perf_counter() - started)
    registry.shutdown()
    return out


def bytes_per_record(path: str, run_dir: Path, records: int = 200) -> tuple[float, float]:
    with Watched([path], 0.25) as watched:
        run = next(iter(watched.workspace.runs.values()))
        time.sleep(1)
        pipe0, wire0, base = pipe_bytes(), wire_bytes(), run.last_step or 0
        for i in range(base + 1, base + records + 1):
            append(run_dir, i)
            time.sleep(0.25)  # one record per poll: the worst case for overhead per record
        watched.wait(lambda: run.last_step == base + records)
        pipe, wire = pipe_bytes() - pipe0, wire_bytes() - wire0
    registry.shutdown()
    # Less what the same time costs when idle, so the figure is the record's own cost.
    return pipe / records, wire / records


def idle_per_minute(paths: list[str], seconds: float = 30.0) -> tuple[float, float]:
    with Watched(paths, None):
        time.sleep(3)
        pipe0, wire0 = pipe_bytes(), wire_bytes()
        time.sleep(seconds)
        pipe, wire = pipe_bytes() - pipe0, wire_bytes() - wire0
        hosts = len(syncers())
    registry.shutdown()
    scale = 60.0 / seconds / hosts
    return pipe * scale, wire * scale


def fleet(paths: list[str], dirs: list[Path], seconds: float = 20.0) -> dict[str, float]:
    """CPU (% of one core, monitor + its ssh clients) while every run appends 1 record/s, then idle."""
    me = psutil.Process()
    with Watched(paths, None) as watched:
        time.sleep(3)

        def cpu_over(active: bool) -> float:
            procs = [me, *(psutil.Process(p) for p in ssh_pids())]
            before = sum(sum(p.cpu_times()[:2]) for p in procs)
            started = time.monotonic()
            i = 10_000
            while time.monotonic() - started < seconds:
                if active:
                    for d in dirs:
                        append(d, i)
                    i += 1
                time.sleep(1.0)
            used = sum(sum(p.cpu_times()[:2]) for p in procs) - before
            return 100.0 * used / (time.monotonic() - started)

        active = cpu_over(True)
        idle = cpu_over(False)
        assert len(watched.workspace.runs) == len(dirs)
        rss = me.memory_info().rss / 2**20
        ssh_rss = sum(psutil.Process(p).memory_info().rss for p in ssh_pids()) / 2**20
    registry.shutdown()
    return {"active": active, "idle": idle, "rss": rss, "ssh_rss": ssh_rss}


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="termmon-bench-") as tmp_name:
        tmp = Path(tmp_name)
        with ssh_server(tmp / "sshd") as server:
            import os

            os.environ[SSH_COMMAND_ENV] = server.ssh_command
            report(server, tmp)


def report(server: SshServer, tmp: Path) -> None:
    one = tmp / "one" / "run"
    write_run(one)
    local = sorted(latency([str(one)], one, None))
    remote_default = sorted(latency([f"hosta:{one}"], one, None))
    remote_fast = sorted(latency([f"hosta:{one}"], one, 0.25))
    pipe_rec, wire_rec = bytes_per_record(f"hosta:{one}", one)
    idle_one = idle_per_minute([f"hosta:{one}"])
    many = tmp / "many"
    dirs = [many / f"run{i:03d}" for i in range(100)]
    for d in dirs:
        write_run(d)
    idle_25 = idle_per_minute([f"hosta:{many}/run0[0-2]*"])  # run000..run029
    paths = [f"{ALIASES[i % 4]}:{d}" for i, d in enumerate(dirs)]
    remote_fleet = fleet(paths, dirs)
    local_fleet = fleet([str(many)], dirs)

    def stats(values: list[float]) -> str:
        p95 = values[int(0.95 * (len(values) - 1))]
        return f"median {statistics.median(values) * 1000:.0f} ms, p95 {p95 * 1000:.0f} ms"

    print("| measure | over ssh | floor | floor is |")
    print("|---|---|---|---|")
    print(
        f"| append -> model, default host poll (2 s) | {stats(remote_default)} | {stats(local)} | local disk, events |"
    )
    print(f"| append -> model, `--poll 0.25` | {stats(remote_fast)} | {stats(local)} | local disk, events |")
    size = len(record(12345))
    print(f"| bytes per new record, through ssh's pipes | {pipe_rec:.0f} B | {size} B | the record's line |")
    print(f"| bytes per new record, on the wire | {wire_rec:.0f} B | {size} B | the record's line |")
    print(
        f"| idle, one run on the host: pipes / wire | {idle_one[0] / 1024:.1f} / {idle_one[1] / 1024:.1f} KiB/min | | |"
    )
    print(
        f"| idle, 30 runs on the host: pipes / wire | {idle_25[0] / 1024:.1f} / {idle_25[1] / 1024:.1f} KiB/min | | |"
    )
    for name, key in (("CPU, 100 runs on 4 hosts, 1 record/s each", "active"), ("CPU, same, idle", "idle")):
        print(
            f"| {name} | {remote_fleet[key]:.1f}% of a core | {local_fleet[key]:.1f}% | same runs, local disk |"
        )
    print(
        f"| RSS, 100 runs on 4 hosts | {remote_fleet['rss']:.0f} MiB + {remote_fleet['ssh_rss']:.0f} MiB "
        f"in 4 ssh | {local_fleet['rss']:.0f} MiB | same runs, local disk |"
    )


if __name__ == "__main__":
    main()
