"""Model registry: a family name -> a builder taking the family's config."""
from __future__ import annotations

from typing import Any, Callable, Dict

from torch import nn

from harness.models.kan import KAN, KANLayer
from harness.models.mlp import MLP


def _layer_class(implementation: str):
    if implementation == "fast":
        from harness.models.fast_kan import FastKANLayer
        return FastKANLayer
    return KANLayer


def build_kan(cfg: Any) -> nn.Module:
    return KAN(list(cfg.widths), layer_cls=_layer_class(cfg.implementation), grid=cfg.grid, k=cfg.k,
               grid_range=list(cfg.grid_range), base_activation=cfg.base_activation,
               train_base_weight=cfg.train_base_weight,
               train_spline_weight=cfg.train_spline_weight, noise_scale=cfg.noise_scale,
               grid_eps=cfg.grid_eps)


def build_mlp(cfg: Any) -> nn.Module:
    return MLP(list(cfg.widths), activation=cfg.activation, bias=cfg.bias)


MODEL_REGISTRY: Dict[str, Callable[[Any], nn.Module]] = {
    "kan": build_kan,
    "mlp": build_mlp,
}


def build_model(cfg: Any) -> nn.Module:
    """Build the model named by cfg.family (a KANConfig or MLPConfig, or an OmegaConf node)."""
    return MODEL_REGISTRY[cfg.family](cfg)
