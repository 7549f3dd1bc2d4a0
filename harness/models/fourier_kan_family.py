"""The Fourier KAN family (Xu et al. 2024, FourierKAN-GCF, arXiv 2406.01034; the FourierKAN
layer): phi(x) = sum_{k=1..K} a_k cos(kx) + b_k sin(kx), plus an output bias.

model.grid is K. Defaults follow FourierKAN: bias on (`addbias`), no base branch, coefficients
~ N(0, 1 / (d_in K)) (randn / (sqrt(d_in) sqrt(K))). Extending K -> K' (train.grid_schedule) adds
frequencies with zero coefficients: exact. No grid update (the frequencies are fixed).
"""
from __future__ import annotations

from typing import Any, Optional

from harness import counting
from harness.config import FourierKANConfig
from harness.models.basis_kan import BasisKAN
from harness.models.basis_kan_family import BasisKANFamily
from harness.splines import Fourier


class FourierKAN(BasisKAN):
    basis = Fourier()


class FourierKANFamily(BasisKANFamily):
    name = "fourier_kan"
    extension_refits = False  # zero coefficients for the new frequencies: exact
    config_cls = FourierKANConfig
    model_cls = FourierKAN
    grid_meaning = "Fourier frequencies K"

    def coef_std(self, d_in: int, n_functions: int) -> float:
        # FourierKAN: randn(2, out, in, K) / (sqrt(in) * sqrt(K)), with n = 2K functions
        return 1.0 / (d_in * n_functions / 2) ** 0.5

    def n_params(self, model_cfg: Any, grid: Optional[int] = None) -> int:
        return counting.fourier_kan_n_params(model_cfg, grid)

    def flops_forward(self, model_cfg: Any, grid: Optional[int] = None) -> counting.FlopCount:
        return counting.fourier_kan_flops_forward(model_cfg, grid)

    def flops_forward_yu2024(self, model_cfg: Any, grid: Optional[int] = None) -> int:
        return counting.fourier_kan_flops_forward_yu2024(model_cfg, grid)
