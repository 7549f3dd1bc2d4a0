"""Our KAN layer against pykan 0.2.8 (the reference) and the function-preservation contracts."""
from __future__ import annotations

import pytest
import torch

from harness.splines import BSpline, cox_de_boor
from harness.models.kan import KAN, KANLayer

pykan_layer = pytest.importorskip("kan.KANLayer", reason="pip install -e .[test] brings pykan 0.2.8")


def pykan_pair(in_dim, out_dim, grid, k, seed=0):
    """A pykan KANLayer and ours with the same knots, coefficients and scales."""
    torch.manual_seed(seed)
    ref = pykan_layer.KANLayer(in_dim=in_dim, out_dim=out_dim, num=grid, k=k)
    ours = KANLayer(in_dim, out_dim, grid=grid, k=k)
    with torch.no_grad():
        ours.grid.copy_(ref.grid)
        ours.coef.copy_(ref.coef)
        ours.base_weight.copy_(ref.scale_base)
        ours.spline_weight.copy_(ref.scale_sp)
    return ref, ours


@pytest.mark.parametrize("in_dim,out_dim,grid,k", [(2, 5, 5, 3), (5, 1, 10, 3), (3, 4, 3, 1), (4, 3, 20, 2)])
def test_forward_equals_pykan_to_float32_roundoff(in_dim, out_dim, grid, k):
    ref, ours = pykan_pair(in_dim, out_dim, grid, k)
    x = torch.rand(512, in_dim) * 2.4 - 1.2  # inside and a little outside [-1, 1]
    expected = ref(x)[0]
    got = ours(x)
    assert got.dtype == torch.float32
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-6)


def test_grid_update_from_samples_equals_pykan():
    ref, ours = pykan_pair(3, 2, 5, 3, seed=1)
    x = torch.randn(300, 3) * 0.7
    ref.update_grid_from_samples(x)
    ours.update_grid_from_samples(x)
    torch.testing.assert_close(ours.grid, ref.grid, rtol=1e-5, atol=1e-6)
    xs = torch.rand(200, 3) * 2 - 1
    torch.testing.assert_close(ours(xs), ref(xs)[0], rtol=1e-4, atol=1e-5)


def test_basis_is_a_partition_of_unity_inside_the_grid():
    grid = BSpline(3).initial_grid(3, 7, -1.0, 1.0, dtype=torch.float64)[0]
    x = torch.rand(1000, 3, dtype=torch.float64) * 2 - 1
    basis = cox_de_boor(x[None], grid[None], 3)[0]  # (B, in, G+k)
    assert basis.shape == (1000, 3, 10)
    torch.testing.assert_close(basis.sum(-1), torch.ones(1000, 3, dtype=torch.float64))


def dense(in_dim, lo=-1.0, hi=1.0, n=2001):
    return torch.linspace(lo, hi, n, dtype=torch.float64)[:, None].expand(n, in_dim).contiguous()


@pytest.mark.parametrize("coarse,fine", [(5, 10), (3, 12), (4, 20)])
def test_grid_extension_preserves_function_on_nested_grids(coarse, fine):
    torch.manual_seed(0)
    layer = KANLayer(2, 3, grid=coarse, k=3).double()
    with torch.no_grad():
        layer.coef.normal_()
    x = dense(2, -0.999, 0.999)
    before = layer(x)
    layer.extend_grid(fine)
    assert layer.n_intervals == fine and layer.coef.shape == (2, 3, fine + 3)
    # Nested knots: the coarse spline lies in the fine space, so the fit is exact up to the
    # conditioning of the edge bases (they barely reach into the range): ~1e-9 in float64.
    assert (layer(x) - before).abs().max() < 1e-7


def test_grid_extension_non_nested_is_close():
    torch.manual_seed(0)
    layer = KANLayer(1, 1, grid=5, k=3).double()
    x = dense(1, -0.999, 0.999)
    with torch.no_grad():  # a smooth spline (sin 2x); 5 -> 7 knots are not nested
        layer.coef.copy_(BSpline(3).fit(x[None], torch.sin(2 * x)[None, :, :, None], layer.grid[None])[0])
    before = layer(x)
    layer.extend_grid(7)
    err = (layer(x) - before).abs().max().item()
    assert err < 1e-3 * before.abs().max().item()


def test_network_grid_extension_from_samples_keeps_function():
    torch.manual_seed(0)
    model = KAN([2, 4, 1], grid=5, k=3).double()
    x = torch.rand(1000, 2, dtype=torch.float64) * 2 - 1
    before = model(x)
    model.extend_grid(20, x)  # refitted on the samples (pykan refine)
    rel = ((model(x) - before).norm() / before.norm()).item()
    assert rel < 1e-3


def test_grid_update_keeps_the_parameter_an_optimizer_holds():
    layer = KANLayer(2, 2, grid=5, k=3)
    coef = layer.coef
    optimizer = torch.optim.SGD(layer.parameters(), lr=0.1)
    layer.update_grid_from_samples(torch.rand(100, 2) * 2 - 1)
    assert layer.coef is coef  # same shape: refitted in place
    layer(torch.rand(10, 2)).sum().backward()
    before = layer.coef.detach().clone()
    optimizer.step()
    assert not torch.equal(layer.coef.detach(), before)
