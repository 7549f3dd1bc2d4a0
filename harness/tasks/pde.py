"""The 2-D Poisson problem of the KAN paper solved as a PINN (Liu et al. 2024, §3.4).

    u_xx + u_yy = f  on [-1, 1]^2,   u = 0 on the boundary,
    f = -pi^2 (1 + 4 y^2) sin(pi x) sin(pi y^2) + 2 pi sin(pi x) cos(pi y^2),
    exact solution u* = sin(pi x) sin(pi y^2).

Training points are n_train interior points uniform in the square plus 200 fixed points per side;
labels are u* (so the trainer's train/test RMSE are solution errors), but the loss never sees them:
it is the PINN loss alpha * mean|u_xx + u_yy - f|^2 + mean|u|^2 on the boundary.

Error normalisation: means over the test points, i.e. Monte-Carlo estimates of
(1/|Omega|) * integral over Omega (|Omega| = 4) of the squared error.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import ClassVar, Dict, Optional, Tuple

import numpy as np
import torch

from harness.tasks import register
from harness.tasks.base import Dataset, Task, box, make_dataset, member_mse

PI = np.pi


def exact_solution(x: np.ndarray) -> np.ndarray:
    """u*(x, y) = sin(pi x) sin(pi y^2) (§3.4): (n, 2) float64 -> (n,)."""
    return np.sin(PI * x[:, 0]) * np.sin(PI * x[:, 1] ** 2)


def exact_gradient(x: torch.Tensor) -> torch.Tensor:
    """grad u* = (pi cos(pi x) sin(pi y^2), 2 pi y sin(pi x) cos(pi y^2)): (n, 2) -> (n, 2)."""
    x0, x1 = x[:, 0], x[:, 1]
    u_x = PI * torch.cos(PI * x0) * torch.sin(PI * x1 ** 2)
    u_y = 2 * PI * x1 * torch.sin(PI * x0) * torch.cos(PI * x1 ** 2)
    return torch.stack([u_x, u_y], dim=1)


def source(x: torch.Tensor) -> torch.Tensor:
    """f = Laplacian of u* (§3.4): (n, 2) -> (n, 1); any dtype and device."""
    x0, x1 = x[:, :1], x[:, 1:2]
    # u*_xx = -pi^2 u*, u*_yy = 2 pi sin(pi x) cos(pi y^2) - 4 pi^2 y^2 u*  (chain rule on sin(pi y^2))
    return (-PI ** 2 * (1 + 4 * x1 ** 2) * torch.sin(PI * x0) * torch.sin(PI * x1 ** 2)
            + 2 * PI * torch.sin(PI * x0) * torch.cos(PI * x1 ** 2))


def boundary_points(n_per_side: int, dtype: torch.dtype = torch.float64,
                    device: Optional[torch.device] = None) -> torch.Tensor:
    """n_per_side midpoints of n_per_side equal cells on each side of [-1, 1]^2 -> (4 n, 2).

    Midpoints, so no corner appears twice; the order is x=-1, x=1, y=-1, y=1.
    """
    t = -1 + (2 * torch.arange(n_per_side, dtype=dtype, device=device) + 1) / n_per_side  # (n,)
    ones = torch.ones_like(t)
    sides = [(-ones, t), (ones, t), (t, -ones), (t, ones)]
    return torch.cat([torch.stack(side, dim=1) for side in sides], dim=0)


def gradient_and_laplacian(model: torch.nn.Module, x: torch.Tensor
                           ) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """u (..., B, 1), grad u (..., B, 2), Laplacian u (..., B, 1) by autograd, differentiable
    w.r.t. the parameters; x (B, 2), or (M, B, 2) for a model stack (harness.ensemble).

    Row i of the output depends only on row i of the input (no batch coupling in KAN or MLP, and
    members of a stack are independent), so the gradient of the sum gives every point's own
    derivative.
    """
    x = x.detach().requires_grad_(True)
    u = model(x)  # (..., B, 1)
    grad = torch.autograd.grad(u.sum(), x, create_graph=True)[0]  # (..., B, 2)
    laplacian = torch.zeros_like(u)
    for i in range(x.shape[-1]):
        second = torch.autograd.grad(grad[..., i].sum(), x, create_graph=True)[0]  # (..., B, 2)
        laplacian = laplacian + second[..., i:i + 1]
    return u, grad, laplacian


@dataclass(frozen=True)
class PoissonTask(Task):
    """Task hooks for the PINN: extras hold the boundary points, f on the training points and the
    exact gradient on the test points."""
    alpha: float = 0.01  # weight of the interior residual (§3.4)
    n_boundary_per_side: int = 200  # n_b = 800 (§3.4)
    needs_second_derivatives: ClassVar[bool] = True  # u_xx + u_yy through autograd
    default_n_train: ClassVar[int] = 10000  # n_i interior points (§3.4)

    def make_dataset(self, n_train: int, n_test: int, seed: int, dtype: torch.dtype,
                     device: Optional[torch.device]) -> Dataset:
        data = make_dataset(self, n_train, n_test, seed, dtype, device)
        extras = {
            "boundary_input": boundary_points(self.n_boundary_per_side, dtype, device),  # (n_b, 2)
            "train_source": source(data.train_input),  # (n_train, 1)
            "test_grad": exact_gradient(data.test_input),  # (n_test, 2)
        }
        return dataclasses.replace(data, extras=extras)

    def member_losses(self, stacked: torch.nn.Module, x: torch.Tensor, y: torch.Tensor,
                      data: Dataset) -> torch.Tensor:
        """PINN loss of each member of a model stack -> (M,), on interior points x (a batch of
        train_input; f is evaluated from x itself, so minibatches need no index bookkeeping) and
        all boundary points; y unused. x (B, 2) is given to every member as its own (M, B, 2)
        copy, so the input derivatives are per member."""
        n_models = stacked.n_models
        inputs = x.expand(n_models, *x.shape[-2:]) if x.dim() == 2 else x
        _, _, laplacian = gradient_and_laplacian(stacked, inputs.contiguous())  # (M, B, 1)
        residual = laplacian - source(inputs.reshape(-1, 2)).view(n_models, -1, 1)
        boundary = stacked(data.extras["boundary_input"])  # (M, n_b, 1)
        # §3.4: loss = alpha * L_i + L_b, L_i = mean |u_xx + u_yy - f|^2, L_b = mean |u|^2
        return self.alpha * member_mse(residual, 0.0) + member_mse(boundary, 0.0)

    def evaluation_cost(self, forward_flops: int, n_examples: int) -> int:
        """Our convention (each reverse pass costs 2x the graph it differentiates, Kaplan et al.
        2020 §2.1): the input gradient is 3 forwards; each of the d second-derivative passes
        differentiates that 3-forward graph (6 forwards); the residual is (3 + 6d) forwards; its
        parameter gradient triples it. Each boundary point costs forward + backward = 3."""
        per_interior = 3 * (3 + 6 * self.d_in) * forward_flops
        return per_interior * n_examples + 3 * forward_flops * 4 * self.n_boundary_per_side

    def metrics(self, model: torch.nn.Module, data: Dataset, stage: int = 0,
                n_stages: int = 1) -> Dict[str, float]:
        """l2_sq = mean (u - u*)^2, h1_sq = l2_sq + mean |grad u - grad u*|^2 (test points, §3.4),
        pde_loss = the PINN loss on all training points."""
        with torch.enable_grad():
            x = data.test_input.detach().requires_grad_(True)
            u = model(x)  # (n_test, 1)
            grad = torch.autograd.grad(u.sum(), x)[0]  # (n_test, 2)
            pde_loss = self.loss(model, data.train_input, data.train_label, data)
        l2_sq = torch.mean((u.detach() - data.test_label) ** 2)
        grad_sq = torch.mean(torch.sum((grad - data.extras["test_grad"]) ** 2, dim=1))
        return {"l2_sq": float(l2_sq), "h1_sq": float(l2_sq + grad_sq),
                "pde_loss": float(pde_loss.detach())}


POISSON = register(PoissonTask(
    "pde_poisson", 2, 1, exact_solution, box(2),
    "u_xx + u_yy = -pi^2 (1 + 4y^2) sin(pi x) sin(pi y^2) + 2 pi sin(pi x) cos(pi y^2), u = 0 on "
    "the boundary of [-1, 1]^2; exact u = sin(pi x) sin(pi y^2)"))
