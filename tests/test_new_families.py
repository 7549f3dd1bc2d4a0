"""The families beyond the B-spline KAN and the MLP (issue 13): a spline-activation MLP and KANs on
Gaussian-RBF, Chebyshev and Fourier bases. Counts are held against the models and torch's FLOP
counter, extensions against the function they extend, and each family trains end to end."""
from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings, strategies as st
from omegaconf import OmegaConf
from torch.utils.flop_counter import FlopCounterMode

from harness import counting
from harness.config import (ChebyKANConfig, ConfigError, FourierKANConfig, RBFKANConfig,
                            SplineMLPConfig, validate)
from harness.models import build_model, family_of, family_of_model
from harness.splines import Chebyshev, Fourier, GaussianRBF
from harness.train import load_state_resizing, run
from tests.helpers import compose_config

pytestmark = pytest.mark.usefixtures("float64_single_thread")  # tests/conftest.py

NEW_FAMILIES = ["spline_mlp", "rbf_kan", "cheby_kan", "fourier_kan"]
widths_strategy = st.lists(st.integers(1, 6), min_size=2, max_size=4)
hidden_widths = st.lists(st.integers(1, 6), min_size=3, max_size=4)  # the spline MLP needs a hidden layer
base = st.sampled_from(["silu", "none"])


def trainable(model) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def counted_matmul_flops(model, d_in: int, batch: int = 7) -> int:
    x = torch.rand(batch, d_in) * 2 - 1
    with FlopCounterMode(display=False) as counter:
        model(x)
    return counter.get_total_flops() // batch


def random_configs():
    """One strategy per family over its shape knobs."""
    return st.one_of(
        st.builds(SplineMLPConfig, widths=hidden_widths, grid=st.integers(3, 9), k=st.integers(1, 3),
                  base_activation=base, bias=st.booleans()),
        st.builds(RBFKANConfig, widths=widths_strategy, grid=st.integers(2, 9), base_activation=base,
                  bias=st.booleans()),
        st.builds(RBFKANConfig, widths=st.lists(st.integers(3, 6), min_size=2, max_size=3),
                  grid=st.integers(2, 9), base_activation=base, bias=st.booleans(),
                  layer_norm=st.just(True)),
        st.builds(ChebyKANConfig, widths=widths_strategy, grid=st.integers(1, 9), base_activation=base,
                  bias=st.booleans()),
        st.builds(FourierKANConfig, widths=widths_strategy, grid=st.integers(1, 9),
                  base_activation=base, bias=st.booleans()))


@settings(max_examples=60, deadline=None)
@given(cfg=random_configs())
def test_n_params_match_the_models(cfg):
    model = build_model(cfg)
    assert counting.n_params(cfg) == trainable(model) == sum(p.numel() for p in model.parameters())
    assert family_of_model(model).name == cfg.family


@settings(max_examples=60, deadline=None)
@given(cfg=random_configs())
def test_matmul_flops_match_the_flop_counter(cfg):
    assert counting.flops_forward(cfg).matmul == counted_matmul_flops(build_model(cfg), cfg.widths[0])


def test_known_counts_by_hand():
    # spline MLP [2,4,1], G=5, k=3, SiLU base: MLP 2*4+4+4+1 = 17, + 4 units x (5+3+1) = 53
    cfg = SplineMLPConfig(widths=[2, 4, 1], grid=5, k=3)
    assert counting.n_params(cfg) == 53
    flops = counting.flops_forward(cfg)
    assert flops.basis == 4 * counting.basis_flops_per_input(5, 3) == 4 * 211
    assert flops.matmul == 2 * 8 + 2 * 4 + 2 * 4 * 8  # two Linears, 4 contractions of 8
    assert flops.elementwise == 4 + 1 + 4 * 7  # bias adds, silu + w_b mul + add per unit
    # RBF KAN [2,3,1], G=8, SiLU base, bias: 9 edges x (8 + 1) + 3 + 1 biases = 85
    cfg = RBFKANConfig(widths=[2, 3, 1], grid=8)
    assert counting.n_params(cfg) == 85
    flops = counting.flops_forward(cfg)
    assert flops.basis == (2 + 3) * 5 * 8  # 5 FLOPs per Gaussian per input
    assert flops.matmul == 2 * 9 * 8 + 2 * 9
    assert flops.elementwise == 5 * (2 + 3) + (3 + 1) + (3 + 1)  # silu, branch add, bias
    # with the LayerNorm: + 2 d_in parameters, 7 d_in + 3 FLOPs per layer
    ln = RBFKANConfig(widths=[3, 3, 1], grid=8, layer_norm=True)
    plain = RBFKANConfig(widths=[3, 3, 1], grid=8)
    assert counting.n_params(ln) - counting.n_params(plain) == 2 * 3 + 2 * 3
    assert counting.flops_forward(ln).total - counting.flops_forward(plain).total == 2 * (7 * 3 + 3)
    # Chebyshev KAN [2,3,1], D=4, no base, no bias: 9 edges x 5 = 45; basis per input
    # tanh 5 + 2t 1 + T_2..T_4 2 each = 12
    cfg = ChebyKANConfig(widths=[2, 3, 1], grid=4)
    assert counting.n_params(cfg) == 45
    assert counting.chebyshev_basis_flops_per_input(4) == 12
    assert counting.chebyshev_basis_flops_per_input(1) == 5
    assert counting.flops_forward(cfg) == counting.FlopCount(5 * 12, 2 * 9 * 5, 0)
    # Fourier KAN [2,3,1], K=5, bias: 9 edges x 10 + 4 = 94; basis per input 3 K = 15
    cfg = FourierKANConfig(widths=[2, 3, 1], grid=5)
    assert counting.n_params(cfg) == 94
    assert counting.flops_forward(cfg) == counting.FlopCount(5 * 15, 2 * 9 * 10, 4)
    # a later stage is counted at its own grid
    assert counting.n_params(cfg, grid=7) == 9 * 14 + 4


# ----- Yu et al. 2024's convention (KANbeFair src/models/bspline_mlp.py) and our extension -----
YU_ACTIVATION = {"silu": 5, "none": 0}


def yu_spline_mlp_by_hand(widths, g, k, base):
    """Their BSpline_MLP.total_flops written out (float arithmetic), + our SiLU-base extension."""
    total = 0.0
    for d_in, d_out in zip(widths[:-1], widths[1:]):
        total += 2 * d_in * d_out + d_out * (9 * k * (g + 1.5 * k) + 2 * g - 2.5 * k - 1)
        total += (YU_ACTIVATION[base] + 2) * d_out if base != "none" else 0
    return total


@pytest.mark.parametrize("widths", [[2, 1, 1], [2, 5, 1], [4, 10, 3], [1, 7, 7, 2]])
@pytest.mark.parametrize("grid,k", [(3, 1), (5, 3), (10, 2)])
@pytest.mark.parametrize("base_activation", ["silu", "none"])
def test_yu2024_spline_mlp_matches_their_formula(widths, grid, k, base_activation):
    cfg = SplineMLPConfig(widths=widths, grid=grid, k=k, base_activation=base_activation)
    assert counting.flops_forward_yu2024(cfg) == yu_spline_mlp_by_hand(widths, grid, k, base_activation)
    assert counting.flops_forward_yu2024(cfg, grid=2 * grid) == \
        yu_spline_mlp_by_hand(widths, 2 * grid, k, base_activation)


def test_yu2024_bases_charge_the_basis_per_edge():
    # [2,3,1] Chebyshev D=4: 9 edges x (12 basis + 2 * 5 contraction), no base, no bias
    assert counting.flops_forward_yu2024(ChebyKANConfig(widths=[2, 3, 1], grid=4)) == 9 * 22
    # Fourier K=5 with a SiLU base: 9 x (15 + 20) + their shortcut 5 d_in + 2 d_in d_out per layer
    cfg = FourierKANConfig(widths=[2, 3, 1], grid=5, base_activation="silu")
    assert counting.flops_forward_yu2024(cfg) == 9 * 35 + (5 * 2 + 12) + (5 * 3 + 6)
    # RBF G=8, LayerNorm 4 per input feature (their batchnorm_flops)
    cfg = RBFKANConfig(widths=[3, 3, 1], grid=8, layer_norm=True, base_activation="none")
    assert counting.flops_forward_yu2024(cfg) == 12 * (40 + 16) + 4 * 3 + 4 * 3
    # theirs grows with d_out at fixed d_in (basis per edge); ours counts it once per input
    narrow, wide = ChebyKANConfig(widths=[2, 1], grid=6), ChebyKANConfig(widths=[2, 8], grid=6)
    assert counting.flops_forward(wide).basis == counting.flops_forward(narrow).basis
    assert counting.flops_forward_yu2024(wide) == 8 * counting.flops_forward_yu2024(narrow)


# ----- the bases --------------------------------------------------------------------------
def test_bases_values_follow_their_papers():
    x = torch.linspace(-2.5, 2.5, 11).reshape(1, 11, 1)
    centres = GaussianRBF().initial_grid(1, 5, -2.0, 2.0)
    rbf = GaussianRBF().values(x, centres)[0, :, 0]  # (B, 5)
    c = torch.linspace(-2, 2, 5)
    assert torch.allclose(rbf, torch.exp(-((x[0] - c) / 1.0) ** 2), atol=1e-15)  # h = spacing = 1
    cheb = Chebyshev().values(x, Chebyshev().initial_grid(1, 6))[0, :, 0]
    d = torch.arange(7.0)
    assert torch.allclose(cheb, torch.cos(d * torch.arccos(torch.tanh(x[0]))), atol=1e-12)
    four = Fourier().values(x, Fourier().initial_grid(1, 3))[0, :, 0]
    k = torch.arange(1.0, 4.0)
    expected = torch.stack([torch.cos(k * x[0]), torch.sin(k * x[0])], dim=-1).flatten(-2)
    assert torch.allclose(four, expected, atol=1e-15)


def test_chebyshev_has_finite_gradients_where_tanh_saturates():
    """The recurrence, not arccos: tanh(40) == 1.0 in float64, where d/dt arccos(t) is infinite."""
    x = torch.tensor([[[40.0], [-40.0], [0.3]]], requires_grad=True)
    Chebyshev().values(x, Chebyshev().initial_grid(1, 5)).sum().backward()
    assert torch.isfinite(x.grad).all()


# ----- extensions and grid updates ----------------------------------------------------------
@pytest.mark.parametrize("cfg", [ChebyKANConfig(widths=[2, 4, 3], grid=3, base_activation="silu", bias=True),
                                 FourierKANConfig(widths=[2, 4, 3], grid=2, base_activation="silu")],
                         ids=["cheby_kan", "fourier_kan"])
def test_exact_extensions_keep_the_function(cfg):
    torch.manual_seed(0)
    model = build_model(cfg)
    x = torch.rand(300, 2) * 4 - 2
    before = model(x)
    family_of(cfg).extend_grid(model, cfg.grid + 4, x)
    after = model(x)
    assert (after - before).abs().max().item() <= 1e-10
    assert trainable(model) == counting.n_params(cfg, grid=cfg.grid + 4)
    assert model.n_intervals == cfg.grid + 4
    # without samples too (the extension needs none)
    family_of(cfg).extend_grid(model, cfg.grid + 6, None)
    assert (model(x) - before).abs().max().item() <= 1e-10


@pytest.mark.parametrize("cfg", [RBFKANConfig(widths=[2, 4, 1], grid=5),
                                 SplineMLPConfig(widths=[2, 4, 1], grid=5)],
                         ids=["rbf_kan", "spline_mlp"])
def test_refine_extensions_keep_the_function_by_least_squares(cfg):
    torch.manual_seed(0)
    model = build_model(cfg)
    x = torch.rand(500, 2) * 2 - 1
    before = model(x)
    family_of(cfg).extend_grid(model, 12, x)
    after = model(x)
    scale = before.abs().max().item()
    assert (after - before).abs().max().item() <= 1e-2 * scale
    assert trainable(model) == counting.n_params(cfg, grid=12)


def test_spline_mlp_grid_update_follows_the_samples_and_keeps_the_function():
    torch.manual_seed(0)
    cfg = SplineMLPConfig(widths=[2, 4, 1], grid=5, grid_eps=0.0)
    model = build_model(cfg)
    x = torch.rand(400, 2) * 0.4  # pre-activations in a narrow part of [-1, 1]
    before = model(x)
    z = model.linears[0](x)
    family_of(cfg).update_grid(model, x)
    knots = model.activations[0].grid[:, 3:-3]  # interior knots (units, G+1)
    assert torch.allclose(knots[:, 0], z.min(0).values) and torch.allclose(knots[:, -1], z.max(0).values)
    assert (model(x) - before).abs().max().item() <= 1e-3 * before.abs().max().item()
    assert trainable(model) == counting.n_params(cfg)


def test_bases_without_a_grid_to_move_do_not_update():
    for cfg in (RBFKANConfig(widths=[2, 3, 1]), ChebyKANConfig(widths=[2, 3, 1]),
                FourierKANConfig(widths=[2, 3, 1])):
        model = build_model(cfg)
        state = {k: v.clone() for k, v in model.state_dict().items()}
        family_of(cfg).update_grid(model, torch.rand(50, 2) * 4)
        assert all(torch.equal(state[k], v) for k, v in model.state_dict().items())


@pytest.mark.parametrize("family", NEW_FAMILIES)
def test_a_checkpoint_after_extension_loads_into_a_fresh_model(family):
    cfg = compose_config([f"model={family}", "model.widths=[2,3,1]"]).model
    model = build_model(cfg)
    family_of(cfg).extend_grid(model, cfg.grid + 3, torch.rand(100, 2))
    fresh = build_model(cfg)
    load_state_resizing(fresh, model.state_dict())
    x = torch.rand(20, 2)
    assert torch.equal(fresh(x), model(x))


# ----- configs, stages, records, end to end ---------------------------------------------------
def test_stages_and_record_fields():
    for family, k in [("spline_mlp", 3), ("rbf_kan", None), ("cheby_kan", None), ("fourier_kan", None)]:
        cfg = compose_config([f"model={family}", "train.grid_schedule=[3,5,10]"])
        assert family_of(cfg.model).stage_grids(cfg) == [3, 5, 10]
        assert family_of(cfg.model).record_fields(cfg.model, 10) == {"grid": 10, "k": k}
        one = compose_config([f"model={family}"])
        assert family_of(one.model).stage_grids(one) == [one.model.grid]


@pytest.mark.parametrize("overrides,message", [
    (["model=cheby_kan", "model.grid=0"], "model.grid=0 (the Chebyshev degree D) must be >= 1"),
    (["model=fourier_kan", "model.grid=0"], "model.grid=0 (Fourier frequencies K) must be >= 1"),
    (["model=rbf_kan", "model.grid=1"], "model.grid=1 (Gaussian centres per input) must be >= 2"),
    (["model=rbf_kan", "train.grid_schedule=[4,1]"],
     "train.grid_schedule=[4, 1] shrinks at stage 1 (4 -> 1); grid extension only refines: make it "
     "non-decreasing"),
    (["model=rbf_kan", "train.grid_schedule=[1,4]"],
     "train.grid_schedule[0]=1 (Gaussian centres per input) must be >= 2"),
    (["model=rbf_kan", "model.layer_norm=true"],
     "model.layer_norm=true with widths=[2, 5, 1]: a LayerNorm over d_in < 3 inputs leaves only "
     "their signs; set model.layer_norm=false"),
    (["model=rbf_kan", "model.grid_range=[1,-1]"], "model.grid_range=[1.0, -1.0] must be finite and increasing"),
    (["model=cheby_kan", "model.base_activation=relu"], "model.base_activation='relu': choose silu or none"),
    (["model=spline_mlp", "model.grid=2"],
     "model.grid=2 is smaller than the spline order model.k=3; use grid >= k"),
    (["model=spline_mlp", "model.widths=[2,1]"],
     "model.widths=[2, 1] has no hidden layer, so no spline activation: give at least [d_in, h, d_out]"),
    (["model=spline_mlp", "model.grid_eps=2"], "model.grid_eps=2.0 must be in [0, 1]"),
])
def test_one_line_config_errors(overrides, message):
    with pytest.raises(ConfigError) as error:
        validate(compose_config(overrides))
    assert str(error.value) == message


@pytest.mark.parametrize("family", NEW_FAMILIES)
def test_each_family_trains_end_to_end(family, tmp_path):
    """A tiny run on toy_exp_sin through run(): the loss falls well below the constant predictor's,
    with a grid (degree, frequency) extension between the two stages; the record's counts are the
    extended model's."""
    cfg = compose_config([f"model={family}", "task=toy_exp_sin", "train.steps_per_stage=8",
                          "train.grid_schedule=[4,6]", "dtype=float64"], tmp_path=tmp_path)
    result = run(cfg, log=lambda *a: None)
    assert result.status == "done", result.error
    assert result.test_rmse < result.test_target_std / 2
    assert result.family == family and result.grid == 6 and [s["grid"] for s in result.stages] == [4, 6]
    model = build_model(OmegaConf.merge(cfg.model, {"grid": 4}))
    family_of(cfg.model).extend_grid(model, 6, torch.rand(64, 2) * 2 - 1)
    assert result.n_params == trainable(model) == counting.n_params(cfg.model, 6)
    assert result.flops_forward == counting.flops_forward(cfg.model, 6).total
    assert math.isfinite(result.flops_forward_yu2024) and result.flops_forward_yu2024 > 0


@pytest.mark.parametrize("family", ["spline_mlp", "rbf_kan", "cheby_kan", "fourier_kan"])
def test_train_flops_count_only_the_evaluations_that_ran(family, tmp_path):
    """With Adam (one evaluation per step) train_flops is the steps' 3 x forward x n_train, plus
    one forward over the training inputs per grid update (only a grid that follows the samples:
    the spline MLP's) and per refitting extension (not the exact zero-padding of the Chebyshev
    and Fourier ones)."""
    steps, n_train, every = 6, 64, 2
    cfg = compose_config([f"model={family}", "task=toy_exp_sin", "optim=adam",
                          f"train.steps_per_stage={steps}", "train.grid_schedule=[4,6]",
                          f"train.update_grid_every={every}", f"task.n_train={n_train}",
                          "dtype=float64"], tmp_path=tmp_path)
    result = run(cfg, log=lambda *a: None)
    assert result.status == "done", result.error
    fam = family_of(cfg.model)
    forward = {g: counting.flops_forward(cfg.model, g).total for g in (4, 6)}
    expected = sum(steps * 3 * forward[g] * n_train for g in (4, 6))
    if fam.updates_grid:
        updates = len([s for s in range(steps) if s % every == 0 and s < cfg.train.update_grid_until])
        expected += updates * n_train * (forward[4] + forward[6])
    if fam.extension_refits:
        expected += n_train * forward[6]
    assert result.n_evals == 2 * steps
    assert result.train_flops == expected
