"""Axis scales and tick labels: the one set of rules every chart termmon draws follows.

The TUI panels, ``termmon --static`` (text and images), ``e`` and ``termmon report``'s PNGs all ask
this module, so a diverging run reads the same everywhere:

- a series whose finite values span more than :data:`AUTO_DECADES` decades is drawn on a log axis
  (all values positive) or a symlog axis (values at or below zero), and the title says so;
- tick values are round: 1, 2, 2.5, 5 x 10^k on linear axes, whole decades on log axes, whole
  numbers for integer series (cluster counts);
- tick labels are short and compact (``1e30``, ``2.5k``, ``-3.1e-4``, ``0.25``), padded to one width.

Values are transformed here (log10, or the symlog map) and renderers draw the transformed values on a
linear axis with the ticks this module places and labels: plotext cannot rebuild a log axis on
repaint, and matplotlib then shows exactly the ticks the terminal shows.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

ScaleKind = Literal["linear", "log", "symlog"]
#: "auto" follows the data; "log" and "linear" are the user's choice (``l`` on a panel).
ScaleMode = Literal["auto", "log", "linear"]

#: A series spanning more decades than this switches itself to a log (or symlog) axis.
AUTO_DECADES = 3.0
#: Round steps for linear ticks, times a power of ten.
_NICE = (1.0, 2.0, 2.5, 5.0, 10.0)
_NICE_INT = (1.0, 2.0, 5.0, 10.0)
_SUFFIXES = ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k"))


@dataclass(frozen=True)
class Scale:
    """How values map onto the drawn (linear) axis."""

    kind: ScaleKind = "linear"
    #: symlog only: |y| below this is drawn nearly linearly, so zero has a place on the axis.
    linthresh: float = 1.0

    @property
    def label(self) -> str:
        """What a title says about the axis: "" for linear."""
        return "" if self.kind == "linear" else self.kind

    def forward(self, y: np.ndarray) -> np.ndarray:
        """Values to axis positions; on a log axis values <= 0 become -inf (marked, not dropped)."""
        y = np.asarray(y, dtype=np.float64)
        if self.kind == "linear":
            return y
        out: np.ndarray
        with np.errstate(divide="ignore", invalid="ignore"):
            if self.kind == "log":
                out = np.where(y > 0, np.log10(np.where(y > 0, y, 1.0)), np.where(np.isnan(y), y, -np.inf))
            else:
                out = np.sign(y) * np.log10(1.0 + np.abs(y) / self.linthresh)
        return out

    def inverse(self, t: np.ndarray) -> np.ndarray:
        """Axis positions back to values (the inspector reads values under its cursor)."""
        t = np.asarray(t, dtype=np.float64)
        if self.kind == "linear":
            return t
        out: np.ndarray
        if self.kind == "log":
            out = np.power(10.0, t)
        else:
            out = np.sign(t) * self.linthresh * (np.power(10.0, np.abs(t)) - 1.0)
        return out


def is_integer_series(values: np.ndarray) -> bool:
    """Every finite value is a whole number (counts, cluster numbers): integer ticks, no smoothing."""
    finite = values[np.isfinite(values)]
    return (
        bool(len(finite)) and bool(np.all(finite == np.round(finite))) and float(np.abs(finite).max()) < 2**53
    )


def choose_scale(values: np.ndarray, mode: ScaleMode = "auto") -> Scale:
    """The scale for a panel holding ``values`` (all its traces, raw, NaN/Inf allowed).

    ``mode="log"`` is the user forcing a log axis: log when every value is positive, else symlog.
    """
    finite = np.asarray(values, dtype=np.float64)
    finite = finite[np.isfinite(finite)]
    if mode == "linear" or len(finite) < 2:
        return Scale()
    positive = bool((finite > 0).all())
    magnitude = np.abs(finite[finite != 0])
    if not len(magnitude):
        return Scale()
    if positive:
        decades = math.log10(float(magnitude.max()) / float(magnitude.min()))
        if mode == "log" or decades > AUTO_DECADES:
            return Scale("log")
        return Scale()
    # Crossing zero: compare the largest magnitude with a typical one, not the smallest (a single
    # 1e-9 near a zero crossing must not turn an ordinary series into symlog).
    typical = float(np.percentile(magnitude, 25))
    decades = math.log10(float(magnitude.max()) / typical)
    if mode == "log" or decades > AUTO_DECADES:
        return Scale("symlog", linthresh=10.0 ** math.floor(math.log10(typical)))
    return Scale()


# --- tick labels -----------------------------------------------------------------------------------------


def _round_sig(value: float, digits: int) -> float:
    if value == 0 or not math.isfinite(value):
        return value
    return round(value, digits - 1 - math.floor(math.log10(abs(value))))


def _plain(value: float, digits: int) -> str:
    """``value`` with ``digits`` significant digits, fixed point, trailing zeros dropped."""
    decimals = max(0, digits - 1 - math.floor(math.log10(abs(value))))
    text = f"{value:.{decimals}f}"
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def compact(value: float, digits: int = 2, *, sci: bool = False) -> str:
    """A short label: ``0.25``, ``12``, ``2.5k``, ``40M``, ``1e30``, ``-3.1e-4``, ``NaN``, ``+Inf``.

    ``sci`` writes 1000 and up as ``1e3`` rather than ``1k`` (log axes, where ticks are decades).
    """
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    value = _round_sig(value, digits)
    if value == 0:
        return "0"
    size = abs(value)
    if 1e-2 <= size < 1e3:
        return _plain(value, digits)
    if 1e3 <= size < 1e15 and not sci:
        for base, suffix in _SUFFIXES:
            if size >= base:
                return _plain(value / base, digits) + suffix
    mantissa, exponent = f"{value:.{digits - 1}e}".split("e")
    if "." in mantissa:
        mantissa = mantissa.rstrip("0").rstrip(".")
    return f"{mantissa}e{int(exponent)}"


def labels_for(values: list[float], *, sci: bool = False) -> list[str]:
    """The shortest compact labels that tell every tick apart and say its value to within 0.1% of
    the spacing, right-aligned to one width (fixed-width labels keep the plot from jumping)."""
    if not values:
        return []
    gaps = np.diff(np.asarray(values, dtype=np.float64))
    spacing = float(np.abs(gaps).min()) if len(gaps) else max(abs(values[0]), 1.0)
    tolerance = max(spacing * 1e-3, 1e-300)
    labels: list[str] = []
    for digits in range(1, 16):  # more only for ticks far closer together than their size
        labels = [compact(v, digits, sci=sci) for v in values]
        exact = all(abs(_round_sig(v, digits) - v) <= max(tolerance, abs(v) * 1e-9) for v in values)
        if exact and len(set(labels)) == len(labels):
            break
    width = max(len(label) for label in labels)
    return [label.rjust(width) for label in labels]


# --- tick positions --------------------------------------------------------------------------------------


def _nice_step(raw: float, integer: bool) -> float:
    magnitude = 10.0 ** math.floor(math.log10(raw))
    steps = _NICE_INT if integer and magnitude < 10 else _NICE
    for m in steps:
        if m * magnitude >= raw * 0.999:
            step = m * magnitude
            return max(1.0, round(step)) if integer else step
    return 10.0 * magnitude


def linear_ticks(lo: float, hi: float, *, integer: bool = False, target: int = 5) -> list[float]:
    """Round values between ``lo`` and ``hi``: about ``target`` of them, whole numbers if ``integer``."""
    if not (math.isfinite(lo) and math.isfinite(hi)):
        return []
    if hi <= lo:
        return [lo]
    step = _nice_step((hi - lo) / max(1, target), integer)
    first = math.ceil(lo / step - 1e-9)
    last = math.floor(hi / step + 1e-9)
    ticks = [k * step for k in range(first, last + 1)]
    return [0.0 if abs(t) < step * 1e-9 else t for t in ticks]


def _stride(count: int, target: int) -> int:
    stride = 1
    for m in (1, 2, 3, 5, 10, 20, 25, 50, 100):
        stride = m
        if count / m <= target:
            break
    return stride


def ticks(
    lo: float, hi: float, scale: Scale, *, integer: bool = False, target: int = 5
) -> list[tuple[float, str]]:
    """(axis position, label) pairs for an axis spanning ``lo``..``hi`` in *axis* units."""
    if not (math.isfinite(lo) and math.isfinite(hi)):
        return []
    if scale.kind == "linear":
        values = linear_ticks(lo, hi, integer=integer, target=target)
        return list(zip(values, labels_for(values), strict=True))
    if scale.kind == "log":
        k_lo, k_hi = math.ceil(lo - 1e-9), math.floor(hi + 1e-9)
        if k_hi - k_lo + 1 >= 2:
            stride = _stride(k_hi - k_lo + 1, target)
            decades = [k for k in range(k_lo, k_hi + 1) if k % stride == 0] or [k_lo]
            values = [10.0**k for k in decades]
            return list(zip([float(k) for k in decades], labels_for(values, sci=True), strict=True))
        # Under two decades on a log axis (forced by `l`): round values, placed by their log.
        inside = [v for v in linear_ticks(10.0**lo, 10.0**hi, target=target) if v > 0]
        return list(zip([math.log10(v) for v in inside], labels_for(inside), strict=True))
    # symlog: zero and +-linthresh x 10^k, placed by the symlog map.
    top = max(abs(lo), abs(hi))
    k_max = math.ceil(top) + 1
    candidates = [0.0] + [s * scale.linthresh * 10.0**k for k in range(0, k_max + 1) for s in (1.0, -1.0)]
    positions = scale.forward(np.asarray(candidates))
    chosen = sorted(
        (float(p), v)
        for p, v in zip(positions.tolist(), candidates, strict=True)
        if lo - 1e-9 <= p <= hi + 1e-9
    )
    if len(chosen) > target + 1:
        stride = _stride(len(chosen), target)
        zero = next((i for i, (_, v) in enumerate(chosen) if v == 0), 0)
        chosen = [c for i, c in enumerate(chosen) if (i - zero) % stride == 0]
    values = [v for _, v in chosen]
    return list(zip([p for p, _ in chosen], labels_for(values, sci=True), strict=True))


def axis_range(values: np.ndarray) -> tuple[float, float]:
    """The drawn y limits for values already in axis units: their finite span, padded 3% so the top
    value and the NaN marks along the edge stay inside the frame; a constant gets half its size either
    side, so its ticks are round."""
    finite = np.asarray(values, dtype=np.float64)
    finite = finite[np.isfinite(finite)]
    if not len(finite):
        return 0.0, 1.0
    lo, hi = float(finite.min()), float(finite.max())
    if hi - lo < 1e-12 * max(1.0, abs(hi)):
        pad = abs(hi) * 0.5 or 0.5
        return lo - pad, hi + pad
    pad = (hi - lo) * 0.03
    return lo - pad, hi + pad


def set_y_axis(
    ax: Any, scale: Scale, lo: float, hi: float, *, integer: bool = False, target: int = 6
) -> None:
    """A matplotlib Axes drawn in axis units gets these limits and the ticks of :func:`ticks`."""
    ax.set_ylim(lo, hi)
    placed = ticks(lo, hi, scale, integer=integer, target=target)
    ax.set_yticks([p for p, _ in placed], [label.strip() for _, label in placed])
