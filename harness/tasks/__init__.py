"""Task registry: a task name -> a `Task` that knows its shape, domain and data.

Adding a task: a module defining `Task` objects, imported below, and a YAML file in configs/task/.
"""
from __future__ import annotations

from typing import Dict

from harness.tasks.base import Dataset, Task, make_dataset

TASK_REGISTRY: Dict[str, Task] = {}


def register(task: Task) -> Task:
    if task.name in TASK_REGISTRY:
        raise ValueError(f"task {task.name!r} is registered twice")
    TASK_REGISTRY[task.name] = task
    return task


from harness.tasks import toy  # noqa: E402,F401  (registers the paper's toy functions)
from harness.tasks import special  # noqa: E402,F401  (the paper's special functions, §3.2)
from harness.tasks import feynman  # noqa: E402,F401  (the paper's Feynman equations, §3.3: dimensionless and dimensional)
from harness.tasks import pde  # noqa: E402,F401  (the paper's Poisson PDE, §3.4)
from harness.tasks import continual  # noqa: E402,F401  (the paper's continual learning, §3.5)

__all__ = ["TASK_REGISTRY", "Task", "Dataset", "make_dataset", "register"]
