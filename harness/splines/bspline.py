"""B-spline bases on per-input knot vectors (pykan 0.2.8 semantics, `kan/spline.py`): the one
B-spline implementation of every KAN layer (reference, fast, stacked).

A grid of G intervals on [a, b] is padded by k knots on each side (spacing h = (b - a) / G), so
each input has G + 2k + 1 knots and G + k basis functions of order k. Evaluation strategies, each
written once: the dense Cox-de Boor recursion (`cox_de_boor`, the reference), the k+1 local values
and slopes (closed form on uniform knots, BSPLVB otherwise; harness.splines.local), and the
pp-form (harness.splines.ppform). Every tensor has a leading model axis M (solo layers: M = 1).
"""
from __future__ import annotations

from typing import Optional

import torch

from harness.splines import local
from harness.splines.basis import Basis
from harness.splines.knots import pad_knots


def cox_de_boor(x: torch.Tensor, grid: torch.Tensor, k: int) -> torch.Tensor:
    """Cox-de Boor recursion (de Boor 1978, ch. IX): x (M, B, in), grid (M, in, G+2k+1) ->
    (M, B, in, G+k).

    Level 0 is the indicator of [t_i, t_{i+1}) (half-open, as pykan). Degenerate knot spans give
    0/0 which is set to 0, as pykan's `nan_to_num` does. Elementwise, so a member's values do not
    depend on M.
    """
    assert x.dim() == 3 and grid.dim() == 3 and x.shape[0] == grid.shape[0] \
        and x.shape[2] == grid.shape[1], (x.shape, grid.shape)
    xe = x.unsqueeze(-1)  # (M, B, in, 1)
    t = grid.unsqueeze(1)  # (M, 1, in, G+2k+1)
    value = ((xe >= t[..., :-1]) & (xe < t[..., 1:])).to(x.dtype)  # (M, B, in, G+2k)
    for j in range(1, k + 1):
        left = (xe - t[..., : -(j + 1)]) / (t[..., j:-1] - t[..., : -(j + 1)])
        right = (t[..., j + 1:] - xe) / (t[..., j + 1:] - t[..., 1:-j])
        value = torch.nan_to_num(left * value[..., :-1] + right * value[..., 1:])
    return value


class BSpline(Basis):
    """Order-k B-splines on padded knots (pykan 0.2.8)."""

    def __init__(self, k: int):
        self.k = k

    def n_functions(self, n_intervals: int) -> int:
        return n_intervals + self.k

    def n_intervals(self, grid: torch.Tensor) -> int:
        return grid.shape[-1] - 1 - 2 * self.k

    def initial_grid(self, n_in: int, n_intervals: int, lo: float, hi: float,
                     dtype=None, device=None) -> torch.Tensor:
        """Knots of a uniform grid of `n_intervals` on [lo, hi], padded by k -> (1, in, G+2k+1)."""
        base = torch.linspace(lo, hi, n_intervals + 1, dtype=dtype, device=device)
        return pad_knots(base.expand(1, n_in, -1), self.k)

    def values(self, x: torch.Tensor, grid: torch.Tensor) -> torch.Tensor:
        return cox_de_boor(x, grid, self.k)

    def layout(self, grid: torch.Tensor) -> local.Layout:
        """Grid constants for `local` (once per grid): knots (M, in, K)."""
        return local.make_layout(grid, self.k)

    def local(self, x: torch.Tensor, layout: local.Layout, with_slope: bool = False):
        """The k+1 nonzero B-splines at x (M, B, in): j+1 (M, B, in) and values, slopes
        (M, B, k+1, in) of B_{j-k+r}, r = 0..k (harness.splines.local.local_basis)."""
        return local.local_basis(x, layout, self.k, with_slope)

    def derivatives(self, x: torch.Tensor, grid: torch.Tensor) -> torch.Tensor:
        """dB_n/dx dense: x (M, B, in) -> (M, B, in, G+k), from the local slopes."""
        j1, _, slopes = self.local(x, self.layout(grid), with_slope=True)
        n_basis = grid.shape[-1] - self.k - 1
        k1 = self.k + 1
        dense = slopes.new_zeros(*x.shape, n_basis + 2 * k1)  # k+1 padding columns each side
        columns = j1.unsqueeze(-1) + torch.arange(k1, device=x.device)  # B_{j-k+r} at j+1+r
        dense.scatter_(-1, columns, slopes.movedim(2, -1))
        return dense[..., k1:k1 + n_basis]

    def grid_from_samples(self, x_sorted: torch.Tensor, n_intervals: int,
                          grid_eps: float) -> torch.Tensor:
        """pykan `update_grid_from_samples`'s knots: grid_eps * uniform + (1 - grid_eps) * sample
        percentiles of samples sorted per input (M, B, in), padded by k -> (M, in, G+2k+1)."""
        batch = x_sorted.shape[1]
        ids = [int(batch / n_intervals * i) for i in range(n_intervals)] + [-1]
        adaptive = x_sorted[:, ids, :].transpose(1, 2)  # (M, in, G+1): sample percentiles
        h = (adaptive[..., -1:] - adaptive[..., :1]) / n_intervals
        arange = torch.arange(n_intervals + 1, dtype=x_sorted.dtype, device=x_sorted.device)
        knots = grid_eps * (adaptive[..., :1] + h * arange) + (1 - grid_eps) * adaptive
        return pad_knots(knots, self.k)

    def refined_grid(self, grid: torch.Tensor, n_intervals: int) -> torch.Tensor:
        """pykan 0.2.8 `refine` (KANLayer.initialize_grid_from_parent): the finer grid's knots
        are the parent's G+1 interior knots interpolated piecewise linearly at the fractions i/G'
        of the way (i = 0..G'), then padded by k. pykan evaluates that interpolation as a
        least-squares degree-1 KANLayer; the values agree to round-off. (M, in, G+2k+1) ->
        (M, in, G'+2k+1)."""
        k = self.k
        interior = grid[..., k:grid.shape[-1] - k]  # (M, in, G+1)
        n_parent = interior.shape[-1] - 1
        u = torch.arange(n_intervals + 1, dtype=grid.dtype, device=grid.device) * n_parent / n_intervals
        left = u.floor().long().clamp(max=n_parent - 1)  # the parent interval of each new knot
        weight = u - left.to(grid.dtype)
        knots = interior[..., left] + weight * (interior[..., left + 1] - interior[..., left])
        return pad_knots(knots, k)

    def dense_samples(self, grid: torch.Tensor, n_intervals: int) -> torch.Tensor:
        """4 (G'+k) + 1 evenly spaced points on the knot range of each input -> (M, B, in)."""
        lo, hi = grid[..., self.k], grid[..., -self.k - 1]  # (M, in)
        n_fit = 4 * (n_intervals + self.k) + 1
        steps = torch.linspace(0, 1, n_fit, dtype=grid.dtype, device=grid.device)
        return lo[:, None, :] + (hi - lo)[:, None, :] * steps[None, :, None]
