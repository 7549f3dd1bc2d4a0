"""Shared pytest fixtures. Each block below is self-contained; append new ones as their own block."""

# ---------------------------------------------------------------------------------------------
# wandb never reaches the network from tests: an unset mode with no key errors, a bad key hangs.
# Tests that check what wandb writes set WANDB_MODE=offline themselves.
# ---------------------------------------------------------------------------------------------
import os as _os

_os.environ.setdefault("WANDB_MODE", "disabled")
_os.environ.setdefault("WANDB_SILENT", "true")

# ---------------------------------------------------------------------------------------------
# slurm_cluster: the real local SLURM cluster of slurm/local-cluster.sh (GitHub issue 4).
# Skips when no cluster answers, except under CI (env CI set), where a missing cluster fails.
# ---------------------------------------------------------------------------------------------
import dataclasses
import os
import shutil
import subprocess
from pathlib import Path
from typing import Iterator, Optional

import pytest

_SLURM_SCRIPT = Path(__file__).resolve().parents[1] / "slurm" / "local-cluster.sh"
_SLURM_NO_CLUSTER = "no SLURM cluster: run `bash slurm/local-cluster.sh up` then `export SLURM_CONF=...`"
_SLURM_READY_STATES = {"idle", "mixed", "allocated", "completing"}


@dataclasses.dataclass(frozen=True)
class SlurmCluster:
    """A reachable SLURM cluster; SLURM_CONF in os.environ points at `conf` while tests run."""

    conf: Path
    partition: str = "debug"


def _slurm_conf_path() -> Optional[Path]:
    """SLURM_CONF from the environment, else from the env file `local-cluster.sh up` writes in this
    checkout's state dir (`local-cluster.sh paths` names it without starting anything)."""
    if os.environ.get("SLURM_CONF"):
        return Path(os.environ["SLURM_CONF"])
    paths = subprocess.run(["bash", str(_SLURM_SCRIPT), "paths"], capture_output=True, text=True)
    values = dict(line.split("=", 1) for line in paths.stdout.splitlines() if "=" in line)
    env_file = Path(values.get("ENV_FILE", "/nonexistent"))
    if not env_file.is_file():
        return None
    for line in env_file.read_text().splitlines():
        if line.startswith("export SLURM_CONF="):
            return Path(line.split("=", 1)[1].strip().strip("'\""))
    return None


def _slurm_problem(conf: Optional[Path]) -> Optional[str]:
    """Why the cluster at `conf` cannot run jobs, or None when its node is up."""
    if conf is None:
        return "SLURM_CONF unset and no env file from local-cluster.sh"
    if not conf.is_file():
        return f"{conf} does not exist"
    if shutil.which("sinfo") is None:
        return "sinfo not on PATH (apt-get install slurm-client)"
    try:
        sinfo = subprocess.run(
            ["sinfo", "--noheader", "--format=%T"],
            env={**os.environ, "SLURM_CONF": str(conf)},
            capture_output=True,
            text=True,
            timeout=20,
        )
    except subprocess.TimeoutExpired:
        return "sinfo timed out after 20 s"
    if sinfo.returncode != 0:
        return f"sinfo failed: {sinfo.stderr.strip()}"
    node_states = {state.rstrip("*~#") for state in sinfo.stdout.split()}
    if not node_states & _SLURM_READY_STATES:
        return f"no node ready, sinfo states: {sorted(node_states)}"
    return None


def _in_ci() -> bool:
    return os.environ.get("CI", "").lower() not in ("", "0", "false", "no")


@pytest.fixture(scope="session")
def slurm_cluster() -> Iterator[SlurmCluster]:
    conf = _slurm_conf_path()
    problem = _slurm_problem(conf)
    if problem is not None:
        message = f"{_SLURM_NO_CLUSTER} ({problem})"
        if _in_ci():
            pytest.fail(f"CI must not skip SLURM tests: {message}", pytrace=False)
        pytest.skip(message)
    assert conf is not None
    # sbatch/sacct run by submitit inherit os.environ, so they find this cluster too.
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SLURM_CONF", str(conf))
        yield SlurmCluster(conf=conf)


# ---------------------------------------------------------------------------------------------
# end of slurm_cluster block
# ---------------------------------------------------------------------------------------------


# ---------------------------------------------------------------------------------------------
# float64_single_thread: exact comparisons (float64 default dtype, one thread), restored after.
# ---------------------------------------------------------------------------------------------
@pytest.fixture
def float64_single_thread():
    import torch
    dtype, threads = torch.get_default_dtype(), torch.get_num_threads()
    torch.set_default_dtype(torch.float64)
    torch.set_num_threads(1)
    yield
    torch.set_default_dtype(dtype)
    torch.set_num_threads(threads)
