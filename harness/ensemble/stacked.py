"""Stacked ensembles: M models of one shape as one module whose parameters carry a model axis.

A stacked KAN layer holds coef (M, in, out, G+k), base_weight and spline_weight (M, in, out) and
knots (M, in, G+2k+1); x (M, B, in) -> (M, B, out). Member m computes what the solo `KANLayer`
holding its parameters computes, up to float64 round-off, and its numbers do not depend on M or
on the other members (tests/test_ensemble.py). Members are built from independently initialised
solo models (`stack`) and written back into solo models (`write_member`), so that each can be
checked, recorded and checkpointed as a solo run.

The splines, their grid updates and extensions are harness.splines' (the solo layers' code, with
the model axis). Two paths: "reference" is the solo layer's Cox-de Boor basis and GEMMs batched;
"pp" (default) evaluates splines from their piecewise-polynomial form (harness.splines.ppform):
per input a k+1 coefficient gather and Horner's rule, whatever G, differentiated analytically;
a constant input (the first layer's) is turned into a dense basis once, then one GEMM per member
and call. Inside a StackedKAN activations are feature-major, (M, features, B).
"""
from __future__ import annotations

from typing import List, Optional, Sequence, Union

import torch
import torch.nn.functional as F
from torch import nn

from harness.ensemble.kernels import MemberMatmul, PPSpline
from harness.ensemble.stacked_mlp import StackedMLP
from harness.models.kan import KAN, KANLayer, extend_layer_grids, update_layer_grids
from harness.splines import BSpline
from harness.tasks.base import member_mse
from harness.splines.ppform import dense_basis, interval_origins, pp_conversion, spline_pp_coefficients
from harness.splines.search import interval_search, locate

BASES = ("reference", "pp")
# A constant input's B-splines are cached as a dense basis (one GEMM per member and call) while an
# input has at most this many functions (G + k, + 1 with the base branch); beyond, the pp-form.
DENSE_MAX_FUNCTIONS = 64
CACHED_INPUTS = 4  # constant inputs whose basis a layer keeps (training set, test set, ...)


def member_sigmoid(x: torch.Tensor) -> torch.Tensor:
    """sigmoid of x (M, ...), one member's contiguous block at a time: vectorised transcendental
    kernels round the tail of a block differently, so this keeps a member's values independent of
    M. (silu(x) = x sigmoid(x); pykan's base branch.)"""
    out = torch.empty_like(x)
    for x_m, out_m in zip(x, out):
        torch.sigmoid(x_m, out=out_m)
    return out


class StackedKANLayer(nn.Module):
    """M KANLayers of one shape: x (M, in, B) -> (M, out, B) (feature-major)."""

    def __init__(self, layers: Sequence[KANLayer], basis: str = "pp"):
        super().__init__()
        assert basis in BASES, basis
        first = layers[0]
        self.n_models = len(layers)
        self.in_features, self.out_features, self.k = first.in_features, first.out_features, first.k
        self.grid_eps, self.basis = first.grid_eps, basis
        self.spline = BSpline(self.k)
        self.takes_model_input = False  # set by StackedKAN on its first layer: a constant input
        self.register_buffer("grid", torch.stack([layer.grid for layer in layers]))  # (M, in, G+2k+1)
        self.coef = nn.Parameter(torch.stack([layer.coef.detach() for layer in layers]),
                                 requires_grad=first.coef.requires_grad)  # (M, in, out, G+k)
        if first.base_weight is not None:
            self.base_weight = nn.Parameter(
                torch.stack([layer.base_weight.detach() for layer in layers]),
                requires_grad=first.base_weight.requires_grad)  # (M, in, out)
        else:
            self.register_parameter("base_weight", None)
        self.spline_weight = nn.Parameter(
            torch.stack([layer.spline_weight.detach() for layer in layers]),
            requires_grad=first.spline_weight.requires_grad)  # (M, in, out)
        self._tables_key, self._tables = None, None  # (grid, version) -> pp tables of the knots
        self._cache = {}  # (kind, id(x)) -> (x, its version, tables key, value): constant inputs

    @property
    def n_basis(self) -> int:
        return self.grid.shape[2] - self.k - 1  # G + k

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        assert x.shape[:2] == (self.n_models, self.in_features), x.shape
        if self.basis == "reference":
            return self._forward_reference(x.transpose(1, 2)).transpose(1, 2)
        folded = self.coef * self.spline_weight[..., None]  # (M, in, out, G+k)
        if self.takes_model_input and not x.requires_grad and self.n_basis + 1 <= DENSE_MAX_FUNCTIONS:
            weight = folded.transpose(2, 3).reshape(self.n_models, -1, self.out_features)
            if self.base_weight is not None:
                weight = torch.cat([weight, self.base_weight], 1)  # (M, in*(G+k) + in, out)
            return MemberMatmul.apply(self._cached("dense", x, self._dense_basis), weight)
        conversion, _, _ = self._pp_tables()
        pp = spline_pp_coefficients(folded.reshape(-1, self.out_features, self.n_basis), conversion, self.k)
        j1, u, silu, dsilu = self._cached("intervals", x, self._intervals)
        return PPSpline.apply(x, pp.permute(3, 0, 1, 2), self.base_weight, j1, u, silu, dsilu)

    def _forward_reference(self, x: torch.Tensor) -> torch.Tensor:
        """x (M, B, in) -> (M, B, out): the solo layer's Cox-de Boor basis and GEMMs, batched."""
        basis = self.spline.values(x, self.grid)  # (M, B, in, G+k)
        weight = (self.coef * self.spline_weight[..., None]).transpose(2, 3)  # (M, in, G+k, out)
        y = torch.bmm(basis.reshape(*x.shape[:2], -1), weight.reshape(self.n_models, -1, self.out_features))
        if self.base_weight is not None:
            y = y + torch.bmm(F.silu(x), self.base_weight)
        return y

    def _pp_tables(self):
        """(conversion, search, origins) for the current knots, recomputed when they change."""
        key = self._tables_key
        if key is None or key[0] is not self.grid or key[1] != self.grid._version:
            flat = self.grid.reshape(-1, self.grid.shape[2])  # (M*in, G+2k+1)
            self._tables = (pp_conversion(flat, self.k), interval_search(flat, feature_major=True),
                            interval_origins(flat))
            self._tables_key = (self.grid, self.grid._version)  # a new tuple per set of tables
        return self._tables

    def _cached(self, kind: str, x: torch.Tensor, compute):
        """compute(x), remembered for the model's input (the same tensor at every call; training
        and test inputs alternate) until x or the knots change."""
        self._pp_tables()
        if x.requires_grad or not self.takes_model_input:
            return compute(x)
        key = (kind, id(x))
        hit = self._cache.get(key)
        if hit is not None and hit[0] is x and hit[1] == x._version and hit[2] is self._tables_key:
            return hit[3]
        value = compute(x)
        if len(self._cache) >= CACHED_INPUTS:
            self._cache.pop(next(iter(self._cache)))
        self._cache[key] = (x, x._version, self._tables_key, value)
        return value

    def _intervals(self, x: torch.Tensor):
        """j1 (F, B), the knots <= x; u = x - the interval's origin; silu(x) and its slope."""
        _, search, origins = self._pp_tables()
        flat = x.detach().reshape(-1, x.shape[2])  # (M*in, B)
        j1 = locate(flat, search)
        silu = dsilu = None
        if self.base_weight is not None:
            sigmoid = member_sigmoid(x.detach()).view_as(flat)
            silu = flat * sigmoid
            dsilu = sigmoid * (1 + flat * (1 - sigmoid))
        return j1, flat - origins.gather(1, j1), silu, dsilu

    def _dense_basis(self, x: torch.Tensor) -> torch.Tensor:
        """A constant x's B-splines, then silu(x): (M, in*(G+k) [+ in], B), rows in the order of
        the folded weight rows."""
        conversion, _, _ = self._pp_tables()
        j1, u, silu, _ = self._intervals(x)
        batch = u.shape[1]
        dense = dense_basis(j1, u, conversion, self.k).permute(0, 2, 1)  # (F, G+k, B)
        dense = dense.reshape(self.n_models, -1, batch)  # (M, in*(G+k), B)
        if self.base_weight is not None:
            dense = torch.cat([dense, silu.view(self.n_models, self.in_features, batch)], 1)
        return dense.contiguous()

    @torch.no_grad()
    def update_grid_from_samples(self, x: torch.Tensor,
                                 members: Optional[Sequence[int]] = None) -> None:
        """pykan `update_grid_from_samples` of `members` (default all) on their inputs x
        (M, in, B) (feature-major), in place (same shapes: an optimizer holding the parameters
        keeps working)."""
        rows = list(range(self.n_models)) if members is None else list(members)
        grid, coef = self.spline.update_grid(x[rows].transpose(1, 2), self.grid[rows],
                                             self.coef[rows], self.grid_eps)
        self.grid[rows] = grid
        self.coef[rows] = coef

    @torch.no_grad()
    def extend_grid(self, n_intervals: int, x: torch.Tensor) -> None:
        """Grid extension of every member (pykan `refine`), refitted on the inputs x (M, in, B);
        coef and knots become new tensors (a new optimizer is needed, as in pykan)."""
        grid, coef = self.spline.extend(self.grid, self.coef, n_intervals, x.transpose(1, 2))
        self.grid = grid.contiguous()
        self.coef = nn.Parameter(coef, requires_grad=self.coef.requires_grad)

    @torch.no_grad()
    def load_member(self, m: int, layer: KANLayer) -> None:
        """Copy a solo layer (same grid size) into member m, in place (optimizers keep working)."""
        self.grid[m].copy_(layer.grid)
        self.coef[m].copy_(layer.coef)
        self.spline_weight[m].copy_(layer.spline_weight)
        if self.base_weight is not None:
            self.base_weight[m].copy_(layer.base_weight)

    @torch.no_grad()
    def write_member(self, m: int, layer: KANLayer) -> None:
        """Copy member m into a solo layer (its grid size becomes the stack's)."""
        layer.grid = self.grid[m].clone()
        if layer.coef.shape != self.coef.shape[1:]:
            layer.coef = nn.Parameter(self.coef[m].clone(), requires_grad=layer.coef.requires_grad)
        else:
            layer.coef.copy_(self.coef[m])
        layer.spline_weight.copy_(self.spline_weight[m])
        if self.base_weight is not None:
            layer.base_weight.copy_(self.base_weight[m])


class StackedKAN(nn.Module):
    """M KANs of one widths/G/k: x (M, B, d_in) or shared (B, d_in) -> (M, B, d_out)."""

    def __init__(self, models: Sequence[KAN], basis: str = "pp"):
        super().__init__()
        self.n_models = len(models)
        self.widths = list(models[0].widths)
        self.layers = nn.ModuleList(StackedKANLayer([model.layers[i] for model in models], basis)
                                    for i in range(len(self.widths) - 1))
        self.layers[0].takes_model_input = True  # the same input tensor at every call: cached
        self._inputs = {}  # id(x) -> (x, its version, its feature-major copy): constant inputs

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.feature_major(x)  # (M, d_in, B)
        for layer in self.layers:
            h = layer(h)
        return h.transpose(1, 2)  # (M, B, d_out)

    def feature_major(self, x: torch.Tensor) -> torch.Tensor:
        """(B, d) shared or (M, B, d) -> (M, d, B); the same tensor for the same constant input,
        so that the first layer finds its cached basis again."""
        hit = self._inputs.get(id(x))
        if hit is not None and hit[0] is x and hit[1] == x._version:
            return hit[2]
        if x.dim() == 2:
            h = x.T.unsqueeze(0).expand(self.n_models, -1, -1).contiguous()
        else:
            assert x.dim() == 3 and x.shape[0] == self.n_models, x.shape
            h = x.transpose(1, 2).contiguous()
        if not x.requires_grad:
            if len(self._inputs) >= CACHED_INPUTS:
                self._inputs.pop(next(iter(self._inputs)))
            self._inputs[id(x)] = (x, x._version, h)
        return h

    @torch.no_grad()
    def update_grid_from_samples(self, x: torch.Tensor,
                                 members: Optional[Sequence[int]] = None) -> None:
        """pykan `update_grid` of `members` (default all), as `KAN.update_grid_from_samples`, in
        place. x (B, d_in) shared by the members, or (M, B, d_in)."""
        if members is not None and not list(members):
            return
        update_layer_grids(self.layers, self.feature_major(x), members=members)

    @torch.no_grad()
    def extend_grid(self, n_intervals: int, x: torch.Tensor) -> None:
        """pykan `refine` of every member, as `KAN.extend_grid`; coef and knots become new
        tensors (a new optimizer is needed, as in pykan)."""
        extend_layer_grids(self.layers, n_intervals, self.feature_major(x))

    def load_member(self, m: int, model: KAN) -> None:
        for stacked, layer in zip(self.layers, model.layers):
            stacked.load_member(m, layer)

    def write_member(self, m: int, model: KAN) -> None:
        for stacked, layer in zip(self.layers, model.layers):
            stacked.write_member(m, layer)


Stacked = Union[StackedKAN, StackedMLP]


def stack(models: Sequence[nn.Module], basis: str = "pp") -> Stacked:
    """One stacked module from M solo models of one family (KANs: same widths, G, k; MLPs: same
    widths, activation), built by that family's `stack`."""
    from harness.models import family_of_model
    families = {family_of_model(model) for model in models}
    if len(families) != 1:
        raise TypeError(f"cannot stack {sorted({type(model).__name__ for model in models})}")
    return families.pop().stack(models, basis)


def trainable_parameters(stacked: nn.Module) -> List[nn.Parameter]:
    """Trainable parameters, each (M, ...), in the order of a solo model's parameters() (so a
    member's flattened vector is laid out as torch's optimizers lay out the solo model's): a
    stack's `parameters_in_solo_order()` where it has one, else its parameters()."""
    solo_order = getattr(stacked, "parameters_in_solo_order", None)
    params = solo_order() if solo_order is not None else list(stacked.parameters())
    return [p for p in params if p.requires_grad]


# Per-member MSE (the default training loss of a stack): the task module's, re-exported.
member_losses = member_mse
