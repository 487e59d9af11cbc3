"""Gradient, weight and update statistics computed on the device as a few fused ops.

Nothing here moves data to the host: each function returns tensors that the logger packs with the rest of a
log step's values and transfers once. Small tensors (most of a model's count, little of its size) are
copied end to end once and reduced per tensor with ``segment_reduce``, so a model of 10,000 tensors costs a
handful of ops, not 10,000 per statistic; each large tensor keeps one op per statistic.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence

import torch

#: Parameters sampled per tensor by the update check: enough to see any optimizer step move a tensor.
SENTINELS_PER_TENSOR = 64
#: Tensors up to this many elements are reduced together from one flat copy: below it a per-tensor op's
#: launch overhead (~10 us) outweighs its arithmetic, and a model of 10,000 such tensors spent 13x a
#: training step on them. Larger tensors keep one op each (there are few; their arithmetic dominates).
SMALL_TENSOR = 1 << 14


def _stack_on(device: torch.device, tensors: Sequence[torch.Tensor]) -> torch.Tensor:
    """One float32 vector on ``device``: a single ``stack`` when the tensors share it, else moved one by one
    (a model split over devices)."""
    try:
        return torch.stack(list(tensors)).to(device=device, dtype=torch.float32)
    except RuntimeError:
        return torch.stack([t.to(device=device, dtype=torch.float32) for t in tensors])


class _Layout:
    """Which of a list of tensors are small enough to share one flat copy, and how to put results back.

    Built from the tensors' sizes and devices only, so one layout serves every list of the same shapes.
    """

    def __init__(self, shapes: tuple[tuple[int, torch.device], ...]) -> None:
        self.device = shapes[0][1]
        self.small = [i for i, (n, dev) in enumerate(shapes) if 0 < n <= SMALL_TENSOR and dev == self.device]
        chosen = set(self.small)
        self.large = [i for i in range(len(shapes)) if i not in chosen]
        self.lengths = torch.tensor([shapes[i][0] for i in self.small], device=self.device)
        position = torch.tensor(self.small + self.large, device=self.device)
        #: ``cat(small results, large results)[order]`` is in the tensors' own order.
        self.order = torch.argsort(position)

    def flat(self, tensors: Sequence[torch.Tensor]) -> torch.Tensor:
        """The small tensors' elements, end to end, as float32 (one copy, one op). Call under no_grad:
        ``detach`` per tensor costs ~4 us, as much as the reduction it would precede."""
        return torch._utils._flatten_dense_tensors([tensors[i] for i in self.small]).to(torch.float32)

    def per_tensor(self, tensors: Sequence[torch.Tensor], reductions: Sequence[str]) -> list[torch.Tensor]:
        """Each reduction (``sum``/``min``/``max``/``l2``) of every tensor, in the tensors' order: segments of
        one flat copy for the small ones; for the large ones one fused ``_foreach_norm`` and one ``aminmax``
        pass per tensor for min and max together."""
        flat = self.flat(tensors) if self.small else None
        large = [tensors[i] for i in self.large]
        extremes = [torch.aminmax(t) for t in large] if {"min", "max"} & set(reductions) else []
        out = []
        for reduce in reductions:
            parts = []
            if flat is not None and reduce == "l2":
                parts.append(torch.segment_reduce(flat.square(), "sum", lengths=self.lengths).sqrt())
            elif flat is not None:
                parts.append(torch.segment_reduce(flat, reduce, lengths=self.lengths))
            if large:
                per_large = {
                    "l2": lambda: torch._foreach_norm(large),
                    "sum": lambda: [t.sum() for t in large],
                    "min": lambda: [lo for lo, _ in extremes],
                    "max": lambda: [hi for _, hi in extremes],
                }[reduce]()
                parts.append(_stack_on(self.device, per_large))
            out.append(torch.cat(parts)[self.order])
        return out


@functools.lru_cache(maxsize=16)
def _layout_of(shapes: tuple[tuple[int, torch.device], ...]) -> _Layout:
    return _Layout(shapes)


def _layout(tensors: Sequence[torch.Tensor]) -> _Layout:
    """The (cached) layout for tensors of these sizes: parameters and their grads keep theirs all run."""
    return _layout_of(tuple((t.numel(), t.device) for t in tensors))


@torch.no_grad()
def gradient_stats(grads: Sequence[torch.Tensor]) -> torch.Tensor:
    """``[global L2 norm, largest |g|, per-tensor L2 norms...]`` as one float32 vector on the first grad's device.

    Only the norms are per tensor; the largest element is one number, so the small tensors give it with one
    ``abs().max()`` of their flat copy rather than a per-tensor min and max (each op costs ~10 us in a busy
    training loop, which on a 3 ms step is what a log step's budget allows for all of them).
    """
    layout = _layout(grads)
    flat = layout.flat(grads) if layout.small else None
    large = [grads[i] for i in layout.large]
    norms, peaks = [], []
    if flat is not None:
        norms.append(torch.segment_reduce(flat.square(), "sum", lengths=layout.lengths).sqrt())
        peaks.append(flat.abs().max().reshape(1))
    if large:
        norms.append(_stack_on(layout.device, torch._foreach_norm(large)))
        # max |g| from min and max: the inf-norm variant of _foreach_norm takes a slow path on CPU (22 ms
        # against 1 ms for an 8M-parameter model); aminmax is the fastest full pass after the L2 norm.
        peaks.append(
            _stack_on(layout.device, [x for g in large for x in torch.aminmax(g)]).abs().max().reshape(1)
        )
    per_tensor = torch.cat(norms)[layout.order] if len(norms) > 1 else norms[0]  # one part: in order
    largest = torch.cat(peaks).max() if len(peaks) > 1 else peaks[0][0]
    return torch.cat([torch.linalg.vector_norm(per_tensor).reshape(1), largest.reshape(1), per_tensor])


@torch.no_grad()
def weight_moments(params: Sequence[torch.Tensor]) -> torch.Tensor:
    """Per tensor ``[sum, min, max, l2]`` (float32, shape ``(n, 4)``); mean and std follow on the host.

    L2 + sum + min/max and std derived from moments is ~7x cheaper on CPU than ``std_mean`` per tensor, and
    agrees with it to ~1e-6 (reference/producer.md §4).
    """
    return torch.stack(_layout(params).per_tensor(params, ["sum", "min", "max", "l2"]), dim=1)


def layer_rows(
    moments: list[list[float]], numels: Sequence[int]
) -> list[tuple[float, float, float, float, float]]:
    """``(mean, std, min, max, l2_norm)`` per tensor from :func:`weight_moments` values already on the host."""
    rows = []
    for (total, lo, hi, l2), n in zip(moments, numels, strict=True):
        mean = total / n
        var = (l2 * l2 / n - mean * mean) * n / (n - 1) if n > 1 else 0.0
        rows.append((mean, math.sqrt(max(var, 0.0)), lo, hi, l2))
    return rows


class UpdateSentinels:
    """Did the optimizer move each parameter? Compares a fixed sample of each tensor before and after a step.

    64 evenly spaced elements per tensor catch any real update (an optimizer moves every element with a
    non-zero gradient) for ~0.2 ms per 10 M params, instead of a full copy of the model.
    """

    def __init__(self, params: Sequence[torch.Tensor]) -> None:
        self._params = list(params)
        self._layout = _layout(self._params)
        index = [
            torch.linspace(0, p.numel() - 1, SENTINELS_PER_TENSOR, device=self._layout.device).long()
            for p in self._params
        ]
        # The small tensors' samples are one gather from the layout's flat copy: offsets into it.
        offsets = torch.cumsum(self._layout.lengths, 0) - self._layout.lengths
        self._small_index = torch.cat(
            [index[i] + offsets[k] for k, i in enumerate(self._layout.small)]
            or [torch.zeros(0, dtype=torch.long, device=self._layout.device)]
        )
        self._large_index = [index[i].to(self._params[i].device) for i in self._layout.large]
        self._before: torch.Tensor | None = None

    @torch.no_grad()
    def sample(self) -> torch.Tensor:
        """The sampled elements now, ``(tensors, SENTINELS_PER_TENSOR)`` float32 on the first tensor's device."""
        layout, parts = self._layout, []
        if layout.small:
            parts.append(layout.flat(self._params)[self._small_index].reshape(-1, SENTINELS_PER_TENSOR))
        if layout.large:
            large = [self._params[i].reshape(-1) for i in layout.large]
            samples = [p[i] for p, i in zip(large, self._large_index, strict=True)]
            parts.append(_stack_on(layout.device, samples))
        return torch.cat(parts)[layout.order]

    @staticmethod
    def rms_change(before: torch.Tensor, after: torch.Tensor) -> torch.Tensor:
        """Per tensor RMS change between two samples (0 = unchanged)."""
        return (after - before).square().mean(dim=1).sqrt()

    def capture(self) -> None:
        self._before = self.sample()

    def compare(self) -> torch.Tensor | None:
        """Per tensor RMS change since :meth:`capture` (0 = unchanged), or None without a capture."""
        if self._before is None:
            return None
        before, self._before = self._before, None
        return self.rms_change(before, self.sample())
