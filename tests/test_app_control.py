"""The monitor's log_every keys (``+``, ``-``, ``=``) under Pilot, on real run directories.

The app's clock is injected (``Clock``): the runs' record times follow it, and both the 0.4 s key
debounce and the "not acknowledged" timeout are passed by moving it, never by sleeping, so a loaded
machine cannot split one burst of presses into two writes.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from termmon.model.workspace import Workspace
from termmon.views.app import MonitorApp
from termmon.views.control_queue import DEBOUNCE_SECONDS
from termmon.views.widgets.alert_log import AlertLog
from tests.tui_fixtures import append, read_json, run_async, start, wait_for


class Clock:
    """The app's ``time.time``, moved by the test."""

    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now

    def quiet(self) -> None:
        """Let the key debounce expire."""
        self.now += DEBOUNCE_SECONDS + 0.1


def live_run(run_dir: Path, now: float, log_every: int = 10) -> Path:
    """A run whose trainer wrote its last step a second ago."""
    records = [{**start(run_dir.name, log_every=log_every), "time": now - 60}]
    records += [
        {"event": "step", "time": now - 60 + s * 0.059, "step": s, "train_loss": 1.0 / s, "lr": 1e-3}
        for s in range(10, 1010, 10)
    ]
    append(run_dir, records)
    return run_dir


def make_app(root: Path, clock: Clock) -> MonitorApp:
    return MonitorApp(Workspace([str(root)]), watched=["runs"], clock=clock, export_dir=root)


def log_lines(app: MonitorApp) -> list[str]:
    return [t.plain for t in app.query_one(AlertLog).entries]


def status(app: MonitorApp) -> str:
    return str(app.status_text(app.clock()))


def answer(run_dir: Path, now: float, step: int, old: int, new: int, requested: int) -> None:
    """What the trainer appends when it applies a request."""
    change = {"key": "log_every", "old": old, "new": new, "requested": requested, "clamped": new != requested}
    append(run_dir, [{"event": "control_change", "time": now, "step": step, **change}])


@run_async
async def test_plus_presses_coalesce_into_one_control_write(tmp_path: Path) -> None:
    clock = Clock()
    run_dir = live_run(tmp_path / "live", clock.now)
    app = make_app(tmp_path, clock)
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_for(pilot, lambda: app.selected_run is not None)
        run = app.selected_run
        assert run is not None and run.log_every == 10
        control = run_dir / "control.json"
        await pilot.press("plus", "plus", "plus")
        assert "log_every 80 (requested, was 10)" in status(app)
        await pilot.pause(0.5)  # real time passes; the app's clock does not, so nothing is written yet
        assert not control.exists()
        clock.quiet()
        await wait_for(pilot, control.exists)
        await wait_for(pilot, lambda: app.control.states[run.path].written_at is not None)
        written = read_json(control)
        assert written["log_every"] == 80 and written["seq"] == 1 and written["source"] == "termmon"
        # The trainer answers with a control_change event; the status line follows it.
        answer(run_dir, clock.now, 1010, 10, 80, 80)
        await wait_for(pilot, lambda: "log_every 80 (applied at step 1010)" in status(app))
        # Halving starts from the applied value, and clamps at the floor, saying so.
        await pilot.press(*["minus"] * 6)
        clock.quiet()
        await wait_for(pilot, lambda: read_json(control)["seq"] == 2)
        assert read_json(control)["log_every"] == 5
        assert any("clamped to 5" in line for line in log_lines(app))


@run_async
async def test_exact_value_prompt(tmp_path: Path) -> None:
    clock = Clock()
    control = live_run(tmp_path / "live", clock.now) / "control.json"
    app = make_app(tmp_path, clock)
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_for(pilot, lambda: app.selected_run is not None)
        await pilot.press("equals_sign")
        await pilot.press("3", "3", "3", "enter")  # the current value is selected: typing replaces it
        clock.quiet()
        await wait_for(pilot, control.exists)
        assert read_json(control)["log_every"] == 333


@run_async
async def test_an_exact_value_out_of_range_is_written_clamped_and_says_so(tmp_path: Path) -> None:
    clock = Clock()
    control = live_run(tmp_path / "live", clock.now) / "control.json"
    app = make_app(tmp_path, clock)
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_for(pilot, lambda: app.selected_run is not None)
        await pilot.press("equals_sign")
        await pilot.press("5", "0", "0", "0", "enter")
        assert "log_every 2000 (requested 5000, clamped to 2000, was 10)" in status(app)
        assert any("log_every 5000 clamped to 2000" in line for line in log_lines(app))
        clock.quiet()
        await wait_for(pilot, control.exists)
        assert read_json(control)["log_every"] == 2000


@run_async
async def test_unwritable_control_file_is_reported_in_the_alert_log(tmp_path: Path) -> None:
    clock = Clock()
    run_dir = live_run(tmp_path / "live", clock.now)
    app = make_app(tmp_path, clock)
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_for(pilot, lambda: app.selected_run is not None)
        (run_dir / "control.json").mkdir()  # os.replace onto a directory fails, even as root
        await pilot.press("plus")
        clock.quiet()
        await wait_for(pilot, lambda: any("log_every not changed" in line for line in log_lines(app)))
        assert "request failed" in status(app)


def _ended(status_name: str) -> Callable[[Path, float], None]:
    def write(run_dir: Path, now: float) -> None:
        live_run(run_dir, now - 5)
        end = {"event": "end", "time": now - 4, "status": status_name}
        if status_name == "killed":
            end["signal"] = "SIGTERM"
        append(run_dir, [end])

    return write


def _unknown(run_dir: Path, now: float) -> None:
    """A seed-004 debug log (a format with no end record) last written an hour ago: no live writer."""
    run_dir.mkdir(parents=True)
    lines = [
        json.dumps({"event_type": "training_step", "step": s, "time": now - 3700 + s, "data": {"loss": 1.0}})
        for s in range(1, 11)
    ]
    (run_dir / "debug_log_0.jsonl").write_text("\n".join(lines) + "\n")
    os.utime(run_dir / "debug_log_0.jsonl", (now - 3600, now - 3600))


@pytest.mark.parametrize(
    ("make_run", "said"),
    [
        (_ended("finished"), "has finished: its trainer is not running"),
        (_ended("crashed"), "has crashed: its trainer is not running"),
        (_ended("killed"), "was killed: its trainer is not running"),
        (_unknown, "no trainer is writing this run"),
    ],
    ids=["finished", "crashed", "killed", "unknown"],
)
@run_async
async def test_keys_on_a_run_whose_trainer_is_not_running_write_nothing_and_say_so(
    tmp_path: Path, make_run: Callable[[Path, float], None], said: str
) -> None:
    clock = Clock()
    run_dir = tmp_path / "done"
    make_run(run_dir, clock.now)
    app = make_app(tmp_path, clock)
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_for(pilot, lambda: app.selected_run is not None and app.loaded)
        for key in ("plus", "minus", "equals_sign"):
            before = len(log_lines(app))
            await pilot.press(key)
            await wait_for(pilot, lambda: len(log_lines(app)) > before)  # noqa: B023
            assert said in log_lines(app)[-1] and "log_every was not changed" in log_lines(app)[-1]
        assert len(app.screen_stack) == 1  # `=` opened no prompt
        assert app.control.pending == {} and app.control.states == {}  # nothing queued, so no write
        assert not (run_dir / "control.json").exists()


@run_async
async def test_a_request_not_applied_within_ten_seconds_reads_not_acknowledged(tmp_path: Path) -> None:
    clock = Clock()
    run_dir = live_run(tmp_path / "live", clock.now)
    app = make_app(tmp_path, clock)
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_for(pilot, lambda: app.selected_run is not None)
        run = app.selected_run
        assert run is not None
        await pilot.press("plus")
        clock.quiet()
        await wait_for(pilot, lambda: app.control.states[run.path].written_at is not None)
        clock.now += 9.0
        assert "log_every 20 (requested, was 10)" in status(app)
        clock.now += 2.0
        assert "log_every 10 (20 not acknowledged)" in status(app)
        # The once-a-second tick puts it in the alert log too, once.
        await wait_for(pilot, lambda: any("not acknowledged after 10s" in line for line in log_lines(app)))
        # A late answer still counts.
        answer(run_dir, clock.now, 1100, 10, 20, 20)
        await wait_for(pilot, lambda: "log_every 20 (applied at step 1100)" in status(app))
        assert sum("not acknowledged" in line for line in log_lines(app)) == 1
