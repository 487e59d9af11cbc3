"""The live monitor driven through Textual's Pilot, on real run directories, at 80x24 and 120x40."""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path

import pytest
from textual.pilot import Pilot
from textual.widgets import Footer
from textual.widgets._footer import FooterKey  # the keys the footer lays out (not exported)

from termmon.errors import UsageError
from termmon.model.run import Run
from termmon.model.workspace import Workspace
from termmon.views.actions import ACTIONS
from termmon.views.alert_feed import AlertRow
from termmon.views.app import MonitorApp, run_monitor
from termmon.views.widgets.alert_log import AlertLog
from termmon.views.widgets.chart import ChartPanel
from termmon.views.widgets.run_picker import RunPicker
from tests.tui_fixtures import NOW, append, epoch, run_async, steps, wait_for, workspace_dir

SIZES = [(80, 24), (120, 40)]


def make_app(root: Path, live: bool = True) -> MonitorApp:
    workspace = Workspace([str(root)])
    if not live:
        workspace.refresh()
    return MonitorApp(workspace, watched=["runs"], live=live, clock=lambda: NOW, export_dir=root)


def panel_titled(app: MonitorApp, title: str) -> ChartPanel:
    return next(p for p in app.query(ChartPanel) if p.spec.title == title)


def loss_panel(app: MonitorApp) -> ChartPanel:
    return panel_titled(app, "loss")


async def healthy_run_on_screen(app: MonitorApp, pilot: Pilot[int]) -> tuple[Run, Callable[[], float]]:
    """The fixture's healthy run, selected with its loss drawn to step 1000, and its loss panel's last x."""
    await wait_for(pilot, lambda: app.selected_run is not None and app.selected_run.name == "blobs_a")
    run = app.selected_run
    assert run is not None

    def last_x() -> float:
        return max(float(t.points.x.max()) for t in loss_panel(app).data.traces)

    await wait_for(pilot, lambda: loss_panel(app).data is not None and last_x() == 1000)
    return run, last_x


async def alerts_on_screen(app: MonitorApp, pilot: Pilot[int]) -> AlertLog:
    """The alert log once the fixture's runs are loaded and their alerts laid out."""
    log = app.query_one(AlertLog)
    await wait_for(pilot, lambda: app.loaded and bool(log.lines))
    return log


def shown_alerts(log: AlertLog) -> str:
    """The alert log's text as the panel shows it, top first, wrapped lines joined."""
    return " ".join(line.text.strip() for line in log.lines)


def picker_lines(app: MonitorApp) -> list[str]:
    picker = app.query_one(RunPicker)
    return [str(picker.get_option_at_index(i).prompt) for i in range(picker.option_count)]


@pytest.mark.parametrize("size", SIZES)
@run_async
async def test_keys_move_selection_mark_runs_and_quit(tmp_path: Path, size: tuple[int, int]) -> None:
    app = make_app(workspace_dir(tmp_path))
    async with app.run_test(size=size) as pilot:
        await wait_for(pilot, lambda: app.loaded and loss_panel(app).data is not None)
        names = [app.workspace.runs[p].name for p in app.query_one(RunPicker).paths]
        assert sorted(names) == ["blobs_a", "diverging_c", "lora_b"]
        first = app.selected
        await pilot.press("j")
        await wait_for(pilot, lambda: app.selected != first)
        second = app.selected
        await pilot.press("k")
        await wait_for(pilot, lambda: app.selected == first)
        await pilot.press("space", "down", "space")
        assert app.marked == [first, second]
        # Both marked runs are overlaid in every panel that has their metrics.
        await wait_for(pilot, lambda: {t.run_path for t in loss_panel(app).data.traces} == {first, second})
        await pilot.press("space")
        assert app.marked == [first]
        await pilot.press("q")
    assert app.return_code == 0


@pytest.mark.parametrize("size", SIZES)
@run_async
async def test_smoothing_and_log_scale_toggle(tmp_path: Path, size: tuple[int, int]) -> None:
    app = make_app(workspace_dir(tmp_path))
    async with app.run_test(size=size) as pilot:
        await wait_for(pilot, lambda: loss_panel(app).data is not None)
        assert all(t.smoothed is None for t in loss_panel(app).data.traces)
        await pilot.press("s")
        await wait_for(pilot, lambda: all(t.smoothed is not None for t in loss_panel(app).data.traces))
        raw_max = max(float(t.points.y.max()) for t in loss_panel(app).data.traces)
        loss_panel(app).focus()  # `l` acts on the focused panel
        await pilot.press("l")
        await wait_for(pilot, lambda: loss_panel(app).data.scale.kind == "log")
        assert loss_panel(app).data.title == "loss (log)"
        log_max = max(float(t.points.y.max()) for t in loss_panel(app).data.traces)
        assert log_max == pytest.approx(math.log10(raw_max), abs=1e-6)


@run_async
async def test_appended_records_reach_the_panels_and_torn_lines_never_show(tmp_path: Path) -> None:
    root = workspace_dir(tmp_path)
    app = make_app(root)
    async with app.run_test(size=(120, 40)) as pilot:
        run, last_x = await healthy_run_on_screen(app, pilot)
        # A torn write: half a record, no newline. Nothing may appear from it.
        line = '{"event":"step","time":1767226700.0,"step":1010,"train_loss":0.123}'
        with open(run.path / "metrics.jsonl", "a") as fh:
            fh.write(line[:25])
        await pilot.pause(1.5)
        assert last_x() == 1000 and run.bad_lines == 0
        with open(run.path / "metrics.jsonl", "a") as fh:
            fh.write(line[25:] + "\n")
        await wait_for(pilot, lambda: last_x() == 1010)
        step_trace = next(t for t in loss_panel(app).data.traces if t.metric == "train_loss")
        assert float(step_trace.points.y[step_trace.points.x == 1010][0]) == pytest.approx(0.123)
        # Epoch-level records land in the same panel and the diagnostics panels.
        append(run.path, [epoch(10, 1100), *steps(1110, 1200)])
        await wait_for(pilot, lambda: last_x() == 1200)
        silhouette = app.query_one("#panel-0", ChartPanel)
        await wait_for(pilot, lambda: float(silhouette.data.traces[0].points.x.max()) == 1100)


@run_async
async def test_new_run_under_watched_parent_appears(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("termmon.model.workspace.RESCAN_SECONDS", 0.2)
    root = workspace_dir(tmp_path)
    app = make_app(root)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: len(app.query_one(RunPicker).paths) == 3)
        append(root / "late_run", steps(10, 100))
        await wait_for(pilot, lambda: len(app.query_one(RunPicker).paths) == 4)


@run_async
async def test_nan_and_inf_are_marked_and_missing_diagnostics_explained(tmp_path: Path) -> None:
    app = make_app(workspace_dir(tmp_path), live=False)
    async with app.run_test(size=(120, 40)) as pilot:
        names = {app.workspace.runs[p].name: p for p in app.query_one(RunPicker).paths}
        app.query_one(RunPicker).highlighted = list(names).index("diverging_c")
        await wait_for(pilot, lambda: app.selected == names["diverging_c"])
        await wait_for(pilot, lambda: loss_panel(app).data.traces[0].nonfinite == 3)
        points = loss_panel(app).data.traces[0].points
        assert list(points.posinf_x) == [510] and list(points.nan_x) == [520, 530]
        assert "NaN/Inf" in str(loss_panel(app).border_title)
        app.query_one(RunPicker).highlighted = list(names).index("lora_b")
        await wait_for(pilot, lambda: app.selected == names["lora_b"])
        # A run without diagnostics gets panels of its own metrics, each with a chart.
        await wait_for(
            pilot,
            lambda: (
                [p.spec.title for p in app.query(ChartPanel)][:3] == ["loss", "learning rate", "grad norm"]
            ),
        )
        await wait_for(
            pilot, lambda: all(p.data is not None and not p.data.message for p in app.query(ChartPanel))
        )


@run_async
async def test_metric_picker_puts_another_metric_in_the_focused_panel(tmp_path: Path) -> None:
    app = make_app(workspace_dir(tmp_path), live=False)
    async with app.run_test(size=(120, 40)) as pilot:
        panel = app.query_one("#panel-1", ChartPanel)
        panel.focus()
        await pilot.press("m")
        await pilot.pause()
        options = app.screen.query_one("#metric-list")
        metrics = app.screen.metrics  # type: ignore[attr-defined]
        options.highlighted = metrics.index("grad_norm")  # type: ignore[attr-defined]
        await pilot.press("enter")
        await wait_for(pilot, lambda: panel.data is not None and panel.data.title == "grad_norm")
        assert panel.data.traces and panel.data.traces[0].metric == "grad_norm"
        # The choice survives selection changes; `d` restores the default.
        await pilot.press("tab", "j")
        assert panel.spec.title == "grad_norm"
        panel.focus()
        await pilot.press("d")
        await wait_for(pilot, lambda: panel.data.title != "grad_norm")


@run_async
async def test_filter_and_help(tmp_path: Path) -> None:
    app = make_app(workspace_dir(tmp_path), live=False)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("slash", "l", "o", "r")
        await wait_for(pilot, lambda: len(app.query_one(RunPicker).paths) == 1)
        assert app.selected_run is not None and app.selected_run.name == "lora_b"
        await pilot.press("enter", "escape")
        await wait_for(pilot, lambda: len(app.query_one(RunPicker).paths) == 3)
        await pilot.press("question_mark")
        await pilot.pause()
        assert type(app.screen).__name__ == "HelpScreen"
        await pilot.press("escape")
        await pilot.pause()
        assert type(app.screen).__name__ == "Screen"


@run_async
async def test_names_from_disk_are_shown_literally(tmp_path: Path) -> None:
    append(tmp_path / "[red]x", steps(10, 50))
    append(tmp_path / "evil\x1b[2Jname", steps(10, 50))
    app = make_app(tmp_path, live=False)
    async with app.run_test(size=(120, 40)):
        lines = picker_lines(app)
        assert any("[red]x" in line for line in lines)
        assert not any("\x1b" in line for line in lines)
        assert any("evil\\x1b[2Jname" in line for line in lines)  # shown, never acted on


@pytest.mark.parametrize("size", [(80, 24), (120, 40), (40, 12), (200, 60), (20, 8)])
@run_async
async def test_resize_never_crashes(tmp_path: Path, size: tuple[int, int]) -> None:
    app = make_app(workspace_dir(tmp_path), live=False)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.resize_terminal(*size)
        await pilot.pause(0.3)
        await pilot.press("j", "s", "l")
        await pilot.pause(0.3)
        assert app.is_running


def test_missing_path_is_a_usage_error_before_the_app_starts(tmp_path: Path) -> None:
    with pytest.raises(UsageError):
        run_monitor([str(tmp_path / "nope")], poll=None, config=None)


@run_async
async def test_a_redraw_whose_due_time_has_passed_still_comes(tmp_path: Path) -> None:
    # A held-back row's wait was "due minus now" from two clock reads, so on a loaded machine it could come
    # out negative, and Textual's timer spins the event loop forever on a negative delay: the demo froze,
    # keys ignored, nothing redrawn. A wait that is already over must mean "redraw now".
    app = make_app(workspace_dir(tmp_path))
    async with app.run_test(size=(120, 40)) as pilot:
        run, last_x = await healthy_run_on_screen(app, pilot)
        app._redraw_later([-0.25])
        append(run.path, steps(1010, 1100))
        await wait_for(pilot, lambda: last_x() == 1100)
        first = app.selected
        await pilot.press("down")
        await wait_for(pilot, lambda: app.selected != first)


@run_async
async def test_the_newest_alert_is_at_the_top_and_whole(tmp_path: Path) -> None:
    # In a panel a few rows high, a log scrolled to its end starts on the wrapped tail of an older alert.
    app = make_app(workspace_dir(tmp_path))
    async with app.run_test(size=(80, 24)) as pilot:
        log = await alerts_on_screen(app, pilot)
        older = log.entries[-1].plain
        log.note("control.json was rewritten with garbage; " * 6)
        await wait_for(pilot, lambda: shown_alerts(log).startswith("WARN control.json was rewritten"))
        assert shown_alerts(log).index("WARN control.json") < shown_alerts(log).index(
            older.split()[0] + " " + older.split()[1]
        )
        assert log.scroll_y == 0
        # A reader scrolled down to older alerts keeps them in view when a new one arrives above.
        log.scroll_to(y=2, animate=False)
        await wait_for(pilot, lambda: log.scroll_y == 2)
        top = log.lines[2].text
        log.note("a second note")
        await wait_for(pilot, lambda: shown_alerts(log).startswith("WARN a second note"))
        assert log.lines[round(log.scroll_y)].text == top
        log.note("news that goes below the problems", "info")  # arrives below the line in view
        await wait_for(pilot, lambda: "news that goes below" in shown_alerts(log))
        assert log.lines[round(log.scroll_y)].text == top


@run_async
async def test_alerts_a_monitor_starts_with_are_newest_first_by_when_they_happened(tmp_path: Path) -> None:
    # Runs are read one by one, so the order alerts arrive in at start says nothing about which is latest.
    app = make_app(workspace_dir(tmp_path))
    async with app.run_test(size=(120, 35)) as pilot:
        log = await alerts_on_screen(app, pilot)

        def row(name: str, when: float, severity: str = "warning") -> AlertRow:
            return AlertRow(tmp_path / name, name, "plateau", severity, 10, None, when, f"{name} message")

        log.add_alerts(
            [row("good_news", NOW, "info"), row("later_run", NOW - 60), row("earlier_run", NOW - 3600)]
        )
        log.add_alerts([row("earliest_run", NOW - 7200, "critical")])
        await wait_for(pilot, lambda: "earliest_run message" in shown_alerts(log))
        text = shown_alerts(log)
        # Problems newest first, then news however new.
        assert text.index("later_run") < text.index("earlier_run") < text.index("earliest_run")
        assert text.index("earliest_run") < text.index("good_news")


@run_async
async def test_alerts_rewrap_to_the_panel_on_a_resize(tmp_path: Path) -> None:
    app = make_app(workspace_dir(tmp_path))
    async with app.run_test(size=(120, 35)) as pilot:
        log = await alerts_on_screen(app, pilot)
        words = lambda: shown_alerts(log).split()  # noqa: E731
        wide, wide_lines = words(), len(log.lines)
        await pilot.resize_terminal(80, 24)  # the narrow layout: a narrower alerts panel
        await wait_for(pilot, lambda: len(log.lines) > wide_lines)
        assert words() == wide  # the same text, none cropped, on more lines
        assert all(line.cell_length <= log.scrollable_content_region.width for line in log.lines)


def footer_keys(app: MonitorApp, width: int) -> tuple[set[str], bool]:
    """The footer keys shown whole and clear of the palette's key; whether the palette's key is shown."""
    found = list(app.query_one(Footer).query(FooterKey))
    ctrl_p = next((k for k in found if k.has_class("-command-palette")), None)
    end = ctrl_p.region.x if ctrl_p is not None else width
    return {k.description for k in found if k is not ctrl_p and k.region.right <= end}, ctrl_p is not None


@pytest.mark.parametrize(("width", "palette"), [(80, False), (100, True), (120, True)])
@run_async
async def test_every_footer_key_shows_whole_and_the_palette_key_where_it_fits(
    tmp_path: Path, width: int, palette: bool
) -> None:
    """At 80 columns the footer ran out mid-word ("e Expor", under the palette's key): each key of the
    registry's footer is shown whole, clear of the palette's key, at every width."""
    wanted = {action.name for action in ACTIONS if action.footer}
    app = make_app(workspace_dir(tmp_path), live=False)
    async with app.run_test(size=(width, 24)) as pilot:
        await wait_for(pilot, lambda: footer_keys(app, width) == (wanted, palette))
