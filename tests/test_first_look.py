"""The reader's first look reaches the UI before its first frame when it is quick, and exactly once,
through the reading loop, when it is not (issue 15: no empty "loading…" frame before the data)."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from textual.strip import Strip

from termmon.model.workspace import Workspace
from termmon.views import app as app_module
from termmon.views.app import MonitorApp
from termmon.views.first_look import FirstLook
from termmon.views.widgets.chart import ChartPanel
from tests.tui_fixtures import NOW, healthy, run_async, wait_for


def test_an_offer_before_the_wait_is_taken_and_a_late_one_is_refused() -> None:
    look: FirstLook[str] = FirstLook()
    assert look.offer("runs")
    assert look.take(0) == "runs"
    assert not look.offer("again")  # one look only
    late: FirstLook[str] = FirstLook()
    assert late.take(0) is None  # nothing came in time ...
    assert not late.offer("runs")  # ... so the reader hands it over itself


def _offer(look: FirstLook[int], start: threading.Barrier, offered: list[bool]) -> None:
    start.wait()
    offered.append(look.offer(1))


def test_racing_threads_deliver_the_look_exactly_once() -> None:
    for _ in range(300):
        look: FirstLook[int] = FirstLook()
        start = threading.Barrier(2)
        offered: list[bool] = []
        thread = threading.Thread(target=_offer, args=(look, start, offered))
        thread.start()
        start.wait()
        taken = look.take(0)
        thread.join()
        assert (taken == 1) == offered[0]  # taken by the UI, or handed over by the reader: never both


class Watched(MonitorApp):
    """Notes how many runs the workspace held when the watching started (before the first frame)."""

    runs_at_start = -1

    def _start_watching(self) -> None:
        super()._start_watching()
        self.runs_at_start = len(self.workspace.runs)


class HeldFirstPoll(Workspace):
    """Its first poll waits for ``release``: a first look on a filesystem slower than the UI's wait."""

    def __init__(self, paths: list[str]) -> None:
        super().__init__(paths)
        self.release = threading.Event()

    def poll(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        self.release.wait(timeout=60)
        return super().poll(*args, **kwargs)


@run_async
async def test_a_quick_first_look_is_in_the_model_before_the_first_frame(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(app_module, "FIRST_LOOK_WAIT", 60.0)  # the wait ends when the look comes
    renders: list[bool] = []  # per panel line rendered: whether the panel had its data
    render_line = ChartPanel.render_line

    def noted(panel: ChartPanel, y: int) -> Strip:
        renders.append(panel.data is not None)
        return render_line(panel, y)

    monkeypatch.setattr(ChartPanel, "render_line", noted)
    workspace = Workspace([str(two_runs(tmp_path))])
    app = Watched(workspace, watched=["runs"], clock=lambda: NOW)
    try:
        async with app.run_test(size=(120, 35)) as pilot:
            await wait_for(pilot, lambda: app.loaded)
            assert app.runs_at_start == 2
            assert records(app.workspace) == whole_read(tmp_path)
            assert renders and all(renders)  # no "loading…" frame first: the first one had the data
    finally:
        workspace.close()


@run_async
async def test_a_slow_first_look_arrives_once_after_the_first_frame(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(app_module, "FIRST_LOOK_WAIT", 0.0)  # the UI does not wait at all
    workspace = HeldFirstPoll([str(two_runs(tmp_path))])
    app = Watched(workspace, watched=["runs"], clock=lambda: NOW)
    try:
        async with app.run_test(size=(120, 35)) as pilot:
            await wait_for(pilot, lambda: app.runs_at_start == 0)  # the screen came up without it
            workspace.release.set()
            await wait_for(pilot, lambda: app.loaded)
            assert records(app.workspace) == whole_read(tmp_path)  # every record, none twice
    finally:
        workspace.release.set()
        workspace.close()


def two_runs(root: Path) -> Path:
    for name in ("a", "b"):
        healthy(root / name, epochs=2)
    return root


def records(workspace: Workspace) -> dict[Path, int]:
    return {path: run.records for path, run in workspace.runs.items()}


def whole_read(root: Path) -> dict[Path, int]:
    workspace = Workspace([str(root)])
    workspace.refresh()
    workspace.close()
    return records(workspace)
