"""The generic stack: M solo models of one family trained as one module by looping over members.

Any family gets it (`Family.stack`'s default); KANs and MLPs have fused stacks instead
(harness.ensemble.stacked, stacked_mlp). Parameters carry a leading model axis, (M, ...) per solo
parameter, so the batched optimizers work on them; member m is computed by the member's own solo
module with its slice of the parameters substituted (torch.func.functional_call), so it computes
exactly what the solo module computes, whatever M. Buffers (e.g. knots) stay in the solo modules.
Grid updates and extensions are the family's solo methods on the member's solo module, copied back.
"""
from __future__ import annotations

from typing import Any, List, Optional, Sequence

import torch
from torch import nn
from torch.func import functional_call


class MemberStack(nn.Module):
    """x (B, d_in) shared or (M, B, d_in) -> (M, B, d_out), one solo call per member."""

    def __init__(self, family: Any, models: Sequence[nn.Module]):
        super().__init__()
        self.family = family
        self.models = list(models)  # not submodules: their parameters are the stacked ones' copies
        self.n_models = len(self.models)
        self._stack_parameters()

    def _stack_parameters(self) -> None:
        named = [dict(model.named_parameters()) for model in self.models]
        self.names = list(named[0])
        self.stacked = nn.ParameterList(
            nn.Parameter(torch.stack([params[name].detach() for params in named]).clone(),
                         requires_grad=named[0][name].requires_grad)
            for name in self.names)  # each (M, *solo shape)

    def parameters_in_solo_order(self) -> List[nn.Parameter]:
        """The stacked parameters in the order of a solo model's parameters()."""
        return list(self.stacked)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        inputs = [x] * self.n_models if x.dim() == 2 else list(x)
        assert len(inputs) == self.n_models, x.shape
        return torch.stack([
            functional_call(model, {name: param[m] for name, param in zip(self.names, self.stacked)},
                            (inputs[m],))
            for m, model in enumerate(self.models)])

    @torch.no_grad()
    def write_member(self, m: int, model: nn.Module) -> None:
        """Copy member m into a solo model (its buffers too; a KAN takes the member's grid size)."""
        if model is not self.models[m]:
            from harness.train import load_state_resizing  # a KAN's grid size may differ
            load_state_resizing(model, self.models[m].state_dict())
        params = dict(model.named_parameters())
        for name, param in zip(self.names, self.stacked):
            params[name].copy_(param[m])

    @torch.no_grad()
    def _read_member(self, m: int) -> None:
        params = dict(self.models[m].named_parameters())
        for name, param in zip(self.names, self.stacked):
            param[m].copy_(params[name])

    @torch.no_grad()
    def update_grid_from_samples(self, x: torch.Tensor,
                                 members: Optional[Sequence[int]] = None) -> None:
        """The family's solo `update_grid` of `members` (default all), in place (an optimizer
        holding the stacked parameters keeps working). x (B, d_in) shared or (M, B, d_in)."""
        for m in range(self.n_models) if members is None else members:
            self.write_member(m, self.models[m])
            self.family.update_grid(self.models[m], x if x.dim() == 2 else x[m])
            self._read_member(m)

    @torch.no_grad()
    def extend_grid(self, n_intervals: int, x: torch.Tensor) -> None:
        """The family's solo `extend_grid` of every member; parameters become new tensors (a new
        optimizer is needed, as for the fused stacks)."""
        for m, model in enumerate(self.models):
            self.write_member(m, model)
            self.family.extend_grid(model, n_intervals, x if x.dim() == 2 else x[m])
        self._stack_parameters()
