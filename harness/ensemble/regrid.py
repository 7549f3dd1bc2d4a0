"""Grid updates and grid extension (Liu et al. 2024, §2.4; pykan `update_grid`, `refine`) of every
member of a StackedKAN at once.

The rules are `KANLayer`'s, input by input: sort the input's samples, put the new knots at
grid_eps * uniform + (1 - grid_eps) * sample percentiles (a grid update, `sample_knots`) or at the
old knots interpolated to the finer grid (grid extension, pykan 0.2.8 `refine`, `refined_knots`),
pad them by k (`extend_grid`), and refit the coefficients by least squares to the old splines'
values on the samples. Here the M*in inputs
of a stacked layer are one batch, and the B-splines come from the pp-form (harness.ensemble.ppform)
instead of the Cox-de Boor recursion: each member gets its solo regrid up to round-off
(tests/test_ensemble.py). Each layer regrids on the activations that reach it, as in the solo KAN.
"""
from __future__ import annotations

from typing import Optional, Sequence

import torch
from torch import nn

from harness.ensemble.ppform import IntervalSearch, interval_origins, pp_conversion, spline_pp_coefficients
from harness.ensemble.stacked import StackedKAN, StackedKANLayer
from harness.models.bspline import extend_grid as pad_knots
from harness.models.kan import refined_knots, sample_knots


def _locate(x: torch.Tensor, grid: torch.Tensor):
    """x (F, B), knots (F, K) -> interval rows j1 and u = x - the interval's origin, (F, B)."""
    j1 = IntervalSearch.of(grid)(x)
    return j1, x - interval_origins(grid).gather(1, j1)


def spline_values(x: torch.Tensor, grid: torch.Tensor, coef: torch.Tensor, k: int) -> torch.Tensor:
    """x (F, B), knots (F, K), coef (F, out, K-k-1) -> each input's splines (F, out, B), by the
    pp-form: k+1 coefficients and Horner's rule per value (a fixed order of the sums)."""
    j1, u = _locate(x, grid)
    pp = spline_pp_coefficients(coef, pp_conversion(grid, k), k)  # (F, out, K+1, k+1)
    index = j1.unsqueeze(1).expand(-1, coef.shape[1], -1)
    total = pp[..., k].gather(2, index)
    for p in range(k - 1, -1, -1):
        total = torch.addcmul(pp[..., p].gather(2, index), total, u.unsqueeze(1))
    return total


def bspline_matrix(x: torch.Tensor, grid: torch.Tensor, k: int) -> torch.Tensor:
    """x (F, B), knots (F, K) -> B-splines (F, B, K-k-1) from the pp-form (0 off the knots)."""
    n_in, batch = x.shape
    k1 = k + 1
    j1, u = _locate(x, grid)
    u = u.unsqueeze(-1)
    index = (j1 * k1 * k1).unsqueeze(-1) + torch.arange(k1 * k1, device=x.device)
    rows = pp_conversion(grid, k).reshape(n_in, -1).gather(1, index.view(n_in, -1)).view(n_in, batch, k1, k1)
    values = rows[..., k]
    for p in range(k - 1, -1, -1):  # Horner in u for the k+1 local B-splines at once
        values = torch.addcmul(rows[..., p], values, u)
    n_basis = grid.shape[1] - k1
    dense = values.new_zeros(n_in, batch, n_basis + 2 * k1)  # k+1 padding columns each side
    dense.scatter_(2, j1.unsqueeze(-1) + torch.arange(k1, device=x.device), values)
    return dense[..., k1:k1 + n_basis]


def _regrid(grid: torch.Tensor, coef: torch.Tensor, x: torch.Tensor, n_intervals: int, k: int,
            grid_eps: float, refine: bool = False):
    """One flattened layer: knots (F, K), coef (F, out, G+k), samples x (B, F) -> new knots
    (F, G'+2k+1) and coef (F, out, G'+k), following `KANLayer.update_grid_from_samples` (or, with
    refine, `KANLayer.extend_grid`) input by input."""
    x_sorted = torch.sort(x, dim=0)[0]  # (B, F)
    if refine:
        new_grid = refined_knots(grid, k, n_intervals)
    else:
        new_grid = pad_knots(sample_knots(x_sorted, n_intervals, grid_eps), k)
    x_sorted = x_sorted.T.contiguous()  # (F, B)
    y = spline_values(x_sorted, grid, coef, k).transpose(1, 2)  # (F, B, out): old splines
    basis = bspline_matrix(x_sorted, new_grid, k)  # (F, B, G'+k)
    if basis.device.type == "cpu":  # minimum-norm least squares, as harness.models.bspline
        solution = torch.linalg.lstsq(basis, y, driver="gelsd").solution
    else:
        solution = torch.linalg.pinv(basis) @ y
    return new_grid, solution.permute(0, 2, 1).contiguous()  # (F, out, G'+k)


def _flat(layer: StackedKANLayer, rows: Sequence[int]):
    n_flat = len(rows) * layer.in_features
    return (layer.grid[rows].reshape(n_flat, -1),
            layer.coef[rows].reshape(n_flat, layer.out_features, -1))


def _samples(h: torch.Tensor, rows: Sequence[int]) -> torch.Tensor:
    """Feature-major activations (M, in, B) of `rows` -> (B, len(rows)*in)."""
    return h[rows].reshape(-1, h.shape[2]).T


@torch.no_grad()
def update_grid_from_samples(stacked: StackedKAN, x: torch.Tensor,
                             members: Optional[Sequence[int]] = None) -> None:
    """pykan `update_grid_from_samples` for `members` (default all), in place (same shapes, so an
    optimizer holding the parameters keeps working). x (B, d_in) shared by the members."""
    rows = list(range(stacked.n_models)) if members is None else list(members)
    if not rows:
        return
    h = stacked._feature_major(x)
    for layer in stacked.layers:
        grid, coef = _regrid(*_flat(layer, rows), _samples(h, rows), layer.n_basis - layer.k,
                             layer.k, layer.grid_eps)
        layer.grid[rows] = grid.view(len(rows), layer.in_features, -1)
        layer.coef[rows] = coef.view(len(rows), layer.in_features, layer.out_features, -1)
        h = layer(h)  # the regridded layer's activations feed the next one, as in the solo KAN


@torch.no_grad()
def extend_grid(stacked: StackedKAN, n_intervals: int, x: torch.Tensor) -> None:
    """Grid extension of every member to `n_intervals` as pykan `refine` (knots interpolated,
    splines refitted on the layer inputs); coef and knots become new tensors (a new optimizer is
    needed, as in pykan)."""
    rows = list(range(stacked.n_models))
    h = stacked._feature_major(x)
    for layer in stacked.layers:
        h_next = layer(h)  # the coarse layer's activations feed the next one
        grid, coef = _regrid(*_flat(layer, rows), _samples(h, rows), n_intervals, layer.k,
                             layer.grid_eps, refine=True)
        layer.grid = grid.view(len(rows), layer.in_features, -1).contiguous()
        layer.coef = nn.Parameter(coef.view(len(rows), layer.in_features, layer.out_features, -1),
                                  requires_grad=layer.coef.requires_grad)
        h = h_next
