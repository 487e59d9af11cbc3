"""Strings from disk made safe to show: no markup, no escape sequences, no control characters.

Run names, metric names and alert messages come from files anyone can write. Rich would read
``[red]x`` as markup and a terminal would act on an escape sequence, so every such string passes
through :func:`sanitize` and is wrapped in a :class:`rich.text.Text`, never formatted into markup.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Iterable
from typing import TYPE_CHECKING

from rich.text import Text

if TYPE_CHECKING:
    from termmon.model.run import Run

# CSI / OSC / other ESC sequences first (so their parameters go too), then any remaining C0/C1 control.
_ESCAPES = re.compile(
    r"\x1b(?:\[[0-?]*[ -/]*[@-~]|\][^\x07\x1b]*(?:\x07|\x1b\\)?|[@-Z\\-_])|\x9b[0-?]*[ -/]*[@-~]"
)
_CONTROLS = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def sanitize(value: object, max_len: int = 500) -> str:
    """The string shown for a value read from disk: escapes removed, tabs/newlines as spaces."""
    text = value if isinstance(value, str) else str(value)
    text = _ESCAPES.sub("", text)
    text = text.replace("\t", " ").replace("\n", " ").replace("\r", " ")
    text = _CONTROLS.sub("", text)
    return text if len(text) <= max_len else text[: max_len - 1] + "…"


def literal(value: object, style: str = "") -> Text:
    """A sanitized string as a Text that Rich will never parse as markup."""
    return Text(sanitize(value), style=style, no_wrap=True, overflow="ellipsis")


def warn_read_errors(runs: Iterable[Run]) -> None:
    """One line on stderr per file a run could not read (damaged, another version), for the commands
    that read and exit; the TUI shows the same lines in its log."""
    for run in runs:
        for error in run.errors:
            print(f"termmon: {sanitize(run.name, 120)}: {sanitize(error)}", file=sys.stderr)
