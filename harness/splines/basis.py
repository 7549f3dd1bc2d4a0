"""The basis interface every KAN layer evaluates its splines through.

A basis is a family of n functions per input on a grid; an edge's spline is sum_n c_n f_n(x). Every
tensor carries a leading model axis M (a stacked ensemble's members; a solo layer is M = 1):
x (M, B, in), grid (M, in, K), coef (M, in, out, n).

A new basis (Chebyshev, Gaussian RBF, Fourier, ...) is one subclass that provides:
- `n_functions(n_intervals)`: n for a grid of that size, and `n_intervals(grid)` back;
- `initial_grid(n_in, n_intervals, lo, hi)`: the grid (M=1) a new layer starts on;
- `values(x, grid)`: the dense basis (M, B, in, n) (the reference evaluation strategy);
- `grid_from_samples(x_sorted, n_intervals, grid_eps)`: the grid a grid update moves to;
- `refined_grid(grid, n_intervals)`: the finer grid of a grid extension;
and, where the basis is local (a few nonzero functions per x), optionally a faster strategy such
as `BSpline.local`. Least-squares fits, spline values, grid updates and extensions are written
here once in terms of those.
"""
from __future__ import annotations

from typing import Optional, Tuple

import torch


class Basis:
    def n_functions(self, n_intervals: int) -> int:
        raise NotImplementedError

    def n_intervals(self, grid: torch.Tensor) -> int:
        raise NotImplementedError

    def initial_grid(self, n_in: int, n_intervals: int, lo: float, hi: float,
                     dtype=None, device=None) -> torch.Tensor:
        raise NotImplementedError

    def values(self, x: torch.Tensor, grid: torch.Tensor) -> torch.Tensor:
        """x (M, B, in), grid (M, in, K) -> (M, B, in, n)."""
        raise NotImplementedError

    def grid_from_samples(self, x_sorted: torch.Tensor, n_intervals: int,
                          grid_eps: float) -> torch.Tensor:
        """Samples sorted per input (M, B, in) -> grid (M, in, K')."""
        raise NotImplementedError

    def refined_grid(self, grid: torch.Tensor, n_intervals: int) -> torch.Tensor:
        raise NotImplementedError

    def dense_samples(self, grid: torch.Tensor, n_intervals: int) -> torch.Tensor:
        """Points (M, B, in) to refit on when a grid extension gets no samples."""
        raise NotImplementedError

    def spline_values(self, x: torch.Tensor, grid: torch.Tensor, coef: torch.Tensor) -> torch.Tensor:
        """Every edge's spline: x (M, B, in), coef (M, in, out, n) -> (M, B, in, out). One
        contraction per member (batched over inputs only), so a member's numbers do not depend
        on M."""
        basis = self.values(x, grid)
        return torch.stack([torch.einsum("bin,ion->bio", b, c) for b, c in zip(basis, coef)])

    def fit(self, x: torch.Tensor, y: torch.Tensor, grid: torch.Tensor) -> torch.Tensor:
        """Least-squares coefficients so that the splines pass through samples (pykan
        `curve2coef`): x (M, B, in), y (M, B, in, out) -> coef (M, in, out, n).

        Deviation from pykan: one solve per input with `out` right-hand sides instead of one per
        edge (same minimiser, the design matrix depends only on the input), and a minimum-norm
        solver (gelsd on CPU, pinv on CUDA) so that functions no sample touches get coefficient 0
        instead of an error. Each (member, input) is its own solve.
        """
        n_models, batch, n_in = x.shape
        basis = self.values(x, grid).permute(0, 2, 1, 3).reshape(n_models * n_in, batch, -1)
        rhs = y.permute(0, 2, 1, 3).reshape(n_models * n_in, batch, -1)  # (M*in, B, out)
        if basis.device.type == "cpu":
            coef = torch.linalg.lstsq(basis, rhs, driver="gelsd").solution  # (M*in, n, out)
        else:
            coef = torch.linalg.pinv(basis) @ rhs
        return coef.view(n_models, n_in, *coef.shape[1:]).transpose(2, 3).contiguous()

    def refit(self, x_sorted: torch.Tensor, grid: torch.Tensor, coef: torch.Tensor,
              new_grid: torch.Tensor) -> torch.Tensor:
        """Coefficients on new_grid that keep the splines' values at the samples x_sorted."""
        return self.fit(x_sorted, self.spline_values(x_sorted, grid, coef), new_grid)

    def update_grid(self, x: torch.Tensor, grid: torch.Tensor, coef: torch.Tensor,
                    grid_eps: float) -> Tuple[torch.Tensor, torch.Tensor]:
        """Grid update from samples x (M, B, in) (Liu et al. 2024, §2.4; pykan
        `update_grid_from_samples`): the grid follows the samples, the splines are refitted on
        them. -> (new grid, new coef), same sizes."""
        n_intervals = self.n_intervals(grid)
        x_sorted = torch.sort(x, dim=1)[0]
        new_grid = self.grid_from_samples(x_sorted, n_intervals, grid_eps)
        return new_grid, self.refit(x_sorted, grid, coef, new_grid)

    def extend(self, grid: torch.Tensor, coef: torch.Tensor, n_intervals: int,
               x: Optional[torch.Tensor] = None) -> Tuple[torch.Tensor, torch.Tensor]:
        """Grid extension (Liu et al. 2024, §2.4; pykan 0.2.8 `refine`) to n_intervals, refitted
        on the samples x (M, B, in), or without them on `dense_samples`."""
        if x is None:
            x = self.dense_samples(grid, n_intervals)
        new_grid = self.refined_grid(grid, n_intervals)
        return new_grid, self.refit(torch.sort(x, dim=1)[0], grid, coef, new_grid)
