"""Sweeps through `launcher=slurm` on the real local SLURM cluster (GitHub issue 4).

Same records as the local launcher, packing, cancel + re-launch, requeue + resume, and config
errors caught before anything is submitted. Needs `bash slurm/local-cluster.sh up`; skipped
without it, failed under CI. Every wait is bounded.
"""
from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Dict, Iterator, List

import pytest

from analysis.collect import collect
from harness.train import run
from tests.helpers import ROOT, TINY, compose_config, run_cli

pytestmark = pytest.mark.slurm

# A KAN long enough (2 stages x STEPS) to be caught mid-run, checkpointing every 5 steps.
STEPS = 100
LONG_KAN = ["model=kan", "model.widths=[2,3,1]", "train.grid_schedule=[3,5]",
            f"train.steps_per_stage={STEPS}", "train.checkpoint_every=5"]


def job_name(tag: str) -> str:
    return f"kt-{tag}-{uuid.uuid4().hex[:8]}"


def slurm_args(cluster, name: str, runs_per_task: int = 1, parallelism: int = 4) -> List[str]:
    return ["launcher=slurm", f"hydra.launcher.partition={cluster.partition}",
            f"hydra.launcher.name={name}", f"hydra.launcher.runs_per_task={runs_per_task}",
            f"hydra.launcher.array_parallelism={parallelism}", "hydra.launcher.poll_interval_s=1",
            "hydra.launcher.timeout_min=10"]


def records(root: Path) -> Dict[str, dict]:
    return {p.parent.name: json.loads(p.read_text()) for p in root.glob("*/result.json")}


def manifest_points(root: Path) -> List[dict]:
    """Points of the newest manifest ([] before there is one)."""
    manifests = list((root / ".sweeps").glob("*.json"))
    if not manifests:
        return []
    newest = max(manifests, key=lambda p: p.stat().st_mtime)
    return json.loads(newest.read_text())["points"]


def seed_of(point: dict) -> str:
    return next(o for o in point["overrides"] if o.startswith("seed="))


def sacct_tasks(name: str) -> Dict[str, str]:
    """Array task id -> state, for the jobs called `name` (allocations only)."""
    out = subprocess.run(["sacct", "-n", "-X", "-P", f"--name={name}", "--starttime=now-3600",
                          "--format=JobID,State"], capture_output=True, text=True, timeout=20,
                         check=True).stdout
    return dict(line.split("|", 1) for line in out.split())


def sacct_final(name: str, n_tasks: int) -> Dict[str, str]:
    """sacct_tasks once all n_tasks are over (a task writes its result before its process ends)."""
    def over():
        tasks = sacct_tasks(name)
        unfinished = {"PENDING", "RUNNING", "COMPLETING"} & set(tasks.values())
        return tasks if len(tasks) == n_tasks and not unfinished else None
    return wait_for(f"{n_tasks} finished tasks called {name}", over, 30)


def squeue_jobs(name: str) -> List[str]:
    out = subprocess.run(["squeue", "-h", f"--name={name}", "-o", "%i"], capture_output=True,
                         text=True, timeout=20, check=True).stdout
    return out.split()


def wait_for(what: str, condition, timeout_s: float, poll_s: float = 0.25):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(poll_s)
    pytest.fail(f"{what} not after {timeout_s} s")


@contextlib.contextmanager
def background_sweep(args: List[str], name: str) -> Iterator[subprocess.Popen]:
    """`python -m harness.run ARGS` in the background (run_cli's environment); on the way out,
    whatever happened, the launcher is killed and its jobs (called `name`) cancelled."""
    env = {**os.environ, "WANDB_MODE": "disabled"}
    process = subprocess.Popen([sys.executable, "-m", "harness.run", *args], cwd=ROOT, env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        yield process
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
        subprocess.run(["scancel", f"--name={name}"], timeout=20)


def finish(process: subprocess.Popen, timeout_s: float):
    try:
        stdout, stderr = process.communicate(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        process.kill()
        stdout, stderr = process.communicate()
        pytest.fail(f"sweep not done after {timeout_s} s:\n{stderr[-3000:]}")
    return process.returncode, stdout, stderr


def release_requeued(job_id: str) -> bool:
    """SLURM holds a requeued job ~120 s (its credentials' lifetime); tests start it at once."""
    out = subprocess.run(["squeue", "-h", "-j", job_id, "-o", "%T %r"], capture_output=True,
                         text=True, timeout=20).stdout.split()
    if out[:2] == ["PENDING", "BeginTime"]:
        subprocess.run(["scontrol", "update", f"JobId={job_id}", "StartTime=now"], timeout=20,
                       check=True)
        return True
    return False


def test_slurm_sweep_gives_the_local_records(slurm_cluster, tmp_path):
    sweep = ["-m", *TINY, "model=kan,mlp", "model.widths=[2,2,1]", "seed=0,1"]
    name = job_name("same")
    slurm = run_cli([*sweep, f"results_root={tmp_path / 'slurm'}", *slurm_args(slurm_cluster, name)],
                    timeout=120)
    assert slurm.returncode == 0, slurm.stderr
    assert "sweep of 4: 4 done" in slurm.stdout
    local = run_cli([*sweep, f"results_root={tmp_path / 'local'}"], timeout=120)
    assert local.returncode == 0, local.stderr

    on_slurm, on_laptop = records(tmp_path / "slurm"), records(tmp_path / "local")
    assert len(on_slurm) == 4 and set(on_slurm) == set(on_laptop)
    assert {rid: r["test_rmse"] for rid, r in on_slurm.items()} == \
        {rid: r["test_rmse"] for rid, r in on_laptop.items()}
    assert {r["status"] for r in on_slurm.values()} == {"done"}
    # One array task per point, all completed; the manifest names each point's task.
    tasks = sacct_final(name, 4)
    assert set(tasks.values()) == {"COMPLETED"}
    assert sorted(p["job"]["job_id"] for p in manifest_points(tmp_path / "slurm")) == sorted(tasks)
    assert sorted(p["run_id"] for p in manifest_points(tmp_path / "slurm")) == sorted(on_slurm)


def test_packed_sweep_runs_several_points_per_task_and_survives_failures(slurm_cluster, tmp_path):
    # Order: seed 0 (fails), seed 1 (fails), seed 2 | seed 3: the failures come first.
    name = job_name("pack")
    result = run_cli(["-m", *TINY, "model=mlp", "model.widths=[2,2,1]",
                      "seed=0,1,2,3", f"results_root={tmp_path}", "wandb.mode=offline",
                      *slurm_args(slurm_cluster, name, runs_per_task=3)],
                     env={"WANDB_MODE": "offline",  # harness/faults.py, through sbatch's env
                          "KANSCALE_FAULT": "fail:step=1@seed=0;fail:step=1@seed=1"}, timeout=120)
    assert result.returncode == 4, result.stderr  # some points failed
    assert "4 to run in 2 SLURM array task(s) of <= 3" in result.stderr
    assert "sweep of 4: 2 done, 2 failed" in result.stdout
    tasks = sacct_final(name, 2)
    assert set(tasks.values()) == {"COMPLETED"}
    assert len({task.split("_")[0] for task in tasks}) == 1  # one array
    found = records(tmp_path)
    per_task: Dict[str, List[str]] = {}
    for point in manifest_points(tmp_path):
        per_task.setdefault(point["job"]["job_id"], []).append(found[point["run_id"]]["status"])
    assert sorted(per_task.values(), key=len) == [["done"], ["failed", "failed", "done"]]
    # Each run has its own (offline) wandb run, named by its run id, beside its record.
    for run_id in found:
        wandb_runs = list((tmp_path / run_id / "wandb").glob("offline-run-*"))
        assert len(wandb_runs) == 1, run_id


def test_cancelled_sweep_is_completed_by_a_relaunch_without_duplicates(slurm_cluster, tmp_path):
    name = job_name("cancel")
    args = ["-m", *TINY, *LONG_KAN, "train.steps_per_stage=40", "seed=0,1,2,3",
            f"results_root={tmp_path}"]
    with background_sweep([*args, *slurm_args(slurm_cluster, name, parallelism=2)], name) as sweep:
        wait_for("a first checkpoint", lambda: list(tmp_path.glob("*/checkpoint.pt")), 60)
        subprocess.run(["scancel", f"--name={name}"], timeout=20, check=True)
        code, stdout, stderr = finish(sweep, 60)
    assert code == 4, stderr  # cancelled points: not every point ended done
    n_done = len(records(tmp_path))
    assert n_done < 4
    assert f"sweep of 4: {4 - n_done} cancelled" in stdout
    assert "_log.err" in stdout  # each cancelled run names its job's log

    again = run_cli([*args, *slurm_args(slurm_cluster, job_name("relaunch"))], timeout=120)
    assert again.returncode == 0, again.stderr
    assert f"{n_done} already finished, 0 claimed by other launchers, {4 - n_done} to run" in again.stderr
    assert "sweep of 4: 4 done" in again.stdout
    table = collect(tmp_path)
    assert len(table) == 4 and table["run_id"].is_unique and set(table["status"]) == {"done"}
    assert sorted(table["seed"]) == [0, 1, 2, 3]


def test_relaunch_during_a_running_array_trains_every_point_once(slurm_cluster, tmp_path):
    """The same sweep relaunched while its array runs: the relaunch skips the points being trained
    ("claimed by host:pid"), submits the others, and every point trains exactly once."""
    trainings = tmp_path / "trainings.log"
    os.environ["KANSCALE_TRAINING_LOG"] = str(trainings)  # harness/faults.py; jobs inherit it
    try:
        first, second = job_name("first"), job_name("second")
        args = ["-m", *TINY, *LONG_KAN, "train.steps_per_stage=40", "seed=0,1,2,3",
                f"results_root={tmp_path / 'r'}"]
        with background_sweep([*args, *slurm_args(slurm_cluster, first, parallelism=2)], first) as sweep:
            wait_for("a first checkpoint", lambda: list((tmp_path / "r").glob("*/checkpoint.pt")), 60)
            try:
                again = run_cli([*args, *slurm_args(slurm_cluster, second, parallelism=2)],
                                env={"KANSCALE_TRAINING_LOG": str(trainings)}, timeout=300)
            finally:
                subprocess.run(["scancel", f"--name={second}"], timeout=20)
            code, stdout, stderr = finish(sweep, 300)
    finally:
        os.environ.pop("KANSCALE_TRAINING_LOG")
    assert code in (0, 5) and again.returncode in (0, 5), (stdout, stderr, again.stderr)
    assert "claimed by" in again.stderr
    found = records(tmp_path / "r")
    assert len(found) == 4 and {r["status"] for r in found.values()} == {"done"}
    trained = [line.split()[0] for line in trainings.read_text().splitlines()]
    assert sorted(trained) == sorted(found), trained  # each point once, by one of the two arrays
    assert not list((tmp_path / "r").glob("*/claim.json"))


def test_requeued_and_preempted_runs_resume_to_the_same_loss(slurm_cluster, tmp_path):
    """`scontrol requeue` (SIGTERM: run() checkpoints, SLURM restarts the job) on one task, and
    submitit's preemption signal (USR2: submitit calls SweepChunk.checkpoint(), which stops the run
    at the end of its step, then submitit requeues) on the other."""
    name = job_name("requeue")
    sweep_args = ["-m", *TINY, *LONG_KAN, "seed=0,1", f"results_root={tmp_path}"]
    with background_sweep([*sweep_args, *slurm_args(slurm_cluster, name)], name) as sweep:
        points = wait_for("the job ids in the manifest", lambda: [
            p for p in manifest_points(tmp_path) if "job" in p], 60)
        job_of = {seed_of(p): p["job"]["job_id"] for p in points}  # seed=0 / seed=1 -> array task
        for point in points:
            wait_for(f"a checkpoint of {point['run_id']}",
                     lambda: (tmp_path / point["run_id"] / "checkpoint.pt").exists(), 60)
        subprocess.run(["scontrol", "requeue", job_of["seed=0"]], timeout=20, check=True)
        subprocess.run(["scancel", "--signal=USR2", job_of["seed=1"]], timeout=20, check=True)
        for job_id in job_of.values():
            wait_for(f"{job_id} requeued", lambda: release_requeued(job_id), 30)
        code, stdout, stderr = finish(sweep, 120)
    assert code == 0, stderr
    assert "sweep of 2: 2 done" in stdout

    found = records(tmp_path)
    assert len(found) == 2
    logs = {seed_of(p): Path(p["job"]["stdout"]).read_text() for p in points}
    # SIGTERM sets the chunk's stop request; USR2 reaches submitit, whose checkpoint() sets it
    assert "signal 15 at step" in logs["seed=0"]
    assert "preempted or timed out (submitit checkpoint) at step" in logs["seed=1"]
    for point in points:
        assert f"{point['run_id']} resuming at stage" in logs[seed_of(point)]
        uninterrupted = run(compose_config([*LONG_KAN, seed_of(point)],
                                           tmp_path / "reference"), log=lambda *_: None)
        assert uninterrupted.run_id == point["run_id"]
        assert found[point["run_id"]]["test_rmse"] == uninterrupted.test_rmse
        assert found[point["run_id"]]["n_evals"] == uninterrupted.n_evals


def test_config_error_submits_nothing(slurm_cluster, tmp_path):
    name = job_name("bad")
    result = run_cli(["-m", *TINY, "model.grid=5,2", f"results_root={tmp_path}",
                      *slurm_args(slurm_cluster, name)], timeout=60)
    assert result.returncode == 2
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("kanscale: config error: sweep point #1")
    assert squeue_jobs(name) == [] and sacct_tasks(name) == {}
    assert records(tmp_path) == {} and not (tmp_path / ".sweeps").exists()  # no manifest either


@pytest.mark.parametrize("gpus", [0, 1])
def test_sbatch_script_from_the_launcher_config(gpus):
    """configs/launcher/slurm.yaml -> the #SBATCH lines submitit writes (no cluster needed, srun is)."""
    from hydra import compose, initialize_config_dir
    from hydra.core.utils import setup_globals
    from hydra.utils import instantiate

    from tests.helpers import CONFIGS

    if shutil.which("srun") is None:
        pytest.skip("submitit's SLURM executor needs srun on PATH")
    setup_globals()
    with initialize_config_dir(config_dir=str(CONFIGS), version_base="1.3"):
        cfg = compose(config_name="config", return_hydra_config=True, overrides=[
            "launcher=slurm", "experiment_name=demo", "hydra.launcher.partition=gpu",
            "hydra.launcher.account=proj", f"hydra.launcher.gpus_per_task={gpus}"])
    launcher = instantiate(cfg.hydra.launcher)
    script = launcher._executor()._executor._make_submission_file_text("python -m x", "uid")
    lines = set(script.splitlines())
    assert {"#SBATCH --partition=gpu", "#SBATCH --account=proj", "#SBATCH --requeue",
            "#SBATCH --signal=USR2@120", "#SBATCH --cpus-per-task=1", "#SBATCH --time=60",
            "#SBATCH --job-name=kanscale-demo"} <= lines
    assert ("#SBATCH --gpus-per-task=1" in lines) == (gpus == 1)
    assert not any("gpus-per-task=0" in line for line in lines)
    assert launcher.runs_per_task == 1 and launcher.params["max_num_timeout"] == 3
