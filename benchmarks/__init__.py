"""Benchmarks: each measures termmon against a floor measured in the same run."""
