"""Seed 001's blob diagnostics: its keys, and the fast path agreeing with the exact computation."""

from __future__ import annotations

import pytest
import torch

from termmon.diagnostics import compute_lightweight_blob_metrics, full_blob_analysis
from termmon.diagnostics.blobs import RESULT_KEYS

pytestmark = pytest.mark.torch
pytest.importorskip("sklearn")  # the diagnostics extra: DBSCAN and the silhouette score
torch.set_num_threads(1)

CENTRES = torch.tensor([[-0.5, -0.4], [0.0, 0.0], [0.45, 0.5]])


def blob_net(d: int, hidden: int, spread: float, seed: int = 0) -> torch.nn.Module:
    """A two-layer net whose (W1[j, i], W2[i, j]) pairs sit in three blobs, as trained denoisers end up."""
    g = torch.Generator().manual_seed(seed)
    which = torch.randint(0, len(CENTRES), (hidden, d), generator=g)
    pairs = CENTRES[which] + spread * torch.randn(hidden, d, 2, generator=g)
    enc, dec = torch.nn.Linear(d, hidden), torch.nn.Linear(hidden, d)
    with torch.no_grad():
        enc.weight.copy_(pairs[..., 0])
        dec.weight.copy_(pairs[..., 1].t())
    return torch.nn.Sequential(enc, torch.nn.ReLU(), dec)


def test_the_result_has_exactly_the_seed_keys() -> None:
    metrics = compute_lightweight_blob_metrics(blob_net(64, 32, 0.03), n_samples=1000)
    assert tuple(metrics) == RESULT_KEYS
    assert metrics["n_pairs_analyzed"] == 1000 and metrics["computation_time_ms"] > 0
    assert all(len(c) == 2 for c in metrics["cluster_centers"]) and len(metrics["cluster_centers"]) <= 3


@pytest.mark.parametrize("spread", [0.02, 0.04])
def test_the_fast_path_agrees_with_plain_dbscan_and_the_full_silhouette(spread: float) -> None:
    model = blob_net(100, 50, spread)  # 5 000 pairs: the fast path subsamples, the exact one does not
    fast = compute_lightweight_blob_metrics(model, n_samples=5000)
    exact = full_blob_analysis(model)
    assert fast["n_pairs_analyzed"] == exact["n_pairs_analyzed"] == 5000
    assert fast["n_clusters_dbscan"] == exact["n_clusters_dbscan"] == 3
    assert abs(fast["silhouette_score"] - exact["silhouette_score"]) < 0.05
    assert abs(fast["n_noise_points"] - exact["n_noise_points"]) <= 0.01 * 5000
    for a, b in zip(sorted(fast["cluster_centers"]), sorted(exact["cluster_centers"]), strict=True):
        assert a == pytest.approx(b, abs=0.01)
    for key in ("weight_correlation", "encoder_std", "decoder_std", "encoder_mean", "decoder_mean"):
        assert fast[key] == pytest.approx(exact[key])


def test_fresh_weights_are_one_cluster_with_no_silhouette_like_plain_dbscan() -> None:
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(100, 50), torch.nn.ReLU(), torch.nn.Linear(50, 100))
    fast = compute_lightweight_blob_metrics(model, n_samples=5000)
    exact = full_blob_analysis(model)
    assert fast["n_clusters_dbscan"] == exact["n_clusters_dbscan"] == 1
    assert fast["silhouette_score"] is None and exact["silhouette_score"] is None
    assert fast["n_noise_points"] == exact["n_noise_points"] == 0
    assert fast["encoder_std"] == pytest.approx(float(model[0].weight.detach().std()))


def test_a_cloud_narrower_than_eps_is_one_cluster_without_running_dbscan() -> None:
    model = blob_net(64, 32, 0.01)
    with torch.no_grad():
        model[0].weight.mul_(0.05)
        model[2].weight.mul_(0.05)
    from sklearn.cluster import DBSCAN

    pairs = torch.stack(
        [model[0].weight.detach().reshape(-1), model[2].weight.detach().t().reshape(-1)], dim=1
    )
    plain = DBSCAN(eps=0.1, min_samples=50).fit(pairs.double().numpy()).labels_
    fast = compute_lightweight_blob_metrics(model)
    assert set(plain.tolist()) == {0}
    assert (fast["n_clusters_dbscan"], fast["n_noise_points"], fast["silhouette_score"]) == (1, 0, None)


def test_too_few_points_for_a_cluster_are_all_noise() -> None:
    metrics = compute_lightweight_blob_metrics(blob_net(8, 4, 0.01), n_samples=5000)
    assert metrics["n_pairs_analyzed"] == 32
    assert (
        metrics["n_clusters_dbscan"] == 0
        and metrics["n_noise_points"] == 32
        and metrics["silhouette_score"] is None
    )


def test_named_weights_of_any_model_can_be_analysed() -> None:
    class Odd(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.up = torch.nn.Parameter(blob_net(60, 30, 0.02)[0].weight.detach().clone())
            self.gate = torch.nn.Linear(5, 5)
            self.down = torch.nn.Parameter(blob_net(60, 30, 0.02)[2].weight.detach().clone())

    metrics = compute_lightweight_blob_metrics(Odd(), encoder="up", decoder="down")
    assert metrics["n_clusters_dbscan"] == 3 and metrics["n_pairs_analyzed"] == 1800
    with pytest.raises(ValueError, match="transposed"):
        compute_lightweight_blob_metrics(Odd(), encoder="up", decoder="gate.weight")
