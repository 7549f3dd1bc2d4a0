"""Adam and AdamW (Kingma & Ba 2015; Loshchilov & Hutter 2019) for M members at once.

A member's loss depends only on its own parameters, so back-propagating the sum of the members'
losses gives each member its own gradient; Adam is elementwise, so one update of the stacked
tensors with a learning rate (and weight decay) per member is each member's solo update. The
arithmetic is that of torch.optim.Adam's single-tensor path (our reference), operation by
operation, so a member's trajectory is its solo run's up to round-off.
"""
from __future__ import annotations

from typing import Callable, List, Optional, Sequence, Tuple, Union

import torch

Number = Union[float, Sequence[float]]


def _per_member(value: Number, n_models: int) -> List[float]:
    values = [float(value)] * n_models if isinstance(value, (int, float)) else [float(v) for v in value]
    assert len(values) == n_models, (len(values), n_models)
    return values


class BatchedAdam:
    """params: tensors (M, ...); lr and weight_decay: one value or one per member.
    `decoupled=True` is AdamW. `step(closure)` -> (losses before the update, evaluations (1 each,
    0 for frozen members)); closure() zeroes gradients, back-propagates the sum of the losses and
    returns the losses (M,)."""

    def __init__(self, params: Sequence[torch.Tensor], lr: Number = 1e-3,
                 betas: Tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: Number = 0.0, decoupled: bool = False):
        self.params = list(params)
        self.n_models = self.params[0].shape[0]
        self.lr = _per_member(lr, self.n_models)
        self.weight_decay = _per_member(weight_decay, self.n_models)
        self.betas, self.eps, self.decoupled = betas, eps, decoupled
        self.n_steps = 0
        self.exp_avg = [torch.zeros_like(p) for p in self.params]
        self.exp_avg_sq = [torch.zeros_like(p) for p in self.params]
        self.frozen = [False] * self.n_models

    def state_dict(self, member: Optional[int] = None) -> dict:
        """The whole state, or member `member`'s slice (the state of a stack of one)."""
        rows = slice(None) if member is None else slice(member, member + 1)
        return {"n_steps": self.n_steps, "lr": self.lr[rows], "weight_decay": self.weight_decay[rows],
                "frozen": self.frozen[rows], "exp_avg": [t[rows].clone() for t in self.exp_avg],
                "exp_avg_sq": [t[rows].clone() for t in self.exp_avg_sq]}

    def load_state_dict(self, state: dict) -> None:
        """Our state_dict, or torch.optim.Adam/AdamW's of the same parameters of a stack of one
        (checkpoints written before the solo run trained through this optimizer)."""
        if "param_groups" in state:  # torch's: per parameter index {step, exp_avg, exp_avg_sq}
            per_param = [state["state"].get(i) for i in range(len(self.params))]
            if all(entry is None for entry in per_param):
                return
            self.n_steps = int(float(per_param[0]["step"]))
            self.exp_avg = [entry["exp_avg"].to(p).reshape(p.shape).clone()
                            for entry, p in zip(per_param, self.params)]
            self.exp_avg_sq = [entry["exp_avg_sq"].to(p).reshape(p.shape).clone()
                               for entry, p in zip(per_param, self.params)]
            return
        self.n_steps = state["n_steps"]
        self.lr, self.weight_decay = list(state["lr"]), list(state["weight_decay"])
        self.frozen = list(state["frozen"])
        self.exp_avg = [t.to(p).clone() for t, p in zip(state["exp_avg"], self.params)]
        self.exp_avg_sq = [t.to(p).clone() for t, p in zip(state["exp_avg_sq"], self.params)]

    def freeze(self, member: int) -> None:
        """A failed or diverged member: its evaluations no longer count."""
        self.frozen[member] = True

    def _column(self, values: Sequence[float], like: torch.Tensor) -> torch.Tensor:
        """(M,) values shaped to broadcast over a parameter (M, ...)."""
        column = torch.tensor(values, dtype=like.dtype, device=like.device)
        return column.view(-1, *([1] * (like.dim() - 1)))

    @torch.no_grad()
    def step(self, closure: Callable[[], torch.Tensor]):
        with torch.enable_grad():
            losses = closure().detach().tolist()
        beta1, beta2 = self.betas
        self.n_steps += 1
        step = float(self.n_steps)
        bias_correction1 = 1 - beta1 ** step
        bias_correction2_sqrt = (1 - beta2 ** step) ** 0.5
        neg_step_size = [-(lr / bias_correction1) for lr in self.lr]
        for param, exp_avg, exp_avg_sq in zip(self.params, self.exp_avg, self.exp_avg_sq):
            grad = param.grad if param.grad is not None else torch.zeros_like(param)
            if any(self.weight_decay):
                if self.decoupled:  # AdamW: param *= 1 - lr * wd
                    param.mul_(self._column([1 - lr * wd for lr, wd in zip(self.lr, self.weight_decay)],
                                            param))
                else:  # Adam's L2 term: grad + wd * param (torch's grad.add(param, alpha=wd))
                    grad = torch.addcmul(grad, param, self._column(self.weight_decay, param))
            exp_avg.lerp_(grad, 1 - beta1)
            exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
            denom = (exp_avg_sq.sqrt() / bias_correction2_sqrt).add_(self.eps)
            # torch's param.addcdiv_(exp_avg, denom, value=-step_size) = param + (-step_size * m) / d
            param.add_((self._column(neg_step_size, param) * exp_avg) / denom)
        return losses, [0 if frozen else 1 for frozen in self.frozen]
