"""Snapshots of the main layouts: fixed runs, a frozen clock, no watcher thread (``live=False``)."""

from __future__ import annotations

from pathlib import Path

import pytest
from textual.pilot import Pilot

from termmon.model.workspace import Workspace
from termmon.views.app import MonitorApp
from termmon.views.widgets.chart import ChartPanel
from tests.tui_fixtures import NOW, workspace_dir

SNAPSHOT_ROOT = Path("/tmp/termmon-snapshot-runs")  # fixed: the watched path is part of the picture


@pytest.fixture
def app() -> MonitorApp:
    import shutil

    shutil.rmtree(SNAPSHOT_ROOT, ignore_errors=True)
    workspace = Workspace([str(workspace_dir(SNAPSHOT_ROOT))])
    workspace.refresh()
    return MonitorApp(workspace, watched=["experiments/"], live=False, clock=lambda: NOW)


def test_wide_layout(app: MonitorApp, snap_compare) -> None:  # type: ignore[no-untyped-def]
    assert snap_compare(app, terminal_size=(120, 35))


def test_narrow_layout(app: MonitorApp, snap_compare) -> None:  # type: ignore[no-untyped-def]
    assert snap_compare(app, terminal_size=(80, 24))


def test_overlay_smoothed(app: MonitorApp, snap_compare) -> None:  # type: ignore[no-untyped-def]
    async def mark_two_and_smooth(pilot: Pilot[int]) -> None:
        await pilot.press("space", "j", "space", "s")
        loss = app.query_one("#panel-3", ChartPanel)
        while not (
            loss.data and len({t.run_path for t in loss.data.traces}) == 2 and loss.data.traces[0].smoothed
        ):
            await pilot.pause(0.05)  # redraws are throttled: wait for the one that shows all three keys
        await pilot.pause(0.3)

    assert snap_compare(app, run_before=mark_two_and_smooth, terminal_size=(120, 35))


def test_help(app: MonitorApp, snap_compare) -> None:  # type: ignore[no-untyped-def]
    assert snap_compare(app, press=["question_mark"], terminal_size=(120, 35))
