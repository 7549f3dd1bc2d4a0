"""A model family is one object: its config schema, checks, builder, counts, stages and stacking.

The registry maps a family name (the YAML's `family:` and the record's `family`) to its object.
Adding a family is one module with a `Family` subclass, one `register_family(...)` line and one
YAML in configs/model/ (README "Extending"); nothing else in the harness names a family.
"""
from __future__ import annotations

from typing import Any, Dict, List, Optional, Sequence

from torch import nn

from harness.config import ConfigError
from harness.counting import FlopCount


class Family:
    """Defaults fit a family with no grid and no stacked training (an MLP-like model).

    `cfg` below is the whole run config (RunConfig or its OmegaConf node) where a method needs
    more than the model; `model_cfg` is `cfg.model` (the family's dataclass or its node).
    """
    name: str = ""
    config_cls: type = object  # the dataclass its YAML extends (`defaults: [/schema_<name>]`)
    model_cls: Optional[type] = None  # the nn.Module `build` returns (stacking picks by it)
    # run_many packs several runs of the family in one stack (a fused stack: KAN, MLP); every
    # family trains through `stack` (a solo run is a stack of one), by default the member loop.
    stacks: bool = False
    # What grid changes cost, for train_flops: a grid update evaluates the model on the stage's
    # inputs (pykan fit(update_grid=True)) only where the grid follows the samples; an extension
    # evaluates it only where it refits (pykan `refine`), not where it pads coefficients exactly.
    updates_grid: bool = False
    extension_refits: bool = True

    @staticmethod
    def require(ok: bool, message: str) -> None:
        """One-line ConfigError, as harness.config.validate reports."""
        if not ok:
            raise ConfigError(message)

    def validate(self, cfg: Any, task: Any) -> None:
        """Family-specific checks of cfg.model (and its fit with the task); the common ones
        (widths, schedule order, task d_in/d_out) are harness.config.validate's."""

    def build(self, model_cfg: Any) -> nn.Module:
        raise NotImplementedError

    def n_params(self, model_cfg: Any, grid: Optional[int] = None) -> int:
        raise NotImplementedError

    def flops_forward(self, model_cfg: Any, grid: Optional[int] = None) -> FlopCount:
        raise NotImplementedError

    def flops_forward_yu2024(self, model_cfg: Any, grid: Optional[int] = None) -> int:
        """Yu et al. 2024's convention; a family they did not count uses ours (its total)."""
        return self.flops_forward(model_cfg, grid).total

    def stage_grids(self, cfg: Any) -> List[Optional[int]]:
        """Grid per stage; a family without a grid gets one None per stage (the same stages and
        steps as a KAN with the same train.grid_schedule)."""
        return [None] * max(1, len(list(cfg.train.grid_schedule)))

    def record_fields(self, model_cfg: Any, grid: Optional[int]) -> Dict[str, Any]:
        """What the run record says about the family's shape beyond widths: grid and k."""
        return {"grid": grid, "k": None}

    def update_grid(self, model: nn.Module, inputs: Any) -> None:
        """Move the grid to the samples (pykan fit(update_grid=True)); nothing without a grid."""

    def extend_grid(self, model: nn.Module, grid: int, inputs: Any) -> None:
        """Refine onto `grid` intervals (pykan `refine`); nothing without a grid."""

    def stack(self, models: Sequence[nn.Module], basis: str = "pp") -> nn.Module:
        """M solo models as one module with stacked parameters (M, ...), x -> (M, B, d_out), with
        write_member, update_grid_from_samples and extend_grid: by default a loop over the members'
        solo modules (harness.ensemble.member_stack); `basis` is for fused stacks."""
        from harness.ensemble.member_stack import MemberStack
        return MemberStack(self, models)


FAMILY_REGISTRY: Dict[str, Family] = {}


def register_family(family: Family) -> Family:
    """Add `family` under family.name and store its config schema as `schema_<name>` in Hydra's
    ConfigStore (for its YAML's defaults list). Registering a name again replaces it."""
    from harness.config import store_family_schema
    if not family.name:
        raise ValueError(f"{type(family).__name__} has no name")
    FAMILY_REGISTRY[family.name] = family
    store_family_schema(family.name, family.config_cls)
    return family


def family_of(model_cfg: Any) -> Family:
    """The family object of a model config (by its `family` field)."""
    name = model_cfg.family
    if name not in FAMILY_REGISTRY:
        raise ValueError(f"model.family={name!r} is unknown; choose one of {sorted(FAMILY_REGISTRY)}")
    return FAMILY_REGISTRY[name]


def family_of_model(model: nn.Module) -> Family:
    """The family whose model_cls `model` is (for code that holds models, not configs)."""
    for family in FAMILY_REGISTRY.values():
        if family.model_cls is not None and isinstance(model, family.model_cls):
            return family
    raise TypeError(f"no registered family builds a {type(model).__name__}")
