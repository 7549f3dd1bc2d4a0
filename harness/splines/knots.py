"""Knot padding, shared by every B-spline strategy (dense, local, pp-form)."""
from __future__ import annotations

import torch


def pad_knots(grid: torch.Tensor, k: int) -> torch.Tensor:
    """Pad knot rows (..., G+1) by k knots each side at the mean spacing -> (..., G+2k+1).

    Same rule as pykan's `extend_grid`: h = (last - first) / G, also for non-uniform grids.
    """
    h = (grid[..., -1:] - grid[..., :1]) / (grid.shape[-1] - 1)
    steps = torch.arange(1, k + 1, dtype=grid.dtype, device=grid.device)
    left = grid[..., :1] - h * steps.flip(0)
    right = grid[..., -1:] + h * steps
    return torch.cat([left, grid, right], dim=-1)
