"""Training the members of one stack together: stages, grid changes, steps, bookkeeping.

Each member keeps the solo trainer of `harness.train` (its config, progress counters, stage
records and checkpoints), so its record is made by the same code as a solo run's; the stack adds
the batched model (harness.ensemble.stacked), the batched grid changes (harness.ensemble.regrid)
and the batched optimizer (harness.ensemble.batched_lbfgs / batched_adam). The order of the work in
a step is `harness.train.Trainer`'s: failure injection (harness.faults), grid update, batch, optimizer step,
counting, divergence test, logging; a stage ends with the stage record and a checkpoint.
"""
from __future__ import annotations

import math
import time
import traceback
from typing import Any, Callable, Dict, List

import torch

from harness import counting, faults
from harness.ensemble.batched_adam import BatchedAdam
from harness.ensemble.batched_lbfgs import BatchedLBFGS
from harness.ensemble.regrid import extend_grid, update_grid_from_samples
from harness.ensemble.stacked import member_losses, stack, trainable_parameters
from harness.stop import StopRequest
from harness.train import RunInterrupted, Trainer, build_initial_model, cpu_time


class Member:
    """One config of a stack: its solo trainer (records, checkpoints) and its fate."""

    def __init__(self, cfg, config: Dict[str, Any], run_id: str, run_dir, log):
        self.trainer = Trainer(cfg, config, run_id, run_dir, log)
        self.cfg, self.status, self.error, self.traceback = cfg, "done", None, None
        # read once: a config attribute costs microseconds, and these are read every step
        self.max_loss = float(cfg.train.max_loss)
        self.log_every = int(cfg.train.log_every)
        self.history: List[Dict[str, float]] = []  # wandb rows, replayed at the end
        self.rng_state = None

    @property
    def alive(self) -> bool:
        return self.status == "done"

    def stop(self, status: str, error: str, trace: str = None) -> None:
        self.status, self.error, self.traceback = status, error, trace


def _failure(message: str):
    """An exception with a traceback, as `run` records a failure (error.log)."""
    try:
        raise RuntimeError(message)
    except RuntimeError as exc:
        return f"{type(exc).__name__}: {exc}", traceback.format_exc()


class StackTrainer:
    """Trains the members of one group together, stage by stage."""

    def __init__(self, members: List[Member], basis: str, log, stop: StopRequest = None):
        self.members, self.basis, self.log = members, basis, log
        self.stop = stop if stop is not None else StopRequest()
        first = members[0].trainer
        self.cfg, self.grids, self.task = first.cfg, first.grids, first.task

    def train(self) -> None:
        data = self.members[0].trainer._data()
        for member in self.members:
            self._build(member, data)
        for stage, grid in enumerate(self.grids):
            live = [m for m in self.members if m.alive]
            if not live:
                return
            self._stage(live, stage, grid)

    def _build(self, member: Member, data) -> None:
        """The member's solo model, initialised as `run` initialises it."""
        t = member.trainer
        t.data, t.stages = data, []
        t.model = build_initial_model(member.cfg, self.grids[0], t.dtype, t.device)
        t.batch_generator = torch.Generator().manual_seed(member.cfg.seed)
        member.rng_state = torch.get_rng_state()  # what `run` checkpoints as torch_rng

    def _stage(self, live: List[Member], stage: int, grid) -> None:
        for member in live:
            member.trainer.stage_ids = self.task.stage_indices(member.trainer.data, stage, len(self.grids))
        stacked = stack([m.trainer.model for m in live], self.basis)
        inputs = live[0].trainer._stage_inputs()  # the members share data and stage
        if stage > 0 and grid is not None and grid != self.grids[stage - 1]:
            extend_grid(stacked, grid, inputs)  # pykan `refine`, every member at once
            for member in live:
                member.trainer._count_forward(inputs.shape[0], grid)
        self.optimizer = self._optimizer(stacked, live)
        batch_size = self.cfg.optim.batch_size
        shared = batch_size == -1 or batch_size >= inputs.shape[0]
        batch = live[0].trainer._batch() if shared else None  # one tensor: its basis is cached
        flops_per_eval = self.task.evaluation_cost(counting.flops_forward(self.cfg.model, grid).total,
                                                   inputs.shape[0] if shared else batch_size)
        train = self.cfg.train
        update_every, update_until = int(train.update_grid_every), int(train.update_grid_until)
        for step_in_stage in range(int(train.steps_per_stage)):
            started, cpu_started = time.perf_counter(), cpu_time()
            self._inject_failures(live)
            if (grid is not None and update_every > 0  # every stage, as every pykan `fit` call
                    and step_in_stage % update_every == 0 and step_in_stage < update_until):
                update_grid_from_samples(stacked, inputs, [j for j, m in enumerate(live) if m.alive])
                for member in live:  # pykan fit(update_grid=True)
                    if member.alive:
                        member.trainer._count_forward(inputs.shape[0], grid)
            x, y = batch if shared else self._member_batches(live)

            def closure():
                stacked.zero_grad()
                losses = member_losses(stacked(x), y)
                losses.sum().backward()  # member m's gradient is its own loss's
                return losses.detach()

            losses, evals = self.optimizer.step(closure)
            self._account(live, losses, evals, flops_per_eval, time.perf_counter() - started,
                          cpu_time() - cpu_started, grid)
            self._test_losses(stacked, live)
            if step_in_stage + 1 < train.steps_per_stage:  # the last step: after the stage end
                self._check_stop(stage, step_in_stage + 1)
        self._each(live, lambda j, member: self._end_stage(stacked, j, member, grid))
        if stage + 1 < len(self.grids):  # after the last stage the records are written
            self._check_stop(stage, int(train.steps_per_stage))

    def _check_stop(self, stage: int, steps_done: int) -> None:
        """Where `run` checks the stop request, at the end of a step. A stack keeps checkpoints at
        stage ends only, so its members resume from their last stage end."""
        if self.stop.requested:
            raise RunInterrupted(f"{self.stop.reason} at step {steps_done} of stage {stage} "
                                 f"(stacked); the members resume from their stage-end "
                                 f"checkpoints, re-run to resume")

    def _inject_failures(self, live: List[Member]) -> None:
        for j, member in enumerate(live):
            p = member.trainer.progress
            if not member.alive:
                continue
            try:
                faults.before_step(p.global_step, member.trainer.config)  # tests only
            except RuntimeError as exc:  # a `fail:` fault
                member.stop("failed", *_failure(str(exc)))
                self.optimizer.freeze(j)

    def _account(self, live: List[Member], losses, evals, flops_per_eval: int, elapsed: float,
                 cpu_elapsed: float, grid) -> None:
        """Count each live member's step, test its loss for divergence, keep its log row.

        Time is the stack's: a step's wall and CPU seconds are measured once around the batched
        step and shared equally among the members alive in it."""
        n_live = sum(m.alive for m in live)
        for j, member in enumerate(live):
            if not member.alive:
                continue
            p = member.trainer.progress
            p.n_evals += evals[j]
            p.train_flops += evals[j] * flops_per_eval
            p.wall_time_s += elapsed / n_live  # the stack's time, shared
            p.cpu_time_s += cpu_elapsed / n_live  # the stack's process CPU time, shared alike
            p.step_in_stage += 1
            p.global_step += 1
            loss = losses[j]
            if not math.isfinite(loss) or loss > member.max_loss:
                member.stop("diverged", f"train loss {loss} at step {p.global_step}")
                self.optimizer.freeze(j)
            elif p.global_step % member.log_every == 0:
                member.history.append({"_step": p.global_step, "train_loss": loss, "n_evals": p.n_evals,
                                       "train_flops": p.train_flops, "grid": grid or 0, "test_loss": None})

    def _each(self, live: List[Member], action: Callable[[int, Member], None]) -> None:
        """action(j, member) for every live member; an exception fails that member only."""
        for j, member in enumerate(live):
            if member.alive:
                try:
                    action(j, member)
                except Exception as exc:  # noqa: BLE001 - recorded as the member's failure
                    member.stop("failed", f"{type(exc).__name__}: {exc}", traceback.format_exc())

    def _end_stage(self, stacked, j: int, member: Member, grid) -> None:
        t = member.trainer
        stacked.write_member(j, t.model)
        t.stages.append(t._stage_record(grid))
        self.log(f"[kanscale] {t.run_id} stage {t.progress.stage} grid={grid} "
                 f"test_rmse={t.stages[-1]['test_rmse']:.3e} (stacked)")
        t.progress.stage += 1
        t.progress.step_in_stage = 0
        saved = torch.get_rng_state()
        torch.set_rng_state(member.rng_state)  # the global RNG state `run` would checkpoint
        t._save(None)
        torch.set_rng_state(saved)

    @torch.no_grad()
    def _test_losses(self, stacked, live: List[Member]) -> None:
        """Fill the test loss of this step's log rows with one batched evaluation."""
        rows = [(j, m.history[-1]) for j, m in enumerate(live)
                if m.history and m.history[-1]["test_loss"] is None]
        if not rows:
            return
        data = live[0].trainer.data
        losses = member_losses(stacked(data.test_input), data.test_label).tolist()
        for j, row in rows:
            row["test_loss"] = losses[j]

    def _member_batches(self, live: List[Member]):
        """Each member's own random batch, drawn by its own generator as `run` draws it."""
        batches = [m.trainer._batch() for m in live]
        return torch.stack([b[0] for b in batches]), torch.stack([b[1] for b in batches])

    def _optimizer(self, stacked, live: List[Member]):
        opt = self.cfg.optim
        params = trainable_parameters(stacked)
        lrs = [m.cfg.optim.lr for m in live]
        if opt.name == "lbfgs":
            return BatchedLBFGS(params, lr=lrs, max_iter=opt.max_iter, history_size=opt.history_size,
                                line_search_fn=None if opt.line_search == "none" else opt.line_search,
                                tolerance_grad=opt.tolerance_grad,
                                tolerance_change=opt.tolerance_change, rule=opt.lbfgs_rule)
        return BatchedAdam(params, lr=lrs, weight_decay=[m.cfg.optim.weight_decay for m in live],
                           decoupled=opt.name == "adamw")
