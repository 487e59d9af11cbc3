"""Blob diagnostics: do the (encoder weight, decoder weight) pairs of a two-layer net form clusters?

For encoder ``W1`` (hidden x d) and decoder ``W2`` (d x hidden) the pair of input ``i`` and hidden unit
``j`` is ``(W1[j, i], W2[i, j])``. The seed's defaults (5 000 pairs, ``DBSCAN(eps=0.1, min_samples=50)``,
full silhouette) cost 0.8-1.3 s here against a promised 50-100 ms, so the default path keeps what the
numbers mean and removes work that does not change them (reference/producer.md §7.4):

* span guard: when the pairs' bounding-box diagonal is at most ``eps`` every point is every other's
  neighbour, so DBSCAN's answer is known exactly (one cluster, or all noise below ``min_samples``);
* density by weight: DBSCAN runs on a fixed-seed subsample whose points carry ``sample_weight = n / m``,
  so "``min_samples`` neighbours among the n pairs" keeps its meaning; every pair then joins the cluster of
  its nearest core point within ``eps`` or is noise, exactly DBSCAN's border rule;
* silhouette on non-noise points with ``sample_size=1000`` and a fixed ``random_state``.

Encoder/decoder means, standard deviations and their correlation are computed over all pairs: that is
exact and cheaper than sampling them.
"""

from __future__ import annotations

import itertools
import math
import time
from typing import Any

import numpy as np
import torch

#: Points DBSCAN sees on the fast path; the rest are assigned to the clusters it finds.
DBSCAN_SUBSAMPLE = 2000
#: Points the silhouette is estimated from on the fast path.
SILHOUETTE_SAMPLE = 1000
SEED = 0
#: Seed 001's result keys, in its order.
RESULT_KEYS = (
    "weight_correlation",
    "encoder_std",
    "decoder_std",
    "encoder_mean",
    "decoder_mean",
    "n_clusters_dbscan",
    "silhouette_score",
    "cluster_centers",
    "n_noise_points",
    "computation_time_ms",
    "n_pairs_analyzed",
)

WeightRef = str | torch.Tensor | None


def weight_pairs(
    model: torch.nn.Module | None, encoder: WeightRef = None, decoder: WeightRef = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(W1, W2)`` with ``W1`` hidden x d and ``W2`` d x hidden.

    ``encoder``/``decoder`` name parameters of ``model`` (``"fc1.weight"``) or are tensors; by default
    the first two 2-D weights whose shapes are transposes of each other.
    """
    named = dict(model.named_parameters()) if model is not None else {}

    def resolve(ref: WeightRef) -> torch.Tensor | None:
        if isinstance(ref, str):
            if ref not in named:
                raise ValueError(f"no parameter named {ref!r} in the model")
            return named[ref]
        return ref

    w1, w2 = resolve(encoder), resolve(decoder)
    if w1 is None or w2 is None:
        mats = [p for p in named.values() if p.ndim == 2]
        pair = next(
            ((a, b) for a, b in itertools.pairwise(mats) if tuple(a.shape) == tuple(b.shape)[::-1]), None
        )
        if pair is None:
            raise ValueError("no encoder/decoder weight pair (hidden x d, then d x hidden) found; name them")
        w1 = pair[0] if w1 is None else w1
        w2 = pair[1] if w2 is None else w2
    if w1.ndim != 2 or tuple(w1.shape) != tuple(w2.shape)[::-1]:
        raise ValueError(f"encoder {tuple(w1.shape)} and decoder {tuple(w2.shape)} are not transposed shapes")
    return w1.detach(), w2.detach()


def compute_lightweight_blob_metrics(
    model: torch.nn.Module | None,
    n_samples: int = 5000,
    compute_full_stats: bool = False,
    eps: float = 0.1,
    min_samples: int = 50,
    *,
    encoder: WeightRef = None,
    decoder: WeightRef = None,
) -> dict[str, Any]:
    """Seed 001's per-epoch metrics on ``n_samples`` pairs (all pairs with ``compute_full_stats``, which
    also runs plain DBSCAN and the full silhouette: the exact, slow computation)."""
    start = time.perf_counter()
    w1, w2 = weight_pairs(model, encoder, decoder)
    enc = w1.reshape(-1)
    dec = w2.t().reshape(-1)  # element k of both is the pair (W1[j, i], W2[i, j]), k = j * d + i
    out = _moments(enc, dec)
    total = enc.numel()
    if compute_full_stats or n_samples >= total:
        points = torch.stack([enc, dec], dim=1)
    else:
        idx = np.random.default_rng(SEED).choice(total, size=n_samples, replace=False)
        index = torch.from_numpy(idx).to(enc.device)
        points = torch.stack([enc[index], dec[index]], dim=1)
    xy = points.to("cpu", torch.float64).numpy()
    out.update(cluster_pairs(xy, eps, min_samples, exact=compute_full_stats))
    out["computation_time_ms"] = (time.perf_counter() - start) * 1000.0
    out["n_pairs_analyzed"] = len(xy)
    return out


def full_blob_analysis(
    model: torch.nn.Module | None,
    eps: float = 0.1,
    min_samples: int = 50,
    *,
    encoder: WeightRef = None,
    decoder: WeightRef = None,
) -> dict[str, Any]:
    """Every pair, plain DBSCAN, full silhouette: seed 001's "no sampling, very slow" analysis."""
    return compute_lightweight_blob_metrics(
        model, compute_full_stats=True, eps=eps, min_samples=min_samples, encoder=encoder, decoder=decoder
    )


def _moments(enc: torch.Tensor, dec: torch.Tensor) -> dict[str, Any]:
    both = torch.stack([enc, dec]).double()
    e_mean, d_mean, e_std, d_std, corr = torch.cat(
        [both.mean(dim=1), both.std(dim=1), torch.corrcoef(both)[0, 1].reshape(1)]
    ).tolist()
    return {
        "weight_correlation": corr if math.isfinite(corr) else None,  # None: a matrix with no spread
        "encoder_std": e_std,
        "decoder_std": d_std,
        "encoder_mean": e_mean,
        "decoder_mean": d_mean,
    }


def cluster_pairs(xy: np.ndarray, eps: float, min_samples: int, exact: bool = False) -> dict[str, Any]:
    """DBSCAN labels, silhouette (noise excluded) and the top three cluster centres of 2-D points."""
    labels = _dbscan_labels(xy, eps, min_samples, exact)
    clustered = labels >= 0
    ids, sizes = np.unique(labels[clustered], return_counts=True)
    order = np.argsort(-sizes, kind="stable")[:3]
    centers = [xy[labels == ids[i]].mean(axis=0).tolist() for i in order]
    return {
        "n_clusters_dbscan": len(ids),
        "silhouette_score": _silhouette(xy[clustered], labels[clustered], len(ids), exact),
        "cluster_centers": centers,
        "n_noise_points": int((~clustered).sum()),
    }


def _dbscan_labels(xy: np.ndarray, eps: float, min_samples: int, exact: bool) -> np.ndarray:
    from sklearn.cluster import DBSCAN

    n = len(xy)
    if n == 0:
        return np.empty(0, dtype=np.int64)
    span = float(np.hypot(*(xy.max(axis=0) - xy.min(axis=0))))
    if span <= eps:  # all points mutually within eps: DBSCAN's answer without running it
        return np.full(n, 0 if n >= min_samples else -1, dtype=np.int64)
    if exact or n <= DBSCAN_SUBSAMPLE:
        return np.asarray(DBSCAN(eps=eps, min_samples=min_samples).fit(xy).labels_, dtype=np.int64)
    sub = np.random.default_rng(SEED).choice(n, size=DBSCAN_SUBSAMPLE, replace=False)
    weight = np.full(DBSCAN_SUBSAMPLE, n / DBSCAN_SUBSAMPLE)
    fit = DBSCAN(eps=eps, min_samples=min_samples).fit(xy[sub], sample_weight=weight)
    core = sub[fit.core_sample_indices_]
    if len(core) == 0:
        return np.full(n, -1, dtype=np.int64)
    return _nearest_core_labels(xy, xy[core], fit.labels_[fit.core_sample_indices_], eps)


def _nearest_core_labels(
    xy: np.ndarray, core_xy: np.ndarray, core_labels: np.ndarray, eps: float
) -> np.ndarray:
    from sklearn.neighbors import NearestNeighbors

    dist, nearest = NearestNeighbors(n_neighbors=1).fit(core_xy).kneighbors(xy)
    labels: np.ndarray = core_labels[nearest[:, 0]].astype(np.int64)
    labels[dist[:, 0] > eps] = -1
    return labels


def _silhouette(xy: np.ndarray, labels: np.ndarray, k: int, exact: bool) -> float | None:
    """None unless 2 <= k <= n - 1 (sklearn's domain); sampled on the fast path."""
    from sklearn.metrics import silhouette_score

    n = len(xy)
    if not 2 <= k <= n - 1:
        return None
    size = None if exact or n <= SILHOUETTE_SAMPLE else SILHOUETTE_SAMPLE
    try:
        return float(silhouette_score(xy, labels, sample_size=size, random_state=SEED))
    except ValueError:  # the sample drew a single cluster: score all points rather than report nothing
        return float(silhouette_score(xy, labels))
