"""The KAN family (Liu et al. 2024, pykan 0.2.8 semantics): B-spline edges on a grid that grows
stage by stage (train.grid_schedule) and moves to the samples (grid updates)."""
from __future__ import annotations

import math
from typing import Any, Dict, List, Optional, Sequence

from torch import nn

from harness import counting
from harness.config import KANConfig
from harness.models.family import Family
from harness.models.kan import KAN, KANLayer


def _layer_class(implementation: str):
    if implementation == "fast":
        from harness.models.fast_kan import FastKANLayer
        return FastKANLayer
    return KANLayer


class KANFamily(Family):
    name = "kan"
    updates_grid = True
    config_cls = KANConfig
    model_cls = KAN
    stacks = True

    def validate(self, cfg: Any, task: Any) -> None:
        model, require = cfg.model, self.require
        require(model.k >= 1, f"model.k={model.k} must be >= 1 (spline order)")
        require(model.grid >= 1, f"model.grid={model.grid} must be >= 1 interval")
        require(model.grid >= model.k,
                f"model.grid={model.grid} is smaller than the spline order model.k={model.k}; "
                f"use grid >= k")
        for i, g in enumerate(list(cfg.train.grid_schedule)):
            require(g >= model.k, f"train.grid_schedule[{i}]={g} is smaller than model.k={model.k}")
        require(len(model.grid_range) == 2,
                f"model.grid_range={list(model.grid_range)} must be two numbers [lo, hi]")
        lo, hi = model.grid_range
        require(math.isfinite(lo) and math.isfinite(hi) and lo < hi,
                f"model.grid_range={list(model.grid_range)} must be finite and increasing")
        require(model.base_activation in ("silu", "none"),
                f"model.base_activation={model.base_activation!r}: choose silu or none")
        require(math.isfinite(model.noise_scale) and model.noise_scale >= 0,
                f"model.noise_scale={model.noise_scale} must be >= 0 (0 = no initial noise)")
        require(0.0 <= model.grid_eps <= 1.0, f"model.grid_eps={model.grid_eps} must be in [0, 1]")
        require(model.implementation in ("reference", "fast"),
                f"model.implementation={model.implementation!r}: choose reference or fast")
        require(not (model.implementation == "fast" and task.needs_second_derivatives),
                f"task {cfg.task.name} differentiates the model twice, which the fast KAN "
                f"layer does not support: set model.implementation=reference")

    def build(self, model_cfg: Any) -> nn.Module:
        return KAN(list(model_cfg.widths), layer_cls=_layer_class(model_cfg.implementation),
                   grid=model_cfg.grid, k=model_cfg.k, grid_range=list(model_cfg.grid_range),
                   base_activation=model_cfg.base_activation,
                   train_base_weight=model_cfg.train_base_weight,
                   train_spline_weight=model_cfg.train_spline_weight,
                   noise_scale=model_cfg.noise_scale, grid_eps=model_cfg.grid_eps)

    def n_params(self, model_cfg: Any, grid: Optional[int] = None) -> int:
        return counting.kan_n_params(model_cfg, grid)

    def flops_forward(self, model_cfg: Any, grid: Optional[int] = None) -> counting.FlopCount:
        return counting.kan_flops_forward(model_cfg, grid)

    def flops_forward_yu2024(self, model_cfg: Any, grid: Optional[int] = None) -> int:
        return counting.kan_flops_forward_yu2024(model_cfg, grid)

    def stage_grids(self, cfg: Any) -> List[Optional[int]]:
        """train.grid_schedule, or one stage on model.grid."""
        return list(cfg.train.grid_schedule) or [cfg.model.grid]

    def record_fields(self, model_cfg: Any, grid: Optional[int]) -> Dict[str, Any]:
        return {"grid": grid, "k": model_cfg.k}

    def update_grid(self, model: nn.Module, inputs: Any) -> None:
        model.update_grid_from_samples(inputs)  # pykan fit(update_grid=True)

    def extend_grid(self, model: nn.Module, grid: int, inputs: Any) -> None:
        model.extend_grid(grid, inputs)  # pykan `refine`

    def stack(self, models: Sequence[nn.Module], basis: str = "pp") -> nn.Module:
        from harness.ensemble.stacked import StackedKAN
        return StackedKAN(models, basis)
