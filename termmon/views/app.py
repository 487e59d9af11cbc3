"""The live monitor: the Textual app and ``run_monitor``, which the CLI calls.

Threads: a :class:`ChangeWatcher` thread says "go and look"; one thread worker reads and parses
(``Workspace.poll``) and hands the result to the UI thread with ``call_from_thread``; the UI thread
applies it to the model and redraws, at most every ``REDRAW_SECONDS``. Nothing but the UI thread
touches the runs or the widgets.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import math
import re
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
from rich.text import Text
from textual import work
from textual.app import App, ComposeResult, SystemCommand
from textual.binding import BindingType
from textual.containers import Container, Vertical
from textual.screen import Screen
from textual.timer import Timer
from textual.widgets import Input, OptionList, Static
from textual.worker import get_current_worker

from termmon.errors import TermmonError, UsageError
from termmon.format import LOG_EVERY_MAX, LOG_EVERY_MIN
from termmon.ingest.discovery import readable_formats
from termmon.model.run import STALL_MIN_SECONDS, Run
from termmon.model.workspace import RunUpdate, Workspace
from termmon.views.actions import ACTIONS, bindings
from termmon.views.alert_feed import AlertFeed, AlertRow
from termmon.views.colors import STATUS_GLYPH, RunColors, hex_color
from termmon.views.control_queue import DEBOUNCE_SECONDS, LogEveryControl
from termmon.views.first_look import FirstLook
from termmon.views.panels import (
    DIAGNOSTICS_PANELS,
    PANELS_PER_PAGE,
    PanelData,
    PanelSpec,
    build_panel,
    data_key,
    loss_first,
    metric_pages,
    metric_panel,
    run_panels,
)
from termmon.views.screens import HelpScreen, LogEveryPrompt, MetricPicker
from termmon.views.text import sanitize
from termmon.views.widgets.alert_log import AlertLog, alert_text
from termmon.views.widgets.chart import ChartPanel
from termmon.views.widgets.key_footer import KeyFooter
from termmon.views.widgets.run_picker import RowInfo, RunPicker, is_starting, row_info

#: At most two frames a second while runs are live: over a slow SSH link every frame is lag.
REDRAW_SECONDS = 0.5
#: A chart that only gained records is redrawn at most this often...
CHART_SECONDS = 1.0
#: ... and the picker rows whose runs only gained records (step, loss and sparkline), all together
#: this often: each row Textual renders again costs ~1 ms, and a row's new prompt makes Textual render
#: every row on screen again, so rows refreshed each on its own clock cost a full picker per frame.
ROW_SECONDS = 1.0
#: A run that keeps getting records is judged (the alert engine) at most this often: a call costs
#: ~1 ms a run whatever the batch (a dozen detectors, each a few dozen numpy calls), and judging 20
#: streaming runs every second was a third of the monitor's main thread. What arrives in between is
#: judged in the next turn, never skipped; a verdict waits for it at most this long.
ALERT_SECONDS = 2.0
#: ... and its trend detectors (plateau, overfitting, vanishing gradients, low GPU use: hundreds of
#: points each, at about half the cost of a verdict) at most this often, also once its records stop.
TREND_SECONDS = 10.0
#: Longest the history read waits for the recent windows' first paint.
FIRST_PAINT_WAIT = 2.0
#: Longest the first frame waits for the first look at the runs (see first_look.py).
FIRST_LOOK_WAIT = 0.5
#: Shortest delay a one-shot timer is given. Textual's Timer spins the event loop forever on a negative
#: delay and never fires on one far below its clock's step, and a wait computed as "due minus now" is
#: either once the due time has just passed.
MIN_TIMER_SECONDS = 0.01
#: `s` cycles these: (name, debiased EMA weight); integer series are never smoothed.
SMOOTHING: tuple[tuple[str, float | None], ...] = (("off", None), ("light", 0.6), ("strong", 0.9))


def _ago(seconds: float) -> str:
    if not math.isfinite(seconds):
        return "no records yet"
    seconds = max(0.0, seconds)
    if seconds < 90:
        return f"{seconds:.0f}s ago"
    if seconds < 5400:
        return f"{seconds / 60:.0f}m ago"
    if seconds < 172800:
        return f"{seconds / 3600:.1f}h ago"
    return f"{seconds / 86400:.0f}d ago"


def loading_note(runs: list[Run]) -> Text | None:
    """What a panel says while a run on it shows only its recent window: ``last 4,000 steps ·
    loading 37%``, the history's share read (None when every run on it is whole)."""
    loading = [run for run in runs if run.loading]
    if not loading:
        return None
    run = loading[0]
    parts = []
    if run.window_only:
        steps = run.step.view
        steps = steps[np.isfinite(steps)]
        if len(steps):
            parts.append(f"last {int(steps.max() - steps.min()) + 1:,} steps")
    parts.append(f"loading {min(run.loaded_fraction for run in loading):.0%}")
    return Text(" · ".join(parts), style="italic")


def _guarded(read: Callable[[], list[RunUpdate]]) -> tuple[list[RunUpdate], str | None]:
    """A look at the workspace, and what went wrong outside any one run (those are caught per run):
    said, not raised, so the reading loop goes on and tries again."""
    try:
        return read(), None
    except Exception as exc:
        return [], f"reading failed: {type(exc).__name__}: {exc}"


class MonitorApp(App[int]):
    """termmon's live view of a :class:`Workspace`."""

    TITLE = "termmon"
    CSS_PATH = Path(__file__).with_name("termmon.tcss")  # absolute: subclasses live elsewhere
    # Textual declares these as plain attributes, so no ClassVar here.
    HORIZONTAL_BREAKPOINTS = [(0, "-narrow"), (110, "-wide")]  # noqa: RUF012
    VERTICAL_BREAKPOINTS = [(0, "-short"), (30, "-tall")]  # noqa: RUF012
    BINDINGS: ClassVar[list[BindingType]] = list(bindings("app"))

    def __init__(
        self,
        workspace: Workspace,
        *,
        watched: list[str] | None = None,
        poll: float | None = None,
        config: Path | None = None,
        live: bool = True,
        clock: Callable[[], float] = time.time,
        export_dir: Path | None = None,
        bell: bool = True,
        select: Path | None = None,
    ) -> None:
        super().__init__()
        self.workspace = workspace
        self.watched = watched or [str(p) for p in workspace.roots]
        self.poll_interval = poll
        self.live = live
        self.clock = clock
        #: None: each export goes beside its run (the run directory's parent).
        self.export_dir = export_dir
        self.feed = AlertFeed(config)
        self.run_colors = RunColors()
        self.control = LogEveryControl()
        #: The run to select once it is found (the demo's live run); else the first run.
        self.wanted = select.resolve() if select is not None else None
        if self.wanted is not None:
            workspace.show_first(self.wanted)
        self.selected: Path | None = None
        self.marked: list[Path] = []
        self.name_filter = ""
        self.smoothing = 0  # index into SMOOTHING
        self.pinned: list[Path] = []
        self.ring_bell = bell
        self.exporting: Path | None = None
        self.exported: Path | None = None  # the last export, named on the status line
        self.banner_run: Path | None = None
        self.last_critical: Path | None = None
        #: The user's own panels for the first page (m, a, x); None: the panels follow the selected run.
        self.layout: list[PanelSpec] | None = None
        #: 0: the run's panels; 1..: every metric, PANELS_PER_PAGE a page (`]` / `[`).
        self.page = 0
        self._panel_ids = 0
        self.loaded = False
        self.watch_mode = "polling" if poll else "events"
        self._wake = threading.Event()
        #: Set once the recent windows handed over are on screen: the history read waits for it (see
        #: _ingest_loop). Cleared by the ingest thread before it hands windows over.
        self._painted = threading.Event()
        #: Recent windows handed over and not drawn yet: the next redraw is not held back by the
        #: REDRAW_SECONDS / CHART_SECONDS limits...
        self._windows_pending = False
        #: ... and once it has shown them, the first chart rendered sets ``_painted``
        #: (``on_chart_panel_drawn``: ``call_after_refresh`` runs before the compositor renders).
        self._paint_due = False
        self._stop = threading.Event()
        #: The reader's first look, (updates, failure): taken before the first frame, or handed
        #: over by the reading loop (``_unclaimed``) when it came too late for that.
        self._first_look: FirstLook[tuple[list[RunUpdate], str | None]] = FirstLook()
        self._unclaimed: tuple[list[RunUpdate], str | None] | None = None
        self._first_tails = False  # the first look holds recent windows: the history waits for their paint
        self._watcher: object | None = None
        self._redraw_timer: Timer | None = None
        self._last_redraw = 0.0
        self._control_timer: Timer | None = None
        self._control_pressed_at = 0.0
        self._reported_errors: dict[Path, list[str]] = {}
        self._reported_workspace_errors = 0
        #: The last failure of the reading worker outside any one run (None while all is well).
        self.reader_error: str | None = None
        self._status_shown: Text | None = None
        self._chart_timer: Timer | None = None
        self._rows: dict[Path, tuple[tuple[object, ...], RowInfo]] = {}
        self._rows_refreshed = -math.inf  # when the rows that only gained records were last rebuilt
        self._run_count = 0
        #: Per run: (its data's key, the stall limits its silence has yet to pass), for _tick.
        self._verdicts: dict[Path, tuple[tuple[int, int, float], list[float] | None]] = {}
        #: The earliest moment time alone can change a verdict; and whether runs got data since.
        self._next_verdict = -math.inf
        self._runs_changed = True
        #: Runs seen while loading: their first alert pass comes once they are whole, as an initial one.
        self._judge_later: set[Path] = set()
        #: When each run was last judged (monotonic), and the runs whose new records wait for their turn;
        #: when its trends were last judged, and the runs judged since without them.
        self._judged_at: dict[Path, float] = {}
        self._judge_due: set[Path] = set()
        self._trends_at: dict[Path, float] = {}
        self._trends_due: set[Path] = set()
        self._judge_timer: Timer | None = None
        self._judge_timer_due = math.inf

    # --- layout ---------------------------------------------------------------------------------------
    @property
    def main_screen(self) -> Screen[int]:
        """The monitor's own screen, also while a modal (help, metric picker) is on top of it."""
        return self.screen_stack[0]

    def compose(self) -> ComposeResult:
        yield Static(id="status")
        yield Static(id="banner")
        with Container(id="main"):
            with Vertical(id="side"):
                yield Input(placeholder="filter runs by name", id="filter")
                yield RunPicker(id="picker")
                yield AlertLog(self.run_colors, id="alerts")
            with Container(id="charts"):
                for spec in DIAGNOSTICS_PANELS:
                    yield self._new_panel(spec)
        yield KeyFooter()

    def on_mount(self) -> None:
        self.main_screen.query_one("#picker").border_title = "runs"
        self.main_screen.query_one("#alerts").border_title = "alerts"
        self.main_screen.query_one("#filter").display = False
        self.main_screen.query_one("#banner").display = False
        self.main_screen.query_one(RunPicker).focus()
        if not self.is_headless:
            self._exit_on_signals()
        if self.workspace.runs:  # handed a loaded workspace (tests, static snapshots)
            self._ingested(set(self.workspace.runs), [])
        if self.live:
            self._start_watching()
            self.set_interval(1.0, self._tick)
        else:
            self.loaded = True
            self.redraw()

    def _exit_on_signals(self) -> None:
        """SIGTERM, and SIGHUP (the SSH session closed), end the monitor as `q` does, exit status 128 + the
        signal: the terminal is restored and the callers' clean-up runs (the demo's temporary runs and its
        trainer). By default the process died mid-frame and left them behind."""
        loop = asyncio.get_running_loop()
        for name in ("SIGTERM", "SIGHUP"):
            sig = getattr(signal, name, None)
            if sig is not None:
                with contextlib.suppress(NotImplementedError, RuntimeError):  # no Unix signals on this loop
                    loop.add_signal_handler(sig, self.exit, 128 + sig)

    def _start_watching(self) -> None:
        from termmon.ingest.watch import ChangeWatcher

        first = threading.Thread(target=self._look_first, name="termmon-first-look", daemon=True)
        first.start()
        watcher = ChangeWatcher(self.workspace.roots, self._wake.set, poll_interval=self.poll_interval)
        try:
            watcher.start()
        except OSError as exc:
            self.main_screen.query_one(AlertLog).note(f"file watching failed ({exc}); polling instead")
        self.watch_mode = watcher.mode
        self._watcher = watcher
        self._ingest_loop(first)
        if (look := self._first_look.take(FIRST_LOOK_WAIT)) is not None:
            self._hand_over(*look)
            self._redraw_now()  # before the first layout: the first frame is drawn with the data

    def _redraw_now(self) -> None:
        if self._redraw_timer is not None:
            self._redraw_timer.stop()
            self._redraw_timer = None
        self.redraw()

    def _look_first(self) -> None:
        """The runs listed (those too big to read at once, before any parsing) and their recent
        windows: what the first frame shows."""
        look, failure = _guarded(lambda: self.workspace.announce() + self.workspace.poll())
        self._first_tails = any(item.tail for item in look)
        if not self._first_look.offer((look, failure)):
            self._unclaimed = (look, failure)

    @work(thread=True, exclusive=True, group="ingest", exit_on_error=False)
    def _ingest_loop(self, first: threading.Thread) -> None:
        """Read and parse off the UI thread; wait on the watcher's wake-up, never sleep. Each look reads
        only the runs the watcher's events named (all of them on its backstop poll), and a look that
        found nothing new is not handed to the UI thread at all. Starts once ``first`` (the first
        look) is done."""
        from termmon.ingest.watch import ChangeWatcher
        from termmon.model.workspace import EVENTS_RESCAN_SECONDS

        worker = get_current_worker()
        watcher = self._watcher if isinstance(self._watcher, ChangeWatcher) else None
        first.join()
        if self._unclaimed is not None:  # the first frame did not wait for it
            try:
                self.call_from_thread(self._hand_over, *self._unclaimed)
            except RuntimeError:
                return
        if self._first_tails:  # let the UI paint them before the history's parsing competes with it
            self._painted.wait(FIRST_PAINT_WAIT)
        while not (worker.is_cancelled or self._stop.is_set()):
            changes = watcher.take() if watcher is not None else None
            only = None if changes is None or changes.everything else changes.paths
            events = watcher is not None and watcher.mode == "events"
            every = EVENTS_RESCAN_SECONDS if events else None
            updates, failure = _guarded(functools.partial(self.workspace.poll, only, rescan_every=every))
            more = any(item.update.more for item in updates)
            idle = not updates and failure is None and self.reader_error is None and self.loaded
            tails = any(item.tail for item in updates)
            if tails:
                self._painted.clear()
            if not idle or len(self.workspace.errors) != self._reported_workspace_errors:
                try:
                    self.call_from_thread(self._hand_over, updates, failure)
                except RuntimeError:  # the app is gone
                    return
            if tails:
                # Recent windows handed on: let the UI paint them before the history's parsing
                # competes with it for the interpreter (bounded, should a panel never draw).
                self._painted.wait(FIRST_PAINT_WAIT)
            if not more:
                self._wake.wait()
                self._wake.clear()

    def _hand_over(self, updates: list[RunUpdate], failure: str | None) -> None:
        """A poll's result, on the UI thread: the runs it touched are judged again on the next tick."""
        self._runs_changed = self._runs_changed or bool(updates)
        if any(item.tail for item in updates):
            self._windows_pending = True
        self._apply(updates, failure)

    def _apply(self, updates: list[RunUpdate], failure: str | None = None) -> None:
        """Fold a poll into the model. ``failure``: the poll itself failed (outside any one run); it is
        shown in the alert log once and on the status line until a poll succeeds again."""
        if failure is not None and failure != self.reader_error:
            self.main_screen.query_one(AlertLog).note(failure, "critical")
        self.reader_error = failure
        changed = self.workspace.apply(updates)
        self._ingested(changed, updates)

    def _ingested(self, changed: set[Path], updates: list[RunUpdate]) -> None:
        initial = not self.loaded
        if (
            not self.loaded
            and not any(item.update.more for item in updates)
            and not any(run.loading for run in self.workspace.runs.values())
        ):
            self.loaded = True
            changed = changed | set(self.workspace.runs)
        log = self.main_screen.query_one(AlertLog)
        for error in self.workspace.errors[self._reported_workspace_errors :]:
            log.note(error, "critical")
        self._reported_workspace_errors = len(self.workspace.errors)
        order = {path: index for index, path in enumerate(self.workspace.runs)}  # list.index: O(n^2)
        for path in sorted(changed, key=order.__getitem__):
            run = self.workspace.runs[path]
            if run.loading:  # no verdict from a partly read run; judged once it is whole
                self._judge_later.add(path)
            elif initial or path in self._judge_later:
                # A run judged for the first time after its load: what it already held, no banner.
                self._judge_later.discard(path)
                self._judge(log, run, initial=True)
            else:
                self._judge_soon(log, run)
            for error in run.errors[len(self._reported_errors.setdefault(path, [])) :]:
                log.note(f"{run.name}: {error}")
                self._reported_errors[path].append(error)
        if self.wanted is not None:
            found = next((p for p in self.workspace.runs if p.resolve() == self.wanted), None)
            if found is not None:
                self.selected, self.wanted = found, None
        if self.selected is None and self.workspace.runs:
            self.selected = next(iter(self.workspace.runs))
        # The 2 s backstop poll usually finds nothing: then there is nothing to redraw.
        if changed or initial or len(self.workspace.runs) != self._run_count:
            self._run_count = len(self.workspace.runs)
            self.schedule_redraw()

    def _judge(self, log: AlertLog, run: Run, *, initial: bool = False) -> None:
        now = time.monotonic()
        trends = initial or self._trends_at.get(run.path, -math.inf) + TREND_SECONDS <= now
        self._judged_at[run.path] = now
        self._judge_due.discard(run.path)
        if trends:
            self._trends_at[run.path] = now
            self._trends_due.discard(run.path)
        else:
            self._trends_due.add(run.path)
            self._judge_at(now + self._verdict_wait(run.path, now))
        self._add_alerts(log, self.feed.update(run, self.clock(), trends=trends), initial=initial)

    def _verdict_wait(self, path: Path, now: float) -> float:
        """Seconds until the run at ``path`` is to be judged again (0 or less: now; inf: not): its new
        records wait ALERT_SECONDS from its last verdict, trends it has not had TREND_SECONDS from theirs."""
        waits = [math.inf]
        if path in self._judge_due:
            waits.append(self._judged_at.get(path, -math.inf) + ALERT_SECONDS - now)
        if path in self._trends_due:
            waits.append(self._trends_at.get(path, -math.inf) + TREND_SECONDS - now)
        return min(waits)

    def _judge_soon(self, log: AlertLog, run: Run) -> None:
        """Judge ``run`` now, or when ALERT_SECONDS have passed since its last verdict."""
        self._judge_due.add(run.path)
        now = time.monotonic()
        wait = self._verdict_wait(run.path, now)
        if wait <= 0:
            self._judge(log, run)
        else:
            self._judge_at(now + wait)

    def _judge_at(self, due: float) -> None:
        """A verdict waits until ``due`` (monotonic): the timer goes off then at the latest."""
        if self._judge_timer is not None:
            if self._judge_timer_due <= due:
                return
            self._judge_timer.stop()
        self._judge_timer_due = due
        self._judge_timer = self._timer(due - time.monotonic(), self._judge_waiting)

    def _judge_waiting(self) -> None:
        """The runs whose records, or trends, wait for a verdict, in their turn."""
        self._judge_timer = None
        if not self.screen_stack:
            return
        log = self.main_screen.query_one(AlertLog)
        now = time.monotonic()
        waits = []
        for path in list(self._judge_due | self._trends_due):
            run = self.workspace.runs.get(path)
            if run is None or run.loading:
                self._judge_due.discard(path)
                self._trends_due.discard(path)
                continue
            wait = self._verdict_wait(path, now)
            if wait <= 0:
                self._judge(log, run)
                wait = self._verdict_wait(path, now)
            waits.append(wait)
        if min(waits, default=math.inf) < math.inf:
            self._judge_at(now + min(waits))
        self.schedule_redraw()

    def _add_alerts(self, log: AlertLog, rows: list[AlertRow], *, initial: bool = False) -> None:
        """Into the alert log; a new critical one on a run not on screen also raises the banner."""
        log.add_alerts(rows)
        critical = [row for row in rows if row.severity == "critical"]
        if not critical:
            return
        self.last_critical = critical[-1].run_path
        fresh = [row for row in critical if row.run_path != self.selected]
        if not initial and fresh:  # not for what the runs already held when the monitor started
            banner = self.main_screen.query_one("#banner", Static)
            text = Text(" ")
            text.append_text(alert_text(fresh[-1], self.run_colors, plain=True))
            text.append("   b: go to the run · esc: dismiss")
            banner.update(text)
            banner.display = True
            self.banner_run = fresh[-1].run_path
            if self.ring_bell:
                self.bell()

    def action_jump_alert(self) -> None:
        """Select the run of the banner (or of the last critical alert)."""
        target = self.banner_run or self.last_critical
        if target is None or target not in self.workspace.runs:
            return
        self._hide_banner()
        self.name_filter = ""
        self.selected = target
        self.schedule_redraw()

    def _hide_banner(self) -> None:
        self.banner_run = None
        self.main_screen.query_one("#banner", Static).display = False

    def _new_panel(self, spec: PanelSpec) -> ChartPanel:
        panel = ChartPanel(spec, id=f"panel-{self._panel_ids}")
        self._panel_ids += 1
        return panel

    @property
    def compact(self) -> bool:
        """The narrow (80-column) layout: charts two abreast under the picker, loss first."""
        return self.main_screen.has_class("-narrow")

    def page_count(self) -> int:
        return 1 + len(metric_pages(self.panel_runs(), PANELS_PER_PAGE))

    def page_specs(self) -> list[PanelSpec]:
        """The panels the screen shows now: the run's (or the user's) on page 0, else a page of metrics."""
        if self.page > 0:
            pages = metric_pages(self.panel_runs(), PANELS_PER_PAGE)
            if pages:
                return pages[min(self.page, len(pages)) - 1]
        specs = list(self.layout) if self.layout is not None else run_panels(self.selected_run)
        return loss_first(specs) if self.compact else specs

    def sync_panels(self) -> None:
        """Make the chart widgets match :meth:`page_specs`, reusing the widgets already there."""
        specs = self.page_specs()
        charts = self.main_screen.query_one("#charts")
        panels = list(charts.query(ChartPanel))
        for panel, spec in zip(panels, specs, strict=False):
            if panel.spec != spec:
                panel.set_spec(spec)
        if len(specs) > len(panels):
            charts.mount(*(self._new_panel(spec) for spec in specs[len(panels) :]))
            self.call_after_refresh(self.schedule_redraw)  # draw them once they have a size
        for panel in panels[len(specs) :]:
            panel.remove()

    def on_unmount(self) -> None:
        self._stop.set()
        self._painted.set()
        self._wake.set()
        if self._watcher is not None:
            self._watcher.stop()  # type: ignore[attr-defined]

    # --- drawing ----------------------------------------------------------------------------------------
    def schedule_redraw(self) -> None:
        """Redraw soon, at most every REDRAW_SECONDS, however fast records arrive."""
        if self._redraw_timer is not None:
            return
        held = 0.0 if self._windows_pending else self._last_redraw + REDRAW_SECONDS - time.monotonic()
        self._redraw_timer = self._timer(held, self._timed_redraw)

    def _timer(self, delay: float, callback: Callable[[], object]) -> Timer:
        """A one-shot timer in ``delay`` seconds, or in MIN_TIMER_SECONDS when that is sooner (or past)."""
        return self.set_timer(max(MIN_TIMER_SECONDS, delay), callback)

    def _timed_redraw(self) -> None:
        self._redraw_timer = None
        self.redraw()

    def visible_runs(self) -> list[Run]:
        """The runs the picker lists: filtered by name, pinned ones first (in the order pinned)."""
        needle = self.name_filter.lower()
        runs = [run for run in self.workspace.runs.values() if needle in run.name.lower()]
        pins = {path: i for i, path in enumerate(self.pinned)}
        return sorted(runs, key=lambda run: pins.get(run.path, len(pins)))

    @property
    def selected_run(self) -> Run | None:
        return self.workspace.runs.get(self.selected) if self.selected else None

    def panel_runs(self) -> list[Run]:
        runs = self.workspace.runs
        chosen = [self.selected] if self.selected in runs else []
        chosen += [p for p in self.marked if p != self.selected and p in runs]
        return [runs[p] for p in chosen if p is not None]

    def redraw(self) -> None:
        # Not while shutting down: Textual stops the app, then removes each screen's widgets while the
        # screen is still on the stack, and a redraw due then (a timer, a poll's results) would mount
        # panels into a container already removed.
        if not (self.is_running and self.screen_stack):
            return
        self._last_redraw = time.monotonic()
        now = self.clock()
        visible = self.visible_runs()
        if self.selected not in {r.path for r in visible} and visible:
            self.selected = visible[0].path
        picker = self.main_screen.query_one(RunPicker)
        held: list[float] = []
        clock = time.monotonic()
        rows_wait = self._rows_refreshed + ROW_SECONDS - clock
        if rows_wait <= 0:
            self._rows_refreshed = clock
        picker.show([self._row(run, now, rows_wait, held) for run in visible], self.selected)
        self._show_status(now)
        self.redraw_panels()
        self._redraw_later(held)

    def _show_status(self, now: float) -> None:
        """The status line, sent to the terminal only when it changed. Its box is fixed (docked, two rows),
        so no layout pass: one would repaint the whole screen, charts included, for a new "ago"."""
        status = self.status_text(now)
        if status != self._status_shown:
            self._status_shown = status
            self.main_screen.query_one("#status", Static).update(status, layout=False)

    def _row(self, run: Run, now: float, rows_wait: float, held: list[float]) -> RowInfo:
        """A picker row, rebuilt only when the run, its status, alerts or marks changed: once a second
        with 100 runs, rebuilding every row is most of the idle monitor's CPU. A row whose run only
        gained records waits ``rows_wait`` seconds (rows are rebuilt every ROW_SECONDS), which then goes
        into ``held``: one clock read for every row, so a slow frame never makes the wait negative."""
        key = (
            run.version,
            run.generation,
            run.status(now),
            self.feed.count(run.path),
            run.path in self.marked,
            run.path in self.pinned,
        )
        cached = self._rows.get(run.path)
        if cached is not None:
            old_key, info = cached
            if old_key == key:
                return info
            if old_key[1:] == key[1:] and rows_wait > 0:
                held.append(rows_wait)
                return info
        info = row_info(run, now, key[3], key[4], self.run_colors(run.name))
        self._rows[run.path] = (key, info)
        return info

    def panel_data(self, panel: ChartPanel, runs: list[Run], width: int) -> PanelData:
        return build_panel(
            panel.spec,
            runs,
            colors=self.run_colors,
            max_points=max(40, width * 2),
            smoothing=SMOOTHING[self.smoothing][1],
            scale=panel.scale_mode,
            zoom=panel.zoom,
            pan=panel.pan,
            cursor=panel.cursor,
            alerts={run.path: self.feed.marks(run.path) for run in runs},
        )

    def redraw_panels(self) -> None:
        """Redraw the panels whose picture changed. A panel that only gained records is redrawn at most
        every CHART_SECONDS: a chart is most of what a frame sends to the terminal."""
        if not self.loaded and not self.workspace.runs:
            return  # the panels say "loading…" until there is a run to draw
        self.sync_panels()
        runs = self.panel_runs()
        now = time.monotonic()
        marks = tuple(self.feed.count(r.path) for r in runs)
        later: list[float] = []
        for panel in self.main_screen.query(ChartPanel):
            view_key = (panel.spec, tuple(r.path for r in runs), self.smoothing, panel.view_key(), panel.size)
            signature = (view_key, (data_key(panel.spec, runs), marks))
            if signature == panel.signature:
                continue
            drawn = panel.signature
            wait = panel.drawn_at + CHART_SECONDS - now
            if isinstance(drawn, tuple) and drawn[0] == view_key and wait > 0 and panel.charted:
                later.append(wait)  # new records only: drawn a little later (a first chart at once)
                continue
            # Before the first layout a panel has no size: no wider than the screen, then.
            panel.show(self.panel_data(panel, runs, panel.size.width or self.size.width), signature)
            panel.drawn_at = now
        self._redraw_later(later)
        note = loading_note(runs)
        panels = list(self.main_screen.query(ChartPanel))
        for panel in panels:
            panel.set_note(note)
        if self._windows_pending:
            self._windows_pending = False
            if any(panel.charted for panel in panels):
                self._paint_due = True
            else:  # nothing to chart: no picture will be built
                self.call_after_refresh(self._painted.set)

    def on_chart_panel_resized(self, _: ChartPanel.Resized) -> None:
        self.schedule_redraw()

    def on_chart_panel_drawn(self, _: ChartPanel.Drawn) -> None:
        if self._paint_due:
            self._paint_due = False
            self._painted.set()

    def _redraw_later(self, waits: list[float]) -> None:
        """Redraw once the first of these waits is over (a chart or row held back by its limit)."""
        if waits and self._chart_timer is None:
            self._chart_timer = self._timer(min(waits), self._chart_due)

    def _chart_due(self) -> None:
        self._chart_timer = None
        self.schedule_redraw()

    def status_text(self, now: float) -> Text:
        text = Text(no_wrap=True, overflow="ellipsis")
        text.append(" termmon ", style="bold reverse")
        text.append(" watching ", style="dim")
        watched = sanitize(" ".join(self.watched))
        text.append(watched if len(watched) <= 48 else "…" + watched[-47:])
        count = len(self.workspace.runs)
        text.append(f"  {count} run{'s' if count != 1 else ''}", style="dim")
        text.append(f"  {self.watch_mode}", style="dim")
        if self.smoothing:
            text.append(f"  smoothing {SMOOTHING[self.smoothing][0]}", style="cyan")
        if self.exporting is not None:
            text.append(f"  exporting {sanitize(self.exporting.name)}…", style="bold cyan")
        elif self.exported is not None:
            text.append(f"  exported {sanitize(self.exported.name)}", style="cyan")
        if self.page:
            text.append(f"  page {self.page + 1}/{self.page_count()}", style="cyan")
        if self.reader_error:
            text.append(f"  {sanitize(self.reader_error, 80)}", style="bold red")
        text.append("\n")
        run = self.selected_run
        if run is None:
            text.append(
                " loading…"
                if not self.loaded
                else f" no runs yet under {sanitize(' '.join(self.watched), 80)}: waiting "
                f"({readable_formats()})",
                style="dim",
            )
            return text
        status = run.status(now)
        glyph, style = STATUS_GLYPH[status]
        text.append(f" {glyph} ", style=style)
        text.append(sanitize(run.name, 60), style=f"bold {hex_color(self.run_colors(run.name))}")
        if is_starting(run, status):
            text.append(" starting: waiting for the trainer's first record", style=style)
            return text
        text.append(f" {status.value}", style=style)
        if run.loading:
            text.append(f" history {run.loaded_fraction:.0%}", style=style)
        where = []
        if run.last_epoch is not None:
            where.append(f"epoch {run.last_epoch}")
        if run.last_step is not None:
            where.append(f"step {run.last_step}")
        if where:
            text.append("  " + " ".join(where))
        text.append(
            "  " + self.control.describe(run, now), style="bold" if run.path in self.control.states else ""
        )
        text.append(f"  last record {_ago(now - run.last_activity)}", style="dim")
        if run.bad_lines:
            text.append(f"  {run.bad_lines} bad lines", style="yellow")
        if run.errors:
            text.append(f"  {sanitize(run.errors[-1], 80)}", style="bold red")
        return text

    def _tick(self) -> None:
        """Once a second: the "ago" clock, run statuses and "stalled" move even when no record arrives.

        Only time can change an idle run's verdict, and only at known moments (its silence passing the
        status's stall limit, or the stalled detector's): a run is judged again when one passes, not
        every second (that was most of the idle CPU with 1,000 runs); runs that got records were judged
        when they arrived.
        """
        if not self.screen_stack:
            return
        now = self.clock()
        log = self.main_screen.query_one(AlertLog)
        moved = False
        if self._runs_changed or now >= self._next_verdict:
            self._runs_changed = False
            self._next_verdict = math.inf
            for run in self.workspace.runs.values():
                if run.end is None and not run.loading and self._verdict_due(run, now):
                    self._add_alerts(log, self.feed.update(run, now))
                    moved = True
        for note in self.control.newly_unacknowledged(list(self.workspace.runs.values()), now):
            log.note(note, "warning")
        if moved:
            self.schedule_redraw()
        else:  # no status moved: only the status line's "ago" does
            self._show_status(now)

    def _verdict_due(self, run: Run, now: float) -> bool:
        """Whether time alone has changed what ``run`` is judged to be since the last tick: its silence
        passed a stall limit (the status's or the stalled detector's) that it had not passed before.

        A limit is never under its ``min_seconds``, so a run that logged more recently than that is
        not even asked for its limits (they take a median over its last intervals)."""
        key = (run.version, run.generation, run.last_activity)
        cached = self._verdicts.get(run.path)
        if cached is None or cached[0] != key:
            cached = self._verdicts[run.path] = (key, None)
        activity, pending = key[2], cached[1]
        if not math.isfinite(activity):
            return False
        stalled = self.feed.engine.config.stalled
        if pending is None:
            floor = min(STALL_MIN_SECONDS, stalled.min_seconds)
            if now - activity <= floor:
                self._next_verdict = min(self._next_verdict, activity + floor)
                return False
            pending = sorted({run.stall_limit(), run.stall_limit(stalled.min_seconds, stalled.intervals)})
            self._verdicts[run.path] = (key, pending)
        passed = False
        while pending and now - activity > pending[0]:
            pending.pop(0)
            passed = True
        if pending:
            self._next_verdict = min(self._next_verdict, activity + pending[0])
        return passed

    # --- events ---------------------------------------------------------------------------------------
    def on_option_list_option_highlighted(self, event: OptionList.OptionHighlighted) -> None:
        picker = event.option_list
        if isinstance(picker, RunPicker) and picker.selected_path not in (None, self.selected):
            self.selected = picker.selected_path
            self.schedule_redraw()

    def on_input_changed(self, event: Input.Changed) -> None:
        if event.input.id == "filter":
            self.name_filter = event.value
            self.schedule_redraw()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        if event.input.id == "filter":
            self.main_screen.query_one(RunPicker).focus()

    # --- actions ----------------------------------------------------------------------------------------
    def action_quit_monitor(self) -> None:
        self.exit(0)

    def action_help(self) -> None:
        self.push_screen(HelpScreen())

    def action_move(self, delta: int) -> None:
        """Next / previous run; stops at either end (no wrapping round)."""
        picker = self.main_screen.query_one(RunPicker)
        if not picker.paths:
            return
        current = picker.paths.index(self.selected) if self.selected in picker.paths else 0
        index = max(0, min(len(picker.paths) - 1, current + delta))
        # The selection moves now, not when the highlight event arrives: a redraw in between would
        # put the highlight back and lose the key press.
        self.selected = picker.paths[index]
        picker.highlighted = index
        self.schedule_redraw()

    def action_clear_marks(self) -> None:
        self.marked.clear()
        self.schedule_redraw()

    def action_pin(self) -> None:
        if self.selected is None:
            return
        if self.selected in self.pinned:
            self.pinned.remove(self.selected)
        else:
            self.pinned.append(self.selected)
        self.schedule_redraw()

    def action_pan(self, delta: int) -> None:
        """Focused panel: move the inspector's cursor if it is on, else scroll a zoomed x range."""
        panel = self._focused_panel()
        if panel.cursor is not None:
            panel.move_cursor(delta)
        else:
            panel.pan = min(2.0**panel.zoom - 1, max(0.0, panel.pan - delta * 0.5)) if panel.zoom else 0.0
        self.schedule_redraw()

    def action_zoom(self, delta: int) -> None:
        """Focused panel: ↑ halves the x range (the most recent steps), ↓ doubles it back."""
        panel = self._focused_panel()
        panel.zoom = max(0, min(12, panel.zoom + delta))
        if panel.zoom == 0:
            panel.pan = 0.0
        self.schedule_redraw()

    def action_zoom_all(self) -> None:
        panel = self._focused_panel()
        panel.zoom, panel.pan = 0, 0.0
        self.schedule_redraw()

    def action_inspect(self) -> None:
        """A value cursor on the focused panel: the step under it and each run's value there."""
        panel = self._focused_panel()
        panel.toggle_cursor()
        panel.focus()
        self.schedule_redraw()

    def action_mark(self) -> None:
        if self.selected is None:
            return
        if self.selected in self.marked:
            self.marked.remove(self.selected)
        else:
            self.marked.append(self.selected)
        self.schedule_redraw()

    def action_filter(self) -> None:
        box = self.main_screen.query_one("#filter", Input)
        box.display = True
        box.focus()

    def action_escape(self) -> None:
        """Close, innermost first: the filter box, the inspector's cursor, the banner."""
        panel = self.focused
        if isinstance(panel, ChartPanel) and panel.cursor is not None:
            panel.toggle_cursor()
            self.schedule_redraw()
            return
        if self.banner_run is not None:
            self._hide_banner()
        box = self.main_screen.query_one("#filter", Input)
        if box.display:
            box.value = ""
            box.display = False
            self.name_filter = ""
            self.main_screen.query_one(RunPicker).focus()
            self.schedule_redraw()

    def _focused_panel(self) -> ChartPanel:
        focused = self.focused
        if isinstance(focused, ChartPanel):
            return focused
        return self.main_screen.query(ChartPanel).first()

    def action_pick_metric(self) -> None:
        run = self.selected_run
        if run is None:
            return
        panel = self._focused_panel()
        metrics = run.metric_names()
        if not metrics:
            self.main_screen.query_one(AlertLog).note(f"{run.name} has no metrics yet", "info")
            return

        index = list(self.main_screen.query(ChartPanel)).index(panel)

        def chosen(name: str | None) -> None:
            if name is not None:
                specs = self._own_layout()
                specs[min(index, len(specs) - 1)] = metric_panel(name)
                self.schedule_redraw()

        self.push_screen(MetricPicker(metrics, panel.spec.title), chosen)

    def _own_layout(self) -> list[PanelSpec]:
        """The first page as the user's own from now on (it stops following the run), shown."""
        if self.layout is None:
            self.layout = self.page_specs() if self.page == 0 else run_panels(self.selected_run)
        self.page = 0
        return self.layout

    def action_default_metric(self) -> None:
        """Back to the panels that follow the run."""
        self.layout = None
        self.page = 0
        self.schedule_redraw()

    def action_add_panel(self) -> None:
        run = self.selected_run
        if run is None or not run.metrics:
            return

        def chosen(name: str | None) -> None:
            if name is not None:
                self._own_layout().append(metric_panel(name))
                self.schedule_redraw()

        self.push_screen(MetricPicker(run.metric_names(), "new panel"), chosen)

    def action_remove_panel(self) -> None:
        panel = self._focused_panel()
        specs = self._own_layout()
        if panel.spec in specs and len(specs) > 1:
            specs.remove(panel.spec)
            self.main_screen.query_one(RunPicker).focus()
            self.schedule_redraw()

    def action_page(self, delta: int) -> None:
        """Page through every metric of the shown runs; page 0 is the run's own panels."""
        self.page = max(0, min(self.page_count() - 1, self.page + delta))
        self.schedule_redraw()

    def action_cycle_smoothing(self) -> None:
        self.smoothing = (self.smoothing + 1) % len(SMOOTHING)
        self.schedule_redraw()

    def action_toggle_log(self) -> None:
        """Log axis on the focused panel, or back to linear (whatever "auto" had chosen)."""
        panel = self._focused_panel()
        shown = panel.data.scale.kind if panel.data is not None else "linear"
        panel.scale_mode = "linear" if shown != "linear" else "log"
        self.schedule_redraw()

    # --- log_every control --------------------------------------------------------------------------------
    def action_log_every(self, factor: float) -> None:
        run = self.selected_run
        if run is not None:
            self.request_log_every(run, round(self.control.current(run) * factor))

    def action_log_every_exact(self) -> None:
        run = self.selected_run
        if run is None or self._refuse_control(run):  # no prompt for a value nobody will read
            return

        def chosen(value: int | None) -> None:
            if value is not None and self.selected_run is run:
                self.request_log_every(run, value)

        self.push_screen(LogEveryPrompt(run.name, self.control.current(run)), chosen)

    def request_log_every(self, run: Run, value: int) -> None:
        """Queue a request; presses within DEBOUNCE_SECONDS of each other become one write.

        A run whose trainer is not running gets nothing written (and says why); a value outside the
        trainer's range is clamped, and says so."""
        if self._refuse_control(run):
            return
        clamped = self.control.request(run, value)
        if clamped != value:
            self.main_screen.query_one(AlertLog).note(
                f"{run.name}: log_every {value} clamped to {clamped} "
                f"(the trainer accepts {LOG_EVERY_MIN}..{LOG_EVERY_MAX})",
                "info",
            )
        self._control_pressed_at = self.clock()
        if self._control_timer is None:
            self._control_timer = self.set_timer(DEBOUNCE_SECONDS, self._flush_control)
        self.schedule_redraw()

    def _refuse_control(self, run: Run) -> bool:
        """True (and the reason in the alert log) when no trainer would read a request for ``run``."""
        refusal = self.control.refusal(run, self.clock())
        if refusal is not None:
            self.main_screen.query_one(AlertLog).note(refusal, "warning")
        return refusal is not None

    def _flush_control(self) -> None:
        """Write once the app's clock says DEBOUNCE_SECONDS passed since the last press (a test moves
        that clock, so a loaded machine cannot split one burst of presses into two writes)."""
        quiet = self.clock() - self._control_pressed_at
        if quiet < DEBOUNCE_SECONDS:
            self._control_timer = self.set_timer(min(DEBOUNCE_SECONDS - quiet, 0.1), self._flush_control)
            return
        self._control_timer = None
        pending = self.control.take_pending()
        if pending:
            self._write_control(pending)

    @work(thread=True, group="control", exit_on_error=False)
    def _write_control(self, pending: dict[Path, int]) -> None:
        from termmon.control import request_log_every

        results: list[tuple[Path, str | None]] = []
        for path, value in pending.items():
            try:
                request_log_every(path, value)
                results.append((path, None))
            except TermmonError as exc:
                results.append((path, str(exc)))
        self.call_from_thread(self._control_written, results)

    def _control_written(self, results: list[tuple[Path, str | None]]) -> None:
        log = self.main_screen.query_one(AlertLog)
        for path, error in results:
            self.control.mark_written(path, error, self.clock())
            if error is not None:
                log.note(f"log_every not changed: {error}", "critical")
        self.schedule_redraw()

    # --- export -------------------------------------------------------------------------------------------
    def export_path(self, run: Run) -> Path:
        """``--export-dir`` if given, else beside the run: RUN_PARENT/RUN-termmon-STAMP.png."""
        stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(self.clock()))
        safe = re.sub(r"[^A-Za-z0-9._-]+", "_", run.name).strip("._") or "run"
        folder = self.export_dir if self.export_dir is not None else run.path.parent
        return folder / f"{safe}-termmon-{stamp}.png"

    def action_export(self) -> None:
        """The panels on screen, as a titled PNG, written off the UI thread; the status line says so."""
        from termmon.views.static import FIGURE_POINTS  # the exporter's imports wait for its key

        runs = self.panel_runs()
        if not runs or self.exporting is not None:
            return
        panels = [
            self.panel_data(panel, runs, FIGURE_POINTS // 2) for panel in self.main_screen.query(ChartPanel)
        ]
        output = self.export_path(runs[0])
        heading = ", ".join(run.name for run in runs[:6]) + (
            f" and {len(runs) - 6} more" if len(runs) > 6 else ""
        )
        self.exporting = output
        self._status_shown = None
        self.schedule_redraw()
        self._export(panels, output, heading)

    @work(thread=True, group="export", exit_on_error=False)
    def _export(self, panels: list[PanelData], output: Path, heading: str) -> None:
        from termmon.views.static import export_figure

        try:
            message, severity = export_figure(panels, output, heading=heading), "info"
        except TermmonError as exc:
            message, severity = str(exc), "critical"
        self.call_from_thread(self._exported, message, severity)

    def _exported(self, message: str, severity: str) -> None:
        self.exported = self.exporting if severity == "info" else None
        self.exporting = None
        self.main_screen.query_one(AlertLog).note(message, severity)
        self.notify(
            sanitize(message), severity="error" if severity == "critical" else "information", markup=False
        )
        self.schedule_redraw()

    # --- command palette ----------------------------------------------------------------------------------
    def get_system_commands(self, screen: Screen[Any]) -> Iterable[SystemCommand]:
        """Textual's own commands (theme, screenshot...) less those the table has, then the table's."""
        ours = {action.name for action in ACTIONS}
        for command in super().get_system_commands(screen):
            if command.title not in ours:
                yield command
        for action in ACTIONS:
            if action.palette:
                yield SystemCommand(
                    action.name,
                    f"{action.help} ({action.shown})",
                    functools.partial(self.run_action, action.action),
                )


def run_monitor(
    paths: list[str],
    poll: float | None,
    config: Path | None,
    *,
    export_dir: Path | None = None,
    bell: bool = True,
    select: Path | None = None,
) -> int:
    """``termmon [PATH ...]``: raise UsageError for a missing path before any screen is drawn."""
    workspace = Workspace(paths)
    try:
        app = MonitorApp(
            workspace,
            watched=paths,
            poll=poll,
            config=config,
            export_dir=export_dir,
            bell=bell,
            select=select,
        )
        require_terminal()
        code = app.run()
    finally:
        workspace.close()
    return 0 if code is None else int(code)


def require_terminal() -> None:
    """Textual draws on stderr. Redirected (``termmon runs 2>log``), the screen would go into the file and
    the terminal would stay blank, waiting for keys: say so instead."""
    if sys.__stderr__ is None or not sys.__stderr__.isatty():
        raise UsageError(
            "termmon: the monitor draws on the terminal through stderr, which is not a terminal here "
            "(redirected?); run it without 2>..., or use `termmon --static` or `termmon summary` for output "
            "to a file"
        )
