"""B-splines in piecewise-polynomial (pp) form: per knot interval, the k+1 nonzero B-splines as
polynomials in u = x - t_j (de Boor 1978, "A Practical Guide to Splines", ch. VII and X: B-form to
pp-form), Horner's rule (the one copy every path uses), and the dense basis from the pp-form. The
interval of x comes from harness.splines.search.

With the pp-form a layer's spline part is, per input and interval, one polynomial of degree k per
output (coefficients folded once per call from coef and w_s): an evaluation is a gather of k+1
coefficients and Horner's rule, whatever G. Tables depend only on the knots (once per grid).
"""
from __future__ import annotations

from typing import Sequence

import torch

from harness.splines.knots import pad_knots


def pp_conversion(grid: torch.Tensor, k: int) -> torch.Tensor:
    """grid (F, K) increasing knots -> C (F, K+1, k+1, k+1): on the interval of x with j1 knots
    <= x (j1 = 1..K-1, interval [t_{j1-1}, t_{j1})), B_{j1-1-k+r}(x) = sum_p C[f, j1, r, p] u^p,
    u = x - t_{j1-1}. Rows j1 = 0 and K (x off the knots) are zero. B-splines that the K knots do
    not define (index off 0..K-k-2) get finite values from k knots extrapolated at the mean
    spacing; their coefficients are zero padding in the caller."""
    n_in, n_knots = grid.shape
    ext = pad_knots(grid, k)  # k knots extrapolated at the mean spacing each side
    n_int = n_knots - 1

    def knot(q: int) -> torch.Tensor:  # t_{j+q} for every interval j: (F, K-1, 1)
        return ext[:, k + q:k + q + n_int, None]

    # polys[s]: coefficients (F, K-1, degree+1) of B_{j-d+s, d}, s = 0..d, in powers of u
    polys = [torch.ones(n_in, n_int, 1, dtype=grid.dtype, device=grid.device)]
    for d in range(1, k + 1):  # Cox-de Boor: B_{i,d} = w_1 B_{i,d-1} + w_2 B_{i+1,d-1}
        new = []
        for s in range(d + 1):  # i = j - d + s
            acc = torch.zeros(n_in, n_int, d + 1, dtype=grid.dtype, device=grid.device)
            if s >= 1:  # (u + t_j - t_i) / (t_{i+d} - t_i) * B_{i,d-1}
                scaled = polys[s - 1] / (knot(s) - knot(s - d))
                acc[..., 1:] += scaled
                acc[..., :-1] += (knot(0) - knot(s - d)) * scaled
            if s <= d - 1:  # (t_{i+d+1} - t_j - u) / (t_{i+d+1} - t_{i+1}) * B_{i+1,d-1}
                scaled = polys[s] / (knot(s + 1) - knot(s - d + 1))
                acc[..., :-1] += (knot(s + 1) - knot(0)) * scaled
                acc[..., 1:] -= scaled
            new.append(acc)
        polys = new
    inner = torch.stack(polys, 2)  # (F, K-1, k+1, k+1)
    zero = inner.new_zeros(n_in, 1, k + 1, k + 1)
    return torch.cat([zero, inner, zero], 1)


def interval_origins(grid: torch.Tensor) -> torch.Tensor:
    """(F, K+1): the knot u is measured from for each j1 (t_{j1-1}; t_0 for j1 = 0)."""
    return torch.cat([grid[:, :1], grid], 1).contiguous()


def spline_pp_coefficients(folded: torch.Tensor, conversion: torch.Tensor, k: int) -> torch.Tensor:
    """folded (F, out, G+k) spline coefficients (coef * w_s), conversion (F, K+1, k+1, k+1) ->
    (F, out, K+1, k+1): the polynomial of each edge on each interval. A sum over r in a fixed
    order (not a batched GEMM), so that a member's numbers do not depend on the stack."""
    padded = torch.nn.functional.pad(folded, (k + 1, k + 1))  # B-spline n at column n + k + 1
    n_rows = conversion.shape[1]
    windows = padded.unfold(2, k + 1, 1)[:, :, :n_rows]  # (F, out, K+1, k+1): B_{j1-1-k+r}
    total = windows[..., 0, None] * conversion[:, None, :, 0]
    for r in range(1, k + 1):
        total = total + windows[..., r, None] * conversion[:, None, :, r]
    return total


def horner(coefficients: Sequence[torch.Tensor], u: torch.Tensor) -> torch.Tensor:
    """sum_p coefficients[p] u^p by Horner's rule, in one buffer; coefficients a sequence (or a
    tensor indexed on dim 0) of tensors that broadcast with u."""
    if len(coefficients) == 1:
        return coefficients[0].expand(torch.broadcast_shapes(coefficients[0].shape, u.shape))
    total = torch.addcmul(coefficients[-2], coefficients[-1], u)
    for p in range(len(coefficients) - 3, -1, -1):
        torch.addcmul(coefficients[p], total, u, out=total)
    return total


def horner_slope(coefficients: Sequence[torch.Tensor], u: torch.Tensor) -> torch.Tensor:
    """d/du sum_p coefficients[p] u^p = sum_q (q+1) coefficients[q+1] u^q."""
    if len(coefficients) == 1:
        return torch.zeros_like(coefficients[0])
    return horner([c * p for p, c in enumerate(coefficients)][1:], u)


def dense_basis(j1: torch.Tensor, u: torch.Tensor, conversion: torch.Tensor, k: int) -> torch.Tensor:
    """The dense B-spline basis from the pp-form: interval rows j1 (F, B) and u (F, B) of x,
    conversion (F, K+1, k+1, k+1) -> (F, B, K-k-1), 0 off the knots."""
    n_rows, batch = u.shape
    k1 = k + 1
    index = (j1 * k1 * k1).unsqueeze(-1) + torch.arange(k1 * k1, device=u.device)  # (F, B, k1^2)
    rows = conversion.reshape(n_rows, -1).gather(1, index.view(n_rows, -1)).view(n_rows, batch, k1, k1)
    values = horner(rows.unbind(-1), u.unsqueeze(-1))  # (F, B, k+1): the k+1 local B-splines
    n_basis = conversion.shape[1] - 2 - k  # K - k - 1
    dense = values.new_zeros(n_rows, batch, n_basis + 2 * k1)  # k+1 padding columns each side
    dense.scatter_(2, j1.unsqueeze(-1) + torch.arange(k1, device=u.device), values)
    return dense[..., k1:k1 + n_basis]
