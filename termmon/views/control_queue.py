"""log_every requests from the keyboard: coalesced per run, and followed until the trainer applies them.

Rapid ``+`` presses must become one control.json write computed from the last *requested* value (not
the applied one, which lags by up to the trainer's 2 s poll), so this class holds the pending value
per run; the app flushes it after a short quiet period, off the UI thread.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from termmon.format import clamp_log_every
from termmon.model.run import Run

#: What ``+``/``-`` start from when the run never said its log_every (the logger's default).
DEFAULT_LOG_EVERY = 10
DEBOUNCE_SECONDS = 0.4


@dataclass
class ControlState:
    requested: int
    was: int | None
    change_at_request: dict[str, Any] | None  # run.last_control_change when asked: a new one answers us
    written: bool = False
    error: str | None = None


class LogEveryControl:
    def __init__(self) -> None:
        self.states: dict[Path, ControlState] = {}
        self.pending: dict[Path, int] = {}

    def current(self, run: Run) -> int:
        """The value the next ``+``/``-`` starts from: the last request not yet superseded, else the run's."""
        state = self.states.get(run.path)
        if state is not None and self.applied_step(run) is None and state.error is None:
            return state.requested
        return run.log_every or DEFAULT_LOG_EVERY

    def request(self, run: Run, value: int) -> int:
        """Queue ``value`` (clamped) for ``run``; returns the clamped value."""
        value = clamp_log_every(value)
        state = self.states.get(run.path)
        pending_already = state is not None and self.applied_step(run) is None and state.error is None
        was = state.was if pending_already and state is not None else run.log_every
        self.states[run.path] = ControlState(value, was, run.last_control_change)
        self.pending[run.path] = value
        return value

    def take_pending(self) -> dict[Path, int]:
        pending, self.pending = self.pending, {}
        return pending

    def mark_written(self, path: Path, error: str | None) -> None:
        state = self.states.get(path)
        if state is not None:
            state.written = error is None
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

    def describe(self, run: Run) -> str:
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
        was = f", was {state.was}" if state.was is not None else ""
        return f"log_every {state.requested} (requested{was})"
