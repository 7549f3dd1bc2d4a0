"""harness.splines: the model axis is a batch of solo calls, slopes, and the one interval search."""
from __future__ import annotations

import pytest
import torch

from harness.splines import BSpline, cox_de_boor
from harness.splines.search import interval_search, locate


def knots_and_samples(n_models=3, n_in=2, n_intervals=6, k=3, batch=50, seed=0):
    """Knots (M, in, G+2k+1) moved to each member's own samples, and those samples (M, B, in)."""
    gen = torch.Generator().manual_seed(seed)
    spline = BSpline(k)
    x = torch.randn(n_models, batch, n_in, generator=gen, dtype=torch.float64)
    x = x * torch.arange(1, n_models + 1, dtype=torch.float64)[:, None, None]  # other ranges
    grid = spline.grid_from_samples(torch.sort(x, dim=1)[0], n_intervals, 0.02)
    coef = torch.randn(n_models, n_in, 4, spline.n_functions(n_intervals), generator=gen,
                       dtype=torch.float64)
    return spline, grid, coef, x


def test_a_stack_of_members_is_each_member_alone_bitwise():
    spline, grid, coef, x = knots_and_samples()
    values = spline.values(x, grid)
    new_grid, new_coef = spline.update_grid(x, grid, coef, 0.02)
    fine_grid, fine_coef = spline.extend(grid, coef, 11, x)
    for m in range(x.shape[0]):
        one = slice(m, m + 1)
        assert torch.equal(values[one], spline.values(x[one], grid[one]))
        solo_grid, solo_coef = spline.update_grid(x[one], grid[one], coef[one], 0.02)
        assert torch.equal(new_grid[one], solo_grid) and torch.equal(new_coef[one], solo_coef)
        solo_grid, solo_coef = spline.extend(grid[one], coef[one], 11, x[one])
        assert torch.equal(fine_grid[one], solo_grid) and torch.equal(fine_coef[one], solo_coef)


def test_extension_to_a_multiple_of_the_grid_keeps_the_splines_exactly():
    # G' = 2G: the refined knots contain the old ones, so on the knot range (the samples') the
    # old splines lie in the new space and the least-squares refit reproduces them.
    spline, grid, coef, x = knots_and_samples(n_intervals=6)
    fine_grid, fine_coef = spline.extend(grid, coef, 12, x)
    assert fine_coef.shape[-1] == spline.n_functions(12)
    before = spline.spline_values(x, grid, coef)
    after = spline.spline_values(x, fine_grid, fine_coef)
    assert (after - before).abs().max() < 1e-10 * before.abs().max()


@pytest.mark.parametrize("k", [1, 2, 3, 4])
def test_derivatives_are_the_slopes_of_cox_de_boor(k):
    spline, grid, _, x = knots_and_samples(k=k, batch=40)
    x = x.clone().requires_grad_(True)
    basis = cox_de_boor(x, grid, k)
    # each entry depends on its own x only: d/dx of one column = grad of that column's sum
    expected = torch.stack([torch.autograd.grad(basis[..., n].sum(), x, retain_graph=True)[0]
                            for n in range(basis.shape[-1])], dim=-1)
    got = spline.derivatives(x.detach(), grid)
    assert (got - expected).abs().max() < 1e-10 * (expected.abs().max() + 1)


def test_interval_search_is_the_same_in_both_layouts():
    _, grid, _, x = knots_and_samples(n_intervals=40)
    flat_grid = grid.reshape(-1, grid.shape[-1])  # (F, K)
    rows = x.permute(1, 0, 2).reshape(x.shape[1], -1)  # (B, F)
    rows = torch.cat([rows, flat_grid.T, torch.full_like(rows[:1], float("inf")),
                      torch.full_like(rows[:1], -float("inf"))])
    expected = (rows.unsqueeze(-1) >= flat_grid.unsqueeze(0)).sum(-1)  # knots <= x
    assert torch.equal(locate(rows, interval_search(flat_grid)), expected)
    assert torch.equal(locate(rows.T.contiguous(), interval_search(flat_grid, feature_major=True)),
                       expected.T)
