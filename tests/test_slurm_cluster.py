"""The local SLURM cluster runs real jobs: sbatch, submitit jobs and arrays, and scancel.

Needs `bash slurm/local-cluster.sh up` (see slurm/README.md); skipped without it, failed under CI.
Every wait is bounded, so a broken cluster fails a test instead of hanging it.
"""

import concurrent.futures
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable, Dict, Optional

import cloudpickle
import pytest
import submitit

pytestmark = pytest.mark.slurm

# The job's interpreter cannot import this module (tests/ is not on its sys.path), so submitit's
# cloudpickle ships the job functions below by value instead of by name.
cloudpickle.register_pickle_by_value(sys.modules[__name__])

TERMINAL_STATES = {
    "COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "OUT_OF_MEMORY", "NODE_FAIL", "PREEMPTED",
    "BOOT_FAIL", "DEADLINE",
}  # fmt: skip


def job_environment() -> Dict[str, Optional[str]]:
    """Runs inside the job: what SLURM told it."""
    names = ("SLURM_CONF", "SLURM_JOB_ID", "SLURM_CLUSTER_NAME", "SLURM_JOB_PARTITION")
    return {name: os.environ.get(name) for name in names}


def square(x: int) -> int:
    return x * x


def sacct_state(job_id: str) -> str:
    """Allocation state of a job in accounting ("" before slurmdbd has it); "CANCELLED by 0" -> "CANCELLED"."""
    out = subprocess.run(
        ["sacct", "--noheader", "--allocations", "--parsable2", "--format=State", f"--jobs={job_id}"],
        capture_output=True, text=True, timeout=20, check=True,
    ).stdout  # fmt: skip
    lines = out.split()
    return lines[0] if lines else ""


def wait_for_sacct_state(job_id: str, wanted: set, timeout_s: float) -> str:
    deadline = time.monotonic() + timeout_s
    state = ""
    while time.monotonic() < deadline:
        state = sacct_state(job_id)
        if state in wanted:
            return state
        time.sleep(0.5)
    pytest.fail(f"job {job_id} still {state or 'unknown to sacct'} after {timeout_s} s (wanted {wanted})")


def call_within(timeout_s: float, fn: Callable[[], Any]) -> Any:
    """fn(), or a test failure if it has not returned after timeout_s (submitit's waits are unbounded)."""
    pool = concurrent.futures.ThreadPoolExecutor(max_workers=1)
    try:
        return pool.submit(fn).result(timeout=timeout_s)
    except concurrent.futures.TimeoutError:
        pytest.fail(f"{getattr(fn, '__name__', fn)} did not return within {timeout_s} s")
    finally:
        pool.shutdown(wait=False)


def wait_until_done(job: submitit.Job, timeout_s: float) -> None:
    """Polls the result file and sacct (forced: submitit's own backoff reaches minutes)."""
    deadline = time.monotonic() + timeout_s
    while not job.done(force_check=True):
        if time.monotonic() > deadline:
            job.cancel(check=False)
            pytest.fail(f"job {job.job_id} not done after {timeout_s} s, state {job.state}; log {job.paths.stderr}")
        time.sleep(0.5)


def make_executor(folder: Path, partition: str) -> submitit.AutoExecutor:
    executor = submitit.AutoExecutor(folder=folder, cluster="slurm")
    executor.update_parameters(slurm_partition=partition, timeout_min=5, cpus_per_task=1)
    return executor


def test_sbatch_wrap_completes_in_accounting(slurm_cluster, tmp_path):
    output = tmp_path / "hi.out"
    job_id = subprocess.run(
        ["sbatch", "--parsable", f"--output={output}", f"--chdir={tmp_path}", "--wrap", "echo hi"],
        capture_output=True, text=True, timeout=20, check=True,
    ).stdout.strip().split(";")[0]  # fmt: skip
    assert wait_for_sacct_state(job_id, TERMINAL_STATES, timeout_s=30) == "COMPLETED"
    assert output.read_text().strip() == "hi"


def test_submitit_job_returns_value_from_this_cluster(slurm_cluster, tmp_path):
    job = make_executor(tmp_path, slurm_cluster.partition).submit(job_environment)
    wait_until_done(job, timeout_s=45)
    environment = call_within(30, job.result)
    # The job saw our SLURM_CONF, so submitit's sbatch did too (sbatch exports its environment).
    assert environment == {
        "SLURM_CONF": str(slurm_cluster.conf),
        "SLURM_JOB_ID": job.job_id,
        "SLURM_CLUSTER_NAME": "kanscale",
        "SLURM_JOB_PARTITION": slurm_cluster.partition,
    }
    assert wait_for_sacct_state(job.job_id, TERMINAL_STATES, timeout_s=15) == "COMPLETED"


def test_submitit_job_array_returns_every_value(slurm_cluster, tmp_path):
    executor = make_executor(tmp_path, slurm_cluster.partition)
    executor.update_parameters(slurm_array_parallelism=4)
    jobs = executor.map_array(square, [1, 2, 3, 4])
    assert len({job.job_id.split("_")[0] for job in jobs}) == 1, "one array, not four jobs"
    for job in jobs:
        wait_until_done(job, timeout_s=45)
    assert [call_within(30, job.result) for job in jobs] == [1, 4, 9, 16]


def test_scancel_is_seen_by_sacct_and_submitit(slurm_cluster, tmp_path):
    job = make_executor(tmp_path, slurm_cluster.partition).submit(time.sleep, 300)
    wait_for_sacct_state(job.job_id, {"RUNNING"}, timeout_s=30)
    subprocess.run(["scancel", job.job_id], timeout=20, check=True)
    assert wait_for_sacct_state(job.job_id, TERMINAL_STATES, timeout_s=20) == "CANCELLED"
    wait_until_done(job, timeout_s=20)
    assert job.state.startswith("CANCELLED")
    # result() waits up to submitit's 15 s grace for a result file, then must give up, not hang.
    with pytest.raises(submitit.core.utils.UncompletedJobError, match="CANCELLED"):
        call_within(30, job.result)
