"""log_every requests from the keyboard: coalesced per run, and followed until the trainer applies them.

Rapid ``+`` presses must become one control.json write computed from the last *requested* value (not
the applied one, which lags by up to the trainer's 2 s poll), so this class holds the pending value
per run; the app flushes it after a short quiet period, off the UI thread.

It is also honest about what a request achieved: a run whose trainer is no longer running is refused
(nothing is written that nobody will read), a value outside the trainer's range says it was clamped,
and a request the trainer has not answered within ``ACK_SECONDS`` (two missed polls and then some)
reads "not acknowledged" instead of "requested" forever. Times come from the app's clock, so tests
drive them without sleeping.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from termmon.format import clamp_log_every
from termmon.model.run import Run, RunStatus

#: What ``+``/``-`` start from when the run never said its log_every (the logger's default).
DEFAULT_LOG_EVERY = 10
DEBOUNCE_SECONDS = 0.4
#: The trainer polls every ~2 s; a request it has not applied after this long was not received.
ACK_SECONDS = 10.0
#: Runs whose trainer may still read control.json (a stalled one may be in a long evaluation).
LIVE_STATUSES = frozenset({RunStatus.RUNNING, RunStatus.STALLED})


@dataclass
class ControlState:
    requested: int  # after clamping: what was (or will be) written
    asked: int  # what the key or prompt asked for
    was: int | None
    change_at_request: dict[str, Any] | None  # run.last_control_change when asked: a new one answers us
    written_at: float | None = None
    error: str | None = None
    overdue_noted: bool = False


class LogEveryControl:
    def __init__(self) -> None:
        self.states: dict[Path, ControlState] = {}
        self.pending: dict[Path, int] = {}

    def refusal(self, run: Run, now: float) -> str | None:
        """Why a request to ``run`` would go unanswered (its trainer is not running), or None."""
        status = run.status(now)
        if status in LIVE_STATUSES:
            return None
        if status is RunStatus.LOADING:
            return f"{run.name} is still loading: try again once its history is read"
        if status is RunStatus.UNKNOWN:
            return f"{run.name}: no trainer is writing this run, so log_every was not changed"
        ended = "was killed" if status is RunStatus.KILLED else f"has {status.value}"
        return f"{run.name} {ended}: its trainer is not running, so log_every was not changed"

    def current(self, run: Run) -> int:
        """The value the next ``+``/``-`` starts from: the last request not yet superseded, else the run's."""
        state = self.states.get(run.path)
        if state is not None and self.applied_step(run) is None and state.error is None:
            return state.requested
        return run.log_every or DEFAULT_LOG_EVERY

    def request(self, run: Run, value: int) -> int:
        """Queue ``value`` (clamped) for ``run``; returns the clamped value."""
        clamped = clamp_log_every(value)
        state = self.states.get(run.path)
        pending_already = state is not None and self.applied_step(run) is None and state.error is None
        was = state.was if pending_already and state is not None else run.log_every
        self.states[run.path] = ControlState(clamped, value, was, run.last_control_change)
        self.pending[run.path] = clamped
        return clamped

    def take_pending(self) -> dict[Path, int]:
        pending, self.pending = self.pending, {}
        return pending

    def mark_written(self, path: Path, error: str | None, now: float) -> None:
        state = self.states.get(path)
        if state is not None:
            state.written_at = now if error is None else None
            state.error = error

    def applied_step(self, run: Run) -> int | None:
        """The step at which the trainer applied our request, or None while it has not."""
        state = self.states.get(run.path)
        change = run.last_control_change
        if state is None or change is None or change is state.change_at_request:
            return None
        if state.requested not in (change.get("new"), change.get("requested")):
            return None
        step = change.get("step")
        return int(step) if isinstance(step, int | float) else -1

    def unacknowledged(self, run: Run, now: float) -> bool:
        """Written more than ACK_SECONDS ago and still not applied."""
        state = self.states.get(run.path)
        return (
            state is not None
            and state.written_at is not None
            and now - state.written_at >= ACK_SECONDS
            and self.applied_step(run) is None
        )

    def newly_unacknowledged(self, runs: list[Run], now: float) -> list[str]:
        """One alert-log line per request that has just become overdue."""
        notes = []
        for run in runs:
            state = self.states.get(run.path)
            if state is not None and not state.overdue_noted and self.unacknowledged(run, now):
                state.overdue_noted = True
                notes.append(
                    f"{run.name}: log_every {state.requested} not acknowledged after {ACK_SECONDS:.0f}s "
                    "(is the trainer still polling control.json?)"
                )
        return notes

    def describe(self, run: Run, now: float) -> str:
        """The status line's log_every part."""
        state = self.states.get(run.path)
        if state is None:
            return f"log_every {run.log_every}" if run.log_every else "log_every ?"
        if state.error is not None:
            return f"log_every {run.log_every or '?'} (request failed)"
        step = self.applied_step(run)
        if step is not None:
            shown = run.log_every or state.requested
            return (
                f"log_every {shown} (applied at step {step})" if step >= 0 else f"log_every {shown} (applied)"
            )
        if self.unacknowledged(run, now):
            return f"log_every {run.log_every or '?'} ({state.requested} not acknowledged)"
        clamped = f" {state.asked}, clamped to {state.requested}" if state.asked != state.requested else ""
        was = f", was {state.was}" if state.was is not None else ""
        return f"log_every {state.requested} (requested{clamped}{was})"
