"""How a run ends when it is told to stop: SIGTERM (SLURM, Kubernetes, ``kill``) and SIGHUP (a closed
terminal) write the ``end`` record, then take their normal course.

The default action of these signals ends the process at once (no ``finally``, no ``atexit``), so
without a handler a stopped run would read "running", then "stalled", never "killed". One handler per
signal serves every open :class:`~termmon.telemetry.Telemetry` of the process:

- over the default action, it closes each open run with ``{"status": "killed", "signal": NAME}``
  (written and fsynced), restores the default action and sends the signal again, so the process dies
  of it exactly as it would have (exit status ``-15`` for SIGTERM, what a scheduler expects);
- over a handler the trainer installed first, it only remembers the signal and calls that handler: the
  trainer decides (stop now, stop after a checkpoint, carry on), and if the run then ends by an
  exception (``sys.exit`` in the handler), the logger records ``killed`` with the signal;
- an ignored signal stays ignored, and nothing is installed outside the main thread (Python allows
  handlers only there) or when a handler installed after ours replaces it.

SIGINT keeps Python's own handler: ``KeyboardInterrupt`` reaches the ``with`` block (or ``atexit``),
which records ``killed`` with ``signal: "SIGINT"``; a trainer that catches it and goes on is not ended.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
import weakref
from types import FrameType
from typing import Any, Protocol

#: The signals whose default action would end the process without a word.
HANDLED = tuple(getattr(signal, name) for name in ("SIGTERM", "SIGHUP") if hasattr(signal, name))


class Stoppable(Protocol):
    def _stopped_by_signal(self, name: str, *, final: bool) -> None: ...


_runs: weakref.WeakSet[Any] = weakref.WeakSet()
_previous: dict[int, Any] = {}
_lock = threading.Lock()


def watch(run: Stoppable) -> None:
    """Let ``run`` be told about a stopping signal; installs the handlers on first use."""
    with _lock:
        _runs.add(run)
        if threading.current_thread() is not threading.main_thread():
            return
        for signum in HANDLED:
            if signum in _previous:
                continue
            current = signal.getsignal(signum)
            if current is signal.SIG_IGN or current is None:  # ignored, or set outside Python: leave it
                continue
            try:
                signal.signal(signum, _handle)
            except (ValueError, OSError):
                continue
            _previous[signum] = current


def unwatch(run: Stoppable) -> None:
    """``run`` closed; the last one to close puts the previous handlers back (if ours are still there)."""
    with _lock:
        _runs.discard(run)
        if _runs or threading.current_thread() is not threading.main_thread():
            return
        for signum, previous in list(_previous.items()):
            with contextlib.suppress(ValueError, OSError):
                if signal.getsignal(signum) is _handle:
                    signal.signal(signum, previous)
            del _previous[signum]


def _handle(signum: int, frame: FrameType | None) -> None:
    name = signal.Signals(signum).name
    previous = _previous.get(signum, signal.SIG_DFL)
    final = not callable(previous)
    for run in list(_runs):
        # A run that cannot write its end record must not keep the process alive.
        with contextlib.suppress(Exception):
            run._stopped_by_signal(name, final=final)
    if callable(previous):
        previous(signum, frame)
        return
    signal.signal(signum, signal.SIG_DFL)
    os.kill(os.getpid(), signum)
