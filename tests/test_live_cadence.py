"""Live runs are judged at most once per ALERT_SECONDS (their trends once per TREND_SECONDS) and their
picker rows rebuilt at most once per ROW_SECONDS (issue 15, item 4): the alert engine costs about a millisecond a run a call whatever the
batch, a row about as much to render, and a run logging 20 records a second is read several times a
second. What arrives in between is judged and shown in the next turn, never skipped."""

from __future__ import annotations

import math
import time
from pathlib import Path

import pytest
from textual.pilot import Pilot

from termmon.format import METRICS_JSONL, encode_record
from termmon.model.run import Run
from termmon.model.workspace import Workspace
from termmon.views import app as app_module
from termmon.views.app import ALERT_SECONDS, MonitorApp
from termmon.views.widgets.run_picker import RunPicker
from tests.tui_fixtures import NOW, T0, healthy, run_async, wait_for

READS = 12


def step_record(step: int, loss: float) -> str:
    return encode_record({"event": "step", "time": T0 + step, "step": step, "train_loss": loss}) + "\n"


def open_run(tmp_path: Path) -> Path:
    """A healthy run, still going: healthy() ends it, so its end record is dropped."""
    run_dir = healthy(tmp_path / "runs" / "live", epochs=2)
    with open(run_dir / METRICS_JSONL) as fh:
        lines = [line for line in fh if '"event":"end"' not in line.replace(" ", "")]
    (run_dir / METRICS_JSONL).write_text("".join(lines))
    return run_dir


def count_verdicts(app: MonitorApp) -> list[tuple[float, bool, int]]:
    """Each verdict the app asks of its alert feed from now on: (when, with the trends, records then)."""
    verdicts: list[tuple[float, bool, int]] = []
    judge = app.feed.update

    def counted(run, now=None, *, trends=True):  # type: ignore[no-untyped-def]
        verdicts.append((time.monotonic(), trends, run.records))
        return judge(run, now, trends=trends)

    app.feed.update = counted  # type: ignore[method-assign]
    return verdicts


async def stream(pilot: Pilot[None], run_dir: Path, run: Run, count: int) -> float:
    """Append ``count`` step records one at a time, each read before the next; the seconds it took."""
    last = int(run.last_step or 0)
    began = time.monotonic()
    for i in range(1, count + 1):
        with open(run_dir / METRICS_JSONL, "a") as fh:
            fh.write(step_record(last + i, 0.5))
        await wait_for(pilot, lambda i=i: run.last_step == last + i)
    return time.monotonic() - began


@run_async
async def test_a_streaming_run_is_judged_once_per_alert_seconds_and_its_nan_still_alerts(
    tmp_path: Path,
) -> None:
    run_dir = open_run(tmp_path)
    app = MonitorApp(Workspace([str(tmp_path / "runs")]), watched=["runs"], clock=lambda: NOW)
    verdicts = count_verdicts(app)
    async with app.run_test(size=(120, 35)) as pilot:
        await wait_for(pilot, lambda: app.loaded and app.selected_run is not None)
        run = app.selected_run
        assert run is not None
        last = int(run.last_step)
        verdicts.clear()
        streamed = await stream(pilot, run_dir, run, READS)
        # a verdict for the trends, when theirs is due, may come between two for the records
        bound = 2 + streamed / ALERT_SECONDS + streamed / app_module.TREND_SECONDS
        assert len(verdicts) <= bound, (len(verdicts), streamed)
        picker = app.query_one(RunPicker)
        row = lambda: str(picker.get_option_at_index(0).prompt)  # noqa: E731
        await wait_for(pilot, lambda: f"s{last + READS}" in row())  # the last one shows, held or not
        with open(run_dir / METRICS_JSONL, "a") as fh:  # a NaN on the heels of the stream
            fh.write(step_record(last + READS + 1, math.nan))
        await wait_for(pilot, lambda: any(row.kind == "nan_inf" for row in app.feed.rows(run.path)))


@run_async
async def test_trends_are_judged_less_often_and_once_more_after_the_stream(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The trend detectors (plateau, overfitting...) see a streaming run at most once per TREND_SECONDS,
    and the records that came after their last look are judged by them once the stream stops."""
    monkeypatch.setattr(app_module, "TREND_SECONDS", 2.5 * ALERT_SECONDS)
    run_dir = open_run(tmp_path)
    app = MonitorApp(Workspace([str(tmp_path / "runs")]), watched=["runs"], clock=lambda: NOW)
    verdicts = count_verdicts(app)
    async with app.run_test(size=(120, 35)) as pilot:
        await wait_for(pilot, lambda: app.loaded and app.selected_run is not None)
        run = app.selected_run
        assert run is not None
        verdicts.clear()
        streamed = await stream(pilot, run_dir, run, 2 * READS)
        with_trends = [at for at, trends, _ in verdicts if trends]
        assert len(with_trends) <= 1 + streamed / app_module.TREND_SECONDS, (verdicts, streamed)
        assert len(verdicts) > len(with_trends)  # the others went on without them
        final = run.records
        await wait_for(pilot, lambda: any(trends and n == final for _, trends, n in verdicts), timeout=30)
