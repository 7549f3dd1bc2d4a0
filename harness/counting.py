"""Exact parameter and FLOP accounting, pure functions of the model config.

Convention (ours, written down once):
- a multiply-add is 2 FLOPs; a compare, add, multiply or divide is 1 FLOP;
- per-example counts: work done once per batch on parameters (w_s folded into coef, knot
  differences) is not counted;
- elementwise activations cost ACTIVATION_FLOPS per element (SiLU = 5, as Yu et al. 2024);
- the B-spline basis is counted per *input* (it is shared by the `out` edges leaving an input);
- backward costs 2x forward, so one forward+backward evaluation costs 3x forward
  (Kaplan et al. 2020, arXiv 2001.08361, §2.1).

Yu et al. 2024's convention (`flops_forward_yu2024`, as in their code, github.com/yu-rp/KANbeFair)
differs from ours in three ways:
- KAN: the B-spline basis is counted once per *edge* (d_in * d_out times per layer), where we count
  it once per input (d_in times) and then one contraction; so ours is a fraction of theirs that
  falls with the fan-out d_out and hardly moves with G (k=3: 0.88x for [2,1,1], 0.44x for
  [2,5,1], 0.29x for [4,10,1], G from 3 to 1000);
- MLP: every layer pays its activation, the linear output layer included (their `total_flops`
  loops over all layers), and tanh costs 6, GELU 14 FLOPs per element (ours: 5 and 8);
- biases and branch adds are not counted (ours: one add per output).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterator, Optional, Tuple

# FLOPs per element of an activation: SiLU = 5 as in Yu et al. 2024 (arXiv 2407.16674);
# relu = 1 compare; tanh and gelu are our estimates (exp-based, tanh-approximation).
ACTIVATION_FLOPS = {"silu": 5, "relu": 1, "tanh": 5, "gelu": 8, "none": 0}

BACKWARD_FACTOR = 2  # backward ~ 2x forward (Kaplan et al. 2020, §2.1)


@dataclass(frozen=True)
class FlopCount:
    """Forward FLOPs per example, split so users can see where they go."""
    basis: int  # B-spline basis evaluation (Cox-de Boor), 0 for MLPs
    matmul: int  # GEMM work: spline contraction + base branch (KAN), linear layers (MLP)
    elementwise: int  # activations, bias and branch adds

    @property
    def total(self) -> int:
        return self.basis + self.matmul + self.elementwise


def _layers(widths) -> Iterator[Tuple[int, int]]:
    widths = list(widths)
    return zip(widths[:-1], widths[1:])


def _grid(cfg: Any, grid: Optional[int]) -> int:
    return cfg.grid if grid is None else grid


def family_of(cfg: Any):
    """The registered family object of a model config (harness.models.FAMILY_REGISTRY)."""
    from harness.models import family_of as lookup  # late: the family modules import this one
    return lookup(cfg)


def n_params(cfg: Any, grid: Optional[int] = None) -> int:
    """Trainable parameters; `grid` overrides cfg.grid (a later grid-extension stage)."""
    return family_of(cfg).n_params(cfg, grid)


def kan_n_params(cfg: Any, grid: Optional[int] = None) -> int:
    """A KAN's trainable parameters on `grid` intervals (default cfg.grid)."""
    g, k = _grid(cfg, grid), cfg.k
    # per edge: G + k spline coefficients (Liu et al. 2024 §2.2), + w_b, + w_s if trained
    per_edge = g + k
    per_edge += int(cfg.base_activation != "none" and cfg.train_base_weight)
    per_edge += int(cfg.train_spline_weight)
    return sum(d_in * d_out * per_edge for d_in, d_out in _layers(cfg.widths))


def mlp_n_params(cfg: Any, grid: Optional[int] = None) -> int:
    """An MLP's trainable parameters: weights d_in * d_out and biases d_out per layer; no grid."""
    return sum(d_in * d_out + (d_out if cfg.bias else 0) for d_in, d_out in _layers(cfg.widths))


def basis_flops_per_input(g: int, k: int) -> int:
    """Cox-de Boor on G + 2k + 1 knots (de Boor 1978): level 0 is 2 compares per interval
    (G + 2k intervals); level j = 1..k has G + 2k - j functions, each 2 subtractions, 2 divisions,
    2 multiplications and 1 addition = 7 FLOPs (knot differences are per-batch constants)."""
    level0 = 2 * (g + 2 * k)
    recursion = sum(7 * (g + 2 * k - j) for j in range(1, k + 1))
    return level0 + recursion


def flops_forward(cfg: Any, grid: Optional[int] = None) -> FlopCount:
    """Forward FLOPs per example under the convention in this module's docstring."""
    return family_of(cfg).flops_forward(cfg, grid)


def kan_flops_forward(cfg: Any, grid: Optional[int] = None) -> FlopCount:
    """A KAN's forward FLOPs per example: basis per input, one contraction, the base branch."""
    basis = matmul = elementwise = 0
    g, k = _grid(cfg, grid), cfg.k
    silu = cfg.base_activation != "none"
    for d_in, d_out in _layers(cfg.widths):
        basis += d_in * basis_flops_per_input(g, k)
        matmul += 2 * d_in * d_out * (g + k)  # basis (B, in*(G+k)) @ coef (in*(G+k), out)
        if silu:
            matmul += 2 * d_in * d_out  # silu(x) (B, in) @ w_b (in, out)
            elementwise += ACTIVATION_FLOPS["silu"] * d_in + d_out  # silu, branch add
    return FlopCount(basis, matmul, elementwise)


def mlp_flops_forward(cfg: Any, grid: Optional[int] = None) -> FlopCount:
    """An MLP's forward FLOPs per example: 2 d_in d_out per layer, bias adds, hidden activations."""
    matmul = elementwise = 0
    layers = list(_layers(cfg.widths))
    for i, (d_in, d_out) in enumerate(layers):
        matmul += 2 * d_in * d_out
        elementwise += d_out if cfg.bias else 0
        if i < len(layers) - 1:  # the output layer is linear
            elementwise += ACTIVATION_FLOPS[cfg.activation] * d_out
    return FlopCount(0, matmul, elementwise)


# FLOPs per element of an activation in Yu et al. 2024's code (KANbeFair src/models/utils.py,
# FLOPs_MAP); "none" is their "zero"/"identity" (no activation, no base branch).
YU2024_ACTIVATION_FLOPS = {"silu": 5, "relu": 1, "tanh": 6, "gelu": 14, "sigmoid": 4,
                           "square_relu": 2, "none": 0}


def yu2024_kan_layer_flops(d_in: int, d_out: int, g: int, k: int, base_activation: str) -> int:
    """One KAN layer under Yu et al. 2024 (arXiv 2407.16674 §3; KANbeFair `KANbeFair.layer_flops`).

    Spline part, per edge: 9K(G + 1.5K) + 2G - 2.5K + 1; base branch (absent when "none"):
    act * d_in + 2 d_in d_out. Written in integers: 13.5K^2 - 2.5K = K(27K - 5)/2 is whole.
    """
    # Yu et al. 2024, KANbeFair src/models/kanbefair.py `layer_flops`: B-spline basis per edge
    per_edge = 9 * k * g + k * (27 * k - 5) // 2 + 2 * g + 1
    flops = d_in * d_out * per_edge
    if base_activation != "none":
        # same source: shortcut = FLOPs_MAP[shortcut] * d_in + 2 * d_in * d_out
        flops += YU2024_ACTIVATION_FLOPS[base_activation] * d_in + 2 * d_in * d_out
    return flops


def yu2024_mlp_layer_flops(d_in: int, d_out: int, activation: str) -> int:
    """One MLP layer under Yu et al. 2024 (KANbeFair src/models/mlp.py `MLP.layer_flops`):
    2 d_in d_out + act * d_out; the bias is not counted, the output layer pays its activation."""
    return 2 * d_in * d_out + YU2024_ACTIVATION_FLOPS[activation] * d_out


def flops_forward_yu2024(cfg: Any, grid: Optional[int] = None) -> int:
    """Forward FLOPs per example under Yu et al. 2024 (arXiv 2407.16674), as in their code."""
    return family_of(cfg).flops_forward_yu2024(cfg, grid)


def kan_flops_forward_yu2024(cfg: Any, grid: Optional[int] = None) -> int:
    """Yu et al. 2024 for a KAN: the sum of yu2024_kan_layer_flops over layers."""
    g = _grid(cfg, grid)
    return sum(yu2024_kan_layer_flops(d_in, d_out, g, cfg.k, cfg.base_activation)
               for d_in, d_out in _layers(cfg.widths))


def mlp_flops_forward_yu2024(cfg: Any, grid: Optional[int] = None) -> int:
    """Yu et al. 2024 for an MLP: yu2024_mlp_layer_flops over *every* layer, the output layer
    included (KANbeFair `MLP.total_flops`), whatever the bias."""
    return sum(yu2024_mlp_layer_flops(d_in, d_out, cfg.activation)
               for d_in, d_out in _layers(cfg.widths))


def flops_train_evaluation(cfg: Any, n_examples: int, grid: Optional[int] = None) -> int:
    """FLOPs of one forward+backward pass over n_examples: (1 + BACKWARD_FACTOR) x forward."""
    return (1 + BACKWARD_FACTOR) * flops_forward(cfg, grid).total * n_examples


# ----- Other bases and the spline-activation MLP (issue 13) ----------------------------------
# Our convention extended: a transcendental (exp, sin, cos) is 1 FLOP, as our tanh = 5
# (mul, exp, sub, add, div) and Yu et al.'s sigmoid = 4 (neg, exp, add, div; FLOPs_MAP) imply.
# Every basis is counted per *input* (shared by the edges leaving it) plus one contraction of
# 2 * n per edge (matmul), as for the B-spline KAN. Yu et al. did not count these bases; our
# extension of their convention charges the basis per *edge* (as their B-spline formula does),
# plus 2 n per edge for the contraction, their shortcut for a SiLU base branch, 4 FLOPs per feature
# for a LayerNorm (their batchnorm_flops) and nothing for biases.

LAYER_NORM_FLOPS_PER_FEATURE = 7  # mean add, centre, square, variance add, scale, affine mul + add
LAYER_NORM_FLOPS_PER_EXAMPLE = 3  # the two sums divided by d, one rsqrt of the variance


def layer_norm_flops(d: int) -> int:
    """LayerNorm over d features, per example (Ba et al. 2016, eqs. 3-4, with the affine map)."""
    return LAYER_NORM_FLOPS_PER_FEATURE * d + LAYER_NORM_FLOPS_PER_EXAMPLE


def rbf_basis_flops_per_input(n_centres: int) -> int:
    """Li 2024 (arXiv 2405.06721) eq. 2, exp(-((x - c_i) / h)^2): sub, div, square, neg, exp per
    centre (h is a per-batch constant)."""
    return 5 * n_centres


def chebyshev_basis_flops_per_input(degree: int) -> int:
    """SS et al. 2024 (arXiv 2405.07200): tanh (5) then T_0 = 1, T_1 = t free, 2t once and
    T_{d+1} = 2t T_d - T_{d-1} (mul, sub) for d + 1 = 2..D."""
    return ACTIVATION_FLOPS["tanh"] + (1 + 2 * (degree - 1) if degree >= 2 else 0)


def fourier_basis_flops_per_input(n_frequencies: int) -> int:
    """FourierKAN: k x (mul), cos, sin for k = 1..K."""
    return 3 * n_frequencies


def basis_kan_n_params(widths, n_functions: int, base_activation: str, bias: bool,
                       layer_norm: bool = False) -> int:
    """A BasisKAN's parameters: coef in*out*n per layer, + w_b in*out (SiLU base), + bias out,
    + LayerNorm weight and bias 2 in (harness/models/basis_kan.py)."""
    total = 0
    for d_in, d_out in _layers(widths):
        total += d_in * d_out * n_functions
        total += d_in * d_out if base_activation != "none" else 0
        total += d_out if bias else 0
        total += 2 * d_in if layer_norm else 0
    return total


def basis_kan_flops_forward(widths, n_functions: int, basis_per_input: int, base_activation: str,
                            bias: bool, layer_norm: bool = False) -> FlopCount:
    """A BasisKAN's forward FLOPs per example: basis per input, one GEMM of 2 in*n*out, the base
    branch (SiLU 5 per input, GEMM 2 in*out, 1 add per output), bias adds, LayerNorm."""
    basis = matmul = elementwise = 0
    for d_in, d_out in _layers(widths):
        basis += d_in * basis_per_input
        matmul += 2 * d_in * d_out * n_functions  # basis (B, in*n) @ coef (in*n, out)
        if base_activation != "none":
            matmul += 2 * d_in * d_out  # silu(x) (B, in) @ w_b (in, out)
            elementwise += ACTIVATION_FLOPS[base_activation] * d_in + d_out
        elementwise += d_out if bias else 0
        elementwise += layer_norm_flops(d_in) if layer_norm else 0
    return FlopCount(basis, matmul, elementwise)


def basis_kan_flops_forward_yu2024(widths, n_functions: int, basis_per_input: int,
                                   base_activation: str, layer_norm: bool = False) -> int:
    """Our extension of Yu et al. 2024 to a BasisKAN (see the block comment above): per edge the
    basis and 2 n; their shortcut act * d_in + 2 d_in d_out; 4 per LayerNorm feature."""
    total = 0
    for d_in, d_out in _layers(widths):
        total += d_in * d_out * (basis_per_input + 2 * n_functions)
        if base_activation != "none":  # KANbeFair `layer_flops`' shortcut term
            total += YU2024_ACTIVATION_FLOPS[base_activation] * d_in + 2 * d_in * d_out
        total += 4 * d_in if layer_norm else 0  # KANbeFair bspline_mlp.py `batchnorm_flops`
    return total


def _rbf_kan(cfg: Any, grid: Optional[int]):
    g = _grid(cfg, grid)
    return dict(widths=cfg.widths, n_functions=g, basis_per_input=rbf_basis_flops_per_input(g),
                base_activation=cfg.base_activation, layer_norm=cfg.layer_norm)


def _cheby_kan(cfg: Any, grid: Optional[int]):
    d = _grid(cfg, grid)  # the degree D: D + 1 functions
    return dict(widths=cfg.widths, n_functions=d + 1,
                basis_per_input=chebyshev_basis_flops_per_input(d),
                base_activation=cfg.base_activation, layer_norm=False)


def _fourier_kan(cfg: Any, grid: Optional[int]):
    k = _grid(cfg, grid)  # K frequencies: 2K functions
    return dict(widths=cfg.widths, n_functions=2 * k, basis_per_input=fourier_basis_flops_per_input(k),
                base_activation=cfg.base_activation, layer_norm=False)


def _n_params_of(shape: dict, bias: bool) -> int:
    return basis_kan_n_params(shape["widths"], shape["n_functions"], shape["base_activation"],
                              bias, shape["layer_norm"])


def rbf_kan_n_params(cfg: Any, grid: Optional[int] = None) -> int:
    """FastKAN: G centres -> G coefficients per edge."""
    return _n_params_of(_rbf_kan(cfg, grid), cfg.bias)


def rbf_kan_flops_forward(cfg: Any, grid: Optional[int] = None) -> FlopCount:
    return basis_kan_flops_forward(bias=cfg.bias, **_rbf_kan(cfg, grid))


def rbf_kan_flops_forward_yu2024(cfg: Any, grid: Optional[int] = None) -> int:
    return basis_kan_flops_forward_yu2024(**_rbf_kan(cfg, grid))


def cheby_kan_n_params(cfg: Any, grid: Optional[int] = None) -> int:
    """Chebyshev KAN: degree D -> D + 1 coefficients per edge."""
    return _n_params_of(_cheby_kan(cfg, grid), cfg.bias)


def cheby_kan_flops_forward(cfg: Any, grid: Optional[int] = None) -> FlopCount:
    return basis_kan_flops_forward(bias=cfg.bias, **_cheby_kan(cfg, grid))


def cheby_kan_flops_forward_yu2024(cfg: Any, grid: Optional[int] = None) -> int:
    return basis_kan_flops_forward_yu2024(**_cheby_kan(cfg, grid))


def fourier_kan_n_params(cfg: Any, grid: Optional[int] = None) -> int:
    """Fourier KAN: K frequencies -> 2K coefficients per edge."""
    return _n_params_of(_fourier_kan(cfg, grid), cfg.bias)


def fourier_kan_flops_forward(cfg: Any, grid: Optional[int] = None) -> FlopCount:
    return basis_kan_flops_forward(bias=cfg.bias, **_fourier_kan(cfg, grid))


def fourier_kan_flops_forward_yu2024(cfg: Any, grid: Optional[int] = None) -> int:
    return basis_kan_flops_forward_yu2024(**_fourier_kan(cfg, grid))


def spline_mlp_n_params(cfg: Any, grid: Optional[int] = None) -> int:
    """Spline MLP: the MLP's weights and biases, + G + k spline coefficients and (SiLU base) one
    w_b per hidden unit (harness/models/spline_mlp.py)."""
    g, k = _grid(cfg, grid), cfg.k
    per_unit = g + k + int(cfg.base_activation != "none")
    hidden_units = sum(list(cfg.widths)[1:-1])
    return mlp_n_params(cfg) + hidden_units * per_unit


def spline_mlp_layer_flops(d_in: int, d_out: int, g: int, k: int, base_activation: str,
                           bias: bool) -> FlopCount:
    """One hidden layer of the spline MLP (Linear -> a spline per unit), per example: 2 d_in d_out
    and 1 add per bias; per unit the B-spline basis (basis_flops_per_input), its contraction
    2 (G + k) (a batched matmul), and with the SiLU base 5 + 2 (silu, w_b mul, add)."""
    elementwise = d_out if bias else 0
    if base_activation != "none":
        elementwise += (ACTIVATION_FLOPS[base_activation] + 2) * d_out
    # per unit: basis (B, G+k) @ coef (G+k, 1)
    return FlopCount(d_out * basis_flops_per_input(g, k), 2 * d_in * d_out + 2 * d_out * (g + k),
                     elementwise)


def spline_mlp_flops_forward(cfg: Any, grid: Optional[int] = None) -> FlopCount:
    """The spline MLP: spline_mlp_layer_flops per hidden layer, a linear output layer."""
    g = _grid(cfg, grid)
    layers = list(_layers(cfg.widths))
    hidden = [spline_mlp_layer_flops(d_in, d_out, g, cfg.k, cfg.base_activation, cfg.bias)
              for d_in, d_out in layers[:-1]]
    d_in, d_out = layers[-1]
    return FlopCount(sum(h.basis for h in hidden), sum(h.matmul for h in hidden) + 2 * d_in * d_out,
                     sum(h.elementwise for h in hidden) + (d_out if cfg.bias else 0))


def yu2024_spline_mlp_layer_flops(d_in: int, d_out: int, g: int, k: int, base_activation: str) -> int:
    """One layer of Yu et al.'s B-spline MLP (KANbeFair src/models/bspline_mlp.py, BSpline_MLP
    `layer_flops`): 2 d_in d_out + d_out (9K(G + 1.5K) + 2G - 2.5K - 1); our extension for a SiLU
    base term: act * d_out + 2 d_out (their shortcut with a diagonal w_b)."""
    # Yu et al. 2024, KANbeFair BSpline_MLP.layer_flops; 13.5K^2 - 2.5K = K(27K - 5)/2 is whole
    flops = 2 * d_in * d_out + d_out * (9 * k * g + k * (27 * k - 5) // 2 + 2 * g - 1)
    if base_activation != "none":
        flops += YU2024_ACTIVATION_FLOPS[base_activation] * d_out + 2 * d_out
    return flops


def spline_mlp_flops_forward_yu2024(cfg: Any, grid: Optional[int] = None) -> int:
    """Yu et al. 2024 for the spline MLP, as their `BSpline_MLP.total_flops`: every layer, the
    linear output layer included, pays the spline (as their MLP's output layer pays its
    activation), so theirs exceeds ours by the output layer's d_out splines."""
    g = _grid(cfg, grid)
    return sum(yu2024_spline_mlp_layer_flops(d_in, d_out, g, cfg.k, cfg.base_activation)
               for d_in, d_out in _layers(cfg.widths))
