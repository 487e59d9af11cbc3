"""Modal screens: help, the metric picker for the focused panel, and the exact log_every input."""

from __future__ import annotations

from typing import ClassVar

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Input, OptionList, Static
from textual.widgets.option_list import Option

from termmon.format import LOG_EVERY_MAX, LOG_EVERY_MIN
from termmon.views.actions import ACTIONS
from termmon.views.text import sanitize


class HelpScreen(ModalScreen[None]):
    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape,q,question_mark", "dismiss", "Close")]

    def compose(self) -> ComposeResult:
        """Built from the action table: every key, in the table's order, its help wrapped beside it."""
        keys = Table.grid(padding=(0, 2))
        keys.add_column(justify="right", style="bold cyan", no_wrap=True)
        keys.add_column()
        for action in ACTIONS:
            keys.add_row(action.shown, action.help)
        note = Text("x on a chart marks NaN/Inf values; ▌ marks runs overlaid in the panels.", style="dim")
        with VerticalScroll(id="help-box", classes="modal-box"):
            yield Static(Text("termmon keys", style="bold"))
            yield Static(keys, id="help-keys")
            yield Static(note)

    def action_dismiss(self) -> None:  # type: ignore[override]
        self.dismiss(None)


class MetricPicker(ModalScreen[str | None]):
    """The run's metrics with type-ahead search (35-51 metrics a run is common): typing narrows the
    list to names holding the text, ↓/↑ move, Enter puts the highlighted one into the panel."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "cancel", "Cancel"),
        Binding("down", "move(1)", "Down", show=False),
        Binding("up", "move(-1)", "Up", show=False),
    ]

    def __init__(self, metrics: list[str], current: str) -> None:
        super().__init__()
        self.metrics = metrics
        self.current = current
        self.shown = list(metrics)

    def compose(self) -> ComposeResult:
        with Vertical(id="metric-box", classes="modal-box"):
            yield Static(Text(f"metric for panel “{sanitize(self.current)}”", style="bold"))
            yield Input(placeholder="type to search", id="metric-search")
            yield OptionList(*(Option(Text(sanitize(m))) for m in self.metrics), id="metric-list")

    def on_mount(self) -> None:
        self.query_one("#metric-search", Input).focus()
        self.query_one("#metric-list", OptionList).highlighted = 0 if self.metrics else None

    def on_input_changed(self, event: Input.Changed) -> None:
        needle = event.value.strip().lower()
        self.shown = [m for m in self.metrics if needle in m.lower()]
        options = self.query_one("#metric-list", OptionList)
        options.set_options(Option(Text(sanitize(m))) for m in self.shown)
        options.highlighted = 0 if self.shown else None

    def on_input_submitted(self, event: Input.Submitted) -> None:
        index = self.query_one("#metric-list", OptionList).highlighted
        if index is not None and index < len(self.shown):
            self.dismiss(self.shown[index])

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        self.dismiss(self.shown[event.option_index])

    def action_move(self, delta: int) -> None:
        options = self.query_one("#metric-list", OptionList)
        if self.shown:
            current = options.highlighted if options.highlighted is not None else 0
            options.highlighted = max(0, min(len(self.shown) - 1, current + delta))

    def action_cancel(self) -> None:
        self.dismiss(None)


class LogEveryPrompt(ModalScreen[int | None]):
    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, run_name: str, current: int | None) -> None:
        super().__init__()
        self.run_name = run_name
        self.current = current

    def compose(self) -> ComposeResult:
        with Vertical(id="log-every-box", classes="modal-box"):
            yield Static(Text(f"log_every for {sanitize(self.run_name)} ({LOG_EVERY_MIN}..{LOG_EVERY_MAX})"))
            yield Input(
                value="" if self.current is None else str(self.current), type="integer", id="log-every-input"
            )

    def on_input_submitted(self, event: Input.Submitted) -> None:
        value = event.value.strip()
        self.dismiss(int(value) if value.lstrip("-").isdigit() else None)

    def action_cancel(self) -> None:
        self.dismiss(None)
