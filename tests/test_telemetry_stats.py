"""The logger's fused statistics agree with the obvious computation they replace."""

from __future__ import annotations

import math
from collections.abc import Sequence

import pytest
import torch
from hypothesis import example, given, settings
from hypothesis import strategies as st

from termmon.telemetry import stats


def test_gradient_stats_match_a_direct_computation() -> None:
    gen = torch.Generator().manual_seed(0)
    grads = [
        torch.randn(64, 32, generator=gen) * 3,
        torch.randn(32, generator=gen),
        -torch.rand(5, 5, generator=gen) * 9,
    ]
    global_norm, largest, per_tensor = _summary(grads)
    norms = torch.stack([g.norm() for g in grads])
    assert global_norm == pytest.approx(float(norms.norm()), rel=1e-6)
    assert largest == max(float(g.abs().max()) for g in grads)  # largest |g|, negative values included
    assert torch.allclose(torch.tensor(per_tensor), norms)


def _summary(grads: Sequence[torch.Tensor]) -> tuple[float, float, list[float]]:
    """What the logger writes: the device vector reduced on the host."""
    return stats.gradient_summary(stats.gradient_stats(grads).tolist(), len(grads))


def test_a_nan_gradient_shows_in_the_largest_value_wherever_it_is() -> None:
    for where in range(3):
        grads = [torch.ones(4), torch.full((3,), -2.0), torch.zeros(2)]
        grads[where][0] = math.nan
        global_norm, largest, _ = _summary(grads)
        assert math.isnan(largest) and math.isnan(global_norm)


#: Sizes on both sides of the flat-copy threshold, the large ones between small ones so the order shows.
FEW_SIZES = (3, stats.SMALL_TENSOR + 5, 1, 256, stats.SMALL_TENSOR, stats.SMALL_TENSOR + 1, 7)
#: The same with enough small tensors after them that the small ones share one flat copy.
MANY_SIZES = FEW_SIZES + (5,) * stats.BATCH_MIN_TENSORS
SIZES = pytest.mark.parametrize("sizes", [FEW_SIZES, MANY_SIZES], ids=["few", "many"])


def _tensors(sizes: Sequence[int], seed: int = 0) -> list[torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    return [torch.randn(n, generator=gen) * (k + 1) + k for k, n in enumerate(sizes)]


@settings(max_examples=25, deadline=None)
@given(
    st.lists(
        st.sampled_from((1, 2, 17, 300, stats.SMALL_TENSOR, stats.SMALL_TENSOR + 1)), min_size=1, max_size=40
    ),
    st.integers(0, 2**16),
)
@example([17] * stats.BATCH_MIN_TENSORS, 0)  # small tensors only: no large one to reduce on its own
def test_batched_statistics_match_per_tensor_reductions(sizes: list[int], seed: int) -> None:
    for in_turn in (stats.IN_TURN_DEVICES, frozenset()):  # this device's way, and the one-launch way
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(stats, "IN_TURN_DEVICES", in_turn)
            _check_batched_statistics(_tensors(sizes, seed))


def _check_batched_statistics(params: list[torch.Tensor]) -> None:
    moments = stats.weight_moments(params)
    direct = torch.stack([torch.stack([p.sum(), p.min(), p.max(), p.norm()]) for p in params])
    # float32 sums in another order differ by rounding that grows with the summed magnitudes, not with
    # the (possibly cancelled) result: compare with a float64 reference within that rounding.
    exact = torch.stack(
        [torch.stack([q.sum(), q.min(), q.max(), q.norm()]) for q in (p.double() for p in params)]
    )
    rounding = torch.stack([p.double().abs().sum() for p in params]).unsqueeze(1) * 1e-6
    assert ((moments.double() - exact).abs() <= rounding + 1e-5 * exact.abs()).all()
    _, largest, per_tensor = _summary(params)
    assert largest == max(float(p.abs().max()) for p in params)
    assert torch.allclose(torch.tensor(per_tensor), direct[:, 3])


@SIZES
def test_gradient_max_is_found_in_a_large_or_a_small_tensor(sizes: tuple[int, ...]) -> None:
    for where in (1, 2):  # sizes[1] is above the threshold, sizes[2] below
        grads = _tensors(sizes)
        grads[where].view(-1)[0] = -1e6
        assert _summary(grads)[1] == 1e6


def _sampled(p: torch.Tensor, viewed: bool) -> torch.Tensor:
    """What a sample holds of ``p``: through views, all of a tensor of fewer than 64 elements or every
    ``(n - 1) // 63``-th from the first; otherwise 64 ``linspace`` positions."""
    n, count = p.numel(), stats.SENTINELS_PER_TENSOR
    if not viewed:
        return p[torch.linspace(0, n - 1, count).long()]
    return p if n < count else p[torch.arange(count) * ((n - 1) // (count - 1))]


@SIZES
def test_update_sentinels_sample_each_tensor_evenly_and_see_one_tensor_move(sizes: tuple[int, ...]) -> None:
    params = _tensors(sizes)
    sentinels = stats.UpdateSentinels(params)
    viewed = sizes == FEW_SIZES  # few contiguous tensors: sampled through views
    assert (sentinels.segments is not None) == viewed
    parts = [_sampled(p, viewed) for p in params]
    assert torch.equal(sentinels.sample(), torch.cat(parts) if viewed else torch.stack(parts))
    sentinels.capture()
    with torch.no_grad():
        params[3] += 0.5  # a small tensor
        params[5] -= 2.0  # a large one
    moved = sentinels.compare()
    assert moved is not None
    if sentinels.segments is not None:
        rms = stats.rms_of_segments(moved.tolist(), sentinels.segments)
    else:
        rms = moved.tolist()
    assert [round(v, 4) for v in rms] == [0, 0, 0, 0.5, 0, 2.0] + [0] * (len(sizes) - 6)


def test_statistics_of_parameters_build_no_graph_and_leave_grad_mode_as_it_was() -> None:
    params = [torch.nn.Parameter(t) for t in _tensors(FEW_SIZES)]
    sentinels = stats.UpdateSentinels(params)
    for result in (stats.weight_moments(params), stats.gradient_stats(params), sentinels.sample()):
        assert not result.requires_grad and result.grad_fn is None
    assert torch.is_grad_enabled()
    with torch.no_grad():
        stats.weight_moments(params)
        assert not torch.is_grad_enabled()
    with pytest.raises(RuntimeError):
        stats.weight_moments([torch.nn.Parameter(torch.ones(3)), torch.ones(2, device="meta")])
    assert torch.is_grad_enabled()  # restored when a statistic raises


def test_one_models_statistics_agree_with_the_general_ones_step_after_step() -> None:
    params = _tensors(FEW_SIZES)  # few CPU float32 tensors: each value written into a reused vector
    model = stats.ParamStats(params)
    for scale in (1.0, -3.0):  # the vector is reused: the second step's values are the second's
        grads = [p * scale for p in params]
        assert torch.equal(model.gradients(grads), stats.gradient_stats(grads))
        assert torch.equal(model.moments(), stats.weight_moments(params))
    bf16 = [p.to(torch.bfloat16) for p in params]  # another dtype: reduced the general way
    assert torch.equal(model.gradients(bf16), stats.gradient_stats(bf16))
    fewer = params[1:]  # a tensor without a gradient this step
    assert torch.equal(model.gradients(fewer), stats.gradient_stats(fewer))


def test_sampled_views_follow_a_parameter_given_new_storage() -> None:
    param = torch.nn.Parameter(torch.randn(1000))
    sentinels = stats.UpdateSentinels([param])
    assert sentinels.segments == (stats.SENTINELS_PER_TENSOR,)
    before = sentinels.sample()
    param.data = param.data + 1.0  # new storage, as some loaders and ``model.to`` give
    moved = sentinels.change(before, sentinels.sample())
    assert stats.rms_of_segments(moved.tolist(), sentinels.segments) == [pytest.approx(1.0)]
