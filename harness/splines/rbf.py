"""Gaussian radial basis functions on a uniform grid of centres: the FastKAN basis (Li 2024,
"Kolmogorov-Arnold Networks are Radial Basis Function Networks", arXiv 2405.06721).

b_i(x) = exp(-((x - c_i) / h)^2), with G centres c_i uniform on [lo, hi] and h their spacing
(hi - lo) / (G - 1). The grid tensor holds the centres (M, in, G); the size knob is G, the number of
centres (= functions; FastKAN's `num_grids`). A grid extension puts more centres on the same range
and refits the coefficients by least squares (Basis.extend, as pykan's `refine`) on the samples
and on dense points of the centres' range: close, not exact, because Gaussians of a new width do
not span the old ones. The dense points matter: overlapping Gaussians are ill-conditioned, and a fit
on the samples alone can swing wildly just outside them (test RMSE x10 on toy_exp_sin). The centres do not follow the samples
(FastKAN normalises the inputs instead), so there is no grid update.
"""
from __future__ import annotations

from typing import Optional, Tuple

import torch

from harness.splines.basis import Basis


class GaussianRBF(Basis):
    def n_functions(self, n_intervals: int) -> int:
        return n_intervals

    def n_intervals(self, grid: torch.Tensor) -> int:
        return grid.shape[-1]

    def initial_grid(self, n_in: int, n_intervals: int, lo: float, hi: float,
                     dtype=None, device=None) -> torch.Tensor:
        """G centres uniform on [lo, hi] -> (1, in, G)."""
        centres = torch.linspace(lo, hi, n_intervals, dtype=dtype, device=device)
        return centres.expand(1, n_in, -1).contiguous()

    def values(self, x: torch.Tensor, grid: torch.Tensor) -> torch.Tensor:
        """x (M, B, in), centres (M, in, G) -> (M, B, in, G)."""
        assert x.dim() == 3 and grid.dim() == 3 and x.shape[2] == grid.shape[1], (x.shape, grid.shape)
        h = (grid[..., -1:] - grid[..., :1]) / (grid.shape[-1] - 1)  # (M, in, 1): per-grid constant
        u = (x.unsqueeze(-1) - grid.unsqueeze(1)) / h.unsqueeze(1)  # (M, B, in, G)
        return torch.exp(-(u * u))  # Li 2024 eq. (2): 5 FLOPs per function (sub, div, square, neg, exp)

    def refined_grid(self, grid: torch.Tensor, n_intervals: int) -> torch.Tensor:
        """n_intervals centres uniform on the same [first, last] centre -> (M, in, G')."""
        steps = torch.linspace(0, 1, n_intervals, dtype=grid.dtype, device=grid.device)
        lo, hi = grid[..., :1], grid[..., -1:]
        return lo + (hi - lo) * steps

    def dense_samples(self, grid: torch.Tensor, n_intervals: int) -> torch.Tensor:
        """4 G' + 1 evenly spaced points on the centres' range -> (M, B, in)."""
        lo, hi = grid[..., 0], grid[..., -1]  # (M, in)
        steps = torch.linspace(0, 1, 4 * n_intervals + 1, dtype=grid.dtype, device=grid.device)
        return lo[:, None, :] + (hi - lo)[:, None, :] * steps[None, :, None]

    def extend(self, grid: torch.Tensor, coef: torch.Tensor, n_intervals: int,
               x: Optional[torch.Tensor] = None) -> Tuple[torch.Tensor, torch.Tensor]:
        """More centres, refitted on the samples x (M, B, in) and dense_samples together."""
        dense = self.dense_samples(grid, n_intervals)
        x = dense if x is None else torch.cat([x, dense], dim=1)
        return super().extend(grid, coef, n_intervals, x)
