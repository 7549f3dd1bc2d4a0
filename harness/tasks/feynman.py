"""Registers the KAN paper's Feynman equations (§3.3, Table 2) as tasks named `feynman_<id>`.

The equations, their variables and ranges live in `feynman_table.py`; inputs are the variables in
the table's order, each uniform on its range. These are the dataset's dimensional formulas with all
their variables (as pykan's `kan/feynman.py` has them), not the paper's 2-3 variable
"dimensionless formula" column.
"""
from __future__ import annotations

from typing import Callable

import numpy as np

from harness.tasks import register
from harness.tasks.base import Task
from harness.tasks.feynman_table import FEYNMAN_EQUATIONS, FeynmanEquation


def _columns_to(equation: FeynmanEquation) -> Callable[[np.ndarray], np.ndarray]:
    """Adapt f(var_1, ..., var_d) to the Task convention: (n, d) float64 -> (n,)."""
    def fn(inputs: np.ndarray) -> np.ndarray:
        assert inputs.shape[1] == len(equation.variables), (inputs.shape, equation.eq_id)
        return equation.fn(*inputs.T)
    return fn


def _describe(equation: FeynmanEquation) -> str:
    box = ", ".join(f"{name} in [{lo:.4g}, {hi:.4g}]"
                    for name, (lo, hi) in zip(equation.variables, equation.ranges))
    text = f"Feynman {equation.eq_id}: f = {equation.formula}; {box}"
    return f"{text} ({equation.note})" if equation.note else text


for _equation in FEYNMAN_EQUATIONS:
    register(Task(_equation.task_name, len(_equation.variables), 1, _columns_to(_equation),
                  _equation.ranges, _describe(_equation)))

FEYNMAN_TASK_NAMES = tuple(equation.task_name for equation in FEYNMAN_EQUATIONS)
