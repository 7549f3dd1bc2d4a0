"""Continual learning on five Gaussian peaks (Liu et al. 2024, §3.5, Fig. 3.4).

Target on [-1, 1]: f(x) = sum_i exp(-300 (x - c_i)^2), centres c_i = -0.8, -0.4, 0, 0.4, 0.8 (the
setup of pykan's continual-learning tutorial that produced Fig. 3.4: width sigma = 1/sqrt(600) ~
0.041). [-1, 1] is cut into five equal regions [c_i - 0.2, c_i + 0.2), one peak each; training
points are uniform on [-1, 1] (as every task here) and stage s trains only on the points of the
regions of stage s (one region per stage with five stages). The paper's KAN is [1, 1] with G = 200,
w_b and w_s frozen and no grid updates, so only spline coefficients near the data move.

Forgetting is measured at the end of every stage on the regions trained in earlier stages.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import ClassVar, Dict, List, Optional

import numpy as np
import torch

from harness.tasks import register
from harness.tasks.base import Dataset, Task, box, make_dataset

N_PEAKS = 5
CENTRES = tuple(-0.8 + 0.4 * i for i in range(N_PEAKS))  # evenly spaced, one per region
SHARPNESS = 300.0  # exp(-300 (x - c)^2), pykan's continual-learning tutorial (Fig. 3.4)


def peaks(x: np.ndarray) -> np.ndarray:
    """f(x) = sum_i exp(-300 (x - c_i)^2) (§3.5, Fig. 3.4): (n, 1) float64 -> (n,)."""
    return sum(np.exp(-SHARPNESS * (x[:, 0] - c) ** 2) for c in CENTRES)


def region_of(x: torch.Tensor, n_regions: int = N_PEAKS) -> torch.Tensor:
    """Region index of each x in [-1, 1] (n, 1) -> (n,) long; region r = [-1 + r w, -1 + (r+1) w)."""
    width = 2.0 / n_regions
    return torch.clamp(torch.floor((x[:, 0] + 1) / width), 0, n_regions - 1).long()


def regions_of_stage(stage: int, n_stages: int, n_regions: int = N_PEAKS) -> List[int]:
    """The regions trained in `stage`: the regions split into n_stages contiguous equal groups."""
    if not 1 <= n_stages <= n_regions or n_regions % n_stages:
        raise ValueError(f"continual learning over {n_regions} regions needs a number of stages "
                         f"that divides {n_regions} (got {n_stages}); set train.grid_schedule "
                         f"to {n_regions} entries, e.g. [200, 200, 200, 200, 200]")
    per_stage = n_regions // n_stages
    return list(range(stage * per_stage, (stage + 1) * per_stage))


def forgetting_of(region_rmse: List[float], stage: int, n_stages: int) -> float:
    """Mean RMSE over the regions trained in stages before `stage`; NaN in the first stage."""
    seen = [r for s in range(stage) for r in regions_of_stage(s, n_stages, len(region_rmse))]
    return float(np.mean([region_rmse[r] for r in seen])) if seen else math.nan


@dataclass(frozen=True)
class ContinualTask(Task):
    """Task hooks for region-by-region training; extras hold each point's region."""
    n_regions: int = N_PEAKS
    default_n_train: ClassVar[int] = 500  # 100 per region, as the paper's 5 x 100 samples

    def make_dataset(self, n_train: int, n_test: int, seed: int, dtype: torch.dtype,
                     device: Optional[torch.device]) -> Dataset:
        data = make_dataset(self, n_train, n_test, seed, dtype, device)
        extras = {"train_region": region_of(data.train_input, self.n_regions),  # (n_train,)
                  "test_region": region_of(data.test_input, self.n_regions)}  # (n_test,)
        return dataclasses.replace(data, extras=extras)

    def stage_indices(self, data: Dataset, stage: int, n_stages: int) -> Optional[torch.Tensor]:
        regions = regions_of_stage(stage, n_stages, self.n_regions)
        in_stage = torch.isin(data.extras["train_region"],
                              torch.tensor(regions, device=data.train_input.device))
        return torch.nonzero(in_stage).flatten()  # (n_stage_points,)

    @torch.no_grad()
    def metrics(self, model: torch.nn.Module, data: Dataset, stage: int,
                n_stages: int) -> Dict[str, float]:
        """rmse_region_r on the test points of region r; forgetting = mean of rmse_region_r over
        the regions trained in earlier stages (NaN in the first stage)."""
        squared = ((model(data.test_input) - data.test_label) ** 2)[:, 0]  # (n_test,)
        region_rmse = []
        for r in range(self.n_regions):
            in_region = data.extras["test_region"] == r
            region_rmse.append(float(torch.sqrt(squared[in_region].mean())) if in_region.any()
                               else math.nan)
        out = {f"rmse_region_{r}": value for r, value in enumerate(region_rmse)}
        out["forgetting"] = forgetting_of(region_rmse, stage, n_stages)
        return out


CONTINUAL_PEAKS = register(ContinualTask(
    "continual_peaks", 1, 1, peaks, box(1),
    "f(x) = sum_{c in -0.8,-0.4,0,0.4,0.8} exp(-300 (x - c)^2), one region of [-1, 1] per stage"))
