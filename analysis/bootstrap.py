"""Bootstrap resamples of RUNS, stratified by model size, as per-row counts.

A resample keeps every size and, within each size, draws as many rows (runs, or stages of runs)
as the size has, with replacement (the stratified bootstrap of Efron & Tibshirani 1993, §8.6).
Resamples are (B, n) integer counts over the rows, so the frontier and the fit of every resample
are computed for all resamples at once (analysis.frontier.front_mask, analysis.laws).
"""
from __future__ import annotations

import numpy as np

# The size a row is resampled within: x itself, except for x that differ between runs of one model
# (training FLOPs, time), which are stratified by the model's parameter count.
STRATUM = {"train_flops": "n_params", "wall_time_s": "n_params", "cpu_time_s": "n_params"}


def stratum_column(x: str) -> str:
    """The column whose values are the strata (model sizes) when the fit's x is `x`."""
    return STRATUM.get(x, x)


def stratified_counts(strata, n_boot: int, rng: np.random.Generator) -> np.ndarray:
    """strata (n,) labels (e.g. n_params per row) -> counts (n_boot, n): within each stratum of m
    rows, m draws with replacement among its rows."""
    strata = np.asarray(strata)
    counts = np.zeros((n_boot, len(strata)), dtype=np.int64)
    _, inverse = np.unique(strata, return_inverse=True)
    for label in range(inverse.max() + 1 if len(strata) else 0):
        rows = np.flatnonzero(inverse == label)
        counts[:, rows] = rng.multinomial(len(rows), np.full(len(rows), 1.0 / len(rows)), size=n_boot)
    return counts


def point_counts(n: int, n_boot: int, rng: np.random.Generator) -> np.ndarray:
    """Plain (pairs) bootstrap of n points: counts (n_boot, n) of n draws with replacement."""
    if n == 0:
        return np.zeros((n_boot, 0), dtype=np.int64)
    return rng.multinomial(n, np.full(n, 1.0 / n), size=n_boot)


def runs_per_stratum(strata) -> np.ndarray:
    """How many rows each distinct stratum has (sorted by stratum)."""
    return np.unique(np.asarray(strata), return_counts=True)[1]
