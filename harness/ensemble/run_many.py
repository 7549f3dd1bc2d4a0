"""`run_many(cfgs) -> List[RunResult]`: sweep points of one shape train together, stacked.

Configs that differ only in seed, learning rate, weight decay, init noise or bookkeeping (name,
results folder, wandb, divergence threshold, logging) form a group and train as
one stacked ensemble (at most `max_members` per stack) with a batched optimizer
(harness.ensemble.stack_trainer). Every member goes through the stages and grid updates of
`harness.train.run`, counts its own evaluations and FLOPs, and gets its own record, run id,
checkpoint at each stage end and result.json, made by the solo trainer's own record code on the
member's solo model, so records are interchangeable with `run`'s. A failing or diverging member
is recorded with its status while the others go on. Configs that cannot be grouped (a task with
its own loss, a run with a checkpoint to resume from) go to `harness.train.run`; a stack
interrupted between stage ends resumes member by member from their stage-end checkpoints.

Numbers: a member's trajectory does not depend on which or how many members share its stack
(tests/test_ensemble.py), and matches a solo `run` up to round-off; LBFGS amplifies round-off, so
after many iterations the two are equally good, not equal. wall_time_s and cpu_time_s are the
stack's: measured around each batched step (wall clock; process CPU time, all threads) and
shared equally among the members alive in that step. load_avg_start is taken when the stack's
members are set up, load_avg_end when each record is made; best_test_rmse, best_stage and
test_target_std come from the member's own stages and data, as for a solo run.
"""
from __future__ import annotations

import json
import traceback
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

import torch

from harness.checkpoint import load_checkpoint
from harness.config import resolve, validate
from harness.ensemble.stack_trainer import Member, StackTrainer
from harness import claim, faults
from harness.results import (Damaged, RunResult, load_record, move_aside, result_of, run_id_of,
                             write_result)
from harness.tasks.base import Task
from harness.tracking import Tracker
from harness.stop import StopRequest
from harness.train import FINISHED, RunInterrupted, resolved_dict, run, to_config

# Keys in which members of one stack may differ (dotted paths into the resolved config).
PER_MEMBER_KEYS = ("seed", "optim.lr", "optim.weight_decay", "model.noise_scale", "experiment_name",
                   "results_root", "wandb", "train.max_loss", "train.log_every",
                   "train.checkpoint_every")  # a stack checkpoints at stage ends only


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
    """Stackable: a family that stacks (KAN, MLP) on a task whose training loss is the plain MSE."""
    from harness.models import family_of
    from harness.tasks import TASK_REGISTRY
    task = TASK_REGISTRY[cfg.task.name]
    return family_of(cfg.model).stacks and type(task).loss is Task.loss


def _finish(member: Member) -> RunResult:
    """The member's record (the solo trainer's code), result.json and wandb run."""
    t = member.trainer
    if member.traceback:
        (t.run_dir / "error.log").write_text(member.traceback)
    result = t._record(member.status, member.error)
    write_result(t.run_dir, result)
    cfg = member.cfg
    try:  # the record is written: a wandb error is reported, the record stands
        tracker = Tracker(cfg.wandb.mode, cfg.wandb.project, cfg.wandb.entity, t.run_id,
                          cfg.experiment_name, t.run_dir, t.config)
        for row in member.history:
            values = {key: value for key, value in row.items() if not key.startswith("_")}
            tracker.log(values, step=row["_step"])
        tracker.finish(result.to_dict(), exit_code=0 if member.status == "done" else 1)
    except Exception as exc:  # noqa: BLE001
        t.log(f"[kanscale] {t.run_id}: wandb failed ({type(exc).__name__}: {exc})")
    t.log(f"[kanscale] {t.run_id} {member.status}: test_rmse={result.test_rmse:.3e} "
          f"n_params={result.n_params} ({result.wall_time_s:.1f}s, stacked) -> {t.run_dir}")
    return result


def run_many(cfgs: Sequence[Any], log=print, basis: str = "pp", max_members: int = 64,
             stop: Optional[StopRequest] = None) -> List[Optional[RunResult]]:
    """Train every config (RunConfig, dict or DictConfig); one RunResult per config, in order
    (None for a point another live trainer has claimed: harness.claim).

    Bad values raise ConfigError before any work; finished runs are returned from disk; runs with
    a checkpoint resume through `run`. The rest train stacked: one stack per group_key and
    at most `max_members` configs each (a stack's memory grows with its size).

    `stop` (harness.stop), checked at the end of every step as `run` checks it: a stack stops
    and raises RunInterrupted (its members resume from their stage-end checkpoints), a solo run
    checkpoints and raises it; the points not started yet are left for the re-run.
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
            faults.note_training(run_id)
            member_of.append(i)
            members.append(Member(cfg, config, run_id, _run_dir(cfg, run_id), log))
        if not members:
            continue
        if members[0].cfg.num_threads > 0:
            torch.set_num_threads(members[0].cfg.num_threads)
        try:
            with claim.Heartbeat(claims):
                _train_members(members, basis, log, stop)
                for i, member in zip(member_of, members):
                    results[i] = _finish(member)
        finally:
            for held in claims:
                held.release()
    for i in solo:
        try:
            results[i] = run(prepared[i][0], log=log, stop=stop)
        except claim.RunClaimed as exc:
            log(f"[kanscale] {exc}; skipping")
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


def _train_members(members: List[Member], basis: str, log, stop: StopRequest) -> None:
    """Train a stack; an error outside any one member fails every member still running;
    RunInterrupted (a stop request) is raised."""
    try:
        StackTrainer(members, basis, log, stop).train()
    except RunInterrupted:
        raise
    except Exception as exc:  # noqa: BLE001 - a failing stack is recorded, never raised
        trace = traceback.format_exc()
        for member in members:
            if member.alive:
                member.stop("failed", f"{type(exc).__name__}: {exc}", trace)
