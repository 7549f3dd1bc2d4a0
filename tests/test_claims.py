"""The claims registry gives computed verdicts on synthetic results with known answers."""
from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from analysis.claims import INCONCLUSIVE, NOT_REPRODUCED, REPRODUCED, evaluate_all
from analysis.collect import runs_table, stages_table
from tests.analysis_fixtures import KAN_FLOPS_PER_PARAM, MLP_FLOPS_PER_PARAM, kan_params, record, stage, write_records

GRIDS = (3, 5, 10, 20, 50, 100)


def kan_run(task, widths, alpha, experiment, seed=0, noise=0.02, metrics=None):
    rng = np.random.default_rng(seed)
    stages = []
    for i, grid in enumerate(GRIDS):
        n = kan_params(widths, grid)
        loss = float(50 * n ** -alpha * np.exp(noise * rng.standard_normal()))
        s = stage(i, grid, n, KAN_FLOPS_PER_PARAM, loss, 10 * (i + 1))
        s["test_median_abs_error"] = loss / 2
        s["metrics"] = dict(metrics or {})
        stages.append(s)
    return record("kan", widths, stages, task=task, seed=seed, experiment=experiment)


def mlp_run(task, widths, n, loss, experiment, seed=0, metrics=None):
    s = stage(0, None, n, MLP_FLOPS_PER_PARAM, loss, 10)
    s["metrics"] = dict(metrics or {})
    return record("mlp", widths, [s], task=task, seed=seed, experiment=experiment)


def synthetic_claims_results():
    runs = [kan_run("toy_bessel", [1, 1], 4.0, "toy_scaling_quick"),
            kan_run("toy_xy", [2, 2, 1], 2.0, "toy_scaling_quick")]
    runs += [mlp_run(task, [2, h, 1], 4 * h + 1, 5.0 / (4 * h + 1), "toy_scaling_quick")
             for task in ("toy_bessel", "toy_xy") for h in (4, 16, 64, 256)]
    # PDE: KAN [2,10,1] reaches 1e-7, the 4-layer width-100 MLP 1e-5 (the paper's numbers)
    pde_kan = record("kan", [2, 10, 1], [dict(stage(0, 5, 300, 10, 3e-4, 10), metrics={"l2_sq": 1e-7})],
                     task="pde_poisson", experiment="pde_poisson_quick")
    pde_mlp = record("mlp", [2, 100, 100, 100, 1],
                     [dict(stage(0, None, 20601, 2, 3e-3, 10), metrics={"l2_sq": 1.5e-5})],
                     task="pde_poisson", experiment="pde_poisson_quick")
    # continual: KAN forgets 0.01, MLP 5
    cont_kan = record("kan", [1, 1], [dict(stage(0, 50, 53, 10, 0.01, 10), metrics={"forgetting": 0.01})],
                      task="continual_peaks", experiment="continual_quick")
    cont_mlp = record("mlp", [1, 32, 1], [dict(stage(0, None, 97, 2, 5.0, 10), metrics={"forgetting": 5.0})],
                      task="continual_peaks", experiment="continual_quick")
    return runs + [pde_kan, pde_mlp, cont_kan, cont_mlp]


def by_case(findings):
    return {(f.claim, f.case): f for f in findings}


def test_verdicts_follow_the_rules():
    records = [r.to_dict() for r in synthetic_claims_results()]
    findings = by_case(evaluate_all(runs_table(records), stages_table(records), n_boot=200))
    assert findings[("1", "toy_bessel")].verdict == REPRODUCED  # slope 4 generated
    assert findings[("1", "toy_bessel")].numbers["alpha"] == pytest.approx(4.0, abs=0.1)
    assert findings[("1", "toy_xy")].verdict == NOT_REPRODUCED  # slope 2 generated
    assert findings[("1m", "toy_bessel")].verdict == REPRODUCED  # median = RMSE / 2: same slope
    assert findings[("3", "pde_poisson")].verdict == REPRODUCED  # ratio 150 >= 100
    assert findings[("3", "pde_poisson")].numbers["l2_ratio"] == pytest.approx(150.0, rel=1e-12)
    assert findings[("5", "continual_peaks")].verdict == REPRODUCED
    # experiments that were not run are inconclusive, not silently dropped
    assert findings[("4", "-")].verdict == INCONCLUSIVE
    assert findings[("4f", "-")].verdict == INCONCLUSIVE


def test_claims_cli_writes_the_report(tmp_path):
    write_records(tmp_path / "results", synthetic_claims_results())
    out = subprocess.run([sys.executable, "-m", "analysis.claims", str(tmp_path / "results"), "--out",
                          str(tmp_path / "report"), "--n-boot", "50"], capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 0, out.stderr
    findings = json.loads((tmp_path / "report" / "claims.json").read_text())
    report = (tmp_path / "report" / "report.md").read_text()
    for f in findings:  # every computed verdict is in the table
        assert f"**{f['verdict']}** ({f['why']})" in report
    assert (tmp_path / "report" / "report.html").read_text().count("data:image/png;base64") >= 3


def test_missing_results_folder_is_one_line(tmp_path):
    out = subprocess.run([sys.executable, "-m", "analysis.claims", str(tmp_path / "nope"), "--out",
                          str(tmp_path / "r")], capture_output=True, text=True, timeout=60)
    assert out.returncode == 2 and len(out.stderr.strip().splitlines()) == 1
