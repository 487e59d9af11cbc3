"""Series prepared for a chart of a given width: min/max downsampling, non-finite markers, smoothing.

A terminal chart is ~100 columns wide and a PNG ~1000 pixels; drawing a million points is wasted work
and random sampling would hide exactly the spikes a user is looking for. Per bucket we keep the
minimum and the maximum (as W&B's full-fidelity mode and M4 do), so every spike survives, and NaN/Inf
points are returned separately so a view can mark them instead of silently dropping them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class DisplaySeries:
    """Finite points to draw, plus the x positions of non-finite values to mark."""

    x: np.ndarray
    y: np.ndarray
    nan_x: np.ndarray
    posinf_x: np.ndarray
    neginf_x: np.ndarray

    @property
    def has_nonfinite(self) -> bool:
        return bool(len(self.nan_x) or len(self.posinf_x) or len(self.neginf_x))


def _bucket_extremes(x: np.ndarray, y: np.ndarray, buckets: int) -> tuple[np.ndarray, np.ndarray]:
    n = len(y)
    if n <= 2 * buckets:
        return x, y
    per = n // buckets
    main = per * buckets
    block = y[:main].reshape(buckets, per)
    offsets = np.arange(buckets) * per
    picks = [offsets + block.argmin(axis=1), offsets + block.argmax(axis=1)]
    if main < n:
        tail = y[main:]
        picks.append(np.array([main + int(tail.argmin()), main + int(tail.argmax())]))
    # The ends are kept too: a live chart must end at the newest value, and start where the run did.
    picks.append(np.array([0, n - 1]))
    index = np.unique(np.concatenate(picks))
    return x[index], y[index]


def _thin(positions: np.ndarray, limit: int) -> np.ndarray:
    if len(positions) <= limit:
        return positions
    return positions[np.linspace(0, len(positions) - 1, limit).astype(np.int64)]


def downsample(x: np.ndarray, y: np.ndarray, max_points: int = 1000) -> DisplaySeries:
    """At most ~``max_points`` finite points keeping every bucket's min and max, and the markers."""
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    keep_x = np.isfinite(x)
    x, y = x[keep_x], y[keep_x]
    finite = np.isfinite(y)
    buckets = max(1, max_points // 2)
    fx, fy = _bucket_extremes(x[finite], y[finite], buckets)
    bad_x, bad_y = x[~finite], y[~finite]
    return DisplaySeries(
        x=fx,
        y=fy,
        nan_x=_thin(bad_x[np.isnan(bad_y)], buckets),
        posinf_x=_thin(bad_x[bad_y == np.inf], buckets),
        neginf_x=_thin(bad_x[bad_y == -np.inf], buckets),
    )


#: Above this many points smoothing runs on bucket means, keeping its cost bounded for huge runs.
SMOOTH_MAX_POINTS = 20_000


def smooth(x: np.ndarray, y: np.ndarray, weight: float = 0.6) -> tuple[np.ndarray, np.ndarray]:
    """TensorBoard-style debiased exponential moving average over the finite values.

    Debiasing (dividing by ``1 - weight**k``) keeps the first points from being dragged to zero. For
    long series the values are first averaged in buckets and the weight raised to the bucket size,
    which keeps the curve's time constant the same.
    """
    if not 0.0 <= weight < 1.0:
        raise ValueError("smoothing weight must be in [0, 1)")
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    keep = np.isfinite(y) & np.isfinite(x)
    x, y = x[keep], y[keep]
    n = len(y)
    if n > SMOOTH_MAX_POINTS:
        per = -(-n // SMOOTH_MAX_POINTS)
        starts = np.arange(0, n, per)
        sizes = np.diff(np.append(starts, n))
        x = np.add.reduceat(x, starts) / sizes
        y = np.add.reduceat(y, starts) / sizes
        weight = weight**per
    out = np.empty_like(y)
    last = 0.0
    for i, value in enumerate(y.tolist()):
        last = last * weight + (1.0 - weight) * value
        out[i] = last / (1.0 - weight ** (i + 1)) if weight > 0 else value
    return x, out
