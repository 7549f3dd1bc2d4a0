"""Equal tuning budgets (issue 13 item 5): the Hydra task function returns the objective, Hydra's
Optuna sweeper optimises it, and every family gets the same search (README "Tuning")."""
from __future__ import annotations

import math

import pytest
import yaml
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from analysis.collect import load_records
from harness.config import ConfigError, resolve, validate
from harness.models import FAMILY_REGISTRY
from harness.run import job_config, objective
from harness.results import result_of
from tests.helpers import CONFIGS, run_cli, valid_record

TUNE_EXPERIMENTS = sorted(p.stem for p in (CONFIGS / "experiment").glob("tune_*.yaml"))


def test_objective_is_the_test_rmse_or_the_error_rate():
    regression = result_of(valid_record(test_rmse=0.25, best_test_rmse=0.125))
    assert objective(regression) == 0.25
    assert objective(regression, "best_test_rmse") == 0.125
    classes = result_of(valid_record(metrics={"test_accuracy": 0.75, "test_loss": 0.5}))
    assert objective(classes) == 0.25  # auto: 1 - test accuracy
    assert objective(classes, "metrics.test_loss") == 0.5
    assert objective(result_of(valid_record(status="diverged", test_rmse=math.nan))) is None
    with pytest.raises(ConfigError, match="objective='accuracy'"):
        with initialize_config_dir(config_dir=str(CONFIGS), version_base="1.3"):
            validate(resolve(compose(config_name="config", overrides=["objective=accuracy"])))


def compose_tune(experiment: str, overrides=()):
    with initialize_config_dir(config_dir=str(CONFIGS), version_base="1.3"):
        cfg = compose(config_name="config", return_hydra_config=True,
                      overrides=[f"experiment={experiment}", "hydra/sweeper=tune", *overrides])
    return cfg


@pytest.mark.parametrize("experiment", TUNE_EXPERIMENTS)
def test_every_family_gets_the_same_search(experiment):
    """Same sweeper (trials, sampler seed, lr_scale range), seeds, steps, optimizer and budget
    for every registered family; only the family (and its matched width) differs."""
    seen = {}
    for family in sorted(FAMILY_REGISTRY):
        if not (CONFIGS / "model" / f"{family}.yaml").exists():
            continue
        cfg = compose_tune(experiment, [f"model={family}"])
        sweeper = OmegaConf.to_container(cfg.hydra.sweeper, resolve=True)
        assert sweeper["params"] == {"optim.lr_scale": "tag(log, interval(0.1, 10.0))"}
        assert cfg.hydra.launcher._target_.endswith("BasicLauncher")
        run_cfg = resolve(job_config(cfg))
        validate(run_cfg)
        assert abs(run_cfg.match.ratio - 1) <= 0.05, family
        same = (sweeper["n_trials"], sweeper["sampler"]["seed"], run_cfg.seed,
                run_cfg.train.steps_per_stage, tuple(run_cfg.train.grid_schedule), run_cfg.optim.name,
                run_cfg.optim.lr, run_cfg.match.reference_value, run_cfg.objective)
        seen[family] = same
    assert {"kan", "mlp"} <= set(seen) and len(set(seen.values())) == 1, seen


@pytest.mark.slow
def test_optuna_sweeper_minimises_what_the_task_function_returns(tmp_path):
    """A real Hydra multirun of 3 Optuna trials: optimization_results.yaml's best value is the
    lowest objective (test error rate) among the records the trials wrote."""
    sweep_dir = tmp_path / "sweep"
    done = run_cli(["-m", "experiment=tune_table", "model=mlp", "hydra/sweeper=tune",
                    "hydra.sweeper.n_trials=3", "train.steps_per_stage=20", "train.log_every=10",
                    f"results_root={tmp_path / 'results'}", f"hydra.sweep.dir={sweep_dir}"],
                   timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    results = yaml.safe_load((sweep_dir / "optimization_results.yaml").read_text())
    records = load_records(tmp_path / "results")
    assert len(records) == 3
    errors = [1.0 - r["metrics"]["test_accuracy"] for r in records]
    assert results["best_value"] == pytest.approx(min(errors), abs=1e-12)
    best = records[errors.index(min(errors))]
    scale = results["best_params"]["optim.lr_scale"]
    assert best["lr"] == pytest.approx(1e-3 * scale)  # lr_scale folded into the recorded lr
    assert len({tuple(r["widths"]) for r in records}) == 1  # the same matched size every trial
