"""The training run: determinism, stage records, counted compute, failure statuses."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from harness import counting
from harness.config import ConfigError
from harness.ensemble.batched_lbfgs import BatchedLBFGS
from harness.results import read_result
from harness.tasks import TASK_REGISTRY
from harness.train import Member, resolved_dict, run
from tests.helpers import compose_config


def test_same_seed_same_numbers_and_different_seed_differs(tmp_path):
    overrides = ["train.grid_schedule=[3,5]"]
    first = run(compose_config(overrides, tmp_path / "a"), log=lambda *_: None)
    second = run(compose_config(overrides, tmp_path / "b"), log=lambda *_: None)
    other = run(compose_config([*overrides, "seed=1"], tmp_path / "c"), log=lambda *_: None)
    assert first.status == "done" and first.run_id == second.run_id
    timing = ("wall_time_s", "cpu_time_s")  # the only values that may differ between reruns
    assert first.test_rmse == second.test_rmse and first.stages[-1] == {
        **second.stages[-1], **{key: first.stages[-1][key] for key in timing}}
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
    original = BatchedLBFGS.step

    def counting_step(self, closure):
        def wrapped():
            calls.append(1)
            return closure()
        return original(self, wrapped)

    monkeypatch.setattr(BatchedLBFGS, "step", counting_step)
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


# ----- time that does not depend on the neighbours; best and last; the target's spread --------
OVERFIT = ["task.n_train=20", "train.grid_schedule=[3,10,30]", "train.steps_per_stage=5",
           "model.widths=[2,2,1]"]  # 20 points, G up to 30: the test RMSE rises after stage 0


def independent_test_target_std(cfg) -> float:
    """The task's test labels drawn again, their std over all labels (ddof=0) in numpy."""
    data = TASK_REGISTRY[cfg.task.name].make_dataset(cfg.task.n_train, cfg.task.n_test, cfg.task.seed,
                                                     torch.float64, torch.device("cpu"))
    return float(np.std(data.test_label.numpy()))


def test_record_carries_cpu_time_and_load_averages(tmp_path):
    cfg = compose_config(["train.grid_schedule=[3,5]", "train.steps_per_stage=4", "num_threads=1"], tmp_path)
    result = run(cfg, log=lambda *_: None)
    assert result.status == "done"
    # one thread: CPU seconds cannot exceed wall seconds, up to the clocks' granularity
    assert 0 < result.cpu_time_s <= result.wall_time_s * cfg.num_threads + 0.05
    stage_cpu = [s["cpu_time_s"] for s in result.stages]
    assert 0 < stage_cpu[0] < stage_cpu[1] == result.cpu_time_s  # cumulative, like wall_time_s
    assert all(s["cpu_time_s"] <= s["wall_time_s"] + 0.05 for s in result.stages)
    assert math.isfinite(result.load_avg_start) and result.load_avg_start >= 0
    assert math.isfinite(result.load_avg_end) and result.load_avg_end >= 0
    on_disk = read_result(tmp_path / result.run_id)
    assert on_disk["cpu_time_s"] == result.cpu_time_s
    assert on_disk["load_avg_start"] == result.load_avg_start


def test_record_keeps_the_best_stage_beside_the_last(tmp_path):
    cfg = compose_config(OVERFIT, tmp_path)
    result = run(cfg, log=lambda *_: None)
    rmses = [s["test_rmse"] for s in result.stages]
    assert result.best_test_rmse == min(rmses) and result.best_stage == int(np.argmin(rmses))
    assert result.best_stage == 0 and result.best_test_rmse < result.test_rmse  # best is not last
    assert result.test_rmse == pytest.approx(rmses[-1], rel=1e-12)


def unstarted_trainer(cfg, tmp_path) -> Member:
    """A run that failed before building its model or data."""
    return Member(cfg, resolved_dict(cfg), "x", tmp_path, lambda *_: None)


def test_best_stage_skips_non_finite_and_is_none_without_stages(tmp_path):
    cfg = compose_config([], tmp_path)
    trainer = unstarted_trainer(cfg, tmp_path)
    assert trainer.record("failed", "e").best_stage is None
    stage = {"grid": 3, "test_rmse": 0.0}
    trainer.stages = [{**stage, "stage": i, "test_rmse": r} for i, r in enumerate([0.3, float("nan"), 0.1, 0.2])]
    record = trainer.record("failed", "e")
    assert (record.best_test_rmse, record.best_stage) == (0.1, 2)


def test_record_carries_the_std_of_the_test_targets(tmp_path):
    cfg = compose_config(["task=toy_xy"], tmp_path)
    result = run(cfg, log=lambda *_: None)
    assert result.test_target_std == pytest.approx(independent_test_target_std(cfg), rel=1e-12)
    assert result.test_target_std > 0
    # a run that failed before any data still writes a record, with nan
    failed = unstarted_trainer(cfg, tmp_path).record("failed", "e")
    assert math.isnan(failed.test_target_std) and math.isnan(failed.best_test_rmse)


def test_packed_runs_fill_the_same_fields(tmp_path):
    """A stack's members: stack CPU time shared, best/last and target std as a solo run's."""
    from harness.ensemble.run_many import run_many
    overrides = [*OVERFIT, "optim=adam", "optim.lr=0.01"]
    cfgs = [compose_config([*overrides, f"seed={s}"], tmp_path / "many") for s in (0, 1)]
    many = run_many(cfgs, log=lambda *_: None)
    for cfg, result in zip(cfgs, many):
        assert result.status == "done"
        assert 0 < result.cpu_time_s <= result.wall_time_s * cfg.num_threads + 0.05
        assert [s["cpu_time_s"] for s in result.stages] == sorted(s["cpu_time_s"] for s in result.stages)
        assert result.stages[-1]["cpu_time_s"] == result.cpu_time_s
        assert math.isfinite(result.load_avg_start) and math.isfinite(result.load_avg_end)
        rmses = [s["test_rmse"] for s in result.stages]
        assert result.best_test_rmse == min(rmses) and result.best_stage == int(np.argmin(rmses))
        assert result.test_target_std == pytest.approx(independent_test_target_std(cfg), rel=1e-12)
