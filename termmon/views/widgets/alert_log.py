"""The alert log: newest at the bottom and always in view, severity in colour, strings literal."""

from __future__ import annotations

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


MAX_LINES = 1000


class AlertLog(RichLog):
    """Appends only: a run's alerts arrive once, and notes (control errors) go in between.

    The entries are kept so a resize re-wraps them to the new width instead of cropping them.
    """

    def __init__(self, colors: RunColors, *, id: str | None = None) -> None:
        self.run_colors = colors
        super().__init__(id=id, max_lines=MAX_LINES, min_width=20, wrap=True, auto_scroll=True, markup=False)
        self.entries: list[Text] = []
        self._width = 0

    def add_alerts(self, rows: list[AlertRow]) -> None:
        for row in rows:
            self._add(alert_text(row, self.run_colors))

    def note(self, message: str, severity: str = "warning") -> None:
        text = Text(f"{SEVERITY_LABEL.get(severity, 'WARN')} ", style=SEVERITY_STYLE.get(severity, "yellow"))
        text.append(sanitize(message))
        self._add(text)

    def _add(self, text: Text) -> None:
        self.entries = [*self.entries[-(MAX_LINES - 1) :], text]
        self.write(text)

    def on_resize(self, event: Resize) -> None:
        super().on_resize(event)
        width = event.size.width
        if self._width and width != self._width:
            self.clear()
            for text in self.entries:
                self.write(text)
        self._width = width
