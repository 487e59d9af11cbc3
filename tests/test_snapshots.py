"""Snapshots of the monitor at 80x24, 120x35 and 200x60: fixed runs, a frozen clock, no watcher thread.

Each picture was looked at before it was accepted (``pytest --snapshot-update``, then the SVG viewed).
"""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest
from textual.command import CommandList, CommandPalette
from textual.pilot import Pilot
from textual.widgets import Input

from termmon.model.workspace import Workspace
from termmon.views.app import MonitorApp
from termmon.views.screens import HelpScreen
from termmon.views.widgets.chart import ChartPanel
from termmon.views.widgets.run_picker import RunPicker
from tests.tui_fixtures import NOW, exploding, workspace_dir

SNAPSHOT_ROOT = Path("/tmp/termmon-snapshot-runs")  # fixed: the watched path is part of the picture
SIZES = [(80, 24), (120, 35), (200, 60)]
Prepare = Callable[[Pilot[int]], Awaitable[None]]


@pytest.fixture
def app() -> MonitorApp:
    shutil.rmtree(SNAPSHOT_ROOT, ignore_errors=True)
    workspace_dir(SNAPSHOT_ROOT)
    exploding(SNAPSHOT_ROOT / "exploding_d")
    workspace = Workspace([str(SNAPSHOT_ROOT)])
    workspace.refresh()
    return MonitorApp(workspace, watched=["experiments/"], live=False, clock=lambda: NOW, bell=False)


async def until(pilot: Pilot[int], condition: Callable[[], bool]) -> None:
    deadline = asyncio.get_running_loop().time() + 15
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, "the screen never got there"
        await pilot.pause(0.05)


def drawn(app: MonitorApp) -> bool:
    """Every panel drawn for the current selection and nothing pending."""
    panels = list(app.query(ChartPanel))
    runs = tuple(r.path for r in app.panel_runs())
    return (
        app.loaded
        and bool(panels)
        and app._redraw_timer is None
        and all(
            p.data is not None and isinstance(p.signature, tuple) and p.signature[0][1] == runs
            for p in panels
        )
    )


async def select(app: MonitorApp, pilot: Pilot[int], name: str) -> None:
    picker = app.query_one(RunPicker)
    await until(pilot, lambda: bool(picker.paths))
    names = [app.workspace.runs[p].name for p in picker.paths]
    current = picker.paths.index(app.selected) if app.selected in picker.paths else 0
    for _ in range(names.index(name) - current):
        before = app.selected
        await pilot.press("j")
        await until(pilot, lambda b=before: app.selected != b)  # type: ignore[misc]
    await until(pilot, lambda: app.selected_run is not None and app.selected_run.name == name)


def loss(app: MonitorApp) -> ChartPanel:
    return next(p for p in app.query(ChartPanel) if p.spec.title == "loss")


def scenario(name: str) -> Callable[[MonitorApp], Prepare]:
    def build(app: MonitorApp) -> Prepare:
        async def prepare(pilot: Pilot[int]) -> None:
            await until(pilot, lambda: app.loaded)
            if name == "ordinary":
                await select(app, pilot, "lora_b")
            elif name == "diverging":
                await select(app, pilot, "exploding_d")
            elif name == "overlay":
                await pilot.press("space", "j", "space", "j", "space")  # blobs_a, diverging_c, exploding_d
                await select(app, pilot, "lora_b")
                await until(pilot, lambda: len(app.marked) == 3)
            elif name == "log":
                await select(app, pilot, "lora_b")
                await until(pilot, lambda: drawn(app))
                loss(app).focus()
                await pilot.press("l")
                await until(pilot, lambda: loss(app).data is not None and loss(app).data.scale.kind == "log")  # type: ignore[union-attr]
            elif name == "inspector":
                await pilot.press("space")
                await select(app, pilot, "lora_b")
                await until(pilot, lambda: drawn(app))
                loss(app).focus()
                await pilot.press("i", *["left"] * 12)
                await until(pilot, lambda: loss(app).cursor is not None and loss(app).cursor < 0.75)  # type: ignore[operator]
            await until(pilot, lambda: drawn(app))
            if name == "help":
                await pilot.press("question_mark")
                await until(pilot, lambda: isinstance(app.screen, HelpScreen))
            elif name == "palette":
                await pilot.press("ctrl+p")
                await until(pilot, lambda: isinstance(app.screen, CommandPalette))
                total = len(list(app.get_system_commands(app.main_screen)))
                await until(pilot, lambda: app.screen.query_one(CommandList).option_count == total)
                await until(pilot, lambda: app.screen.query_one(CommandList).highlighted == 0)
                app.screen.query_one(Input).cursor_blink = False  # a blinking cursor is a coin toss per frame
            await pilot.pause(0.3)

        return prepare

    return build


SCENARIOS = ["diagnostics", "ordinary", "diverging", "overlay", "log", "help", "palette", "inspector"]


@pytest.mark.parametrize("size", SIZES, ids=[f"{w}x{h}" for w, h in SIZES])
@pytest.mark.parametrize("name", SCENARIOS)
def test_screen(app: MonitorApp, snap_compare, name: str, size: tuple[int, int]) -> None:  # type: ignore[no-untyped-def]
    assert snap_compare(app, run_before=scenario(name)(app), terminal_size=size)
