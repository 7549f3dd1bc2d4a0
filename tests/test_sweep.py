"""Local sweeps: bad points stop everything before work, failures don't, re-launches skip."""
from __future__ import annotations

import json
import re

import pytest

from tests.helpers import TINY, run_cli


def records(root):
    return {p.parent.name: json.loads(p.read_text()) for p in root.glob("*/result.json")}


@pytest.mark.slow
def test_failures_are_contained_and_relaunch_redoes_only_them(tmp_path):
    args = ["-m", *TINY, f"results_root={tmp_path}", "model=kan,mlp", "model.widths=[2,2,1]",
            "seed=0,1"]
    fault = {"KANSCALE_FAULT": "fail:step=1@seed=1"}  # harness/faults.py (tests only)
    first = run_cli(args, env=fault)
    assert first.returncode == 4, first.stderr  # some points failed
    assert "sweep of 4: 2 done, 2 failed" in first.stdout
    assert "injected failure at step 1" in first.stdout
    statuses = sorted(r["status"] for r in records(tmp_path).values())
    assert statuses == ["done", "done", "failed", "failed"]

    again = run_cli(args, env=fault)
    assert "2 already finished, 0 claimed by other launchers, 2 to run" in again.stderr
    assert again.returncode == 4
    assert len(records(tmp_path)) == 4  # nothing duplicated


def test_a_bad_point_stops_the_sweep_before_any_run(tmp_path):
    result = run_cli(["-m", *TINY, f"results_root={tmp_path}", "model.grid=5,2"])
    assert result.returncode == 2
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("kanscale: config error: sweep point #1")
    assert "model.grid=2 is smaller than the spline order" in last
    assert records(tmp_path) == {}


def test_bad_value_is_one_line_and_exit_2(tmp_path):
    result = run_cli([*TINY, f"results_root={tmp_path}", "model.widths=[2,-3,1]"])
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "kanscale: config error: model.widths[1]=-3 must be a positive integer (got widths=[2, -3, 1])"]


def test_unknown_model_and_misspelt_key_fail_at_compose_time(tmp_path):
    unknown = run_cli([f"results_root={tmp_path}", "model=transformer"])
    assert unknown.returncode == 1 and "Could not find 'model/transformer'" in unknown.stderr
    typo = run_cli([f"results_root={tmp_path}", "model.widht=3"])
    assert typo.returncode == 1 and "Key 'widht' not in 'KANConfig'" in typo.stderr


def test_grids_sweep_is_a_union_of_products(tmp_path):
    """hydra.sweeper.grids: each block is a product, the sweep their union; params apply to all."""
    (tmp_path / "conf" / "experiment").mkdir(parents=True)
    (tmp_path / "conf" / "experiment" / "probe.yaml").write_text(
        "# @package _global_\n"
        "experiment_name: probe\n"
        "hydra:\n"
        "  sweeper:\n"
        "    params: {seed: '0,1'}\n"
        "    grids:\n"
        "      - {model: kan, task: 'toy_xy,toy_bessel', model.hidden: '[2]'}\n"
        "      - {model: mlp, model.hidden: '[7],[9]'}\n")
    result = run_cli(["--config-dir", str(tmp_path / "conf"), "-m", "experiment=probe", *TINY,
                      "train.steps_per_stage=1", f"results_root={tmp_path / 'r'}"])
    assert result.returncode == 0, result.stderr
    got = sorted((r["family"], tuple(r["widths"]), r["seed"]) for r in records(tmp_path / "r").values())
    expected = sorted([("kan", (2, 2, 1), s) for s in (0, 1)] + [("kan", (1, 2, 1), s) for s in (0, 1)]
                      + [("mlp", (2, h, 1), s) for h in (7, 9) for s in (0, 1)])
    assert got == expected
    assert all(r["experiment"] == "probe" for r in records(tmp_path / "r").values())


@pytest.mark.slow
def test_packed_local_sweep_gives_the_same_records(tmp_path):
    """hydra.launcher.pack trains seeds together as a stacked ensemble: same run ids and losses."""
    common = ["-m", *TINY, "optim=adam", "optim.lr=0.01", "train.steps_per_stage=5", "seed=0,1,2"]
    solo = run_cli([*common, f"results_root={tmp_path / 'solo'}"])
    packed = run_cli([*common, f"results_root={tmp_path / 'packed'}", "hydra.launcher.pack=3"])
    assert solo.returncode == 0 and packed.returncode == 0, packed.stderr
    assert "packing up to 3 runs" in packed.stderr
    # progress with an ETA: per run of a sweep, and per stage of a stack (harness/progress.py)
    assert re.search(r"\[kanscale\] sweep: 3/3 runs \[\S+ elapsed, ETA 00:00, ", solo.stderr), solo.stderr
    assert re.search(r"\[kanscale\] sweep: 3/3 runs \[\S+ elapsed, ETA 00:00, ", packed.stdout), packed.stdout
    assert re.search(r"\[kanscale\] stack of 3 \(\w+ \.\.\.\): 1/\d+ stages \[\S+ elapsed, ETA ",
                     packed.stdout), packed.stdout
    a, b = records(tmp_path / "solo"), records(tmp_path / "packed")
    assert sorted(a) == sorted(b) and len(a) == 3
    for run_id in a:
        assert b[run_id]["n_evals"] == a[run_id]["n_evals"]
        assert b[run_id]["test_rmse"] == pytest.approx(a[run_id]["test_rmse"], rel=1e-9)


def test_negative_pack_is_one_line_before_any_run(tmp_path):
    result = run_cli(["-m", *TINY, f"results_root={tmp_path}", "hydra.launcher.pack=-1"])
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1] == (
        "kanscale: config error: hydra.launcher.pack=-1 must be >= 0 (0 = no packing)")
    assert records(tmp_path) == {}
