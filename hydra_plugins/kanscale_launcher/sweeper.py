"""`hydra/sweeper=kanscale`: Hydra's cartesian sweep, plus a union of cartesian grids.

An experiment often needs points that are not one product: KAN shapes per task, MLP widths that
a KAN should not get. `hydra.sweeper.grids` is a list of {key: "v1,v2"} blocks; each block is a
cartesian product, the sweep is their union, and `params` plus the command line apply to all:

    hydra:
      sweeper:
        params: {seed: "0,1,2"}
        grids:
          - {model: kan, model.hidden: "[5],[5,5]"}
          - {model: mlp, model.hidden: "[5],[100]"}

(No `from __future__ import annotations` here: Hydra imports plugins outside sys.modules and
dataclasses then fail to resolve string annotations.)
"""
import itertools
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional

from hydra.core.config_store import ConfigStore
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.plugins import Plugins
from hydra.errors import HydraException
from hydra.plugins.sweeper import Sweeper
from omegaconf import DictConfig, OmegaConf


@dataclass
class KanscaleSweeperConf:
    _target_: str = "hydra_plugins.kanscale_launcher.sweeper.KanscaleSweeper"
    max_batch_size: Optional[int] = None
    params: Optional[Dict[str, str]] = None
    grids: List[Dict[str, str]] = field(default_factory=list)


ConfigStore.instance().store(group="hydra/sweeper", name="kanscale", node=KanscaleSweeperConf,
                             provider="kanscale")


class KanscaleSweeper(Sweeper):
    """Written against Hydra's public Sweeper plugin API (hydra.plugins.sweeper.Sweeper, the
    override parser, Plugins.instantiate_launcher); without `grids` it sweeps as Hydra's basic
    sweeper does (the product of `params` and the command line, a later value of a key replacing
    an earlier one in its place)."""

    def __init__(self, max_batch_size: Optional[int] = None, params: Optional[Dict[str, str]] = None,
                 grids: Optional[List[Dict[str, str]]] = None) -> None:
        super().__init__()
        self.max_batch_size = max_batch_size
        self.params = dict(params or {})
        self.grids = [dict(grid) for grid in (grids or [])]
        self.hydra_context = self.config = self.launcher = None

    def setup(self, *, hydra_context, task_function, config: DictConfig) -> None:
        self.hydra_context, self.config = hydra_context, config
        self.launcher = Plugins.instance().instantiate_launcher(
            hydra_context=hydra_context, task_function=task_function, config=config)

    def _expand(self, assignments: List[str]) -> List[List[str]]:
        """`key=v1,v2 other=x` -> the cartesian product, one list of `key=value` per point."""
        parser = OverridesParser.create(config_loader=self.hydra_context.config_loader)
        values: Dict[str, List[str]] = {}
        for override in parser.parse_overrides(assignments):
            key = override.get_key_element()
            if not override.is_sweep_override():
                values[key] = [f"{key}={override.get_value_element_as_str()}"]
            elif override.is_discrete_sweep():
                values[key] = [f"{key}={value}" for value in override.sweep_string_iterator()]
            else:
                raise HydraException(f"hydra/sweeper=kanscale does not support sweep type "
                                     f"{override.value_type.name} ({key})")
        return [list(point) for point in itertools.product(*values.values())]

    def sweep(self, arguments: List[str]) -> Any:
        common = self._expand([*(f"{k}={v}" for k, v in self.params.items()), *arguments])
        if not self.grids:
            points = common
        else:
            points = []
            for grid in self.grids:
                block = self._expand([f"{key}={value}" for key, value in grid.items()])
                # grid values first, so the command line (applied later) wins on a shared key
                points += [[*grid_point, *base] for grid_point in block for base in common]
        sweep_dir = Path(self.config.hydra.sweep.dir)
        sweep_dir.mkdir(parents=True, exist_ok=True)
        OmegaConf.save(self.config, sweep_dir / "multirun.yaml")
        size = self.max_batch_size if self.max_batch_size not in (None, -1) else len(points)
        returns = []
        for first in range(0, len(points), max(size, 1)):
            batch = points[first:first + size]
            if not getattr(self.launcher, "checks_every_point", False):
                self.validate_batch_is_legal(batch)  # our launchers compose and check every point
            results = self.launcher.launch(batch, initial_job_idx=first)
            for result in results:
                _ = result.return_value  # re-raises what a job raised (our runs record failures)
            returns.append(results)
        return returns
