"""KAN layer and network with pykan 0.2.8 semantics (Liu et al. 2024, arXiv 2404.19756, §2.2).

Each edge (i -> o) computes phi(x) = w_b * silu(x) + w_s * sum_n c_n B_n(x); a layer sums its
edges into each output. Parameters: coef (in, out, G+k), w_b (in, out), w_s (in, out); the knots
(in, G+2k+1) are a buffer, moved only by grid updates and extensions.
"""
from __future__ import annotations

from typing import List, Optional, Sequence

import torch
from torch import nn
import torch.nn.functional as F

from harness.models.bspline import bspline_basis, extend_grid, fit_coefficients, spline_values, uniform_grid


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
        self.register_buffer("grid", uniform_grid(in_features, grid, k, *self.grid_range))
        # pykan init: a spline through uniform noise of size noise_scale / G at the grid points.
        knots = self.grid[:, k:-k].T  # (G+1, in)
        noise = (torch.rand(grid + 1, in_features, out_features) - 0.5) * noise_scale / grid
        self.coef = nn.Parameter(fit_coefficients(knots, noise, self.grid, k))
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
        basis = bspline_basis(x, self.grid, self.k)  # (B, in, G+k)
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
        y = spline_values(x, self.grid, self.coef, self.k) * self.spline_weight
        if self.base_weight is not None:
            y = y + F.silu(x)[:, :, None] * self.base_weight
        return y

    @torch.no_grad()
    def update_grid_from_samples(self, x: torch.Tensor) -> None:
        """pykan `update_grid_from_samples`: knots = grid_eps*uniform + (1-grid_eps)*percentiles.

        The spline part is refitted by least squares on the sorted samples, so the function is kept
        on the samples' range. x (B, in).
        """
        x_sorted = torch.sort(x, dim=0)[0]  # (B, in)
        self._refit(x_sorted, extend_grid(sample_knots(x_sorted, self.n_intervals, self.grid_eps), self.k))

    @torch.no_grad()
    def extend_grid(self, n_intervals: int, x: Optional[torch.Tensor] = None) -> None:
        """Grid extension (Liu et al. 2024, §2.4) as pykan 0.2.8's `refine`: the new knots
        interpolate the current ones (`refined_knots`), and the coarse splines are refitted by least
        squares on the samples x (B, in); without x, on a dense sample of the knot range.
        """
        if x is None:
            lo, hi = self.grid[:, self.k], self.grid[:, -self.k - 1]  # (in,)
            n_fit = 4 * (n_intervals + self.k) + 1
            steps = torch.linspace(0, 1, n_fit, dtype=self.grid.dtype, device=self.grid.device)
            x = lo[None, :] + (hi - lo)[None, :] * steps[:, None]  # (n_fit, in)
        self._refit(torch.sort(x, dim=0)[0], refined_knots(self.grid, self.k, n_intervals))

    def _refit(self, x_sorted: torch.Tensor, grid: torch.Tensor) -> None:
        """Move to knots `grid` (in, G'+2k+1), keeping the splines' values at x_sorted (B, in)."""
        y = spline_values(x_sorted, self.grid, self.coef, self.k)  # (B, in, out)
        self.grid = grid
        coef = fit_coefficients(x_sorted, y, self.grid, self.k)
        if coef.shape == self.coef.shape:
            self.coef.data = coef  # same Parameter object: an optimizer holding it keeps working
        else:  # a new grid size needs a new Parameter (and a new optimizer, as pykan's refine)
            self.coef = nn.Parameter(coef, requires_grad=self.coef.requires_grad)


def sample_knots(x_sorted: torch.Tensor, n_intervals: int, grid_eps: float) -> torch.Tensor:
    """pykan `update_grid_from_samples`'s knots: grid_eps * uniform + (1 - grid_eps) * sample
    percentiles, from samples sorted per input (B, in) -> (in, G+1), before padding."""
    batch = x_sorted.shape[0]
    ids = [int(batch / n_intervals * i) for i in range(n_intervals)] + [-1]
    adaptive = x_sorted[ids, :].T  # (in, G+1): sample percentiles
    h = (adaptive[:, -1:] - adaptive[:, :1]) / n_intervals
    arange = torch.arange(n_intervals + 1, dtype=x_sorted.dtype, device=x_sorted.device)
    return grid_eps * (adaptive[:, :1] + h * arange[None, :]) + (1 - grid_eps) * adaptive


def refined_knots(grid: torch.Tensor, k: int, n_intervals: int) -> torch.Tensor:
    """pykan 0.2.8 `refine` (KANLayer.initialize_grid_from_parent): the finer grid's knots are the
    parent's G+1 interior knots interpolated piecewise linearly at the fractions i/G' of the way
    (i = 0..G'), then padded by k (`extend_grid`). pykan evaluates that interpolation as a
    least-squares degree-1 KANLayer; the values agree to round-off. grid (in, G+2k+1) ->
    (in, G'+2k+1)."""
    interior = grid[:, k:grid.shape[1] - k]  # (in, G+1)
    n_parent = interior.shape[1] - 1
    u = torch.arange(n_intervals + 1, dtype=grid.dtype, device=grid.device) * n_parent / n_intervals
    left = u.floor().long().clamp(max=n_parent - 1)  # the parent interval of each new knot
    weight = (u - left.to(grid.dtype))[None, :]
    knots = interior[:, left] + weight * (interior[:, left + 1] - interior[:, left])  # (in, G'+1)
    return extend_grid(knots, k)


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
        for layer in self.layers:
            layer.update_grid_from_samples(x)
            x = layer(x)

    @torch.no_grad()
    def extend_grid(self, n_intervals: int, x: Optional[torch.Tensor] = None) -> None:
        """Grid extension of every layer (pykan `refine`); with x, each layer refits on the coarse
        network's activations that reach it."""
        for layer in self.layers:
            inputs = x
            if x is not None:
                x = layer(x)  # activations of the coarse layer feed the next one
            layer.extend_grid(n_intervals, inputs)
