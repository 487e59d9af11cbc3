"""The one sanitiser for text read from disk before it reaches a terminal.

Run names, metric names, alert messages, config values and file names come from files anyone can
write. Written raw, ``ESC ] 52`` sets the clipboard, ``ESC [ 2J`` clears the screen, ``ESC ] 8`` plants
a hyperlink, and a bidi override (U+202E) makes ``txt.exe`` read as ``exe.txt``. So every such string
passes through :func:`terminal_text` first, in every layer (CLI errors, the summary table, the TUI,
``--static`` text, ``report`` on a terminal).

Unsafe characters are *shown*, not dropped: ``\\x1b``, ``\\u202e``. Dropping them would hide that a
file holds something odd; showing them tells the user exactly what is there and can never be acted on.
Tab, newline and carriage return become a space, since every place this text goes is one line.
The result is plain text: callers hand it to Rich as :class:`rich.text.Text` (never as markup), so
``[red]`` in a run name is printed as those five characters.

The module has no dependencies, so any layer may import it.
"""

from __future__ import annotations

import re

#: C0 controls (but tab/newline/CR, handled below), DEL, C1 controls, invisible direction marks and
#: overrides (U+061C, U+200E/F, U+202A-E, U+2066-9), line/paragraph separators, and lone surrogates
#: (json.loads accepts ``"\ud800"``; printing one raises UnicodeEncodeError on a UTF-8 terminal).
_UNSAFE = re.compile(
    "[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069"
    "\ud800-\udfff]"
)
_WHITESPACE = str.maketrans({"\t": " ", "\n": " ", "\r": " "})
ELLIPSIS = "…"


def _visible(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def terminal_text(value: object, max_len: int | None = None) -> str:
    """``value`` as one line safe for any terminal: unsafe characters spelled out (``\\x1b``).

    ``max_len`` cuts the result (after escaping, so an escape is never half shown) with an ellipsis.
    """
    text = value if isinstance(value, str) else str(value)
    text = _UNSAFE.sub(_visible, text.translate(_WHITESPACE))
    if max_len is not None and len(text) > max_len:
        text = text[: max(0, max_len - 1)] + ELLIPSIS
    return text
