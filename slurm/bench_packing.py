"""Wall time of sweeps through `launcher=slurm`: a 4-point sweep, and 64 tiny runs packed or not.

    bash slurm/local-cluster.sh up && eval "$(bash slurm/local-cluster.sh env)"
    python slurm/bench_packing.py [--partition debug] [--runs 64] [--packed 16]

Each figure is the wall time of the whole command (`python -m harness.run -m ... launcher=slurm`)
from start to summary, results in a fresh temporary folder. Tiny MLP runs take well under a
second, so the unpacked sweep measures SLURM's and Python's per-job start-up cost, which packing
pays once per array task.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import List

ROOT = Path(__file__).resolve().parents[1]
TINY = ["train.steps_per_stage=3", "train.log_every=1", "wandb.mode=disabled", "task.n_train=200",
        "task.n_test=200"]


def timed_sweep(args: List[str], results_root: Path) -> float:
    env = {**os.environ, "WANDB_MODE": "disabled"}
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "harness.run", "-m", *TINY, *args,
                           f"results_root={results_root}", "hydra.launcher.poll_interval_s=1"],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=3600)
    seconds = time.perf_counter() - started
    if done.returncode != 0 or " done" not in done.stdout:
        sys.exit(f"sweep failed ({done.returncode}):\n{done.stderr[-2000:]}")
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--partition", default="debug")
    parser.add_argument("--runs", type=int, default=64)
    parser.add_argument("--packed", type=int, default=16, help="runs_per_task of the packed sweep")
    args = parser.parse_args()
    slurm = ["launcher=slurm", f"hydra.launcher.partition={args.partition}"]
    seeds = "seed=" + ",".join(str(s) for s in range(args.runs))
    # /tmp is fine on the local cluster; on a real one results must be on a shared filesystem.
    with tempfile.TemporaryDirectory(prefix="kanscale-bench-") as tmp:
        four = timed_sweep([*slurm, "model=kan,mlp", "model.widths=[2,2,1]", "seed=0,1"],
                           Path(tmp) / "four")
        print(f"4-point KAN/MLP sweep, runs_per_task=1: {four:6.1f} s", flush=True)
        for per_task in (args.packed, 1):
            seconds = timed_sweep([*slurm, "model=mlp", "model.widths=[2,2,1]", seeds,
                                   f"hydra.launcher.runs_per_task={per_task}"],
                                  Path(tmp) / f"packed{per_task}")
            n_tasks = -(-args.runs // per_task)
            print(f"{args.runs} tiny MLP runs, runs_per_task={per_task:<3} ({n_tasks:>3} array tasks): "
                  f"{seconds:6.1f} s", flush=True)


if __name__ == "__main__":
    main()
