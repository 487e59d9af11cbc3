"""Which alert conditions are open: the logger writes one alert per episode, not one per log step."""

from __future__ import annotations


class Episodes:
    """Conditions seen and not yet cleared. Each holder keeps its own (the training thread's for epoch
    checks, the writer thread's for step checks), so none is shared between threads."""

    def __init__(self) -> None:
        self._open: set[str] = set()

    def first(self, name: str) -> bool:
        """True the first time ``name`` is seen since it last cleared."""
        if name in self._open:
            return False
        self._open.add(name)
        return True

    def clear(self, name: str) -> None:
        """The condition is gone: the next time it is seen starts a new episode."""
        self._open.discard(name)
