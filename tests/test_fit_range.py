"""The fit range rules, the scaling-regime guard, the stratified run bootstrap, front-vs-front
comparisons, exchange rates outside the measured range, and fits computed once."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import analysis.fit_table as fit_table
from analysis.bootstrap import stratified_counts
from analysis.collect import collect_stages
from analysis.exchange import MEASURED, OUTSIDE, compare_fronts, loss_ratio_at_x, x_ratio_at_loss
from analysis.fit_range import (FLOOR, NUMERICAL_FLOOR, PAST_END, PLATEAU, REASONS, SATURATED,
                                fit_range, regime_check)
from analysis.fit_table import NOT_IN_REGIME, TOO_FEW, compute_fits, fit_groups
from analysis.laws import fit_runs
from analysis_fixtures import KAN_A, KAN_ALPHA, MLP_A, MLP_ALPHA, write_seeded_results


def sweep(sizes, law, seeds=3, noise=0.05, seed=0, **columns) -> pd.DataFrame:
    """Stage-table rows: `seeds` runs per size with log-normal noise around law(size)."""
    rng = np.random.default_rng(seed)
    x = np.repeat(np.asarray(sizes, float), seeds)
    loss = law(x) * np.exp(noise * rng.standard_normal(len(x)))
    return pd.DataFrame({"status": "done", "family": "kan", "task": "toy", "n_params": x,
                         "test_rmse": loss, "widths": "2-5-1", **columns})


def plateau_then_power(x):
    return np.where(x < 40, 0.5 * (x / 10) ** -0.05, 50 * x ** -1.5)  # flat, then L = 50 x^-1.5


SIZES = [10, 20, 40, 80, 160, 320, 640, 1280, 2560]


def test_paper_range_drops_plateau_and_saturated_points_and_says_why():
    rows = sweep(SIZES, plateau_then_power, n_train=1000)  # d_out 1: saturated from 1000 params
    span = fit_range(rows, "n_params", "test_rmse")
    reasons = {p.x: p.reason for p in span.points}
    # 10 -> 20 is flat (slope 0.05 against 1.5 after it); from 20 the loss falls as x^-1.3
    assert reasons == {10: PLATEAU, 20: None, 40: None, 80: None, 160: None, 320: None,
                       640: None, 1280: SATURATED, 2560: SATURATED}
    assert (span.x_min, span.x_max) == (20, 640)
    assert span.in_range.tolist() == [20 <= x <= 640 for x in rows["n_params"]]
    assert {e["reason"] for e in span.to_dict()["excluded"]} <= set(REASONS)
    paper = fit_runs(rows["n_params"], rows["test_rmse"], in_range=span.in_range, n_boot=50)
    every = fit_runs(rows["n_params"], rows["test_rmse"], n_boot=50)
    assert paper.params["alpha"].estimate == pytest.approx(1.5, abs=0.1)
    assert (paper.n_points, paper.n_sizes, every.n_points) == (6, 6, 9)


def test_group_with_every_point_out_of_range_says_why():
    rows = sweep(SIZES, lambda x: 3 * x ** -1.0, n_train=1)  # every model saturated
    (group,) = fit_groups(rows, n_boot=10)
    assert group.fit is None and group.status == "not fitted"
    assert group.reason == "no frontier point inside the fit range (excluded: n_params >= n_train*d_out)"
    (every,) = fit_groups(rows, n_boot=10, fit_range_rule="all")
    assert every.status == "fitted"


def test_all_rule_keeps_every_frontier_point():
    rows = sweep(SIZES, plateau_then_power, n_train=1000)
    span = fit_range(rows, "n_params", "test_rmse", rule="all")
    assert span.excluded == [] and span.n_included == len(SIZES) and span.in_range.all()


def test_floor_points_end_the_range_and_later_points_follow():
    law = lambda x: 1e-2 * (x / 10) ** -3.0  # 3.1e-7 at 320, 3.8e-8 at 640 (floor 1e-7)
    rows = sweep(SIZES, law, noise=0.01, n_train=10 ** 6, test_target_std=1.0, dtype="float64")
    reasons = {p.x: p.reason for p in fit_range(rows, "n_params", "test_rmse").points}
    assert [reasons[x] for x in SIZES] == [None] * 6 + [FLOOR] * 3
    # the same losses in float32 hit its floor (3.5e-4 of the std) from 40 (1.6e-4) on
    rows32 = rows.assign(dtype="float32")
    reasons32 = {p.x: p.reason for p in fit_range(rows32, "n_params", "test_rmse").points}
    assert [reasons32[x] for x in SIZES[:3]] == [None, None, FLOOR]
    assert NUMERICAL_FLOOR["float32"] == pytest.approx(3.45e-4, rel=0.01)


def test_points_after_a_saturated_one_are_past_the_end():
    rows = sweep([10, 20, 40, 80, 160], lambda x: 3 * x ** -1.0, n_train=1)
    rows.loc[rows["n_params"] == 80, "n_train"] = 10  # only 80 saturated (80 >= 10); 160 after it
    rows.loc[rows["n_params"] != 80, "n_train"] = 10 ** 6
    reasons = [p.reason for p in fit_range(rows, "n_params", "test_rmse").points]
    assert reasons == [None, None, None, SATURATED, PAST_END]


def test_a_clean_power_law_loses_no_point():
    for seed in range(20):
        rows = sweep(SIZES, lambda x: 3 * x ** -0.5, noise=0.05, seed=seed, n_train=10 ** 6)
        assert fit_range(rows, "n_params", "test_rmse").excluded == []


def test_regime_guard():
    rows = sweep(SIZES, lambda x: 0.5 + 0 * x, test_target_std=1.0)  # never below 10% of std
    guard = regime_check(rows, "test_rmse")
    assert guard.applicable and not guard.in_regime and guard.best_relative == pytest.approx(0.5, rel=0.2)
    assert "not in the scaling regime" in guard.reason
    (group,) = fit_groups(rows, n_boot=10)
    assert group.status == NOT_IN_REGIME and group.fit is None and not group.verdict_ready
    assert group.to_dict()["status"] == "not in the scaling regime"
    assert regime_check(sweep(SIZES, lambda x: 0.01 + 0 * x, test_target_std=1.0), "test_rmse").in_regime
    missing = regime_check(sweep(SIZES, lambda x: 0.5 + 0 * x), "test_rmse")  # no target std
    assert not missing.applicable and missing.in_regime


def test_stratified_counts_resample_within_each_size():
    strata = np.array([1, 1, 1, 2, 2, 3])
    counts = stratified_counts(strata, 500, np.random.default_rng(0))
    for size in (1, 2, 3):
        assert (counts[:, strata == size].sum(axis=1) == (strata == size).sum()).all()
    assert counts[:, :3].std(axis=0).min() > 0.5 and (counts[:, 5] == 1).all()


def test_rows_of_one_run_at_one_size_are_drawn_together():
    strata = np.array([5, 5, 5, 5, 7])
    runs = np.array(["a", "a", "a", "b", "a"])  # run a has 3 stages at size 5
    counts = stratified_counts(strata, 300, np.random.default_rng(1), units=runs)
    assert (counts[:, 0] == counts[:, 1]).all() and (counts[:, 1] == counts[:, 2]).all()
    assert set(counts[:, 0] + counts[:, 3]) == {2} and (counts[:, 4] == 1).all()


def test_stages_of_one_run_are_not_seeds(tmp_path):
    """One MLP run per size with three stages at that size: nothing to resample, no interval."""
    from analysis_fixtures import write_synthetic_results
    write_synthetic_results(tmp_path, with_failures=False)
    mlp = fit_groups(collect_stages(tmp_path), n_boot=20)[1]
    assert mlp.keys["family"] == "mlp" and mlp.status == TOO_FEW and "one run per size" in mlp.reason


def test_three_sizes_give_no_interval():
    rows = sweep([10, 100, 1000], lambda x: 3 * x ** -1.0, seeds=4)
    fit = fit_runs(rows["n_params"], rows["test_rmse"], n_boot=50)
    assert fit.ci_reason == "too few sizes (3 < 4)" and not fit.has_interval and fit.n_boot == 0
    assert np.isnan(fit.params["alpha"].ci_low) and fit.params["alpha"].estimate == pytest.approx(1, abs=0.1)
    (group,) = fit_groups(rows, n_boot=50)
    assert group.status == TOO_FEW and group.reason == "too few sizes (3 < 4)"
    assert group.to_dict()["params"]["alpha"]["ci_low"] is None


def test_one_run_per_size_gives_no_interval():
    rows = sweep(SIZES, lambda x: 3 * x ** -1.0, seeds=1)
    fit = fit_runs(rows["n_params"], rows["test_rmse"], n_boot=50)
    assert not fit.has_interval and "one run per size" in fit.ci_reason


def test_intervals_widen_with_noise_across_seeds():
    widths = {}
    for noise in (0.02, 0.2):
        rows = sweep(SIZES, lambda x: 3 * x ** -1.0, seeds=4, noise=noise, seed=1)
        alpha = fit_runs(rows["n_params"], rows["test_rmse"], n_boot=200, seed=1).params["alpha"]
        assert alpha.ci_low < 1.0 < alpha.ci_high
        widths[noise] = alpha.ci_high - alpha.ci_low
    assert widths[0.2] > 5 * widths[0.02]


def test_floor_form_resamples_recover_the_floor_exponent():
    rows = sweep(SIZES, lambda x: 1e-3 + 3 * x ** -1.0, seeds=4, noise=0.03, seed=2)
    fit = fit_runs(rows["n_params"], rows["test_rmse"], form="floor", n_boot=100, seed=2)
    alpha = fit.params["alpha"]
    assert fit.has_interval and fit.n_boot == 100 and alpha.ci_low < 1.0 < alpha.ci_high
    assert fit.params["E"].estimate == pytest.approx(1e-3, rel=0.3)


def test_fits_are_computed_once_and_read_back(tmp_path, monkeypatch):
    write_seeded_results(tmp_path)
    stages = collect_stages(tmp_path)
    calls = []
    real = fit_table.fit_runs
    monkeypatch.setattr(fit_table, "fit_runs", lambda *a, **k: calls.append(1) or real(*a, **k))
    fits = compute_fits(stages, xs=("n_params", "flops_forward"), n_boot=50, seed=4)
    assert len(calls) == len(fits) == 4
    kan = fits.get("n_params", family="kan", task="toy")
    for _ in range(3):  # reading again (table, figure, JSON) refits nothing and finds the same fit
        assert fits.get("n_params", family="kan", task="toy") is kan
    assert len(calls) == 4 and [g.x for g in fits.select(family="mlp")] == ["n_params", "flops_forward"]
    again = compute_fits(stages, xs=("n_params", "flops_forward"), n_boot=50, seed=4)
    assert again.to_dict() == fits.to_dict()  # same seed, same numbers
    assert fits.to_dict()["settings"]["fit_range"] == "paper"


def test_exchange_outside_the_measured_range_gives_no_number():
    rows = sweep(SIZES[:6], lambda x: 3 * x ** -1.0, seeds=3)
    a = fit_runs(rows["n_params"], rows["test_rmse"], n_boot=50)
    b = fit_runs(rows["n_params"], rows["test_rmse"] * 1.1, n_boot=50, seed=1)
    inside = loss_ratio_at_x(a, b, 100.0, ref_span=(10, 320), other_span=(10, 320), x="n_params")
    assert inside.status == MEASURED and inside.estimate == pytest.approx(1 / 1.1, rel=0.05)
    outside = loss_ratio_at_x(a, b, 1e4, ref_span=(10, 320), other_span=(10, 320), x="n_params")
    assert outside.status == OUTSIDE and np.isnan(outside.estimate) and outside.straddles_one
    assert outside.describe().endswith("outside the measured range")
    target = x_ratio_at_loss(a, b, 1e-5, ref_span=(0.01, 0.3), other_span=(0.01, 0.3))
    assert target.status == OUTSIDE and target.to_dict()["status"] == OUTSIDE


def test_compare_fronts_at_matched_parameters():
    kan = sweep(np.geomspace(30, 3000, 8), lambda x: KAN_A * x ** -KAN_ALPHA, seeds=3, seed=1)
    mlp = sweep(np.geomspace(10, 1000, 8), lambda x: MLP_A * x ** -MLP_ALPHA, seeds=3, seed=2)
    result = compare_fronts(kan, mlp.assign(family="mlp"), x="n_params", n_boot=200, seed=0)
    assert result.status == MEASURED and (result.x_low, result.x_high) == (30, 1000)
    # geometric mean over [30, 1000] of (3 x^-2) / (5 x^-1) = 0.6 / geometric mean of x
    expected = KAN_A / MLP_A / np.exp((np.log(30) + np.log(1000)) / 2)
    assert result.ratio == pytest.approx(expected, rel=0.1)
    assert result.ci_low < result.ratio < result.ci_high < 1 and result.a_below is True
    assert len(result.grid) == len(result.curve) == len(result.curve_low)
    assert "loss_kan/loss_mlp at matched n_params" in result.describe()


def test_compare_fronts_without_overlap_or_sizes_says_so():
    kan = sweep([10, 20, 40, 80], lambda x: 1 / x)
    mlp = sweep([1000, 2000, 4000], lambda x: 1 / x)
    assert compare_fronts(kan, mlp).status == OUTSIDE
    few = compare_fronts(sweep([10, 20], lambda x: 1 / x), sweep([10, 20], lambda x: 2 / x))
    assert few.status == MEASURED and not few.has_interval and "too few sizes" in few.reason
    assert few.ratio == pytest.approx(0.5, rel=0.1) and few.a_below is None


def test_compare_fronts_at_matched_training_flops_stratifies_by_size():
    kan = sweep(SIZES[:6], lambda x: 1 / x, seeds=3, seed=3).assign(
        train_flops=lambda d: d["n_params"] * 1e3 * (1 + 0.01 * np.arange(len(d)) % 3))
    mlp = sweep(SIZES[:6], lambda x: 2 / x, seeds=3, seed=4).assign(
        train_flops=lambda d: d["n_params"] * 1e3)
    result = compare_fronts(kan, mlp, x="train_flops", n_boot=100)
    assert result.status == MEASURED and result.has_interval and result.ratio < 1


def test_analysis_modules_import_each_other_without_circles():
    """Module-level `from analysis.X import` edges form no cycle; `python -m analysis.fit` is the
    CLI in analysis/fit.py (fit_table has no main of its own)."""
    import ast
    from pathlib import Path

    package = Path(fit_table.__file__).parent
    edges = {}
    for path in package.glob("*.py"):
        tree = ast.parse(path.read_text())
        edges[path.stem] = {node.module.split(".")[1] for node in tree.body
                            if isinstance(node, ast.ImportFrom) and node.module
                            and node.module.startswith("analysis.")}

    def visit(module, trail):
        assert module not in trail, f"import circle: {' -> '.join(trail + [module])}"
        for target in edges.get(module, ()):
            visit(target, trail + [module])

    for module in edges:
        visit(module, [])
    assert not hasattr(fit_table, "main") and "fit_table" in edges["fit"]
