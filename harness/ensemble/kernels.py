"""Batched kernels of the stacked KAN. Each member's numbers are independent of M: no batched GEMM
(whose kernel may change with the batch count), and every reduction runs in a fixed order.

`PPSpline` evaluates the spline part from its pp-form (harness.splines.ppform) and differentiates
it analytically; `MemberMatmul` is one GEMM per member against a cached dense basis.
"""
from __future__ import annotations

import torch

from harness.splines.ppform import horner, horner_slope


class PPSpline(torch.autograd.Function):
    """One stacked KAN layer from the pp-form: x (M, in, B) -> (M, out, B).

    pp (k+1, F, out, K+1): coefficient of u^p of every edge's polynomial on every interval row
    (F = M*in inputs, K knots; harness.splines.ppform); j1 (F, B) the row of each x, u (F, B) =
    x - the row's origin. With a base branch, base_weight (M, in, out) multiplies silu (F, B),
    whose derivative is dsilu. Work is O(M in out B (k+1)) whatever G. Backward: grad x from the
    polynomials' slopes, grad pp by scatter-add (in index order), grad base_weight = silu . grad_y.
    """

    @staticmethod
    def forward(ctx, x, pp, base_weight, j1, u, silu, dsilu):
        n_models, n_in, batch = x.shape
        n_out = pp.shape[2]
        index = j1.unsqueeze(1).expand(-1, n_out, -1)  # (F, out, B)
        picked = [pp_p.gather(2, index) for pp_p in pp]  # k+1 x (F, out, B)
        u = u.unsqueeze(1)
        y = horner(picked, u)
        if base_weight is not None:
            y = torch.addcmul(y, silu.unsqueeze(1), base_weight.reshape(-1, n_out, 1))
        ctx.save_for_backward(index, u, silu, dsilu, base_weight, *picked)
        ctx.shape = (n_models, n_in, pp.shape[3])
        return y.view(n_models, n_in, n_out, batch).sum(1)  # (M, out, B)

    @staticmethod
    def backward(ctx, grad_y):
        index, u, silu, dsilu, base_weight, *picked = ctx.saved_tensors
        n_models, n_in, n_rows = ctx.shape
        n_flat, n_out, batch = index.shape
        per_input = grad_y.unsqueeze(1).expand(-1, n_in, -1, -1).reshape(n_flat, n_out, batch)
        grad_x = grad_pp = grad_base = None
        if ctx.needs_input_grad[0]:
            slope = horner_slope(picked, u)  # (F, out, B)
            if base_weight is not None:
                slope = torch.addcmul(slope, dsilu.unsqueeze(1), base_weight.reshape(-1, n_out, 1))
            grad_x = (slope * per_input).sum(1).view(n_models, n_in, batch)
        if ctx.needs_input_grad[1]:
            grad_pp = grad_y.new_zeros(len(picked), n_flat, n_out, n_rows)
            contribution = per_input
            for p in range(len(picked)):  # d y / d pp_p = u^p at the picked row
                if p > 0:
                    contribution = contribution * u
                grad_pp[p].scatter_add_(2, index, contribution)
        if base_weight is not None and ctx.needs_input_grad[2]:
            grad_base = (per_input * silu.unsqueeze(1)).sum(-1).view(n_models, n_in, n_out)
        return grad_x, grad_pp, grad_base, None, None, None, None


class MemberMatmul(torch.autograd.Function):
    """w (M, K, out)^T @ a (M, K, B) -> (M, out, B), one GEMM per member: unlike a batched GEMM
    (whose kernel can change with M), a member's numbers never depend on M. a needs no gradient."""

    @staticmethod
    def forward(ctx, a, w):
        ctx.save_for_backward(a)
        y = a.new_empty(a.shape[0], w.shape[2], a.shape[2])
        for a_m, w_m, y_m in zip(a, w, y):
            torch.mm(w_m.T, a_m, out=y_m)
        return y

    @staticmethod
    def backward(ctx, grad_y):
        (a,) = ctx.saved_tensors
        grad_y = grad_y.contiguous()  # a strided grad_y (a transposed view) would change the GEMM
        grad_w = a.new_empty(a.shape[0], a.shape[1], grad_y.shape[1])
        for a_m, g_m, out_m in zip(a, grad_y, grad_w):
            torch.mm(a_m, g_m.T, out=out_m)
        return None, grad_w
