"""One trainer per point: claims (harness/claim.py), and launchers started at once on one sweep."""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections import Counter

import pytest

from harness import claim
from harness.results import load_record
from tests.helpers import ROOT, TINY


def test_a_live_claim_is_refused_with_host_and_pid(tmp_path):
    held = claim.acquire(tmp_path)
    with pytest.raises(claim.RunClaimed, match=f"claimed by {socket.gethostname()}:{os.getpid()}"):
        claim.acquire(tmp_path)
    holder = claim.holder_of(tmp_path)
    assert holder["pid"] == os.getpid() and holder["host"] == socket.gethostname()
    held.release()
    assert not (tmp_path / claim.CLAIM_FILE).exists() and claim.holder_of(tmp_path) is None
    claim.acquire(tmp_path).release()  # free again


def test_a_dead_pid_on_this_host_is_taken_over(tmp_path):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True).stdout.strip()
    (tmp_path / claim.CLAIM_FILE).write_text(json.dumps(
        {"host": socket.gethostname(), "pid": int(dead), "started_at": time.time(),
         "heartbeat": time.time(), "token": "old"}))
    assert claim.holder_of(tmp_path) is None  # stale at once
    with claim.acquire(tmp_path) as held:
        assert claim.holder_of(tmp_path)["token"] == held.token


def test_an_old_heartbeat_from_another_host_is_taken_over(tmp_path):
    old = time.time() - claim.STALE_AFTER_S - 1
    (tmp_path / claim.CLAIM_FILE).write_text(json.dumps(
        {"host": "node-elsewhere", "pid": 1, "started_at": old, "heartbeat": old, "token": "x"}))
    with claim.acquire(tmp_path):
        pass
    fresh = time.time() - claim.STALE_AFTER_S + 30
    (tmp_path / claim.CLAIM_FILE).write_text(json.dumps(
        {"host": "node-elsewhere", "pid": 1, "started_at": fresh, "heartbeat": fresh, "token": "y"}))
    with pytest.raises(claim.RunClaimed, match="claimed by node-elsewhere:1"):
        claim.acquire(tmp_path)


def test_the_heartbeat_refreshes_the_claim(tmp_path):
    held = claim.acquire(tmp_path)
    first = claim.holder_of(tmp_path)["heartbeat"]
    with claim.Heartbeat([held], every_s=0.05):
        time.sleep(0.3)
    assert claim.holder_of(tmp_path)["heartbeat"] > first
    assert claim.holder_of(tmp_path)["started_at"] == pytest.approx(first)
    held.release()


def test_run_skips_a_point_claimed_by_another_trainer(tmp_path):
    from harness.train import run
    from tests.helpers import compose_config
    from harness.results import run_id_of
    from harness.train import resolved_dict

    cfg = compose_config(["model=mlp"], tmp_path)
    run_dir = tmp_path / run_id_of(resolved_dict(cfg))
    other = claim.acquire(run_dir)
    with pytest.raises(claim.RunClaimed):
        run(cfg, log=lambda *_: None)
    assert load_record(run_dir) is None
    other.release()
    assert run(cfg, log=lambda *_: None).status == "done"
    assert not (run_dir / claim.CLAIM_FILE).exists()  # released when the run ended


def _wandb_ids(run_dir):
    """The wandb run ids of a run folder's offline runs (offline-run-<time>-<id>/run-<id>.wandb)."""
    return Counter(p.name[len("run-"):-len(".wandb")]
                   for p in (run_dir / "wandb").glob("offline-run-*/run-*.wandb"))


@pytest.mark.slow
def test_three_launchers_at_once_train_every_point_once(tmp_path):
    """The same sweep launched 3 times at once into one folder: each point trains exactly once
    (KANSCALE_TRAINING_LOG), has one wandb run, and every launcher ends with 0 or 5."""
    log = tmp_path / "trainings.log"
    env = {**os.environ, "WANDB_MODE": "offline", "KANSCALE_TRAINING_LOG": str(log)}
    args = [sys.executable, "-m", "harness.run", "-m", *TINY, f"results_root={tmp_path / 'r'}",
            "wandb.mode=offline", "model=mlp", "model.widths=[2,4,1]", "train.steps_per_stage=10",
            "seed=0,1,2,3,4,5"]
    launchers = [subprocess.Popen(args, cwd=ROOT, env=env, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True) for _ in range(3)]
    outputs = [launcher.communicate(timeout=900) for launcher in launchers]
    codes = [launcher.returncode for launcher in launchers]
    assert set(codes) <= {0, 5}, outputs
    run_dirs = [p.parent for p in (tmp_path / "r").glob("*/result.json")]
    assert len(run_dirs) == 6
    trained = Counter(line.split()[0] for line in log.read_text().splitlines())
    assert trained == {d.name: 1 for d in run_dirs}, outputs
    for run_dir in run_dirs:
        assert load_record(run_dir)["status"] == "done"
        assert _wandb_ids(run_dir) == {f"ks-{run_dir.name}": 1}
        assert not (run_dir / claim.CLAIM_FILE).exists()
    stderr = "".join(err for _, err in outputs)
    assert "claimed by" in stderr  # some launcher met another's claim and said so
