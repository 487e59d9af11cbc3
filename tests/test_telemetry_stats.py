"""The logger's fused statistics agree with the obvious computation they replace."""

from __future__ import annotations

import torch

from termmon.telemetry import stats


def test_gradient_stats_match_a_direct_computation() -> None:
    gen = torch.Generator().manual_seed(0)
    grads = [
        torch.randn(64, 32, generator=gen) * 3,
        torch.randn(32, generator=gen),
        -torch.rand(5, 5, generator=gen) * 9,
    ]
    packed = stats.gradient_stats(grads)
    norms = torch.stack([g.norm() for g in grads])
    assert torch.allclose(packed[0], norms.norm())
    assert packed[1] == max(float(g.abs().max()) for g in grads)  # largest |g|, negative values included
    assert torch.allclose(packed[2:], norms)
