"""An interrupted run resumes from its checkpoint and reaches the same final loss."""
from __future__ import annotations

import json
import signal
import subprocess
import sys
import time

import pytest

from tests.helpers import ROOT, TINY

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

    resumed = launch(interrupted_root)
    output = resumed.communicate(timeout=300)[0]
    assert resumed.returncode == 0 and "resuming at stage" in output, output
    got = json.loads((run_dir / "result.json").read_text())
    assert got["run_id"] == expected["run_id"]
    assert got["test_rmse"] == expected["test_rmse"]
    assert got["n_evals"] == expected["n_evals"] and got["train_flops"] == expected["train_flops"]
    assert [s["test_rmse"] for s in got["stages"]] == [s["test_rmse"] for s in expected["stages"]]
