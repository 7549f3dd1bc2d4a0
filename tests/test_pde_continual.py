"""The Poisson PINN task (Liu et al. 2024 §3.4) and the continual-learning task (§3.5)."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from harness.models.kan import KAN
from harness.models.mlp import MLP
from harness.tasks import TASK_REGISTRY
from harness.tasks.continual import CENTRES, forgetting_of, peaks, region_of, regions_of_stage
from harness.tasks.pde import (boundary_points, exact_gradient, exact_solution,
                               gradient_and_laplacian, source)
from harness.train import run
from tests.helpers import compose_config

POISSON = TASK_REGISTRY["pde_poisson"]
PEAKS = TASK_REGISTRY["continual_peaks"]
QUIET = dict(log=lambda *_: None)


class ExactPoisson(nn.Module):
    """Returns u* = sin(pi x) sin(pi y^2): a model with zero solution error."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sin(math.pi * x[:, :1]) * torch.sin(math.pi * x[:, 1:2] ** 2)


class XY(nn.Module):
    """u = x y: harmonic (Laplacian 0), so the PINN loss is alpha mean f^2 + mean (x y)^2 on the boundary."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x[:, :1] * x[:, 1:2]


@pytest.fixture
def one_thread():
    """Small models run fastest on one thread (as harness.train.run does), and the CPUs are shared."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def poisson_data(n_train=200, n_test=300):
    return POISSON.make_dataset(n_train, n_test, 0, torch.float64, None)


# ----- Poisson -------------------------------------------------------------------------------------

def test_exact_solution_solves_the_poisson_problem():
    rng = np.random.default_rng(0)
    x = rng.uniform(-0.99, 0.99, size=(500, 2))
    h = 1e-4  # central differences: truncation ~h^2 u'''' ~ 1e-6, round-off ~eps/h^2 ~ 1e-8
    laplacian = sum((exact_solution(x + h * e) - 2 * exact_solution(x) + exact_solution(x - h * e)) / h ** 2
                    for e in np.eye(2))
    f = source(torch.as_tensor(x))[:, 0].numpy()
    assert np.abs(laplacian - f).max() < 1e-5 * np.abs(f).max()
    # autograd agrees to round-off, and u* vanishes on the boundary points
    _, grad, auto_laplacian = gradient_and_laplacian(ExactPoisson(), torch.as_tensor(x))
    assert torch.allclose(auto_laplacian, source(torch.as_tensor(x)), atol=1e-12)
    assert torch.allclose(grad, exact_gradient(torch.as_tensor(x)), atol=1e-12)
    assert np.abs(exact_solution(boundary_points(200).numpy())).max() < 1e-14


def test_poisson_values_at_hand_picked_points():
    x = np.array([[0.5, 0.5], [0.0, 0.3], [-0.5, 1.0 / np.sqrt(2)]])
    s = np.sqrt(0.5)  # sin(pi/4) = cos(pi/4)
    assert exact_solution(x) == pytest.approx([s, 0.0, -1.0], abs=1e-15)
    f = source(torch.as_tensor(x))[:, 0].numpy()
    # f(0.5, 0.5) = -pi^2 (1 + 1) s + 2 pi s;  f(0, y) = 0;  f(-0.5, 1/sqrt 2) = pi^2 (1 + 2) - 0
    assert f == pytest.approx([(-2 * np.pi ** 2 + 2 * np.pi) * s, 0.0, 3 * np.pi ** 2], abs=1e-12)


def test_poisson_dataset_labels_and_extras():
    data = poisson_data()
    assert data.train_input.shape == (200, 2) and data.test_label.shape == (300, 1)
    assert torch.equal(data.train_label[:, 0], torch.as_tensor(exact_solution(data.train_input.numpy())))
    boundary = data.extras["boundary_input"]
    assert boundary.shape == (800, 2) and POISSON.n_boundary_per_side == 200
    assert torch.all(boundary.abs().amax(dim=1) == 1)  # every point on a side
    assert len(set(map(tuple, boundary.tolist()))) == 800  # no corner twice
    assert torch.equal(data.extras["train_source"], source(data.train_input))
    assert torch.equal(data.extras["test_grad"], exact_gradient(data.test_input))


def test_exact_model_has_zero_errors_and_zero_pinn_loss():
    data = poisson_data()
    metrics = POISSON.metrics(ExactPoisson(), data)
    assert metrics["l2_sq"] == 0.0
    assert 0.0 <= metrics["h1_sq"] < 1e-26
    assert 0.0 <= metrics["pde_loss"] < 1e-24


def test_pinn_loss_value_for_a_harmonic_model():
    data = poisson_data()
    loss = POISSON.loss(XY(), data.train_input, data.train_label, data)
    # on every side (x y)^2 = t^2; the mean of t^2 over the midpoints of 200 cells of width h = 0.01
    # is 1/3 - h^2/12 (midpoint rule error for t^2)
    expected = 0.01 * torch.mean(source(data.train_input) ** 2) + (1 / 3 - 0.01 ** 2 / 12)
    assert float(loss) == pytest.approx(float(expected), rel=1e-12)
    metrics = POISSON.metrics(XY(), data)
    assert metrics["pde_loss"] == pytest.approx(float(loss), rel=1e-12)
    # u = x y: grad = (y, x), so h1_sq - l2_sq = mean |(y, x) - grad u*|^2
    xt = data.test_input
    grad_sq = torch.mean(torch.sum((xt.flip(1) - exact_gradient(xt)) ** 2, dim=1))
    assert metrics["h1_sq"] - metrics["l2_sq"] == pytest.approx(float(grad_sq), rel=1e-10)


@pytest.mark.parametrize("build", [lambda: KAN([2, 3, 1]), lambda: MLP([2, 8, 1])], ids=["kan", "mlp"])
def test_pinn_loss_is_differentiable_and_one_lbfgs_step_lowers_it(build, one_thread):
    torch.manual_seed(0)
    model = build().double()
    data = poisson_data(n_train=100)
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.LBFGS(params, lr=1, max_iter=5, line_search_fn="strong_wolfe")

    def closure():
        optimizer.zero_grad()
        loss = POISSON.loss(model, data.train_input, data.train_label, data)
        loss.backward()
        return loss

    before = float(closure().detach())
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in params)
    optimizer.step(closure)
    after = float(POISSON.loss(model, data.train_input, data.train_label, data).detach())
    assert after < before


@pytest.mark.parametrize("overrides", [["model.widths=[2,3,1]", "model.grid=3", "train.grid_schedule=[3,5]",
                                        "model.implementation=reference"],
                                       ["model=mlp", "model.widths=[2,8,1]"]], ids=["kan", "mlp"])
def test_poisson_run_records_solution_errors(tmp_path, overrides):
    cheap = ["task=pde_poisson", "task.n_train=100", "task.n_test=100", "optim.max_iter=5"]
    result = run(compose_config([*cheap, *overrides], tmp_path), **QUIET)
    assert result.status == "done", result.error
    assert set(result.metrics) == {"l2_sq", "h1_sq", "pde_loss"}
    assert all(set(stage["metrics"]) == set(result.metrics) for stage in result.stages)
    # labels are u*, so the trainer's test MSE is the L2 error
    assert result.metrics["l2_sq"] == pytest.approx(result.test_mse, rel=1e-12)
    assert result.metrics["h1_sq"] > result.metrics["l2_sq"] > 0
    if len(result.stages) > 1:  # the KAN's second stage (finer grid) lowers the PINN loss
        assert result.metrics["pde_loss"] < result.stages[0]["metrics"]["pde_loss"]


# ----- continual learning ------------------------------------------------------------------------

def test_peaks_at_hand_picked_points():
    x = np.array([[-0.8], [0.0], [0.2], [1.0]])
    tail = np.exp(-300 * 0.4 ** 2)  # a neighbouring peak's value at a centre: e^-48
    expected = [1 + tail + np.exp(-300 * 0.8 ** 2), 1 + 2 * tail + 2 * np.exp(-300 * 0.8 ** 2),
                2 * np.exp(-300 * 0.2 ** 2), np.exp(-300 * 0.2 ** 2)]
    assert peaks(x) == pytest.approx(expected, rel=1e-12, abs=1e-300)
    assert CENTRES == pytest.approx((-0.8, -0.4, 0.0, 0.4, 0.8), abs=1e-15)
    assert region_of(torch.tensor([[-1.0], [-0.61], [-0.59], [0.1], [0.99], [1.0]])).tolist() == [0, 0, 1, 2, 4, 4]


def test_stage_indices_partition_the_training_points_by_region():
    data = PEAKS.make_dataset(500, 100, 0, torch.float64, None)
    stages = [PEAKS.stage_indices(data, s, 5) for s in range(5)]
    assert sorted(torch.cat(stages).tolist()) == list(range(500))
    for s, ids in enumerate(stages):
        x = data.train_input[ids, 0]
        assert torch.all((x >= -1 + 0.4 * s) & (x < -0.6 + 0.4 * s)), s
    assert PEAKS.stage_indices(data, 0, 1).tolist() == list(range(500))  # one stage: all regions
    assert regions_of_stage(1, 5) == [1] and regions_of_stage(0, 1) == [0, 1, 2, 3, 4]
    with pytest.raises(ValueError, match="divides 5"):
        PEAKS.stage_indices(data, 0, 3)


def test_forgetting_is_the_mean_rmse_of_earlier_regions():
    data = PEAKS.make_dataset(100, 500, 0, torch.float64, None)

    class ExactButRegion0(nn.Module):  # exact except +0.5 on region 0
        def forward(self, x):
            y = torch.as_tensor(peaks(x.numpy()))[:, None]
            return y + 0.5 * (region_of(x) == 0).to(x.dtype)[:, None]

    metrics = PEAKS.metrics(ExactButRegion0(), data, 0, 5)
    assert metrics["rmse_region_0"] == pytest.approx(0.5, rel=1e-12)
    assert [metrics[f"rmse_region_{r}"] for r in range(1, 5)] == [0.0] * 4
    assert math.isnan(metrics["forgetting"])  # nothing was trained before the first stage
    # at the end of stage 2, regions 0 and 1 were trained in earlier stages
    assert PEAKS.metrics(ExactButRegion0(), data, 2, 5)["forgetting"] == pytest.approx(0.25, rel=1e-12)
    assert math.isnan(forgetting_of([1.0] * 5, 0, 5)) and forgetting_of([1, 2, 3, 4, 5], 4, 5) == 2.5


CONTINUAL = ["task=continual_peaks", "task.n_train=500", "task.n_test=1000", "train.steps_per_stage=5",
             "train.grid_schedule=[50,50,50,50,50]", "train.update_grid_every=0"]
# The paper's KAN (§3.5): [1, 1], frozen w_b and w_s so only local spline coefficients move.
PAPER_KAN = ["model.widths=[1,1]", "model.grid=50", "model.train_base_weight=false",
             "model.train_spline_weight=false", "model.noise_scale=0.1"]


def test_kan_does_not_forget_and_mlp_does(tmp_path):
    kan = run(compose_config([*CONTINUAL, *PAPER_KAN], tmp_path / "kan"), **QUIET)
    mlp = run(compose_config([*CONTINUAL, "model=mlp", "model.widths=[1,32,1]"], tmp_path / "mlp"),
              **QUIET)
    for result in (kan, mlp):
        assert result.status == "done", result.error
        assert len(result.stages) == 5
        assert all(len(stage["metrics"]) == 6 for stage in result.stages)
        assert result.metrics == result.stages[-1]["metrics"]
    kan_stages = [stage["metrics"] for stage in kan.stages]
    # each region is learnt in its stage and kept: measured 0.003 then 0.016 after stage 5
    assert all(kan_stages[s][f"rmse_region_{s}"] < 0.01 for s in range(5))
    assert kan_stages[0]["rmse_region_0"] < 0.01 and kan_stages[-1]["rmse_region_0"] < 0.05
    assert kan_stages[-1]["forgetting"] < 0.05
    # the MLP overwrites region 0 (measured RMSE 0.96 after stage 5 with pykan's L-BFGS rule,
    # ~40 with torch's)
    assert mlp.stages[-1]["metrics"]["rmse_region_0"] > 0.5
    assert mlp.stages[-1]["metrics"]["forgetting"] > 10 * kan_stages[-1]["forgetting"]


def test_poisson_train_flops_use_the_pinn_cost_convention(tmp_path):
    from harness import counting
    cfg = compose_config(["task=pde_poisson", "task.n_train=100", "task.n_test=100", "model=mlp",
                          "model.widths=[2,8,1]", "train.steps_per_stage=2"], tmp_path)
    result = run(cfg, **QUIET)
    forward = counting.flops_forward(cfg.model).total
    # per evaluation: 3 (3 + 6 d) forwards per interior point (d = 2) + 3 per boundary point (800)
    assert result.train_flops == result.n_evals * (45 * forward * 100 + 3 * forward * 800)


def test_poisson_refuses_the_fast_kan_layer_before_any_work(tmp_path):
    from harness.config import ConfigError
    with pytest.raises(ConfigError, match="set model.implementation=reference"):
        run(compose_config(["task=pde_poisson", "model.implementation=fast"], tmp_path), **QUIET)
