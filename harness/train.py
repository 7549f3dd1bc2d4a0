"""One training run: `run(cfg) -> RunResult`, callable without Hydra.

A run trains one model on one task through a schedule of stages (KAN grid extension, Liu et al.
2024 §2.4), records the loss at the end of every stage, counts every forward+backward pass the
optimizer ran, checkpoints so it can resume, and writes exactly one result record.
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

from harness import claim, counting, faults
from harness.checkpoint import Checkpoint, load_checkpoint, save_checkpoint
from harness.config import RunConfig, resolve, validate
from harness.ensemble.batched_lbfgs import SoloLBFGS
from harness.models import build_model, family_of
from harness.stop import StopRequest
from harness.results import (Damaged, RunResult, StageResult, load_record, move_aside, result_of,
                             run_id_of, write_result)
from harness.provenance import provenance
from harness.tasks import Dataset, task_of
from harness.tracking import Tracker


# Records with these statuses are final: a re-launch skips them (a diverged run diverges again).
FINISHED = ("done", "diverged")


class RunInterrupted(Exception):
    """Raised after a checkpoint was saved because a stop was requested (harness.stop: the CLI
    and launchers set it on SIGTERM/SIGUSR1/preemption); re-run to resume."""


class Diverged(Exception):
    pass


def to_config(cfg: Any) -> DictConfig:
    """A RunConfig dataclass, dict or DictConfig -> a typed DictConfig (schema-checked)."""
    if isinstance(cfg, DictConfig):
        return cfg
    return OmegaConf.structured(cfg) if isinstance(cfg, RunConfig) else OmegaConf.create(cfg)


def resolved_dict(cfg: DictConfig) -> Dict[str, Any]:
    return OmegaConf.to_container(cfg, resolve=True)  # type: ignore[return-value]


def run_dir_of(cfg: DictConfig) -> Path:
    return Path(cfg.results_root) / run_id_of(resolved_dict(cfg))


def pick_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def stage_grids(cfg: DictConfig) -> List[Optional[int]]:
    """Grid per stage, the model family's (KANs: the schedule; MLPs: one None per stage, the same
    number of stages and steps)."""
    return family_of(cfg.model).stage_grids(cfg)


def run(cfg: Any, log=print, stop: Optional[StopRequest] = None) -> RunResult:
    """Train one configuration to completion (or resume it) and return its record.

    `stop` (harness.stop): when it is requested, the run saves a checkpoint at the end of the
    step and raises RunInterrupted; a re-run resumes to the same numbers. run() installs no
    signal handlers: whoever owns the process sets `stop` (harness/run.py does on SIGTERM/SIGUSR1).

    Bad config values raise ConfigError before any work. A finished run is not redone: its record
    is returned. A run folder another live trainer holds raises RunClaimed (harness.claim). A
    damaged record is moved aside (result.damaged-<time>.json) and the run redone. Failures and
    divergence are returned as records with that status, never raised.
    """
    cfg = resolve(to_config(cfg))
    validate(cfg)
    config = resolved_dict(cfg)
    run_id = run_id_of(config)
    run_dir = Path(cfg.results_root) / run_id
    existing = _finished_record(run_dir, run_id, log)
    if existing is not None:
        return existing
    with claim.acquire(run_dir) as held, claim.Heartbeat([held]):
        # Another trainer may have finished (or damaged) the record while we looked: look again.
        existing = _finished_record(run_dir, run_id, log)
        if existing is not None:
            return existing
        damaged = load_record(run_dir)
        if isinstance(damaged, Damaged):
            moved = move_aside(damaged.path)
            log(f"[kanscale] {run_id}: {damaged}; moved aside to {moved.name}, redoing the run")
        if cfg.num_threads > 0:
            torch.set_num_threads(cfg.num_threads)
        return Trainer(cfg, config, run_id, run_dir, log).train(stop)


def interrupted(stop: StopRequest, global_step: int) -> RunInterrupted:
    """The exception a loop raises once `stop` is requested and its checkpoint is saved."""
    return RunInterrupted(f"{stop.reason} at step {global_step}; checkpoint saved, re-run to resume")


def _finished_record(run_dir: Path, run_id: str, log) -> Optional[RunResult]:
    """The run's record when it is finished (done or diverged); None otherwise (damaged too)."""
    existing = load_record(run_dir)
    if isinstance(existing, dict) and existing["status"] in FINISHED:
        log(f"[kanscale] {run_id} already {existing['status']} ({run_dir}); skipping")
        claim.clear_stale(run_dir)  # a trainer killed between its record and its release
        return result_of(existing)
    return None


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


class Trainer:
    def __init__(self, cfg: DictConfig, config: Dict[str, Any], run_id: str, run_dir: Path, log):
        self.cfg, self.config, self.run_id, self.run_dir, self.log = cfg, config, run_id, run_dir, log
        self.device = pick_device(cfg.device)
        self.dtype = getattr(torch, cfg.dtype)
        self.grids = stage_grids(cfg)
        self.task = task_of(cfg.task)
        self.stages: List[Dict[str, Any]] = []
        self.progress = Progress()

    # ----- setup -------------------------------------------------------------------------
    def _data(self) -> Dataset:
        return self.task.make_dataset(self.cfg.task.n_train, self.cfg.task.n_test,
                                      self.cfg.task.seed, self.dtype, self.device)

    def _optimizer(self, model: torch.nn.Module):
        """L-BFGS: ours (harness.ensemble.batched_lbfgs, a stack of one) with optim.lbfgs_rule,
        pykan's `fit` by default; Adam and AdamW: torch's."""
        opt = self.cfg.optim
        params = [p for p in model.parameters() if p.requires_grad]
        if opt.name == "lbfgs":
            line_search = None if opt.line_search == "none" else opt.line_search
            return SoloLBFGS(params, lr=opt.lr, max_iter=opt.max_iter,
                             history_size=opt.history_size, line_search_fn=line_search,
                             tolerance_grad=opt.tolerance_grad,
                             tolerance_change=opt.tolerance_change, rule=opt.lbfgs_rule)
        if opt.name == "adam":
            return torch.optim.Adam(params, lr=opt.lr, weight_decay=opt.weight_decay)
        return torch.optim.AdamW(params, lr=opt.lr, weight_decay=opt.weight_decay)

    # ----- the run -------------------------------------------------------------------------
    def train(self, stop: Optional[StopRequest] = None) -> RunResult:
        """Train, then write the record. Any error (wandb's initialisation included) is recorded as
        a failed run with its traceback in RUN_DIR/error.log; RunInterrupted (raised once `stop`
        is requested, after a checkpoint) is re-raised."""
        status, error = "done", None
        self.model = None
        tracker = None
        faults.note_training(self.run_id)
        try:
            tracker = Tracker(self.cfg.wandb.mode, self.cfg.wandb.project, self.cfg.wandb.entity,
                              self.run_id, self.cfg.experiment_name, self.run_dir, self.config)
            self._train(tracker, stop if stop is not None else StopRequest())
        except RunInterrupted:
            if tracker is not None:
                tracker.finish({"status": "interrupted"}, exit_code=1)
            raise
        except Diverged as exc:
            status, error = "diverged", str(exc)
        except Exception as exc:  # noqa: BLE001 - a failing run is recorded, never raised
            status, error = "failed", f"{type(exc).__name__}: {exc}"
            (self.run_dir / "error.log").write_text(traceback.format_exc())
        result = self._record(status, error)
        write_result(self.run_dir, result)
        if tracker is not None:
            try:
                tracker.finish(result.to_dict(), exit_code=0 if status == "done" else 1)
            except Exception as exc:  # noqa: BLE001 - the record on disk is the source of truth
                self.log(f"[kanscale] {self.run_id}: wandb finish failed ({type(exc).__name__}: {exc})")
        self.log(f"[kanscale] {self.run_id} {status}: test_rmse={result.test_rmse:.3e} "
                 f"n_params={result.n_params} ({result.wall_time_s:.1f}s) -> {self.run_dir}")
        return result

    def _train(self, tracker: Tracker, stop: StopRequest) -> None:
        cfg = self.cfg
        self.data = self._data()
        self.model = build_initial_model(cfg, self.grids[0], self.dtype, self.device)
        self.batch_generator = torch.Generator().manual_seed(cfg.seed)
        checkpoint = load_checkpoint(self.run_dir)
        optimizer = None
        if checkpoint is not None:
            optimizer = self._restore(checkpoint)
            self.log(f"[kanscale] {self.run_id} resuming at stage {self.progress.stage} "
                     f"step {self.progress.step_in_stage}")
        p = self.progress
        while p.stage < len(self.grids):
            grid = self.grids[p.stage]
            self.stage_ids = self.task.stage_indices(self.data, p.stage, len(self.grids))
            if optimizer is None:
                if p.stage > 0 and grid is not None and grid != self.grids[p.stage - 1]:
                    family_of(cfg.model).extend_grid(self.model, grid, self._stage_inputs())
                    self._count_forward(self._stage_inputs().shape[0], grid)
                optimizer = self._optimizer(self.model)
            while p.step_in_stage < cfg.train.steps_per_stage:
                faults.before_step(p.global_step, self.config)  # tests only (KANSCALE_FAULT)
                loss = self._step(optimizer, grid)
                p.step_in_stage += 1
                p.global_step += 1
                if not math.isfinite(loss) or loss > cfg.train.max_loss:
                    raise Diverged(f"train loss {loss} at step {p.global_step}")
                if p.global_step % cfg.train.log_every == 0:
                    tracker.log({"train_loss": loss, "test_loss": self._mse("test"),
                                 "n_evals": p.n_evals, "train_flops": p.train_flops,
                                 "grid": grid or 0}, step=p.global_step)
                if stop.requested:
                    self._save(optimizer)
                    raise interrupted(stop, p.global_step)
                if p.global_step % cfg.train.checkpoint_every == 0:
                    self._save(optimizer)
            self.stages.append(self._stage_record(grid))
            self.log(f"[kanscale] {self.run_id} stage {p.stage} grid={grid} "
                     f"test_rmse={self.stages[-1]['test_rmse']:.3e}")
            p.stage += 1
            p.step_in_stage = 0
            optimizer = None
            self._save(None)

    def _step(self, optimizer: torch.optim.Optimizer, grid: Optional[int]) -> float:
        cfg, p, data = self.cfg, self.progress, self.data
        started, cpu_started = time.perf_counter(), cpu_time()
        update_every = cfg.train.update_grid_every
        if (grid is not None and update_every > 0  # every stage, as every pykan `fit` call
                and p.step_in_stage % update_every == 0 and p.step_in_stage < cfg.train.update_grid_until):
            inputs = self._stage_inputs()
            family_of(cfg.model).update_grid(self.model, inputs)
            self._count_forward(inputs.shape[0], grid)
        x, y = self._batch()
        flops_per_eval = self.task.evaluation_cost(counting.flops_forward(cfg.model, grid).total,
                                                   x.shape[0])

        def closure():
            optimizer.zero_grad()
            loss = self.task.loss(self.model, x, y, data)
            loss.backward()
            p.n_evals += 1
            p.train_flops += flops_per_eval
            return loss

        loss = optimizer.step(closure)
        p.wall_time_s += time.perf_counter() - started
        p.cpu_time_s += cpu_time() - cpu_started
        return float(loss.detach())

    def _stage_inputs(self) -> torch.Tensor:
        if self.stage_ids is None:
            return self.data.train_input
        return self.data.train_input[self.stage_ids]

    def _batch(self):
        """This step's training examples: the stage's examples, or a random batch of them."""
        x, y = self.data.train_input, self.data.train_label
        if self.stage_ids is not None:
            x, y = x[self.stage_ids], y[self.stage_ids]
        batch_size = self.cfg.optim.batch_size
        if batch_size == -1 or batch_size >= x.shape[0]:
            return x, y
        ids = torch.randperm(x.shape[0], generator=self.batch_generator)[:batch_size].to(x.device)
        return x[ids], y[ids]

    def _count_forward(self, n_examples: int, grid: Optional[int]) -> None:
        self.progress.train_flops += counting.flops_forward(self.cfg.model, grid).total * n_examples

    @torch.no_grad()
    def _median_abs_error(self) -> float:
        prediction = self.task.predict(self.model, self.data.test_input)
        return float(torch.median(torch.abs(prediction - self.data.test_label)))

    @torch.no_grad()
    def _mse(self, split: str) -> float:
        x = getattr(self.data, f"{split}_input")
        y = getattr(self.data, f"{split}_label")
        return float(torch.mean((self.task.predict(self.model, x) - y) ** 2))

    def _stage_record(self, grid: Optional[int]) -> Dict[str, Any]:
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

    # ----- checkpoints ---------------------------------------------------------------------
    def _save(self, optimizer: Optional[torch.optim.Optimizer]) -> None:
        save_checkpoint(self.run_dir, Checkpoint(
            progress=dict(self.progress.__dict__), stages=list(self.stages),
            model=self.model.state_dict(),
            optimizer=None if optimizer is None else optimizer.state_dict(),
            torch_rng=torch.get_rng_state(), batch_rng=self.batch_generator.get_state()))

    def _restore(self, checkpoint: Checkpoint) -> Optional[torch.optim.Optimizer]:
        self.progress = Progress(**checkpoint.progress)
        self.stages = list(checkpoint.stages)
        load_state_resizing(self.model, checkpoint.model)
        torch.set_rng_state(checkpoint.torch_rng)
        self.batch_generator.set_state(checkpoint.batch_rng)
        if checkpoint.optimizer is None:
            return None
        optimizer = self._optimizer(self.model)
        optimizer.load_state_dict(checkpoint.optimizer)
        return optimizer

    # ----- the record --------------------------------------------------------------------------
    def _record(self, status: str, error: Optional[str]) -> RunResult:
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
        data = getattr(self, "data", None)
        # ddof=0: the RMSE of the constant predictor mean(y), over all test labels and outputs
        target_std = nan if data is None else float(data.test_label.double().std(correction=0))
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
            metrics=metrics, config=self.config, **provenance())


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
