"""A run's numbers do not depend on what it was packed with (issue 11, item 2): the same config run
alone (`run`, a stack of one) and packed with 2 and 7 other points (`run_many`, stacks of 3 and 8
with other seeds and learning rates) gives the same test_rmse, n_evals and train_flops, for Adam
and L-BFGS (pykan rule, strong Wolfe), KANs through a 2-stage grid schedule with grid updates, and
MLPs; and the record says how the run was executed (stack_size, time_measure)."""
from __future__ import annotations

import pytest
import torch

from harness.ensemble.batched_adam import BatchedAdam
from harness.ensemble.run_many import run_many
from harness.train import run
from tests.helpers import compose_config

QUIET = {"log": lambda *_: None}
COMMON = ["train.steps_per_stage=4", "train.grid_schedule=[3,5]", "train.update_grid_every=2",
          "task.n_train=40", "task.n_test=40", "dtype=float64", "num_threads=1"]
FAMILIES = {"kan": ["model=kan", "model.widths=[2,2,1]"], "mlp": ["model=mlp", "model.widths=[2,4,1]"]}
OPTIMS = {"lbfgs": ["optim=lbfgs", "optim.lbfgs_rule=pykan", "optim.line_search=strong_wolfe"],
          "adam": ["optim=adam", "optim.lr=0.02"]}


def _config(family, optim, root, seed=0, lr=None):
    extra = [] if lr is None else [f"optim.lr={lr}"]
    return compose_config([*COMMON, *FAMILIES[family], *OPTIMS[optim], f"seed={seed}", *extra], root)


def _others(family, optim, root, n):
    """n other points of the same shape: other seeds, and every other one another learning rate."""
    base = 1.0 if optim == "lbfgs" else 0.02
    return [_config(family, optim, root, seed=s, lr=base * (0.5 if s % 2 else 1.0))
            for s in range(1, n + 1)]


@pytest.mark.parametrize("family", sorted(FAMILIES))
@pytest.mark.parametrize("optim", sorted(OPTIMS))
def test_a_run_does_not_depend_on_what_it_was_packed_with(tmp_path, family, optim):
    alone = run(_config(family, optim, tmp_path / "alone"), **QUIET)
    assert alone.status == "done" and (alone.stack_size, alone.time_measure) == (1, "own")
    for n_others in (2, 7):
        root = tmp_path / f"packed{n_others}"
        results = run_many([_config(family, optim, root), *_others(family, optim, root, n_others)],
                           **QUIET)
        packed = results[0]
        assert packed.run_id == alone.run_id
        assert (packed.stack_size, packed.time_measure) == (n_others + 1, "share")
        assert packed.test_rmse == pytest.approx(alone.test_rmse, rel=1e-12, abs=0)
        assert (packed.n_evals, packed.train_flops) == (alone.n_evals, alone.train_flops)
        assert [s["test_rmse"] for s in packed.stages] == pytest.approx(
            [s["test_rmse"] for s in alone.stages], rel=1e-12, abs=0)
        assert len({r.test_rmse for r in results}) == len(results)  # the others are other runs
    if family == "kan":
        assert [s["grid"] for s in alone.stages] == [3, 5]


@pytest.mark.parametrize("decoupled", [False, True])
def test_batched_adam_of_one_member_is_torch_adam(float64_single_thread, decoupled):
    """BatchedAdam with M=1 follows torch.optim.Adam / AdamW (with weight decay) to round-off."""
    torch.manual_seed(0)
    start = [torch.randn(3, 4), torch.randn(4)]
    target = torch.randn(4)
    ours = [p.clone()[None].requires_grad_(True) for p in start]
    theirs = [p.clone().requires_grad_(True) for p in start]
    optimizer = BatchedAdam(ours, lr=0.05, weight_decay=0.1, decoupled=decoupled)
    torch_cls = torch.optim.AdamW if decoupled else torch.optim.Adam
    reference = torch_cls(theirs, lr=0.05, weight_decay=0.1)

    def loss(w, b):
        return ((torch.tanh(w.sum(0)) + b - target) ** 2).mean()

    for _ in range(20):
        def closure():
            for p in ours:
                p.grad = None
            value = loss(ours[0][0], ours[1][0])
            value.backward()
            return value.detach()[None]
        optimizer.step(closure)
        reference.zero_grad()
        loss(*theirs).backward()
        reference.step()
    for mine, torch_param in zip(ours, theirs):
        torch.testing.assert_close(mine[0], torch_param.detach(), rtol=1e-12, atol=1e-14)


def test_the_generic_member_stack_computes_each_member_as_its_solo_module(float64_single_thread):
    """Family.stack's default (harness.ensemble.member_stack): outputs, gradients, grid updates
    and grid extensions of member m are those of its solo model, bitwise, whatever M."""
    import copy

    from harness.config import KANConfig
    from harness.models import Family, build_model, family_of
    from harness.models.kan import KAN
    cfg = KANConfig(widths=[2, 3, 1], grid=3, implementation="reference")
    kan = family_of(cfg)
    models = []
    for seed in range(3):
        torch.manual_seed(seed)
        models.append(build_model(cfg))
    solo = copy.deepcopy(models[1])
    stacked = Family.stack(kan, [copy.deepcopy(m) for m in models])
    x = torch.rand(20, 2) * 2 - 1
    for change in ("none", "update", "extend"):
        if change == "update":
            stacked.update_grid_from_samples(x)
            kan.update_grid(solo, x)
        elif change == "extend":
            stacked.extend_grid(5, x)
            kan.extend_grid(solo, 5, x)
        out = stacked(x)
        out.sum().backward()
        solo.zero_grad()
        solo(x).sum().backward()
        assert torch.equal(out[1], solo(x))
        grads = [p.grad[1] for p in stacked.parameters_in_solo_order()]
        assert all(torch.equal(g, p.grad) for g, p in zip(grads, solo.parameters()))
        stacked.zero_grad()
    written = copy.deepcopy(models[0])
    stacked.write_member(1, written)
    assert isinstance(written, KAN) and torch.equal(written(x), solo(x))


@pytest.mark.parametrize("family", ["mlp", "kan"])
def test_task_losses_per_member_are_each_members_solo_loss(float64_single_thread, family):
    """The per-member loss hooks (Task.member_losses) of the PDE (second input derivatives) and of
    classification (cross-entropy) give each member of a stack its solo `loss`."""
    import copy

    from harness.config import KANConfig, MLPConfig
    from harness.models import build_model, family_of
    from harness.tasks import TASK_REGISTRY
    poisson, wine = TASK_REGISTRY["pde_poisson"], TASK_REGISTRY["table_wine"]
    for task, d_in, d_out in ((poisson, 2, 1), (wine, 13, 3)):
        model_cfg = (MLPConfig(widths=[d_in, 4, d_out]) if family == "mlp" else
                     KANConfig(widths=[d_in, 2, d_out], grid=3, implementation="reference"))
        models = []
        for seed in range(3):
            torch.manual_seed(seed)
            models.append(build_model(model_cfg))
        stacked = family_of(model_cfg).stack([copy.deepcopy(m) for m in models], "reference")
        data = task.make_dataset(30, 10, 0, torch.float64, torch.device("cpu"))
        x, y = data.train_input[:30], data.train_label[:30]
        losses = task.member_losses(stacked, x, y, data)
        solo = torch.stack([task.loss(model, x, y, data) for model in models])
        torch.testing.assert_close(losses, solo, rtol=1e-12, atol=0)
