"""Seed 001's blob-formation diagnostics for two-layer encoder/decoder networks."""

from termmon.diagnostics.blobs import compute_lightweight_blob_metrics, full_blob_analysis, weight_pairs

__all__ = ["compute_lightweight_blob_metrics", "full_blob_analysis", "weight_pairs"]
