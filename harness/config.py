"""Typed configs: one dataclass per config group, registered in Hydra's ConfigStore.

YAML keys = dataclass fields = constructor arguments, so a typo or a wrong type fails when Hydra
composes the config. Values are checked by `validate(cfg)` before any work starts; every error is
one line naming the key and saying what to do.
"""
from __future__ import annotations

import copy
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional

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
    # the solo layer that evaluates records: fast (k+1 local bases) or reference (Cox-de Boor), same
    # numbers; training runs in the stacked layer (harness/ensemble/stacked.py) either way
    implementation: str = "fast"


@dataclass
class MLPConfig:
    family: str = "mlp"
    widths: List[int] = field(default_factory=lambda: [2, 32, 1])
    hidden: Optional[List[int]] = None  # as KANConfig.hidden
    activation: str = "silu"  # silu, relu, tanh, gelu
    bias: bool = True


@dataclass
class SplineMLPConfig:
    """An MLP with a learnable B-spline per hidden unit (harness/models/spline_mlp.py)."""
    family: str = "spline_mlp"
    widths: List[int] = field(default_factory=lambda: [2, 32, 1])
    hidden: Optional[List[int]] = None  # as KANConfig.hidden
    grid: int = 5  # G: intervals of each unit's spline (train.grid_schedule extends it)
    k: int = 3  # spline order
    grid_range: List[float] = field(default_factory=lambda: [-1.0, 1.0])
    base_activation: str = "silu"  # silu (w_b silu(z) + spline) or none (Yu et al. 2024's model)
    bias: bool = True  # the Linear layers' biases
    noise_scale: float = 0.1  # initial spline noise (Yu et al. 2024's BSpline: 0.1)
    grid_eps: float = 0.02  # as KANConfig.grid_eps


@dataclass
class RBFKANConfig:
    """FastKAN: Gaussian-RBF KAN (Li 2024; harness/models/rbf_kan_family.py)."""
    family: str = "rbf_kan"
    widths: List[int] = field(default_factory=lambda: [2, 5, 1])
    hidden: Optional[List[int]] = None  # as KANConfig.hidden
    grid: int = 8  # G: Gaussian centres per input (FastKAN num_grids); grid_schedule extends it
    grid_range: List[float] = field(default_factory=lambda: [-2.0, 2.0])  # first, last centre
    base_activation: str = "silu"  # silu (FastKAN's base_linear) or none
    bias: bool = True  # output bias (FastKAN's base_linear has one)
    layer_norm: bool = False  # FastKAN's LayerNorm of the basis input (needs every d_in >= 3)


@dataclass
class ChebyKANConfig:
    """Chebyshev KAN (SS et al. 2024; harness/models/cheby_kan_family.py)."""
    family: str = "cheby_kan"
    widths: List[int] = field(default_factory=lambda: [2, 5, 1])
    hidden: Optional[List[int]] = None  # as KANConfig.hidden
    grid: int = 4  # the degree D (T_0..T_D); grid_schedule extends it exactly
    base_activation: str = "none"  # none (ChebyKAN) or silu
    bias: bool = False  # T_0 = 1 already gives every output a constant


@dataclass
class FourierKANConfig:
    """Fourier KAN (Xu et al. 2024 FourierKAN; harness/models/fourier_kan_family.py)."""
    family: str = "fourier_kan"
    widths: List[int] = field(default_factory=lambda: [2, 5, 1])
    hidden: Optional[List[int]] = None  # as KANConfig.hidden
    grid: int = 5  # K: frequencies 1..K (2K coefficients per edge); grid_schedule extends it exactly
    base_activation: str = "none"  # none (FourierKAN) or silu
    bias: bool = True  # FourierKAN's addbias


@dataclass
class TaskConfig:
    name: str = "toy_exp_sin"
    n_train: int = 1000
    n_test: int = 1000
    seed: int = 0  # data seed: runs that differ in `seed` share the same data
    # A user's table (task=table_file only; see harness/tasks/table_file.py): a .csv, .parquet or
    # .pq file, the columns to predict, the input columns (empty = all others), and the kind.
    path: Optional[str] = None
    target_columns: List[str] = field(default_factory=list)
    feature_columns: List[str] = field(default_factory=list)
    kind: str = "regression"  # regression or classification


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
    # pykan: curvature pairs with s'y > 1e-32 kept, 25 evaluations per line search (pykan 0.2.8
    # `fit`); torch: s'y > 1e-10 and the step's remaining budget (torch.optim.LBFGS). See
    # harness/ensemble/batched_lbfgs.py.
    lbfgs_rule: str = "pykan"
    # Learning rate as a multiple of `lr` (the optim group's default): `resolve` folds it into lr
    # (lr * lr_scale, then 1.0), so tuning searches the same relative range for every family.
    lr_scale: float = 1.0


@dataclass
class TrainConfig:
    steps_per_stage: int = 50
    # KAN grid-extension schedule: stage i trains on grid_schedule[i] intervals. Empty = one stage on
    # model.grid. For MLPs the stages only mark where losses are recorded (same total steps).
    grid_schedule: List[int] = field(default_factory=list)
    # pykan's fit: update the grid from samples every `update_grid_every` steps before step
    # `update_grid_until` of every stage (each stage is one pykan `fit` call). 0 disables.
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
class ReferenceConfig:
    """The model a matched model is sized against (MatchConfig.reference): a family, its hidden
    widths (or full widths), and its grid knob; unset fields take that family's defaults, other
    fields of the family's config go in `options`."""
    family: str = "kan"
    hidden: Optional[List[int]] = None  # as KANConfig.hidden (the task's d_in/d_out around it)
    widths: Optional[List[int]] = None
    grid: Optional[int] = None  # G, number of centres, degree or frequencies: the family's knob
    k: Optional[int] = None  # spline order (B-spline families)
    options: Dict[str, Any] = field(default_factory=dict)


@dataclass
class MatchConfig:
    """A budget-matched model (harness/matching.py): `resolve` gives every hidden layer of the
    model one width w (depth from model.hidden or model.widths) so that its parameters (`params`),
    forward FLOPs (`flops`, our convention) or Yu et al.'s forward FLOPs (`flops_yu2024`) are within
    `tolerance` of the reference model's; `none` leaves the model as written."""
    by: str = "none"  # none, params, flops or flops_yu2024
    # The reference model, e.g. {family: kan, hidden: [5], grid: 5} (ReferenceConfig).
    reference: ReferenceConfig = field(default_factory=ReferenceConfig)
    tolerance: float = 0.05  # |value / reference_value - 1| allowed
    # Filled by `resolve` (leave unset): the reference's and the matched model's budget.
    reference_value: Optional[int] = None
    value: Optional[int] = None
    ratio: Optional[float] = None


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
    match: MatchConfig = field(default_factory=MatchConfig)
    # What the Hydra task function returns (for sweepers that optimise it, e.g. Optuna): auto =
    # the test error rate (1 - test accuracy) on classification tasks, else test_rmse; or test_rmse,
    # best_test_rmse, test_error_rate, or any key of the record's `metrics` (harness.run.objective).
    objective: str = "auto"


def register_configs() -> None:
    """Register the schemas the YAML files in configs/ extend (`defaults: [/schema_kan, _self_]`).

    The schemas are stored outside the selectable groups (no `group=`), so `--help` lists only
    real options and `model=schema_kan` fails like any unknown option. Task options are not
    files: `harness.tasks.register` stores one `task` node per registered task.
    """
    cs = ConfigStore.instance()
    # The model node is left untyped here (MISSING): the chosen group file (kan or mlp) brings
    # its own schema, so `model=mlp` can replace a KANConfig without a merge error.
    cs.store(name="base_config", node=RunConfig(model=MISSING))
    cs.store(name="schema_task", node=TaskConfig)
    cs.store(name="schema_optim", node=OptimConfig)
    import harness.tasks  # noqa: F401  (its `register` stores the `task` options)
    import harness.models  # noqa: F401  (`register_family` stores each family's `schema_<name>`)


def store_family_schema(name: str, config_cls: type) -> None:
    """Store a model family's dataclass as `schema_<name>` (what configs/model/<name>.yaml
    extends); harness.models.register_family calls this for every family."""
    ConfigStore.instance().store(name=f"schema_{name}", node=config_cls)


def resolve(cfg: Any) -> Any:
    """The config as it runs, derived once before the run id: model.widths from model.hidden and
    the task's d_in/d_out (then hidden = None), optim.lr times optim.lr_scale (then 1.0), and the
    hidden widths of a budget-matched model (`match`, harness/matching.py). The same model has the
    same config, and run id, however it was written; resolving twice changes nothing."""
    hidden = _node_get(cfg.model, "hidden")
    scale = _node_get(cfg.optim, "lr_scale", 1.0)
    match = _node_get(cfg, "match")
    by = "none" if match is None else _node_get(match, "by", "none")
    if hidden is None and scale == 1.0 and by == "none":
        return cfg
    from harness.tasks import task_of
    cfg = copy.deepcopy(cfg)
    if hidden is not None:
        task = task_of(cfg.task)  # ConfigError for an unknown name or an unreadable table file
        cfg.model.widths = [task.d_in, *list(hidden), task.d_out]
        cfg.model.hidden = None
    if scale != 1.0:
        _require(math.isfinite(scale) and scale > 0,
                 f"optim.lr_scale={scale} must be positive (a multiple of optim.lr)")
        cfg.optim.lr = float(cfg.optim.lr) * float(scale)
        cfg.optim.lr_scale = 1.0
    if by != "none":
        from harness.matching import apply_match
        apply_match(cfg)
    return cfg


def _node_get(node: Any, key: str, default: Any = None) -> Any:
    """node.key for a dataclass or an OmegaConf node (which may lack the key: older configs)."""
    return node.get(key, default) if hasattr(node, "get") else getattr(node, key, default)


def _require(ok: bool, message: str) -> None:
    if not ok:
        raise ConfigError(message)


def validate(cfg: Any) -> None:
    """Check values that types cannot; raise ConfigError with one line naming the key.

    Every field of every dataclass above has a check here or in its family's `validate`
    (harness/models/<family>_family.py), or a reason it needs none:
    KANConfig.hidden is folded into widths by `resolve` (checked as widths), so is
    optim.lr_scale into optim.lr (checked there and as lr); match.reference and match.tolerance
    are checked by `resolve` (harness/matching.py), which fills the match's three budget fields;
    train_base_weight, train_spline_weight, MLPConfig.bias are booleans (typed);
    seeds (seed, task.seed) are any integer (torch accepts them all);
    wandb.project/entity are free text.
    """
    from harness.models import FAMILY_REGISTRY
    from harness.tasks import task_of

    model = cfg.model
    family = model.family
    _require(family in FAMILY_REGISTRY,
             f"model.family={family!r} is unknown; choose one of {sorted(FAMILY_REGISTRY)}")
    widths = list(model.widths)
    _require(len(widths) >= 2, f"model.widths={widths} needs at least [d_in, d_out]")
    for i, w in enumerate(widths):
        _require(isinstance(w, int) and w > 0,
                 f"model.widths[{i}]={w} must be a positive integer (got widths={widths})")
    train = cfg.train
    schedule = list(train.grid_schedule)
    for i, g in enumerate(schedule):
        _require(g >= 1, f"train.grid_schedule[{i}]={g} must be >= 1 (grid intervals of stage {i})")
    for i in range(1, len(schedule)):
        # Grid extension refines a spline onto a finer grid (Liu et al. 2024, §2.4); a coarser one
        # would throw away what was learnt, so a shrinking schedule is refused rather than run.
        _require(schedule[i] >= schedule[i - 1],
                 f"train.grid_schedule={schedule} shrinks at stage {i} ({schedule[i - 1]} -> "
                 f"{schedule[i]}); grid extension only refines: make it non-decreasing")
    task = cfg.task
    # The registry entry specialised to the task fields: table tasks refuse n_train / n_test over
    # their rows; task=table_file reads task.path and checks its columns (harness/tasks/table_file.py).
    spec = task_of(task)
    file_fields = [getattr(task, key, None) for key in ("path", "target_columns", "feature_columns")]
    _require(task.name == "table_file" or not any(file_fields),
             f"task.path, task.target_columns and task.feature_columns are read only by "
             f"task=table_file (task.name={task.name!r})")
    FAMILY_REGISTRY[family].validate(cfg, spec)  # the family's own checks (harness/models/)
    _require(widths[0] == spec.d_in and widths[-1] == spec.d_out,
             f"model.widths={widths} must start with d_in={spec.d_in} and end with "
             f"d_out={spec.d_out} for task {task.name}")
    _require(task.n_train > 0, f"task.n_train={task.n_train} must be positive")
    _require(task.n_test > 0, f"task.n_test={task.n_test} must be positive")
    optim = cfg.optim
    _require(optim.name in ("lbfgs", "adam", "adamw"),
             f"optim.name={optim.name!r}: choose lbfgs, adam or adamw")
    _require(math.isfinite(optim.lr) and optim.lr > 0, f"optim.lr={optim.lr} must be positive")
    _require(math.isfinite(optim.weight_decay) and optim.weight_decay >= 0,
             f"optim.weight_decay={optim.weight_decay} must be >= 0 (0 = none)")
    _require(optim.name != "lbfgs" or optim.weight_decay == 0,
             f"optim.weight_decay={optim.weight_decay} is not applied by lbfgs: set it to 0 or "
             f"use optim=adam / optim=adamw")
    _require(optim.batch_size == -1 or optim.batch_size > 0,
             f"optim.batch_size={optim.batch_size} must be positive, or -1 for full batch")
    _require(optim.history_size >= 1,
             f"optim.history_size={optim.history_size} must be >= 1 (L-BFGS memory; pykan: 10)")
    _require(optim.line_search in ("strong_wolfe", "none"),
             f"optim.line_search={optim.line_search!r}: choose strong_wolfe or none")
    _require(optim.max_iter >= 1,
             f"optim.max_iter={optim.max_iter} must be >= 1 (L-BFGS iterations per step; "
             f"0 would train nothing; pykan: 20)")
    for key in ("tolerance_grad", "tolerance_change"):
        value = getattr(optim, key)
        _require(value >= 0, f"optim.{key}={value} must be >= 0 (L-BFGS stopping tolerance)")
    _require(train.steps_per_stage >= 1,
             f"train.steps_per_stage={train.steps_per_stage} must be >= 1 (0 would train nothing)")
    _require(train.update_grid_every >= 0,
             f"train.update_grid_every={train.update_grid_every} must be >= 0 (0 = no grid updates)")
    _require(train.update_grid_until >= 0,
             f"train.update_grid_until={train.update_grid_until} must be >= 0 (0 = no grid updates)")
    _require(train.log_every >= 1,
             f"train.log_every={train.log_every} must be >= 1 (log the loss every N steps)")
    _require(train.checkpoint_every >= 1,
             f"train.checkpoint_every={train.checkpoint_every} must be >= 1 (checkpoint every N "
             f"steps; every stage end checkpoints anyway, so a large value means stage ends only)")
    _require(train.max_loss > 0,  # NaN compares False: refused too
             f"train.max_loss={train.max_loss} must be positive (a loss above it = diverged)")
    _require(bool(cfg.experiment_name) and "/" not in str(cfg.experiment_name),
             f"experiment_name={cfg.experiment_name!r} must be a non-empty name without '/' "
             f"(it names folders and manifests)")
    _require(optim.lbfgs_rule in ("pykan", "torch"),
             f"optim.lbfgs_rule={optim.lbfgs_rule!r}: choose pykan or torch")
    _require(cfg.dtype in ("float32", "float64"), f"dtype={cfg.dtype!r}: choose float32 or float64")
    _require(cfg.device in ("cpu", "cuda", "auto") or str(cfg.device).startswith("cuda:"),
             f"device={cfg.device!r}: choose cpu, cuda or auto")
    _require(cfg.num_threads >= 0, f"num_threads={cfg.num_threads} must be >= 0 (0 = torch default)")
    from_env = (" (from the WANDB_MODE environment variable)"
                if os.environ.get("WANDB_MODE") == cfg.wandb.mode else "")
    _require(cfg.wandb.mode in ("offline", "online", "disabled"),
             f"wandb.mode={cfg.wandb.mode!r}{from_env}: choose offline, online or disabled")
    _require(cfg.wandb.mode != "online" or wandb_credentials(),
             "wandb.mode=online but no wandb credentials: run `wandb login`, set WANDB_API_KEY, "
             "or use wandb.mode=offline")
    match = _node_get(cfg, "match")
    if match is not None:
        from harness.matching import MATCH_BY
        _require(match.by in ("none", *MATCH_BY),
                 f"match.by={match.by!r}: choose none, {', '.join(MATCH_BY)}")
    objective = str(_node_get(cfg, "objective", "auto"))
    _require(objective in OBJECTIVES or objective.startswith("metrics."),
             f"objective={objective!r}: choose one of {', '.join(OBJECTIVES)} or metrics.<name> "
             f"(a key of the record's metrics)")
    check_results_root(str(cfg.results_root))


# What the Hydra task function can return (harness.run.objective; `metrics.<name>` too).
OBJECTIVES = ("auto", "test_rmse", "best_test_rmse", "train_rmse", "test_error_rate")


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


def check_results_root(root: str) -> None:
    """One line when `root` cannot hold results: a file on its path, or a folder not writable.

    Looks at `root` or, when it does not exist yet, its nearest existing parent; creates nothing.
    """
    existing = Path(root)
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    _require(existing.is_dir(),
             f"results_root={root!r}: {existing} is a file, not a folder; set results_root to a "
             f"folder (it is created if missing)")
    _require(os.access(existing, os.W_OK | os.X_OK),
             f"results_root={root!r}: {existing} is not writable (read-only); set results_root to a "
             f"writable folder")


register_configs()  # last: harness.tasks imports this module's TaskConfig
