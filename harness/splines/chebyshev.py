"""Chebyshev polynomials of a tanh-squashed input: the ChebyKAN basis (SS, Sindhu et al. 2024,
"Chebyshev Polynomial-Based Kolmogorov-Arnold Networks", arXiv 2405.07200).

b_d(x) = T_d(tanh x), d = 0..D. The "grid" tensor holds the degrees 0..D (M, in, D+1), so the size
knob (`n_intervals` in the Basis interface) is the degree D. Extending D -> D' appends T_{D+1..D'}
with zero coefficients: the function is unchanged, exactly. Evaluated by the three-term recurrence
T_{d+1} = 2 t T_d - T_{d-1} (Mason & Handscomb 2003, eq. 1.3), not cos(d arccos t) as ChebyKAN's
code does: arccos has an infinite slope at t = +-1, which tanh reaches in floating point.
"""
from __future__ import annotations

from typing import Optional, Tuple

import torch

from harness.splines.basis import Basis


class Chebyshev(Basis):
    def n_functions(self, n_intervals: int) -> int:
        return n_intervals + 1

    def n_intervals(self, grid: torch.Tensor) -> int:
        return grid.shape[-1] - 1

    def initial_grid(self, n_in: int, n_intervals: int, lo: float = -1.0, hi: float = 1.0,
                     dtype=None, device=None) -> torch.Tensor:
        """Degrees 0..D -> (1, in, D+1); lo, hi are unused (tanh maps every input into (-1, 1))."""
        degrees = torch.arange(n_intervals + 1, dtype=dtype, device=device)
        return degrees.expand(1, n_in, -1).contiguous()

    def values(self, x: torch.Tensor, grid: torch.Tensor) -> torch.Tensor:
        """x (M, B, in), degrees (M, in, D+1) -> (M, B, in, D+1)."""
        assert x.dim() == 3 and grid.dim() == 3 and x.shape[2] == grid.shape[1], (x.shape, grid.shape)
        degree = grid.shape[-1] - 1
        t = torch.tanh(x)  # SS et al. 2024 §3: squash into [-1, 1]
        terms = [torch.ones_like(t), t][:degree + 1]
        if degree >= 2:
            two_t = 2 * t  # once per input; then 2 FLOPs per degree (mul, sub)
            for _ in range(2, degree + 1):
                terms.append(two_t * terms[-1] - terms[-2])
        return torch.stack(terms, dim=-1)

    def refined_grid(self, grid: torch.Tensor, n_intervals: int) -> torch.Tensor:
        degrees = torch.arange(n_intervals + 1, dtype=grid.dtype, device=grid.device)
        return degrees.expand(*grid.shape[:-1], -1).contiguous()

    def dense_samples(self, grid: torch.Tensor, n_intervals: int) -> torch.Tensor:
        """4 (D'+1) + 1 points on [-3, 3] (tanh's range to 0.995) -> (M, B, in)."""
        steps = torch.linspace(-3, 3, 4 * (n_intervals + 1) + 1, dtype=grid.dtype, device=grid.device)
        return steps[None, :, None].expand(grid.shape[0], -1, grid.shape[1])

    def extend(self, grid: torch.Tensor, coef: torch.Tensor, n_intervals: int,
               x: Optional[torch.Tensor] = None) -> Tuple[torch.Tensor, torch.Tensor]:
        """Degree extension D -> D': the new T_d get coefficient 0, so the function is unchanged
        exactly (no refit; x is not needed). coef (M, in, out, D+1) -> (M, in, out, D'+1)."""
        new_grid = self.refined_grid(grid, n_intervals)
        return new_grid, zero_padded(coef, self.n_functions(n_intervals))


def zero_padded(coef: torch.Tensor, n_functions: int) -> torch.Tensor:
    """coef (..., n) with zeros appended to (..., n_functions) (n_functions >= n)."""
    assert n_functions >= coef.shape[-1], (coef.shape, n_functions)
    return torch.nn.functional.pad(coef, (0, n_functions - coef.shape[-1]))
