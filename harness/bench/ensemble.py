"""Stacked ensembles vs one run after another, and the harness's per-run overhead (issue 6).

    python -m harness.bench.ensemble [--members 32] [--optim lbfgs,adam] [--repeats 3]
                                     [--grid-schedule 5,10] [--steps 5] [--adam-steps 100]
                                     [--n-train 1000]
                                     [--implementation fast,reference] [--json out.json]

M [2,5,1] KANs (seeds 0..M-1) on toy_exp_sin train through the grid schedule, once with
`harness.train.run` per point (wandb disabled) and once with `run_many` (one stack); each
repetition runs them interleaved (solo, stacked, solo, ...) in fresh result folders, and the table
reports medians and the ratio. The overhead part times what `run` does around its training loop
(config, data, model, checkpoints, record; wandb offline or disabled) and a fresh process's start
(imports), and compares them per point, alone and packed in one process, with a 5-second run.
Goals (issue 6): stacked >= 10x one-after-another; packed overhead < 10% of a 5 s run.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Dict, List

from harness.config import KANConfig, OptimConfig, RunConfig, TaskConfig, TrainConfig, WandbConfig

GOAL_SPEEDUP = 10.0
GOAL_OVERHEAD = 0.10
REFERENCE_RUN_S = 5.0


def configs(args, optim: str, implementation: str, root: Path, wandb: str = "disabled") -> List[RunConfig]:
    schedule = [int(g) for g in args.grid_schedule.split(",")]
    optim_cfg = OptimConfig(name=optim, lr=1.0 if optim == "lbfgs" else 1e-2)
    steps = args.steps if optim == "lbfgs" else args.adam_steps
    return [RunConfig(model=KANConfig(widths=[2, 5, 1], grid=schedule[0], implementation=implementation),
                      task=TaskConfig(name="toy_exp_sin", n_train=args.n_train, n_test=args.n_train),
                      optim=optim_cfg, train=TrainConfig(steps_per_stage=steps, grid_schedule=schedule,
                                                         log_every=10, checkpoint_every=50),
                      wandb=WandbConfig(mode=wandb), seed=seed, results_root=str(root),
                      experiment_name="bench_ensemble")
            for seed in range(args.members)]


def time_solo(cfgs) -> Dict[str, float]:
    from harness.train import run
    started = time.perf_counter()
    results = [run(cfg, log=lambda *_: None) for cfg in cfgs]
    wall = time.perf_counter() - started
    return {"wall_s": wall, "training_s": sum(r.wall_time_s for r in results),
            "n_evals": sum(r.n_evals for r in results) / len(results)}


def time_stacked(cfgs) -> Dict[str, float]:
    from harness.ensemble.run_many import run_many
    started = time.perf_counter()
    results = run_many(cfgs, log=lambda *_: None)
    wall = time.perf_counter() - started
    assert all(r.status == "done" for r in results), [r.error for r in results]
    return {"wall_s": wall, "training_s": sum(r.wall_time_s for r in results),
            "n_evals": sum(r.n_evals for r in results) / len(results)}


def process_start_s(repeats: int) -> float:
    """A fresh interpreter importing what a run needs (what every solo job pays once)."""
    code = "import harness.train, harness.ensemble.run_many, wandb"
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        subprocess.run([sys.executable, "-c", code], check=True, env={**os.environ, "WANDB_SILENT": "true"})
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def speed(args) -> List[Dict[str, float]]:
    rows = []
    for optim in args.optim.split(","):
        for implementation in args.implementation.split(","):
            solo, stacked = [], []
            for _ in range(args.repeats):  # interleaved, fresh folders: nothing is skipped
                with tempfile.TemporaryDirectory() as a, tempfile.TemporaryDirectory() as b:
                    solo.append(time_solo(configs(args, optim, implementation, Path(a))))
                    stacked.append(time_stacked(configs(args, optim, implementation, Path(b))))
            solo_s = statistics.median(r["wall_s"] for r in solo)
            stacked_s = statistics.median(r["wall_s"] for r in stacked)
            rows.append({"optim": optim, "solo_implementation": implementation,
                         "members": args.members, "solo_s": solo_s, "stacked_s": stacked_s,
                         "speedup": solo_s / stacked_s, "evals_per_run_solo": solo[0]["n_evals"],
                         "evals_per_run_stacked": stacked[0]["n_evals"]})
            print(f"{optim:6s} solo={implementation:9s} M={args.members}: one after another "
                  f"{solo_s:7.2f} s, stacked {stacked_s:6.2f} s -> {solo_s / stacked_s:5.1f}x "
                  f"(goal >= {GOAL_SPEEDUP:.0f}x); evals/run {solo[0]['n_evals']:.0f} vs "
                  f"{stacked[0]['n_evals']:.0f}", flush=True)
    return rows


def overhead(args) -> Dict[str, float]:
    """Seconds per point outside the training loop, solo and packed, wandb offline and disabled."""
    out: Dict[str, float] = {"process_start_s": process_start_s(args.repeats)}
    n = min(args.members, 8)
    sub = argparse.Namespace(**{**vars(args), "members": n})
    for wandb in ("disabled", "offline"):
        solo, packed = [], []
        for _ in range(args.repeats):
            with tempfile.TemporaryDirectory() as a, tempfile.TemporaryDirectory() as b:
                r = time_solo(configs(sub, "lbfgs", "fast", Path(a), wandb))
                solo.append((r["wall_s"] - r["training_s"]) / n)
                r = time_stacked(configs(sub, "lbfgs", "fast", Path(b), wandb))
                packed.append((r["wall_s"] - r["training_s"]) / n)
        out[f"solo_overhead_s_wandb_{wandb}"] = statistics.median(solo)
        out[f"packed_overhead_s_wandb_{wandb}"] = statistics.median(packed)
    start = out["process_start_s"]
    for wandb in ("disabled", "offline"):
        alone = start + out[f"solo_overhead_s_wandb_{wandb}"]  # one job per point
        packed = start / args.members + out[f"packed_overhead_s_wandb_{wandb}"]
        out[f"per_point_alone_s_wandb_{wandb}"] = alone
        out[f"per_point_packed_s_wandb_{wandb}"] = packed
        print(f"overhead per point, wandb {wandb:8s}: alone (own process) {alone:5.2f} s = "
              f"{100 * alone / REFERENCE_RUN_S:5.1f}% of a {REFERENCE_RUN_S:.0f} s run; packed "
              f"({args.members} per process) {packed:5.3f} s = {100 * packed / REFERENCE_RUN_S:4.1f}% "
              f"(goal < {100 * GOAL_OVERHEAD:.0f}%)", flush=True)
    print(f"  (process start {start:.2f} s; around run()'s training loop: solo "
          f"{out['solo_overhead_s_wandb_offline']:.3f} s with wandb offline, "
          f"{out['solo_overhead_s_wandb_disabled']:.3f} s disabled)", flush=True)
    return out


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(prog="python -m harness.bench.ensemble", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--members", type=int, default=32)
    parser.add_argument("--optim", default="lbfgs,adam")
    parser.add_argument("--implementation", default="fast,reference",
                        help="solo KAN layer(s) to compare against")
    parser.add_argument("--grid-schedule", default="5,10")
    parser.add_argument("--steps", type=int, default=5, help="LBFGS steps per stage (~23 evaluations each)")
    parser.add_argument("--adam-steps", type=int, default=100, help="Adam steps per stage")
    parser.add_argument("--n-train", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--skip-overhead", action="store_true")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)
    os.environ.setdefault("WANDB_SILENT", "true")
    import torch
    torch.set_num_threads(1)  # the configs' num_threads: one core per run, as on the cluster
    report = {"speed": speed(args)}
    if not args.skip_overhead:
        report["overhead"] = overhead(args)
    if args.json is not None:
        args.json.write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
