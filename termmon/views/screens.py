"""Modal screens: help, the metric picker for the focused panel, and the exact log_every input."""

from __future__ import annotations

from typing import ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Input, OptionList, Static
from textual.widgets.option_list import Option

from termmon.format import LOG_EVERY_MAX, LOG_EVERY_MIN
from termmon.views.text import sanitize

KEYS: tuple[tuple[str, str], ...] = (
    ("↑ ↓  j k", "select a run"),
    ("space", "mark / unmark the run for overlay in the panels"),
    ("/", "filter runs by name (Esc clears)"),
    ("tab  shift+tab", "move focus (picker, panels, alert log)"),
    ("m", "put another metric of the run into the focused panel"),
    ("d", "restore the focused panel's default metric"),
    ("+  -", "double / halve the selected run's log_every (5..2000)"),
    ("=", "set log_every to an exact value"),
    ("s", "smoothing on/off (debiased EMA, TensorBoard-style)"),
    ("l", "log scale on the loss panel"),
    ("e", "export the current view to PNG"),
    ("ctrl+p", "command palette"),
    ("?", "this help"),
    ("q", "quit"),
)


class HelpScreen(ModalScreen[None]):
    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape,q,question_mark", "dismiss", "Close")]

    def compose(self) -> ComposeResult:
        text = Text("termmon keys\n\n", style="bold")
        for key, what in KEYS:
            text.append(f"{key:>16}  ", style="bold cyan")
            text.append(f"{what}\n")
        text.append("\nx on a chart marks NaN/Inf values; ▌ marks runs overlaid in the panels.", style="dim")
        with VerticalScroll(id="help-box", classes="modal-box"):
            yield Static(text)

    def action_dismiss(self) -> None:  # type: ignore[override]
        self.dismiss(None)


class MetricPicker(ModalScreen[str | None]):
    """Lists the run's metrics; Enter puts the highlighted one into the focused panel."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, metrics: list[str], current: str) -> None:
        super().__init__()
        self.metrics = metrics
        self.current = current

    def compose(self) -> ComposeResult:
        with Vertical(id="metric-box", classes="modal-box"):
            yield Static(Text(f"metric for panel “{sanitize(self.current)}”", style="bold"))
            yield OptionList(*(Option(Text(sanitize(m))) for m in self.metrics), id="metric-list")

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        self.dismiss(self.metrics[event.option_index])

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
