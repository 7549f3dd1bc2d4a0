"""Shared test helpers: compose the real configs and shrink them."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import List, Sequence

from hydra import compose, initialize_config_dir
from omegaconf import DictConfig

os.environ.setdefault("WANDB_MODE", "disabled")

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = ROOT / "configs"

# Small and fast: few steps, CPU, wandb off, float64 for exact comparisons.
TINY = ["train.steps_per_stage=3", "train.log_every=1", "wandb.mode=disabled", "task.n_train=200",
        "task.n_test=200"]


def compose_config(overrides: Sequence[str] = (), tmp_path: Path = None) -> DictConfig:
    """The real primary config with overrides, without its hydra node (what run() takes)."""
    extra: List[str] = [f"results_root={tmp_path}"] if tmp_path is not None else []
    with initialize_config_dir(config_dir=str(CONFIGS), version_base="1.3"):
        cfg = compose(config_name="config", overrides=[*TINY, *extra, *overrides])
    return cfg


def run_cli(args: Sequence[str], cwd: Path = ROOT, env=None, timeout: float = 600,
            **kwargs) -> subprocess.CompletedProcess:
    """`python -m harness.run ARGS` in a subprocess (single thread, wandb off unless overridden)."""
    full_env = {**os.environ, "WANDB_MODE": "disabled", **(env or {})}
    return subprocess.run([sys.executable, "-m", "harness.run", *args], cwd=cwd, env=full_env,
                          capture_output=True, text=True, timeout=timeout, **kwargs)


def valid_record(**fields) -> dict:
    """A schema-valid result record (harness.results.RunResult) with `fields` replaced."""
    record = {"run_id": "r0", "status": "done", "error": None, "experiment": "default",
              "family": "mlp", "task": "toy_exp_sin", "seed": 0, "widths": [2, 2, 1], "grid": None,
              "k": None, "n_params": 9, "flops_forward": 30, "flops_forward_basis": 0,
              "flops_forward_matmul": 30, "flops_forward_yu2024": 30, "train_flops": 3000,
              "n_evals": 10, "steps": 3, "n_train": 200, "optimizer": "lbfgs", "lr": 1.0,
              "dtype": "float64", "device": "cpu", "train_rmse": 0.5, "test_rmse": 0.5,
              "test_mse": 0.25, "wall_time_s": 0.1}
    record.update(fields)
    return record
