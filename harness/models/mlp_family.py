"""The MLP family: the KAN's interface (widths, stages, records) without a grid."""
from __future__ import annotations

from typing import Any, Optional, Sequence

from torch import nn

from harness import counting
from harness.config import MLPConfig
from harness.models.family import Family
from harness.models.mlp import ACTIVATIONS, MLP


class MLPFamily(Family):
    name = "mlp"
    config_cls = MLPConfig
    model_cls = MLP
    stacks = True

    def validate(self, cfg: Any, task: Any) -> None:
        model = cfg.model
        self.require(model.activation in ACTIVATIONS,
                     f"model.activation={model.activation!r}: choose one of {sorted(ACTIVATIONS)}")

    def build(self, model_cfg: Any) -> nn.Module:
        return MLP(list(model_cfg.widths), activation=model_cfg.activation, bias=model_cfg.bias)

    def n_params(self, model_cfg: Any, grid: Optional[int] = None) -> int:
        return counting.mlp_n_params(model_cfg, grid)

    def flops_forward(self, model_cfg: Any, grid: Optional[int] = None) -> counting.FlopCount:
        return counting.mlp_flops_forward(model_cfg, grid)

    def flops_forward_yu2024(self, model_cfg: Any, grid: Optional[int] = None) -> int:
        return counting.mlp_flops_forward_yu2024(model_cfg, grid)

    def stack(self, models: Sequence[nn.Module], basis: str = "pp") -> nn.Module:
        from harness.ensemble.stacked import StackedMLP
        return StackedMLP(models)
