"""Complete JSONL lines to parsed values, counting the lines that are not JSON.

orjson is the fast path. It rejects the ``NaN``/``Infinity`` tokens that Python's json writes, so a
chunk holding those tokens goes to the standard library parser, which accepts them. That is a
routing decision made once per chunk, never a try-fast-then-slow on every line: on a diverged run
every line holds NaN, and retrying each line would make it slower than plain ``json``.
"""

from __future__ import annotations

import json
from typing import Any

import orjson

_NONFINITE_TOKENS = (b"NaN", b"Infinity")
_BLANK = b" \t\r\x00"
_PARSE_ERRORS = (ValueError, RecursionError, UnicodeDecodeError, TypeError)


def _has_nonfinite(data: bytes) -> bool:
    return any(token in data for token in _NONFINITE_TOKENS)


def parse_line(line: bytes) -> tuple[bool, Any]:
    """``(True, value)`` for a JSON line, ``(False, None)`` for garbage; blank lines are (True, None)."""
    line = line.strip(_BLANK)
    if not line:
        return True, None
    try:
        if _has_nonfinite(line):
            return True, json.loads(line)
        return True, orjson.loads(line)
    except _PARSE_ERRORS:
        pass
    try:  # orjson rejects lone surrogates and a few other things json accepts
        return True, json.loads(line)
    except _PARSE_ERRORS:
        pass
    try:  # integers longer than Python's int-string limit (4300 digits) are still numbers
        return True, json.loads(line, parse_int=_long_int)
    except _PARSE_ERRORS:
        return False, None


def _long_int(text: str) -> int | float:
    return int(text) if len(text) < 4000 else float(text)


def parse_lines(data: bytes) -> tuple[list[Any], int]:
    """Parse newline-terminated ``data``; returns the parsed values and the number of bad lines.

    ``data`` must end at a line boundary (the tailer guarantees it). Blank lines are skipped and not
    counted; a line of garbage, invalid UTF-8 or too-deep nesting counts as one bad line and its
    neighbours are unaffected.
    """
    lines = data.splitlines()
    loads = json.loads if _has_nonfinite(data) else orjson.loads
    try:
        return list(map(loads, lines)), 0
    except _PARSE_ERRORS:
        pass
    values: list[Any] = []
    bad = 0
    for line in lines:
        ok, value = parse_line(line)
        if not ok:
            bad += 1
        elif value is not None or line.strip(_BLANK) == b"null":
            values.append(value)
    return values, bad
