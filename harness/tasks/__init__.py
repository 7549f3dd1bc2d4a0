"""Task registry: a task name -> a `Task` that knows its shape, domain and data.

Adding a task: a module defining `Task` objects, imported below. `register` also stores the task as
an option of Hydra's `task` config group (`task=<name>`), so no YAML file is needed.
"""
from __future__ import annotations

from typing import Any, Dict

from harness.tasks.base import Dataset, Task, make_dataset

TASK_REGISTRY: Dict[str, Task] = {}


def register(task: Task) -> Task:
    if task.name in TASK_REGISTRY:
        raise ValueError(f"task {task.name!r} is registered twice")
    TASK_REGISTRY[task.name] = task
    _store_task_config(task)
    return task


def task_of(task_cfg: Any) -> Task:
    """The Task a config's `task` group asks for: the registry entry for task.name, specialised to
    the config's task fields (a user's table is read here). One-line ConfigError if it cannot be."""
    from harness.config import ConfigError
    task = TASK_REGISTRY.get(task_cfg.name)
    if task is None:
        raise ConfigError(f"task.name={task_cfg.name!r} is unknown; choose one of {sorted(TASK_REGISTRY)}")
    return task.specialise(task_cfg)


def _store_task_config(task: Task) -> None:
    """`task=<name>`: a harness.config.TaskConfig node in the ConfigStore's `task` group."""
    from hydra.core.config_store import ConfigStore
    from harness.config import TaskConfig
    node = TaskConfig(name=task.name, n_train=task.default_n_train, n_test=task.default_n_test)
    ConfigStore.instance().store(group="task", name=task.name, node=node)


from harness.tasks import toy  # noqa: E402,F401  (registers the paper's toy functions)
from harness.tasks import special  # noqa: E402,F401  (the paper's special functions, §3.2)
from harness.tasks import feynman  # noqa: E402,F401  (the paper's Feynman equations, §3.3: dimensionless and dimensional)
from harness.tasks import pde  # noqa: E402,F401  (the paper's Poisson PDE, §3.4)
from harness.tasks import continual  # noqa: E402,F401  (the paper's continual learning, §3.5)
from harness.tasks import sklearn_tables  # noqa: E402,F401  (scikit-learn's bundled tables)
from harness.tasks import mnist1d  # noqa: E402,F401  (MNIST-1D, generated locally)
from harness.tasks import table_file  # noqa: E402,F401  (a user's CSV or parquet file)

__all__ = ["TASK_REGISTRY", "Task", "Dataset", "make_dataset", "register", "task_of"]
