"""Truncated Fourier series: the FourierKAN basis (Xu et al. 2024, "FourierKAN-GCF", arXiv
2406.01034; the FourierKAN layer, github.com/GistNoesis/FourierKAN).

b(x) = cos(x), sin(x), cos(2x), sin(2x), ..., cos(Kx), sin(Kx): 2K functions, interleaved so a
larger K appends functions at the end. The "grid" tensor holds the frequencies 1..K (M, in, K), so
the size knob is K. Extending K -> K' appends frequencies with zero coefficients: exact.
"""
from __future__ import annotations

from typing import Optional, Tuple

import torch

from harness.splines.basis import Basis
from harness.splines.chebyshev import zero_padded


class Fourier(Basis):
    def n_functions(self, n_intervals: int) -> int:
        return 2 * n_intervals

    def n_intervals(self, grid: torch.Tensor) -> int:
        return grid.shape[-1]

    def initial_grid(self, n_in: int, n_intervals: int, lo: float = -1.0, hi: float = 1.0,
                     dtype=None, device=None) -> torch.Tensor:
        """Frequencies 1..K -> (1, in, K); lo, hi are unused (the basis is 2 pi periodic)."""
        frequencies = torch.arange(1, n_intervals + 1, dtype=dtype, device=device)
        return frequencies.expand(1, n_in, -1).contiguous()

    def values(self, x: torch.Tensor, grid: torch.Tensor) -> torch.Tensor:
        """x (M, B, in), frequencies (M, in, K) -> (M, B, in, 2K) as cos 1x, sin 1x, cos 2x, ..."""
        assert x.dim() == 3 and grid.dim() == 3 and x.shape[2] == grid.shape[1], (x.shape, grid.shape)
        kx = x.unsqueeze(-1) * grid.unsqueeze(1)  # (M, B, in, K): K multiplications
        return torch.stack([torch.cos(kx), torch.sin(kx)], dim=-1).flatten(-2)

    def refined_grid(self, grid: torch.Tensor, n_intervals: int) -> torch.Tensor:
        frequencies = torch.arange(1, n_intervals + 1, dtype=grid.dtype, device=grid.device)
        return frequencies.expand(*grid.shape[:-1], -1).contiguous()

    def dense_samples(self, grid: torch.Tensor, n_intervals: int) -> torch.Tensor:
        """8 K' + 1 points over one period [-pi, pi] -> (M, B, in)."""
        steps = torch.linspace(-torch.pi, torch.pi, 8 * n_intervals + 1, dtype=grid.dtype,
                               device=grid.device)
        return steps[None, :, None].expand(grid.shape[0], -1, grid.shape[1])

    def extend(self, grid: torch.Tensor, coef: torch.Tensor, n_intervals: int,
               x: Optional[torch.Tensor] = None) -> Tuple[torch.Tensor, torch.Tensor]:
        """K -> K': the new frequencies get coefficient 0, so the function is unchanged exactly.
        coef (M, in, out, 2K) -> (M, in, out, 2K')."""
        return self.refined_grid(grid, n_intervals), zero_padded(coef, self.n_functions(n_intervals))
