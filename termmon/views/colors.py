"""Stable colours: a run keeps its colour across sessions and whatever else is on screen."""

from __future__ import annotations

import zlib

from termmon.model.run import RunStatus

#: Distinct on dark and light backgrounds, and still distinct in 256 colours.
PALETTE: tuple[tuple[int, int, int], ...] = (
    (86, 180, 233),  # sky blue
    (230, 159, 0),  # orange
    (0, 200, 140),  # green
    (240, 100, 170),  # pink
    (240, 228, 66),  # yellow
    (160, 120, 255),  # violet
    (213, 94, 0),  # vermilion
    (120, 200, 255),  # light blue
    (170, 220, 90),  # lime
    (200, 170, 130),  # tan
)

#: Status glyph and style, the same in the run picker, the status line and `termmon summary`.
STATUS_GLYPH: dict[RunStatus, tuple[str, str]] = {
    RunStatus.RUNNING: ("●", "green"),
    RunStatus.FINISHED: ("✓", "blue"),
    RunStatus.STALLED: ("◌", "yellow"),
    RunStatus.CRASHED: ("✗", "bold red"),
    RunStatus.KILLED: ("⊘", "red"),
    RunStatus.UNKNOWN: ("?", "dim"),
    RunStatus.LOADING: ("◔", "cyan"),
}

SEVERITY_STYLE: dict[str, str] = {"critical": "bold red", "warning": "yellow", "info": "cyan"}
SEVERITY_RGB: dict[str, tuple[int, int, int]] = {
    "critical": (230, 50, 50),
    "warning": (230, 180, 0),
    "info": (80, 170, 220),
}
NONFINITE_RGB = (255, 60, 60)


class RunColors:
    """Each run's colour: from a hash of its name, moved to the next free colour on a clash.

    A run keeps its colour for the life of the view (new runs never repaint old ones), and the same
    runs get the same colours every session, whatever directory they are watched from.
    """

    def __init__(self) -> None:
        self._assigned: dict[str, int] = {}

    def __call__(self, name: str) -> tuple[int, int, int]:
        index = self._assigned.get(name)
        if index is None:
            taken = set(self._assigned.values()) if len(self._assigned) < len(PALETTE) else set()
            index = zlib.crc32(name.encode()) % len(PALETTE)
            while index in taken:
                index = (index + 1) % len(PALETTE)
            self._assigned[name] = index
        return PALETTE[index]


def hex_color(rgb: tuple[int, int, int]) -> str:
    return "#{:02x}{:02x}{:02x}".format(*rgb)
