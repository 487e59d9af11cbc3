"""Every key of the monitor, once: the table that makes the bindings, the help screen and the palette.

Three lists kept by hand drift (a key in the footer but not in help, a palette entry listed twice);
this one table cannot. ``scope="panel"`` keys are bound on the chart panels (arrows scroll and zoom the
focused panel), ``scope="picker"`` on the run picker (arrows move the selection, without wrapping);
the rest on the app.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from textual.binding import Binding

Scope = Literal["app", "picker", "panel"]


@dataclass(frozen=True)
class Action:
    """One key: what it runs, and how the footer, help (``?``) and the command palette name it."""

    keys: str  # Textual key names, comma separated
    action: str  # the app's action, with arguments: "move(1)"
    name: str  # short name: footer label and palette title
    help: str  # one line for the help screen and the palette
    shown: str  # how help writes the keys
    footer: bool = False
    palette: bool = True
    scope: Scope = "app"


ACTIONS: tuple[Action, ...] = (
    Action("j", "move(1)", "Next run", "select the next run (stops at the last)", "j", palette=False),
    Action(
        "k", "move(-1)", "Previous run", "select the previous run (stops at the first)", "k", palette=False
    ),
    Action("down", "move(1)", "Next run", "run list: the next run", "↓", palette=False, scope="picker"),
    Action(
        "up", "move(-1)", "Previous run", "run list: the previous run", "↑", palette=False, scope="picker"
    ),
    Action(
        "space", "mark", "Mark", "mark / unmark the run: marked runs overlay in every panel", "space", True
    ),
    Action("c", "clear_marks", "Clear marks", "unmark every run", "c"),
    Action("p", "pin", "Pin", "pin / unpin the run at the top of the list", "p"),
    Action("slash", "filter", "Filter", "filter runs by name (Esc clears)", "/", True),
    Action(
        "m", "pick_metric", "Metric", "put another metric in the focused panel (type to search)", "m", True
    ),
    Action("a", "add_panel", "Add panel", "add a panel for a metric (type to search)", "a"),
    Action("x", "remove_panel", "Remove panel", "remove the focused panel", "x"),
    Action(
        "d", "default_metric", "Panels follow run", "back to the panels that follow the selected run", "d"
    ),
    Action("right_square_bracket", "page(1)", "Next page", "next page of all the run's metrics", "]"),
    Action(
        "left_square_bracket",
        "page(-1)",
        "Previous page",
        "previous page of metrics (page 1: the run's)",
        "[",
    ),
    Action("plus", "log_every(2.0)", "log×2", "double the selected run's log_every (5..2000)", "+", True),
    Action("minus", "log_every(0.5)", "log÷2", "halve the selected run's log_every (5..2000)", "-", True),
    Action("equals_sign", "log_every_exact", "Set log_every", "set log_every to an exact value", "="),
    Action(
        "s", "cycle_smoothing", "Smooth", "smoothing: off, light, strong (integer series never)", "s", True
    ),
    Action("l", "toggle_log", "Log scale", "log / linear y axis on the focused panel", "l"),
    Action("i", "inspect", "Inspect", "value cursor on the focused panel (← → move it)", "i"),
    Action("b", "jump_alert", "Jump to alert", "select the run of the last critical alert", "b"),
    Action("e", "export", "Export", "export the panels on screen to a PNG", "e", True),
    Action("tab", "focus_next", "Next pane", "move focus: picker, panels, alert log", "tab", palette=False),
    Action(
        "left",
        "pan(-1)",
        "Scroll left",
        "focused panel: earlier steps (or move the cursor)",
        "←",
        scope="panel",
    ),
    Action(
        "right",
        "pan(1)",
        "Scroll right",
        "focused panel: later steps (or move the cursor)",
        "→",
        scope="panel",
    ),
    Action("up", "zoom(1)", "Zoom in", "focused panel: show the most recent half", "↑", scope="panel"),
    Action(
        "down",
        "zoom(-1)",
        "Zoom out",
        "focused panel: show twice as much, up to all steps",
        "↓",
        scope="panel",
    ),
    Action("home", "zoom_all", "All steps", "focused panel: every step", "home", scope="panel"),
    Action("ctrl+p", "command_palette", "Palette", "command palette", "ctrl+p", palette=False),
    Action("question_mark", "help", "Keys", "this help", "?", True),
    Action("escape", "escape", "Back", "close the filter, the cursor, the banner", "esc", palette=False),
    Action("q", "quit_monitor", "Quit", "quit", "q", True, palette=False),
)


def bindings(scope: Scope) -> list[Binding]:
    """Textual bindings for one scope; picker and panel keys run the app's actions."""
    prefix = "" if scope == "app" else "app."
    return [
        Binding(a.keys, prefix + a.action, a.name, show=a.footer, priority=False)
        for a in ACTIONS
        if a.scope == scope
    ]
