"""Grid updates and grid extension (Liu et al. 2024, §2.4; pykan `update_grid`, `refine`) of the
members of a StackedKAN: each layer regrids on the activations that reach it, as in the solo KAN
(`KAN.update_grid_from_samples`, `KAN.extend_grid`). The per-layer rules are harness.splines'
(`Basis.update_grid`, `Basis.extend`), the code the solo layers run, with the model axis: each
member gets its solo regrid (tests/test_ensemble.py).
"""
from __future__ import annotations

from typing import Optional, Sequence

import torch

from harness.ensemble.stacked import StackedKAN


@torch.no_grad()
def update_grid_from_samples(stacked: StackedKAN, x: torch.Tensor,
                             members: Optional[Sequence[int]] = None) -> None:
    """pykan `update_grid_from_samples` for `members` (default all), in place (same shapes, so an
    optimizer holding the parameters keeps working). x (B, d_in) shared by the members."""
    rows = list(range(stacked.n_models)) if members is None else list(members)
    if not rows:
        return
    h = stacked.feature_major(x)
    for layer in stacked.layers:
        layer.update_grid_from_samples(h, rows)
        h = layer(h)  # the regridded layer's activations feed the next one, as in the solo KAN


@torch.no_grad()
def extend_grid(stacked: StackedKAN, n_intervals: int, x: torch.Tensor) -> None:
    """Grid extension of every member to `n_intervals` as pykan `refine` (knots interpolated,
    splines refitted on the layer inputs); coef and knots become new tensors (a new optimizer is
    needed, as in pykan)."""
    h = stacked.feature_major(x)
    for layer in stacked.layers:
        h_next = layer(h)  # the coarse layer's activations feed the next one
        layer.extend_grid(n_intervals, h)
        h = h_next
