"""An interrupted run resumes from its checkpoint and reaches the same final loss."""
from __future__ import annotations

import itertools
import json
import os
import signal
import subprocess
import sys
import time

import pytest

import harness.train
from harness.checkpoint import load_checkpoint
from harness.stop import StopRequest
from harness.train import RunInterrupted, StackTrainer, run
from tests.helpers import ROOT, TINY, compose_config

ARGS = [*TINY, "train.steps_per_stage=60", "train.grid_schedule=[3,5]", "train.checkpoint_every=5",
        "model.widths=[2,3,1]"]


def launch(results_root):
    return subprocess.Popen([sys.executable, "-m", "harness.run", *ARGS, f"results_root={results_root}"],
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env={"WANDB_MODE": "disabled", "PATH": "/usr/bin:/bin",
                                 "PYTHONPATH": str(ROOT)})


def only_run_dir(results_root):
    dirs = [d for d in results_root.iterdir() if not d.name.startswith(".")]
    assert len(dirs) == 1, dirs
    return dirs[0]


@pytest.mark.slow
def test_sigterm_then_relaunch_reaches_the_uninterrupted_loss(tmp_path):
    reference = launch(tmp_path / "reference")
    assert reference.wait(timeout=300) == 0, reference.stdout.read()
    expected = json.loads((only_run_dir(tmp_path / "reference") / "result.json").read_text())

    interrupted_root = tmp_path / "interrupted"
    proc = launch(interrupted_root)
    deadline = time.time() + 120
    while time.time() < deadline:  # wait for the first checkpoint, then preempt
        if list(interrupted_root.glob("*/checkpoint.pt")):
            break
        time.sleep(0.01)
    proc.send_signal(signal.SIGTERM)
    output = proc.communicate(timeout=120)[0]
    assert proc.returncode == 3, output  # interrupted, checkpoint saved
    run_dir = only_run_dir(interrupted_root)
    assert not (run_dir / "result.json").exists()
    at_interruption = load_checkpoint(run_dir).progress

    resumed = launch(interrupted_root)
    output = resumed.communicate(timeout=300)[0]
    assert resumed.returncode == 0 and "resuming at stage" in output, output
    got = json.loads((run_dir / "result.json").read_text())
    assert got["run_id"] == expected["run_id"]
    assert got["test_rmse"] == expected["test_rmse"]
    assert got["n_evals"] == expected["n_evals"] and got["train_flops"] == expected["train_flops"]
    assert [s["test_rmse"] for s in got["stages"]] == [s["test_rmse"] for s in expected["stages"]]
    # CPU time and the start load carry over the interruption (checkpointed Progress)
    assert 0 < at_interruption["cpu_time_s"] < got["cpu_time_s"]
    assert got["stages"][0]["cpu_time_s"] < got["stages"][1]["cpu_time_s"] == got["cpu_time_s"]
    assert got["load_avg_start"] == at_interruption["load_avg_start"]


def test_resume_keeps_cpu_time_cumulative_and_the_start_load(tmp_path, monkeypatch):
    """A fake CPU clock that advances 0.25 s per step and a fake load that changes after the
    first call: the resumed record must hold 0.25 s x every step, and the first load."""
    ticks = itertools.count()
    monkeypatch.setattr(harness.train, "cpu_time", lambda: 0.25 * next(ticks))  # +0.25 s per call
    loads = iter([7.0] + [9.0] * 100)
    monkeypatch.setattr(harness.train, "load_avg_1min", lambda: next(loads))
    cfg = compose_config(["train.grid_schedule=[3,5]", "train.steps_per_stage=4",
                          "train.checkpoint_every=100", "model.widths=[2,2,1]"], tmp_path)
    original_account = StackTrainer._account
    stop = StopRequest()

    def account_then_preempt(self, live, *args):
        original_account(self, live, *args)
        if live[0].progress.global_step == 6:  # the 6th step, in the second stage: request a stop
            stop.request("preempted")

    monkeypatch.setattr(StackTrainer, "_account", account_then_preempt)
    with pytest.raises(RunInterrupted, match="preempted at step 6"):
        run(cfg, log=lambda *_: None, stop=stop)
    progress = load_checkpoint(tmp_path / only_run_dir(tmp_path).name).progress
    assert (progress["global_step"], progress["cpu_time_s"], progress["load_avg_start"]) == (6, 1.5, 7.0)

    monkeypatch.setattr(StackTrainer, "_account", original_account)
    result = run(cfg, log=lambda *_: None)
    assert result.status == "done" and result.steps == 8
    assert [s["cpu_time_s"] for s in result.stages] == [1.0, 2.0]  # 0.25 s x steps so far
    assert result.cpu_time_s == 2.0  # not 0.5, the steps after the resume alone
    assert (result.load_avg_start, result.load_avg_end) == (7.0, 9.0)
