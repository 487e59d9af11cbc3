"""Runs on other machines: the real ssh client against a real sshd on 127.0.0.1 (tests/ssh_server.py).

Two aliases (hosta, hostb) reach the same server, so "two hosts" are watched at once; ``deadhost`` is a
port nobody listens on and ``stranger`` the same server under a host key nobody trusts.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from ssh_server import SSHD, SshServer, ssh_server

import termmon
from termmon.control import request_log_every
from termmon.errors import UsageError
from termmon.ingest.source import RunSource
from termmon.loading import load_runs
from termmon.model.workspace import Workspace
from termmon.remote import registry
from termmon.remote.mirror import cksum
from termmon.remote.paths import RemotePath, parse_remote
from termmon.remote.transport import SSH_COMMAND_ENV

needs_sshd = pytest.mark.skipif(SSHD is None, reason="sshd not installed (.ci/run installs openssh-server)")

HOSTILE = [
    "semi; touch PWNED",
    "$(touch PWNED)",
    'it\'s "quoted"',
    "new\nline",
    "  spaced  out ",
    "`touch PWNED`",
]


def line(record: dict[str, Any]) -> bytes:
    return json.dumps(record).encode() + b"\n"


def step(i: int, tag: str = "a") -> dict[str, Any]:
    return {"event": "step", "time": 1000.0 + i, "step": i, "train_loss": 1.0 / (i + 1), "tag": tag}


def write(path: Path, records: list[dict[str, Any]], mode: str = "wb") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, mode) as fh:
        for r in records:
            fh.write(line(r))


def wait_until(condition: Any, timeout: float = 60.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


# --- paths and checksums (no server) ------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("gpu1:runs/", RemotePath("gpu1", "runs/")),
        ("me@gpu1:/scratch/exp_*", RemotePath("gpu1", "/scratch/exp_*", user="me")),
        ("gpu1:", RemotePath("gpu1", ".")),
        ("[::1]:/r", RemotePath("::1", "/r")),
        ("ssh://me@gpu1:2222/scratch/r", RemotePath("gpu1", "/scratch/r", user="me", port=2222)),
        ("ssh://gpu1/~/runs", RemotePath("gpu1", "runs")),
        ("./a:b", None),
        ("/data/x:y", None),
        ("runs", None),
    ],
)
def test_parse_remote(raw: str, expected: RemotePath | None) -> None:
    assert parse_remote(raw) == expected


def test_a_local_path_with_a_colon_stays_local(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    write(tmp_path / "exp:1" / "metrics.jsonl", [step(0)])
    assert parse_remote("exp:1") is None
    assert parse_remote("exp:*") is None  # a glob matching locally, too
    assert [r.records for r in load_runs(["exp:1"], progress=False)] == [1]


def test_bad_ssh_url_is_a_usage_error() -> None:
    with pytest.raises(UsageError, match="needs a host"):
        parse_remote("ssh:///runs")


@settings(max_examples=20, deadline=None)
@given(st.binary(max_size=3000))
def test_cksum_is_posix_cksum(data: bytes) -> None:
    out = subprocess.run(["cksum"], input=data, capture_output=True, check=True).stdout.decode().strip()
    assert cksum(data) == out


# --- against a real sshd ------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SshServer]:
    if SSHD is None:
        pytest.skip("sshd not installed (.ci/run installs openssh-server)")
    with ssh_server(tmp_path_factory.mktemp("sshd")) as srv:
        old = os.environ.get(SSH_COMMAND_ENV)
        os.environ[SSH_COMMAND_ENV] = srv.ssh_command
        try:
            yield srv
        finally:
            if old is None:
                os.environ.pop(SSH_COMMAND_ENV, None)
            else:
                os.environ[SSH_COMMAND_ENV] = old


@pytest.fixture(autouse=True)
def fresh_hosts() -> Iterator[None]:
    """Every test starts with no sessions and no mirror, and leaves none behind."""
    yield
    registry.shutdown()


def cli(server: SshServer, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "termmon", *args],
        capture_output=True,
        text=True,
        env=server.env(),
        timeout=timeout,
    )


def records_of(source: RunSource) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    while True:
        update = source.read_objects()
        if update.reset:
            out.append({"reset": True})
        out += [o for o in update.objects if isinstance(o, dict)]
        if not update.more:
            return out


@needs_sshd
def test_discovery_runs_remotely_with_globs_and_two_hosts(server: SshServer, tmp_path: Path) -> None:
    write(tmp_path / "exp_a" / "metrics.jsonl", [step(i) for i in range(3)])
    write(tmp_path / "exp_b" / "nested" / "deep" / "metrics.jsonl", [step(0)])
    write(tmp_path / "exp_b" / ".hidden" / "metrics.jsonl", [step(0)])  # hidden dirs are not searched
    write(
        tmp_path / "exp_b" / "a" / "b" / "c" / "d" / "e" / "f" / "metrics.jsonl", [step(0)]
    )  # deeper than 5
    write(tmp_path / "other" / "metrics.jsonl", [step(0)])
    (tmp_path / "exp_a" / "control.json").write_text('{"log_every": 5}')
    local = tmp_path / "local_run"
    write(local / "metrics.jsonl", [step(0), step(1)])
    runs = load_runs([f"hosta:{tmp_path}/exp_*", f"hostb:{tmp_path}/exp_a", str(local)], progress=False)
    assert {r.name: r.records for r in runs} == {
        "hosta:exp_a": 3,
        "hosta:nested/deep": 1,  # named below its root, as a local run is
        "hostb:exp_a": 3,
        "local_run": 2,
    }
    # control.json is the monitor's to write remotely, never copied back.
    assert not any((r.path / "control.json").exists() for r in runs[:3])


@needs_sshd
def test_url_and_user_spellings(server: SshServer, tmp_path: Path) -> None:
    import getpass

    write(tmp_path / "r" / "metrics.jsonl", [step(0)])
    user = getpass.getuser()
    for spelling in (
        f"ssh://hosta{tmp_path}/r",
        f"{user}@hostb:{tmp_path}/r",
        f"ssh://{user}@hostc/{tmp_path}/r",
    ):
        assert len(termmon.load(spelling)) == 1, spelling


@needs_sshd
def test_missing_remote_path_is_a_usage_error(server: SshServer, tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="no such file or directory"):
        load_runs([f"hosta:{tmp_path}/nope"], progress=False)
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(UsageError, match="not a run directory or run file"):
        load_runs([f"hosta:{tmp_path}/notes.txt"], progress=False)
    result = cli(server, "summary", f"hosta:{tmp_path}/nope")
    assert result.returncode == 2 and result.stderr.count("\n") == 1, result.stderr


@needs_sshd
def test_live_tailing_with_torn_writes_yields_every_record_once(server: SshServer, tmp_path: Path) -> None:
    path = tmp_path / "run" / "metrics.jsonl"
    write(path, [step(0)])
    total = 400
    payload = b"".join(line(step(i)) for i in range(1, total))
    rng = random.Random(7)

    def writer() -> None:
        with open(path, "ab", buffering=0) as fh:
            pos = 0
            while pos < len(payload):
                n = rng.randint(1, 300)
                fh.write(payload[pos : pos + n])
                pos += n
                time.sleep(rng.random() * 0.004)

    got: list[dict[str, Any]] = []
    stop = threading.Event()

    def follower() -> None:
        for batch in termmon.follow(f"hosta:{tmp_path}/run", stop=stop):
            got.extend(batch)

    thread = threading.Thread(target=follower)
    thread.start()
    w = threading.Thread(target=writer)
    w.start()
    w.join()
    try:
        wait_until(lambda: len(got) >= total, what=f"{total} records (got {len(got)})")
    finally:
        stop.set()
        thread.join(10)
    assert [r["step"] for r in got] == list(range(total))


def mirrored(server: SshServer, remote: str) -> tuple[registry.HostSyncer, RunSource]:
    (root,) = registry.resolve(remote) or []
    found = registry.owner(root)
    assert found is not None
    return found[0], RunSource(root)


@needs_sshd
def test_rotation_drains_the_old_file_then_reads_the_new(server: SshServer, tmp_path: Path) -> None:
    path = tmp_path / "run" / "metrics.jsonl"
    write(path, [step(i) for i in range(3)])
    syncer, source = mirrored(server, f"hosta:{tmp_path}/run")
    assert [r["step"] for r in records_of(source)] == [0, 1, 2]
    write(path, [step(3), step(4)], mode="ab")  # appended, not yet fetched ...
    path.rename(path.with_name("metrics.jsonl.1"))  # ... when the file is rotated
    write(path, [step(i, "new") for i in range(5, 7)])
    while syncer.sync():
        pass
    got = records_of(source) + records_of(source)  # the old file is drained first, then the new read
    assert [r["step"] for r in got] == [3, 4, 5, 6]  # no reset, nothing twice
    assert [r["tag"] for r in got] == ["a", "a", "new", "new"]


@needs_sshd
def test_truncation_and_replacement_start_the_run_over(server: SshServer, tmp_path: Path) -> None:
    path = tmp_path / "run" / "metrics.jsonl"
    write(path, [step(i) for i in range(5)])
    syncer, source = mirrored(server, f"hosta:{tmp_path}/run")
    assert len(records_of(source)) == 5
    write(path, [step(0, "t")])  # truncated in place, shorter
    syncer.sync()
    assert records_of(source) == [{"reset": True}, step(0, "t")]
    # Rewritten in place, longer than before, in one go: the head fingerprint catches it.
    with open(path, "r+b") as fh:
        fh.write(b"".join(line(step(i, "u")) for i in range(9)))
    syncer.sync()
    got = records_of(source)
    assert got[0] == {"reset": True} and [r["tag"] for r in got[1:]] == ["u"] * 9
    # Replaced by a new file (atomic rename over it): a new inode locally too.
    tmp = path.with_name("tmp")
    write(tmp, [step(i, "v") for i in range(2)])
    os.replace(tmp, path)
    syncer.sync()
    got = records_of(source)
    assert got[0] == {"reset": True} and [r["tag"] for r in got[1:]] == ["v", "v"]


@needs_sshd
def test_a_replaced_results_json_is_swapped_in_only_when_complete(
    server: SshServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from termmon.remote import syncer as syncer_module

    run = tmp_path / "run"
    run.mkdir()

    def results(epochs: int) -> bytes:
        history = [{"epoch": e, "train_loss": 1.0 / (e + 1), "pad": "x" * 100} for e in range(epochs)]
        return json.dumps({"run_name": "r", "training_history": history}).encode()

    def replace(data: bytes) -> None:
        (run / "tmp").write_bytes(data)
        os.replace(run / "tmp", run / "results.json")

    replace(results(2))
    assert termmon.load(f"hosta:{run}")["train_loss"].dropna().tolist() == [1.0, 0.5]
    monkeypatch.setattr(syncer_module, "ROUND_BYTES", 1000)  # several rounds per version
    (mirror,) = registry.resolve(f"hosta:{run}") or []
    found = registry.owner(mirror)
    assert found is not None
    for epochs in (30, 60):
        replace(results(epochs))
        rounds = 0
        while found[0].sync():
            rounds += 1
            json.loads((mirror / "results.json").read_bytes())  # old or new, never half
        assert rounds >= 2
        assert (mirror / "results.json").read_bytes() == results(epochs)
    assert len(termmon.load(mirror)) == 61


@needs_sshd
def test_killed_connection_loses_and_repeats_nothing(server: SshServer, tmp_path: Path) -> None:
    path = tmp_path / "run" / "metrics.jsonl"
    write(path, [step(0)])
    got: list[dict[str, Any]] = []
    stop, stop_writing = threading.Event(), threading.Event()
    written = [1]

    def writer() -> None:  # until told to stop, each record in two writes (torn at its middle)
        with open(path, "ab", buffering=0) as fh:
            while not stop_writing.is_set():
                data = line(step(written[0]))
                fh.write(data[: len(data) // 2])
                fh.write(data[len(data) // 2 :])
                written[0] += 1
                time.sleep(0.01)

    def follower() -> None:
        for batch in termmon.follow(f"hosta:{tmp_path}/run", stop=stop):
            got.extend(batch)

    thread = threading.Thread(target=follower)
    thread.start()
    w = threading.Thread(target=writer)
    try:
        wait_until(lambda: len(got) >= 1, what="the first record")
        w.start()
        kills = 0
        for _ in range(3):
            before = len(got)
            wait_until(lambda b=before: len(got) > b, what="records between kills")
            wait_until(server.session_pids, what="an ssh session")
            kills += server.kill_sessions()
        stop_writing.set()
        w.join()
        assert kills
        wait_until(lambda: len(got) >= written[0], timeout=90, what="every record after the reconnects")
    finally:
        stop_writing.set()
        stop.set()
        thread.join(10)
    assert [r["step"] for r in got] == list(range(written[0]))


@needs_sshd
def test_a_dead_host_shows_on_its_runs_and_the_others_keep_updating(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Its own sshd; hosta's address is pointed at a closed port mid-watch, then back."""
    from ssh_server import free_port

    metrics = tmp_path / "runs" / "r" / "metrics.jsonl"
    write(metrics, [step(0)])
    with ssh_server(tmp_path / "own") as own:
        monkeypatch.setenv(SSH_COMMAND_ENV, own.ssh_command)
        config = own.ssh_config.read_text()
        workspace = Workspace([f"hosta:{tmp_path}/runs/r", f"hostb:{tmp_path}/runs"])
        syncers = registry.start_live(workspace.roots, 0.2)
        try:
            workspace.apply(workspace.poll())
            runs = {run.name: run for run in workspace.runs.values()}
            a, b = runs["hosta:r"], runs["hostb:r"]
            assert a.records == b.records == 1
            live = f"Host hosta\n  HostName 127.0.0.1\n  Port {own.port}\n"
            own.ssh_config.write_text(config.replace(live, live.replace(str(own.port), str(free_port()))))
            own.kill_sessions()
            write(metrics, [step(1)], mode="ab")

            def state(records_a: int, records_b: int, error: str) -> Any:
                def check() -> bool:
                    workspace.apply(workspace.poll())
                    return (a.records, b.records) == (records_a, records_b) and any(
                        error in e for e in a.errors
                    )

                return check

            wait_until(state(1, 2, "Connection refused; retrying"), what="hosta's error, hostb's record")
            assert not any("refused" in e for e in b.errors)
            own.ssh_config.write_text(config)  # hosta is back
            write(metrics, [step(2)], mode="ab")
            wait_until(state(3, 3, "refused"), timeout=90, what="hosta catching up after the reconnect")
        finally:
            registry.stop_live(syncers)
            workspace.close()
    from termmon.api import load

    assert load(a.path)["step"].tolist() == [0, 1, 2]


@needs_sshd
def test_unreachable_untrusted_and_refusing_hosts_fail_fast_with_one_line(
    server: SshServer, tmp_path: Path
) -> None:
    started = time.monotonic()
    result = cli(server, "summary", f"deadhost:{tmp_path}", timeout=60)
    assert result.returncode == 1 and "Connection refused" in result.stderr, result.stderr
    assert result.stderr.count("\n") == 1
    # A host key nobody trusts, in BatchMode: no prompt, no hang.
    result = cli(server, "summary", f"stranger:{tmp_path}", timeout=60)
    assert result.returncode == 1 and "Host key verification failed" in result.stderr, result.stderr
    # A key the server refuses: no password prompt, a refusal.
    result = cli(server, "summary", f"nokey:{tmp_path}", timeout=60)
    assert result.returncode == 1 and "Permission denied" in result.stderr, result.stderr
    assert time.monotonic() - started < 50


@needs_sshd
def test_a_host_that_never_answers_times_out(server: SshServer, tmp_path: Path) -> None:
    started = time.monotonic()
    result = cli(server, "summary", f"silent:{tmp_path}", timeout=60)
    assert result.returncode == 1 and "silent" in result.stderr and result.stderr.count("\n") == 1, (
        result.stderr
    )
    assert time.monotonic() - started < 40  # ConnectTimeout=10 covers the banner exchange too


@needs_sshd
def test_hostile_names_are_data(server: SshServer, tmp_path: Path) -> None:
    home = Path(os.path.expanduser("~"))
    for name in HOSTILE:
        write(tmp_path / name / "metrics.jsonl", [step(0, name)])
    write(
        tmp_path / "x" / "debug_log_$(touch PWNED);'.jsonl",
        [{"event_type": "train_step", "step": 3, "data": {"loss": 1.0}}],
    )
    runs = load_runs([f"hosta:{tmp_path}"], progress=False)
    assert sorted(r.name for r in runs) == sorted(f"hosta:{n}" for n in [*HOSTILE, "x"])
    assert all(r.records == 1 for r in runs)
    for name in HOSTILE:
        request_log_every(f"hosta:{tmp_path}/{name}", 40)
        assert json.loads((tmp_path / name / "control.json").read_text())["log_every"] == 40
    assert not list(tmp_path.rglob("PWNED")) and not (home / "PWNED").exists()
    assert not Path("PWNED").exists()


NAMES = st.text(
    st.characters(blacklist_categories=("Cs",), blacklist_characters="/\0"), min_size=1, max_size=30
).filter(lambda n: not n.startswith(".") and n not in ("telemetry", "wandb", "tensorboard", "node_modules"))


@needs_sshd
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(names=st.lists(NAMES, min_size=1, max_size=3, unique=True))
def test_any_run_names_travel_as_data(server: SshServer, tmp_path: Path, names: list[str]) -> None:
    base = tmp_path / f"case{uuid.uuid4().hex}"  # hypothesis seeds `random` the same each example
    for name in names:
        write(base / name / "metrics.jsonl", [step(0, name)])
    runs = load_runs([f"hosta:{base}"], progress=False)
    assert sorted(r.name for r in runs) == sorted(f"hosta:{n}" for n in names)
    assert all(r.records == 1 for r in runs)


@needs_sshd
def test_control_is_written_remotely_and_atomically(server: SshServer, tmp_path: Path) -> None:
    run = tmp_path / "run"
    write(run / "metrics.jsonl", [step(0)])
    result = cli(server, "control", f"hosta:{run}", "--log-every", "50")
    assert result.returncode == 0, result.stderr
    first = json.loads((run / "control.json").read_text())
    assert first["log_every"] == 50 and first["seq"] == 1 and first["source"] == "termmon"
    result = cli(server, "control", f"hostb:{run}", "--log-every", "99999")
    assert result.returncode == 0 and "clamped" in result.stdout
    second = json.loads((run / "control.json").read_text())
    assert second["seq"] == 2 and second["log_every"] == 2000
    assert sorted(p.name for p in run.iterdir()) == ["control.json", "metrics.jsonl"]  # no temp left
    os.chmod(run, 0o555)
    try:
        if os.geteuid() != 0:
            result = cli(server, "control", f"hosta:{run}", "--log-every", "10")
            assert result.returncode == 1 and "cannot write" in result.stderr
    finally:
        os.chmod(run, 0o755)
    # The monitor's own writer path: a mirrored run dir is written on its host.
    (mirror,) = registry.resolve(f"hosta:{run}") or []
    assert request_log_every(mirror, 20).seq == 3
    assert json.loads((run / "control.json").read_text())["log_every"] == 20
    assert not (mirror / "control.json").exists()


@needs_sshd
def test_summary_json_report_and_load_over_ssh(server: SshServer, tmp_path: Path) -> None:
    run = tmp_path / "run"
    write(run / "metrics.jsonl", [{"event": "start", "time": 999.0}, *(step(i) for i in range(20))])
    result = cli(server, "summary", "--json", f"hosta:{run}")
    assert result.returncode == 0, result.stderr
    local = cli(server, "summary", "--json", str(run))
    remote_doc, local_doc = json.loads(result.stdout), json.loads(local.stdout)
    remote_run, local_run = remote_doc["runs"][0], local_doc["runs"][0]
    assert remote_run["name"] == "hosta:run" and remote_run["path"] == f"hosta:{run}"  # not the mirror's
    assert remote_run["records"] == local_run["records"] == 21
    report = cli(server, "report", f"hostb:{run}")
    assert report.returncode == 0, report.stderr
    assert termmon.load(f"hosta:{run}").equals(termmon.load(run))


@needs_sshd
def test_no_ssh_process_nor_mirror_outlives_the_monitor(server: SshServer, tmp_path: Path) -> None:
    write(tmp_path / "r" / "metrics.jsonl", [step(0)])
    load_runs([f"hosta:{tmp_path}/r"], progress=False)
    syncer = registry.syncer_for(RemotePath("hosta", "."))
    proc = syncer.session._proc
    assert proc is not None and proc.poll() is None
    mirror = syncer.mirror_dir
    assert (mirror / tmp_path.relative_to("/") / "r" / "metrics.jsonl").is_file()
    registry.shutdown()
    assert proc.poll() is not None
    assert not mirror.parent.exists()  # the private mirror goes with the process


@needs_sshd
def test_the_monitor_follows_remote_runs_and_writes_their_control_json(
    server: SshServer, tmp_path: Path
) -> None:
    import asyncio

    from tui_fixtures import append, read_json, steps, workspace_dir

    from termmon.views.app import MonitorApp

    root = workspace_dir(tmp_path / "runs")

    async def scenario() -> None:
        workspace = Workspace([f"hosta:{root}", f"hostb:{root}/blobs_a"])
        app = MonitorApp(workspace, watched=[f"hosta:{root}"], poll=0.2)
        loop = asyncio.get_running_loop()

        async def wait_for(condition: Any, timeout: float = 30.0) -> None:
            deadline = loop.time() + timeout
            while not condition():
                assert loop.time() < deadline, "condition not met in time"
                await pilot.pause(0.05)

        async with app.run_test(size=(120, 40)) as pilot:
            await wait_for(lambda: len(app.workspace.runs) == 4)
            names = sorted(run.name for run in app.workspace.runs.values())
            assert names == ["hosta:blobs_a", "hosta:diverging_c", "hosta:lora_b", "hostb:blobs_a"]
            run = next(r for r in app.workspace.runs.values() if r.name == "hostb:blobs_a")
            before = run.records
            append(root / "blobs_a", steps(5000, 5090))  # written on the "remote" machine
            await wait_for(lambda: run.records == before + 10)
            # A live run (blobs_a has finished, so its keys write nothing) gets `+`: its control.json
            # appears on its host.
            for _ in range(4):
                if app.selected_run is not None and app.selected_run.name == "hosta:diverging_c":
                    break
                await pilot.press("j")
                await pilot.pause(0.05)
            selected = app.selected_run
            assert selected is not None and selected.name == "hosta:diverging_c"
            await pilot.press("plus")
            control = root / selected.name.split(":", 1)[1] / "control.json"
            await wait_for(control.exists)
            assert read_json(control)["log_every"] == 20 and read_json(control)["seq"] == 1
            assert not (selected.path / "control.json").exists()  # the mirror holds no copy

    asyncio.run(scenario())
