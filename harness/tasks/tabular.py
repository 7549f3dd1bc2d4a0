"""Tasks whose data is a fixed table (real data): a seeded train/test split and standardisation.

A table task holds a loader `load(seed) -> Split` of raw arrays (features float64 (n, d_in);
targets float64 (n, n_targets) for regression, class indices int64 (n,) for classification). Every
table task then does the same things, so runs on different tables compare:

- the split is a function of the data seed (task.seed) only; task.n_train / task.n_test take the
  first rows of its (shuffled) train and test parts, so a smaller n_train trains on a subset and is
  scored on the same test rows. Asking for more rows than a part has is a one-line ConfigError
  naming the maximum (there is no "all" value: the configs/task/table_*.yaml files set the maxima);
- features are standardised with the mean and std (ddof 0) of the training rows actually used;
  a constant feature is only centred. Regression targets are standardised the same way, so the
  record's train/test RMSE are in units of the training targets' std; metrics.target_scale holds
  that std and metrics.test_rmse_original_units the test RMSE in the data's own units;
- classification: d_out = number of classes, the model outputs logits, labels are one-hot rows,
  the loss is cross-entropy. metrics.test_accuracy / test_loss / train_accuracy / train_loss are
  recorded per stage and at the end. The record's test_rmse / train_rmse are the RMSE of the softmax
  probabilities against the one-hot labels (sqrt(Brier score / n_classes)), a proper score that
  is comparable across models; they are not the error rate (1 - test_accuracy).
"""
from __future__ import annotations

import dataclasses
import functools
import math
from dataclasses import dataclass
from typing import Any, Callable, Dict, Optional, Tuple

import numpy as np
import torch
import torch.nn.functional as F

from harness.config import ConfigError
from harness.tasks.base import Dataset, Task

TEST_FRACTION = 0.25  # held out for test: ceil(0.25 n) rows, stratified by class for classification


@dataclass(frozen=True)
class Split:
    """Raw train/test arrays of a table (before standardisation)."""
    x_train: np.ndarray  # (n_train, d_in) float64
    y_train: np.ndarray  # (n_train, n_targets) float64, or (n_train,) int64 class indices
    x_test: np.ndarray  # (n_test, d_in)
    y_test: np.ndarray  # (n_test, n_targets) or (n_test,)


def n_test_rows(n_rows: int, test_fraction: float = TEST_FRACTION) -> int:
    return math.ceil(test_fraction * n_rows)


def seeded_split(x: np.ndarray, y: np.ndarray, seed: int, classes: Optional[int] = None,
                 test_fraction: float = TEST_FRACTION) -> Split:
    """Shuffle rows with numpy's PCG64(seed) and hold out ceil(test_fraction n) for test.

    classes = None: a plain random split (regression). classes = C: stratified: class c gives
    its share n_test * n_c / n of the test rows, rounded by largest remainder (ties to the smaller
    class index), at least one row to each part.
    """
    n = x.shape[0]
    rng = np.random.default_rng(seed)
    n_test = n_test_rows(n, test_fraction)
    if classes is None:
        order = rng.permutation(n)
        test_ids, train_ids = order[:n_test], order[n_test:]
    else:
        counts = np.bincount(y, minlength=classes)  # (C,)
        quota = n_test * counts / n
        per_class = np.floor(quota).astype(int)
        leftover = n_test - per_class.sum()
        per_class[np.argsort(-(quota - per_class), kind="stable")[:leftover]] += 1
        per_class = np.clip(per_class, 1, counts - 1)
        test_parts, train_parts = [], []
        for c in range(classes):
            rows = rng.permutation(np.flatnonzero(y == c))
            test_parts.append(rows[:per_class[c]])
            train_parts.append(rows[per_class[c]:])
        test_ids = rng.permutation(np.concatenate(test_parts))
        train_ids = rng.permutation(np.concatenate(train_parts))
    return Split(x[train_ids], y[train_ids], x[test_ids], y[test_ids])


def standardisation(x: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """Column mean and std (ddof 0) of x (n, d); a zero std becomes 1 (constant columns are centred)."""
    mean = x.mean(axis=0)
    scale = x.std(axis=0)
    return mean, np.where(scale > 0, scale, 1.0)


@functools.lru_cache(maxsize=32)
def cached_split(task: "TableTask", seed: int) -> Split:
    """task.load(seed), once per process (MNIST-1D generation takes seconds); arrays read-only."""
    split = task.load(seed)
    for array in dataclasses.astuple(split):
        array.flags.writeable = False
    return split


def _no_formula(x: np.ndarray) -> np.ndarray:
    raise TypeError("a table task has no formula: its labels come from its data")


@dataclass(frozen=True)
class TableTask(Task):
    """A task on a fixed table; subclasses say how targets become labels and how to score.

    n_rows_train / n_rows_test: the sizes of the split's two parts (the largest n_train / n_test).
    """
    fn: Callable[[np.ndarray], np.ndarray] = _no_formula
    domain: Tuple[Tuple[float, float], ...] = ()
    load: Optional[Callable[[int], Split]] = None
    n_rows_train: int = 0
    n_rows_test: int = 0

    @property
    def default_n_train(self) -> int:  # `task=<name>` trains on every training row
        return self.n_rows_train or Task.default_n_train  # 0 rows: a user's file, read later

    @property
    def default_n_test(self) -> int:
        return self.n_rows_test or Task.default_n_test

    def specialise(self, task_cfg: Any) -> "TableTask":
        self.check_sizes(task_cfg.n_train, task_cfg.n_test)
        return self

    def check_sizes(self, n_train: int, n_test: int) -> None:
        """Refuse sizes the table cannot give (one line naming the maximum)."""
        for key, asked, available in (("n_train", n_train, self.n_rows_train),
                                      ("n_test", n_test, self.n_rows_test)):
            if asked > available:
                part = "training" if key == "n_train" else "test"
                raise ConfigError(f"task.{key}={asked} is more than the {available} {part} rows of "
                                  f"task {self.name} ({self.n_rows_train + self.n_rows_test} rows, "
                                  f"{self.n_rows_test} held out for test); set task.{key}<={available}")

    def make_dataset(self, n_train: int, n_test: int, seed: int, dtype: torch.dtype,
                     device: Optional[torch.device]) -> Dataset:
        split = cached_split(self, seed)
        assert split.x_train.shape == (self.n_rows_train, self.d_in), split.x_train.shape
        assert split.x_test.shape == (self.n_rows_test, self.d_in), split.x_test.shape
        self.check_sizes(n_train, n_test)
        x_train, x_test = split.x_train[:n_train], split.x_test[:n_test]
        mean, scale = standardisation(x_train)
        labels, extras = self.encode_targets(split.y_train[:n_train], split.y_test[:n_test])
        tensors = [(x_train - mean) / scale, labels[0], (x_test - mean) / scale, labels[1]]
        tensors = [torch.as_tensor(t, dtype=dtype, device=device) for t in tensors]
        extras = {k: torch.as_tensor(v, dtype=dtype, device=device) for k, v in extras.items()}
        return Dataset(*tensors, extras=extras or None)

    def encode_targets(self, y_train: np.ndarray, y_test: np.ndarray
                       ) -> Tuple[Tuple[np.ndarray, np.ndarray], Dict[str, np.ndarray]]:
        """Raw targets -> (train labels (n_train, d_out), test labels (n_test, d_out)), extras."""
        raise NotImplementedError


@dataclass(frozen=True)
class RegressionTable(TableTask):
    """MSE on targets standardised with the training rows' mean and std."""

    def encode_targets(self, y_train, y_test):
        mean, scale = standardisation(y_train)
        return ((y_train - mean) / scale, (y_test - mean) / scale), {"target_scale": scale}

    @torch.no_grad()
    def metrics(self, model: torch.nn.Module, data: Dataset, stage: int = 0,
                n_stages: int = 1) -> Dict[str, float]:
        """target_scale: the training targets' std (ddof 0), per target (target_scale_j) if several;
        test_rmse_original_units: the test RMSE with errors multiplied back by it."""
        scale = data.extras["target_scale"]  # (n_targets,)
        error = (model(data.test_input) - data.test_label) * scale  # (n_test, n_targets)
        out = {"test_rmse_original_units": float(torch.sqrt(torch.mean(error ** 2)))}
        if scale.numel() == 1:
            out["target_scale"] = float(scale[0])
        else:
            out.update({f"target_scale_{j}": float(s) for j, s in enumerate(scale)})
        return out


@dataclass(frozen=True)
class ClassificationTable(TableTask):
    """Cross-entropy on logits (d_out = number of classes); labels are one-hot rows."""

    def encode_targets(self, y_train, y_test):
        eye = np.eye(self.d_out)
        return (eye[y_train], eye[y_test]), {}

    def member_losses(self, stacked: torch.nn.Module, x: torch.Tensor, y: torch.Tensor,
                      data: Dataset) -> torch.Tensor:
        """Mean cross-entropy -sum_c y_c log softmax(z)_c (multinomial log-loss; y one-hot) of each
        member of a model stack: logits (M, B, C) -> (M,)."""
        log_probs = torch.log_softmax(stacked(x), dim=-1)
        return -(y * log_probs).sum(-1).mean(-1)

    def member_predict(self, stacked: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
        return torch.softmax(stacked(x), dim=-1)

    def predict(self, model: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
        """Class probabilities softmax(logits) (n, C): what the record's RMSE compares with one-hot."""
        return torch.softmax(model(x), dim=1)

    @torch.no_grad()
    def metrics(self, model: torch.nn.Module, data: Dataset, stage: int = 0,
                n_stages: int = 1) -> Dict[str, float]:
        """Accuracy (fraction of argmax logits equal to the class) and mean cross-entropy, on the
        full train and test sets."""
        out = {}
        for split in ("train", "test"):
            logits = model(getattr(data, f"{split}_input"))  # (n, C)
            label = getattr(data, f"{split}_label")  # (n, C) one-hot
            out[f"{split}_accuracy"] = float(torch.mean(
                (logits.argmax(dim=1) == label.argmax(dim=1)).double()))
            out[f"{split}_loss"] = float(F.cross_entropy(logits, label))
        return out
