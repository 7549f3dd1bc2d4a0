"""Synthetic result.json records (harness/results.py's RunResult) with known scaling laws.

KAN stages follow test_rmse = KAN_A * N^-KAN_ALPHA and MLP final stages MLP_A * N^-MLP_ALPHA, each
times log-normal noise, so fits have an analytic answer. The counts are simple stand-ins (not
harness/counting.py): only the loss-vs-x relation matters to the analysis.
"""
from __future__ import annotations

from pathlib import Path
from typing import Dict, List, Optional, Sequence

import numpy as np

from harness.results import RunResult, StageResult, run_id_of, write_result

KAN_A, KAN_ALPHA = 3.0, 2.0
MLP_A, MLP_ALPHA = 5.0, 1.0
KAN_FLOPS_PER_PARAM, MLP_FLOPS_PER_PARAM = 20, 2  # flops_forward = const * n_params
KAN_GRIDS = (3, 5, 10, 20, 50)
KAN_HIDDEN = (2, 3, 5, 8)
MLP_HIDDEN = (4, 8, 16, 32, 64, 128, 256)
MLP_STAGE_FACTORS = (1.5, 1.2, 1.0)  # earlier stages of an MLP run are worse; the last is on the law
N_TRAIN = 1000


def kan_params(widths: Sequence[int], grid: int) -> int:
    return sum(i * o for i, o in zip(widths[:-1], widths[1:])) * (grid + 3)


def mlp_params(widths: Sequence[int]) -> int:
    return sum((i + 1) * o for i, o in zip(widths[:-1], widths[1:]))


def stage(index: int, grid: Optional[int], n_params: int, flops_per_param: int, loss: float,
          step: int) -> Dict:
    flops = flops_per_param * n_params
    return vars(StageResult(
        stage=index, grid=grid, n_params=n_params, flops_forward=flops,
        flops_forward_yu2024=2 * flops, step=step, n_evals=step, train_flops=3 * flops * N_TRAIN * step,
        wall_time_s=1e-6 * flops * step, cpu_time_s=0.9e-6 * flops * step, train_rmse=0.9 * loss, test_rmse=loss, test_mse=loss ** 2,
        metrics={"max_error": 4 * loss})).copy()


def record(family: str, widths: Sequence[int], stages: List[Dict], task: str = "toy",
           seed: int = 0, status: str = "done", experiment: str = "synthetic",
           error: Optional[str] = None) -> RunResult:
    """A RunResult whose run-level values are those of its last stage."""
    config = {"model": {"family": family, "widths": list(widths)}, "task": {"name": task},
              "seed": seed, "experiment": experiment}
    last = stages[-1] if stages else vars(StageResult(0, None, 0, 0, 0, 0, 0, 0, 0.0, float("nan"),
                                                      float("nan"), float("nan")))
    return RunResult(
        run_id=run_id_of(config), status=status, error=error, experiment=experiment, family=family,
        task=task, seed=seed, widths=list(widths), grid=last["grid"], k=3 if family == "kan" else None,
        n_params=last["n_params"], flops_forward=last["flops_forward"],
        flops_forward_basis=0, flops_forward_matmul=last["flops_forward"],
        flops_forward_yu2024=last["flops_forward_yu2024"], train_flops=last["train_flops"],
        n_evals=last["n_evals"], steps=last["step"], n_train=N_TRAIN, optimizer="lbfgs", lr=1.0,
        dtype="float64", device="cpu", train_rmse=last["train_rmse"], test_rmse=last["test_rmse"],
        test_mse=last["test_mse"], wall_time_s=last["wall_time_s"], cpu_time_s=last["cpu_time_s"], stages=stages,
        metrics=dict(last.get("metrics", {})), config=config,
        git_sha="0" * 40, torch_version="2.13.0", python_version="3.11", hostname="test",
        finished_at="2026-01-01T00:00:00")


def synthetic_records(seed: int = 0, noise: float = 0.05, task: str = "toy") -> List[RunResult]:
    """KAN runs (grid-extension stages) on L = 3 N^-2 and MLP runs on L = 5 N^-1, log-normal noise:
    one run per shape (`seeded_records` with the single training seed 0, noise drawn from `seed`)."""
    return seeded_records(seeds=(0,), noise=noise, task=task, rng_seed=seed)


def write_records(results_root: Path, runs: Sequence[RunResult]) -> List[Path]:
    """Write each run as RESULTS_ROOT/<run_id>/result.json (harness.results.write_result)."""
    return [write_result(Path(results_root) / run.run_id, run) for run in runs]


def write_synthetic_results(results_root: Path, seed: int = 0, noise: float = 0.05,
                            with_failures: bool = True) -> List[RunResult]:
    """Synthetic KAN and MLP runs, plus (optionally) one failed and one diverged run, on disk."""
    runs = synthetic_records(seed=seed, noise=noise)
    if with_failures:
        runs.append(record("kan", [2, 13, 1], [], status="failed", error="RuntimeError: boom"))
        bad = stage(0, 3, kan_params([2, 21, 1], 3), KAN_FLOPS_PER_PARAM, float("nan"), 10)
        runs.append(record("kan", [2, 21, 1], [bad], status="diverged", error="loss is nan"))
    write_records(results_root, runs)
    return runs


# Claims 4/4f fronts (tests/test_claims.py, tests/test_report_browser.py): per function, KAN and
# MLP runs of 5 sizes each over the same parameter range, 3 seeds per size, loss = scale N^-1.
FRONT_SIZES = (40, 80, 160, 320, 640)
FRONT_SEEDS = (0, 1, 2)


def front_runs(task: str, experiment: str, kan_scale: float, mlp_scale: float = 1.0,
               noise: float = 0.02, seed: int = 0, sizes: Sequence[int] = FRONT_SIZES,
               kan_flops_per_param: int = KAN_FLOPS_PER_PARAM, kan_yu_factor: float = 2.0,
               same_draws: bool = False) -> List[RunResult]:
    """One run per (family, size, seed); KAN at kan_scale N^-1, MLP at mlp_scale N^-1 (log-normal
    noise), so the KAN/MLP front ratio at matched parameters is kan_scale / mlp_scale. KAN forward
    FLOPs are kan_flops_per_param N under our convention and kan_yu_factor times that under Yu et
    al.'s (MLP: MLP_FLOPS_PER_PARAM N, and 2x under Yu et al.'s). same_draws: both families get
    the same noise draws (fronts that overlap exactly: ratio 1)."""
    rng = np.random.default_rng(seed)
    kan_draws = rng.standard_normal((len(sizes), len(FRONT_SEEDS)))
    draws = {"kan": kan_draws,
             "mlp": kan_draws if same_draws else rng.standard_normal((len(sizes), len(FRONT_SEEDS)))}
    runs = []
    for family, scale, per_param, yu in (("kan", kan_scale, kan_flops_per_param, kan_yu_factor),
                                         ("mlp", mlp_scale, MLP_FLOPS_PER_PARAM, 2.0)):
        for i, n in enumerate(sizes):
            for j, run_seed in enumerate(FRONT_SEEDS):
                loss = float(scale / n * np.exp(noise * draws[family][i, j]))
                grid = 5 if family == "kan" else None
                one = stage(0, grid, n, per_param, loss, 100)
                one["flops_forward_yu2024"] = int(yu * one["flops_forward"])
                runs.append(record(family, [2, n, 1], [one], task=task, seed=run_seed,
                                   experiment=experiment))
    return runs


SPECIAL_FUNCTIONS = ("sf_ellipj", "sf_ellipkinc", "sf_jv", "sf_yv", "sf_lpmv")


def special_function_runs(n_below: int = 3, below_scale: float = 0.3, noise: float = 0.02,
                          other_noise: float = 0.3, **kwargs) -> List[RunResult]:
    """Claim 4 on five functions: the KAN front below_scale x the MLP's on the first n_below; on
    the rest the two families' fronts coincide (same draws with other_noise: intervals contain 1)."""
    runs = []
    for i, task in enumerate(SPECIAL_FUNCTIONS):
        below = i < n_below
        runs += front_runs(task, "special_functions_quick", kan_scale=below_scale if below else 1.0,
                           noise=noise if below else other_noise, seed=i, same_draws=not below,
                           **kwargs)
    return runs


def toy_claims_runs(sizes_kan: Sequence[int] = KAN_GRIDS, noise: float = 0.05) -> List[RunResult]:
    """Claims 1/2 on toy_bessel (KAN slope 4) and toy_xy (slope 2): KAN [2,2,1] grid extension over
    sizes_kan grids and MLPs of 5 widths (slope 1), 3 seeds each."""
    runs = []
    for task, alpha in (("toy_bessel", 4.0), ("toy_xy", 2.0)):
        for run_seed in FRONT_SEEDS:
            rng = np.random.default_rng(run_seed)
            widths = [2, 2, 1]
            stages = []
            for i, grid in enumerate(sizes_kan):
                n = kan_params(widths, grid)
                loss = float(50 * n ** -alpha * np.exp(noise * rng.standard_normal()))
                stages.append(dict(stage(i, grid, n, KAN_FLOPS_PER_PARAM, loss, 50 * (i + 1)),
                                   test_median_abs_error=loss / 2))
            runs.append(record("kan", widths, stages, task=task, seed=run_seed,
                               experiment="toy_scaling_quick"))
            for hidden in (4, 8, 16, 32, 64):
                n = mlp_params([2, hidden, 1])
                loss = float(MLP_A / n * np.exp(noise * rng.standard_normal()))
                runs.append(record("mlp", [2, hidden, 1],
                                   [stage(0, None, n, MLP_FLOPS_PER_PARAM, loss, 250)],
                                   task=task, seed=run_seed, experiment="toy_scaling_quick"))
    return runs


def write_claims_fixture(results_root: Path) -> List[RunResult]:
    """A small claims study on disk: toy_claims_runs and special_function_runs."""
    runs = toy_claims_runs() + special_function_runs()
    write_records(results_root, runs)
    return runs


SEEDS = (0, 1, 2)


def seeded_records(seeds: Sequence[int] = SEEDS, noise: float = 0.05, task: str = "toy",
                   rng_seed: int = 0) -> List[RunResult]:
    """synthetic_records with every shape trained from each of `seeds`: several runs per size, each
    with its own log-normal noise, as the run bootstrap needs."""
    rng = np.random.default_rng(rng_seed)
    runs = []
    for seed in seeds:
        for hidden in KAN_HIDDEN:
            widths = [2, hidden, 1]
            stages = []
            for i, grid in enumerate(KAN_GRIDS):
                n = kan_params(widths, grid)
                loss = KAN_A * n ** -KAN_ALPHA * np.exp(noise * rng.standard_normal())
                stages.append(stage(i, grid, n, KAN_FLOPS_PER_PARAM, float(loss), 50 * (i + 1)))
            runs.append(record("kan", widths, stages, task=task, seed=seed))
        for hidden in MLP_HIDDEN:
            widths = [2, hidden, 1]
            n = mlp_params(widths)
            law = MLP_A * n ** -MLP_ALPHA * np.exp(noise * rng.standard_normal())
            stages = [stage(i, None, n, MLP_FLOPS_PER_PARAM, float(law * factor), 50 * (i + 1))
                      for i, factor in enumerate(MLP_STAGE_FACTORS)]
            runs.append(record("mlp", widths, stages, task=task, seed=seed))
    return runs


def write_seeded_results(results_root: Path, seeds: Sequence[int] = SEEDS,
                         noise: float = 0.05) -> List[RunResult]:
    """seeded_records on disk (RESULTS_ROOT/<run_id>/result.json)."""
    runs = seeded_records(seeds=seeds, noise=noise)
    write_records(results_root, runs)
    return runs
