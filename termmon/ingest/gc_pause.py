"""Cyclic garbage collection paused around work that makes many objects and no cycles."""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterator


@contextlib.contextmanager
def gc_paused() -> Iterator[None]:
    """No cyclic garbage collection inside the block; the collector is left as it was found after.

    Decoding a big file makes hundreds of thousands of small objects that hold no cycles (records,
    tuples, lists): freed by their reference counts, they still trigger the collector, which walks them
    and every long-lived object again and again (a third of a tfevents read; ~0.15 s of a 1M-line
    ``termmon.load``, whose pandas import meanwhile made each full pass longer). Nested use is fine:
    only the outermost block turns the collector back on.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()
