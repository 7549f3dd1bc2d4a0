"""Parameter and FLOP counts are exact: held against the models and torch's FLOP counter."""
from __future__ import annotations

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


def test_yu2024_formula_values():
    # Yu et al. 2024 §3: (d_in d_out)[9K(G+1.5K) + 2G - 2.5K + 3] + 5 d_in, one layer 2->1, G=5, K=3
    per_edge = 9 * 3 * (5 + 4.5) + 2 * 5 - 7.5 + 3
    assert counting.flops_forward_yu2024(KANConfig(widths=[2, 1], grid=5, k=3)) == round(2 * per_edge + 10)
    # MLP [2, 4, 1] with SiLU (5 FLOPs): (2*2*4 + 5*4) + (2*4*1 + 0)
    assert counting.flops_forward_yu2024(MLPConfig(widths=[2, 4, 1])) == 36 + 8


def test_train_evaluation_is_three_forwards():
    cfg = MLPConfig(widths=[3, 8, 2])
    assert counting.flops_train_evaluation(cfg, 10) == 3 * 10 * counting.flops_forward(cfg).total
