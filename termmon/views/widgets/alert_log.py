"""The alert log: problems first, newest first, each alert whole; severity in colour, strings literal."""

from __future__ import annotations

import math
import time
from operator import itemgetter

from rich.text import Text
from textual.events import Resize
from textual.widgets import RichLog

from termmon.views.alert_feed import AlertRow
from termmon.views.colors import SEVERITY_STYLE, RunColors, hex_color
from termmon.views.text import sanitize

SEVERITY_LABEL = {"critical": "CRIT", "warning": "WARN", "info": "INFO"}


def alert_text(row: AlertRow, colors: RunColors, *, plain: bool = False) -> Text:
    """One alert as a line; ``plain`` leaves colours to the container (the red CRIT banner)."""
    text = Text(no_wrap=False)

    def style(value: str) -> str:
        return "" if plain else value

    text.append(
        f"{SEVERITY_LABEL.get(row.severity, 'WARN')} ",
        style=style(SEVERITY_STYLE.get(row.severity, "yellow")),
    )
    text.append(sanitize(row.run_name, 40), style=style(hex_color(colors(row.run_name))))
    if row.step is not None:
        text.append(f" s{row.step}", style=style("dim"))
    elif row.epoch is not None:
        text.append(f" e{row.epoch}", style=style("dim"))
    text.append(f" {sanitize(row.kind, 40)}: ", style=style("bold"))
    text.append(sanitize(row.message))
    return text


#: Entries kept: the oldest go first.
MAX_ENTRIES = 1000

_first = itemgetter(0)


class AlertLog(RichLog):
    """The newest problem at the top, whole: a log scrolled to its end starts, in a panel a dozen rows
    high, on the wrapped tail of an older alert cut by the panel's edge ("layers)"), and the reader has to
    scroll up to learn what it is. What the panel cuts off here is the bottom of the oldest alert shown.

    "Newest" is by the time of the record that raised the alert: the alerts a finished run already held
    when the monitor started come in run by run, and the last run read is not where the latest problem
    is. Problems (warnings, critical) come before news (info: blobs forming, a run without metrics), so
    good news never pushes a problem out of a short panel. ``entries`` are kept in the order they came,
    and shown again after every batch of new ones and on a resize (which re-wraps them to the new width).
    A reader who has scrolled down to older alerts keeps them in view when new ones arrive above.
    """

    def __init__(self, colors: RunColors, *, id: str | None = None) -> None:
        super().__init__(id=id, min_width=20, wrap=True, auto_scroll=False, markup=False)
        self.run_colors = colors
        self.entries: list[Text] = []
        self._order: list[tuple[bool, float, int]] = []  # per entry: (a problem, when, arrival)
        self._arrivals = 0
        self._starts: dict[int, int] = {}  # the last render's first line of each entry, by arrival
        self._width = 0
        self._show_pending = False

    def add_alerts(self, rows: list[AlertRow]) -> None:
        for row in rows:
            when = row.time if row.time is not None and math.isfinite(row.time) else time.time()
            self._add(alert_text(row, self.run_colors), row.severity, when)

    def note(self, message: str, severity: str = "warning") -> None:
        text = Text(f"{SEVERITY_LABEL.get(severity, 'WARN')} ", style=SEVERITY_STYLE.get(severity, "yellow"))
        text.append(sanitize(message))
        self._add(text, severity, time.time())

    def _add(self, text: Text, severity: str, when: float) -> None:
        self._arrivals += 1
        self.entries = [*self.entries[-(MAX_ENTRIES - 1) :], text]
        self._order = [*self._order[-(MAX_ENTRIES - 1) :], (severity != "info", when, self._arrivals)]
        if not self._show_pending:  # one re-render for a batch: a run's first look can bring hundreds
            self._show_pending = True
            self.call_after_refresh(self._show)

    def _show(self) -> None:
        self._show_pending = False
        kept = self._at_top() if self.scroll_y else None
        self.clear()
        self._starts = {}
        for (_, _, arrival), text in sorted(
            zip(self._order, self.entries, strict=True), key=_first, reverse=True
        ):
            self._starts[arrival] = len(self.lines)  # where each entry begins (with the width known)
            self.write(text, scroll_end=False)
        if kept is not None and kept[0] in self._starts:
            self.scroll_to(y=self._starts[kept[0]] + kept[1], animate=False)

    def _at_top(self) -> tuple[int, int] | None:
        """The entry whose line is at the top of the view (its arrival), and how many lines into it."""
        y = round(self.scroll_y)
        begun = [(start, arrival) for arrival, start in self._starts.items() if start <= y]
        if not begun:
            return None
        start, arrival = max(begun)
        return arrival, y - start

    def on_resize(self, event: Resize) -> None:
        super().on_resize(event)
        width = event.size.width
        if self._width and width != self._width:
            self._show()
        self._width = width
