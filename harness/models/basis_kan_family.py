"""What the KAN families on other bases (RBF, Chebyshev, Fourier) share: checks, building a
BasisKAN, stages, records and grid changes. Each family module sets its basis' model class,
config, counts and initialisation; `update_grid` stays the Family default (no basis here follows
the samples)."""
from __future__ import annotations

import math
from typing import Any, Dict, List, Optional

from torch import nn

from harness.models.family import Family


class BasisKANFamily(Family):
    min_grid: int = 1  # the smallest size knob (RBF: 2 centres, for a spacing)
    grid_meaning: str = "grid size"  # what model.grid is, for error messages

    def validate(self, cfg: Any, task: Any) -> None:
        model, require = cfg.model, self.require
        require(model.grid >= self.min_grid,
                f"model.grid={model.grid} ({self.grid_meaning}) must be >= {self.min_grid}")
        for i, g in enumerate(list(cfg.train.grid_schedule)):
            require(g >= self.min_grid, f"train.grid_schedule[{i}]={g} ({self.grid_meaning}) "
                                        f"must be >= {self.min_grid}")
        require(model.base_activation in ("silu", "none"),
                f"model.base_activation={model.base_activation!r}: choose silu or none")

    def layer_kwargs(self, model_cfg: Any) -> Dict[str, Any]:
        """The BasisKANLayer options beyond the basis and grid."""
        return {"base_activation": model_cfg.base_activation, "bias": model_cfg.bias}

    def coef_std(self, d_in: int, n_functions: int) -> float:
        """Initial coefficient scale of a layer (each family's paper's rule)."""
        raise NotImplementedError

    def build(self, model_cfg: Any) -> nn.Module:
        return self.model_cls(list(model_cfg.widths), grid=model_cfg.grid, coef_std=self.coef_std,
                              **self.layer_kwargs(model_cfg))

    def stage_grids(self, cfg: Any) -> List[Optional[int]]:
        """train.grid_schedule (each stage extends the basis), or one stage on model.grid."""
        return list(cfg.train.grid_schedule) or [cfg.model.grid]

    def extend_grid(self, model: nn.Module, grid: int, inputs: Any) -> None:
        model.extend_grid(grid, inputs)


def check_grid_range(require, grid_range) -> None:
    """One-line errors for a [lo, hi] that is not two finite increasing numbers."""
    require(len(grid_range) == 2, f"model.grid_range={list(grid_range)} must be two numbers [lo, hi]")
    lo, hi = grid_range
    require(math.isfinite(lo) and math.isfinite(hi) and lo < hi,
            f"model.grid_range={list(grid_range)} must be finite and increasing")
