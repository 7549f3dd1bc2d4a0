"""Hydra entry point: compose the config, call `run(cfg)`. Nothing else lives here.

    python -m harness.run model=kan task=toy_exp_sin train.grid_schedule=[3,5,10]
    python -m harness.run -m experiment=quickstart          # a sweep; see configs/experiment/
    python -m harness.run --help                             # config groups and options
"""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, Dict

import hydra
from omegaconf import DictConfig, OmegaConf

from harness.config import ConfigError
from harness.train import RunInterrupted, run


def job_config(cfg: DictConfig) -> DictConfig:
    """The run's config without Hydra's own node (present in configs composed by a launcher)."""
    cfg = OmegaConf.masked_copy(cfg, [k for k in cfg.keys() if k != "hydra"]) if "hydra" in cfg else cfg
    return cfg


def run_and_summarize(cfg: DictConfig) -> Dict[str, Any]:
    """Run one sweep point; return what a launcher prints in its summary."""
    result = run(job_config(cfg))
    return {"run_id": result.run_id, "status": result.status, "error": result.error,
            "test_rmse": result.test_rmse, "n_params": result.n_params,
            "wall_time_s": result.wall_time_s,
            "run_dir": str(Path(cfg.results_root) / result.run_id)}


@hydra.main(version_base="1.3", config_path="../configs", config_name="config")
def main(cfg: DictConfig) -> Dict[str, Any]:
    try:
        return run_and_summarize(cfg)
    except ConfigError as exc:
        print(f"kanscale: config error: {exc}", file=sys.stderr)
        sys.exit(2)
    except RunInterrupted as exc:
        print(f"kanscale: interrupted: {exc}", file=sys.stderr)
        sys.exit(3)


if __name__ == "__main__":
    main()
