"""The interval search of every spline path: j + 1 = the number of knots <= x, per input row.

A per-row bucket table gives a lower bound on j + 1 that a few forward comparisons make exact; a
grid whose table would need too many steps or entries falls back to torch.searchsorted. The count
is exact (integers), so every evaluation strategy that uses it agrees on the interval, and x ==
t_j lands in [t_j, t_{j+1}) as in the half-open Cox-de Boor indicator.

One search, two memory layouts of x: input-minor (B, F), the fast layer's, and feature-major
(F, B), the stacked layer's; the tables are stored in the matching orientation.
"""
from __future__ import annotations

from typing import NamedTuple, Optional

import torch
import torch.nn.functional as F

# Tables are refined (x4) until TARGET_SEARCH_STEPS forward steps make j exact; a table needing
# more than MAX_SEARCH_STEPS, or with more than MAX_TABLE_ENTRIES entries, is not used, and without
# one j comes from torch.searchsorted.
MAX_SEARCH_STEPS = 4
TARGET_SEARCH_STEPS = 2
MAX_TABLE_ENTRIES = 1 << 22


class IntervalSearch(NamedTuple):
    """Tables of knots (F, K) for `locate`. Shapes for input-minor x (B, F); feature-major ones
    are transposed (the row axis first)."""
    lo: torch.Tensor  # (1, F): t_0
    inv_bucket: Optional[torch.Tensor]  # (1, F): buckets per unit length
    table: Optional[torch.Tensor]  # (NB+1, F) long: a lower bound on j + 1 per bucket
    knots: torch.Tensor  # (K+1, F): t_0 .. t_{K-1}, NaN (x >= NaN is false, also for inf)
    grid: torch.Tensor  # (F, K), for torch.searchsorted when there is no table
    n_steps: int  # forward steps that make the bound exact
    feature_major: bool


def interval_search(grid: torch.Tensor, feature_major: bool = False) -> IntervalSearch:
    """Tables for knots grid (F, K), increasing per row, to search x laid out (B, F), or (F, B)
    with feature_major."""
    n_rows, n_knots = grid.shape
    grid = grid.contiguous()
    lo, span = grid[:, 0], grid[:, -1] - grid[:, 0]
    knots = torch.cat([grid.T, torch.full_like(lo[None, :], float("nan"))])  # (K+1, F)
    best_table, best_steps, inv_bucket = None, 0, None
    n_buckets = 4 * (n_knots - 1)
    while (n_buckets + 1) * n_rows <= MAX_TABLE_ENTRIES and bool((span > 0).all()):
        # x in bucket b = floor((x - t_0)/width) lies in [start_{b-1}, start_{b+2}) even if
        # round-off moved it by one bucket; table[b] = #knots <= start_{b-1} is then a lower bound
        # on j + 1, and #knots <= start_{b+2} an upper bound.
        fractions = torch.arange(n_buckets + 1, dtype=grid.dtype, device=grid.device) / n_buckets
        starts = lo[:, None] + span[:, None] * fractions  # (F, NB+1)
        counts = torch.searchsorted(grid, starts.contiguous(), right=True)
        table = F.pad(counts[:, :-1], (1, 0))  # (F, NB+1), table[:, 0] = 0 (x below t_0)
        upper = F.pad(counts[:, 2:], (0, 2), value=n_knots)
        n_steps = int((upper - table).max())
        if n_steps <= MAX_SEARCH_STEPS and (best_table is None or n_steps < best_steps):
            best_table, best_steps, inv_bucket = table, n_steps, n_buckets / span
        if best_table is not None and best_steps <= TARGET_SEARCH_STEPS:
            break
        n_buckets *= 4
    search = IntervalSearch(lo[None, :], None if inv_bucket is None else inv_bucket[None, :],
                            None if best_table is None else best_table.T, knots, grid,
                            best_steps, feature_major)
    if feature_major:
        search = search._replace(**{name: getattr(search, name).T for name in
                                    ("lo", "inv_bucket", "table", "knots")
                                    if getattr(search, name) is not None})
    return search._replace(**{name: getattr(search, name).contiguous() for name in
                              ("lo", "inv_bucket", "table", "knots")
                              if getattr(search, name) is not None})


def locate(x: torch.Tensor, search: IntervalSearch) -> torch.Tensor:
    """x (B, F), or (F, B) if the search is feature-major -> j + 1 (same shape) long in [0, K]."""
    batch_axis = 1 if search.feature_major else 0
    if search.table is None:
        rows = x if search.feature_major else x.T
        j1 = torch.searchsorted(search.grid, rows.contiguous(), right=True)
        return j1 if search.feature_major else j1.T.contiguous()
    n_buckets = search.table.shape[batch_axis] - 1
    # clamp before the cast (inf) and after it (NaN casts to an arbitrary integer)
    bucket = ((x - search.lo) * search.inv_bucket).clamp_(0, n_buckets).long().clamp_(0, n_buckets)
    j1 = search.table.gather(batch_axis, bucket)
    for _ in range(search.n_steps):  # each step passes one more knot <= x; the NaN stops at K
        j1.add_(x >= search.knots.gather(batch_axis, j1))
    return j1
