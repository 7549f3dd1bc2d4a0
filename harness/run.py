"""Hydra entry point: compose the config, call `run(cfg)`. Nothing else lives here.

    python -m harness.run model=kan task=toy_exp_sin train.grid_schedule=[3,5,10]
    python -m harness.run -m experiment=quickstart          # a sweep; see configs/experiment/
    python -m harness.run --help                             # config groups and options

Exit codes (README "Exit codes"): 0 the run ended done or diverged (a sweep: every point did);
1 the run failed (its record and error.log say why); 2 a config error, nothing ran; 3 interrupted
(SIGTERM/SIGUSR1), re-run to resume; 4 a sweep with a point that failed or has no valid record;
5 the run (or some sweep points, none failed) is claimed by another live launcher.
"""
from __future__ import annotations

import math
import sys
from pathlib import Path
from typing import Any, Dict, Optional

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.experimental.callback import Callback
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf

from harness.claim import RunClaimed
from harness.config import ConfigError, check_results_root, resolve, validate
from harness.stop import StopRequest, on_signals
from harness.sweep import sweep_exit_code
from harness.train import RunInterrupted, run


def job_config(cfg: DictConfig) -> DictConfig:
    """The run's config without Hydra's own node (present in configs composed by a launcher)."""
    cfg = OmegaConf.masked_copy(cfg, [k for k in cfg.keys() if k != "hydra"]) if "hydra" in cfg else cfg
    return cfg


EXIT_FAILED, EXIT_CONFIG, EXIT_INTERRUPTED, EXIT_CLAIMED = 1, 2, 3, 5


def run_and_summarize(cfg: DictConfig, stop: Optional[StopRequest] = None) -> Dict[str, Any]:
    """Run one sweep point; return what a launcher prints in its summary (status "claimed" when
    another live launcher holds the point: it is skipped). `stop`: passed to run()."""
    try:
        result = run(job_config(cfg), stop=stop)
    except RunClaimed as exc:
        print(f"[kanscale] {exc}: skipped", file=sys.stderr)
        return {"run_id": exc.run_dir.name, "status": "claimed", "error": str(exc),
                "run_dir": str(exc.run_dir), "objective": None}
    return {"run_id": result.run_id, "status": result.status, "error": result.error,
            "test_rmse": result.test_rmse, "n_params": result.n_params,
            "wall_time_s": result.wall_time_s, "objective": objective(result, cfg.get("objective", "auto")),
            "run_dir": str(Path(cfg.results_root) / result.run_id)}


def objective(result: Any, name: str = "auto") -> Optional[float]:
    """The scalar a sweeper minimises (config `objective`; README "Tuning"): auto = the test error
    rate 1 - metrics.test_accuracy on classification tasks, else test_rmse; test_error_rate;
    a record field (test_rmse, best_test_rmse, train_rmse); or metrics.<name>. None when the run
    has no finite such number (failed, diverged): Hydra's Optuna sweeper then records a failed
    trial (a NaN would stop the study)."""
    metrics = dict(result.metrics or {})
    if name == "auto":
        name = "test_error_rate" if "test_accuracy" in metrics else "test_rmse"
    if name == "test_error_rate":
        value = 1.0 - float(metrics.get("test_accuracy", float("nan")))
    elif name.startswith("metrics."):
        value = float(metrics.get(name[len("metrics."):], float("nan")))
    else:
        value = float(getattr(result, name))
    return value if math.isfinite(value) else None


class ValidateFirst(Callback):
    """`hydra.callbacks` in configs/config.yaml: checks run before Hydra creates its folders under
    results_root, so a bad value (a results_root that is a file or read-only included) is one line
    and exit code 2, and nothing is written. A single run checks its whole config; a sweep checks
    the results_root of its sweep folder here, and the kanscale launchers then check every point
    before running any."""

    def on_run_start(self, config: DictConfig, **kwargs: Any) -> None:
        _exit_on_config_error(lambda: validate(resolve(job_config(config))))

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        _exit_on_config_error(lambda: check_results_root(str(config.results_root)))


def _exit_on_config_error(check) -> None:
    try:
        check()
    except ConfigError as exc:
        print(f"kanscale: config error: {exc}", file=sys.stderr)
        sys.exit(2)


@hydra.main(version_base="1.3", config_path="../configs", config_name="config")
def main(cfg: DictConfig) -> Optional[float]:
    """Returns the run's objective (config `objective`), so sweepers that optimise (Hydra's Optuna
    sweeper) read it from the job's return value; the exit code says how the run ended."""
    try:
        # SIGTERM/SIGUSR1 (SLURM time limits, preemption, kill) only request a stop: the run
        # checkpoints at the end of its step and raises RunInterrupted (exit 3).
        with on_signals(StopRequest()) as stop:
            summary = run_and_summarize(cfg, stop)
    except ConfigError as exc:
        print(f"kanscale: config error: {exc}", file=sys.stderr)
        sys.exit(EXIT_CONFIG)
    except RunInterrupted as exc:
        print(f"kanscale: interrupted: {exc}", file=sys.stderr)
        sys.exit(EXIT_INTERRUPTED)
    if HydraConfig.get().mode == RunMode.RUN:  # a sweep point returns; the sweep sets the code
        if summary["status"] == "claimed":
            sys.exit(EXIT_CLAIMED)
        if summary["status"] not in ("done", "diverged"):
            print(f"kanscale: run {summary['run_id']} {summary['status']}: {summary['error']} "
                  f"(record and error.log in {summary['run_dir']})", file=sys.stderr)
            sys.exit(EXIT_FAILED)
    return summary["objective"]


if __name__ == "__main__":
    # progress lines as they happen when stdout is a file or a pipe (the log of a long sweep),
    # not in 8 KB blocks
    sys.stdout.reconfigure(line_buffering=True)
    main()
    sys.exit(sweep_exit_code())  # 0 after a single run that got here
