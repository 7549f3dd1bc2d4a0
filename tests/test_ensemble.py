"""Stacked ensembles (harness.ensemble): stacked modules against solo models, batched optimizers
against torch's (the behavioural reference), run_many's records against run's."""
from __future__ import annotations

import copy
import math

import pytest
import torch
from torch.optim.lbfgs import _strong_wolfe

from harness.ensemble.batched_adam import BatchedAdam
from harness.ensemble.batched_lbfgs import BatchedLBFGS
from harness.ensemble.line_search import G0, NEW, cubic_minimizer, strong_wolfe
from harness.ensemble.regrid import extend_grid, update_grid_from_samples
from harness.ensemble.run_many import group_key, run_many
from harness.ensemble.stacked import member_losses, stack, trainable_parameters
from harness.models.kan import KAN
from harness.models.mlp import MLP
from harness.results import read_result
from harness.train import resolved_dict, run
from tests.helpers import compose_config

# pykan's fit: LBFGS(lr=1, history 10, 20 iterations, strong Wolfe), tolerances off
LBFGS = dict(lr=1, max_iter=20, history_size=10, line_search_fn="strong_wolfe",
             tolerance_grad=1e-32, tolerance_change=1e-32)
QUIET = dict(log=lambda *_: None)


pytestmark = pytest.mark.usefixtures("float64_single_thread")  # tests/conftest.py


def toy_data(n=200, seed=0):
    """f(x, y) = exp(sin(pi x) + y^2) on [-1, 1]^2 (the toy_exp_sin task)."""
    x = torch.rand(n, 2, generator=torch.Generator().manual_seed(seed)) * 2 - 1
    return x, torch.exp(torch.sin(math.pi * x[:, :1]) + x[:, 1:] ** 2)


def kans(n_models, widths=(2, 5, 1), regrid_every=2, seed=0):
    """KANs with different seeds; every `regrid_every`-th has knots moved to sample percentiles."""
    x = toy_data(300, seed=7)[0][:, :widths[0]]
    models = []
    for m in range(n_models):
        torch.manual_seed(seed + m)
        model = KAN(list(widths), grid=5, k=3, noise_scale=0.3)
        if regrid_every and m % regrid_every == 1:
            model.update_grid_from_samples(0.8 * x)
        models.append(model)
    return models


def loss_and_grads(model, x, y):
    model.zero_grad()
    loss = torch.mean((model(x) - y) ** 2)
    loss.backward()
    return loss.item(), [p.grad.clone() for p in model.parameters() if p.requires_grad]


def stacked_loss_and_grads(stacked, x, y):
    stacked.zero_grad()
    losses = member_losses(stacked(x), y)
    losses.sum().backward()
    params = trainable_parameters(stacked)
    return losses.tolist(), [[p.grad[m].clone() for p in params] for m in range(len(losses))]


def assert_close(actual, expected, rel):
    actual, expected = actual.detach(), expected.detach()
    scale = max(1.0, float(expected.abs().max()))
    assert float((actual - expected).abs().max()) <= rel * scale


# ----- stacked modules ---------------------------------------------------------------------
@pytest.mark.parametrize("basis", ["reference", "pp"])
@pytest.mark.parametrize("widths", [(2, 5, 1), (2, 3, 2, 1)])
def test_stacked_kan_computes_what_each_solo_kan_computes(basis, widths):
    models = kans(4, widths)
    x, y = toy_data()
    stacked = stack(models, basis)
    losses, grads = stacked_loss_and_grads(stacked, x, y)
    per_member_x = torch.stack([x.flip(0), x, 0.5 * x, -x])  # (M, B, in)
    out = stacked(per_member_x)
    for m, model in enumerate(models):
        loss, grad = loss_and_grads(model, x, y)
        assert losses[m] == pytest.approx(loss, rel=1e-13)
        for g_stacked, g_solo in zip(grads[m], grad):
            assert_close(g_stacked, g_solo, 1e-12)
        assert_close(out[m], model(per_member_x[m]), 1e-13)


def test_stacked_mlp_is_bitwise_the_solo_mlp():
    models = []
    for seed in range(3):
        torch.manual_seed(seed)
        models.append(MLP([2, 16, 8, 1], activation="tanh"))
    x, y = toy_data()
    losses, grads = stacked_loss_and_grads(stack(models), x, y)
    for m, model in enumerate(models):
        loss, grad = loss_and_grads(model, x, y)
        assert losses[m] == loss
        assert all(torch.equal(a, b) for a, b in zip(grads[m], grad))


def test_members_are_written_back_into_solo_models_and_loaded_again():
    models, x = kans(3), toy_data()[0]
    stacked = stack(models)
    with torch.no_grad():
        for p in stacked.parameters():
            p.mul_(1.5)
    solo = kans(1, seed=99)[0]
    stacked.write_member(2, solo)
    assert_close(solo(x), stacked(x)[2], 1e-13)
    assert torch.equal(solo.layers[0].grid, stacked.layers[0].grid[2])
    solo.update_grid_from_samples(x)  # moved knots and refitted coefficients come back in
    stacked.load_member(0, solo)
    assert_close(stacked(x)[0], solo(x), 1e-13)


@pytest.mark.parametrize("widths", [(2, 3, 2, 1), (1, 3, 1)])
def test_a_members_numbers_do_not_depend_on_the_stack(widths):
    """Bitwise: member 0 alone, or with three other members (other seeds, other knots), before
    and after a grid update of the stack."""
    x, y = toy_data()
    x = x[:, :widths[0]]
    models = kans(4, widths, regrid_every=0)
    for m in (1, 3):
        models[m].update_grid_from_samples(0.8 * x)
    alone, together = stack(copy.deepcopy(models[:1])), stack(copy.deepcopy(models))
    for _ in range(2):
        a, b = stacked_loss_and_grads(alone, x, y), stacked_loss_and_grads(together, x, y)
        assert a[0][0] == b[0][0]
        assert all(torch.equal(u, v) for u, v in zip(a[1][0], b[1][0]))
        update_grid_from_samples(alone, x)
        update_grid_from_samples(together, x)


def test_grid_changes_of_the_stack_are_the_solo_grid_changes():
    """pykan's update_grid and refine on the stack (one flattened solo layer per stacked layer)
    give each member what its solo KAN gets, and a member's numbers do not depend on the stack."""
    models, (x, _) = kans(4), toy_data(300)
    stacked, alone = stack(copy.deepcopy(models)), stack(copy.deepcopy(models[:1]))
    update_grid_from_samples(stacked, x, members=[0, 2, 3])
    update_grid_from_samples(alone, x)
    for m in (0, 2, 3):
        models[m].update_grid_from_samples(x)
    assert torch.equal(stacked.layers[1].grid[1], stack(models[1:2]).layers[1].grid[0])  # untouched
    extend_grid(stacked, 10, x)
    extend_grid(alone, 10, x)
    for m, model in enumerate(models):
        model.extend_grid(10, x)
        assert_close(stacked(x)[m], model(x), 1e-12)
        for ours, solo in zip(stacked.layers, model.layers):
            assert_close(ours.grid[m], solo.grid, 1e-12)
    assert torch.equal(alone(x)[0], stacked(x)[0])


# ----- Adam ---------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["adam", "adamw"])
def test_batched_adam_reproduces_solo_runs(name):
    models, (x, y) = kans(4), toy_data()
    lrs, decays = [1e-3, 3e-3, 1e-2, 3e-2], [0.0, 0.01, 0.1, 0.0]
    stacked = stack(copy.deepcopy(models))
    optimizer = BatchedAdam(trainable_parameters(stacked), lr=lrs, weight_decay=decays,
                            decoupled=name == "adamw")

    def closure():
        stacked.zero_grad()
        losses = member_losses(stacked(x), y)
        losses.sum().backward()
        return losses

    stacked_losses = [optimizer.step(closure)[0] for _ in range(20)]
    solo_class = torch.optim.Adam if name == "adam" else torch.optim.AdamW
    for m, model in enumerate(models):
        solo = solo_class(model.parameters(), lr=lrs[m], weight_decay=decays[m])
        for step in range(20):
            loss = solo.step(lambda: loss_and_grads_in_place(model, x, y))
            assert stacked_losses[step][m] == pytest.approx(float(loss), rel=1e-12)


def loss_and_grads_in_place(model, x, y):
    model.zero_grad()
    loss = torch.mean((model(x) - y) ** 2)
    loss.backward()
    return loss.detach()


# ----- line search and L-BFGS ---------------------------------------------------------------
def test_cubic_minimizer_is_torchs_interpolation():
    from torch.optim.lbfgs import _cubic_interpolate
    generator = torch.Generator().manual_seed(0)
    for _ in range(200):
        values = torch.randn(6, generator=generator).tolist()
        expected = float(_cubic_interpolate(*[torch.tensor(v) for v in values]))
        assert cubic_minimizer(*values) == pytest.approx(expected, rel=1e-13, abs=1e-15)


def test_strong_wolfe_takes_torchs_steps():
    """Our state machine against torch's `_strong_wolfe` on a bumpy Rosenbrock function."""
    def value_and_grad(z):
        z = z.detach().requires_grad_(True)
        f = (1 - z[0]) ** 2 + 100 * (z[1] - z[0] ** 2) ** 2 + 0.3 * torch.sin(5 * z[0])
        return float(f.detach()), torch.autograd.grad(f, z)[0]

    generator = torch.Generator().manual_seed(0)
    for _ in range(100):
        x = torch.randn(2, generator=generator) * 1.5
        f, g = value_and_grad(x)
        d = -g * 10 ** (4 * torch.rand(1, generator=generator).item() - 3)
        t0 = 2 * torch.rand(1, generator=generator).item()
        f_ref, g_ref, t_ref, n_ref = _strong_wolfe(lambda x0, t, d0: value_and_grad(x0 + t * d0),
                                                   x, t0, d, f, g, g.dot(d))
        search, kept, n_evals = strong_wolfe(t0, f, float(g.dot(d)), float(d.abs().max())), {G0: g}, 0
        t, _ = next(search)
        while True:
            f_new, g_new = value_and_grad(x + t * d)
            n_evals += 1
            try:
                t, store = search.send((f_new, float(g_new.dot(d))))
                kept[store] = g_new
            except StopIteration as stop:
                t, f_end, where = stop.value
                break
        assert n_evals == n_ref
        assert t == pytest.approx(float(t_ref), rel=1e-9)
        assert f_end == pytest.approx(f_ref, rel=1e-9)
        assert_close(g_new if where == NEW else kept[where], g_ref, 1e-6)


def lbfgs_trajectories(models, x, y, steps, **options):
    """Per member: losses at the start of each step and evaluations per step."""
    stacked = stack(copy.deepcopy(models))
    optimizer = BatchedLBFGS(trainable_parameters(stacked), **{**LBFGS, **options})

    def closure():
        stacked.zero_grad()
        losses = member_losses(stacked(x), y)
        losses.sum().backward()
        return losses

    losses, evals = zip(*[optimizer.step(closure) for _ in range(steps)])
    params = torch.cat([p.detach().reshape(len(models), -1) for p in trainable_parameters(stacked)], 1)
    return [list(row) for row in zip(*losses)], [list(row) for row in zip(*evals)], params


def torch_lbfgs_trajectory(model, x, y, steps, **options):
    model = copy.deepcopy(model)
    optimizer = torch.optim.LBFGS(model.parameters(), **{**LBFGS, **options})
    calls = []

    def closure():
        calls.append(1)
        return loss_and_grads_in_place(model, x, y)

    losses, evals = [], []
    for _ in range(steps):
        before = len(calls)
        losses.append(float(optimizer.step(closure)))
        evals.append(len(calls) - before)
    return losses, evals, torch.cat([p.detach().reshape(-1) for p in model.parameters()])


def test_a_members_lbfgs_trajectory_does_not_depend_on_the_stack():
    """10 steps of pykan's LBFGS (~230 evaluations each): bitwise the same alone or stacked."""
    models, (x, y) = kans(4), toy_data()
    alone = lbfgs_trajectories(models[:1], x, y, 10)
    together = lbfgs_trajectories(models, x, y, 10)
    assert alone[0][0] == together[0][0] and alone[1][0] == together[1][0]
    assert torch.equal(alone[2][0], together[2][0])
    assert sum(together[1][1]) > 200  # the line searches really ran


@pytest.mark.parametrize("family", ["kan", "mlp"])
def test_batched_lbfgs_follows_torch_lbfgs(family):
    """Same evaluations per step and the same losses to round-off while round-off has not yet
    been amplified (L-BFGS amplifies a 1e-16 difference ~100x per step: see the report)."""
    if family == "kan":
        models = kans(3)
    else:
        models = []
        for seed in range(3):
            torch.manual_seed(seed)
            models.append(MLP([2, 16, 16, 1]))
    x, y = toy_data()
    losses, evals, _ = lbfgs_trajectories(models, x, y, 2, rule="torch")
    for m, model in enumerate(models):
        ref_losses, ref_evals, _ = torch_lbfgs_trajectory(model, x, y, 2)
        assert evals[m] == ref_evals and ref_evals[0] >= 20
        assert losses[m] == pytest.approx(ref_losses, rel=1e-8)


def test_members_stop_on_their_own_and_match_torch():
    """Quadratics of different conditioning: with torch's default tolerances each member stops
    after its own number of iterations; a finished member holds still while the others move."""
    generator = torch.Generator().manual_seed(0)
    size, scales = 6, [1.0, 10.0, 1000.0]
    matrices = [torch.diag(torch.logspace(0, math.log10(s), size))
                + 0.1 * torch.randn(size, size, generator=generator) for s in scales]
    targets = [torch.randn(size, generator=generator) for _ in scales]
    start = torch.zeros(len(scales), size)
    options = dict(lr=1, max_iter=5, history_size=10, line_search_fn="strong_wolfe")  # default tols
    x = start.clone().requires_grad_(True)
    optimizer = BatchedLBFGS([x], rule="torch", **options)

    def closure():
        x.grad = None
        losses = torch.stack([((a @ x[m] - b) ** 2).sum() for m, (a, b) in enumerate(zip(matrices, targets))])
        losses.sum().backward()
        return losses

    history = []
    for _ in range(6):
        _, evals = optimizer.step(closure)
        history.append((evals, x.detach().clone()))
    for m, (a, b) in enumerate(zip(matrices, targets)):
        solo = start[m].clone().requires_grad_(True)
        reference = torch.optim.LBFGS([solo], **options)
        for evals, params in history:
            calls = []

            def solo_closure():
                calls.append(1)
                solo.grad = None
                loss = ((a @ solo - b) ** 2).sum()
                loss.backward()
                return loss

            reference.step(solo_closure)
            assert evals[m] == len(calls)
            assert_close(params[m], solo.detach(), 1e-9)
    finished = [m for m in range(3) if torch.equal(history[-2][1][m], history[-1][1][m])]
    assert finished and len(finished) < 3  # some members done, others still moving


def test_a_frozen_member_holds_still_and_counts_nothing():
    models, (x, y) = kans(3), toy_data()
    stacked = stack(copy.deepcopy(models))
    optimizer = BatchedLBFGS(trainable_parameters(stacked), **LBFGS)
    optimizer.freeze(1)
    before = [p.detach()[1].clone() for p in trainable_parameters(stacked)]

    def closure():
        stacked.zero_grad()
        losses = member_losses(stacked(x), y)
        losses.sum().backward()
        return losses

    _, evals = optimizer.step(closure)
    assert evals[1] == 0 and evals[0] > 1 and evals[2] > 1
    assert all(torch.equal(b, p.detach()[1]) for b, p in zip(before, trainable_parameters(stacked)))


# ----- run_many -------------------------------------------------------------------------------
def test_run_many_records_are_runs_records(tmp_path):
    """Adam (no chaos): the same records as run, to round-off, with the same counts."""
    overrides = ["optim=adam", "optim.lr=0.01", "train.grid_schedule=[3,5]", "train.steps_per_stage=4"]
    variants = [["seed=0"], ["seed=1"], ["seed=0", "optim.lr=0.02"]]
    many = run_many([compose_config([*overrides, *v], tmp_path / "many") for v in variants], **QUIET)
    for v, result in zip(variants, many):
        solo = run(compose_config([*overrides, *v], tmp_path / "solo"), **QUIET)
        assert result.run_id == solo.run_id and result.status == solo.status == "done"
        for key in ("n_evals", "train_flops", "steps", "n_params", "grid", "lr", "seed"):
            assert getattr(result, key) == getattr(solo, key), key
        assert result.test_rmse == pytest.approx(solo.test_rmse, rel=1e-9)
        assert [s["grid"] for s in result.stages] == [3, 5]
        for ours, theirs in zip(result.stages, solo.stages):
            assert ours["train_flops"] == theirs["train_flops"]
            assert ours["train_rmse"] == pytest.approx(theirs["train_rmse"], rel=1e-9)
        assert read_result(tmp_path / "many" / result.run_id) == result.to_dict()


@pytest.mark.parametrize("overrides", [
    ["optim=adam", "optim.batch_size=50", "train.steps_per_stage=5"],  # each member's own batches
    ["model=mlp", "model.widths=[2,8,1]", "optim=adamw", "train.steps_per_stage=5"],
])
def test_run_many_minibatches_and_mlps_are_runs(tmp_path, overrides):
    many = run_many([compose_config([*overrides, f"seed={s}"], tmp_path / "many") for s in (0, 1)], **QUIET)
    for s, result in zip((0, 1), many):
        solo = run(compose_config([*overrides, f"seed={s}"], tmp_path / "solo"), **QUIET)
        assert (result.run_id, result.n_evals, result.train_flops) == \
            (solo.run_id, solo.n_evals, solo.train_flops)
        assert result.test_rmse == pytest.approx(solo.test_rmse, rel=1e-9)


def test_run_many_lbfgs_counts_as_run(tmp_path):
    overrides = ["train.steps_per_stage=2", "model.widths=[2,3,1]"]
    result = run_many([compose_config(overrides, tmp_path / "many")], **QUIET)[0]
    solo = run(compose_config(overrides, tmp_path / "solo"), **QUIET)
    assert result.n_evals == solo.n_evals and result.train_flops == solo.train_flops
    assert result.test_rmse == pytest.approx(solo.test_rmse, rel=1e-6)


def test_a_stage_end_checkpoint_lets_run_resume_a_member(tmp_path):
    cfg = compose_config(["train.grid_schedule=[3,5]", "train.steps_per_stage=2"], tmp_path)
    result = run_many([cfg], **QUIET)[0]
    (tmp_path / result.run_id / "result.json").unlink()
    resumed = run(cfg, **QUIET)  # finds the checkpoint written after the last stage
    assert resumed.test_rmse == result.test_rmse and resumed.n_evals == result.n_evals
    assert resumed.stages == result.stages


def test_failing_and_diverging_members_do_not_disturb_the_others(tmp_path, monkeypatch):
    monkeypatch.setenv("KANSCALE_FAULT", "fail:step=2@seed=2")  # harness/faults.py (tests only)
    base = ["optim=adam", "optim.lr=0.01", "train.steps_per_stage=4"]
    good = [compose_config([*base, f"seed={s}"], tmp_path) for s in (0, 1)]
    failing = compose_config([*base, "seed=2"], tmp_path)
    diverging = compose_config([*base, "seed=3", "optim.lr=1e30"], tmp_path)
    results = run_many([good[0], failing, diverging, good[1]], **QUIET)
    assert [r.status for r in results] == ["done", "failed", "diverged", "done"]
    assert results[1].error == "RuntimeError: injected failure at step 2 (KANSCALE_FAULT)"
    assert (tmp_path / results[1].run_id / "error.log").read_text().startswith("Traceback")
    assert results[2].error.startswith("train loss") and math.isnan(results[2].test_rmse)
    alone = run_many([compose_config([*base, "seed=0"], tmp_path / "alone")], **QUIET)[0]
    assert alone.test_rmse == results[0].test_rmse and alone.n_evals == results[0].n_evals


def test_a_record_does_not_depend_on_how_the_points_are_packed(tmp_path):
    overrides = ["train.steps_per_stage=2", "model.widths=[2,3,1]"]
    cfgs = [compose_config([*overrides, f"seed={s}"], tmp_path / "one") for s in range(3)]
    together = run_many(cfgs, **QUIET)
    split = run_many([compose_config([*overrides, f"seed={s}"], tmp_path / "split") for s in range(3)],
                     max_members=2, **QUIET)
    for a, b in zip(together, split):
        assert (a.run_id, a.test_rmse, a.n_evals, a.stages[-1]["train_rmse"]) == \
            (b.run_id, b.test_rmse, b.n_evals, b.stages[-1]["train_rmse"])


def test_grouping_and_fallbacks(tmp_path, monkeypatch):
    def key(*overrides):
        return group_key(resolved_dict(compose_config(list(overrides), tmp_path)))

    assert key("seed=0") == key("seed=3", "optim.lr=0.5", "experiment_name=x")
    assert key() != key("model.widths=[2,3,1]") and key() != key("optim=adam")
    calls = []
    monkeypatch.setattr("harness.ensemble.run_many.run", lambda cfg, log, stop=None: calls.append(cfg.task.name))
    run_many([compose_config(["task=pde_poisson", "model.widths=[2,2,1]",
                              "model.implementation=reference"], tmp_path)], **QUIET)
    assert calls == ["pde_poisson"]


def test_finished_runs_are_not_redone(tmp_path):
    cfg = compose_config(["train.steps_per_stage=1"], tmp_path)
    first = run_many([cfg], **QUIET)[0]
    messages = []
    again = run_many([cfg, cfg], log=messages.append)
    assert again == [first, first] and "already done" in messages[0]
