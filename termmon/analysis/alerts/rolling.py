"""Rolling order statistics over "the ``window`` values before each point", in numpy only.

The exploding-gradient rule needs a point's ratio to the median of the points before it, but only where
that ratio can pass the bound: the rolling minimum (O(n), a few vectorised passes) bounds the median from
below, so the exact median is taken only at the few points the minimum cannot rule out. That keeps
pandas (~0.75 CPU-s to import) out of the monitor, and a live update costs O(new points + window).
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

#: Exact medians are gathered this many windows at a time: (chunk, window) float64 temporaries.
MEDIAN_CHUNK = 4096


def rolling_min_before(x: np.ndarray, start: int, window: int) -> np.ndarray:
    """For each ``k`` in ``start..len(x)-1``, ``min(x[max(0, k - window):k])`` (+inf where that is empty).

    Van Herk / Gil-Werman: per block of ``window`` values a prefix and a suffix minimum; any window is
    the suffix of one block and the prefix of the next, so each point costs O(1) whatever ``window``.
    """
    n = len(x)
    out = np.full(max(0, n - start), np.inf)
    if n == 0 or start >= n:
        return out
    ks = np.arange(start, n)
    short = ks < window  # fewer than ``window`` values before k: all of them
    if short.any():
        idx = ks[short]
        prefix = np.minimum.accumulate(x[: max(1, int(idx[-1]))])
        out[short] = np.where(idx > 0, prefix[np.maximum(idx - 1, 0)], np.inf)
    full = ~short
    if full.any():
        lo = int(ks[full][0]) - window  # first window start needed
        seg = x[lo : n - 1]  # every window [a, a + window) with a >= lo lies in here
        pad = (-len(seg)) % window
        blocks = np.concatenate([seg, np.full(pad, np.inf)]).reshape(-1, window)
        pre = np.minimum.accumulate(blocks, axis=1).ravel()
        suf = np.minimum.accumulate(blocks[:, ::-1], axis=1)[:, ::-1].ravel()
        a = ks[full] - window - lo
        out[full] = np.minimum(suf[a], pre[a + window - 1])
    return out


def medians_before(x: np.ndarray, ks: np.ndarray, window: int) -> np.ndarray:
    """For each ``k`` of ``ks`` (ascending, each >= 1), the median of ``x[max(0, k - window):k]``."""
    out = np.empty(len(ks))
    short = ks < window
    for i in np.flatnonzero(short).tolist():  # only the first ``window`` points of a series
        k = int(ks[i])
        part = np.partition(x[:k], [(k - 1) // 2, k // 2])
        out[i] = part[k // 2] if k % 2 else (part[k // 2 - 1] + part[k // 2]) / 2
    full = np.flatnonzero(~short)
    if len(full):
        views = sliding_window_view(x, window)
        mid = [(window - 1) // 2, window // 2]
        for lo in range(0, len(full), MEDIAN_CHUNK):
            idx = full[lo : lo + MEDIAN_CHUNK]
            part = np.partition(views[ks[idx] - window], mid, axis=1)
            # The middle value, or the mean of the two middle ones (as pandas and numpy's median).
            out[idx] = part[:, mid[1]] if window % 2 else (part[:, mid[0]] + part[:, mid[1]]) / 2
    return out


def rolling_median_before(
    history: np.ndarray, values: np.ndarray, window: int, min_history: int, wanted: np.ndarray | None = None
) -> np.ndarray:
    """For each of ``values``, the median of the ``window`` values before it (``history`` then ``values``),
    NaN while fewer than ``min_history`` precede it, and NaN where ``wanted`` (a mask over ``values``) is
    False. Exact, so any split of a series gives the same result."""
    combined = np.concatenate([history, values])
    ks = np.arange(len(history), len(combined))
    ready = np.minimum(ks, window) >= min_history
    if wanted is not None:
        ready &= wanted
    out = np.full(len(values), np.nan)
    at = np.flatnonzero(ready)
    if len(at):
        out[at] = medians_before(combined, ks[at], window)
    return out
