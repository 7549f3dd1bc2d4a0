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
from harness.models.spline_mlp_family import SplineMLPFamily
from harness.models.rbf_kan_family import RBFKANFamily
from harness.models.cheby_kan_family import ChebyKANFamily
from harness.models.fourier_kan_family import FourierKANFamily

register_family(KANFamily())
register_family(MLPFamily())
register_family(SplineMLPFamily())
register_family(RBFKANFamily())
register_family(ChebyKANFamily())
register_family(FourierKANFamily())

MODEL_REGISTRY = FAMILY_REGISTRY  # the older name


def build_model(cfg: Any) -> nn.Module:
    """Build the model named by cfg.family (its family's config dataclass, or an OmegaConf node)."""
    return family_of(cfg).build(cfg)
