"""Tail-first loading (issue 15, items 1 and 4): a big run's recent window is shown before its history
is read, the history is swapped in without losing or repeating a record while the trainer appends, and
nothing is judged (status, alerts) from a run whose history is still loading."""

from __future__ import annotations

import math
import threading
from pathlib import Path

import numpy as np
import pytest

from termmon.format import METRICS_JSONL, encode_record
from termmon.ingest.jsonl import JsonlTailer
from termmon.model.run import RunStatus
from termmon.model.workspace import LEAD_WINDOW, ROW_WINDOW, Workspace
from termmon.views import app as app_module
from termmon.views.app import MonitorApp
from termmon.views.widgets.chart import ChartPanel
from tests.test_app import loss_panel
from tests.tui_fixtures import NOW, T0, append, healthy, run_async, start, wait_for

#: Enough lines that a 64 KiB window is a small part of the file.
LINES = 20_000


def step_line(step: int, loss: float | None = None) -> str:
    value = 1.0 / step if loss is None else loss
    return (
        encode_record({"event": "step", "time": T0 + step * 0.01, "step": step, "train_loss": value}) + "\n"
    )


def write_big(run_dir: Path, lines: int = LINES, *, nan_at: int | None = None, end: bool = False) -> Path:
    run_dir.mkdir(parents=True)
    with open(run_dir / METRICS_JSONL, "w") as fh:
        fh.write(encode_record(start(run_dir.name, log_every=1)) + "\n")
        fh.writelines(step_line(s, math.nan if s == nan_at else None) for s in range(1, lines + 1))
        if end:
            fh.write(encode_record({"event": "end", "time": T0 + lines * 0.01, "status": "finished"}) + "\n")
    return run_dir


# --- the tailer ---------------------------------------------------------------------------------------
def test_a_tail_start_keeps_whole_lines_only_and_still_sees_a_rewrite(tmp_path: Path) -> None:
    path = tmp_path / "m.jsonl"
    lines = [f'{{"i":{i:05d}}}'.encode() for i in range(1000)]  # 11 bytes and a newline each
    path.write_bytes(b"".join(line + b"\n" for line in lines))
    # A window that begins exactly at a line's start keeps that line; one that begins inside a line
    # drops the partial line.
    exact, inside = JsonlTailer(path), JsonlTailer(path)
    assert exact.start_at_tail(12 * 100) and inside.start_at_tail(12 * 100 - 5)
    assert exact.read().lines == lines[-100:]
    assert inside.read().lines == lines[-99:]
    with open(path, "ab") as fh:
        fh.write(b'{"i":"new"}\n')
    assert exact.read().lines == [b'{"i":"new"}']
    # Rewritten in place to a bigger file: the head differs, so it is a reset, as for a whole read.
    path.write_bytes(b"".join(b'{"j":' + line[5:] + b"\n" for line in lines) * 2)
    assert exact.read().reset
    small = JsonlTailer(path)
    assert not small.start_at_tail(10 << 20)  # no bigger than the window: read whole
    assert len(small.read(64 << 20).lines) == 2000


# --- the workspace ------------------------------------------------------------------------------------
def test_the_window_comes_first_and_the_swap_loses_and_repeats_nothing_while_appending(
    tmp_path: Path,
) -> None:
    run_dir = write_big(tmp_path / "big")
    workspace = Workspace([str(tmp_path)], max_bytes=128 << 10, tail_budget=1)
    try:
        workspace.apply(workspace.poll())
        run = workspace.runs[run_dir]
        window = run.series("train_loss")
        assert window is not None
        # Only the recent window: it ends at the last step and starts well after the first.
        assert run.loading and run.window_only and run.status(NOW) is RunStatus.LOADING
        assert window.step[-1] == LINES and 1 < window.step[0] < LINES - 100
        assert list(window.step) == list(range(int(window.step[0]), LINES + 1))
        generation, step, polls = run.generation, LINES, 0
        with open(run_dir / METRICS_JSONL, "a") as fh:
            while run.loading:
                # Between polls the trainer appends, the last record of each burst torn in two.
                line = step_line(step + 4)
                fh.write(step_line(step + 1) + step_line(step + 2) + step_line(step + 3) + line[:20])
                fh.flush()
                workspace.apply(workspace.poll())
                fh.write(line[20:])
                fh.flush()
                step, polls = step + 4, polls + 1
                # While loading, the window follows the appends (shown live).
                assert run.last_step == step - 1 or not run.loading
            for extra in range(step + 1, step + 50):
                fh.write(step_line(extra))
            step += 49
        assert polls > 5  # the history took several polls: the appends landed during the load
        for _ in range(3):
            workspace.apply(workspace.poll())
        assert run.generation > generation and not run.window_only
        series = run.series("train_loss")
        assert series is not None
        assert np.array_equal(series.step, np.arange(1, step + 1))  # every step once, in order
        assert np.allclose(series.value, 1.0 / series.step)
        assert run.start is not None and run.status(NOW) is not RunStatus.LOADING
    finally:
        workspace.close()


def test_one_shot_reads_are_whole_from_the_start(tmp_path: Path) -> None:
    """summary and load keep their contract: everything read, the status judged on it."""
    run_dir = write_big(tmp_path / "big", end=True)
    workspace = Workspace([str(tmp_path)], max_bytes=128 << 10, tail_budget=1)
    workspace.refresh()
    run = workspace.runs[run_dir]
    assert not run.loading and run.records == LINES + 2 and run.status(NOW) is RunStatus.FINISHED
    workspace.close()


# --- the monitor --------------------------------------------------------------------------------------
class HeldHistory(Workspace):
    """The first poll (the recent windows) goes through; the next waits for ``release``: a huge file
    whose head is read slowly, held still so the test can look at the screen meanwhile."""

    def __init__(self, paths: list[str]) -> None:
        super().__init__(paths, max_bytes=256 << 10, tail_budget=1)
        self.release = threading.Event()
        self.polls = 0

    def poll(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        self.polls += 1
        if self.polls > 1:
            self.release.wait(timeout=60)
        return super().poll(*args, **kwargs)


@run_async
async def test_the_first_frame_shows_the_window_and_no_verdict_until_the_history_is_read(
    tmp_path: Path,
) -> None:
    small = healthy(tmp_path / "a_small", epochs=2)
    big = write_big(tmp_path / "b_big", nan_at=50, end=True)  # a NaN early on: an alert, once whole
    workspace = HeldHistory([str(tmp_path)])
    app = MonitorApp(workspace, watched=["runs"], clock=lambda: NOW, select=big)
    rang: list[int] = []
    app.bell = lambda: rang.append(1)  # type: ignore[method-assign]
    try:
        async with app.run_test(size=(120, 40)) as pilot:
            await wait_for(pilot, lambda: app.selected == big and bool(loss_panel(app).data))
            await wait_for(pilot, lambda: bool(loss_panel(app).data.traces))
            # Drawn from the recent window while the history is held back.
            run = app.workspace.runs[big]
            assert not app.loaded and run.window_only
            await wait_for(pilot, lambda: workspace.polls >= 2)  # the history read starts (held)
            trace = loss_panel(app).data.traces[0]
            assert trace.nonfinite == 0  # the NaN at step 50 is not in the window
            await wait_for(pilot, lambda: "loading" in str(loss_panel(app).border_subtitle))
            note = loss_panel(app).note
            assert note is not None and note.plain.startswith("last ") and note.plain.endswith(" 0%")
            assert "loading history" in app.status_text(NOW).plain
            # A finished run whose record times are old: never "stalled", never judged at all.
            assert run.status(NOW) is RunStatus.LOADING
            assert "stalled" not in app.status_text(NOW).plain
            assert app.feed.rows(big) == []
            assert app.workspace.runs[small].status(NOW) is RunStatus.FINISHED
            workspace.release.set()
            await wait_for(pilot, lambda: app.loaded and not run.window_only)
            await wait_for(pilot, lambda: bool(loss_panel(app).data.traces[0].nonfinite))
            assert run.status(NOW) is RunStatus.FINISHED
            kinds = {row.kind for row in app.feed.rows(big)}
            assert kinds, "the complete run is judged once it is whole"
            await wait_for(pilot, lambda: "loading" not in str(loss_panel(app).border_subtitle))
            # What the run already held is the initial pass: no banner, no bell.
            app.selected = small
            await pilot.pause(0.2)
            assert not app.query_one("#banner").display and rang == []
            assert all(isinstance(p, ChartPanel) for p in app.query(ChartPanel))
    finally:
        workspace.release.set()
        workspace.close()


def test_a_run_under_twice_its_window_is_read_whole_at_once(tmp_path: Path) -> None:
    """No window reader for a run the first poll can read whole for little more than a window."""
    tiny = tmp_path / "tiny"
    append(tiny, [start("tiny")])
    mid = write_big(tmp_path / "mid", lines=1400)
    assert 64 << 10 < (mid / METRICS_JSONL).stat().st_size < 128 << 10  # between 1 and 2 windows
    workspace = Workspace(
        [str(tmp_path)], tail_budget=1
    )  # the smallest windows; a run under WHOLE_BYTES is read whole
    workspace.apply(workspace.poll())
    for run_dir in (tiny, mid):
        run = workspace.runs[run_dir]
        assert not run.loading and not run.window_only and run.start is not None
    assert workspace.runs[mid].last_step == 1400
    workspace.close()


def test_new_runs_past_the_budget_get_their_windows_on_later_polls_and_all_arrive(tmp_path: Path) -> None:
    """1,000 runs at the smallest window would be 64 MiB before the first frame: the first poll starts
    only the budget's worth of windows, the others follow, and every record still arrives once."""
    dirs = [write_big(tmp_path / f"r{i}", lines=3000) for i in range(5)]  # each over two 64 KiB windows
    workspace = Workspace([str(tmp_path)], tail_budget=1)  # room for one window a poll
    first = workspace.poll()
    assert [item.path for item in first if item.tail] == [dirs[0]]
    workspace.apply(first)
    for _ in range(200):
        updates = workspace.poll()
        workspace.apply(updates)
        if not any(item.update.more for item in updates):
            break
    for run_dir in dirs:
        run = workspace.runs[run_dir]
        series = run.series("train_loss")
        assert not run.loading and series is not None
        assert np.array_equal(series.step, np.arange(1, 3001))
    workspace.close()


class OrderedPolls(Workspace):
    """Notes when the history read (every poll after the recent windows' one) begins."""

    def __init__(self, paths: list[str], events: list[str]) -> None:
        super().__init__(paths, max_bytes=256 << 10, tail_budget=1)
        self.events = events
        self.polls = 0

    def poll(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        self.polls += 1
        if self.polls == 2:
            self.events.append("history")
        return super().poll(*args, **kwargs)


class DrawNoted(MonitorApp):
    """Notes each chart picture built while a panel shows data (Textual also calls the base handler)."""

    def __init__(self, events: list[str], *args, **kwargs) -> None:  # type: ignore[no-untyped-def]
        super().__init__(*args, **kwargs)
        self.events = events

    def on_chart_panel_drawn(self, message: ChartPanel.Drawn) -> None:
        if any(panel.data is not None and panel.data.traces for panel in self.query(ChartPanel)):
            self.events.append("chart")


@run_async
async def test_the_history_read_waits_until_the_window_is_charted_not_only_listed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The run is listed (its panels say "loading…") before its window is read; the history's parsing
    must not start until the window's chart is on its way to the screen, or it competes with it. The
    wait's bound (a panel that never draws) is lifted: on a loaded machine the paint can take longer."""
    monkeypatch.setattr(app_module, "FIRST_PAINT_WAIT", 600.0)
    big = write_big(tmp_path / "big")
    events: list[str] = []
    workspace = OrderedPolls([str(tmp_path)], events)
    app = DrawNoted(events, workspace, watched=["runs"], clock=lambda: NOW, select=big)
    try:
        async with app.run_test(size=(120, 35)) as pilot:
            await wait_for(pilot, lambda: "history" in events)
            await wait_for(pilot, lambda: app.loaded)
            assert "chart" in events
            assert events.index("chart") < events.index("history"), events
    finally:
        workspace.close()


def test_the_run_shown_first_gets_the_big_window_and_the_others_a_row_s_worth(tmp_path: Path) -> None:
    """100 runs at an even share of the budget made the first frame wait for 30,000 records nobody saw:
    the run the monitor shows first gets LEAD_WINDOW, every other run ROW_WINDOW (enough for its row)."""
    lines = 3 * LINES  # over twice LEAD_WINDOW: not read whole
    dirs = [write_big(tmp_path / f"r{i}", lines=lines) for i in range(3)]
    for lead in (None, dirs[2]):
        workspace = Workspace([str(tmp_path)], max_bytes=4 << 20)
        if lead is not None:
            workspace.show_first(tmp_path / "." / lead.name)  # any path to it
        first = {item.path: item for item in workspace.poll()}
        assert all(item.tail for item in first.values()) and set(first) == set(dirs)
        sizes = {path: len(item.update.batch) for path, item in first.items()}
        shown = lead or dirs[0]
        lines_per_byte = lines / (dirs[0] / METRICS_JSONL).stat().st_size
        assert sizes[shown] >= 0.9 * LEAD_WINDOW * lines_per_byte
        for path in set(dirs) - {shown}:
            assert 0.5 * ROW_WINDOW * lines_per_byte <= sizes[path] <= 1.1 * ROW_WINDOW * lines_per_byte
        workspace.close()
