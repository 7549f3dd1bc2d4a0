"""Bootstrap resamples of RUNS, stratified by model size, as per-row counts.

A resample keeps every size and, within each size, draws as many runs as the size has, with
replacement; a run's rows at that size (e.g. an MLP's stages) come along together (the stratified bootstrap of Efron & Tibshirani 1993, §8.6).
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


def _cells(strata, units) -> np.ndarray:
    """(n,) code of each row's resampling unit: its (stratum, unit) pair, or the row itself."""
    if units is None:
        return np.arange(len(strata))
    pairs = [f"{s!r}\x00{u!r}" for s, u in zip(strata, units)]
    return np.unique(pairs, return_inverse=True)[1].ravel()


def stratified_counts(strata, n_boot: int, rng: np.random.Generator, units=None) -> np.ndarray:
    """strata (n,) labels (e.g. n_params per row) -> counts (n_boot, n): within each stratum of m
    units, m draws with replacement among its units. units (n,), e.g. run_id: the rows of one run
    at one size (an MLP's stages) are drawn together, as one unit; default: every row is a unit."""
    strata = np.asarray(strata)
    cells = _cells(strata, units)
    counts = np.zeros((n_boot, len(strata)), dtype=np.int64)
    _, inverse = np.unique(strata, return_inverse=True)
    for label in range(inverse.max() + 1 if len(strata) else 0):
        rows = np.flatnonzero(inverse == label)
        members, cell_of_row = np.unique(cells[rows], return_inverse=True)
        m = len(members)
        drawn = rng.multinomial(m, np.full(m, 1.0 / m), size=n_boot)  # (B, m) per unit
        counts[:, rows] = drawn[:, cell_of_row.ravel()]
    return counts


def point_counts(n: int, n_boot: int, rng: np.random.Generator) -> np.ndarray:
    """Plain (pairs) bootstrap of n points: counts (n_boot, n) of n draws with replacement."""
    if n == 0:
        return np.zeros((n_boot, 0), dtype=np.int64)
    return rng.multinomial(n, np.full(n, 1.0 / n), size=n_boot)


def runs_per_stratum(strata, units=None) -> np.ndarray:
    """How many units (rows, or distinct `units` such as runs) each stratum has (sorted)."""
    strata = np.asarray(strata)
    if len(strata) == 0:
        return np.zeros(0, dtype=np.int64)
    cells = _cells(strata, units)
    first = np.unique(cells, return_index=True)[1]
    return np.unique(strata[first], return_counts=True)[1]
