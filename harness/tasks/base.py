"""What a task is: input/output sizes, a domain, a seeded generator of train/test data."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, ClassVar, Dict, List, Optional, Tuple

import numpy as np
import torch


@dataclass(frozen=True)
class Dataset:
    train_input: torch.Tensor  # (n_train, d_in)
    train_label: torch.Tensor  # (n_train, d_out)
    test_input: torch.Tensor  # (n_test, d_in)
    test_label: torch.Tensor  # (n_test, d_out)
    extras: Optional[Dict[str, torch.Tensor]] = None  # task-specific tensors (e.g. PDE boundary)


@dataclass(frozen=True)
class Task:
    """A regression target y = fn(x), x uniform on a box (pykan `create_dataset` semantics).

    fn maps a float64 numpy array (n, d_in) to (n, d_out); computing in numpy float64 lets scipy
    special functions serve as targets and keeps labels exact whatever the training dtype.
    """
    name: str
    d_in: int
    d_out: int
    fn: Callable[[np.ndarray], np.ndarray]
    domain: Tuple[Tuple[float, float], ...]  # one (lo, hi) per input
    description: str = ""
    # The loss differentiates the model twice in its inputs (PINNs): needs the reference KAN layer.
    needs_second_derivatives: ClassVar[bool] = False
    # Sizes of the `task=<name>` config (harness.tasks.register stores one per task).
    default_n_train: ClassVar[int] = 1000
    default_n_test: ClassVar[int] = 1000

    def sample_inputs(self, n: int, generator: torch.Generator) -> np.ndarray:
        lo = np.array([d[0] for d in self.domain])
        hi = np.array([d[1] for d in self.domain])
        u = torch.rand(n, self.d_in, generator=generator, dtype=torch.float64).numpy()
        return lo + (hi - lo) * u

    def labels(self, x: np.ndarray) -> np.ndarray:
        y = np.asarray(self.fn(x), dtype=np.float64).reshape(x.shape[0], self.d_out)
        return y

    # Hooks the trainer calls; regression tasks keep the defaults, PDE and continual-learning
    # tasks override them.
    def specialise(self, task_cfg: Any) -> "Task":
        """The task a config's `task` fields describe (see harness.tasks.task_of); raises a one-line
        ConfigError for fields it cannot serve. Fixed tasks are themselves; a user's table file
        (tasks.table_file) is read here."""
        return self

    def make_dataset(self, n_train: int, n_test: int, seed: int, dtype: torch.dtype,
                     device: Optional[torch.device]) -> Dataset:
        return make_dataset(self, n_train, n_test, seed, dtype, device)

    def loss(self, model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor,
             data: Dataset) -> torch.Tensor:
        """The training loss of one model on a batch (x, y): `member_losses` of the model as a
        stack of one, so each task defines its loss once."""
        return self.member_losses(StackOfOne(model), x, y, data)[0]

    def member_losses(self, stacked: torch.nn.Module, x: torch.Tensor, y: torch.Tensor,
                      data: Dataset) -> torch.Tensor:
        """The training loss of each member of a model stack (harness.ensemble; a solo run is a
        stack of one) on a batch: x (B, d_in) shared or (M, B, d_in), y likewise -> (M,). What the
        trainer minimises: each member's loss must depend on its own output only. Default MSE."""
        return member_mse(stacked(x), y)

    def member_predict(self, stacked: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
        """`predict` for a model stack: x (B, d_in) -> (M, B, d_out)."""
        return stacked(x)

    def predict(self, model: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
        """What the record's RMSE and median error compare with the labels: the model's output
        (classification tasks: class probabilities)."""
        return model(x)

    def stage_indices(self, data: Dataset, stage: int, n_stages: int) -> Optional[torch.Tensor]:
        """Training examples seen in a stage; None = all (continual learning restricts them)."""
        return None

    def metrics(self, model: torch.nn.Module, data: Dataset, stage: int,
                n_stages: int) -> Dict[str, float]:
        """Task-specific numbers recorded at the end of every stage (and of the run: last stage)."""
        return {}

    def evaluation_cost(self, forward_flops: int, n_examples: int) -> int:
        """FLOPs of one training evaluation (loss + gradient) over n_examples, given the model's
        forward FLOPs per example: forward + backward = 3x forward (Kaplan et al. 2020, §2.1)."""
        return 3 * forward_flops * n_examples


class StackOfOne(torch.nn.Module):
    """A solo model seen as a model stack of one: x (B, d_in) or (1, B, d_in) -> (1, B, d_out)."""
    n_models = 1

    def __init__(self, model: torch.nn.Module):
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x[0] if x.dim() == 3 else x).unsqueeze(0)


def member_mse(prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Per-member MSE: prediction (M, B, out), target (B, out) or (M, B, out) -> (M,). Each
    member's mean is a reduction over its own contiguous row (the same numbers whatever M)."""
    squared = ((prediction - target) ** 2).contiguous()
    return squared.view(squared.shape[0], -1).mean(-1)


def box(d_in: int, lo: float = -1.0, hi: float = 1.0) -> Tuple[Tuple[float, float], ...]:
    return tuple((lo, hi) for _ in range(d_in))


def make_dataset(task: Task, n_train: int, n_test: int, seed: int,
                 dtype: torch.dtype = torch.float64, device: Optional[torch.device] = None) -> Dataset:
    """Seeded train/test sets: the same (task, sizes, seed) always give the same numbers."""
    generator = torch.Generator().manual_seed(seed)
    tensors: List[torch.Tensor] = []
    for n in (n_train, n_test):
        x = task.sample_inputs(n, generator)
        y = task.labels(x)
        tensors += [torch.as_tensor(x, dtype=dtype, device=device),
                    torch.as_tensor(y, dtype=dtype, device=device)]
    return Dataset(*tensors)
