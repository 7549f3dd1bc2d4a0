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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional

from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
from hydra.core.config_store import ConfigStore
from hydra.core.override_parser.overrides_parser import OverridesParser
from omegaconf import OmegaConf


@dataclass
class KanscaleSweeperConf:
    _target_: str = "hydra_plugins.kanscale_launcher.sweeper.KanscaleSweeper"
    max_batch_size: Optional[int] = None
    params: Optional[Dict[str, str]] = None
    grids: List[Dict[str, str]] = field(default_factory=list)


ConfigStore.instance().store(group="hydra/sweeper", name="kanscale", node=KanscaleSweeperConf,
                             provider="kanscale")


class KanscaleSweeper(BasicSweeper):
    def __init__(self, max_batch_size: Optional[int] = None, params: Optional[Dict[str, str]] = None,
                 grids: Optional[List[Dict[str, str]]] = None) -> None:
        super().__init__(max_batch_size=max_batch_size, params=params)
        self.grids = [dict(grid) for grid in (grids or [])]

    def _expand(self, assignments: List[str]) -> List[List[str]]:
        parser = OverridesParser.create(config_loader=self.hydra_context.config_loader)
        return self.split_arguments(parser.parse_overrides(assignments), None)[0]

    def sweep(self, arguments: List[str]):
        if not self.grids:
            return super().sweep(arguments)
        common = self._expand([*self._parse_config(), *arguments])  # product of params + CLI
        points: List[List[str]] = []
        for grid in self.grids:
            block = self._expand([f"{key}={value}" for key, value in grid.items()])
            # grid values first, so the command line (applied later) wins on a shared key
            points += [[*grid_point, *base] for grid_point in block for base in common]
        sweep_dir = Path(self.config.hydra.sweep.dir)
        sweep_dir.mkdir(parents=True, exist_ok=True)
        OmegaConf.save(self.config, sweep_dir / "multirun.yaml")
        size = self.max_batch_size if self.max_batch_size not in (None, -1) else len(points)
        returns = []
        for first in range(0, len(points), size):
            batch = points[first:first + size]
            self.validate_batch_is_legal(batch)
            results = self.launcher.launch(batch, initial_job_idx=first)
            for result in results:
                _ = result.return_value  # re-raises what a job raised (our runs record failures)
            returns.append(results)
        return returns
