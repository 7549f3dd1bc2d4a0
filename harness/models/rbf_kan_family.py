"""The Gaussian-RBF KAN family: FastKAN (Li 2024, "Kolmogorov-Arnold Networks are Radial Basis
Function Networks", arXiv 2405.06721), phi(x) = sum_i w_i exp(-((x - c_i) / h)^2) with G centres
uniform on grid_range and h their spacing.

Choices (FastKAN's layer: LayerNorm -> RBF -> Linear, plus base_linear(silu(x)) with a bias):
- the SiLU base branch and the output bias are on by default (FastKAN's `use_base_update` and
  `base_linear`'s bias), as w_b (in, out) and a bias (out,);
- the LayerNorm is off by default (`layer_norm: true` turns it on): over d_in features it leaves
  d_in - 1 degrees of freedom, and for the d_in = 2 inputs of the harness's symbolic tasks only the
  sign of x1 - x2 (both normalised values are +-1), so it is refused for any layer with d_in < 3;
- coefficients ~ N(0, 0.1^2) (FastKAN's spline_weight_init_scale = 0.1);
- grid extension (train.grid_schedule) puts more centres on the same range and refits by least
  squares (close, not exact); the centres never follow the samples (no grid update).
"""
from __future__ import annotations

from typing import Any, Dict, Optional

from harness import counting
from harness.config import RBFKANConfig
from harness.models.basis_kan import BasisKAN
from harness.models.basis_kan_family import BasisKANFamily, check_grid_range
from harness.splines import GaussianRBF


class RBFKAN(BasisKAN):
    basis = GaussianRBF()


class RBFKANFamily(BasisKANFamily):
    name = "rbf_kan"
    config_cls = RBFKANConfig
    model_cls = RBFKAN
    min_grid = 2
    grid_meaning = "Gaussian centres per input"

    def validate(self, cfg: Any, task: Any) -> None:
        super().validate(cfg, task)
        model = cfg.model
        check_grid_range(self.require, model.grid_range)
        widths = list(model.widths)
        self.require(not model.layer_norm or min(widths[:-1]) >= 3,
                     f"model.layer_norm=true with widths={widths}: a LayerNorm over d_in < 3 "
                     f"inputs leaves only their signs; set model.layer_norm=false")

    def layer_kwargs(self, model_cfg: Any) -> Dict[str, Any]:
        return {**super().layer_kwargs(model_cfg), "grid_range": list(model_cfg.grid_range),
                "layer_norm": model_cfg.layer_norm}

    def coef_std(self, d_in: int, n_functions: int) -> float:
        return 0.1  # FastKAN: trunc_normal_(std=spline_weight_init_scale = 0.1)

    def n_params(self, model_cfg: Any, grid: Optional[int] = None) -> int:
        return counting.rbf_kan_n_params(model_cfg, grid)

    def flops_forward(self, model_cfg: Any, grid: Optional[int] = None) -> counting.FlopCount:
        return counting.rbf_kan_flops_forward(model_cfg, grid)

    def flops_forward_yu2024(self, model_cfg: Any, grid: Optional[int] = None) -> int:
        return counting.rbf_kan_flops_forward_yu2024(model_cfg, grid)
