"""Registers the KAN paper's Feynman equations (§3.3, Table 2) as tasks, in two forms:

- `feynman_<id>`: the dimensionless formulas the paper trains on (2-6 inputs), with the paper's
  variables and KAN shapes (`feynman_dimensionless.py`). These are the claims' Feynman tasks.
- `feynman_dim_<id>`: the dataset's dimensional formulas with all their variables (4-9 inputs), on
  pykan's ranges (`feynman_table.py`).

Inputs are the variables in the table's order, each uniform on its range.
"""
from __future__ import annotations

from typing import Callable

import numpy as np

from harness.tasks import register
from harness.tasks.base import Task
from harness.tasks.feynman_dimensionless import FEYNMAN_DIMENSIONLESS_EQUATIONS
from harness.tasks.feynman_table import FEYNMAN_DIMENSIONAL_EQUATIONS, FeynmanEquation


def _columns_to(equation: FeynmanEquation) -> Callable[[np.ndarray], np.ndarray]:
    """Adapt f(var_1, ..., var_d) to the Task convention: (n, d) float64 -> (n,)."""
    def fn(inputs: np.ndarray) -> np.ndarray:
        assert inputs.shape[1] == len(equation.variables), (inputs.shape, equation.eq_id)
        return equation.fn(*inputs.T)
    return fn


def _describe(equation: FeynmanEquation, form: str) -> str:
    box = ", ".join(f"{name} in [{lo:.4g}, {hi:.4g}]"
                    for name, (lo, hi) in zip(equation.variables, equation.ranges))
    text = f"Feynman {equation.eq_id} ({form}, Liu et al. 2024 Table 2): f = {equation.formula}; {box}"
    return f"{text} ({equation.note})" if equation.note else text


for _equation in FEYNMAN_DIMENSIONLESS_EQUATIONS:
    register(Task(_equation.task_name, len(_equation.variables), 1, _columns_to(_equation),
                  _equation.ranges, _describe(_equation, "dimensionless")))
for _equation in FEYNMAN_DIMENSIONAL_EQUATIONS:
    register(Task(_equation.task_name, len(_equation.variables), 1, _columns_to(_equation),
                  _equation.ranges, _describe(_equation, "dimensional")))

FEYNMAN_TASK_NAMES = tuple(equation.task_name for equation in FEYNMAN_DIMENSIONLESS_EQUATIONS)
FEYNMAN_DIM_TASK_NAMES = tuple(equation.task_name for equation in FEYNMAN_DIMENSIONAL_EQUATIONS)
