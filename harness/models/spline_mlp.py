"""An MLP whose activations are learnable B-splines: the ablation of Yu et al. 2024 ("KAN or MLP:
A Fairer Comparison", arXiv 2407.16674, §4: "MLP with B-spline activation"), the model that makes
"KANs are MLPs with spline activations" a model you can run.

Each hidden layer is Linear(d_in, d_out) followed by one spline per hidden *unit*, shared by all
inputs of that unit (a KAN has one per edge): act_j(z) = sum_n c_jn B_n(z) [+ w_b,j silu(z)], with
pykan's B-splines on a per-unit grid (G intervals, order k, grid_range, grid_eps: the KAN's knobs)
from harness.splines.BSpline; the output layer is linear. Grid updates and extensions are the
KAN's (BSpline.update_grid / BSpline.extend), on the pre-activations z that reach each spline.

Choices:
- base_activation=silu (default) adds w_b silu(z) per unit, w_b = 1 and the spline ~ 0 at
  initialisation, so the model starts as a SiLU MLP and the splines learn a correction; this
  matches the residual of our KAN family (Liu et al. 2024 §2.2), so the two differ only in where
  the splines sit. B-splines vanish outside the grid, and a Linear's output can leave grid_range
  between grid updates: the SiLU term keeps those units alive. base_activation=none is Yu et al.'s
  model exactly (their BSpline_MLP has no base term).
- Initial splines: uniform noise of size noise_scale / G fitted at the grid points (pykan's and
  Yu et al.'s initialisation; their scale is 0.1, our default).
"""
from __future__ import annotations

from typing import List, Optional, Sequence

import torch
from torch import nn
import torch.nn.functional as F

from harness.models.basis_kan import take_grid
from harness.splines import BSpline


class SplineActivation(nn.Module):
    """One learnable B-spline per unit: z (B, units) -> (B, units). Parameters: coef
    (units, 1, G+k) (harness.splines' layout: one input per unit, one output), w_b (units,)."""

    def __init__(self, units: int, grid: int = 5, k: int = 3,
                 grid_range: Sequence[float] = (-1.0, 1.0), base_activation: str = "silu",
                 noise_scale: float = 0.1, grid_eps: float = 0.02):
        super().__init__()
        self.units, self.k, self.grid_eps = units, k, grid_eps
        self.spline = BSpline(k)
        lo, hi = float(grid_range[0]), float(grid_range[1])
        self.register_buffer("grid", self.spline.initial_grid(units, grid, lo, hi)[0])  # (units, G+2k+1)
        knots = self.grid[:, k:-k].T  # (G+1, units)
        noise = (torch.rand(grid + 1, units, 1) - 0.5) * noise_scale / grid
        self.coef = nn.Parameter(self.spline.fit(knots[None], noise[None], self.grid[None])[0])
        if base_activation == "silu":
            self.base_weight = nn.Parameter(torch.ones(units))
        else:
            self.register_parameter("base_weight", None)

    @property
    def n_intervals(self) -> int:
        return self.spline.n_intervals(self.grid)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        assert z.dim() == 2 and z.shape[1] == self.units, z.shape
        y = self.spline.spline_values(z[None], self.grid[None], self.coef[None])[0, :, :, 0]  # (B, units)
        if self.base_weight is not None:
            y = y + self.base_weight * F.silu(z)
        return y

    @torch.no_grad()
    def update_grid_from_samples(self, z: torch.Tensor) -> None:
        """The KAN's grid update (BSpline.update_grid) on pre-activations z (B, units)."""
        grid, coef = self.spline.update_grid(z[None], self.grid[None], self.coef[None], self.grid_eps)
        take_grid(self, grid[0], coef[0])

    @torch.no_grad()
    def extend_grid(self, n_intervals: int, z: Optional[torch.Tensor] = None) -> None:
        """The KAN's grid extension (BSpline.extend, pykan `refine`): least-squares refit on z."""
        grid, coef = self.spline.extend(self.grid[None], self.coef[None], n_intervals,
                                        None if z is None else z[None])
        take_grid(self, grid[0], coef[0])


class SplineMLP(nn.Module):
    """widths [d_in, h1, ..., d_out]: Linear -> SplineActivation per hidden layer, linear output."""

    def __init__(self, widths: List[int], bias: bool = True, **activation_kwargs):
        super().__init__()
        self.widths = list(widths)
        pairs = list(zip(widths[:-1], widths[1:]))
        self.linears = nn.ModuleList(nn.Linear(d_in, d_out, bias=bias) for d_in, d_out in pairs)
        self.activations = nn.ModuleList(SplineActivation(d_out, **activation_kwargs)
                                         for _, d_out in pairs[:-1])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        assert x.dim() == 2 and x.shape[1] == self.widths[0], x.shape
        for linear, activation in zip(self.linears, self.activations):
            x = activation(linear(x))
        return self.linears[-1](x)

    @property
    def n_intervals(self) -> int:
        return self.activations[0].n_intervals

    @torch.no_grad()
    def update_grid_from_samples(self, x: torch.Tensor) -> None:
        """Each spline regrids on the pre-activations that reach it, through the already regridded
        splines before it (as the KAN's `update_layer_grids`)."""
        for linear, activation in zip(self.linears, self.activations):
            z = linear(x)
            activation.update_grid_from_samples(z)
            x = activation(z)

    @torch.no_grad()
    def extend_grid(self, n_intervals: int, x: Optional[torch.Tensor] = None) -> None:
        """Each spline refits on the coarse network's pre-activations (as `extend_layer_grids`)."""
        for linear, activation in zip(self.linears, self.activations):
            z = None if x is None else linear(x)
            if z is not None:
                x = activation(z)  # the coarse activation feeds the next layer
            activation.extend_grid(n_intervals, z)
