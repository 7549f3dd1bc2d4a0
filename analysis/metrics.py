"""Which way is better for each metric, its loss-like form for fits, and its name in words.

Scaling laws (analysis.laws) and fronts (analysis.frontier) work on loss-like quantities: positive,
lower is better, falling as a power of size. Regression tasks give one directly (test RMSE);
classification tasks record test accuracy (higher is better, harness/tasks/tabular.py `metrics`),
whose loss-like form is the error rate 1 - accuracy (the quantity fitted as a power law of model
size in Hestness et al. 2017, arXiv 1712.00409, §4, and Rosenfeld et al. 2020, arXiv 1909.12673).
`analysis.collect` adds the error-rate columns to both tables; a fit or front asked for an
accuracy fits its error rate instead, and a front of a higher-is-better column keeps the maximum.
"""
from __future__ import annotations

from typing import Dict, Optional, Sequence

import numpy as np
import pandas as pd

LOWER, HIGHER = "lower", "higher"
# derived column -> the higher-is-better record column it is 1 minus
ERROR_RATES = {"test_error_rate": "metrics.test_accuracy",
               "train_error_rate": "metrics.train_accuracy"}
HIGHER_IS_BETTER = tuple(ERROR_RATES.values())
WORDS: Dict[str, str] = {
    "test_rmse": "test RMSE", "train_rmse": "train RMSE", "test_mse": "test MSE",
    "best_test_rmse": "best test RMSE", "test_median_abs_error": "median absolute test error",
    "test_error_rate": "test error rate", "train_error_rate": "train error rate",
    "metrics.test_accuracy": "test accuracy", "metrics.train_accuracy": "train accuracy",
    "metrics.test_loss": "test cross-entropy", "metrics.train_loss": "train cross-entropy",
    "metrics.l2_sq": "squared l2 error", "metrics.forgetting": "RMSE on earlier regions",
}


def better(column: str) -> str:
    """LOWER for losses and error rates, HIGHER for accuracies."""
    return HIGHER if column in HIGHER_IS_BETTER else LOWER


def loss_like(column: str) -> str:
    """The column a fit or front uses for `column`: an accuracy's error rate, else itself."""
    for rate, accuracy in ERROR_RATES.items():
        if column == accuracy:
            return rate
    return column


def words(column: str) -> str:
    """The metric's name in words, for axes and tables ("test error rate")."""
    return WORDS.get(column, column.replace("metrics.", "").replace("_", " "))


def with_error_rates(table: pd.DataFrame) -> pd.DataFrame:
    """`table` with test_error_rate / train_error_rate = 1 - the accuracy columns it has (NaN where
    a row has no accuracy: regression tasks)."""
    added = {rate: 1.0 - pd.to_numeric(table[accuracy], errors="coerce")
             for rate, accuracy in ERROR_RATES.items() if accuracy in table.columns}
    return table.assign(**added) if added else table


def primary_loss(rows: pd.DataFrame) -> str:
    """The loss-like column a task's verdicts use: the test error rate when its rows record an
    accuracy (classification), else the test RMSE."""
    if "test_error_rate" in rows.columns and np.isfinite(
            pd.to_numeric(rows["test_error_rate"], errors="coerce")).any():
        return "test_error_rate"
    return "test_rmse"


def losses_by_task(rows: pd.DataFrame, tasks: Optional[Sequence[str]] = None) -> Dict[str, str]:
    """task -> primary_loss of its rows."""
    tasks = sorted(rows["task"].dropna().unique()) if tasks is None else tasks
    return {task: primary_loss(rows[rows["task"] == task]) for task in tasks}
