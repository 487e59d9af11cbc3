"""Many runs: batched filesystem events, reading only the runs they name, the stat-only skip of idle
runs, and the monitor finding new runs and every append across many runs, with events and polling."""

from __future__ import annotations

import errno
import json
import os
import sys
import threading
import time
from pathlib import Path

import pytest

from termmon.ingest.inotify import Inotify
from termmon.ingest.watch import ChangeWatcher
from termmon.model.workspace import Workspace
from termmon.views.app import MonitorApp
from termmon.views.widgets.run_picker import RunPicker
from tests.tui_fixtures import NOW, append, run_async, start, steps, wait_for, wait_until

MODES = pytest.mark.parametrize("poll", [None, 0.2], ids=["events", "polling"])


def write_runs(root: Path, count: int, last_step: int = 10) -> list[Path]:
    dirs = [root / f"run_{i:03d}" for i in range(count)]
    for run_dir in dirs:
        append(run_dir, [start(run_dir.name), *steps(10, last_step)])
    return dirs


def step_line(step: int) -> str:
    return json.dumps({"event": "step", "time": NOW, "step": step, "train_loss": 1.0 / step}) + "\n"


def age(path: Path, seconds: float = 60.0) -> None:
    """Back-date a file and its directory, past the window in which a stat is not trusted."""
    old = time.time() - seconds
    os.utime(path, (old, old))
    os.utime(path.parent, (old, old))


def test_the_watcher_hands_over_the_paths_events_named(tmp_path: Path) -> None:
    a, b = write_runs(tmp_path, 2)
    woke = threading.Event()
    with ChangeWatcher([tmp_path], woke.set) as watcher:
        assert watcher.mode == "events" and watcher.reason.startswith("inotify")  # Linux: batched
        assert watcher.take().everything  # the first look reads every run
        seen: set[Path] = set()

        def named() -> bool:
            with open(a / "metrics.jsonl", "a") as fh:  # again each time: the watch may still be starting
                fh.write(step_line(20))
            seen.update(watcher.take().paths)
            return a / "metrics.jsonl" in seen

        wait_until(named, timeout=8.0)
        assert b / "metrics.jsonl" not in seen
        # A directory made while watching is watched too: appends inside it are named.
        (late,) = write_runs(tmp_path / "new_project" / "group", 1)
        seen.clear()

        def named_late() -> bool:
            with open(late / "metrics.jsonl", "a") as fh:
                fh.write(step_line(20))
            seen.update(watcher.take().paths)
            return late / "metrics.jsonl" in seen

        wait_until(named_late, timeout=8.0)


def test_without_inotify_simple_the_watcher_falls_back_to_watchdog(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Where inotify_simple is not installed (it is a Linux-only dependency), events still work."""
    (a,) = write_runs(tmp_path, 1)
    monkeypatch.setitem(sys.modules, "inotify_simple", None)  # importing it raises ImportError
    with pytest.raises(OSError) as raised:
        Inotify([tmp_path])
    assert raised.value.errno == errno.ENOSYS
    with ChangeWatcher([tmp_path], lambda: None) as watcher:
        assert watcher.mode == "events" and watcher.reason.startswith("watchdog")
        watcher.take()
        seen: set[Path] = set()

        def named() -> bool:
            with open(a / "metrics.jsonl", "a") as fh:
                fh.write(step_line(20))
            seen.update(watcher.take().paths)
            return a / "metrics.jsonl" in seen

        wait_until(named, timeout=8.0)


def test_polling_looks_at_everything(tmp_path: Path) -> None:
    write_runs(tmp_path, 1)
    woke = threading.Event()
    with ChangeWatcher([tmp_path], woke.set, poll_interval=0.05) as watcher:
        watcher.take()
        woke.clear()
        assert woke.wait(5.0)
        assert watcher.take().everything


def test_a_look_reads_only_the_runs_named_and_an_unknown_path_rescans(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("termmon.model.workspace.RESCAN_MIN_SECONDS", 0.0)
    a, b = write_runs(tmp_path, 2)
    workspace = Workspace([str(tmp_path)])
    try:
        workspace.apply(workspace.poll())
        for run_dir in (a, b):
            with open(run_dir / "metrics.jsonl", "a") as fh:
                fh.write(step_line(20))
        updates = workspace.poll({a / "metrics.jsonl"}, rescan_every=3600)
        assert [u.path for u in updates] == [a]
        workspace.apply(updates)
        assert workspace.runs[a].last_step == 20 and workspace.runs[b].last_step == 10
        # The backstop look reads the other run: no append is lost for want of an event.
        workspace.apply(workspace.poll(rescan_every=3600))
        assert workspace.runs[b].last_step == 20
        # A path in no known run (a run directory made while watching) makes the look rescan.
        (late,) = write_runs(tmp_path / "later", 1)
        updates = workspace.poll({late / "metrics.jsonl"}, rescan_every=3600)
        assert [u.path for u in updates] == [late]
    finally:
        workspace.close()


def test_an_idle_run_costs_a_stat_and_an_append_is_still_read(tmp_path: Path) -> None:
    (run_dir,) = write_runs(tmp_path, 1)
    metrics = run_dir / "metrics.jsonl"
    age(metrics)
    workspace = Workspace([str(tmp_path)])
    try:
        workspace.apply(workspace.poll())
        workspace.poll()  # the stat of a complete read is remembered from here on
        assert workspace.poll() == []  # nothing new: not read, nothing handed to the UI
        with open(metrics, "a") as fh:
            fh.write(step_line(20))
        age(metrics)  # even with its old mtime back, the size says there is more
        workspace.apply(workspace.poll())
        assert workspace.runs[run_dir].last_step == 20
        # A file replaced by another of the same size and mtime: a new inode, so it is read again.
        content = metrics.read_bytes().replace(b'"step": 20', b'"step": 30')
        replacement = run_dir / "new.tmp"
        replacement.write_bytes(content)
        stat = metrics.stat()
        os.utime(replacement, ns=(stat.st_atime_ns, stat.st_mtime_ns))
        os.replace(replacement, metrics)
        age(metrics)
        drain(workspace)  # the reset first, then the new file's records
        assert workspace.runs[run_dir].last_step == 30
    finally:
        workspace.close()


def drain(workspace: Workspace) -> None:
    """Poll until a poll leaves nothing more to read."""
    while True:
        updates = workspace.poll()
        workspace.apply(updates)
        if not any(item.update.more for item in updates):
            return


def make_app(root: Path, poll: float | None) -> MonitorApp:
    return MonitorApp(Workspace([str(root)]), watched=["runs"], poll=poll, clock=lambda: NOW)


@MODES
@run_async
async def test_a_run_created_while_watching_is_found(
    tmp_path: Path, poll: float | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    if poll is not None:  # polling has only the periodic rescan; events name the new directory
        monkeypatch.setattr("termmon.model.workspace.RESCAN_SECONDS", 0.2)
    write_runs(tmp_path, 3)
    app = make_app(tmp_path, poll)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: app.loaded and len(app.query_one(RunPicker).paths) == 3)
        assert app.watch_mode == ("events" if poll is None else "polling")
        (late,) = write_runs(tmp_path / "new_project", 1, last_step=50)
        await wait_for(pilot, lambda: late in app.query_one(RunPicker).paths)
        await wait_for(pilot, lambda: app.workspace.runs[late].last_step == 50)


@MODES
@run_async
async def test_appends_to_many_runs_all_arrive(tmp_path: Path, poll: float | None) -> None:
    dirs = write_runs(tmp_path, 30)
    app = make_app(tmp_path, poll)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: app.loaded and len(app.workspace.runs) == 30)
        handles = [open(run_dir / "metrics.jsonl", "a") for run_dir in dirs]  # noqa: SIM115
        try:
            for step in range(20, 220, 10):  # bursts across every run, as 30 trainers would write
                for fh in handles:
                    fh.write(step_line(step))
                    fh.flush()
                await pilot.pause(0.01)
        finally:
            for fh in handles:
                fh.close()
        runs = app.workspace.runs
        await wait_for(pilot, lambda: all(runs[d].last_step == 210 for d in dirs))
        assert all(len(runs[d].step) == len(runs[dirs[0]].step) for d in dirs)  # nothing twice


@run_async
async def test_picker_rows_off_screen_are_drawn_when_scrolled_to(tmp_path: Path) -> None:
    dirs = write_runs(tmp_path, 60, last_step=100)
    app = make_app(tmp_path, None)
    async with app.run_test(size=(80, 24)) as pilot:
        picker = app.query_one(RunPicker)
        await wait_for(pilot, lambda: app.loaded and len(picker.paths) == 60)

        def row(index: int) -> str:
            return str(picker.get_option_at_index(index).prompt)

        await wait_for(pilot, lambda: "s100" in row(0))
        assert "s100" not in row(59)  # off screen: only its name so far
        picker.highlighted = 59
        await wait_for(pilot, lambda: app.selected == picker.paths[59])
        await wait_for(pilot, lambda: "s100" in row(59) and dirs[59].name in row(59))


@run_async
async def test_a_redraw_before_the_highlight_is_taken_up_keeps_the_users_row(tmp_path: Path) -> None:
    """The highlight moves at once, the selection when its message is handled: a redraw in between
    (a live run's records) must not move the highlight back and lose the user's choice."""
    write_runs(tmp_path, 8, last_step=100)
    app = make_app(tmp_path, None)
    async with app.run_test(size=(80, 24)) as pilot:
        picker = app.query_one(RunPicker)
        await wait_for(pilot, lambda: app.loaded and len(picker.paths) == 8)
        first = app.selected
        picker.highlighted = 5
        app.redraw()  # before OptionHighlighted reaches the app
        assert picker.highlighted == 5
        await wait_for(pilot, lambda: app.selected == picker.paths[5])
        assert first != picker.paths[5]
        app.redraw()
        assert picker.highlighted == 5


def test_big_workspaces_are_listed_before_they_are_read(tmp_path: Path) -> None:
    dirs = write_runs(tmp_path, 3)
    workspace = Workspace([str(tmp_path)])
    try:
        assert workspace.announce() == []  # a few KB: listed with their data, in one read
        announced = workspace.announce(min_bytes=0)
        assert sorted(item.path for item in announced) == dirs
        assert all(item.update.more and not len(item.update.batch) for item in announced)
        workspace.apply(announced)
        assert sorted(workspace.runs) == dirs and all(r.last_step is None for r in workspace.runs.values())
        assert workspace.announce(min_bytes=0) == []  # each run once
        drain(workspace)
        assert all(r.last_step == 10 for r in workspace.runs.values())
    finally:
        workspace.close()
