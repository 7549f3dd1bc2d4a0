"""Model families by name: FAMILY_REGISTRY maps a family name to its object (harness/models/family.py).

One line per family below; a family defined elsewhere calls `register_family` itself.
"""
from __future__ import annotations

from typing import Any

from torch import nn

from harness.models.family import (FAMILY_REGISTRY, Family, family_of,  # noqa: F401
                                   family_of_model, register_family)
from harness.models.kan_family import KANFamily
from harness.models.mlp_family import MLPFamily

register_family(KANFamily())
register_family(MLPFamily())

MODEL_REGISTRY = FAMILY_REGISTRY  # the older name


def build_model(cfg: Any) -> nn.Module:
    """Build the model named by cfg.family (its family's config dataclass, or an OmegaConf node)."""
    return family_of(cfg).build(cfg)
