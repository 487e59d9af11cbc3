"""Offline commands that explain a run afterwards: report, compare-weights, profile-batch."""
