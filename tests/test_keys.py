"""Every key of the action table, pressed under Pilot, with what it must do: the table drives the test.

A key added to :data:`termmon.views.actions.ACTIONS` without an entry in ``EFFECTS`` fails
``test_every_action_has_a_check``; help and the palette are checked against the same table.
"""

from __future__ import annotations

import io
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest
from rich.console import Console
from textual.command import CommandPalette
from textual.pilot import Pilot
from textual.widgets import Static

from termmon.model.workspace import Workspace
from termmon.views.actions import ACTIONS, Action
from termmon.views.app import MonitorApp
from termmon.views.screens import HelpScreen, LogEveryPrompt, MetricPicker
from termmon.views.widgets.alert_log import AlertLog
from termmon.views.widgets.chart import ChartPanel
from termmon.views.widgets.run_picker import RunPicker
from tests.tui_fixtures import NOW, run_async, wait_for, workspace_dir

Check = Callable[[MonitorApp, Pilot[int], Action], Awaitable[None]]


def key(action: Action) -> str:
    return action.keys.split(",")[0]


def names(app: MonitorApp) -> list[str]:
    return [app.workspace.runs[p].name for p in app.query_one(RunPicker).paths]


def panel(app: MonitorApp, title: str = "loss") -> ChartPanel:
    return next(p for p in app.query(ChartPanel) if p.spec.title == title)


async def focus_loss(app: MonitorApp, pilot: Pilot[int]) -> ChartPanel:
    loss = panel(app)
    await wait_for(pilot, lambda: loss.data is not None and bool(loss.data.traces))
    loss.focus()
    await pilot.pause()
    return loss


def x_width(p: ChartPanel) -> float:
    assert p.data is not None and p.data.x_range is not None
    return p.data.x_range[1] - p.data.x_range[0]


async def next_run(app: MonitorApp, pilot: Pilot[int], action: Action) -> None:
    first = app.selected
    await pilot.press(key(action))
    await wait_for(pilot, lambda: app.selected != first)
    assert app.selected == app.query_one(RunPicker).paths[1]


async def previous_run_stops_at_first(app: MonitorApp, pilot: Pilot[int], action: Action) -> None:
    first = app.selected
    await pilot.press(key(action))  # already on the first run: no wrapping round to the last
    await pilot.pause(0.2)
    assert app.selected == first
    await pilot.press("j", key(action))
    await wait_for(pilot, lambda: app.selected == first)


async def mark(app: MonitorApp, pilot: Pilot[int], action: Action) -> None:
    await pilot.press(key(action))
    assert app.marked == [app.selected]


async def clear_marks(app: MonitorApp, pilot: Pilot[int], action: Action) -> None:
    await pilot.press("space", "j", "space")
    assert len(app.marked) == 2
    await pilot.press(key(action))
    assert app.marked == []


async def pin(app: MonitorApp, pilot: Pilot[int], action: Action) -> None:
    await pilot.press("j", "j")
    await wait_for(pilot, lambda: app.selected == app.query_one(RunPicker).paths[2])
    chosen = app.selected
    await pilot.press(key(action))
    await wait_for(pilot, lambda: app.query_one(RunPicker).paths[0] == chosen)
    assert app.selected == chosen


async def filter_runs(app: MonitorApp, pilot: Pilot[int], action: Action) -> None:
    await pilot.press(key(action))
    await pilot.press(*"lora")
    await wait_for(pilot, lambda: names(app) == ["lora_b"])


async def pick_metric(app: MonitorApp, pilot: Pilot[int], action: Action) -> None:
    target = await focus_loss(app, pilot)
    await pilot.press(key(action))
    await wait_for(pilot, lambda: isinstance(app.screen, MetricPicker))
    await pilot.press(*"grad")  # type-ahead search
    picker = app.screen
    assert isinstance(picker, MetricPicker)
    await wait_for(pilot, lambda: picker.shown == ["grad_norm"])
    await pilot.press("enter")
    await wait_for(pilot, lambda: target.data is not None and target.data.title == "grad_norm")


async def add_panel(app: MonitorApp, pilot: Pilot[int], action: Action) -> None:
    before = len(app.query(ChartPanel))
    await pilot.press(key(action))
    await wait_for(pilot, lambda: isinstance(app.screen, MetricPicker))
    await pilot.press(*"lr", "enter")
    await wait_for(pilot, lambda: len(app.query(ChartPanel)) == before + 1)
    await wait_for(pilot, lambda: panel(app, "lr").data is not None)


async def remove_panel(app: MonitorApp, pilot: Pilot[int], action: Action) -> None:
    before = len(app.query(ChartPanel))
    await focus_loss(app, pilot)
    await pilot.press(key(action))
    await wait_for(pilot, lambda: len(app.query(ChartPanel)) == before - 1)
    assert "loss" not in [p.spec.title for p in app.query(ChartPanel)]


async def panels_follow_run(app: MonitorApp, pilot: Pilot[int], action: Action) -> None:
    await focus_loss(app, pilot)
    await pilot.press("x")
    await wait_for(pilot, lambda: "loss" not in [p.spec.title for p in app.query(ChartPanel)])
    await pilot.press(key(action))
    await wait_for(pilot, lambda: "loss" in [p.spec.title for p in app.query(ChartPanel)])
    assert app.layout is None


async def next_page(app: MonitorApp, pilot: Pilot[int], action: Action) -> None:
    run = app.selected_run
    assert run is not None
    await pilot.press(key(action))
    # Page 2 is the first page of every metric of the run, one panel each, in name order.
    await wait_for(pilot, lambda: [p.spec.title for p in app.query(ChartPanel)] == run.metric_names()[:4])
    assert "page 2/" in str(app.status_text(NOW))


async def previous_page(app: MonitorApp, pilot: Pilot[int], action: Action) -> None:
    await pilot.press("right_square_bracket", "right_square_bracket")
    await wait_for(pilot, lambda: app.page == 2)
    await pilot.press(key(action))
    await wait_for(pilot, lambda: app.page == 1)
    await pilot.press(key(action), key(action))
    await wait_for(pilot, lambda: "silhouette score" in [p.spec.title for p in app.query(ChartPanel)])
    assert app.page == 0


async def log_every(app: MonitorApp, pilot: Pilot[int], action: Action) -> None:
    """The key is answered on the status line or in the alert log (what it says is item 7's)."""
    before = (str(app.status_text(NOW)), len(app.query_one(AlertLog).entries))
    await pilot.press(key(action))
    await wait_for(pilot, lambda: (str(app.status_text(NOW)), len(app.query_one(AlertLog).entries)) != before)


async def select_live_run(app: MonitorApp, pilot: Pilot[int]) -> None:
    """Control keys act only on a run whose trainer is running: diverging_c's files were just written."""
    for _ in range(len(app.workspace.runs)):
        if app.selected_run is not None and app.selected_run.name == "diverging_c":
            return
        await pilot.press("j")
        await pilot.pause()
    raise AssertionError("no live run to select")


async def log_every_exact(app: MonitorApp, pilot: Pilot[int], action: Action) -> None:
    await select_live_run(app, pilot)
    await pilot.press(key(action))
    await wait_for(pilot, lambda: isinstance(app.screen, LogEveryPrompt))
    await pilot.press("escape")
    await wait_for(pilot, lambda: not isinstance(app.screen, LogEveryPrompt))


async def smoothing(app: MonitorApp, pilot: Pilot[int], action: Action) -> None:
    loss = panel(app)
    clusters = panel(app, "clusters (DBSCAN)")
    await wait_for(pilot, lambda: loss.data is not None and clusters.data is not None)
    for expected in ("light", "strong"):
        await pilot.press(key(action))
        await wait_for(pilot, lambda: loss.data is not None and loss.data.traces[0].smoothed is not None)
        assert f"smoothing {expected}" in str(app.status_text(NOW))
        assert clusters.data is not None and clusters.data.integer
        assert all(t.smoothed is None for t in clusters.data.traces)  # counts are never smoothed
    await pilot.press(key(action))
    await wait_for(pilot, lambda: loss.data is not None and loss.data.traces[0].smoothed is None)


async def toggle_log(app: MonitorApp, pilot: Pilot[int], action: Action) -> None:
    corr = panel(app, "weight correlation")  # not a loss panel: `l` works on any panel
    await wait_for(pilot, lambda: corr.data is not None and corr.data.scale.kind == "linear")
    corr.focus()
    await pilot.press(key(action))
    await wait_for(pilot, lambda: corr.data is not None and corr.data.title == "weight correlation (log)")
    await pilot.press(key(action))
    await wait_for(pilot, lambda: corr.data is not None and corr.data.scale.kind == "linear")


async def inspect(app: MonitorApp, pilot: Pilot[int], action: Action) -> None:
    loss = await focus_loss(app, pilot)
    await pilot.press(key(action))
    await wait_for(pilot, lambda: loss.data is not None and loss.data.cursor_x is not None)
    assert loss.data is not None and loss.data.x_range is not None
    assert loss.data.cursor_x == loss.data.x_range[1]  # starts on the newest step
    assert [label for label, _, _ in loss.data.readout] == [t.label for t in loss.data.traces]
    assert "step 1000" in str(loss.border_subtitle)
    await pilot.press("left")
    await wait_for(
        pilot, lambda: loss.data is not None and loss.data.cursor_x is not None and loss.data.cursor_x < 1000
    )
    await pilot.press("escape")
    await wait_for(pilot, lambda: loss.data is not None and loss.data.cursor_x is None)


async def jump_alert(app: MonitorApp, pilot: Pilot[int], action: Action) -> None:
    assert names(app)[0] != "diverging_c" and app.last_critical is not None
    await pilot.press(key(action))
    await wait_for(pilot, lambda: app.selected_run is not None and app.selected_run.name == "diverging_c")


async def export(app: MonitorApp, pilot: Pilot[int], action: Action) -> None:
    assert app.export_dir is not None
    await pilot.press(key(action))
    # From the first moment the status line names the file: "exporting NAME…", then "exported NAME".
    assert "blobs_a-termmon-" in str(app.status_text(NOW))
    await wait_for(pilot, lambda: "exported blobs_a-termmon-" in str(app.status_text(NOW)), timeout=60)
    written = next(app.export_dir.glob("blobs_a-termmon-*.png"))
    assert any(str(written) in entry.plain for entry in app.query_one(AlertLog).entries)


async def focus_next(app: MonitorApp, pilot: Pilot[int], action: Action) -> None:
    before = app.focused
    await pilot.press(key(action))
    await wait_for(pilot, lambda: app.focused is not before)


async def zoom_in(app: MonitorApp, pilot: Pilot[int], action: Action) -> None:
    loss = await focus_loss(app, pilot)
    full = x_width(loss)
    await pilot.press(key(action))
    await wait_for(pilot, lambda: abs(x_width(loss) - full / 2) < 1e-6)
    assert loss.data is not None and loss.data.x_range is not None and loss.data.x_range[1] == 1000  # newest


async def zoom_out(app: MonitorApp, pilot: Pilot[int], action: Action) -> None:
    loss = await focus_loss(app, pilot)
    full = x_width(loss)
    await pilot.press("up", "up")
    await wait_for(pilot, lambda: abs(x_width(loss) - full / 4) < 1e-6)
    await pilot.press(key(action))
    await wait_for(pilot, lambda: abs(x_width(loss) - full / 2) < 1e-6)


async def zoom_all(app: MonitorApp, pilot: Pilot[int], action: Action) -> None:
    loss = await focus_loss(app, pilot)
    full = x_width(loss)
    await pilot.press("up", "up", "up")
    await wait_for(pilot, lambda: x_width(loss) < full / 4)
    await pilot.press(key(action))
    await wait_for(pilot, lambda: abs(x_width(loss) - full) < 1e-6)


async def pan(app: MonitorApp, pilot: Pilot[int], action: Action) -> None:
    loss = await focus_loss(app, pilot)
    await pilot.press("up", "up")
    await wait_for(pilot, lambda: loss.zoom == 2 and loss.data is not None and loss.data.x_range is not None)
    await pilot.press("left")  # back in time
    await wait_for(
        pilot, lambda: loss.data is not None and loss.data.x_range is not None and loss.data.x_range[1] < 1000
    )
    if action.action == "pan(1)":
        await pilot.press(key(action))
        await wait_for(
            pilot,
            lambda: loss.data is not None and loss.data.x_range is not None and loss.data.x_range[1] == 1000,
        )


async def picker_arrows(app: MonitorApp, pilot: Pilot[int], action: Action) -> None:
    app.query_one(RunPicker).focus()
    paths = app.query_one(RunPicker).paths
    if action.action == "move(1)":
        await pilot.press(key(action))
        await wait_for(pilot, lambda: app.selected == paths[1])
    else:
        await pilot.press(key(action))  # on the first run: stays
        await pilot.pause(0.2)
        assert app.selected == paths[0]


async def palette(app: MonitorApp, pilot: Pilot[int], action: Action) -> None:
    await pilot.press(key(action))
    await wait_for(pilot, lambda: isinstance(app.screen, CommandPalette))


async def show_help(app: MonitorApp, pilot: Pilot[int], action: Action) -> None:
    await pilot.press(key(action))
    await wait_for(pilot, lambda: isinstance(app.screen, HelpScreen))


async def escape(app: MonitorApp, pilot: Pilot[int], action: Action) -> None:
    await pilot.press("slash", "x")
    box = app.query_one("#filter")
    await wait_for(pilot, lambda: box.display and app.name_filter == "x")
    await pilot.press(key(action))
    await wait_for(pilot, lambda: not box.display and app.name_filter == "")


async def quit_monitor(app: MonitorApp, pilot: Pilot[int], action: Action) -> None:
    await pilot.press(key(action))
    await wait_for(pilot, lambda: app.return_code == 0)


EFFECTS: dict[tuple[str, str], Check] = {
    ("app", "move(1)"): next_run,
    ("app", "move(-1)"): previous_run_stops_at_first,
    ("picker", "move(1)"): picker_arrows,
    ("picker", "move(-1)"): picker_arrows,
    ("app", "mark"): mark,
    ("app", "clear_marks"): clear_marks,
    ("app", "pin"): pin,
    ("app", "filter"): filter_runs,
    ("app", "pick_metric"): pick_metric,
    ("app", "add_panel"): add_panel,
    ("app", "remove_panel"): remove_panel,
    ("app", "default_metric"): panels_follow_run,
    ("app", "page(1)"): next_page,
    ("app", "page(-1)"): previous_page,
    ("app", "log_every(2.0)"): log_every,
    ("app", "log_every(0.5)"): log_every,
    ("app", "log_every_exact"): log_every_exact,
    ("app", "cycle_smoothing"): smoothing,
    ("app", "toggle_log"): toggle_log,
    ("app", "inspect"): inspect,
    ("app", "jump_alert"): jump_alert,
    ("app", "export"): export,
    ("app", "focus_next"): focus_next,
    ("panel", "pan(-1)"): pan,
    ("panel", "pan(1)"): pan,
    ("panel", "zoom(1)"): zoom_in,
    ("panel", "zoom(-1)"): zoom_out,
    ("panel", "zoom_all"): zoom_all,
    ("app", "command_palette"): palette,
    ("app", "help"): show_help,
    ("app", "escape"): escape,
    ("app", "quit_monitor"): quit_monitor,
}


def test_every_action_has_a_check() -> None:
    assert {(a.scope, a.action) for a in ACTIONS} == set(EFFECTS)
    keys = [(a.scope, k) for a in ACTIONS for k in a.keys.split(",")]
    assert len(keys) == len(set(keys)), "a key bound twice in one scope"


@pytest.mark.parametrize("action", ACTIONS, ids=[f"{a.scope}:{a.shown}" for a in ACTIONS])
@run_async
async def test_key(tmp_path: Path, action: Action) -> None:
    root = workspace_dir(tmp_path / "runs")
    workspace = Workspace([str(root)])
    workspace.refresh()
    app = MonitorApp(
        workspace, watched=["runs"], live=False, clock=lambda: NOW, export_dir=tmp_path, bell=False
    )
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_for(pilot, lambda: app.loaded and names(app)[:1] == ["blobs_a"])
        await EFFECTS[(action.scope, action.action)](app, pilot, action)


@run_async
async def test_help_and_palette_list_the_table(tmp_path: Path) -> None:
    workspace = Workspace([str(workspace_dir(tmp_path / "runs"))])
    workspace.refresh()
    app = MonitorApp(workspace, watched=["runs"], live=False, clock=lambda: NOW)
    async with app.run_test(size=(120, 40)) as pilot:
        commands = [c.title for c in app.get_system_commands(app.screen)]
        assert len(commands) == len(set(commands)), "a palette entry listed twice"
        for action in ACTIONS:
            assert (action.name in commands) == action.palette
        for wanted in ("Mark", "Filter", "log×2", "log÷2"):  # missing from the palette before
            assert wanted in commands
        await pilot.press("question_mark")
        await wait_for(pilot, lambda: isinstance(app.screen, HelpScreen))
        console = Console(width=200, record=True, file=io.StringIO())
        console.print(app.screen.query_one("#help-keys", Static).content)
        shown = console.export_text()
        for action in ACTIONS:
            assert action.help in shown
