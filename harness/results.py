"""The one results schema: a frozen record per run, written atomically as result.json.

A run's id is a hash of its resolved config minus where-and-how-it-ran keys, so the same point
of a sweep has the same id on a laptop and on a cluster, and a finished run can be found again.

Records are strict JSON (RFC 8259): non-finite floats are written as null (the record's status
and error say why, e.g. diverged) and read back as NaN where the schema says float. Every reader
goes through `load_record`, which validates a record against this schema and returns either the
record or a `Damaged` verdict naming the file and the reason. Stdlib only: analysis/ imports it.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import os
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional, Union

RESULT_FILE = "result.json"
# Keys that say where or how a run is executed, not what it computes.
# `objective` only picks the number the Hydra task function returns (harness.run.objective).
RUN_ID_EXCLUDED_KEYS = ("results_root", "wandb", "launcher", "hydra", "device", "num_threads",
                        "objective")
STATUSES = ("done", "failed", "diverged")
TIME_MEASURES = ("own", "share")  # RunResult.time_measure


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
    # How the run was executed (not part of its config or id): stack_size = the most runs it
    # trained with in one stack (1: alone; harness.ensemble.run_many packs more); time_measure =
    # "own" (wall/CPU time measured for this run alone) or "share" (a stack's measured step time
    # divided equally among its members). None in records made before these fields: unknown.
    stack_size: Optional[int] = None
    time_measure: Optional[str] = None
    stages: List[Dict[str, Any]] = field(default_factory=list)
    metrics: Dict[str, float] = field(default_factory=dict)  # task-specific (PDE errors, ...)
    config: Dict[str, Any] = field(default_factory=dict)
    git_sha: Optional[str] = None
    torch_version: str = ""
    python_version: str = ""
    hostname: str = ""
    finished_at: str = ""
    # What the model was budget-matched to (harness/matching.py): {by, reference, reference_value,
    # value, ratio}, taken from the resolved config's `match` block when not given; None when the
    # run was not matched (and in records written before matching existed).
    matched: Optional[Dict[str, Any]] = None

    def __post_init__(self) -> None:
        if self.matched is None:
            object.__setattr__(self, "matched", matched_of(self.config))

    def to_dict(self) -> Dict[str, Any]:
        return dataclasses.asdict(self)


def matched_of(config: Dict[str, Any]) -> Optional[Dict[str, Any]]:
    """The record's `matched` field from a resolved config's `match` block (None: not matched)."""
    match = (config or {}).get("match") or {}
    if match.get("by", "none") == "none":
        return None
    return {key: match.get(key) for key in ("by", "reference", "reference_value", "value", "ratio")}


def _strip(config: Dict[str, Any]) -> Dict[str, Any]:
    out = {key: value for key, value in config.items() if key not in RUN_ID_EXCLUDED_KEYS}
    # Settings added after runs existed, at their neutral values (no budget match; lr_scale 1, which
    # harness.config.resolve has already folded into lr), are left out, so those runs keep their ids.
    if (out.get("match") or {}).get("by", "none") == "none":
        out.pop("match", None)
    optim = out.get("optim")
    if isinstance(optim, dict) and optim.get("lr_scale", 1.0) == 1.0:
        out["optim"] = {key: value for key, value in optim.items() if key != "lr_scale"}
    return out


def run_id_of(config: Dict[str, Any]) -> str:
    """First 12 hex digits of the SHA-256 of the canonical JSON of the config (minus exclusions)."""
    canonical = json.dumps(_strip(config), sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()[:12]


def strict_json(value: Any) -> Any:
    """`value` with every non-finite float replaced by None (JSON has no NaN or Infinity)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {key: strict_json(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [strict_json(item) for item in value]
    return value


def write_json_atomic(path: Path, payload: Dict[str, Any]) -> None:
    """Write strict JSON to a temp file in the same folder, fsync, then rename: readers never see
    half a file. Non-finite floats are written as null."""
    from harness import faults
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as handle:
            json.dump(strict_json(payload), handle, indent=2, sort_keys=True, allow_nan=False,
                      default=float)
            handle.flush()
            os.fsync(handle.fileno())
        faults.hit("record_write")
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def write_result(run_dir: Path, result: RunResult) -> Path:
    path = Path(run_dir) / RESULT_FILE
    write_json_atomic(path, result.to_dict())
    return path


# ----- reading and validating ------------------------------------------------------------------
@dataclass(frozen=True)
class Damaged:
    """A result file that is not a valid record: where it is and why."""
    path: Path
    reason: str

    def __str__(self) -> str:
        return f"damaged record {self.path}: {self.reason}"


def _check_value(value: Any, kind: str) -> bool:
    """Whether a JSON value fits a field's declared type (a string: this module's annotations)."""
    if kind.startswith("Optional["):
        return value is None or _check_value(value, kind[len("Optional["):-1])
    if kind == "float":
        # null: a non-finite number (strict JSON); ints are floats that happen to be whole
        return value is None or (isinstance(value, (int, float)) and not isinstance(value, bool))
    if kind == "int":
        return isinstance(value, int) and not isinstance(value, bool)
    if kind == "bool":
        return isinstance(value, bool)
    if kind == "str":
        return isinstance(value, str)
    if kind.startswith("List"):
        return isinstance(value, list)
    if kind.startswith("Dict"):
        return isinstance(value, dict)
    return True  # Any, or a type this check does not know


def _floats_back(record: Dict[str, Any], cls) -> Dict[str, Any]:
    """null -> NaN in the fields the schema declares float (not Optional: there None is a value)."""
    out = dict(record)
    for f in dataclasses.fields(cls):
        if str(f.type) == "float" and out.get(f.name, 0.0) is None:
            out[f.name] = float("nan")
    return out


def validate_record(raw: Any) -> Optional[str]:
    """None if `raw` (parsed JSON) is a valid RunResult record, else the reason in a few words."""
    if not isinstance(raw, dict):
        return f"top level is a JSON {type(raw).__name__}, not an object"
    missing = [f.name for f in dataclasses.fields(RunResult)
               if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
               and f.name not in raw]
    if missing:
        return f"missing field(s) {', '.join(missing)}"
    for f in dataclasses.fields(RunResult):
        if f.name in raw and not _check_value(raw[f.name], str(f.type)):
            return f"field {f.name}={raw[f.name]!r:.60} is not {f.type}"
    if raw["status"] not in STATUSES:
        return f"status {raw['status']!r} is not one of {', '.join(STATUSES)}"
    if raw.get("time_measure") not in (None, *TIME_MEASURES):
        return f"time_measure {raw['time_measure']!r} is not one of {', '.join(TIME_MEASURES)}"
    for i, stage in enumerate(raw.get("stages", [])):
        if not isinstance(stage, dict):
            return f"stages[{i}] is not an object"
    return None


def load_record(path: Path) -> Union[Dict[str, Any], Damaged, None]:
    """The record in `path` (a result.json, or a run folder holding one), validated.

    Returns None when there is no file, a `Damaged` verdict (path and reason) when the file is not
    a valid record, else the record as a dict with NaN restored where the schema says float.
    """
    path = Path(path)
    if path.is_dir() or path.name != RESULT_FILE:
        path = path / RESULT_FILE
    try:
        text = path.read_text()
    except FileNotFoundError:
        return None
    except OSError as exc:
        return Damaged(path, f"unreadable ({exc.strerror})")
    try:
        raw = json.loads(text, parse_constant=_reject_constant)
    except ValueError as exc:
        return Damaged(path, f"not JSON ({exc})")
    reason = validate_record(raw)
    if reason is not None:
        return Damaged(path, reason)
    record = _floats_back(raw, RunResult)
    record["stages"] = [_floats_back(stage, StageResult) for stage in record.get("stages", [])]
    return record


def _reject_constant(name: str) -> Any:
    # Records written before strict JSON carry bare NaN tokens; they are still read as NaN.
    return {"NaN": float("nan"), "Infinity": float("inf"), "-Infinity": float("-inf")}[name]


def result_of(record: Dict[str, Any]) -> RunResult:
    """A validated record -> RunResult (keys the schema does not know are dropped)."""
    names = {f.name for f in dataclasses.fields(RunResult)}
    return RunResult(**{key: value for key, value in record.items() if key in names})


def read_result(run_dir: Path) -> Optional[Dict[str, Any]]:
    """The run's valid record, or None when it has none or only a damaged one."""
    record = load_record(Path(run_dir))
    return None if isinstance(record, Damaged) else record


def move_aside(path: Path) -> Path:
    """Rename a damaged record to result.damaged-<UTC timestamp>.json beside it (kept, not deleted)."""
    path = Path(path)
    stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime()) + f"-{time.time_ns() % 10**9:09d}"
    target = path.with_name(f"{path.stem}.damaged-{stamp}{path.suffix}")
    os.replace(path, target)
    return target
