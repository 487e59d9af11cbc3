"""Strings from disk made safe to show in the TUI and in Rich output: never markup, never escapes.

The characters themselves are handled by the one sanitiser, :func:`termmon.sanitize.terminal_text`
(unsafe ones shown as ``\\x1b``); here they are also wrapped in a :class:`rich.text.Text`, which Rich
never parses as markup, so ``[red]x`` in a run name stays those characters.
"""

from __future__ import annotations

from rich.text import Text

from termmon.sanitize import terminal_text


def sanitize(value: object, max_len: int = 500) -> str:
    """The string shown for a value read from disk (see :func:`termmon.sanitize.terminal_text`)."""
    return terminal_text(value, max_len)


def literal(value: object, style: str = "") -> Text:
    """A sanitized string as a Text that Rich will never parse as markup."""
    return Text(sanitize(value), style=style, no_wrap=True, overflow="ellipsis")
