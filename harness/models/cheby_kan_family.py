"""The Chebyshev KAN family (SS, Sindhu et al. 2024, "Chebyshev Polynomial-Based
Kolmogorov-Arnold Networks", arXiv 2405.07200): phi(x) = sum_{d=0..D} c_d T_d(tanh x).

model.grid is the degree D. Defaults follow ChebyKAN: no base branch and no bias (T_0 = 1 gives
each edge a constant), coefficients ~ N(0, 1 / (d_in (D + 1))^2). A degree extension
(train.grid_schedule) appends T_{D+1..D'} with zero coefficients: the function is unchanged
exactly. Chebyshev polynomials have no grid to move, so there is no grid update.
"""
from __future__ import annotations

from typing import Any, Optional

from harness import counting
from harness.config import ChebyKANConfig
from harness.models.basis_kan import BasisKAN
from harness.models.basis_kan_family import BasisKANFamily
from harness.splines import Chebyshev


class ChebyKAN(BasisKAN):
    basis = Chebyshev()


class ChebyKANFamily(BasisKANFamily):
    name = "cheby_kan"
    extension_refits = False  # zero coefficients for the new degrees: exact
    config_cls = ChebyKANConfig
    model_cls = ChebyKAN
    grid_meaning = "the Chebyshev degree D"

    def coef_std(self, d_in: int, n_functions: int) -> float:
        return 1.0 / (d_in * n_functions)  # ChebyKAN: normal_(0, 1 / (input_dim * (degree + 1)))

    def n_params(self, model_cfg: Any, grid: Optional[int] = None) -> int:
        return counting.cheby_kan_n_params(model_cfg, grid)

    def flops_forward(self, model_cfg: Any, grid: Optional[int] = None) -> counting.FlopCount:
        return counting.cheby_kan_flops_forward(model_cfg, grid)

    def flops_forward_yu2024(self, model_cfg: Any, grid: Optional[int] = None) -> int:
        return counting.cheby_kan_flops_forward_yu2024(model_cfg, grid)
