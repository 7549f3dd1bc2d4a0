"""`python -m harness.status`: done / failed / diverged / running / missing per experiment."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from harness import checkpoint, status
from harness.results import write_json_atomic
from tests.helpers import ROOT, TINY, run_cli, valid_record

NOW = 1_000_000.0


def _record(root: Path, run_id: str, experiment: str, state: str, error=None, mtime=NOW - 3600):
    write_json_atomic(root / run_id / "result.json",
                      valid_record(run_id=run_id, status=state, error=error, experiment=experiment))
    os.utime(root / run_id / "result.json", (mtime, mtime))
    os.utime(root / run_id, (mtime, mtime))


def _manifest(root: Path, name: str, experiment: str, run_ids, jobs=None, mtime=NOW - 7200):
    points = [{"index": i, "run_id": run_id, "experiment": experiment,
               "overrides": ["train.steps_per_stage=3", f"seed={i}"]}
              for i, run_id in enumerate(run_ids)]
    for point in points:
        if jobs and point["run_id"] in jobs:
            point["job"] = jobs[point["run_id"]]
    path = root / ".sweeps" / f"{name}.json"
    write_json_atomic(path, {"experiment": experiment, "points": points})
    os.utime(path, (mtime, mtime))


@pytest.fixture
def results(tmp_path):
    """A sweep `sq` of 6 runs in every state, plus a lone run of experiment `one`."""
    job = {"job_id": "41_5", "stderr": "/logs/41_5_0_log.err", "stdout": "/logs/41_5_0_log.out"}
    _manifest(tmp_path, "sq-1", "sq", ["done1", "fail1", "div1", "run1", "miss1", "ckpt1"],
              jobs={"miss1": job})
    _record(tmp_path, "done1", "sq", "done")
    _record(tmp_path, "fail1", "sq", "failed", error="RuntimeError: boom")
    (tmp_path / "fail1" / "error.log").write_text("Traceback ...")
    _record(tmp_path, "div1", "sq", "diverged", error="train loss nan at step 2")
    (tmp_path / "run1").mkdir()
    (tmp_path / "run1" / checkpoint.CHECKPOINT_FILE).write_bytes(b"x")
    os.utime(tmp_path / "run1" / checkpoint.CHECKPOINT_FILE, (NOW - 30, NOW - 30))
    os.utime(tmp_path / "run1", (NOW - 30, NOW - 30))
    (tmp_path / "ckpt1").mkdir()
    (tmp_path / "ckpt1" / checkpoint.CHECKPOINT_FILE).write_bytes(b"x")
    os.utime(tmp_path / "ckpt1" / checkpoint.CHECKPOINT_FILE, (NOW - 5000, NOW - 5000))
    os.utime(tmp_path / "ckpt1", (NOW - 5000, NOW - 5000))
    _record(tmp_path, "lone1", "one", "done")
    return tmp_path


def test_every_state_is_told_apart(results):
    by_experiment = status.collect(results, running_within_s=600, now=NOW)
    assert sorted(by_experiment) == ["one", "sq"]
    states = {r.run_id: r.status for r in by_experiment["sq"]}
    assert states == {"done1": "done", "fail1": "failed", "div1": "diverged", "run1": "running",
                      "miss1": "missing", "ckpt1": "missing"}
    runs = {r.run_id: r for r in by_experiment["sq"]}
    assert runs["fail1"].error == "RuntimeError: boom"
    assert list(runs["fail1"].logs) == [str(results / "fail1" / "error.log")]
    assert list(runs["miss1"].logs) == ["job 41_5: /logs/41_5_0_log.err"]
    assert runs["ckpt1"].note == "has a checkpoint: resumes"
    assert runs["miss1"].label == "seed=4"  # only what varies within the sweep
    assert [r.status for r in by_experiment["one"]] == ["done"]


def test_a_stale_checkpoint_is_not_running(results):
    later = NOW + 3600
    states = {r.run_id: r.status for r in status.collect(results, 600, now=later)["sq"]}
    assert states["run1"] == "missing"


def test_a_failed_run_being_redone_is_running(results):
    _record(results, "fail2", "sq", "failed", mtime=NOW - 100)
    (results / "fail2" / checkpoint.CHECKPOINT_FILE).write_bytes(b"x")
    os.utime(results / "fail2" / checkpoint.CHECKPOINT_FILE, (NOW - 10, NOW - 10))
    states = {r.run_id: r.status for r in status.collect(results, 600, now=NOW)["sq"]}
    assert states["fail2"] == "running"


def test_relaunch_manifests_are_a_union_without_duplicates(results):
    _manifest(results, "sq-2", "sq", ["done1", "new1"], mtime=NOW - 60)
    runs = status.collect(results, 600, now=NOW)["sq"]
    assert sorted(r.run_id for r in runs) == ["ckpt1", "div1", "done1", "fail1", "miss1", "new1",
                                              "run1"]


def test_cli_prints_counts_and_details_exit_0(results):
    out = subprocess.run([sys.executable, "-m", "harness.status", str(results),
                          "--running-within", "1e12"], cwd=ROOT, capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    # every run without a record changed "recently" under this window: run1, miss1 has no folder
    assert lines[2].split() == ["one", "1", "1", "0", "0", "0", "0", "0"]
    assert lines[3].split() == ["sq", "6", "1", "1", "1", "0", "2", "1"]
    assert "RuntimeError: boom" in out.stdout
    assert f"log: {results / 'fail1' / 'error.log'}" in out.stdout


def test_missing_folder_is_one_line_exit_2(tmp_path):
    out = subprocess.run([sys.executable, "-m", "harness.status", str(tmp_path / "nope")],
                         cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert out.returncode == 2
    assert out.stderr.strip().splitlines() == [f"kanscale: status: no results folder {tmp_path / 'nope'}"]
    assert out.stdout == ""


def test_checkpoint_file_name_matches_the_trainer():
    assert status.CHECKPOINT_FILE == checkpoint.CHECKPOINT_FILE


@pytest.mark.slow
def test_local_sweep_manifest_gives_failed_and_missing(tmp_path):
    args = ["-m", *TINY, f"results_root={tmp_path}", "model=mlp", "model.widths=[2,2,1]",
            "seed=0,1,2,3"]
    result = run_cli(args, env={"KANSCALE_FAULT": "fail:step=1@seed=1;fail:step=1@seed=3"})
    assert result.returncode == 4, result.stderr  # some points failed
    manifests = list((tmp_path / ".sweeps").glob("default-*.json"))
    assert len(manifests) == 1
    run_ids = [p["run_id"] for p in json.loads(manifests[0].read_text())["points"]]
    assert len(set(run_ids)) == 4
    records = {p.parent.name: json.loads(p.read_text()) for p in tmp_path.glob("*/result.json")}
    assert set(records) == set(run_ids)
    missing = next(rid for rid in run_ids if records[rid]["status"] == "done")
    for path in (tmp_path / missing).iterdir():
        path.unlink()
    (tmp_path / missing).rmdir()
    runs = {r.run_id: r for r in status.collect(tmp_path, 600, now=time.time())["default"]}
    assert sorted(r.status for r in runs.values()) == ["done", "failed", "failed", "missing"]
    assert runs[missing].status == "missing"
    failed = [r for r in runs.values() if r.status == "failed"]
    assert all(r.error == "RuntimeError: injected failure at step 1 (KANSCALE_FAULT)" for r in failed)
    assert all(list(r.logs) == [str(tmp_path / r.run_id / "error.log")] for r in failed)
