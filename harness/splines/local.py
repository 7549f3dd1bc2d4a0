"""The k+1 B-splines that are nonzero at an input, and their slopes, without touching the others.

On x in the knot interval [t_j, t_{j+1}) exactly the order-k B-splines B_{j-k}, ..., B_j are nonzero
(de Boor 1978, ch. IX, local support). Both paths find j exactly as the half-open Cox-de Boor
indicator does (x == t_j lands in [t_j, t_{j+1}); x off [t_0, t_{M-1}) gets j = -1 or M-1):

- uniform knots (every row t_m = t_0 + m*h up to round-off): j = floor((x - t_0)/h), then one step
  against the stored knots; the values are fixed polynomials of u = (x - t_j)/h (Horner);
- any increasing knots: j from the interval search (harness.splines.search); the values come from
  de Boor's triangular scheme (BSPLVB) on t_{j-k+1} .. t_{j+k}.

Inside, tensors are laid out (B, k+1, F): r = 0..k indexes B_{j-k+r}, inputs are the contiguous
axis; `local_basis` takes the model axis, x (M, B, in), and flattens it into F = M*in (views when
M = 1). Grid-dependent constants are computed once per grid (`make_layout`; FastKANLayer caches
them).
"""
from __future__ import annotations

import math
from functools import lru_cache
from typing import NamedTuple, Optional, Tuple, Union

import torch

from harness.splines.knots import pad_knots
from harness.splines.ppform import horner, pp_conversion
from harness.splines.search import IntervalSearch, interval_search, locate

# Knots count as uniform when every knot is within this many ulps (of the largest |knot|) of
# t_0 + m*h: then the closed form matches Cox-de Boor on the stored knots to round-off.
UNIFORM_TOLERANCE_ULPS = 16


@lru_cache(maxsize=None)
def uniform_basis_polynomials(k: int) -> Tuple[Tuple[float, ...], ...]:
    """Power-basis coefficients M[p][r] of the k+1 uniform B-splines on one interval.

    N_r(u) = sum_p M[p][r] u^p is B_{j-k+r} at x = t_j + u*h, u in [0, 1): the pp-form
    (`pp_conversion`) on the integer knots 0..2k+1, made exact by rounding to the lattice it lies
    on (the uniform B-spline matrix is k! M integer; Qin 2000, "General matrix representations for
    B-splines", eq. 8), so every entry is the correctly rounded rational.
    """
    knots = torch.arange(2 * k + 2, dtype=torch.float64)[None, :]
    on_interval_k = pp_conversion(knots, k)[0, k + 1]  # (r, p) on [t_k, t_{k+1}), u = x - t_k
    scale = math.factorial(k)
    exact = torch.round(on_interval_k * scale) / scale
    return tuple(tuple(float(exact[r, p]) for r in range(k + 1)) for p in range(k + 1))


class UniformLayout(NamedTuple):
    inv_h: torch.Tensor  # (in,)
    shift: torch.Tensor  # (in,): 1 - t_0/h, so that x/h + shift = j + 1 + u
    search: torch.Tensor  # (M+2, in): -inf, t_0 .. t_{M-1}, NaN (x >= NaN is false, also for inf)
    value_table: torch.Tensor  # (k+1, k+1, 1): [p, r] = u^p coefficient of N_r
    slope_table: torch.Tensor  # (k, k+1, in): [p, r] = u^p coefficient of dN_r/dx (carries 1/h)


class GeneralLayout(NamedTuple):
    lo: torch.Tensor  # (in,): t_0, and x is clamped to [t_0, t_{M-1}] for the values
    hi: torch.Tensor  # (in,): t_{M-1}
    window: torch.Tensor  # (M+2k, in): k extrapolated knots, t_0 .. t_{M-1}, k extrapolated knots
    search: IntervalSearch  # input-minor


Layout = Union[UniformLayout, GeneralLayout]


def make_layout(grid: torch.Tensor, k: int) -> Layout:
    """Grid constants for `local_basis`: knots grid (M, in, K), or (F, K) rows; UniformLayout if
    every row is uniform."""
    grid = grid.reshape(-1, grid.shape[-1])
    uniform = _uniform_layout(grid, k)
    return uniform if uniform is not None else _general_layout(grid, k)


def _uniform_layout(grid: torch.Tensor, k: int) -> Optional[UniformLayout]:
    n_knots = grid.shape[1]
    t0 = grid[:, 0]
    h = (grid[:, -1] - t0) / (n_knots - 1)  # (in,)
    steps = torch.arange(n_knots, dtype=grid.dtype, device=grid.device)
    deviation = (grid - (t0[:, None] + h[:, None] * steps)).abs().amax()
    tol = UNIFORM_TOLERANCE_ULPS * torch.finfo(grid.dtype).eps * grid.abs().amax()
    if not bool((h > 0).all()) or not bool(deviation <= tol):
        return None
    inv_h = 1.0 / h
    inf = torch.full_like(t0[None, :], float("inf"))
    search = torch.cat([-inf, grid.T, torch.full_like(inf, float("nan"))]).contiguous()
    m = torch.tensor(uniform_basis_polynomials(k), dtype=torch.float64)  # (k+1, k+1)
    powers = torch.arange(1, k + 1, dtype=torch.float64)[:, None]
    slope = (powers * m[1:]).to(grid)  # d/du sum_p c_p u^p = sum_q (q+1) c_{q+1} u^q
    return UniformLayout(inv_h, 1.0 - t0 * inv_h, search, m.to(grid)[:, :, None],
                         slope[:, :, None] * inv_h)  # d/dx = (1/h) d/du


def _general_layout(grid: torch.Tensor, k: int) -> GeneralLayout:
    lo, hi = grid[:, 0], grid[:, -1]
    # Extrapolated knots (mean spacing) keep every BSPLVB denominator positive off the ends.
    window = pad_knots(grid, k).T.contiguous()
    return GeneralLayout(lo, hi, window, interval_search(grid))


def _uniform(x, layout: UniformLayout, with_slope: bool):
    n_knots = layout.search.shape[0] - 2
    s = torch.addcmul(layout.shift, x, layout.inv_h)  # (B, in): (x - t_0)/h + 1
    # j + 1 in [0, M]; clamp before the cast (inf) and after it (NaN casts to an arbitrary integer)
    j1 = s.floor().clamp_(0, n_knots).long().clamp_(0, n_knots)
    # Round-off may put x on the wrong side of a knot: one step against the stored knots fixes it,
    # so that x == t_j lands in [t_j, t_{j+1}) as in the reference (matters for slopes at k = 1).
    at_or_above_lo = x >= layout.search.gather(0, j1)  # x >= t_j
    j1.add_(x >= layout.search[1:].gather(0, j1)).add_(at_or_above_lo).sub_(1).clamp_(0, n_knots)
    u = (s - j1).clamp_(0, 1).unsqueeze(1)  # (B, 1, in); clamped so off-range x stays finite
    slopes = horner(layout.slope_table, u) if with_slope else None
    return j1, horner(layout.value_table, u), slopes


def _general(x, layout: GeneralLayout, k: int, with_slope: bool):
    j1 = locate(x, layout.search)
    # Off the knot range every column is padding; clamping x keeps those values finite.
    xc = torch.clamp(x, layout.lo, layout.hi)  # (B, in)
    knots = [layout.window[q:].gather(0, j1) for q in range(2 * k)]  # t_{j-k+1+q}, each (B, in)
    left = [None] + [xc - knots[k - s] for s in range(1, k + 1)]  # left[s] = x - t_{j+1-s}
    right = [None] + [knots[k - 1 + s] - xc for s in range(1, k + 1)]  # right[s] = t_{j+s} - x
    values = [torch.ones_like(xc)]  # level 0: B_j = 1
    terms = values
    for d in range(1, k + 1):  # BSPLVB (de Boor 1978, ch. X): every denominator spans [t_j, t_j+1]
        terms = [values[r] / (right[r + 1] + left[d - r]) for r in range(d)]  # B^{d-1}/(knot span)
        values = [right[1] * terms[0]]
        for r in range(1, d):
            values.append(torch.addcmul(left[d - r + 1] * terms[r - 1], right[r + 1], terms[r]))
        values.append(left[1] * terms[d - 1])
    slopes = None
    if with_slope:  # dB^k_n/dx = k (B^{k-1}_n/(t_{n+k}-t_n) - B^{k-1}_{n+1}/(t_{n+k+1}-t_{n+1}))
        padded_terms = [None] + terms + [None]
        slopes = torch.stack([_difference(padded_terms[r], padded_terms[r + 1], k)
                              for r in range(k + 1)], dim=1)
    return j1, torch.stack(values, dim=1), slopes


def _difference(before: Optional[torch.Tensor], after: Optional[torch.Tensor], k: int):
    """k * (before - after), either side possibly absent (zero)."""
    if before is None:
        return after * -k
    if after is None:
        return before * k
    return (before - after) * k


def local_basis(x: torch.Tensor, layout: Layout, k: int, with_slope: bool = False):
    """x (M, B, in) -> j+1 (M, B, in) long in [0, K] and values, slopes (M, B, k+1, in) of
    B_{j-k+r}(x) and dB_{j-k+r}/dx (slopes None unless asked); the layout is of the (M, in, K)
    knots. Entries of B-splines that do not exist (index off 0..G+k-1, or x off the knot range)
    are finite and meaningless: the caller must drop them."""
    n_models, batch, n_in = x.shape
    flat = x.permute(1, 0, 2).reshape(batch, n_models * n_in)  # (B, F): a view when M = 1
    if isinstance(layout, UniformLayout):
        j1, values, slopes = _uniform(flat, layout, with_slope)
    else:
        j1, values, slopes = _general(flat, layout, k, with_slope)

    def unflatten(t):  # (B, [k+1,] F) -> (M, B, [k+1,] in)
        if t is None:
            return None
        return t.view(*t.shape[:-1], n_models, n_in).movedim(-2, 0)
    return unflatten(j1), unflatten(values), unflatten(slopes)
