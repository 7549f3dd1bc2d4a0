"""MLP with the same interface as the KAN: widths [d_in, h1, ..., d_out], linear output layer."""
from __future__ import annotations

from typing import List

import torch
from torch import nn

ACTIVATIONS = {"silu": nn.SiLU, "relu": nn.ReLU, "tanh": nn.Tanh, "gelu": nn.GELU}


class MLP(nn.Module):
    def __init__(self, widths: List[int], activation: str = "silu", bias: bool = True):
        super().__init__()
        self.widths = list(widths)
        layers: List[nn.Module] = []
        for i, (d_in, d_out) in enumerate(zip(widths[:-1], widths[1:])):
            layers.append(nn.Linear(d_in, d_out, bias=bias))
            if i < len(widths) - 2:
                layers.append(ACTIVATIONS[activation]())
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        assert x.dim() == 2 and x.shape[1] == self.widths[0], x.shape
        return self.net(x)
