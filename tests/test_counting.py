"""Parameter and FLOP counts are exact: held against the models and torch's FLOP counter."""
from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings, strategies as st
from torch.utils.flop_counter import FlopCounterMode

from harness import counting
from harness.config import KANConfig, MLPConfig
from harness.models import build_model

widths_strategy = st.lists(st.integers(1, 6), min_size=2, max_size=4)


def trainable(model) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


@settings(max_examples=40, deadline=None)
@given(widths=widths_strategy, grid=st.integers(3, 12), k=st.integers(1, 3),
       base=st.sampled_from(["silu", "none"]), train_wb=st.booleans(), train_ws=st.booleans())
def test_kan_n_params_matches_model(widths, grid, k, base, train_wb, train_ws):
    cfg = KANConfig(widths=widths, grid=grid, k=k, base_activation=base,
                    train_base_weight=train_wb, train_spline_weight=train_ws)
    assert counting.n_params(cfg) == trainable(build_model(cfg))


@settings(max_examples=40, deadline=None)
@given(widths=widths_strategy, activation=st.sampled_from(["silu", "relu", "tanh", "gelu"]),
       bias=st.booleans())
def test_mlp_n_params_matches_model(widths, activation, bias):
    cfg = MLPConfig(widths=widths, activation=activation, bias=bias)
    assert counting.n_params(cfg) == trainable(build_model(cfg))


def test_kan_n_params_after_grid_extension_matches_model():
    cfg = KANConfig(widths=[2, 5, 1], grid=3)
    model = build_model(cfg)
    model.extend_grid(10)
    assert counting.n_params(cfg, grid=10) == trainable(model) == 15 * (10 + 3 + 2)


def test_known_counts_by_hand():
    # [2,5,1] KAN, G=5, k=3: 15 edges x (G + k + 2) = 150 (Liu et al. 2024 §2.2 + w_b, w_s)
    assert counting.n_params(KANConfig(widths=[2, 5, 1], grid=5, k=3)) == 150
    # [2,32,1] MLP with bias: 2*32 + 32 + 32*1 + 1 = 129
    assert counting.n_params(MLPConfig(widths=[2, 32, 1])) == 129
    # basis per input at G=5, k=3: 2*(5+6) + 7*((5+6-1) + (5+6-2) + (5+6-3)) = 22 + 7*27 = 211
    assert counting.basis_flops_per_input(5, 3) == 211


def counted_matmul_flops(model, d_in: int, batch: int = 7) -> int:
    x = torch.rand(batch, d_in) * 2 - 1
    with FlopCounterMode(display=False) as counter:
        model(x)
    return counter.get_total_flops() // batch


@settings(max_examples=25, deadline=None)
@given(widths=widths_strategy, activation=st.sampled_from(["silu", "relu"]), bias=st.booleans())
def test_mlp_matmul_flops_match_flop_counter(widths, activation, bias):
    cfg = MLPConfig(widths=widths, activation=activation, bias=bias)
    assert counting.flops_forward(cfg).matmul == counted_matmul_flops(build_model(cfg), widths[0])


@settings(max_examples=25, deadline=None)
@given(widths=widths_strategy, grid=st.integers(3, 12), k=st.integers(1, 3),
       base=st.sampled_from(["silu", "none"]))
def test_kan_contraction_flops_match_flop_counter(widths, grid, k, base):
    cfg = KANConfig(widths=widths, grid=grid, k=k, base_activation=base)
    assert counting.flops_forward(cfg).matmul == counted_matmul_flops(build_model(cfg), widths[0])


# ----- Yu et al. 2024's convention (KANbeFair code: src/models/{kanbefair,mlp,utils}.py) -----
YU_ACTIVATION = {"silu": 5, "relu": 1, "tanh": 6, "gelu": 14, "none": 0}  # their FLOPs_MAP
SHAPES = [[2, 1], [2, 1, 1], [2, 5, 1], [4, 10, 3], [1, 7, 7, 2], [6, 3, 9, 1]]


def yu_kan_by_hand(widths, g, k, base):
    """Their KANbeFair.layer_flops written out: float arithmetic, summed over layers."""
    total = 0.0
    for d_in, d_out in zip(widths[:-1], widths[1:]):
        total += d_in * d_out * (9 * k * (g + 1.5 * k) + 2 * g - 2.5 * k + 1)
        if base != "none":
            total += YU_ACTIVATION[base] * d_in + 2 * d_in * d_out
    return total


def yu_mlp_by_hand(widths, activation):
    """Their MLP.total_flops: every layer (the output one too) pays 2 din dout + act dout."""
    return sum(2 * d_in * d_out + YU_ACTIVATION[activation] * d_out
               for d_in, d_out in zip(widths[:-1], widths[1:]))


@pytest.mark.parametrize("widths", SHAPES)
@pytest.mark.parametrize("grid,k", [(3, 1), (5, 3), (10, 2), (20, 3), (7, 5)])
@pytest.mark.parametrize("base", ["silu", "none"])
def test_yu2024_kan_matches_their_formula(widths, grid, k, base):
    cfg = KANConfig(widths=widths, grid=grid, k=k, base_activation=base)
    assert counting.flops_forward_yu2024(cfg) == yu_kan_by_hand(widths, grid, k, base)
    # a later grid-extension stage is counted at its own grid
    assert counting.flops_forward_yu2024(cfg, grid=2 * grid) == yu_kan_by_hand(widths, 2 * grid, k, base)


@pytest.mark.parametrize("widths", SHAPES)
@pytest.mark.parametrize("activation", ["silu", "relu", "tanh", "gelu", "none"])
@pytest.mark.parametrize("bias", [True, False])
def test_yu2024_mlp_matches_their_formula(widths, activation, bias):
    cfg = MLPConfig(widths=widths, activation=activation, bias=bias)
    assert counting.flops_forward_yu2024(cfg) == yu_mlp_by_hand(widths, activation)


def test_yu2024_known_values_by_hand():
    # KAN [2,1], G=5, K=3, SiLU base: 2 edges x (9*3*9.5 + 10 - 7.5 + 1) + 5*2 + 2*2 = 520 + 14
    assert counting.flops_forward_yu2024(KANConfig(widths=[2, 1], grid=5, k=3)) == 534
    # without the base branch only the spline part is left: no 2 d_in d_out, no 5 d_in
    assert counting.flops_forward_yu2024(KANConfig(widths=[2, 1], grid=5, k=3, base_activation="none")) == 520
    # MLP [2,4,1]: (2*2*4 + act*4) + (2*4*1 + act*1), the linear output layer pays act too
    assert counting.flops_forward_yu2024(MLPConfig(widths=[2, 4, 1], activation="silu")) == 24 + 5 * 5
    assert counting.flops_forward_yu2024(MLPConfig(widths=[2, 4, 1], activation="tanh")) == 24 + 6 * 5
    assert counting.flops_forward_yu2024(MLPConfig(widths=[2, 4, 1], activation="gelu")) == 24 + 14 * 5
    assert counting.flops_forward_yu2024(MLPConfig(widths=[2, 4, 1], activation="relu")) == 24 + 1 * 5


def test_yu2024_counts_the_basis_per_edge_ours_per_input():
    """The two conventions differ by the basis: theirs grows with d_out at fixed d_in, ours less."""
    narrow, wide = KANConfig(widths=[2, 1], grid=10, k=3), KANConfig(widths=[2, 8], grid=10, k=3)
    ours = counting.flops_forward(wide).basis / counting.flops_forward(narrow).basis
    assert ours == 1  # one basis per input, shared by every edge leaving it
    spline = counting.yu2024_kan_layer_flops
    assert spline(2, 8, 10, 3, "none") == 8 * spline(2, 1, 10, 3, "none")  # one per edge


def test_train_evaluation_is_three_forwards():
    cfg = MLPConfig(widths=[3, 8, 2])
    assert counting.flops_train_evaluation(cfg, 10) == 3 * 10 * counting.flops_forward(cfg).total
