"""Kill -9 at random moments, and inside checkpoint and record writes, then relaunch: every point
ends with exactly one valid record equal to the uninterrupted one, and one wandb run (checked in
the trials that run wandb offline: every 7th, as each wandb start costs seconds).

A "launcher" here is a forked child that runs the sweep's points one after another through
run(), as the local launcher does (no interpreter start per trial, so many trials stay fast);
harness/faults.py (KANSCALE_FAULT) kills it at exact places in some trials, a timer at random
moments in the others.
"""
from __future__ import annotations

import os
import random
import signal
import time
from collections import Counter
from pathlib import Path

import pytest

from harness import claim
from harness.faults import FAULT_ENV
from harness.results import RESULT_FILE, load_record
from harness.train import run
from tests.helpers import compose_config

# Two points of a small sweep, with stages, grid updates and a checkpoint every step.
POINT_ARGS = [["train.grid_schedule=[3,5]", "train.steps_per_stage=3", "train.checkpoint_every=1",
               "model.widths=[2,2,1]", f"seed={seed}"] for seed in (0, 1)]
N_CHECKPOINTS = 8  # per point: one per step (6) and one per stage end (2)


def _configs(root: Path, wandb_mode: str):
    return [compose_config([*args, f"wandb.mode={wandb_mode}"], root) for args in POINT_ARGS]


def _launch(configs, fault: str = "") -> int:
    """Fork a child that runs every point (skipping claimed ones) and exits; its pid."""
    pid = os.fork()
    if pid == 0:  # the child: never returns into pytest
        code = 0
        try:
            os.environ[FAULT_ENV] = fault
            # A real launcher is a new process with its own wandb-core service, which dies with it.
            # A forked child would inherit the address of the pytest process's service (started by
            # earlier wandb tests), where a SIGKILLed run's id stays "in use" for the relaunch.
            os.environ.pop("WANDB_SERVICE", None)
            for cfg in configs:
                try:
                    run(cfg, log=lambda *_: None)
                except claim.RunClaimed:
                    code = 5
        except BaseException:  # noqa: BLE001
            code = 1
        os._exit(code)
    return pid


def _wait(pid: int, timeout: float = 300.0) -> int:
    deadline = time.time() + timeout
    while time.time() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return os.waitstatus_to_exitcode(status)
        time.sleep(0.01)
    os.kill(pid, signal.SIGKILL)
    raise TimeoutError(f"launcher {pid} did not finish in {timeout} s")


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """The uninterrupted records and how long an uninterrupted launch takes (wandb off)."""
    root = tmp_path_factory.mktemp("reference")
    configs = _configs(root, "disabled")
    started = time.time()
    assert _wait(_launch(configs)) == 0
    elapsed = time.time() - started
    records = {p.parent.name: load_record(p) for p in root.glob(f"*/{RESULT_FILE}")}
    assert len(records) == 2 and {r["status"] for r in records.values()} == {"done"}
    return records, elapsed


def _trial(seed: int, root: Path, reference) -> str:
    records, elapsed = reference
    rng = random.Random(seed)
    # wandb offline costs seconds per start: every 7th trial checks the wandb runs, the rest are fast
    wandb_mode = "offline" if seed % 7 == 0 else "disabled"
    configs = _configs(root, wandb_mode)
    kind = ["timer", "timer", "checkpoint_write", "record_write", "step"][seed % 5]
    fault = ""
    if kind == "checkpoint_write":
        fault = f"kill:checkpoint_write#{rng.randint(1, 2 * N_CHECKPOINTS)}"
    elif kind == "record_write":
        fault = f"kill:record_write#{rng.randint(1, 2)}"
    elif kind == "step":
        fault = f"kill:step={rng.randint(0, 5)}"
    for attempt in range(rng.randint(1, 2)):  # one or two interrupted launches
        pid = _launch(configs, fault if attempt == 0 else "")
        if kind == "timer" or attempt > 0:
            time.sleep(rng.uniform(0.0, elapsed * (3 if wandb_mode == "offline" else 1)))
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        _wait(pid)
    assert _wait(_launch(configs)) == 0  # the relaunch finishes the sweep
    for run_id, expected in records.items():
        run_dir = root / run_id
        got = load_record(run_dir)
        assert isinstance(got, dict), f"{kind} {fault}: {got}"
        for key in ("status", "test_rmse", "n_evals", "train_flops", "steps"):
            assert got[key] == expected[key], (kind, fault, key, got.get("error"))
        assert [s["test_rmse"] for s in got["stages"]] == [s["test_rmse"] for s in expected["stages"]]
        assert [p.name for p in run_dir.glob("result*.json")] == [RESULT_FILE]  # exactly one
        assert not (run_dir / claim.CLAIM_FILE).exists()
        if wandb_mode == "offline":  # one wandb run: every folder (a start or resume) has one id
            ids = Counter(p.name[len("run-"):-len(".wandb")]  # folder names may get a "-1"
                          for p in (run_dir / "wandb").glob("offline-run-*/run-*.wandb"))
            assert set(ids) == {f"ks-{run_id}"}, (kind, fault, ids)
    return kind


def _trials(n: int, tmp_path: Path, reference) -> Counter:
    kinds = Counter()
    for seed in range(n):
        kinds[_trial(seed, tmp_path / f"trial{seed}", reference)] += 1
    return kinds


def test_sigkill_at_random_moments_then_relaunch_gives_the_uninterrupted_records(tmp_path, reference):
    kinds = _trials(20, tmp_path, reference)
    assert kinds == {"timer": 8, "checkpoint_write": 4, "record_write": 4, "step": 4}


@pytest.mark.soak  # not in the default run (~8 min): `bash tests/run_all.sh -m soak`
def test_sigkill_100_trials(tmp_path, reference):
    _trials(100, tmp_path, reference)
