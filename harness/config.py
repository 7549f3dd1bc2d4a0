"""Typed configs: one dataclass per config group, registered in Hydra's ConfigStore.

YAML keys = dataclass fields = constructor arguments, so a typo or a wrong type fails when Hydra
composes the config. Values are checked by `validate(cfg)` before any work starts; every error is
one line naming the key and saying what to do.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any, List, Optional

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING


class ConfigError(ValueError):
    """A bad config value, reported as one line before any work starts."""


@dataclass
class KANConfig:
    family: str = "kan"
    widths: List[int] = field(default_factory=lambda: [2, 5, 1])
    # Hidden widths only: widths become [task d_in, *hidden, task d_out] (for sweeps over tasks).
    hidden: Optional[List[int]] = None
    grid: int = 5  # G: intervals of the first stage (later stages come from train.grid_schedule)
    k: int = 3  # spline order (cubic)
    grid_range: List[float] = field(default_factory=lambda: [-1.0, 1.0])
    base_activation: str = "silu"  # silu or none
    train_base_weight: bool = True  # w_b trainable
    train_spline_weight: bool = True  # w_s trainable
    noise_scale: float = 0.3  # initial coefficient noise (pykan MultKAN default 0.3)
    grid_eps: float = 0.02  # pykan: 0 = knots at sample percentiles, 1 = uniform
    implementation: str = "fast"  # fast (k+1 local bases) or reference (Cox-de Boor): same numbers


@dataclass
class MLPConfig:
    family: str = "mlp"
    widths: List[int] = field(default_factory=lambda: [2, 32, 1])
    hidden: Optional[List[int]] = None  # as KANConfig.hidden
    activation: str = "silu"  # silu, relu, tanh, gelu
    bias: bool = True


@dataclass
class TaskConfig:
    name: str = "toy_exp_sin"
    n_train: int = 1000
    n_test: int = 1000
    seed: int = 0  # data seed: runs that differ in `seed` share the same data


@dataclass
class OptimConfig:
    name: str = "lbfgs"  # lbfgs, adam, adamw
    lr: float = 1.0
    weight_decay: float = 0.0
    batch_size: int = -1  # -1 = full batch
    # LBFGS as in pykan's fit: history 10, strong-Wolfe line search.
    history_size: int = 10
    line_search: str = "strong_wolfe"  # strong_wolfe or none
    max_iter: int = 20  # LBFGS iterations per optimizer step (pykan: 20; line search adds evals)
    tolerance_grad: float = 1e-32
    tolerance_change: float = 1e-32


@dataclass
class TrainConfig:
    steps_per_stage: int = 50
    # KAN grid-extension schedule: stage i trains on grid_schedule[i] intervals. Empty = one stage on
    # model.grid. For MLPs the stages only mark where losses are recorded (same total steps).
    grid_schedule: List[int] = field(default_factory=list)
    # pykan's fit: update the grid from samples every `update_grid_every` steps before step
    # `update_grid_until`, in the first stage only. 0 disables.
    update_grid_every: int = 5
    update_grid_until: int = 50
    log_every: int = 10
    checkpoint_every: int = 50
    max_loss: float = 1e10  # a loss above this (or NaN/inf) marks the run diverged


@dataclass
class WandbConfig:
    mode: str = "offline"  # offline, online, disabled
    project: str = "kanscale"
    entity: Optional[str] = None


@dataclass
class RunConfig:
    model: Any = field(default_factory=KANConfig)
    task: TaskConfig = field(default_factory=TaskConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    wandb: WandbConfig = field(default_factory=WandbConfig)
    experiment_name: str = "default"  # recorded as `experiment`; set by configs/experiment/*.yaml
    seed: int = 0
    dtype: str = "float64"  # float32 or float64
    device: str = "cpu"  # cpu, cuda or auto
    # CPU threads for this run; 1 is fastest for small models and makes results independent of
    # the machine's core count (the reduction order changes with threads). 0 = torch's default.
    num_threads: int = 1
    results_root: str = "results"


def register_configs() -> None:
    """Register the schemas the YAML files in configs/ extend (`defaults: [base_kan, _self_]`)."""
    cs = ConfigStore.instance()
    # The model node is left untyped here (MISSING): the chosen group file (kan or mlp) brings
    # its own schema, so `model=mlp` can replace a KANConfig without a merge error.
    cs.store(name="base_config", node=RunConfig(model=MISSING))
    cs.store(group="model", name="base_kan", node=KANConfig)
    cs.store(group="model", name="base_mlp", node=MLPConfig)
    cs.store(group="task", name="base_task", node=TaskConfig)
    cs.store(group="optim", name="base_optim", node=OptimConfig)


register_configs()


def resolve(cfg: Any) -> Any:
    """Derive model.widths from model.hidden and the task's d_in/d_out (then hidden = None), so
    the same architecture has the same config, and run id, however it was written."""
    hidden = cfg.model.get("hidden") if hasattr(cfg.model, "get") else cfg.model.hidden
    if hidden is None:
        return cfg
    from harness.tasks import TASK_REGISTRY
    task = TASK_REGISTRY.get(cfg.task.name)
    if task is None:
        raise ConfigError(f"task.name={cfg.task.name!r} is unknown; choose one of {sorted(TASK_REGISTRY)}")
    cfg = copy.deepcopy(cfg)
    cfg.model.widths = [task.d_in, *list(hidden), task.d_out]
    cfg.model.hidden = None
    return cfg


def _require(ok: bool, message: str) -> None:
    if not ok:
        raise ConfigError(message)


def validate(cfg: Any) -> None:
    """Check values that types cannot; raise ConfigError with one line naming the key."""
    from harness.models import MODEL_REGISTRY
    from harness.tasks import TASK_REGISTRY

    model = cfg.model
    family = model.family
    _require(family in MODEL_REGISTRY,
             f"model.family={family!r} is unknown; choose one of {sorted(MODEL_REGISTRY)}")
    widths = list(model.widths)
    _require(len(widths) >= 2, f"model.widths={widths} needs at least [d_in, d_out]")
    for i, w in enumerate(widths):
        _require(isinstance(w, int) and w > 0,
                 f"model.widths[{i}]={w} must be a positive integer (got widths={widths})")
    if family == "kan":
        _require(model.k >= 1, f"model.k={model.k} must be >= 1 (spline order)")
        _require(model.grid >= 1, f"model.grid={model.grid} must be >= 1 interval")
        _require(model.grid >= model.k,
                 f"model.grid={model.grid} is smaller than the spline order model.k={model.k}; "
                 f"use grid >= k")
        for i, g in enumerate(cfg.train.grid_schedule):
            _require(g >= model.k, f"train.grid_schedule[{i}]={g} is smaller than model.k={model.k}")
        lo, hi = model.grid_range
        _require(lo < hi, f"model.grid_range={list(model.grid_range)} must be increasing")
        _require(model.base_activation in ("silu", "none"),
                 f"model.base_activation={model.base_activation!r}: choose silu or none")
        _require(0.0 <= model.grid_eps <= 1.0, f"model.grid_eps={model.grid_eps} must be in [0, 1]")
        _require(model.implementation in ("reference", "fast"),
                 f"model.implementation={model.implementation!r}: choose reference or fast")
    if family == "mlp":
        from harness.models.mlp import ACTIVATIONS
        _require(model.activation in ACTIVATIONS,
                 f"model.activation={model.activation!r}: choose one of {sorted(ACTIVATIONS)}")
    task = cfg.task
    _require(task.name in TASK_REGISTRY,
             f"task.name={task.name!r} is unknown; choose one of {sorted(TASK_REGISTRY)}")
    spec = TASK_REGISTRY[task.name]
    if family == "kan" and model.implementation == "fast" and spec.needs_second_derivatives:
        raise ConfigError(f"task {task.name} differentiates the model twice, which the fast KAN "
                          f"layer does not support: set model.implementation=reference")
    _require(widths[0] == spec.d_in and widths[-1] == spec.d_out,
             f"model.widths={widths} must start with d_in={spec.d_in} and end with "
             f"d_out={spec.d_out} for task {task.name}")
    _require(task.n_train > 0 and task.n_test > 0,
             f"task.n_train={task.n_train} and task.n_test={task.n_test} must be positive")
    optim = cfg.optim
    _require(optim.name in ("lbfgs", "adam", "adamw"),
             f"optim.name={optim.name!r}: choose lbfgs, adam or adamw")
    _require(optim.lr > 0, f"optim.lr={optim.lr} must be positive")
    _require(optim.batch_size == -1 or optim.batch_size > 0,
             f"optim.batch_size={optim.batch_size} must be positive, or -1 for full batch")
    _require(optim.line_search in ("strong_wolfe", "none"),
             f"optim.line_search={optim.line_search!r}: choose strong_wolfe or none")
    _require(cfg.train.steps_per_stage >= 0,
             f"train.steps_per_stage={cfg.train.steps_per_stage} must be >= 0")
    _require(cfg.dtype in ("float32", "float64"), f"dtype={cfg.dtype!r}: choose float32 or float64")
    _require(cfg.device in ("cpu", "cuda", "auto") or str(cfg.device).startswith("cuda:"),
             f"device={cfg.device!r}: choose cpu, cuda or auto")
    _require(cfg.num_threads >= 0, f"num_threads={cfg.num_threads} must be >= 0 (0 = torch default)")
    _require(cfg.wandb.mode in ("offline", "online", "disabled"),
             f"wandb.mode={cfg.wandb.mode!r}: choose offline, online or disabled")
    _require(cfg.wandb.mode != "online" or wandb_credentials(),
             "wandb.mode=online but no wandb credentials: run `wandb login`, set WANDB_API_KEY, "
             "or use wandb.mode=offline")


def wandb_credentials() -> bool:
    """Whether wandb has an API key, without the network: WANDB_API_KEY, or the netrc entry
    `wandb login` writes (machine = the host of WANDB_BASE_URL, default api.wandb.ai)."""
    import netrc
    import os
    from urllib.parse import urlparse

    if os.environ.get("WANDB_API_KEY"):
        return True
    host = urlparse(os.environ.get("WANDB_BASE_URL", "https://api.wandb.ai")).hostname or ""
    path = os.environ.get("NETRC") or os.path.join(os.path.expanduser("~"), ".netrc")
    try:
        entry = netrc.netrc(path).authenticators(host)
    except (OSError, netrc.NetrcParseError):
        return False
    return bool(entry and entry[2])
