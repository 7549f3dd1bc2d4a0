"""The one results schema: a frozen record per run, written atomically as result.json.

A run's id is a hash of its resolved config minus where-and-how-it-ran keys, so the same point
of a sweep has the same id on a laptop and on a cluster, and a finished run can be found again.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional

RESULT_FILE = "result.json"
# Keys that say where or how a run is executed, not what it computes.
RUN_ID_EXCLUDED_KEYS = ("results_root", "wandb", "launcher", "hydra", "device", "num_threads")
STATUSES = ("done", "failed", "diverged")


@dataclass(frozen=True)
class StageResult:
    """The state at the end of one grid-extension stage (one point of a scaling curve)."""
    stage: int
    grid: Optional[int]  # KAN intervals in this stage; None for MLPs
    n_params: int
    flops_forward: int
    flops_forward_yu2024: int
    step: int  # optimizer steps done at the end of the stage (cumulative)
    n_evals: int  # forward+backward evaluations so far (cumulative)
    train_flops: int  # cumulative
    wall_time_s: float  # cumulative training time
    train_rmse: float
    test_rmse: float
    test_mse: float
    test_median_abs_error: float = float("nan")  # median |f - f*| (the paper's median variant)
    cpu_time_s: float = float("nan")  # cumulative process CPU time of training (nan: not measured)
    metrics: Dict[str, float] = field(default_factory=dict)  # task-specific (PDE errors, ...)


@dataclass(frozen=True)
class RunResult:
    run_id: str
    status: str  # done, failed or diverged
    error: Optional[str]
    experiment: str
    family: str
    task: str
    seed: int
    widths: List[int]
    grid: Optional[int]  # final grid (KAN)
    k: Optional[int]  # spline order (KAN)
    n_params: int
    flops_forward: int  # per example, our convention (harness/counting.py)
    flops_forward_basis: int
    flops_forward_matmul: int
    flops_forward_yu2024: int
    train_flops: int  # counted over the passes the optimizer really ran
    n_evals: int
    steps: int
    n_train: int
    optimizer: str
    lr: float
    dtype: str
    device: str
    train_rmse: float
    test_rmse: float
    test_mse: float
    wall_time_s: float
    test_median_abs_error: float = float("nan")  # median |f - f*| over test points and outputs
    # Time that does not depend on the neighbours: process CPU seconds over the same training
    # steps as wall_time_s (all threads of the process), and the 1-minute load average when the
    # run started and when its record was made (os.getloadavg; nan where unavailable).
    cpu_time_s: float = float("nan")
    load_avg_start: float = float("nan")
    load_avg_end: float = float("nan")
    # Best and last: test_rmse is the last stage's; best_test_rmse the lowest over the stages
    # (index best_stage, None when no stage finished).
    best_test_rmse: float = float("nan")
    best_stage: Optional[int] = None
    # Standard deviation (ddof=0) of all test labels: the RMSE of predicting their mean, the
    # yardstick of the analysis's scaling-regime guard.
    test_target_std: float = float("nan")
    stages: List[Dict[str, Any]] = field(default_factory=list)
    metrics: Dict[str, float] = field(default_factory=dict)  # task-specific (PDE errors, ...)
    config: Dict[str, Any] = field(default_factory=dict)
    git_sha: Optional[str] = None
    torch_version: str = ""
    python_version: str = ""
    hostname: str = ""
    finished_at: str = ""

    def to_dict(self) -> Dict[str, Any]:
        return dataclasses.asdict(self)


def _strip(config: Dict[str, Any]) -> Dict[str, Any]:
    return {key: value for key, value in config.items() if key not in RUN_ID_EXCLUDED_KEYS}


def run_id_of(config: Dict[str, Any]) -> str:
    """First 12 hex digits of the SHA-256 of the canonical JSON of the config (minus exclusions)."""
    canonical = json.dumps(_strip(config), sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()[:12]


def write_json_atomic(path: Path, payload: Dict[str, Any]) -> None:
    """Write to a temp file in the same folder, fsync, then rename: readers never see half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as handle:
            json.dump(payload, handle, indent=2, sort_keys=True, default=float)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def write_result(run_dir: Path, result: RunResult) -> Path:
    path = Path(run_dir) / RESULT_FILE
    write_json_atomic(path, result.to_dict())
    return path


def read_result(run_dir: Path) -> Optional[Dict[str, Any]]:
    path = Path(run_dir) / RESULT_FILE
    if not path.exists():
        return None
    with open(path) as handle:
        return json.load(handle)
