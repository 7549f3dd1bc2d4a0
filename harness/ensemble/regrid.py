"""Grid updates and grid extension (Liu et al. 2024, §2.4; pykan `update_grid`, `refine`) of a
StackedKAN, as functions for the stack trainer: thin re-exports of `StackedKAN`'s methods, which
run the solo KAN's network loop (`harness.models.kan.update_layer_grids`, `extend_layer_grids`)
over layers whose rules are harness.splines' (`Basis.update_grid`, `Basis.extend`), the code the
solo layers run, with the model axis: each member gets its solo regrid (tests/test_ensemble.py).
"""
from __future__ import annotations

from typing import Optional, Sequence

import torch

from harness.ensemble.stacked import StackedKAN


def update_grid_from_samples(stacked: StackedKAN, x: torch.Tensor,
                             members: Optional[Sequence[int]] = None) -> None:
    """`StackedKAN.update_grid_from_samples`: pykan `update_grid` for `members` (default all)."""
    stacked.update_grid_from_samples(x, members)


def extend_grid(stacked: StackedKAN, n_intervals: int, x: torch.Tensor) -> None:
    """`StackedKAN.extend_grid`: pykan `refine` of every member to `n_intervals`."""
    stacked.extend_grid(n_intervals, x)
