"""Seed 001's blob diagnostics at d=1024, hidden=512: fast path vs the naive computation (docs/performance.md).

    python -m benchmarks.bench_diagnostics

The floor is the naive computation on the same sampled pairs: plain ``DBSCAN(eps=0.1, min_samples=50)``
and the full silhouette, which is what seed 001's figure of 50-100 ms was claimed for.
"""

from __future__ import annotations

import time

import numpy as np
import torch

from termmon.diagnostics import compute_lightweight_blob_metrics
from termmon.diagnostics.blobs import SEED


def _nets() -> dict[str, torch.nn.Module]:
    torch.manual_seed(0)
    fresh = torch.nn.Sequential(torch.nn.Linear(1024, 512), torch.nn.ReLU(), torch.nn.Linear(512, 1024))
    blobs = torch.nn.Sequential(torch.nn.Linear(1024, 512), torch.nn.ReLU(), torch.nn.Linear(512, 1024))
    centres = torch.tensor([[-0.5, -0.4], [0.0, 0.0], [0.45, 0.5]])
    pts = centres[torch.randint(0, 3, (512, 1024))] + 0.04 * torch.randn(512, 1024, 2)
    with torch.no_grad():
        blobs[0].weight.copy_(pts[..., 0])
        blobs[2].weight.copy_(pts[..., 1].t())
    return {"fresh init": fresh, "3 blobs": blobs}


def _naive_ms(model: torch.nn.Module, n: int) -> float:
    from sklearn.cluster import DBSCAN
    from sklearn.metrics import silhouette_score

    t0 = time.perf_counter()
    enc, dec = model[0].weight.detach().reshape(-1), model[2].weight.detach().t().reshape(-1)
    idx = torch.from_numpy(np.random.default_rng(SEED).choice(enc.numel(), size=n, replace=False))
    xy = torch.stack([enc[idx], dec[idx]], dim=1).double().numpy()
    labels = DBSCAN(eps=0.1, min_samples=50).fit(xy).labels_
    keep = labels >= 0
    if len(set(labels[keep].tolist())) >= 2:
        silhouette_score(xy[keep], labels[keep])
    return (time.perf_counter() - t0) * 1e3


def main() -> None:
    torch.set_num_threads(1)
    print("| weights | n pairs | naive DBSCAN + full silhouette | termmon fast path | clusters |")
    print("|---|---|---|---|---|")
    for name, model in _nets().items():
        for n in (2000, 5000, 10000):
            compute_lightweight_blob_metrics(model, n_samples=n)
            fast = min(
                compute_lightweight_blob_metrics(model, n_samples=n)["computation_time_ms"] for _ in range(3)
            )
            result = compute_lightweight_blob_metrics(model, n_samples=n)
            naive = _naive_ms(model, n)
            print(f"| {name} | {n:,} | {naive:.0f} ms | {fast:.1f} ms | {result['n_clusters_dbscan']} |")


if __name__ == "__main__":
    main()
