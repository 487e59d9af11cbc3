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
#: Lines parsed and turned into columns at a time: the dicts of a slice stay small enough to be cheap.
SLICE_LINES = 2000
#: The same for lines read from a buffer a slice at a time: about SLICE_LINES of a trainer's records, and
#: a bound on a slice's memory however wide its lines are.
SLICE_BYTES = 512 << 10
_BLANK = b" \t\r\n\x00"  # \n: lines read with readlines keep theirs
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


class LineParser:
    """Parses slices of complete lines, choosing the parser per slice.

    orjson first; a slice it rejects (a ``NaN`` token somewhere, or garbage) goes to ``json`` whole,
    which accepts the tokens; only a slice that both reject is parsed line by line to isolate the bad
    lines. Once a slice needed ``json`` the next starts there (a diverged run stays diverged), and goes
    back to orjson when a slice holds no token. Each line is parsed at most a few times, never retried
    per line on the common paths.
    """

    def __init__(self) -> None:
        self._nonfinite = False

    def parse(self, lines: list[bytes]) -> tuple[list[Any], int]:
        if not self._nonfinite:
            try:
                return list(map(orjson.loads, lines)), 0
            except _PARSE_ERRORS:
                pass
        try:
            values = list(map(json.loads, lines))
            self._nonfinite = True
            return values, 0
        except _PARSE_ERRORS:
            self._nonfinite = False
        values = []
        bad = 0
        for line in lines:
            ok, value = parse_line(line)
            if not ok:
                bad += 1
            elif value is not None or line.strip(_BLANK) == b"null":
                values.append(value)
        return values, bad
