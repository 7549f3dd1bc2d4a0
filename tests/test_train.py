"""The training run: determinism, stage records, counted compute, failure statuses."""
from __future__ import annotations

import math

import pytest
import torch

from harness import counting
from harness.config import ConfigError
from harness.results import read_result
from harness.train import run
from tests.helpers import compose_config


def test_same_seed_same_numbers_and_different_seed_differs(tmp_path):
    overrides = ["train.grid_schedule=[3,5]"]
    first = run(compose_config(overrides, tmp_path / "a"), log=lambda *_: None)
    second = run(compose_config(overrides, tmp_path / "b"), log=lambda *_: None)
    other = run(compose_config([*overrides, "seed=1"], tmp_path / "c"), log=lambda *_: None)
    assert first.status == "done" and first.run_id == second.run_id
    assert first.test_rmse == second.test_rmse and first.stages[-1] == {**second.stages[-1], "wall_time_s": first.stages[-1]["wall_time_s"]}
    assert other.run_id != first.run_id and other.test_rmse != first.test_rmse


def test_stages_record_grid_params_and_losses(tmp_path):
    cfg = compose_config(["train.grid_schedule=[3,5,10]", "model.widths=[2,3,1]"], tmp_path)
    result = run(cfg, log=lambda *_: None)
    assert [s["grid"] for s in result.stages] == [3, 5, 10]
    assert [s["n_params"] for s in result.stages] == [9 * (g + 3 + 2) for g in (3, 5, 10)]  # 9 edges
    assert [s["step"] for s in result.stages] == [3, 6, 9]
    assert result.grid == 10 and result.n_params == 9 * 15
    assert result.test_rmse == pytest.approx(result.stages[-1]["test_rmse"], rel=1e-12)
    assert result.test_mse == pytest.approx(result.test_rmse ** 2, rel=1e-12)
    on_disk = read_result(tmp_path / result.run_id)
    assert on_disk["stages"] == result.stages and on_disk["status"] == "done"


def test_train_flops_count_the_passes_the_optimizer_ran(tmp_path, monkeypatch):
    """Count closure calls independently by wrapping LBFGS.step, then check train_flops."""
    calls = []
    original = torch.optim.LBFGS.step

    def counting_step(self, closure):
        def wrapped():
            calls.append(1)
            return closure()
        return original(self, wrapped)

    monkeypatch.setattr(torch.optim.LBFGS, "step", counting_step)
    cfg = compose_config(["model=mlp", "model.widths=[2,8,1]", "train.steps_per_stage=4"], tmp_path)
    result = run(cfg, log=lambda *_: None)
    assert result.n_evals == len(calls) > 4  # the line search evaluates more than once per step
    per_eval = 3 * counting.flops_forward(cfg.model).total * cfg.task.n_train
    assert result.train_flops == len(calls) * per_eval


def test_kan_train_flops_include_grid_updates(tmp_path):
    cfg = compose_config(["train.steps_per_stage=6", "train.update_grid_every=5"], tmp_path)
    result = run(cfg, log=lambda *_: None)
    forward = counting.flops_forward(cfg.model).total * cfg.task.n_train
    # two grid updates (steps 0 and 5), each one forward pass over the training set
    assert result.train_flops == result.n_evals * 3 * forward + 2 * forward


def test_adam_minibatch_runs_and_counts_batch_flops(tmp_path):
    cfg = compose_config(["optim=adam", "optim.batch_size=50", "model=mlp", "model.widths=[2,8,1]",
                          "train.steps_per_stage=5"], tmp_path)
    result = run(cfg, log=lambda *_: None)
    assert result.status == "done" and result.n_evals == 5
    assert result.train_flops == 5 * 3 * counting.flops_forward(cfg.model).total * 50


def test_divergence_is_recorded_not_raised(tmp_path):
    cfg = compose_config(["optim=adam", "optim.lr=1e30", "model=mlp", "train.steps_per_stage=20"],
                         tmp_path)
    result = run(cfg, log=lambda *_: None)
    assert result.status == "diverged" and "loss" in result.error
    assert read_result(tmp_path / result.run_id)["status"] == "diverged"


def test_failure_is_recorded_with_error(tmp_path, monkeypatch):
    monkeypatch.setenv("KANSCALE_FAULT", "fail:step=2")  # harness/faults.py (tests only)
    result = run(compose_config([], tmp_path), log=lambda *_: None)
    assert result.status == "failed" and "injected failure at step 2" in result.error
    assert math.isnan(result.test_rmse)
    assert (tmp_path / result.run_id / "error.log").read_text().startswith("Traceback")


def test_finished_run_is_skipped(tmp_path):
    messages = []
    cfg = compose_config([], tmp_path)
    first = run(cfg, log=messages.append)
    again = run(cfg, log=messages.append)
    assert again == first and "already done" in messages[-1]


@pytest.mark.parametrize("override,needle", [
    ("model.widths=[2,0,1]", "model.widths[1]=0 must be a positive integer"),
    ("model.grid=2", "smaller than the spline order"),
    ("model.k=0", "model.k=0 must be >= 1"),
    ("task.name=nope", "task.name='nope' is unknown"),
    ("model.widths=[3,5,1]", "must start with d_in=2"),
])
def test_bad_values_fail_before_any_work(tmp_path, override, needle):
    with pytest.raises(ConfigError, match=needle.replace("[", r"\[").replace("]", r"\]")):
        run(compose_config([override], tmp_path))
    assert not any(tmp_path.iterdir()) if tmp_path.exists() else True


def test_first_stage_trains_on_the_first_grid_of_the_schedule(tmp_path):
    from harness.checkpoint import load_checkpoint
    cfg = compose_config(["model.grid=5", "train.grid_schedule=[3]", "model.widths=[2,2,1]"], tmp_path)
    result = run(cfg, log=lambda *_: None)
    state = load_checkpoint(tmp_path / result.run_id).model
    assert state["layers.0.coef"].shape == (2, 2, 3 + 3)  # G = 3 from the schedule, not model.grid
    assert result.n_params == 6 * (3 + 3 + 2)
