"""KAN layer and network with pykan 0.2.8 semantics (Liu et al. 2024, arXiv 2404.19756, §2.2).

Each edge (i -> o) computes phi(x) = w_b * silu(x) + w_s * sum_n c_n B_n(x); a layer sums its
edges into each output. Parameters: coef (in, out, G+k), w_b (in, out), w_s (in, out); the knots
(in, G+2k+1) are a buffer, moved only by grid updates and extensions. The splines, their fit and
the grid changes are harness.splines' (called with a model axis of one).
"""
from __future__ import annotations

from typing import List, Optional, Sequence

import torch
from torch import nn
import torch.nn.functional as F

from harness.splines import BSpline


class KANLayer(nn.Module):
    """Drop-in like nn.Linear: (B, in_features) -> (B, out_features)."""

    def __init__(self, in_features: int, out_features: int, grid: int = 5, k: int = 3,
                 grid_range: Sequence[float] = (-1.0, 1.0), base_activation: str = "silu",
                 train_base_weight: bool = True, train_spline_weight: bool = True,
                 noise_scale: float = 0.5, grid_eps: float = 0.02):
        super().__init__()
        self.in_features, self.out_features = in_features, out_features
        self.k, self.grid_eps = k, grid_eps
        self.grid_range = (float(grid_range[0]), float(grid_range[1]))
        self.base_activation = base_activation
        self.spline = BSpline(k)
        self.register_buffer("grid", self.spline.initial_grid(in_features, grid, *self.grid_range)[0])
        # pykan init: a spline through uniform noise of size noise_scale / G at the grid points.
        knots = self.grid[:, k:-k].T  # (G+1, in)
        noise = (torch.rand(grid + 1, in_features, out_features) - 0.5) * noise_scale / grid
        self.coef = nn.Parameter(self.spline.fit(knots[None], noise[None], self.grid[None])[0])
        # pykan init: w_b ~ U(-1, 1) / sqrt(in) (scale_base_mu=0, sigma=1), w_s = 1 / sqrt(in).
        if base_activation == "silu":
            w_b = (torch.rand(in_features, out_features) * 2 - 1) / in_features ** 0.5
            self.base_weight = nn.Parameter(w_b, requires_grad=train_base_weight)
        else:
            self.register_parameter("base_weight", None)
        w_s = torch.ones(in_features, out_features) / in_features ** 0.5
        self.spline_weight = nn.Parameter(w_s, requires_grad=train_spline_weight)

    @property
    def n_intervals(self) -> int:
        return self.grid.shape[1] - 1 - 2 * self.k

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        assert x.dim() == 2 and x.shape[1] == self.in_features, x.shape
        basis = self.spline.values(x[None], self.grid[None])[0]  # (B, in, G+k)
        return self._contract(x, basis)

    def _contract(self, x: torch.Tensor, basis: torch.Tensor) -> torch.Tensor:
        # One GEMM with inner dimension in*(G+k); w_s folded into the coefficients (a per-parameter
        # cost, not per example). pykan sums per-edge products instead: equal up to round-off.
        batch = x.shape[0]
        weight = (self.coef * self.spline_weight[:, :, None]).permute(0, 2, 1)  # (in, G+k, out)
        y = basis.reshape(batch, -1) @ weight.reshape(-1, self.out_features)  # (B, out)
        if self.base_weight is not None:
            y = y + F.silu(x) @ self.base_weight
        return y

    def edge_values(self, x: torch.Tensor) -> torch.Tensor:
        """phi of every edge: (B, in) -> (B, in, out); for inspection and grid refits."""
        y = self.spline.spline_values(x[None], self.grid[None], self.coef[None])[0] * self.spline_weight
        if self.base_weight is not None:
            y = y + F.silu(x)[:, :, None] * self.base_weight
        return y

    @torch.no_grad()
    def update_grid_from_samples(self, x: torch.Tensor) -> None:
        """pykan `update_grid_from_samples`: knots = grid_eps*uniform + (1-grid_eps)*percentiles.

        The spline part is refitted by least squares on the sorted samples, so the function is kept
        on the samples' range. x (B, in).
        """
        self._move_to(*self.spline.update_grid(x[None], self.grid[None], self.coef[None],
                                               self.grid_eps))

    @torch.no_grad()
    def extend_grid(self, n_intervals: int, x: Optional[torch.Tensor] = None) -> None:
        """Grid extension (Liu et al. 2024, §2.4) as pykan 0.2.8's `refine`: the new knots
        interpolate the current ones (`BSpline.refined_grid`), and the coarse splines are refitted
        by least squares on the samples x (B, in); without x, on a dense sample of the knot range.
        """
        self._move_to(*self.spline.extend(self.grid[None], self.coef[None], n_intervals,
                                          None if x is None else x[None]))

    def _move_to(self, grid: torch.Tensor, coef: torch.Tensor) -> None:
        """Take the knots (1, in, G'+2k+1) and coefficients (1, in, out, G'+k) of a grid change."""
        self.grid = grid[0]
        if coef.shape[1:] == self.coef.shape:
            self.coef.data = coef[0]  # same Parameter object: an optimizer holding it keeps working
        else:  # a new grid size needs a new Parameter (and a new optimizer, as pykan's refine)
            self.coef = nn.Parameter(coef[0], requires_grad=self.coef.requires_grad)


class KAN(nn.Module):
    """A stack of KAN layers: widths [d_in, h1, ..., d_out]."""

    def __init__(self, widths: List[int], layer_cls=KANLayer, **layer_kwargs):
        super().__init__()
        self.widths = list(widths)
        self.layers = nn.ModuleList(
            layer_cls(d_in, d_out, **layer_kwargs) for d_in, d_out in zip(widths[:-1], widths[1:]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for layer in self.layers:
            x = layer(x)
        return x

    @property
    def n_intervals(self) -> int:
        return self.layers[0].n_intervals

    @torch.no_grad()
    def update_grid_from_samples(self, x: torch.Tensor) -> None:
        """Each layer regrids on the activations that reach it (pykan `update_grid`)."""
        update_layer_grids(self.layers, x)

    @torch.no_grad()
    def extend_grid(self, n_intervals: int, x: Optional[torch.Tensor] = None) -> None:
        """Grid extension of every layer (pykan `refine`); with x, each layer refits on the coarse
        network's activations that reach it."""
        extend_layer_grids(self.layers, n_intervals, x)


def update_layer_grids(layers: Sequence[nn.Module], x: torch.Tensor, **kwargs) -> None:
    """pykan `update_grid` of a network: each layer regrids on the activations that reach it,
    those of the already regridded layers before it (solo and stacked KANs; kwargs go to each
    layer's `update_grid_from_samples`)."""
    for layer in layers:
        layer.update_grid_from_samples(x, **kwargs)
        x = layer(x)


def extend_layer_grids(layers: Sequence[nn.Module], n_intervals: int,
                       x: Optional[torch.Tensor] = None) -> None:
    """pykan `refine` of a network: each layer refits on the coarse network's activations that
    reach it (or, without x, on dense samples of its knot range)."""
    for layer in layers:
        inputs = x
        if x is not None:
            x = layer(x)  # activations of the coarse layer feed the next one
        layer.extend_grid(n_intervals, inputs)
