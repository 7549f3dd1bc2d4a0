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
import time
import traceback
from pathlib import Path
from typing import Any, Dict, List, Optional

import torch
from omegaconf import DictConfig, OmegaConf

from harness import claim, counting, faults
from harness.config import RunConfig, resolve, validate
from harness.ensemble.batched_adam import BatchedAdam
from harness.ensemble.batched_lbfgs import BatchedLBFGS
from harness.ensemble.stacked import trainable_parameters
from harness.member import Member, cpu_time
from harness.progress import Meter
from harness.models import family_of
from harness.stop import StopRequest
from harness.results import (Damaged, RunResult, load_record, move_aside, result_of, run_id_of)
from harness.tasks.base import member_mse


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
        first_stage = self.members[0].progress.stage
        who = (self.members[0].run_id if len(self.members) == 1
               else f"stack of {len(self.members)} ({self.members[0].run_id} ...)")
        meter = Meter(len(self.grids) - first_stage, f"{who}:", "stage", log=self.log)
        for stage in range(first_stage, len(self.grids)):
            live = [m for m in self.members if m.alive]
            if not live:
                return
            self.stage(live, stage, self.grids[stage])
            meter.advance()

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
