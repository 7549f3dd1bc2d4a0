"""The KAN layer over any basis of harness.splines (Gaussian RBF, Chebyshev, Fourier): one layer,
one network, for every non-B-spline KAN family.

Each edge (i -> o) computes phi(x_i) = sum_n c_ion b_n(x_i); a layer sums its edges into each
output, as one GEMM basis (B, in*n) @ coef (in*n, out), and optionally adds a SiLU base branch
silu(x) @ w_b (pykan's residual, FastKAN's `base_linear`), an output bias, and a LayerNorm of the
basis' input (FastKAN). Parameters: coef (in, out, n), w_b (in, out), bias (out,), the LayerNorm's
weight and bias (in,) each; the basis' grid (centres, degrees or frequencies) is a buffer named
`grid`, as the B-spline KAN's knots, so checkpoints resize it the same way.
"""
from __future__ import annotations

from typing import List, Optional, Sequence

import torch
from torch import nn
import torch.nn.functional as F

from harness.models.kan import extend_layer_grids
from harness.splines import Basis


class BasisKANLayer(nn.Module):
    """Drop-in like nn.Linear: (B, in_features) -> (B, out_features)."""

    def __init__(self, in_features: int, out_features: int, basis: Basis, grid: int,
                 grid_range: Sequence[float] = (-1.0, 1.0), base_activation: str = "none",
                 bias: bool = False, layer_norm: bool = False, coef_std: float = 0.1):
        super().__init__()
        self.in_features, self.out_features = in_features, out_features
        self.basis = basis
        self.register_buffer("grid", basis.initial_grid(in_features, grid, *grid_range)[0])
        n_functions = basis.n_functions(grid)
        self.coef = nn.Parameter(torch.randn(in_features, out_features, n_functions) * coef_std)
        if base_activation == "silu":  # U(-1, 1) / sqrt(in): pykan's w_b, nn.Linear's range
            self.base_weight = nn.Parameter((torch.rand(in_features, out_features) * 2 - 1)
                                            / in_features ** 0.5)
        else:
            self.register_parameter("base_weight", None)
        self.bias = nn.Parameter(torch.zeros(out_features)) if bias else None
        self.norm = nn.LayerNorm(in_features) if layer_norm else None

    @property
    def n_intervals(self) -> int:
        return self.basis.n_intervals(self.grid)

    def basis_input(self, x: torch.Tensor) -> torch.Tensor:
        """What the basis sees: x, or its LayerNorm (FastKAN normalises the spline input only)."""
        return x if self.norm is None else self.norm(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        assert x.dim() == 2 and x.shape[1] == self.in_features, x.shape
        batch = x.shape[0]
        basis = self.basis.values(self.basis_input(x)[None], self.grid[None])[0]  # (B, in, n)
        weight = self.coef.permute(0, 2, 1).reshape(-1, self.out_features)  # (in*n, out)
        y = basis.reshape(batch, -1) @ weight  # (B, out)
        if self.base_weight is not None:
            y = y + F.silu(x) @ self.base_weight  # FastKAN: the base branch takes the raw x
        if self.bias is not None:
            y = y + self.bias
        return y

    @torch.no_grad()
    def extend_grid(self, n_intervals: int, x: Optional[torch.Tensor] = None) -> None:
        """The basis' extension (Chebyshev, Fourier: zero coefficients, exact; RBF: more centres,
        least-squares refit on the samples x (B, in), or on dense samples of the centres' range)."""
        samples = None if x is None else self.basis_input(x)[None]
        grid, coef = self.basis.extend(self.grid[None], self.coef[None], n_intervals, samples)
        take_grid(self, grid[0], coef[0])


def take_grid(module: nn.Module, grid: torch.Tensor, coef: torch.Tensor) -> None:
    """Give `module` (a buffer `grid`, a Parameter `coef`) a grid change's grid and coefficients.
    Same size: the same Parameter object (an optimizer holding it keeps working); a new size: a new
    Parameter (and a new optimizer, as after pykan's refine)."""
    module.grid = grid
    if coef.shape == module.coef.shape:
        module.coef.data = coef
    else:
        module.coef = nn.Parameter(coef, requires_grad=module.coef.requires_grad)


class BasisKAN(nn.Module):
    """A stack of BasisKANLayers on one basis: widths [d_in, h1, ..., d_out]. `coef_std(in, n)`
    gives each layer's initial coefficient scale (each family's paper's rule)."""
    basis: Basis  # each family's subclass sets its basis

    def __init__(self, widths: List[int], grid: int, coef_std, **layer_kwargs):
        super().__init__()
        self.widths = list(widths)
        n_functions = self.basis.n_functions(grid)
        self.layers = nn.ModuleList(
            BasisKANLayer(d_in, d_out, self.basis, grid, coef_std=coef_std(d_in, n_functions),
                          **layer_kwargs)
            for d_in, d_out in zip(widths[:-1], widths[1:]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for layer in self.layers:
            x = layer(x)
        return x

    @property
    def n_intervals(self) -> int:
        return self.layers[0].n_intervals

    @torch.no_grad()
    def extend_grid(self, n_intervals: int, x: Optional[torch.Tensor] = None) -> None:
        """Every layer's extension; with x, each layer refits on the coarse network's activations
        that reach it (harness.models.kan.extend_layer_grids, as the B-spline KAN)."""
        extend_layer_grids(self.layers, n_intervals, x)
