"""Fast KAN layer: only the k+1 B-splines that are nonzero at an input are evaluated (issue 6).

FastKANLayer finds them with `BSpline.local` (harness.splines.local: closed form on uniform knots,
de Boor's triangular scheme on any others), scatters them into the dense (B, (G+k)*in) basis and runs the
same single GEMM as KANLayer. Backward keeps only the k+1 values, slopes and columns per input (the
dense basis is rebuilt, never saved): grad x = sum_r slope_r * (grad_y @ W^T) at the k+1 columns,
grad W = basis^T @ grad_y, and w_s, coef, w_b get theirs from autograd through the fold.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from harness.models.kan import KANLayer
from harness.splines.local import Layout, UniformLayout


class PaddedBasis:
    """The dense basis, input-minor: buffer (B, (G+k + 2(k+1)) * in), column (n + k+1)*in + i holds
    B_n(x_bi).

    k+1 padding columns per input on each side make every window of k+1 columns, also for x off the
    knot range, land inside the buffer, so nothing is masked: B-splines that do not exist are
    written to the padding and never read. The GEMM reads the middle, a strided (B, (G+k)*in) view.
    """

    def __init__(self, n_in: int, n_basis: int, k: int):
        self.n_in, self.n_basis, self.k = n_in, n_basis, k
        self.width = (n_basis + 2 * (k + 1)) * n_in
        self.middle = slice((k + 1) * n_in, (k + 1 + n_basis) * n_in)

    def index(self, j1: torch.Tensor) -> torch.Tensor:
        """Buffer column of B_{j-k+r}(x_bi): (j + 1 + r)*in + i -> (B, (k+1)*in)."""
        offsets = (torch.arange(self.k + 1, device=j1.device)[:, None] * self.n_in
                   + torch.arange(self.n_in, device=j1.device))  # (k+1, in)
        return (j1.unsqueeze(1) * self.n_in + offsets).view(j1.shape[0], -1)

    def dense(self, index: torch.Tensor, values: torch.Tensor) -> torch.Tensor:
        """Scatter values (B, k+1, in) -> dense basis (B, (G+k)*in), a view into the buffer."""
        buffer = values.new_empty(values.shape[0], self.width)
        buffer[:, self.middle].zero_()
        buffer.scatter_(1, index, values.view(values.shape[0], -1))  # windows never overlap
        return buffer[:, self.middle]

    def grad_input(self, grad_y: torch.Tensor, weight: torch.Tensor, index: torch.Tensor,
                   slopes: torch.Tensor) -> torch.Tensor:
        """sum_r (grad_y @ weight^T)[b, column of B_{j-k+r}(x_bi)] * slopes[b, r, i] -> (B, in);
        columns off the basis read the zero padding."""
        batch = grad_y.shape[0]
        if torch.compiler.is_compiling():  # functional form for the tracer (no out= into a view)
            buffer = F.pad(grad_y @ weight.T, (self.middle.start, self.width - self.middle.stop))
        else:  # eager: the GEMM writes straight into the middle of the padded buffer
            buffer = grad_y.new_empty(batch, self.width)
            buffer[:, : self.middle.start].zero_()
            buffer[:, self.middle.stop:].zero_()
            torch.mm(grad_y, weight.T, out=buffer[:, self.middle])
        picked = buffer.gather(1, index).view(batch, self.k + 1, self.n_in)
        return picked.mul_(slopes).sum(1)


class _SparseBasisMatmul(torch.autograd.Function):
    """y = basis(x) @ weight; basis (B, (G+k)*in) input-minor, not saved; weight ((G+k)*in, out)"""

    @staticmethod
    def forward(ctx, x, weight, spline, layout, n_basis):
        padded = PaddedBasis(x.shape[1], n_basis, spline.k)
        j1, values, slopes = spline.local(x[None], layout, with_slope=ctx.needs_input_grad[0])
        j1, values = j1[0], values[0]  # a model axis of one
        slopes = None if slopes is None else slopes[0]
        index = padded.index(j1)  # (B, (k+1)*in)
        y = padded.dense(index, values) @ weight  # (B, out)
        ctx.save_for_backward(index, values, slopes, weight)
        ctx.padded = padded
        return y

    @staticmethod
    def backward(ctx, grad_y):
        index, values, slopes, weight = ctx.saved_tensors
        padded = ctx.padded
        grad_x = grad_weight = None
        if ctx.needs_input_grad[0]:
            # d basis / dx is nonzero only at the k+1 columns: gather them from grad_y @ weight^T.
            grad_x = padded.grad_input(grad_y, weight, index, slopes)  # (B, in)
        if ctx.needs_input_grad[1]:
            grad_weight = padded.dense(index, values).T @ grad_y  # ((G+k)*in, out)
        return grad_x, grad_weight, None, None, None


class FastKANLayer(KANLayer):
    """KANLayer with the same parameters, buffers and grid methods; forward costs O(k+1) per input
    for the basis instead of O(k (G+2k)), and saves O(k+1) per input for backward."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._layout_of = (None, -1)  # (grid tensor, its version) the cached layout was made from
        self._layout = None

    @torch.compiler.disable  # data-dependent checks and a Python-side cache: run it eagerly
    def grid_layout(self) -> Layout:
        """`BSpline.layout` of the knots, recomputed when the grid buffer changes: a new tensor
        (a grid change, `.to()`) or an in-place write (load_state_dict). Holding the tensor itself, not
        its address, means a freed grid's memory reused by a new one cannot alias the cache."""
        grid = self.grid
        if self._layout_of[0] is not grid or self._layout_of[1] != grid._version:
            self._layout = self.spline.layout(grid[None])
            self._layout_of = (grid, grid._version)
        return self._layout

    @property
    def uses_uniform_path(self) -> bool:
        return isinstance(self.grid_layout(), UniformLayout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        assert x.dim() == 2 and x.shape[1] == self.in_features, x.shape
        # w_s folded into the coefficients once per call, as in KANLayer._contract.
        weight = (self.coef * self.spline_weight[:, :, None]).permute(2, 0, 1)  # (G+k, in, out)
        weight = weight.reshape(-1, self.out_features)  # ((G+k)*in, out), input-minor rows
        n_basis = self.grid.shape[1] - self.k - 1  # G + k
        y = _SparseBasisMatmul.apply(x, weight, self.spline, self.grid_layout(), n_basis)  # (B, out)
        if self.base_weight is not None:
            y = torch.addmm(y, F.silu(x), self.base_weight)
        return y
