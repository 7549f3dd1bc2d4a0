"""Splines in piecewise-polynomial (pp) form for the stacked KAN: per knot interval, the k+1
nonzero B-splines as polynomials in u = x - t_j (de Boor 1978, "A Practical Guide to Splines",
ch. VII and X: B-form to pp-form), and an interval search by bucket tables.

With the pp-form a layer's spline part is, per input and interval, one polynomial of degree k per
output (coefficients folded once per call from coef and w_s): an evaluation is a gather of k+1
coefficients and Horner's rule, whatever G. Tables depend only on the knots (once per grid).
"""
from __future__ import annotations

from typing import NamedTuple

import torch

MAX_SEARCH_STEPS = 4  # the bucket table is refined until this many steps make the interval exact


def pp_conversion(grid: torch.Tensor, k: int) -> torch.Tensor:
    """grid (F, K) increasing knots -> C (F, K+1, k+1, k+1): on the interval of x with j1 knots
    <= x (j1 = 1..K-1, interval [t_{j1-1}, t_{j1})), B_{j1-1-k+r}(x) = sum_p C[f, j1, r, p] u^p,
    u = x - t_{j1-1}. Rows j1 = 0 and K (x off the knots) are zero. B-splines that the K knots do
    not define (index off 0..K-k-2) get finite values from k knots extrapolated at the mean
    spacing; their coefficients are zero padding in the caller."""
    n_in, n_knots = grid.shape
    mean_h = (grid[:, -1:] - grid[:, :1]) / (n_knots - 1)
    steps = torch.arange(1, k + 1, dtype=grid.dtype, device=grid.device)
    ext = torch.cat([grid[:, :1] - mean_h * steps.flip(0), grid, grid[:, -1:] + mean_h * steps], 1)
    n_int = n_knots - 1

    def knot(q: int) -> torch.Tensor:  # t_{j+q} for every interval j: (F, K-1, 1)
        return ext[:, k + q:k + q + n_int, None]

    # polys[s]: coefficients (F, K-1, degree+1) of B_{j-d+s, d}, s = 0..d, in powers of u
    polys = [torch.ones(n_in, n_int, 1, dtype=grid.dtype, device=grid.device)]
    for d in range(1, k + 1):  # Cox-de Boor: B_{i,d} = w_1 B_{i,d-1} + w_2 B_{i+1,d-1}
        new = []
        for s in range(d + 1):  # i = j - d + s
            acc = torch.zeros(n_in, n_int, d + 1, dtype=grid.dtype, device=grid.device)
            if s >= 1:  # (u + t_j - t_i) / (t_{i+d} - t_i) * B_{i,d-1}
                scaled = polys[s - 1] / (knot(s) - knot(s - d))
                acc[..., 1:] += scaled
                acc[..., :-1] += (knot(0) - knot(s - d)) * scaled
            if s <= d - 1:  # (t_{i+d+1} - t_j - u) / (t_{i+d+1} - t_{i+1}) * B_{i+1,d-1}
                scaled = polys[s] / (knot(s + 1) - knot(s - d + 1))
                acc[..., :-1] += (knot(s + 1) - knot(0)) * scaled
                acc[..., 1:] -= scaled
            new.append(acc)
        polys = new
    inner = torch.stack(polys, 2)  # (F, K-1, k+1, k+1)
    zero = inner.new_zeros(n_in, 1, k + 1, k + 1)
    return torch.cat([zero, inner, zero], 1)


class IntervalSearch(NamedTuple):
    """j1 = number of knots <= x, per input row: a bucket table gives a lower bound that
    `n_steps` comparisons make exact (x below the first knot: 0; at or above the last: K)."""
    lo: torch.Tensor  # (F, 1) first knot
    inv_width: torch.Tensor  # (F, 1) buckets per unit length
    table: torch.Tensor  # (F, NB+1) long: a lower bound on j1 for each bucket
    knots: torch.Tensor  # (F, K+1): the knots, then +inf (x >= inf stops the steps at K)
    n_steps: int

    @classmethod
    def of(cls, grid: torch.Tensor) -> "IntervalSearch":
        n_in, n_knots = grid.shape
        lo, span = grid[:, :1], grid[:, -1:] - grid[:, :1]
        knots = torch.cat([grid, torch.full_like(lo, float("inf"))], 1).contiguous()
        n_buckets = 4 * (n_knots - 1)
        while True:
            # x in bucket b lies in [start_{b-1}, start_{b+2}) even if round-off moved it one
            # bucket: #knots <= start_{b-1} is a lower bound on j1, #knots <= start_{b+2} an upper
            fractions = torch.arange(n_buckets + 1, dtype=grid.dtype, device=grid.device) / n_buckets
            counts = torch.searchsorted(grid.contiguous(), (lo + span * fractions).contiguous(),
                                        right=True)  # (F, NB+1)
            table = torch.cat([torch.zeros_like(counts[:, :1]), counts[:, :-1]], 1)
            upper = torch.cat([counts[:, 2:], torch.full_like(counts[:, :2], n_knots)], 1)
            n_steps = int((upper - table).max())
            if n_steps <= MAX_SEARCH_STEPS or n_buckets > 64 * n_knots:
                return cls(lo, n_buckets / span, table.contiguous(), knots, n_steps)
            n_buckets *= 4

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        """x (F, B) -> j1 (F, B) long in [0, K]."""
        n_buckets = self.table.shape[1] - 1
        # clamp before the cast (inf) and after it (NaN casts to an arbitrary integer)
        bucket = ((x - self.lo) * self.inv_width).clamp_(0, n_buckets).long().clamp_(0, n_buckets)
        j1 = self.table.gather(1, bucket)
        for _ in range(self.n_steps):  # each step passes one more knot <= x
            j1.add_(x >= self.knots.gather(1, j1))
        return j1


def interval_origins(grid: torch.Tensor) -> torch.Tensor:
    """(F, K+1): the knot u is measured from for each j1 (t_{j1-1}; t_0 for j1 = 0)."""
    return torch.cat([grid[:, :1], grid], 1).contiguous()


def spline_pp_coefficients(folded: torch.Tensor, conversion: torch.Tensor, k: int) -> torch.Tensor:
    """folded (F, out, G+k) spline coefficients (coef * w_s), conversion (F, K+1, k+1, k+1) ->
    (F, out, K+1, k+1): the polynomial of each edge on each interval. A sum over r in a fixed
    order (not a batched GEMM), so that a member's numbers do not depend on the stack."""
    padded = torch.nn.functional.pad(folded, (k + 1, k + 1))  # B-spline n at column n + k + 1
    n_rows = conversion.shape[1]
    windows = padded.unfold(2, k + 1, 1)[:, :, :n_rows]  # (F, out, K+1, k+1): B_{j1-1-k+r}
    total = windows[..., 0, None] * conversion[:, None, :, 0]
    for r in range(1, k + 1):
        total = total + windows[..., r, None] * conversion[:, None, :, r]
    return total
