"""How far two state dicts are apart, layer by layer.

Absolute L2 grows with a layer's size, so a 4M-parameter embedding would outrank every bias however
little it moved. The ranking therefore uses *relative* L2, ``||a - b|| / ((||a|| + ||b||) / 2)``: 0 for
identical layers, 0.1 when they differ by a tenth of their size, about 1.41 for two independent random
initialisations, 2 at most. Both are reported. The denominator never drops below an RMS of
``RMS_FLOOR`` per element, so a zero-initialised bias that has barely moved cannot top the ranking on
noise alone.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    import torch

#: Relative L2 at which two runs (mean over layers) or one layer count as having clearly parted.
PARTING_THRESHOLD: Final = 0.1
RMS_FLOOR: Final = 1e-3


@dataclass(frozen=True)
class LayerDivergence:
    """One layer at one checkpoint; the statistics use float64 and the population std."""

    layer: str
    shape: tuple[int, ...]
    num_params: int
    l2_distance: float
    relative_l2: float
    cosine_similarity: float
    norm_a: float
    norm_b: float
    mean_a: float
    std_a: float
    mean_b: float
    std_b: float


@dataclass
class PairDivergence:
    """Everything one checkpoint pair says, including the layers that could not be compared."""

    layers: list[LayerDivergence] = field(default_factory=list)
    only_in_a: set[str] = field(default_factory=set)
    only_in_b: set[str] = field(default_factory=set)
    shape_mismatches: dict[str, str] = field(default_factory=dict)
    not_floating: set[str] = field(default_factory=set)


def compare_state_dicts(a: Mapping[str, torch.Tensor], b: Mapping[str, torch.Tensor]) -> PairDivergence:
    """Compare every layer both sides hold with the same shape; name the rest instead of failing."""
    out = PairDivergence(only_in_a=set(a) - set(b), only_in_b=set(b) - set(a))
    for name in sorted(set(a) & set(b)):
        ta, tb = a[name], b[name]
        if not (ta.is_floating_point() and tb.is_floating_point()):
            # Counters such as BatchNorm's num_batches_tracked are bookkeeping, not weights.
            out.not_floating.add(name)
        elif ta.shape != tb.shape:
            out.shape_mismatches[name] = f"{tuple(ta.shape)} vs {tuple(tb.shape)}"
        else:
            out.layers.append(layer_divergence(name, ta, tb))
    return out


def layer_divergence(name: str, ta: torch.Tensor, tb: torch.Tensor) -> LayerDivergence:
    import torch

    a = ta.detach().reshape(-1).to(torch.float64)
    b = tb.detach().reshape(-1).to(torch.float64)
    norm_a = float(torch.linalg.vector_norm(a))
    norm_b = float(torch.linalg.vector_norm(b))
    distance = float(torch.linalg.vector_norm(a - b))
    scale = max((norm_a + norm_b) / 2, RMS_FLOOR * math.sqrt(a.numel()))
    relative = distance / scale if scale > 0 else 0.0  # scale is 0 only for an empty tensor
    cosine = float(torch.dot(a, b)) / (norm_a * norm_b) if norm_a > 0 and norm_b > 0 else math.nan
    return LayerDivergence(
        layer=name,
        shape=tuple(ta.shape),
        num_params=a.numel(),
        l2_distance=distance,
        relative_l2=relative,
        cosine_similarity=cosine,
        norm_a=norm_a,
        norm_b=norm_b,
        mean_a=_mean(a),
        std_a=_std(a),
        mean_b=_mean(b),
        std_b=_std(b),
    )


def _mean(x: torch.Tensor) -> float:
    return float(x.mean()) if x.numel() else math.nan


def _std(x: torch.Tensor) -> float:
    return float(x.std(correction=0)) if x.numel() else math.nan
