"""The KAN paper's claims as data, each checked against the results table.

A claim is a sentence from Liu et al. 2024 (arXiv 2404.19756), the experiments that test it, the
metric, and a verdict rule. `evaluate_all(runs, stages)` returns one Finding per claim and case
(e.g. per toy function): what was measured, the per-FLOP view the paper does not give, and a
verdict that is one of reproduced / not reproduced / inconclusive, computed, never typed in.

CLI: python -m analysis.claims RESULTS_ROOT --out DIR [--n-boot N] [--seed S]
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional, Sequence

import numpy as np
import pandas as pd

from analysis.errors import FitError
from analysis.fit import FitResult, fit_scaling_law
from analysis.frontier import pareto_frontier, usable

REPRODUCED, NOT_REPRODUCED, INCONCLUSIVE = "reproduced", "not reproduced", "inconclusive"
TOY_TASKS = ("toy_bessel", "toy_exp_sin", "toy_xy", "toy_exp_sin100", "toy_exp_sin4")
MAX_CI_WIDTH = 2.0  # an exponent interval wider than this cannot tell N^-4 from N^-2
RMSE_TARGET = 1e-2  # claim 4: the smallest model reaching this test RMSE


@dataclass(frozen=True)
class Finding:
    claim: str  # claim id, e.g. "1"
    case: str  # what it was measured on, e.g. the task
    measured: str
    per_flop: str
    verdict: str
    why: str  # the rule's reason for the verdict
    numbers: Dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class Claim:
    id: str
    paper_says: str  # quoted or closely paraphrased from the paper, with its section
    experiments: Sequence[str]  # experiment names whose results test it (full and quick)
    metric: str
    rule: str  # the verdict rule, in words
    evaluate: Callable[["Claim", pd.DataFrame, pd.DataFrame, int, int], List[Finding]]


def _rows(table: pd.DataFrame, claim: Claim) -> pd.DataFrame:
    return table[table["experiment"].isin(list(claim.experiments))]


def _fit(rows: pd.DataFrame, x: str, loss: str, n_boot: int, seed: int) -> Optional[FitResult]:
    points, _ = usable(rows, x, loss)
    points = pareto_frontier(points, x, loss)
    try:
        return fit_scaling_law(points[x].to_numpy(float), points[loss].to_numpy(float),
                               n_boot=n_boot, seed=seed)
    except FitError:
        return None


def _alpha_text(fit: Optional[FitResult]) -> str:
    if fit is None:
        return "no fit (too few points)"
    a = fit.params["alpha"]
    return f"alpha={a.estimate:.2f} [{a.ci_low:.2f}, {a.ci_high:.2f}] ({fit.n_points} pts)"


def _exponent_verdict(fit: Optional[FitResult], target: float) -> tuple:
    if fit is None or fit.n_points < 3:
        return INCONCLUSIVE, "fewer than 3 frontier points"
    a = fit.params["alpha"]
    if not (math.isfinite(a.ci_low) and math.isfinite(a.ci_high)) or a.ci_high - a.ci_low > MAX_CI_WIDTH:
        return INCONCLUSIVE, f"95% CI wider than {MAX_CI_WIDTH:g}"
    if a.ci_low <= target <= a.ci_high:
        return REPRODUCED, f"95% CI contains {target:g}"
    return NOT_REPRODUCED, f"95% CI excludes {target:g}"


def check_kan_exponent(loss: str) -> Callable:
    """Claim 1: KAN frontier exponent of loss vs n_params is 4 (k = 3), per toy function."""
    def evaluate(claim, runs, stages, n_boot, seed):
        rows = _rows(stages, claim)
        out = []
        for task in [t for t in TOY_TASKS if t in set(rows["task"])]:
            kan = rows[(rows["task"] == task) & (rows["family"] == "kan")]
            fit = _fit(kan, "n_params", loss, n_boot, seed)
            by_flops = _fit(kan, "flops_forward", loss, n_boot, seed)
            verdict, why = _exponent_verdict(fit, 4.0)
            out.append(Finding(claim.id, task, f"KAN {loss} vs params: {_alpha_text(fit)}",
                               f"KAN vs FLOPs: {_alpha_text(by_flops)}", verdict, why,
                               _alpha_numbers(fit)))
        return out
    return evaluate


def _alpha_numbers(fit: Optional[FitResult]) -> Dict[str, float]:
    if fit is None:
        return {}
    a = fit.params["alpha"]
    return {"alpha": a.estimate, "ci_low": a.ci_low, "ci_high": a.ci_high, "n_points": fit.n_points}


def check_per_flop_scaling(claim, runs, stages, n_boot, seed) -> List[Finding]:
    """Claim 2: does the KAN's faster scaling survive counting FLOPs? KAN vs MLP exponents."""
    rows = _rows(stages, claim)
    out = []
    for task in [t for t in TOY_TASKS if t in set(rows["task"])]:
        fits = {(family, x): _fit(rows[(rows["task"] == task) & (rows["family"] == family)], x,
                                  "test_rmse", n_boot, seed)
                for family in ("kan", "mlp") for x in ("n_params", "flops_forward", "wall_time_s")}
        kan, mlp = fits[("kan", "flops_forward")], fits[("mlp", "flops_forward")]
        if kan is None or mlp is None or min(kan.n_points, mlp.n_points) < 3:
            # two points fit a 2-parameter law exactly: their bootstrap interval means nothing
            verdict, why = INCONCLUSIVE, "a family has fewer than 3 frontier points"
        else:
            k, m = kan.params["alpha"], mlp.params["alpha"]
            if k.ci_low > m.ci_high:
                verdict, why = REPRODUCED, "KAN exponent per FLOP above the MLP's (CIs disjoint)"
            elif k.ci_high < m.ci_low:
                verdict, why = NOT_REPRODUCED, "KAN exponent per FLOP below the MLP's (CIs disjoint)"
            else:
                verdict, why = INCONCLUSIVE, "the two 95% CIs overlap"
        measured = (f"per param: KAN {_alpha_text(fits[('kan', 'n_params')])}; "
                    f"MLP {_alpha_text(fits[('mlp', 'n_params')])}")
        per_flop = (f"per FLOP: KAN {_alpha_text(kan)}; MLP {_alpha_text(mlp)}; per second: KAN "
                    f"{_alpha_text(fits[('kan', 'wall_time_s')])}; MLP "
                    f"{_alpha_text(fits[('mlp', 'wall_time_s')])}")
        out.append(Finding(claim.id, task, measured, per_flop, verdict, why))
    return out


def check_pde(claim, runs, stages, n_boot, seed) -> List[Finding]:
    """Claim 3: KAN [2,10,1] vs the 4-layer width-100 MLP on Poisson: l2 error ratio >= 100."""
    rows = usable(_rows(stages, claim), "n_params", "metrics.l2_sq")[0] if "metrics.l2_sq" in stages else stages.iloc[:0]
    kan = rows[(rows["family"] == "kan") & (rows["widths"] == "2-10-1")]
    mlp = rows[(rows["family"] == "mlp") & (rows["widths"] == "2-100-100-100-1")]
    if kan.empty or mlp.empty:
        return [Finding(claim.id, "pde_poisson", "missing KAN [2,10,1] or MLP [2,100,100,100,1] runs",
                        "-", INCONCLUSIVE, "runs missing")]
    best_kan = kan.loc[kan["metrics.l2_sq"].idxmin()]
    best_mlp = mlp.loc[mlp["metrics.l2_sq"].idxmin()]
    per_seed_kan = kan.groupby("seed")["metrics.l2_sq"].min()
    per_seed_mlp = mlp.groupby("seed")["metrics.l2_sq"].min()
    ratios = np.array([m / k for m in per_seed_mlp for k in per_seed_kan])
    ratio = best_mlp["metrics.l2_sq"] / best_kan["metrics.l2_sq"]
    if len(ratios) > 1 and ratios.min() < 100 <= ratios.max():
        verdict, why = INCONCLUSIVE, f"per-seed ratios {ratios.min():.3g}..{ratios.max():.3g} straddle 100"
    elif ratio >= 100:
        verdict, why = REPRODUCED, f"MLP/KAN l2 error ratio {ratio:.3g} >= 100"
    else:
        verdict, why = NOT_REPRODUCED, f"MLP/KAN l2 error ratio {ratio:.3g} < 100"
    measured = (f"l2_sq KAN {best_kan['metrics.l2_sq']:.2e} ({int(best_kan['n_params'])} params, "
                f"G={int(best_kan['grid'])}) vs MLP {best_mlp['metrics.l2_sq']:.2e} "
                f"({int(best_mlp['n_params'])} params); params ratio "
                f"{best_mlp['n_params'] / best_kan['n_params']:.3g}")
    per_flop = (f"FLOPs/example KAN {int(best_kan['flops_forward'])} vs MLP "
                f"{int(best_mlp['flops_forward'])} (ratio {best_mlp['flops_forward'] / best_kan['flops_forward']:.3g}); "
                f"train s KAN {best_kan['wall_time_s']:.1f} vs MLP {best_mlp['wall_time_s']:.1f}")
    return [Finding(claim.id, "pde_poisson", measured, per_flop, verdict, why,
                    {"l2_ratio": float(ratio)})]


def _smallest_reaching(rows: pd.DataFrame, x: str) -> Optional[pd.Series]:
    hit = rows[rows["test_rmse"] < RMSE_TARGET]
    return None if hit.empty else hit.loc[hit[x].idxmin()]


def _dominates(front_a: pd.DataFrame, front_b: pd.DataFrame, x: str) -> bool:
    """Every point of front_b is matched or beaten by a point of front_a (no more x, no more loss)."""
    return all(((front_a[x] <= px) & (front_a["test_rmse"] <= pl)).any()
               for px, pl in zip(front_b[x], front_b["test_rmse"]))


def check_fronts(claim, runs, stages, n_boot, seed) -> List[Finding]:
    """Claim 4: per function, smallest KAN/MLP reaching RMSE < 1e-2, and front domination counts."""
    rows = usable(_rows(stages, claim), "n_params", "test_rmse")[0]
    counts = {x: {"kan": 0, "mlp": 0, "n": 0} for x in ("n_params", "flops_forward")}
    smaller, lines = {"kan": 0, "mlp": 0, "n": 0}, []
    for task, group in rows.groupby("task"):
        by_family = {f: group[group["family"] == f] for f in ("kan", "mlp")}
        if any(g.empty for g in by_family.values()):
            continue
        for x, c in counts.items():
            fronts = {f: pareto_frontier(g, x, "test_rmse") for f, g in by_family.items()}
            c["n"] += 1
            c["kan"] += _dominates(fronts["kan"], fronts["mlp"], x)
            c["mlp"] += _dominates(fronts["mlp"], fronts["kan"], x)
        best = {f: _smallest_reaching(g, "n_params") for f, g in by_family.items()}
        smaller["n"] += 1
        if best["kan"] is not None and (best["mlp"] is None or best["kan"]["n_params"] < best["mlp"]["n_params"]):
            smaller["kan"] += 1
        elif best["mlp"] is not None:
            smaller["mlp"] += 1
        lines.append((task, best))
    if smaller["n"] < 3:
        return [Finding(claim.id, ", ".join(claim.experiments), "fewer than 3 functions with both families",
                        "-", INCONCLUSIVE, "too few functions")]
    p, f = counts["n_params"], counts["flops_forward"]
    decided = smaller["kan"] + smaller["mlp"]  # functions where some model reached the target
    if decided < 3 or smaller["kan"] == smaller["mlp"]:
        verdict = INCONCLUSIVE
    else:
        verdict = REPRODUCED if smaller["kan"] > smaller["mlp"] else NOT_REPRODUCED
    why = (f"the smallest model reaching RMSE < {RMSE_TARGET:g} is a KAN on {smaller['kan']} and an "
           f"MLP on {smaller['mlp']} of {smaller['n']} functions (neither: {smaller['n'] - decided})")
    measured = (f"KAN front dominates MLP front per parameter on {p['kan']}/{p['n']} functions, MLP "
                f"dominates on {p['mlp']}/{p['n']}")
    per_flop = f"per FLOP: KAN dominates on {f['kan']}/{f['n']}, MLP on {f['mlp']}/{f['n']}"
    finding = Finding(claim.id, "all functions", measured, per_flop, verdict, why,
                      {"kan_smaller": smaller["kan"], "n_functions": smaller["n"]})
    return [finding] + [_smallest_finding(claim, task, best) for task, best in lines]


def _smallest_finding(claim: Claim, task: str, best: Dict[str, Optional[pd.Series]]) -> Finding:
    def text(f):
        b = best[f]
        return "none" if b is None else f"{int(b['n_params'])} params / {int(b['flops_forward'])} FLOPs"
    kan, mlp = best["kan"], best["mlp"]
    if kan is None and mlp is None:
        verdict, why = INCONCLUSIVE, f"neither reached RMSE < {RMSE_TARGET:g}"
    elif mlp is None or (kan is not None and kan["n_params"] < mlp["n_params"]):
        verdict, why = REPRODUCED, "the KAN reaching the target is smaller"
    else:
        verdict, why = NOT_REPRODUCED, "the MLP reaching the target is as small or smaller"
    flop_winner = ("-" if kan is None or mlp is None else
                   ("KAN" if kan["flops_forward"] < mlp["flops_forward"] else "MLP") + " fewer FLOPs")
    return Finding(claim.id, task, f"smallest to RMSE<{RMSE_TARGET:g}: KAN {text('kan')}, MLP {text('mlp')}",
                   flop_winner, verdict, why)


def check_forgetting(claim, runs, stages, n_boot, seed) -> List[Finding]:
    """Claim 5: after the last region, KAN error on earlier regions stays small; MLP's does not."""
    rows = _rows(runs, claim)
    rows = rows[rows["status"] == "done"]
    if "metrics.forgetting" not in rows or rows.empty:
        return [Finding(claim.id, "continual_peaks", "no continual runs", "-", INCONCLUSIVE, "runs missing")]
    by = {f: rows[rows["family"] == f]["metrics.forgetting"].dropna() for f in ("kan", "mlp")}
    if by["kan"].empty or by["mlp"].empty:
        return [Finding(claim.id, "continual_peaks", "a family is missing", "-", INCONCLUSIVE, "runs missing")]
    kan_worst, mlp_best = by["kan"].max(), by["mlp"].min()
    if kan_worst < mlp_best and kan_worst < 0.1:
        verdict, why = REPRODUCED, "every KAN forgets less than every MLP, and below 0.1 RMSE"
    elif kan_worst >= mlp_best and by["kan"].min() >= mlp_best:
        verdict, why = NOT_REPRODUCED, "the KANs forget as much as an MLP"
    else:
        verdict, why = INCONCLUSIVE, "the families overlap"
    flops = {f: int(rows[rows["family"] == f]["flops_forward"].min()) for f in ("kan", "mlp")}
    measured = (f"forgetting (RMSE on earlier regions after the last): KAN {kan_worst:.3g} (worst of "
                f"{len(by['kan'])}), MLP {mlp_best:.3g} (best of {len(by['mlp'])})")
    return [Finding(claim.id, "continual_peaks", measured,
                    f"FLOPs/example: KAN {flops['kan']}, smallest MLP {flops['mlp']}", verdict, why)]


CLAIMS: List[Claim] = [
    Claim("1", "§3.1: KAN test RMSE scales as N^-4 with cubic splines (k = 3)",
          ("toy_scaling", "toy_scaling_quick"), "test_rmse vs n_params, KAN frontier",
          f"reproduced if the 95% CI of alpha contains 4; inconclusive if < 3 frontier points or "
          f"the CI is wider than {MAX_CI_WIDTH:g}; else not reproduced",
          check_kan_exponent("test_rmse")),
    Claim("1m", "§3.1: the median error reaches the N^-4 slope (the RMSE ~ N^-3)",
          ("toy_scaling", "toy_scaling_quick"), "median |f - f*| vs n_params, KAN frontier",
          "as claim 1, on test_median_abs_error", check_kan_exponent("test_median_abs_error")),
    Claim("2", "§3.1 (per-FLOP view, not in the paper): KANs scale faster than MLPs",
          ("toy_scaling", "toy_scaling_quick"), "alpha vs flops_forward, KAN and MLP frontiers",
          "reproduced if the KAN's alpha CI lies above the MLP's; not if below; inconclusive if "
          "they overlap or a family has < 3 frontier points",
          check_per_flop_scaling),
    Claim("3", "§3.4: a 2-layer width-10 KAN is 100x more accurate than a 4-layer width-100 MLP "
               "(1e-7 vs 1e-5 MSE) and 100x more parameter efficient (1e2 vs 1e4)",
          ("pde_poisson", "pde_poisson_quick"), "l2_sq vs the exact solution",
          "reproduced if MLP/KAN l2_sq >= 100; inconclusive if per-seed ratios straddle 100",
          check_pde),
    Claim("4", "§3.2: on special functions KAN Pareto fronts (params, RMSE) lie below MLPs'",
          ("special_functions", "special_functions_quick"), "test_rmse fronts",
          "reproduced if the smallest model reaching RMSE < 1e-2 is a KAN on more functions than it is "
          "an MLP; inconclusive on a tie or < 3 functions reached",
          check_fronts),
    Claim("4f", "§3.3: on Feynman equations KANs are more parameter efficient than MLPs",
          ("feynman", "feynman_quick"), "test_rmse fronts", "as claim 4", check_fronts),
    Claim("5", "§3.5: KANs avoid catastrophic forgetting; MLPs forget",
          ("continual", "continual_quick"), "RMSE on earlier regions after the last stage",
          "reproduced if every KAN forgets less than every MLP and below 0.1", check_forgetting),
]


def evaluate_all(runs: pd.DataFrame, stages: pd.DataFrame, n_boot: int = 1000, seed: int = 0,
                 progress: Callable[[str], None] = lambda message: None) -> List[Finding]:
    findings: List[Finding] = []
    for claim in CLAIMS:
        if _rows(runs, claim).empty:
            findings.append(Finding(claim.id, "-", f"no runs of {' / '.join(claim.experiments)}",
                                    "-", INCONCLUSIVE, "experiment not run"))
        else:
            findings.extend(claim.evaluate(claim, runs, stages, n_boot, seed))
        progress(f"claim {claim.id}: {findings[-1].verdict}")
    return findings


if __name__ == "__main__":
    from analysis.claims_report import main

    raise SystemExit(main())
