"""Finding other libraries' runs at their natural depths, one run per run, and saying the same thing
in every command when a path holds none."""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from termmon.cli import main
from termmon.ingest.discovery import find_runs, resolve_paths
from termmon.ingest.formats import registry
from termmon.model.workspace import Workspace
from termmon.views.app import MonitorApp
from tests.format_helpers import DATA, summary
from tests.tui_fixtures import NOW, run_async


def test_every_layout_is_found_at_its_natural_depth(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = tmp_path / "work"
    # <root>/<project>/lightning_logs/version_N, an HF output dir with runs/*, SummaryWriter dirs under
    # a folder named tensorboard (no longer skipped), a Keras log: each at the depth its library uses.
    shutil.copytree(DATA / "lightning" / "csv" / "lightning_logs", root / "proj" / "lightning_logs")
    shutil.copytree(DATA / "hf" / "healthy", root / "proj" / "hf_out")
    shutil.copytree(DATA / "tensorboard" / "healthy", root / "tensorboard" / "exp1")
    shutil.copytree(DATA / "keras" / "healthy", root / "keras")
    code, data, err = summary([root], capsys)
    assert code == 0, err
    names = sorted(r["name"] for r in data["runs"])
    hf_run = next((root / "proj" / "hf_out" / "runs").iterdir()).name
    assert names == [
        "keras",
        f"proj/hf_out/runs/{hf_run}",
        "proj/lightning_logs/version_0",
        "tensorboard/exp1",
    ]


def test_a_run_file_given_directly_stands_for_its_run() -> None:
    events = next((DATA / "tensorboard" / "diverged").glob("events.out.tfevents.*"))
    assert resolve_paths([str(events)]) == [events.parent.resolve()]


def test_the_registry_is_the_one_list() -> None:
    names = [f.name for f in registry.FORMATS]
    assert len(set(names)) == len(names)
    assert [f.rank for f in registry.FORMATS] == sorted(f.rank for f in registry.FORMATS)
    for fmt in registry.FORMATS:
        assert fmt.label and fmt.pattern
    assert registry.get("tfevents").tailable and not registry.get("hf_trainer").tailable
    assert registry.get("termmon").has_end_events and not registry.get("tfevents").has_end_events


def test_the_remote_mirror_copies_what_each_format_reads() -> None:
    """remote/files.py takes its globs from the registry: a marker names a file its format recognises."""
    from termmon.remote import files

    for fmt in registry.FORMATS:
        for glob in fmt.remote_markers:
            sample = glob.replace("*", "run-1")
            assert fmt.recognises(sample) and files.is_marker(sample), (fmt.name, glob)
    assert files.is_marker("metrics.jsonl") and files.is_mirrored("metrics/loss")
    assert files.is_mirrored("meta.yaml") and not files.is_marker("meta.yaml")
    assert files.is_mirrored("mlflow.db") and not files.is_mirrored("control.json")


@pytest.mark.parametrize(
    "args", [["summary"], ["summary", "--json"], ["--static"], ["report"]], ids=lambda a: " ".join(a)
)
def test_no_runs_is_one_line_and_exit_1_from_every_command(
    args: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    empty = tmp_path / "empty"
    (empty / "notes").mkdir(parents=True)
    (empty / "notes" / "readme.txt").write_text("nothing to see")
    assert main([*args, str(empty)]) == 1
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and f"no runs under {empty}" in lines[0] and "events.out.tfevents.*" in lines[0]
    if "--json" in args:
        assert captured.out.strip().replace(" ", "").replace("\n", "") == '{"runs":[]}'


@run_async
async def test_the_tui_says_the_same_while_it_waits(tmp_path: Path) -> None:
    app = MonitorApp(Workspace([str(tmp_path)]), watched=[str(tmp_path)], clock=lambda: NOW)
    async with app.run_test(size=(160, 40)) as pilot:
        deadline = time.monotonic() + 30
        while not app.loaded and time.monotonic() < deadline:
            await pilot.pause(0.05)
        status = str(app.status_text(NOW))
        assert f"no runs yet under {tmp_path}" in status and "events.out.tfevents.*" in status


def test_a_damaged_run_is_named_by_report_too(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run = tmp_path / "tb"
    shutil.copytree(DATA / "tensorboard" / "healthy", run, ignore=shutil.ignore_patterns("1*"))
    events = next(run.glob("events.out.tfevents.*"))
    data = bytearray(events.read_bytes())
    data[len(data) // 3] ^= 0x55
    events.write_bytes(bytes(data))
    assert main(["report", str(run)]) == 1  # the report is written; the damage is named and exits 1
    err = capsys.readouterr().err
    assert events.name in err and "damaged record" in err


def test_one_run_per_run_not_per_file() -> None:
    found = find_runs(DATA)
    assert len({r.path for r in found}) == len(found)
    assert not any(r.path.is_relative_to(o.path) and r != o for r in found for o in found)


@run_async
async def test_the_tui_follows_a_tensorboard_run_as_it_grows(tmp_path: Path) -> None:
    src = next((DATA / "tensorboard" / "healthy").glob("events.out.tfevents.*"))
    data = src.read_bytes()
    run = tmp_path / "exp"
    run.mkdir()
    dst = run / src.name
    dst.write_bytes(data[: len(data) // 3])
    app = MonitorApp(Workspace([str(tmp_path)]), watched=[str(tmp_path)], poll=0.1)
    async with app.run_test(size=(160, 40)) as pilot:

        async def until(condition: Callable[[], bool]) -> None:
            deadline = time.monotonic() + 30
            while not condition():
                assert time.monotonic() < deadline, "condition not met in time"
                await pilot.pause(0.05)

        def last_step() -> int | None:
            model = app.workspace.runs.get(run)
            return None if model is None else model.last_step

        await until(lambda: last_step() is not None)
        assert last_step() != 39
        with open(dst, "ab") as fh:
            fh.write(data[len(data) // 3 :])
        await until(lambda: last_step() == 39)
        assert app.workspace.runs[run].metrics["train/loss"].values.view.size == 40


def test_control_refuses_a_run_whose_trainer_never_reads_control_json(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = tmp_path / "tb"
    shutil.copytree(DATA / "tensorboard" / "diverged", run)
    assert main(["control", str(run), "--log-every", "10"]) == 2
    assert "only trainers that use termmon's logger read control.json" in capsys.readouterr().err
    assert not (run / "control.json").exists()
