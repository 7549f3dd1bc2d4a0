"""B-spline bases on per-input knot vectors (pykan 0.2.8 semantics, `kan/spline.py`).

A grid of G intervals on [a, b] is padded by k knots on each side (spacing h = (b - a) / G), so
each input has G + 2k + 1 knots and G + k basis functions of order k.
"""
from __future__ import annotations

import torch


def extend_grid(grid: torch.Tensor, k: int) -> torch.Tensor:
    """Pad a (in, G+1) knot vector by k knots each side at the mean spacing -> (in, G+2k+1).

    Same rule as pykan's `extend_grid`: h = (last - first) / G, also for non-uniform grids.
    """
    h = (grid[:, -1:] - grid[:, :1]) / (grid.shape[1] - 1)
    steps = torch.arange(1, k + 1, dtype=grid.dtype, device=grid.device)
    left = grid[:, :1] - h * steps.flip(0)
    right = grid[:, -1:] + h * steps
    return torch.cat([left, grid, right], dim=1)


def uniform_grid(in_dim: int, n_intervals: int, k: int, lo: float, hi: float,
                 dtype=None, device=None) -> torch.Tensor:
    """Knots of a uniform grid of `n_intervals` on [lo, hi], padded by k -> (in, G+2k+1)."""
    base = torch.linspace(lo, hi, n_intervals + 1, dtype=dtype, device=device)
    return extend_grid(base[None, :].expand(in_dim, -1), k)


def bspline_basis(x: torch.Tensor, grid: torch.Tensor, k: int) -> torch.Tensor:
    """Cox-de Boor recursion (de Boor 1978, ch. IX): x (B, in), grid (in, G+2k+1) -> (B, in, G+k).

    Level 0 is the indicator of [t_i, t_{i+1}) (half-open, as pykan). Degenerate knot spans give
    0/0 which is set to 0, as pykan's `nan_to_num` does.
    """
    assert x.dim() == 2 and grid.dim() == 2 and x.shape[1] == grid.shape[0], (x.shape, grid.shape)
    xe = x.unsqueeze(-1)  # (B, in, 1)
    t = grid.unsqueeze(0)  # (1, in, G+2k+1)
    value = ((xe >= t[:, :, :-1]) & (xe < t[:, :, 1:])).to(x.dtype)  # (B, in, G+2k)
    for j in range(1, k + 1):
        left = (xe - t[:, :, : -(j + 1)]) / (t[:, :, j:-1] - t[:, :, : -(j + 1)])
        right = (t[:, :, j + 1:] - xe) / (t[:, :, j + 1:] - t[:, :, 1:-j])
        value = left * value[:, :, :-1] + right * value[:, :, 1:]
        value = torch.nan_to_num(value)
    return value


def spline_values(x: torch.Tensor, grid: torch.Tensor, coef: torch.Tensor, k: int) -> torch.Tensor:
    """Evaluate every edge's spline: x (B, in), coef (in, out, G+k) -> (B, in, out)."""
    return torch.einsum("bin,ion->bio", bspline_basis(x, grid, k), coef)


def fit_coefficients(x: torch.Tensor, y: torch.Tensor, grid: torch.Tensor, k: int) -> torch.Tensor:
    """Least-squares coefficients so that the splines pass through samples (pykan `curve2coef`).

    x (B, in), y (B, in, out), grid (in, G+2k+1) -> coef (in, out, G+k). Deviation from pykan:
    one solve per input with `out` right-hand sides instead of one per edge (same minimiser, the
    design matrix depends only on the input), and a minimum-norm solver (gelsd on CPU, pinv on
    CUDA) so that basis functions no sample touches get coefficient 0 instead of an error.
    """
    basis = bspline_basis(x, grid, k).permute(1, 0, 2)  # (in, B, G+k)
    rhs = y.permute(1, 0, 2)  # (in, B, out)
    if basis.device.type == "cpu":
        coef = torch.linalg.lstsq(basis, rhs, driver="gelsd").solution  # (in, G+k, out)
    else:
        coef = torch.linalg.pinv(basis) @ rhs
    return coef.permute(0, 2, 1).contiguous()
