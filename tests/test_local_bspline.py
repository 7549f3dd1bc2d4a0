"""The local (k+1 nonzero) B-spline evaluation against the dense Cox-de Boor reference."""
from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings, strategies as st

from harness.splines import BSpline, cox_de_boor, pad_knots as extend_grid, search
from harness.splines.local import GeneralLayout, UniformLayout, make_layout


def uniform_grid(n_in, n_intervals, k, lo, hi, dtype=None):
    return BSpline(k).initial_grid(n_in, n_intervals, lo, hi, dtype=dtype)[0]


def local_basis(x, layout, k, with_slope):  # (B, in), a model axis of one
    return [t[0] for t in BSpline(k).local(x[None], layout, with_slope)]


def bspline_basis(x, grid, k):
    return cox_de_boor(x[None], grid[None], k)[0]


def random_grid(n_in, n_intervals, k, seed, clustered):
    """Increasing, distinct knots (in, G+2k+1), float64; clustered ones are far from uniform."""
    gen = torch.Generator().manual_seed(seed)
    if clustered:
        raw = torch.randn(n_in, n_intervals + 1, generator=gen, dtype=torch.float64) ** 3
    else:
        raw = torch.rand(n_in, n_intervals + 1, generator=gen, dtype=torch.float64)
    knots = torch.sort(raw, dim=1)[0] + torch.linspace(0, 1e-3, n_intervals + 1,
                                                       dtype=torch.float64)  # distinct
    return extend_grid(knots, k)


def probe(grid, batch, seed):
    gen = torch.Generator().manual_seed(seed)
    lo, hi = grid.min(), grid.max()
    x = lo - 0.2 * (hi - lo) + 1.4 * (hi - lo) * torch.rand(batch, grid.shape[0], generator=gen,
                                                             dtype=grid.dtype)
    return torch.cat([x, grid.T])  # every knot exactly, too


def dense_from_local(x, grid, k):
    """Scatter the local values/slopes into (B, in, G+k), dropping B-splines that do not exist."""
    layout = make_layout(grid, k)
    j1, values, slopes = local_basis(x, layout, k, with_slope=True)
    n_basis = grid.shape[1] - k - 1
    columns = j1.unsqueeze(1) - 1 - k + torch.arange(k + 1)[:, None]  # (B, k+1, in): j-k+r
    keep = (columns >= 0) & (columns < n_basis)
    dense_values = torch.zeros(x.shape[0], n_basis + 2 * k + 2, x.shape[1], dtype=x.dtype)
    dense_slopes = torch.zeros_like(dense_values)
    shifted = columns + k + 1  # into a padded row, then cut
    dense_values.scatter_(1, shifted, torch.where(keep, values, 0))
    dense_slopes.scatter_(1, shifted, torch.where(keep, slopes, 0))
    cut = slice(k + 1, k + 1 + n_basis)
    return layout, dense_values[:, cut].transpose(1, 2), dense_slopes[:, cut].transpose(1, 2)


def reference_values_and_slopes(x, grid, k):
    x = x.clone().requires_grad_(True)
    basis = bspline_basis(x, grid, k)  # (B, in, G+k)
    # each basis entry depends on its own x only: d/dx of one column = grad of that column's sum
    slopes = torch.stack([torch.autograd.grad(basis[:, :, n].sum(), x, retain_graph=True)[0]
                          for n in range(basis.shape[2])], dim=-1)
    return basis.detach(), slopes


@settings(max_examples=40, deadline=None)
@given(n_in=st.integers(1, 4), k=st.integers(1, 4), extra=st.integers(0, 14),
       seed=st.integers(0, 2**31 - 1), clustered=st.booleans())
def test_general_layout_matches_cox_de_boor(n_in, k, extra, seed, clustered):
    grid = random_grid(n_in, max(k, 2) + extra, k, seed, clustered)
    x = probe(grid, 24, seed)
    layout, values, slopes = dense_from_local(x, grid, k)
    assert isinstance(layout, GeneralLayout)
    ref_values, ref_slopes = reference_values_and_slopes(x, grid, k)
    scale = ref_slopes.abs().max().item() + 1
    assert (values - ref_values).abs().max() < 1e-12
    assert (slopes - ref_slopes).abs().max() < 1e-12 * scale


@pytest.mark.parametrize("k", [1, 2, 3, 4])
def test_uniform_layout_matches_cox_de_boor(k):
    grid = uniform_grid(3, 7, k, -1.5, 2.0, dtype=torch.float64)
    x = probe(grid, 64, k)
    layout, values, slopes = dense_from_local(x, grid, k)
    assert isinstance(layout, UniformLayout)
    ref_values, ref_slopes = reference_values_and_slopes(x, grid, k)
    assert (values - ref_values).abs().max() < 1e-12
    assert (slopes - ref_slopes).abs().max() < 1e-10


@settings(max_examples=30, deadline=None)
@given(n_in=st.integers(1, 5), n_intervals=st.integers(2, 60), seed=st.integers(0, 2**31 - 1),
       clustered=st.booleans(), use_table=st.booleans())
def test_interval_search_counts_knots_at_or_below(n_in, n_intervals, seed, clustered, use_table):
    grid = random_grid(n_in, n_intervals, 3, seed, clustered)
    with pytest.MonkeyPatch.context() as patch:
        if not use_table:  # the torch.searchsorted fallback
            patch.setattr(search, "MAX_TABLE_ENTRIES", 0)
        layout = make_layout(grid, 3)
    assert isinstance(layout, GeneralLayout) and (layout.search.table is not None) == use_table
    x = torch.cat([probe(grid, 32, seed), torch.full((1, n_in), float("inf")),
                   torch.full((1, n_in), -float("inf"))])
    expected = (x.unsqueeze(-1) >= grid.unsqueeze(0)).sum(-1)  # (B, in): j + 1
    assert torch.equal(search.locate(x, layout.search), expected)


def test_uniform_layout_rejects_float32_rounded_knots():
    grid = uniform_grid(2, 9, 3, -1.0, 1.0).double()  # uniform only to float32 precision
    assert isinstance(make_layout(grid, 3), GeneralLayout)
    assert isinstance(make_layout(uniform_grid(2, 9, 3, -1.0, 1.0), 3), UniformLayout)
