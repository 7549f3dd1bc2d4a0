"""The KAN paper's claims, and Yu et al.'s critique of them, as data, each checked against the results table.

A claim is a sentence from Liu et al. 2024 (arXiv 2404.19756) or, for claims Y1-Y3, from Yu et al.
2024 (arXiv 2407.16674: MLPs ahead on tables and vision, KANs only on symbolic formulas, and an
MLP with B-spline activations closing that gap), the experiments that test it, the
metric, and a verdict rule. `evaluate_all(runs, stages)` returns one Finding per claim and case
(e.g. per toy function): what was measured, and two computed verdicts (never typed in): per
parameter (the paper's axis) and per forward FLOP (a view the paper does not give), the latter
under our FLOP convention and Yu et al.'s, with a line when the two conventions disagree. A verdict
is reproduced / not reproduced / inconclusive / too few points (fewer than 4 sizes) / not in the
scaling regime. Fits and front ratios are computed once in a ClaimFits and shared with the figures.

CLI: python -m analysis.claims RESULTS_ROOT --out DIR [--n-boot N] [--seed S]
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional, Sequence

import numpy as np
import pandas as pd

from analysis.exchange import MEASURED, TOO_FEW as CMP_TOO_FEW, FrontComparison, compare_fronts
from analysis.fit_range import regime_check
from analysis.fit_table import N_BOOT, FitSet, GroupFit, compute_fits, group_seed
from analysis.frontier import usable
from analysis.laws import MIN_SIZES
from analysis.metrics import primary_loss, words

REPRODUCED, NOT_REPRODUCED, INCONCLUSIVE = "reproduced", "not reproduced", "inconclusive"
TOO_FEW, NOT_SCALING, NO_VIEW = "too few points", "not in the scaling regime", "-"
VERDICTS = (REPRODUCED, NOT_REPRODUCED, INCONCLUSIVE, TOO_FEW, NOT_SCALING)
TOY_TASKS = ("toy_bessel", "toy_exp_sin", "toy_xy", "toy_exp_sin100", "toy_exp_sin4")
MAX_CI_WIDTH = 2.0  # an exponent interval wider than this cannot tell N^-4 from N^-2
# The two per-FLOP conventions, both record columns: ours (harness/counting.py) and Yu et al. 2024
# (arXiv 2407.16674, "KAN or MLP: A Fairer Comparison"), which counts the basis once per edge.
FLOP_CONVENTIONS = {"ours": "flops_forward", "Yu et al.": "flops_forward_yu2024"}
TRAIN_FLOPS_YU = "train_flops_yu2024"  # derived column, see with_yu_train_flops


@dataclass(frozen=True)
class Finding:
    """One claim on one case. `verdict` is the per-parameter view (the paper's own axis);
    `flop_verdict` the per-FLOP view under our convention, `flop_verdict_yu` under Yu et al.'s
    ("-" where a claim has no per-FLOP view); `convention` says whether the two agree."""
    claim: str  # claim id, e.g. "1"
    case: str  # what it was measured on, e.g. the task
    measured: str
    per_flop: str
    verdict: str
    why: str  # the rule's reason for the verdict
    numbers: Dict[str, float] = field(default_factory=dict)
    flop_verdict: str = NO_VIEW
    flop_why: str = ""
    flop_verdict_yu: str = NO_VIEW
    convention: str = ""


@dataclass(frozen=True)
class Claim:
    id: str
    paper_says: str  # quoted or closely paraphrased from the paper, with its section
    experiments: Sequence[str]  # experiment names whose results test it (full, medium, quick)
    metric: str
    rule: str  # the verdict rule, in words
    evaluate: Callable[["Claim", "ClaimFits"], List[Finding]]


def with_yu_train_flops(stages: pd.DataFrame) -> pd.DataFrame:
    """Add train_flops_yu2024: the same optimizer passes counted at Yu et al.'s cost per example
    (train_flops x flops_forward_yu2024 / flops_forward; both conventions price backward alike)."""
    if stages.empty or not {"train_flops", "flops_forward", "flops_forward_yu2024"} <= set(stages):
        return stages.assign(**{TRAIN_FLOPS_YU: np.nan})
    ratio = stages["flops_forward_yu2024"].astype(float) / stages["flops_forward"].astype(float)
    return stages.assign(**{TRAIN_FLOPS_YU: stages["train_flops"].astype(float) * ratio})


def convention_line(ours: str, yu: str) -> str:
    """The sentence on whether a per-FLOP verdict depends on the FLOP convention."""
    if ours == NO_VIEW:
        return ""
    if ours == yu:
        return f"same under both FLOP conventions ({ours})"
    return f"depends on the FLOP convention: {ours} with ours, {yu} with Yu et al.'s"


# ----------------------------------------------------------------------------------------------
# Fits and front comparisons, each computed once and shared by verdicts, figures and claims.json.

def front_verdict(comparison: FrontComparison) -> tuple:
    """A front comparison's verdict: KAN front below (interval under 1) -> reproduced, above ->
    not reproduced, interval containing 1 -> inconclusive; too few sizes -> too few points."""
    why = comparison.reason or comparison.status
    if comparison.status == CMP_TOO_FEW or (comparison.reason or "").startswith("too few"):
        return TOO_FEW, why
    if comparison.status != MEASURED:
        return INCONCLUSIVE, why
    if not comparison.has_interval:
        return INCONCLUSIVE, f"no interval: {comparison.reason}"
    below = comparison.a_below
    if below is None:
        return INCONCLUSIVE, "the 95% interval of the front ratio contains 1"
    a, b = family_name(comparison.a), family_name(comparison.b)
    return ((REPRODUCED, f"{a} front below the {b} front (95% interval under 1)") if below else
            (NOT_REPRODUCED, f"{a} front above the {b} front (95% interval over 1)"))


def family_name(family: str) -> str:
    """A family as the report writes it: KAN, MLP, spline MLP, RBF KAN, ..."""
    return FAMILY_NAMES.get(family, family)


FAMILY_NAMES = {"kan": "KAN", "mlp": "MLP", "spline_mlp": "spline MLP", "rbf_kan": "RBF KAN",
                "cheby_kan": "Chebyshev KAN", "fourier_kan": "Fourier KAN"}


def front_text(comparison: FrontComparison) -> str:
    """"loss KAN/MLP 0.31 [0.29, 0.33] over n_params 40..640" or why there is no number (a loss
    other than the test RMSE is named in words: "test error rate MLP/KAN ...")."""
    loss = "loss" if comparison.loss == "test_rmse" else words(comparison.loss)
    pair = f"{loss} {family_name(comparison.a)}/{family_name(comparison.b)}"
    if comparison.status != MEASURED:
        return f"{pair}: {comparison.status}" + (f" ({comparison.reason})" if comparison.reason else "")
    ci = (f"[{comparison.ci_low:.3g}, {comparison.ci_high:.3g}]" if comparison.has_interval
          else "(no interval)")
    return (f"{pair} {comparison.ratio:.3g} {ci} over {axis_words(comparison.x)} "
            f"{comparison.x_low:.3g}..{comparison.x_high:.3g}")


def axis_words(column: str) -> str:
    return {"n_params": "parameters", "flops_forward": "forward FLOPs",
            "flops_forward_yu2024": "forward FLOPs (Yu et al.)", "train_flops": "training FLOPs",
            TRAIN_FLOPS_YU: "training FLOPs (Yu et al.)"}.get(column, column)


class ClaimFits:
    """Every fit (analysis.fit_table.FitSet) and front comparison (analysis.exchange.compare_fronts)
    the claims use, computed once per (experiments, x, loss) and reused by the verdicts, the figures
    and claims.json, so all three show the same numbers."""

    def __init__(self, runs: pd.DataFrame, stages: pd.DataFrame, n_boot: int = N_BOOT, seed: int = 0):
        self.runs, self.stages = runs, with_yu_train_flops(stages)
        self.n_boot, self.seed = n_boot, seed
        self._fits: Dict[tuple, FitSet] = {}
        self._fronts: Dict[tuple, FrontComparison] = {}

    def rows(self, claim: "Claim", table: Optional[pd.DataFrame] = None) -> pd.DataFrame:
        table = self.stages if table is None else table
        return table[table["experiment"].isin(list(claim.experiments))]

    def fits(self, claim: "Claim", x: str, loss: str = "test_rmse") -> Optional[FitSet]:
        key = (tuple(claim.experiments), x, loss)
        if key not in self._fits:
            rows = self.rows(claim)
            self._fits[key] = (None if rows.empty or x not in rows or loss not in rows else
                               compute_fits(rows, xs=(x,), loss=loss, by=("family", "task"),
                                            n_boot=self.n_boot, seed=self.seed))
        return self._fits[key]

    def fit(self, claim: "Claim", family: str, task: str, x: str, loss: str = "test_rmse"
            ) -> Optional[GroupFit]:
        found = self.fits(claim, x, loss)
        return None if found is None else found.get(x, family=family, task=task)

    def front(self, claim: "Claim", task: str, x: str, loss: str = "test_rmse", a: str = "kan",
              b: str = "mlp") -> FrontComparison:
        """Family a's front against family b's on one task, at matched x (loss a / loss b)."""
        key = (tuple(claim.experiments), task, x, loss, a, b)
        if key not in self._fronts:
            rows = self.rows(claim)
            rows = rows[rows["task"] == task]
            keys = {"task": task} if (a, b) == ("kan", "mlp") else {"task": task, "pair": f"{a}/{b}"}
            self._fronts[key] = compare_fronts(
                rows[rows["family"] == a], rows[rows["family"] == b], x=x, loss=loss, a=a, b=b,
                n_boot=self.n_boot, seed=group_seed(self.seed, keys, x),
                strata="n_params" if x in ("train_flops", TRAIN_FLOPS_YU) else None)
        return self._fronts[key]

    def regime(self, claim: "Claim", task: str, loss: str = "test_rmse") -> tuple:
        """(NOT_SCALING, why) when a family's curve on the task fails the scaling-regime guard
        (analysis.fit_range.regime_check), else ("", "")."""
        rows = self.rows(claim)
        for family in ("kan", "mlp"):
            regime = regime_check(usable(rows[(rows["task"] == task) & (rows["family"] == family)],
                                         "n_params", loss)[0], loss)
            if not regime.in_regime:
                return NOT_SCALING, f"{family}: {regime.reason}"
        return "", ""

    def all_fronts(self) -> List[dict]:
        return [{"experiments": list(k[0]), "task": k[1], **v.to_dict()} for k, v in self._fronts.items()]

    def all_fits(self) -> List[dict]:
        return [{"experiments": list(k[0]), **g.to_dict()}
                for k, found in self._fits.items() if found is not None for g in found]


# ----------------------------------------------------------------------------------------------
# Exponent verdicts

def n_sizes(group: Optional[GroupFit]) -> int:
    """Distinct sizes among the points a fit used."""
    return 0 if group is None or group.data.empty else int(group.data[group.x].nunique())


def fit_state(group: Optional[GroupFit]) -> tuple:
    """(state, why) before any rule: TOO_FEW or NOT_SCALING (analysis.fit_table's status), or
    ("", "") when the fit is verdict-ready (an interval from at least MIN_SIZES sizes)."""
    if group is None:
        return TOO_FEW, "no runs"
    if group.status == NOT_SCALING:
        return NOT_SCALING, group.reason or NOT_SCALING
    if not group.verdict_ready or n_sizes(group) < MIN_SIZES:
        return TOO_FEW, group.reason or f"{n_sizes(group)} sizes (a verdict needs {MIN_SIZES})"
    return "", ""


def alpha_text(group: Optional[GroupFit]) -> str:
    state, _ = fit_state(group)
    if state:
        return state
    a = group.fit.params["alpha"]
    return f"alpha {a.estimate:.2f} [{a.ci_low:.2f}, {a.ci_high:.2f}] ({n_sizes(group)} sizes)"


def exponent_verdict(group: Optional[GroupFit], target: float) -> tuple:
    state, why = fit_state(group)
    if state:
        return state, why
    a = group.fit.params["alpha"]
    if not (math.isfinite(a.ci_low) and math.isfinite(a.ci_high)) or a.ci_high - a.ci_low > MAX_CI_WIDTH:
        return INCONCLUSIVE, f"95% interval of alpha wider than {MAX_CI_WIDTH:g}"
    if a.ci_low <= target <= a.ci_high:
        return REPRODUCED, f"95% interval of alpha contains {target:g}"
    return NOT_REPRODUCED, f"95% interval of alpha excludes {target:g}"


def faster_verdict(kan: Optional[GroupFit], mlp: Optional[GroupFit]) -> tuple:
    """KAN exponent above the MLP's with disjoint 95% intervals."""
    for group in (kan, mlp):
        state, why = fit_state(group)
        if state:
            return state, f"{group.keys['family'] if group else 'a family'}: {why}"
    k, m = kan.fit.params["alpha"], mlp.fit.params["alpha"]
    if k.ci_low > m.ci_high:
        return REPRODUCED, "KAN exponent above the MLP's (95% intervals disjoint)"
    if k.ci_high < m.ci_low:
        return NOT_REPRODUCED, "KAN exponent below the MLP's (95% intervals disjoint)"
    return INCONCLUSIVE, "the two 95% intervals overlap"


def alpha_numbers(group: Optional[GroupFit]) -> Dict[str, float]:
    if fit_state(group)[0]:
        return {"n_sizes": n_sizes(group)}
    a = group.fit.params["alpha"]
    return {"alpha": a.estimate, "ci_low": a.ci_low, "ci_high": a.ci_high, "n_sizes": n_sizes(group)}


def _tasks(claim: "Claim", book: ClaimFits, only: Optional[Sequence[str]] = None) -> List[str]:
    present = sorted(set(book.rows(claim)["task"].dropna()))
    return [t for t in (only or present) if t in present]


def _flop_finding_parts(verdicts: Dict[str, tuple]) -> Dict[str, str]:
    ours, yu = verdicts["ours"], verdicts["Yu et al."]
    return dict(flop_verdict=ours[0], flop_why=ours[1], flop_verdict_yu=yu[0],
                convention=convention_line(ours[0], yu[0]))


def check_kan_exponent(loss: str) -> Callable:
    """Claim 1: KAN frontier exponent of loss vs n_params is 4 (k = 3), per toy function; the
    per-FLOP view applies the same rule to the exponent vs forward FLOPs, in both conventions."""
    def evaluate(claim, book):
        out = []
        for task in _tasks(claim, book, TOY_TASKS):
            fit = book.fit(claim, "kan", task, "n_params", loss)
            by_flops = {name: book.fit(claim, "kan", task, column, loss)
                        for name, column in FLOP_CONVENTIONS.items()}
            verdict, why = exponent_verdict(fit, 4.0)
            flop = {name: exponent_verdict(g, 4.0) for name, g in by_flops.items()}
            out.append(Finding(claim.id, task, f"KAN vs parameters: {alpha_text(fit)}",
                               "; ".join(f"KAN vs FLOPs ({name}): {alpha_text(g)}"
                                         for name, g in by_flops.items()),
                               verdict, why, alpha_numbers(fit), **_flop_finding_parts(flop)))
        return out
    return evaluate


def check_per_flop_scaling(claim, book) -> List[Finding]:
    """Claim 2: KANs scale faster than MLPs (KAN exponent above the MLP's), per parameter and per
    forward FLOP in both conventions."""
    out = []
    for task in _tasks(claim, book, TOY_TASKS):
        def both(x):
            return book.fit(claim, "kan", task, x), book.fit(claim, "mlp", task, x)
        per_param = both("n_params")
        verdict, why = faster_verdict(*per_param)
        flop = {name: faster_verdict(*both(column)) for name, column in FLOP_CONVENTIONS.items()}
        measured = f"KAN {alpha_text(per_param[0])}; MLP {alpha_text(per_param[1])}"
        per_flop = "; ".join(f"{name}: KAN {alpha_text(both(column)[0])}, MLP {alpha_text(both(column)[1])}"
                             for name, column in FLOP_CONVENTIONS.items())
        out.append(Finding(claim.id, task, measured, per_flop, verdict, why,
                           **_flop_finding_parts(flop)))
    return out


def check_matched_work(claim, book) -> List[Finding]:
    """Claim 2w: at equal parameters and at equal training FLOPs (matched work), the KAN front lies
    below the MLP front, per toy function."""
    out = []
    for task in _tasks(claim, book, TOY_TASKS):
        by_params = book.front(claim, task, "n_params")
        work = {"ours": book.front(claim, task, "train_flops"),
                "Yu et al.": book.front(claim, task, TRAIN_FLOPS_YU)}
        out.append(_front_finding(claim, book, task, by_params, work))
    return out


def _front_finding(claim: "Claim", book: ClaimFits, task: str, by_params: FrontComparison,
                   by_flops: Dict[str, FrontComparison]) -> Finding:
    """One function's front comparison: per parameter, and per FLOP under each convention; a curve
    outside the scaling regime gets that verdict instead of a comparison."""
    regime = book.regime(claim, task)
    verdict, why = regime if regime[0] else front_verdict(by_params)
    flop = {k: regime if regime[0] else front_verdict(r) for k, r in by_flops.items()}
    return Finding(claim.id, task, front_text(by_params),
                   "; ".join(f"{name}: {front_text(r)}" for name, r in by_flops.items()), verdict,
                   why, _ratio_numbers(by_params), **_flop_finding_parts(flop))


def _ratio_numbers(comparison: FrontComparison) -> Dict[str, float]:
    return {"ratio": comparison.ratio, "ci_low": comparison.ci_low, "ci_high": comparison.ci_high}


def check_pde(claim, book) -> List[Finding]:
    """Claim 3: KAN [2,10,1] vs the 4-layer width-100 MLP on Poisson: l2 error ratio >= 100."""
    stages = book.stages
    rows = (usable(book.rows(claim), "n_params", "metrics.l2_sq")[0] if "metrics.l2_sq" in stages
            else stages.iloc[:0])
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
                f"training CPU s KAN {best_kan['cpu_time_s']:.1f} vs MLP {best_mlp['cpu_time_s']:.1f}")
    return [Finding(claim.id, "pde_poisson", measured, per_flop, verdict, why,
                    {"l2_ratio": float(ratio)})]


def check_fronts(claim, book) -> List[Finding]:
    """Claims 4/4f: per function, the KAN/MLP front ratio at matched parameters (the paper's view)
    and at matched forward FLOPs (both conventions); then the majority over functions."""
    per_task = []
    for task in _tasks(claim, book):
        rows = book.rows(claim)
        families = set(rows[rows["task"] == task]["family"])
        if not {"kan", "mlp"} <= families:
            continue
        by_params = book.front(claim, task, "n_params")
        by_flops = {name: book.front(claim, task, column) for name, column in FLOP_CONVENTIONS.items()}
        per_task.append(_front_finding(claim, book, task, by_params, by_flops))
    if not per_task:
        return [Finding(claim.id, "all functions", "no function with both KAN and MLP runs", NO_VIEW,
                        TOO_FEW, "no function has both families")]
    flop = {"ours": majority([f.flop_verdict for f in per_task]),
            "Yu et al.": majority([f.flop_verdict_yu for f in per_task])}
    verdict, why = majority([f.verdict for f in per_task])
    summary = Finding(claim.id, "all functions", f"per parameter: {count_text([f.verdict for f in per_task])}",
                      f"per FLOP (ours): {count_text([f.flop_verdict for f in per_task])}", verdict, why,
                      {"n_functions": len(per_task),
                       "kan_below": sum(f.verdict == REPRODUCED for f in per_task)},
                      **_flop_finding_parts(flop))
    return [summary] + per_task


def count_text(verdicts: Sequence[str]) -> str:
    counts = {v: list(verdicts).count(v) for v in VERDICTS}
    return ", ".join(f"{n} {v}" for v, n in counts.items() if n) or "none"


def majority(verdicts: Sequence[str], why_format: str = "KAN front below on {yes} of {n} "
             "functions, above on {no}", cases: str = "functions") -> tuple:
    """Reproduced when the KAN front is below (interval excluding 1) on a majority of functions;
    not reproduced when no majority is possible even if every undecided function went the KAN's
    way; inconclusive in between. Fewer than 3 functions with a ratio: too few points (not in the
    scaling regime when that is why on most functions). Other claims (Yu et al.'s) pass their
    own wording of the count (why_format with yes, no, n) and of the cases."""
    n = len(verdicts)
    below = sum(v == REPRODUCED for v in verdicts)
    against = sum(v == NOT_REPRODUCED for v in verdicts)
    measured = sum(v in (REPRODUCED, NOT_REPRODUCED, INCONCLUSIVE) for v in verdicts)
    why = why_format.format(yes=below, no=against, n=n)
    if measured < 3:
        outside = sum(v == NOT_SCALING for v in verdicts)
        return (NOT_SCALING if outside > n / 2 else TOO_FEW,
                f"{measured} {cases} with a front ratio (the majority rule needs 3)"
                + (f"; {outside} not in the scaling regime" if outside else ""))
    if below > n / 2:
        return REPRODUCED, why
    if n - against <= n / 2:  # even with every undecided function: no KAN majority
        return NOT_REPRODUCED, why
    return INCONCLUSIVE, why


def check_forgetting(claim, book) -> List[Finding]:
    """Claim 5: after the last region, KAN error on earlier regions stays small; MLP's does not."""
    rows = book.rows(claim, book.runs)
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


# ----------------------------------------------------------------------------------------------
# Yu et al. 2024 ("KAN or MLP: A Fairer Comparison", arXiv 2407.16674): families at matched
# parameters and matched forward FLOPs (the fair_comparison experiments, harness/matching.py).
# Each task is judged on its own loss-like metric (analysis.metrics.primary_loss: the test error
# rate on classification tasks, the test RMSE on regression ones). The scaling-regime guard of the
# KAN paper's claims does not apply: these claims compare two families at equal budgets, not a
# slope, and a noisy table (diabetes) never reaches 10% of its target's spread.
ML_TASKS = ("table_diabetes", "table_breast_cancer", "table_wine", "table_digits", "mnist1d")
SUMMARY_CASES = ("all functions", "all tasks")  # a claim's majority over its cases


def feynman_tasks(tasks: Sequence[str]) -> List[str]:
    return [t for t in tasks if str(t).startswith("feynman_")]


def ml_tasks(tasks: Sequence[str]) -> List[str]:
    return [t for t in tasks if t in ML_TASKS]


def _task_loss(claim: "Claim", book: ClaimFits, task: str) -> str:
    rows = book.rows(claim)
    return primary_loss(rows[rows["task"] == task])


def _families_on(claim: "Claim", book: ClaimFits, task: str) -> set:
    rows = book.rows(claim)
    return set(rows[rows["task"] == task]["family"])


def check_ahead(winner: str, loser: str, select: Callable[[Sequence[str]], List[str]]) -> Callable:
    """Yu et al. claims (a) and (b): per task, the front ratio winner/loser at matched parameters
    and at matched forward FLOPs (both conventions); reproduced where the winner's front is below
    (95% interval under 1); then the majority over tasks, as claims 4/4f."""
    def evaluate(claim, book):
        per_task = []
        for task in select(_tasks(claim, book)):
            if not {winner, loser} <= _families_on(claim, book, task):
                continue
            loss = _task_loss(claim, book, task)
            by_params = book.front(claim, task, "n_params", loss, winner, loser)
            by_flops = {name: book.front(claim, task, column, loss, winner, loser)
                        for name, column in FLOP_CONVENTIONS.items()}
            verdict, why = front_verdict(by_params)
            flop = {name: front_verdict(r) for name, r in by_flops.items()}
            per_task.append(Finding(
                claim.id, task, front_text(by_params),
                "; ".join(f"{name}: {front_text(r)}" for name, r in by_flops.items()), verdict, why,
                _ratio_numbers(by_params), **_flop_finding_parts(flop)))
        return [_majority_finding(claim, per_task, f"{family_name(winner)} front below")] + per_task
    return evaluate


def _majority_finding(claim: "Claim", per_task: List[Finding], subject: str) -> Finding:
    """The "all tasks" line: the majority rule over the per-task verdicts, per view."""
    if not per_task:
        return Finding(claim.id, "all tasks", "no task with both families", NO_VIEW, TOO_FEW,
                       "no task has both families")
    form = subject + " on {yes} of {n} tasks, not on {no}"
    verdict, why = majority([f.verdict for f in per_task], form, "tasks")
    flop = {"ours": majority([f.flop_verdict for f in per_task], form, "tasks"),
            "Yu et al.": majority([f.flop_verdict_yu for f in per_task], form, "tasks")}
    return Finding(claim.id, "all tasks", f"per parameter: {count_text([f.verdict for f in per_task])}",
                   f"per FLOP (ours): {count_text([f.flop_verdict for f in per_task])}", verdict, why,
                   {"n_tasks": len(per_task), "reproduced": sum(f.verdict == REPRODUCED for f in per_task)},
                   **_flop_finding_parts(flop))


def gap_verdict(gap: FrontComparison, closed: FrontComparison) -> tuple:
    """Claim (c) on one task and axis. gap: KAN/MLP fronts; closed: spline MLP/KAN fronts. With
    the MLP r = L_MLP / L_KAN = 1 / gap.ratio behind, the spline MLP closes at least half the gap
    (in log loss) when L_spline / L_KAN <= sqrt(r): reproduced if the whole 95% interval of
    spline MLP/KAN lies at or under sqrt(r), not reproduced if over it, else inconclusive; no KAN
    lead over the MLP (gap not reproduced): inconclusive, nothing to close."""
    gap_state, gap_why = front_verdict(gap)
    if gap_state == TOO_FEW:
        return TOO_FEW, f"KAN/MLP: {gap_why}"
    if gap_state != REPRODUCED:
        return INCONCLUSIVE, f"no gap to close: KAN front not below the MLP front ({gap_why})"
    state, why = front_verdict(closed)
    if state == TOO_FEW:
        return TOO_FEW, f"spline MLP/KAN: {why}"
    if not closed.has_interval:
        return INCONCLUSIVE, f"spline MLP/KAN: no interval ({closed.reason})"
    halfway = math.sqrt(1.0 / gap.ratio)
    if closed.ci_high <= halfway:
        return REPRODUCED, (f"spline MLP/KAN interval under {halfway:.3g} = sqrt(MLP/KAN): at least "
                            "half the gap closed")
    if closed.ci_low > halfway:
        return NOT_REPRODUCED, (f"spline MLP/KAN interval over {halfway:.3g} = sqrt(MLP/KAN): less "
                                "than half the gap closed")
    return INCONCLUSIVE, f"spline MLP/KAN interval contains {halfway:.3g} = sqrt(MLP/KAN)"


def gap_text(gap: FrontComparison, closed: FrontComparison) -> str:
    """"MLP/KAN 3.1; spline MLP/KAN 1.4 [1.2, 1.6]: 70% of the gap closed" (log loss)."""
    if gap.status != MEASURED or closed.status != MEASURED:
        return f"{front_text(gap)}; {front_text(closed)}"
    behind = 1.0 / gap.ratio
    closed_fraction = (1.0 - math.log(closed.ratio) / math.log(behind)) if behind > 1 else float("nan")
    share = f": {closed_fraction:.0%} of the gap closed" if closed_fraction == closed_fraction else ""
    return f"MLP/KAN {behind:.3g}; {front_text(closed)}{share}"


def check_gap_closed(claim, book) -> List[Finding]:
    """Yu et al. claim (c): on the symbolic formulas the B-spline-activation MLP closes most of
    the MLP's gap to the KAN, per parameter and per forward FLOP (gap_verdict); then the majority."""
    per_task = []
    for task in feynman_tasks(_tasks(claim, book)):
        if not {"kan", "mlp", "spline_mlp"} <= _families_on(claim, book, task):
            continue
        loss = _task_loss(claim, book, task)

        def pair(x):
            return (book.front(claim, task, x, loss, "kan", "mlp"),
                    book.front(claim, task, x, loss, "spline_mlp", "kan"))
        verdict, why = gap_verdict(*pair("n_params"))
        flop = {name: gap_verdict(*pair(column)) for name, column in FLOP_CONVENTIONS.items()}
        gap, closed = pair("n_params")
        numbers = {"mlp_over_kan": 1.0 / gap.ratio if gap.ratio else float("nan"),
                   **{f"spline_{k}": v for k, v in _ratio_numbers(closed).items()}}
        per_task.append(Finding(
            claim.id, task, gap_text(gap, closed),
            "; ".join(f"{name}: {gap_text(*pair(column))}" for name, column in FLOP_CONVENTIONS.items()),
            verdict, why, numbers, **_flop_finding_parts(flop)))
    return [_majority_finding(claim, per_task, "half the gap closed")] + per_task


_FRONT_RULE = ("per function, the KAN/MLP front ratio (geometric mean over the common range, "
               "log-log interpolation, stratified bootstrap): reproduced if its 95% interval lies "
               "below 1, not reproduced if above, too few points under 4 sizes a front; over "
               "functions: reproduced if reproduced on a majority, not reproduced if a majority is "
               "out of reach; the per-FLOP view uses matched forward FLOPs")
_FAIR = ("fair_comparison", "fair_comparison_quick")
_YU_RULE = ("per task, the {a}/{b} front ratio at matched parameters (geometric mean over the "
            "common range, stratified bootstrap): reproduced if its 95% interval lies below 1, not "
            "reproduced if above, too few points under 4 sizes; over tasks: reproduced if reproduced "
            "on a majority, not reproduced if a majority is out of reach; per FLOP the same at "
            "matched forward FLOPs (ours; Yu et al.'s)")
# Each claims experiment at its sizes: full (the paper's protocol), medium (one core), quick.
TOY_EXPERIMENTS = ("toy_scaling", "toy_scaling_medium", "toy_scaling_quick")
SPECIAL_EXPERIMENTS = ("special_functions", "special_functions_medium", "special_functions_quick")
FEYNMAN_EXPERIMENTS = ("feynman", "feynman_medium", "feynman_quick")
CLAIMS: List[Claim] = [
    Claim("1", "§3.1: KAN test RMSE scales as N^-4 with cubic splines (k = 3)",
          TOY_EXPERIMENTS, "test RMSE vs parameters, KAN front",
          f"reproduced if the 95% interval of alpha contains 4; too few points under {MIN_SIZES} "
          f"sizes; inconclusive if the interval is wider than {MAX_CI_WIDTH:g}; per FLOP: the same "
          "rule on alpha vs forward FLOPs", check_kan_exponent("test_rmse")),
    Claim("1m", "§3.1: the median error reaches the N^-4 slope (the RMSE ~ N^-3)",
          TOY_EXPERIMENTS, "median |f - f*| vs parameters, KAN front",
          "as claim 1, on the median absolute error", check_kan_exponent("test_median_abs_error")),
    Claim("2", "§3.1: KANs scale faster than MLPs (per-FLOP view not in the paper)",
          TOY_EXPERIMENTS, "alpha vs parameters and vs forward FLOPs, both fronts",
          "reproduced if the KAN's 95% interval of alpha lies above the MLP's; not if below; "
          f"inconclusive if they overlap; too few points under {MIN_SIZES} sizes a family",
          check_per_flop_scaling),
    Claim("2w", "§3.1 at matched work (not in the paper): a KAN reaches a lower test RMSE than an "
                "MLP of equal size, and of equal training FLOPs",
          TOY_EXPERIMENTS, "front ratio KAN/MLP at matched parameters; at "
          "matched training FLOPs", "as claim 4, per toy function", check_matched_work),
    Claim("3", "§3.4: a 2-layer width-10 KAN is 100x more accurate than a 4-layer width-100 MLP "
               "(1e-7 vs 1e-5 MSE) and 100x more parameter efficient (1e2 vs 1e4)",
          ("pde_poisson", "pde_poisson_quick"), "l2 squared error vs the exact solution",
          "reproduced if MLP/KAN l2_sq >= 100; inconclusive if per-seed ratios straddle 100",
          check_pde),
    Claim("4", "§3.2: on special functions KAN Pareto fronts (parameters, RMSE) lie below MLPs'",
          SPECIAL_EXPERIMENTS, "test RMSE fronts", _FRONT_RULE,
          check_fronts),
    Claim("4f", "§3.3: on Feynman equations KANs are more parameter efficient than MLPs",
          FEYNMAN_EXPERIMENTS, "test RMSE fronts", "as claim 4", check_fronts),
    Claim("5", "§3.5: KANs avoid catastrophic forgetting; MLPs forget",
          ("continual", "continual_quick"), "RMSE on earlier regions after the last stage",
          "reproduced if every KAN forgets less than every MLP and below 0.1", check_forgetting),
    Claim("Y1", "Yu et al. 2024 (arXiv 2407.16674) §4: at equal parameters or FLOPs, MLPs beat "
                "KANs on machine-learning (tabular) and computer-vision tasks",
          _FAIR, "fronts at matched parameters and forward FLOPs on the table tasks and MNIST-1D "
          "(test error rate for classes, test RMSE for diabetes)",
          _YU_RULE.format(a="MLP", b="KAN"), check_ahead("mlp", "kan", ml_tasks)),
    Claim("Y2", "Yu et al. 2024 §4: KANs beat MLPs only on symbolic formula representation",
          _FAIR, "test RMSE fronts at matched parameters and forward FLOPs on Feynman formulas",
          _YU_RULE.format(a="KAN", b="MLP"), check_ahead("kan", "mlp", feynman_tasks)),
    Claim("Y3", "Yu et al. 2024 §5: an MLP with learnable B-spline activations closes most of the "
                "MLP's gap to the KAN on symbolic formulas",
          _FAIR, "test RMSE fronts of the spline MLP, the KAN and the MLP on Feynman formulas",
          "per formula where the KAN front is below the MLP's (r = MLP/KAN > 1): reproduced if the "
          "95% interval of the spline MLP/KAN front ratio lies under sqrt(r) (at least half the "
          "gap closed, in log loss), not reproduced if over, inconclusive otherwise or with no KAN "
          "lead; over formulas the majority rule of claim 4; per FLOP the same at matched forward "
          "FLOPs", check_gap_closed),
]


def evaluate_all(runs: pd.DataFrame, stages: pd.DataFrame, n_boot: int = N_BOOT, seed: int = 0,
                 progress: Callable[[str], None] = lambda message: None,
                 book: Optional[ClaimFits] = None) -> List[Finding]:
    """One Finding per claim and case; pass `book` to keep the fits for the figures and JSON."""
    book = book or ClaimFits(runs, stages, n_boot=n_boot, seed=seed)
    findings: List[Finding] = []
    for claim in CLAIMS:
        if book.rows(claim, runs).empty:
            findings.append(Finding(claim.id, "-", f"no runs of {' / '.join(claim.experiments)}",
                                    NO_VIEW, TOO_FEW, "experiment not run"))
        else:
            findings.extend(claim.evaluate(claim, book))
        progress(f"claim {claim.id}: {findings[-1].verdict}")
    return findings


if __name__ == "__main__":
    from analysis.claims_report import main

    raise SystemExit(main())
