"""The reading thread's first look, handed to the UI thread before its first frame.

Handed over the usual way (``call_from_thread``), the first look waits for the UI's first layout, and
the first frame is drawn empty ("loading…") and then again with data: two layouts and renders before
anything useful is on screen. So the UI thread waits a moment for it instead (it gives up the
interpreter while it waits, so the reader parses at full speed) and folds it in before the first
frame. Where the first look is slow (a network filesystem), the wait ends and the look is handed
over the usual way once it is ready: whichever side comes second decides, under one lock, so the look
is delivered exactly once.
"""

from __future__ import annotations

import threading
from typing import Generic, TypeVar

T = TypeVar("T")


class FirstLook(Generic[T]):
    """One value passed from the reading thread to a UI thread that waits for it at most a while."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._ready = threading.Event()
        self._value: T | None = None
        self._open = True

    def offer(self, value: T) -> bool:
        """Reading thread: True if the waiting UI thread takes ``value``; False once it stopped
        waiting (or took a look already): hand ``value`` over the usual way."""
        with self._lock:
            if not self._open:
                return False
            self._value, self._open = value, False
        self._ready.set()
        return True

    def take(self, timeout: float) -> T | None:
        """UI thread: the offered value, waiting up to ``timeout`` seconds for it; None if it did not
        come in time (it will be handed over the usual way)."""
        self._ready.wait(timeout)
        with self._lock:
            self._open = False
            value, self._value = self._value, None
        return value
