"""Training: `run(cfg) -> RunResult`, callable without Hydra, and THE training loop.

A run trains one model on one task through a schedule of stages (KAN grid extension, Liu et al.
2024 §2.4), records the loss at the end of every stage, counts every forward+backward pass the
optimizer ran, checkpoints so it can resume, and writes exactly one result record.

There is one loop, `StackTrainer`: M >= 1 runs of one shape (`Member`s) trained together as one
model stack (the family's `stack`: fused for KANs and MLPs, a member loop otherwise) with one
batched optimizer (harness.ensemble.batched_lbfgs / batched_adam). `run(cfg)` is a stack of one;
`harness.ensemble.run_many` packs several. A member's numbers do not depend on what it was
packed with (tests/test_packing.py); its record says how it ran (stack_size, time_measure).
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
from harness.ensemble.batched_adam import BatchedAdam
from harness.ensemble.batched_lbfgs import BatchedLBFGS
from harness.ensemble.stacked import trainable_parameters
from harness.models import build_model, family_of
from harness.stop import StopRequest
from harness.results import (Damaged, RunResult, StageResult, load_record, move_aside, result_of,
                             run_id_of, write_result)
from harness.provenance import provenance
from harness.tasks import Dataset, task_of
from harness.tasks.base import member_mse
from harness.tracking import Tracker


# Records with these statuses are final: a re-launch skips them (a diverged run diverges again).
FINISHED = ("done", "diverged")


class RunInterrupted(Exception):
    """Raised after a checkpoint was saved because a stop was requested (harness.stop: the CLI
    and launchers set it on SIGTERM/SIGUSR1/preemption); re-run to resume."""


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
        member = Member(cfg, config, run_id, run_dir, log)
        return train_stack([member], log=log, stop=stop)[0]


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


def optimizer_of(cfg: DictConfig, params: List[torch.Tensor], members: List[Member]):
    """One batched optimizer over stacked parameters (M, ...): L-BFGS with optim.lbfgs_rule
    (pykan's `fit` by default), Adam or AdamW; learning rates and weight decays per member."""
    opt = cfg.optim
    lrs = [m.cfg.optim.lr for m in members]
    if opt.name == "lbfgs":
        return BatchedLBFGS(params, lr=lrs, max_iter=opt.max_iter, history_size=opt.history_size,
                            line_search_fn=None if opt.line_search == "none" else opt.line_search,
                            tolerance_grad=opt.tolerance_grad,
                            tolerance_change=opt.tolerance_change, rule=opt.lbfgs_rule)
    return BatchedAdam(params, lr=lrs, weight_decay=[m.cfg.optim.weight_decay for m in members],
                       decoupled=opt.name == "adamw")


class StackTrainer:
    """THE training loop: the members of one stack (M >= 1 runs of one shape, on the same data)
    trained together, stage by stage, with one batched optimizer.

    Per stage: the stack is built from the members' solo models (the family's `stack`); a grid
    schedule change extends every member's grid (pykan `refine`); then steps. Per step: failure
    injection (harness.faults), grid update (every `update_grid_every` steps before
    `update_grid_until`, every stage, as every pykan `fit` call), batch, the optimizer step on the
    task's per-member losses, counting (each member its own evaluations), divergence test, logging,
    the stop request and checkpoints. A stage ends with each member's stage record and checkpoint.
    A member that fails or diverges is frozen (it holds its parameters, counts nothing) and the
    others go on. Time is measured around each step and shared equally among the live members.
    """

    def __init__(self, members: List[Member], basis: str = "pp", log=print,
                 stop: Optional[StopRequest] = None):
        self.members, self.basis, self.log = members, basis, log
        self.stop = stop if stop is not None else StopRequest()
        first = members[0]
        self.cfg, self.grids, self.task = first.cfg, first.grids, first.task

    def train(self) -> None:
        data = self.members[0].make_data()
        for member in self.members:
            member.start(data)
        starts = {(m.progress.stage, m.progress.step_in_stage) for m in self.members}
        assert len(starts) == 1, f"a stack's members start together, not at {sorted(starts)}"
        for member in self.members:  # the widest stack a member trained in (a resume keeps it)
            member.progress.stack_size = max(member.progress.stack_size, len(self.members))
        for stage in range(self.members[0].progress.stage, len(self.grids)):
            live = [m for m in self.members if m.alive]
            if not live:
                return
            self.stage(live, stage, self.grids[stage])

    def stage(self, live: List[Member], stage: int, grid: Optional[int]) -> None:
        data = live[0].data  # the members share data and stage
        stage_ids = self.task.stage_indices(data, stage, len(self.grids))
        x_stage, y_stage = data.train_input, data.train_label
        if stage_ids is not None:
            x_stage, y_stage = x_stage[stage_ids], y_stage[stage_ids]
        # pp-form splines are differentiated once (analytically); a loss with second input
        # derivatives (PDE) takes the reference basis (plain autograd)
        basis = "reference" if self.task.needs_second_derivatives else self.basis
        family = family_of(self.cfg.model)
        stacked = family.stack([m.model for m in live], basis)
        resumed = live[0].optimizer_state
        first_step = live[0].progress.step_in_stage
        if resumed is None and stage > 0 and grid is not None and grid != self.grids[stage - 1]:
            stacked.extend_grid(grid, x_stage)  # pykan `refine`, every member at once
            if family.extension_refits:  # it evaluated the old model on the stage's inputs
                for member in live:
                    member.count_forward(x_stage.shape[0], grid)
        self.optimizer = optimizer_of(self.cfg, trainable_parameters(stacked), live)
        if resumed is not None:  # a mid-stage checkpoint (a stack of one)
            self.optimizer.load_state_dict(resumed)
            live[0].optimizer_state = None
        batch_size = self.cfg.optim.batch_size
        shared = batch_size == -1 or batch_size >= x_stage.shape[0]
        n_batch = x_stage.shape[0] if shared else batch_size
        flops_per_eval = self.task.evaluation_cost(counting.flops_forward(self.cfg.model, grid).total,
                                                   n_batch)
        train = self.cfg.train
        update_every, update_until = int(train.update_grid_every), int(train.update_grid_until)
        for step_in_stage in range(first_step, int(train.steps_per_stage)):
            started, cpu_started = time.perf_counter(), cpu_time()
            self._inject_failures(live)
            if (grid is not None and family.updates_grid and update_every > 0  # every stage,
                    and step_in_stage % update_every == 0 and step_in_stage < update_until):
                alive = [j for j, m in enumerate(live) if m.alive]
                if alive:
                    stacked.update_grid_from_samples(x_stage, alive)  # as every pykan fit(update_grid=True)
                for j in alive:
                    live[j].count_forward(x_stage.shape[0], grid)
            if shared:  # one tensor for the stage: a fused stack caches its basis
                x, y = x_stage, y_stage
            else:  # each member's own random batch, drawn by its own generator
                batches = [m.batch(x_stage, y_stage) for m in live]
                x, y = torch.stack([b[0] for b in batches]), torch.stack([b[1] for b in batches])

            def closure():
                stacked.zero_grad()
                losses = self.task.member_losses(stacked, x, y, data)  # (M,)
                losses.sum().backward()  # member m's gradient is its own loss's
                return losses.detach()

            losses, evals = self.optimizer.step(closure)
            self._account(live, losses, evals, flops_per_eval, time.perf_counter() - started,
                          cpu_time() - cpu_started, grid)
            self._test_losses(stacked, live)
            self._checkpoints(stacked, live, step_in_stage + 1 == int(train.steps_per_stage))
        self._each(live, lambda j, member: self._end_stage(stacked, j, member, grid))

    def _checkpoints(self, stacked, live: List[Member], last_step: bool) -> None:
        """At the end of a step: every member checkpoints on a stop request (then RunInterrupted),
        and each on its own train.checkpoint_every (not at a stage's last step: its stage end
        checkpoints)."""
        if self.stop.requested:
            self._each(live, lambda j, member: self._save(stacked, j, member))
            for member in live:
                member.finish_interrupted()
            raise interrupted(self.stop, max(m.progress.global_step for m in live))
        if not last_step:
            due = [m for m in live if m.progress.global_step % m.checkpoint_every == 0]
            self._each(live, lambda j, member: member in due and self._save(stacked, j, member))

    def _save(self, stacked, j: int, member: Member) -> None:
        stacked.write_member(j, member.model)
        member.save(self.optimizer.state_dict(member=j))

    def _inject_failures(self, live: List[Member]) -> None:
        for j, member in enumerate(live):
            if not member.alive:
                continue
            try:
                faults.before_step(member.progress.global_step, member.config)  # tests only
            except Exception as exc:  # noqa: BLE001 - a `fail:` fault fails this member only
                member.fail("failed", f"{type(exc).__name__}: {exc}", traceback.format_exc())
                self.optimizer.freeze(j)

    def _account(self, live: List[Member], losses, evals, flops_per_eval: int, elapsed: float,
                 cpu_elapsed: float, grid) -> None:
        """Count each live member's step, test its loss for divergence, keep its log row. A step's
        wall and CPU seconds are measured once around the batched step and shared equally among
        the members alive in it (a stack of one: its own)."""
        n_live = sum(m.alive for m in live)
        for j, member in enumerate(live):
            if not member.alive:
                continue
            p = member.progress
            p.n_evals += evals[j]
            p.train_flops += evals[j] * flops_per_eval
            p.wall_time_s += elapsed / n_live
            p.cpu_time_s += cpu_elapsed / n_live
            p.step_in_stage += 1
            p.global_step += 1
            loss = losses[j]
            if not math.isfinite(loss) or loss > member.max_loss:
                member.fail("diverged", f"train loss {loss} at step {p.global_step}")
                self.optimizer.freeze(j)
            elif p.global_step % member.log_every == 0:
                member.history.append({"_step": p.global_step, "train_loss": loss,
                                       "test_loss": None, "n_evals": p.n_evals,
                                       "train_flops": p.train_flops, "grid": grid or 0})

    def _each(self, live: List[Member], action) -> None:
        """action(j, member) for every live member; an exception fails that member only."""
        for j, member in enumerate(live):
            if member.alive:
                try:
                    action(j, member)
                except Exception as exc:  # noqa: BLE001 - recorded as the member's failure
                    member.fail("failed", f"{type(exc).__name__}: {exc}", traceback.format_exc())

    def _end_stage(self, stacked, j: int, member: Member, grid) -> None:
        stacked.write_member(j, member.model)
        member.stages.append(member.stage_record(grid))
        self.log(f"[kanscale] {member.run_id} stage {member.progress.stage} grid={grid} "
                 f"test_rmse={member.stages[-1]['test_rmse']:.3e}")
        member.progress.stage += 1
        member.progress.step_in_stage = 0
        member.save(None)

    @torch.no_grad()
    def _test_losses(self, stacked, live: List[Member]) -> None:
        """Fill the test loss (MSE of `predict`) of this step's log rows, one batched evaluation."""
        rows = [(j, m.history[-1]) for j, m in enumerate(live)
                if m.alive and m.history and m.history[-1]["test_loss"] is None]
        if not rows:
            return
        data = live[0].data
        losses = member_mse(self.task.member_predict(stacked, data.test_input), data.test_label).tolist()
        for j, row in rows:
            row["test_loss"] = losses[j]


def train_stack(members: List[Member], basis: str = "pp", log=print,
                stop: Optional[StopRequest] = None) -> List[RunResult]:
    """Train the members together and write each one's record; an error outside any one member
    fails every member still training; RunInterrupted (a stop request, checkpoints saved) is
    raised. -> one RunResult per member."""
    for member in members:
        faults.note_training(member.run_id)
    try:
        StackTrainer(members, basis, log, stop).train()
    except RunInterrupted:
        raise
    except Exception as exc:  # noqa: BLE001 - a failing stack is recorded, never raised
        trace = traceback.format_exc()
        for member in members:
            if member.alive:
                member.fail("failed", f"{type(exc).__name__}: {exc}", trace)
    return [member.finish() for member in members]


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
