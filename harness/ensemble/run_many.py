"""`run_many(cfgs) -> List[RunResult]`: sweep points of one shape train together, stacked.

Configs that differ only in seed, learning rate, weight decay, init noise or bookkeeping (name,
results folder, wandb, divergence threshold, logging, checkpoint interval) form a group and train
as one stack (at most `max_members` per stack) through THE training loop,
`harness.train.StackTrainer`, the loop `harness.train.run` runs as a stack of one. Every member
goes through the same stages, grid updates, counting, checkpoints (mid-stage every
train.checkpoint_every steps and on a stop request, with its slice of the optimizer state) and
record code, and gets its own run id and result.json. A failing or diverging member is recorded
with its status while the others go on. Configs that are not packed (a family without a fused
stack, a task with its own loss, a run with a checkpoint to resume from) go to `run`, alone.

Numbers: a run's numbers do not depend on what it was packed with, or whether it was packed:
test_rmse, n_evals and train_flops equal to 1e-12 relative (tests/test_packing.py; in practice
bitwise), since every member's computation (forward, backward, optimizer) is its own whatever M.
Time: wall_time_s and cpu_time_s are measured around each batched step (wall clock; process CPU
time, all threads) and shared equally among the members alive in that step. The record says how
the run was executed, outside its run id: stack_size (the most runs it trained with, 1 = alone)
and time_measure ("own" alone; "share" when its time is a share of a stack's). load_avg_start is
taken when the stack's members are set up, load_avg_end when each record is made.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

import torch

from harness.checkpoint import load_checkpoint
from harness.config import resolve, validate
from harness import claim
from harness.progress import Meter
from harness.results import Damaged, RunResult, load_record, move_aside, result_of, run_id_of
from harness.tasks.base import Task
from harness.stop import StopRequest
from harness.train import FINISHED, Member, resolved_dict, run, to_config, train_stack

# Keys in which members of one stack may differ (dotted paths into the resolved config).
PER_MEMBER_KEYS = ("seed", "optim.lr", "optim.weight_decay", "model.noise_scale", "experiment_name",
                   "results_root", "wandb", "train.max_loss", "train.log_every",
                   "train.checkpoint_every")


def group_key(config: Dict[str, Any]) -> str:
    """What members of one stack share: the resolved config without PER_MEMBER_KEYS."""
    shared = json.loads(json.dumps(config, default=str))
    for dotted in PER_MEMBER_KEYS:
        *parents, leaf = dotted.split(".")
        node = shared
        for key in parents:
            node = node.get(key, {})
        node.pop(leaf, None)
    return json.dumps(shared, sort_keys=True)


def groupable(cfg) -> bool:
    """Packed with others: a family with a fused stack (KAN, MLP) on a task whose training loss
    is the plain per-member MSE (other runs train through the same loop, as stacks of one)."""
    from harness.models import family_of
    from harness.tasks import TASK_REGISTRY
    task = TASK_REGISTRY[cfg.task.name]
    return family_of(cfg.model).stacks and type(task).member_losses is Task.member_losses


def run_many(cfgs: Sequence[Any], log=print, basis: str = "pp", max_members: int = 64,
             stop: Optional[StopRequest] = None) -> List[Optional[RunResult]]:
    """Train every config (RunConfig, dict or DictConfig); one RunResult per config, in order
    (None for a point another live trainer has claimed: harness.claim).

    Bad values raise ConfigError before any work; finished runs are returned from disk; runs with
    a checkpoint resume through `run`. The rest train stacked: one stack per group_key and
    at most `max_members` configs each (a stack's memory grows with its size).

    `basis`: the fused KAN stack's spline path, "pp" (default) or "reference" (a task whose loss
    differentiates twice in the inputs, the PDE, always trains with "reference").

    `stop` (harness.stop), checked at the end of every step as `run` checks it: every member of
    the stack checkpoints and RunInterrupted is raised; a re-run resumes each alone (a stack of
    one) to the numbers it would have had; the points not started yet are left for the re-run.
    """
    stop = stop if stop is not None else StopRequest()
    prepared = []
    for cfg in cfgs:
        cfg = resolve(to_config(cfg))
        validate(cfg)
        config = resolved_dict(cfg)
        prepared.append((cfg, config, run_id_of(config)))
    results: List[Any] = [None] * len(prepared)
    groups: Dict[str, List[int]] = {}
    first_of: Dict[str, int] = {}  # run id -> first index: duplicates share one run
    solo: List[int] = []
    for i, (cfg, config, run_id) in enumerate(prepared):
        if run_id in first_of:
            continue
        first_of[run_id] = i
        run_dir = _run_dir(cfg, run_id)
        existing = load_record(run_dir)
        if isinstance(existing, dict) and existing["status"] in FINISHED:
            log(f"[kanscale] {run_id} already {existing['status']} ({run_dir}); skipping")
            results[i] = result_of(existing)
        elif not groupable(cfg) or load_checkpoint(run_dir) is not None:
            solo.append(i)
        else:
            groups.setdefault(group_key(config), []).append(i)
    stacks = [group[start:start + max_members] for group in groups.values()
              for start in range(0, len(group), max_members)]
    meter = Meter(sum(map(len, stacks)) + len(solo), "sweep:", "run", log=log)
    for indices in stacks:
        members, claims, member_of = [], [], []
        for i in indices:
            cfg, config, run_id = prepared[i]
            held = _claim(_run_dir(cfg, run_id), run_id, log)
            if held is None:
                continue
            if isinstance(held, RunResult):
                results[i] = held
                continue
            claims.append(held)
            member_of.append(i)
            members.append(Member(cfg, config, run_id, _run_dir(cfg, run_id), log))
        if not members:
            meter.advance(len(indices))
            continue
        if members[0].cfg.num_threads > 0:
            torch.set_num_threads(members[0].cfg.num_threads)
        try:
            with claim.Heartbeat(claims):
                for i, result in zip(member_of, train_stack(members, basis, log, stop)):
                    results[i] = result
        finally:
            for held in claims:
                held.release()
        meter.advance(len(indices))
    for i in solo:
        try:
            results[i] = run(prepared[i][0], log=log, stop=stop)
        except claim.RunClaimed as exc:
            log(f"[kanscale] {exc}; skipping")
        meter.advance()
    for i, (_, _, run_id) in enumerate(prepared):
        if results[i] is None:
            results[i] = results[first_of[run_id]]
    return results


def _claim(run_dir: Path, run_id: str, log):
    """A Claim on the member's folder; its RunResult if it finished meanwhile; None if another
    trainer holds it. A damaged record is moved aside (the member redoes the run)."""
    try:
        held = claim.acquire(run_dir)
    except claim.RunClaimed as exc:
        log(f"[kanscale] {exc}; skipping")
        return None
    record = load_record(run_dir)
    if isinstance(record, dict) and record["status"] in FINISHED:
        held.release()
        log(f"[kanscale] {run_id} already {record['status']} ({run_dir}); skipping")
        return result_of(record)
    if isinstance(record, Damaged):
        log(f"[kanscale] {run_id}: {record}; moved aside to {move_aside(record.path).name}")
    return held


def _run_dir(cfg, run_id: str) -> Path:
    return Path(cfg.results_root) / run_id
