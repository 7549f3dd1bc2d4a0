"""One run as a member of a training stack (a solo run is a stack of one): `Member` holds its
config and ids, progress counters, stage records, solo model, batch generator, checkpoints and
record; the loop that trains members is harness.train.StackTrainer.

The run's model is built from cfg.seed (`build_initial_model`); a checkpoint's model may have
another grid size (`load_state_resizing`); time is measured as wall and process CPU seconds
(`cpu_time`) and the machine's load is recorded beside it (`load_avg_1min`).
"""
from __future__ import annotations

import math
import os
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional

import torch
from omegaconf import DictConfig, OmegaConf

from harness import counting
from harness.checkpoint import Checkpoint, load_checkpoint, save_checkpoint
from harness.models import build_model, family_of
from harness.provenance import provenance
from harness.results import RunResult, StageResult, write_result
from harness.tasks import Dataset, task_of
from harness.tracking import Tracker

def pick_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def stage_grids(cfg: DictConfig) -> List[Optional[int]]:
    """Grid per stage, the model family's (KANs: the schedule; MLPs: one None per stage, the same
    number of stages and steps)."""
    return family_of(cfg.model).stage_grids(cfg)


def cpu_time() -> float:
    """CPU seconds used by this process so far, every thread counted.

    process_time, not thread_time: with num_threads > 1 torch runs a step's kernels on its
    intra-op worker threads, which thread_time (the calling thread only) would not see, so it
    would undercount by up to num_threads x. process_time also counts the process's other
    threads (wandb's, OpenMP spin-waits), which are few and this run's own; runs of a sweep
    share a process only one after another, so no neighbour's work is counted.
    """
    return time.process_time()


def load_avg_1min() -> float:
    """The machine's 1-minute load average (os.getloadavg); nan where the OS has none."""
    try:
        return os.getloadavg()[0]
    except (OSError, AttributeError):
        return float("nan")


@dataclass
class Progress:
    """Counters that a checkpoint carries, so a resumed run continues them (all cumulative)."""
    stage: int = 0
    step_in_stage: int = 0
    global_step: int = 0
    n_evals: int = 0
    train_flops: int = 0
    wall_time_s: float = 0.0
    cpu_time_s: float = 0.0  # measured over the same steps as wall_time_s (see cpu_time)
    # the load when the run first started (a resumed run keeps it); looked up at call time
    load_avg_start: float = field(default_factory=lambda: load_avg_1min())
    stack_size: int = 0  # the most members it trained with (1: alone); 0 before training


class Member:
    """One run trained in a stack (a solo run is a stack of one): its config and ids, progress
    counters, stage records, its solo model (the stack's member written back at stage ends and
    checkpoints), its batch generator, checkpoints and record. Its fate: status "done" while it
    trains; "failed" or "diverged" once it stopped (the rest of the stack goes on)."""

    def __init__(self, cfg: DictConfig, config: Dict[str, Any], run_id: str, run_dir: Path, log):
        self.cfg, self.config, self.run_id, self.run_dir, self.log = cfg, config, run_id, run_dir, log
        self.device = pick_device(cfg.device)
        self.dtype = getattr(torch, cfg.dtype)
        self.grids = stage_grids(cfg)
        self.task = task_of(cfg.task)
        self.stages: List[Dict[str, Any]] = []
        self.progress = Progress()
        self.model: Optional[torch.nn.Module] = None
        self.data: Optional[Dataset] = None
        self.status, self.error, self.traceback = "done", None, None
        self.history: List[Dict[str, Any]] = []  # wandb rows, sent when the run ends
        self.optimizer_state: Optional[Dict[str, Any]] = None  # a mid-stage checkpoint's
        # read once: a config attribute costs microseconds, and these are read every step
        self.max_loss = float(cfg.train.max_loss)
        self.log_every = int(cfg.train.log_every)
        self.checkpoint_every = int(cfg.train.checkpoint_every)

    @property
    def alive(self) -> bool:
        return self.status == "done"

    def fail(self, status: str, error: str, trace: Optional[str] = None) -> None:
        self.status, self.error, self.traceback = status, error, trace

    # ----- setup -------------------------------------------------------------------------
    def make_data(self) -> Dataset:
        return self.task.make_dataset(self.cfg.task.n_train, self.cfg.task.n_test,
                                      self.cfg.task.seed, self.dtype, self.device)

    def start(self, data: Dataset) -> None:
        """The run's model as `cfg.seed` initialises it, or as its checkpoint left it."""
        self.data, self.stages = data, []
        self.model = build_initial_model(self.cfg, self.grids[0], self.dtype, self.device)
        self.batch_generator = torch.Generator().manual_seed(self.cfg.seed)
        self.rng_state = torch.get_rng_state()  # the global RNG state a checkpoint carries
        checkpoint = load_checkpoint(self.run_dir)
        if checkpoint is not None:
            self.progress = Progress(**checkpoint.progress)
            self.stages = list(checkpoint.stages)
            load_state_resizing(self.model, checkpoint.model)
            self.rng_state = checkpoint.torch_rng
            self.batch_generator.set_state(checkpoint.batch_rng)
            self.optimizer_state = checkpoint.optimizer
            self.log(f"[kanscale] {self.run_id} resuming at stage {self.progress.stage} "
                     f"step {self.progress.step_in_stage}")

    def batch(self, x: torch.Tensor, y: torch.Tensor):
        """This step's training examples from the stage's (x, y): all, or a random batch drawn by
        the run's own generator."""
        batch_size = self.cfg.optim.batch_size
        if batch_size == -1 or batch_size >= x.shape[0]:
            return x, y
        ids = torch.randperm(x.shape[0], generator=self.batch_generator)[:batch_size].to(x.device)
        return x[ids], y[ids]

    def count_forward(self, n_examples: int, grid: Optional[int]) -> None:
        """A forward pass over n_examples outside the optimizer (grid update, extension)."""
        self.progress.train_flops += counting.flops_forward(self.cfg.model, grid).total * n_examples

    # ----- records -----------------------------------------------------------------------
    @torch.no_grad()
    def _median_abs_error(self) -> float:
        prediction = self.task.predict(self.model, self.data.test_input)
        return float(torch.median(torch.abs(prediction - self.data.test_label)))

    @torch.no_grad()
    def _mse(self, split: str) -> float:
        x = getattr(self.data, f"{split}_input")
        y = getattr(self.data, f"{split}_label")
        return float(torch.mean((self.task.predict(self.model, x) - y) ** 2))

    def stage_record(self, grid: Optional[int]) -> Dict[str, Any]:
        """The record of the stage just finished, from the solo model (written back)."""
        p, model_cfg = self.progress, self.cfg.model
        train_mse, test_mse = self._mse("train"), self._mse("test")
        return StageResult(
            stage=p.stage, grid=grid, n_params=counting.n_params(model_cfg, grid),
            flops_forward=counting.flops_forward(model_cfg, grid).total,
            flops_forward_yu2024=counting.flops_forward_yu2024(model_cfg, grid),
            step=p.global_step, n_evals=p.n_evals, train_flops=p.train_flops,
            wall_time_s=p.wall_time_s, cpu_time_s=p.cpu_time_s, train_rmse=math.sqrt(train_mse),
            test_rmse=math.sqrt(test_mse), test_mse=test_mse,
            test_median_abs_error=self._median_abs_error(),
            metrics=self.task.metrics(self.model, self.data, p.stage, len(self.grids))).__dict__

    def record(self, status: str, error: Optional[str]) -> RunResult:
        cfg, p = self.cfg, self.progress
        final_grid = self.grids[min(p.stage, len(self.grids) - 1)]
        if self.stages:
            final_grid = self.stages[-1]["grid"]
        flops = counting.flops_forward(cfg.model, final_grid)
        nan = float("nan")
        train_rmse = test_rmse = test_mse = median_abs_error = nan
        metrics: Dict[str, float] = {}
        if self.model is not None and status == "done":
            test_mse = self._mse("test")
            median_abs_error = self._median_abs_error()
            train_rmse, test_rmse = math.sqrt(self._mse("train")), math.sqrt(test_mse)
            metrics = self.task.metrics(self.model, self.data, len(self.grids) - 1, len(self.grids))
        finished = [s for s in self.stages if math.isfinite(s["test_rmse"])]
        best = min(finished, key=lambda s: s["test_rmse"]) if finished else None
        # ddof=0: the RMSE of the constant predictor mean(y), over all test labels and outputs
        target_std = nan if self.data is None else float(self.data.test_label.double().std(correction=0))
        stack_size = p.stack_size or None
        return RunResult(
            run_id=self.run_id, status=status, error=error, experiment=cfg.experiment_name,
            family=cfg.model.family, task=cfg.task.name, seed=cfg.seed,
            widths=list(cfg.model.widths), **family_of(cfg.model).record_fields(cfg.model, final_grid),
            n_params=counting.n_params(cfg.model, final_grid), flops_forward=flops.total,
            flops_forward_basis=flops.basis, flops_forward_matmul=flops.matmul,
            flops_forward_yu2024=counting.flops_forward_yu2024(cfg.model, final_grid),
            train_flops=p.train_flops, n_evals=p.n_evals, steps=p.global_step,
            n_train=cfg.task.n_train, optimizer=cfg.optim.name, lr=cfg.optim.lr, dtype=cfg.dtype,
            device=str(self.device), train_rmse=train_rmse, test_rmse=test_rmse,
            test_mse=test_mse, wall_time_s=p.wall_time_s, cpu_time_s=p.cpu_time_s,
            load_avg_start=p.load_avg_start, load_avg_end=load_avg_1min(),
            best_test_rmse=nan if best is None else best["test_rmse"],
            best_stage=None if best is None else best["stage"], test_target_std=target_std,
            test_median_abs_error=median_abs_error, stages=list(self.stages),
            stack_size=stack_size,
            time_measure=None if stack_size is None else "own" if stack_size == 1 else "share",
            metrics=metrics, config=self.config, **provenance())

    # ----- checkpoints -------------------------------------------------------------------
    def save(self, optimizer_state: Optional[Dict[str, Any]]) -> None:
        """Checkpoint the solo model (write it back from the stack first) with the run's slice of
        the optimizer state (None at a stage boundary: a new optimizer per stage)."""
        save_checkpoint(self.run_dir, Checkpoint(
            progress=dict(self.progress.__dict__), stages=list(self.stages),
            model=self.model.state_dict(), optimizer=optimizer_state,
            torch_rng=self.rng_state, batch_rng=self.batch_generator.get_state()))

    # ----- the end -------------------------------------------------------------------------
    def _tracker(self) -> Tracker:
        cfg = self.cfg
        return Tracker(cfg.wandb.mode, cfg.wandb.project, cfg.wandb.entity, self.run_id,
                       cfg.experiment_name, self.run_dir, self.config)

    def _send_history(self, tracker: Tracker) -> None:
        for row in self.history:
            tracker.log({key: value for key, value in row.items() if key != "_step"}, step=row["_step"])
        self.history = []

    def finish(self) -> RunResult:
        """Write the record (RUN_DIR/result.json; error.log for a failure), then mirror it and the
        logged rows to wandb. A wandb initialisation error makes the run a failed one."""
        tracker = None
        try:
            tracker = self._tracker()
        except Exception as exc:  # noqa: BLE001 - recorded as the run's failure
            self.fail("failed", f"{type(exc).__name__}: {exc}", traceback.format_exc())
        if self.traceback:
            (self.run_dir / "error.log").write_text(self.traceback)
        result = self.record(self.status, self.error)
        write_result(self.run_dir, result)
        if tracker is not None:
            try:  # the record on disk is the source of truth
                self._send_history(tracker)
                tracker.finish(result.to_dict(), exit_code=0 if self.status == "done" else 1)
            except Exception as exc:  # noqa: BLE001
                self.log(f"[kanscale] {self.run_id}: wandb failed ({type(exc).__name__}: {exc})")
        packed = "" if result.stack_size in (None, 1) else f", in a stack of {result.stack_size}"
        self.log(f"[kanscale] {self.run_id} {self.status}: test_rmse={result.test_rmse:.3e} "
                 f"n_params={result.n_params} ({result.wall_time_s:.1f}s{packed}) -> {self.run_dir}")
        return result

    def finish_interrupted(self) -> None:
        """After a stop request (the checkpoint is saved): the logged rows go to wandb, marked."""
        try:
            tracker = self._tracker()
            self._send_history(tracker)
            tracker.finish({"status": "interrupted"}, exit_code=1)
        except Exception as exc:  # noqa: BLE001
            self.log(f"[kanscale] {self.run_id}: wandb failed ({type(exc).__name__}: {exc})")


def build_initial_model(cfg: DictConfig, first_grid: Optional[int], dtype: torch.dtype,
                        device: torch.device) -> torch.nn.Module:
    """The run's model as initialised from cfg.seed: a KAN starts on the first grid of its
    schedule, and is built in the run's dtype so float64 knots are exactly uniform (the fast
    layer's fast path)."""
    torch.manual_seed(cfg.seed)
    model_cfg = cfg.model
    if first_grid is not None:
        model_cfg = OmegaConf.merge(cfg.model, {"grid": first_grid})
    default_dtype = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        return build_model(model_cfg).to(device=device)
    finally:
        torch.set_default_dtype(default_dtype)


def load_state_resizing(model: torch.nn.Module, state: Dict[str, torch.Tensor]) -> None:
    """load_state_dict that first gives KAN grids/coefficients the checkpoint's grid size."""
    own = model.state_dict()
    for name, tensor in state.items():
        if name in own and own[name].shape != tensor.shape:
            module_name, _, attr = name.rpartition(".")
            module = model.get_submodule(module_name)
            if attr == "coef":
                module.coef = torch.nn.Parameter(tensor.clone(), requires_grad=module.coef.requires_grad)
            elif attr == "grid":
                module.grid = tensor.clone()
    model.load_state_dict(state)
