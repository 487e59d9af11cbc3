"""The alert log: problems first, newest first, each alert whole; severity in colour, strings literal."""

from __future__ import annotations

import math
import time
from collections import deque
from operator import itemgetter

from rich.segment import Segment
from rich.text import Text
from textual.events import Resize
from textual.geometry import Size
from textual.scroll_view import ScrollView
from textual.strip import Strip

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
#: Narrowest width an alert is wrapped to (a narrower panel crops it).
MIN_WIDTH = 20

_first = itemgetter(0)


class AlertLog(ScrollView, can_focus=True):
    """The newest problem at the top, whole: a log scrolled to its end starts, in a panel a dozen rows
    high, on the wrapped tail of an older alert cut by the panel's edge ("layers)"), and the reader has to
    scroll up to learn what it is. What the panel cuts off here is the bottom of the oldest alert shown.

    "Newest" is by the time of the record that raised the alert: the alerts a finished run already held
    when the monitor started come in run by run, and the last run read is not where the latest problem
    is. Problems (warnings, critical) come before news (info: blobs forming, a run without metrics), so
    good news never pushes a problem out of a short panel. A reader who has scrolled down to older alerts
    keeps the same line in view when new ones arrive above or below it.

    Each entry is wrapped once for the panel's width and kept as lines (the Line API), so a new alert
    costs its own wrapping and a re-sort, not the whole log's: re-wrapping 1,000 alerts takes ~0.2 s.
    ``entries`` are in the order they came; ``lines`` is what the panel shows, top first.
    """

    def __init__(self, colors: RunColors, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.run_colors = colors
        self.lines: list[Strip] = []
        #: In the order they came, each with its place: (a problem, when, arrival), greatest first shown.
        self._entries: deque[tuple[tuple[bool, float, int], Text]] = deque(maxlen=MAX_ENTRIES)
        self._arrivals = 0
        self._wrapped: dict[int, list[Strip]] = {}  # each entry's lines at _wrap_width, by arrival
        self._wrap_width = 0
        self._starts: dict[int, int] = {}  # the first line of each entry in ``lines``, by arrival
        self._show_pending = False

    @property
    def entries(self) -> list[Text]:
        """The entries in the order they came."""
        return [text for _, text in self._entries]

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
        place = (severity != "info", when, self._arrivals)
        self._entries.append((place, text))
        if not self._show_pending:  # one re-sort for a batch: a run's first look can bring hundreds
            self._show_pending = True
            self.call_after_refresh(self._show)

    def _show(self) -> None:
        """``lines`` again from the entries, newest problem first, keeping the reader's place."""
        self._show_pending = False
        width = max(MIN_WIDTH, self.scrollable_content_region.width)
        if not self.size.width:
            return  # not laid out yet: the first resize shows them
        if width != self._wrap_width:
            self._wrapped, self._wrap_width = {}, width
        kept = self._at_top() if self.scroll_y else None
        lines: list[Strip] = []
        starts: dict[int, int] = {}
        wrapped: dict[int, list[Strip]] = {}
        for (_, _, arrival), text in sorted(self._entries, key=_first, reverse=True):
            strips = self._wrapped.get(arrival) or self._wrap(text, width)
            wrapped[arrival] = strips
            starts[arrival] = len(lines)
            lines.extend(strips)
        self.lines, self._starts, self._wrapped = lines, starts, wrapped  # entries dropped are forgotten
        self.virtual_size = Size(width, len(lines))
        if kept is not None and kept[0] in starts:
            self.scroll_to(y=starts[kept[0]] + kept[1], animate=False)
        self.refresh()

    def _wrap(self, text: Text, width: int) -> list[Strip]:
        console = self.app.console
        segments = console.render(text, console.options.update_width(width))
        strips = Strip.from_lines(list(Segment.split_lines(segments)))
        return [strip.adjust_cell_length(width) for strip in strips] or [Strip.blank(width)]

    def _at_top(self) -> tuple[int, int] | None:
        """The entry whose line is at the top of the view (its arrival), and how many lines into it."""
        y = round(self.scroll_y)
        begun = [(start, arrival) for arrival, start in self._starts.items() if start <= y]
        if not begun:
            return None
        start, arrival = max(begun)
        return arrival, y - start

    def render_line(self, y: int) -> Strip:
        scroll_x, scroll_y = self.scroll_offset
        width = self.scrollable_content_region.width
        index = scroll_y + y
        if index >= len(self.lines):
            return Strip.blank(width, self.rich_style)
        return (
            self.lines[index]
            .crop_extend(scroll_x, scroll_x + width, self.rich_style)
            .apply_style(self.rich_style)
        )

    def on_resize(self, event: Resize) -> None:
        if max(MIN_WIDTH, self.scrollable_content_region.width) != self._wrap_width or not self.lines:
            self._show()
