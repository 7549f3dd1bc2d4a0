"""FastKANLayer against the reference KANLayer: values, gradients, grid changes, saved memory."""
from __future__ import annotations

from contextlib import contextmanager

import pytest
import torch
from hypothesis import given, settings, strategies as st

from harness.config import KANConfig
from harness.models import build_model
from harness.models.fast_kan import FastKANLayer
from harness.splines.local import uniform_basis_polynomials
from harness.models.kan import KANLayer

TOL = 1e-10  # float64; observed differences are ~1e-14


@contextmanager
def default_dtype(dtype):
    old = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        yield
    finally:
        torch.set_default_dtype(old)


def make_pair(in_features, out_features, grid, k, seed=0, **kwargs):
    """A reference and a fast layer with one state dict, built in float64 (so knots are uniform)."""
    with default_dtype(torch.float64):
        torch.manual_seed(seed)
        ref = KANLayer(in_features, out_features, grid=grid, k=k, **kwargs)
        fast = FastKANLayer(in_features, out_features, grid=grid, k=k, **kwargs)
    fast.load_state_dict(ref.state_dict())
    return ref, fast


def probe_inputs(grid, batch, seed):
    """(batch + M + 2, in): random points on and beyond the padded knot range, every knot exactly,
    and far-out values."""
    gen = torch.Generator().manual_seed(seed)
    lo, hi = grid.min(), grid.max()
    span = hi - lo
    x = lo - 0.25 * span + 1.5 * span * torch.rand(batch, grid.shape[0], generator=gen,
                                                   dtype=grid.dtype)
    far = torch.tensor([[-1e3], [1e3]], dtype=grid.dtype).expand(2, grid.shape[0])
    return torch.cat([x, grid.T, far])


def forward_and_grads(layer, x):
    x = x.clone().requires_grad_(True)
    y = layer(x)
    cotangent = torch.linspace(-1, 1, y.numel(), dtype=y.dtype).reshape(y.shape)
    params = [layer.coef, layer.base_weight, layer.spline_weight]
    grads = torch.autograd.grad(y, [x] + params, cotangent)
    return [y] + list(grads)


def assert_same(ref, fast, x, tol=TOL):
    names = ["output", "grad x", "grad coef", "grad base_weight", "grad spline_weight"]
    for name, a, b in zip(names, forward_and_grads(ref, x), forward_and_grads(fast, x)):
        assert a.shape == b.shape, name
        err = (a - b).abs().max().item()
        assert err <= tol * max(1.0, a.abs().max().item()), f"{name}: max error {err:.3e}"


def test_uniform_cubic_matches_textbook_formula():
    # Uniform cubic B-spline segments (e.g. de Boor 1978, ch. IX; Qin 2000, eq. 8):
    # (1-u)^3/6, (3u^3 - 6u^2 + 4)/6, (-3u^3 + 3u^2 + 3u + 1)/6, u^3/6.
    m = torch.tensor(uniform_basis_polynomials(3), dtype=torch.float64)  # (power, r)
    expected = torch.tensor([[1, 4, 1, 0], [-3, 0, 3, 0], [3, -6, 3, 0], [-1, 3, -3, 1]],
                            dtype=torch.float64) / 6
    assert torch.equal(m, expected)


@pytest.mark.parametrize("k", [1, 2, 3, 4, 5])
def test_uniform_polynomials_partition_of_unity(k):
    # sum_r N_r(u) = 1 on the interval (de Boor 1978, ch. IX): coefficients sum to [1, 0, ..., 0].
    m = torch.tensor(uniform_basis_polynomials(k), dtype=torch.float64)
    expected = torch.zeros(k + 1, dtype=torch.float64)
    expected[0] = 1
    assert torch.allclose(m.sum(dim=1), expected, atol=1e-15)


@settings(max_examples=60, deadline=None)
@given(in_features=st.integers(1, 8), out_features=st.integers(1, 8), k=st.integers(1, 4),
       extra=st.integers(0, 16), batch=st.integers(1, 12), seed=st.integers(0, 2**31 - 1))
def test_uniform_grid_matches_reference(in_features, out_features, k, extra, batch, seed):
    grid = k + extra  # G in k..20
    ref, fast = make_pair(in_features, out_features, grid, k, seed=seed % 1000)
    assert fast.uses_uniform_path
    assert_same(ref, fast, probe_inputs(ref.grid, batch, seed))


@settings(max_examples=40, deadline=None)
@given(in_features=st.integers(1, 6), out_features=st.integers(1, 6), k=st.integers(1, 4),
       extra=st.integers(0, 12), seed=st.integers(0, 2**31 - 1))
def test_grid_from_samples_falls_back_and_matches(in_features, out_features, k, extra, seed):
    grid = max(k, 2) + extra  # one interval is uniform whatever its ends
    ref, fast = make_pair(in_features, out_features, grid, k, seed=seed % 1000)
    gen = torch.Generator().manual_seed(seed)
    # More samples than intervals with a continuous law: distinct percentile knots.
    samples = torch.randn(4 * grid + 8, in_features, generator=gen, dtype=torch.float64)
    fast(samples)  # caches the uniform layout before the grid moves
    ref.update_grid_from_samples(samples)
    fast.update_grid_from_samples(samples)
    assert torch.equal(ref.grid, fast.grid) and torch.equal(ref.coef, fast.coef)
    assert not fast.uses_uniform_path
    assert_same(ref, fast, probe_inputs(ref.grid, 16, seed))


@pytest.mark.parametrize("k", [1, 3])
def test_extend_grid_uniform_and_from_samples(k):
    ref, fast = make_pair(3, 2, 5, k)
    fast(torch.zeros(1, 3, dtype=torch.float64))
    for layer in (ref, fast):
        layer.extend_grid(12)  # no samples: a finer uniform grid
    assert fast.uses_uniform_path and fast.n_intervals == 12
    assert_same(ref, fast, probe_inputs(ref.grid, 32, 0))
    samples = torch.randn(200, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    for layer in (ref, fast):
        layer.update_grid_from_samples(samples)  # knots at the samples' percentiles
        layer.extend_grid(20, samples)  # pykan `refine`: those knots, interpolated
    assert not fast.uses_uniform_path and fast.n_intervals == 20
    assert_same(ref, fast, probe_inputs(ref.grid, 32, 1))


def test_in_place_grid_change_is_detected():
    ref, fast = make_pair(2, 3, 6, 3)
    fast(torch.zeros(1, 2, dtype=torch.float64))
    assert fast.uses_uniform_path
    ref.update_grid_from_samples(torch.randn(50, 2, dtype=torch.float64))
    fast.load_state_dict(ref.state_dict())  # copies into the same grid buffer
    assert not fast.uses_uniform_path
    assert_same(ref, fast, probe_inputs(ref.grid, 16, 2))


def test_float32_knots_cast_to_float64_use_the_general_path():
    # The harness builds in float32 and casts (train.py); the knots are then uniform only to float32
    # precision, so the fast layer keeps exactness by taking the general path.
    torch.manual_seed(0)
    ref = KANLayer(3, 2, grid=7, k=3).double()
    fast = FastKANLayer(3, 2, grid=7, k=3).double()
    fast.load_state_dict(ref.state_dict())
    assert not fast.uses_uniform_path
    assert_same(ref, fast, probe_inputs(ref.grid, 16, 3))


def test_float32_close_to_reference():
    torch.manual_seed(0)
    ref = KANLayer(5, 4, grid=10, k=3)
    fast = FastKANLayer(5, 4, grid=10, k=3)
    fast.load_state_dict(ref.state_dict())
    assert fast.uses_uniform_path
    assert_same(ref, fast, probe_inputs(ref.grid, 64, 4), tol=1e-5)


def test_frozen_weights_and_input_without_grad():
    ref, fast = make_pair(3, 4, 5, 3, base_activation="none", train_spline_weight=False)
    x = probe_inputs(ref.grid, 8, 5)
    y_ref, y_fast = ref(x), fast(x)  # x needs no gradient: no slopes are computed
    assert torch.allclose(y_ref, y_fast, atol=TOL, rtol=0)
    g_ref, = torch.autograd.grad(y_ref.sum(), ref.coef)
    g_fast, = torch.autograd.grad(y_fast.sum(), fast.coef)
    assert torch.allclose(g_ref, g_fast, atol=TOL, rtol=0)
    assert fast.spline_weight.grad is None


def saved_numel(forward, x):
    """Total elements of the tensors autograd saves for backward during forward(x)."""
    sizes = []

    def pack(tensor):
        sizes.append(tensor.numel())
        return tensor

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
        forward(x)
    return sum(sizes)


def test_saved_memory_scales_with_k_not_grid():
    batch, n_in, n_out, grid, k = 256, 2, 3, 1000, 3
    torch.manual_seed(0)
    fast = FastKANLayer(n_in, n_out, grid=grid, k=k)
    x = torch.rand(batch, n_in, requires_grad=True) * 2 - 1
    n_param = sum(p.numel() for p in fast.parameters())
    saved = saved_numel(fast, x)
    # columns, values and slopes (k+1 each per input), x and silu(x) for the base branch, plus the
    # folded weight and the parameters it came from.
    assert saved <= 3 * batch * n_in * (k + 1) + 2 * batch * n_in + 2 * n_param
    assert saved < batch * n_in * (grid + k) / 10
    # the reference forward on the same parameters keeps O(G) per input
    assert saved_numel(lambda inputs: KANLayer.forward(fast, inputs), x) > batch * n_in * (grid + k)


def test_build_model_fast_equals_reference():
    cfg_ref = KANConfig(widths=[3, 5, 2], grid=6, k=3, implementation="reference")
    cfg_fast = KANConfig(widths=[3, 5, 2], grid=6, k=3, implementation="fast")
    with default_dtype(torch.float64):
        torch.manual_seed(0)
        ref = build_model(cfg_ref)
        fast = build_model(cfg_fast)
    assert all(isinstance(layer, FastKANLayer) for layer in fast.layers)
    fast.load_state_dict(ref.state_dict())
    x = torch.rand(64, 3, dtype=torch.float64) * 2.4 - 1.2
    assert torch.allclose(ref(x), fast(x), atol=TOL, rtol=0)
    for model in (ref, fast):  # the grid methods are shared: same regridded model
        model.update_grid_from_samples(x)
    assert torch.allclose(ref(x), fast(x), atol=TOL, rtol=0)


def test_non_finite_inputs_do_not_break_the_layer():
    ref, fast = make_pair(3, 2, 5, 3)
    x = torch.rand(6, 3, dtype=torch.float64) * 2 - 1
    x[1, 0], x[3, 1], x[4, 2] = float("nan"), float("inf"), -float("inf")
    y_ref, y_fast = ref(x), fast(x)
    finite = torch.isfinite(x).all(dim=1)
    assert torch.allclose(y_ref[finite], y_fast[finite], atol=TOL, rtol=0)
    assert torch.isnan(y_fast[1]).all()  # NaN in, NaN out (silu), as in the reference
    assert torch.equal(torch.isfinite(y_ref), torch.isfinite(y_fast))


def test_layout_follows_consecutive_regrids():
    ref, fast = make_pair(2, 3, 6, 3)
    fast(torch.zeros(1, 2, dtype=torch.float64))  # caches the uniform layout
    gen = torch.Generator().manual_seed(7)
    for _ in range(3):  # no forward in between: each new grid tensor must be noticed
        samples = torch.randn(40, 2, generator=gen, dtype=torch.float64)
        ref.update_grid_from_samples(samples)
        fast.update_grid_from_samples(samples)
    assert_same(ref, fast, probe_inputs(ref.grid, 16, 8))


@pytest.mark.slow
def test_torch_compile_matches_eager():
    # covers the traced branch of PaddedBasis.grad_input (F.pad instead of out= into a view)
    ref, fast = make_pair(4, 3, 6, 3)
    compiled = torch.compile(fast)
    x = probe_inputs(ref.grid, 32, 9)
    assert_same(ref, compiled, x)
    samples = torch.randn(64, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(3))
    ref.update_grid_from_samples(samples)
    fast.update_grid_from_samples(samples)
    assert_same(ref, compiled, probe_inputs(ref.grid, 32, 10))
