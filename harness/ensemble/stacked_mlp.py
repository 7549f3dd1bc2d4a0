"""M MLPs of one shape as one module: weights (M, out, in), biases (M, out).

Each member's layer is the solo nn.Linear's own call (addmm of its bias, input and weight), one per
member, so a member computes bitwise what the solo MLP computes, whatever M.
"""
from __future__ import annotations

from typing import List, Sequence

import torch
from torch import nn

from harness.models.mlp import MLP


def _linears(model: MLP) -> List[nn.Linear]:
    return [module for module in model.net if isinstance(module, nn.Linear)]


class StackedMLP(nn.Module):
    """x (M, B, d_in) or shared (B, d_in) -> (M, B, d_out)."""

    def __init__(self, models: Sequence[MLP]):
        super().__init__()
        self.n_models = len(models)
        self.widths = list(models[0].widths)
        linears = [_linears(model) for model in models]
        self.activation = next((module for module in models[0].net
                                if not isinstance(module, nn.Linear)), None)
        self.has_bias = linears[0][0].bias is not None
        self.weights = nn.ParameterList(
            nn.Parameter(torch.stack([lin[i].weight.detach() for lin in linears]))
            for i in range(len(self.widths) - 1))  # each (M, out, in)
        self.biases = nn.ParameterList(
            nn.Parameter(torch.stack([lin[i].bias.detach() for lin in linears]))
            for i in range(len(self.widths) - 1) if self.has_bias)  # each (M, out)

    def parameters_in_solo_order(self) -> List[nn.Parameter]:
        """weight_0, bias_0, weight_1, ...: the order of a solo MLP's parameters()."""
        ordered: List[nn.Parameter] = []
        for i, weight in enumerate(self.weights):
            ordered += [weight, self.biases[i]] if self.has_bias else [weight]
        return ordered

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() == 2:
            x = x.unsqueeze(0).expand(self.n_models, -1, -1)
        assert x.dim() == 3 and x.shape[0] == self.n_models and x.shape[2] == self.widths[0], x.shape
        last = len(self.weights) - 1
        for i, weight in enumerate(self.weights):
            if self.has_bias:
                bias = self.biases[i]
                x = torch.stack([torch.addmm(bias[m], x[m], weight[m].T) for m in range(self.n_models)])
            else:
                x = torch.stack([x[m] @ weight[m].T for m in range(self.n_models)])
            if i < last:  # per member: vectorised kernels round a block's tail differently
                x = torch.stack([self.activation(x_m) for x_m in x])
        return x

    @torch.no_grad()
    def load_member(self, m: int, model: MLP) -> None:
        for i, linear in enumerate(_linears(model)):
            self.weights[i][m].copy_(linear.weight)
            if self.has_bias:
                self.biases[i][m].copy_(linear.bias)

    @torch.no_grad()
    def write_member(self, m: int, model: MLP) -> None:
        for i, linear in enumerate(_linears(model)):
            linear.weight.copy_(self.weights[i][m])
            if self.has_bias:
                linear.bias.copy_(self.biases[i][m])
