"""The spline-activation MLP family (Yu et al. 2024, arXiv 2407.16674 §4; the model and its
choices: harness/models/spline_mlp.py). Its per-unit B-splines grow with train.grid_schedule
(least-squares refit, as the KAN's `refine`) and follow the samples (the KAN's grid update)."""
from __future__ import annotations

import math
from typing import Any, Dict, List, Optional

from torch import nn

from harness import counting
from harness.config import SplineMLPConfig
from harness.models.basis_kan_family import check_grid_range
from harness.models.family import Family
from harness.models.spline_mlp import SplineMLP


class SplineMLPFamily(Family):
    name = "spline_mlp"
    updates_grid = True
    config_cls = SplineMLPConfig
    model_cls = SplineMLP

    def validate(self, cfg: Any, task: Any) -> None:
        model, require = cfg.model, self.require
        widths = list(model.widths)
        require(len(widths) >= 3, f"model.widths={widths} has no hidden layer, so no spline "
                                  f"activation: give at least [d_in, h, d_out]")
        require(model.k >= 1, f"model.k={model.k} must be >= 1 (spline order)")
        require(model.grid >= model.k,
                f"model.grid={model.grid} is smaller than the spline order model.k={model.k}; "
                f"use grid >= k")
        for i, g in enumerate(list(cfg.train.grid_schedule)):
            require(g >= model.k, f"train.grid_schedule[{i}]={g} is smaller than model.k={model.k}")
        check_grid_range(require, model.grid_range)
        require(model.base_activation in ("silu", "none"),
                f"model.base_activation={model.base_activation!r}: choose silu or none")
        require(math.isfinite(model.noise_scale) and model.noise_scale >= 0,
                f"model.noise_scale={model.noise_scale} must be >= 0 (0 = no initial noise)")
        require(0.0 <= model.grid_eps <= 1.0, f"model.grid_eps={model.grid_eps} must be in [0, 1]")

    def build(self, model_cfg: Any) -> nn.Module:
        return SplineMLP(list(model_cfg.widths), bias=model_cfg.bias, grid=model_cfg.grid,
                         k=model_cfg.k, grid_range=list(model_cfg.grid_range),
                         base_activation=model_cfg.base_activation,
                         noise_scale=model_cfg.noise_scale, grid_eps=model_cfg.grid_eps)

    def n_params(self, model_cfg: Any, grid: Optional[int] = None) -> int:
        return counting.spline_mlp_n_params(model_cfg, grid)

    def flops_forward(self, model_cfg: Any, grid: Optional[int] = None) -> counting.FlopCount:
        return counting.spline_mlp_flops_forward(model_cfg, grid)

    def flops_forward_yu2024(self, model_cfg: Any, grid: Optional[int] = None) -> int:
        return counting.spline_mlp_flops_forward_yu2024(model_cfg, grid)

    def stage_grids(self, cfg: Any) -> List[Optional[int]]:
        """train.grid_schedule, or one stage on model.grid (as the KAN)."""
        return list(cfg.train.grid_schedule) or [cfg.model.grid]

    def record_fields(self, model_cfg: Any, grid: Optional[int]) -> Dict[str, Any]:
        return {"grid": grid, "k": model_cfg.k}

    def update_grid(self, model: nn.Module, inputs: Any) -> None:
        model.update_grid_from_samples(inputs)  # the KAN's grid update, per hidden unit

    def extend_grid(self, model: nn.Module, grid: int, inputs: Any) -> None:
        model.extend_grid(grid, inputs)  # the KAN's `refine`, per hidden unit
