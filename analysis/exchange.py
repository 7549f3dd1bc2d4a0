"""Comparisons of two families (e.g. MLP vs KAN) on one task, only inside what both measured.

Fitted exchange rates (from two GroupFits of analysis.fit_table, never refitted):
- at a target loss L*: X_ref(L*) / X_other(L*), each X from inverting its family's fit
  (X = ((L* - E) / A)^(-1/alpha));
- at a budget X: L_ref(X) / L_other(X).
Each is given only when L* (or X) lies inside both families' fit ranges (the losses, or the x, of
the frontier points each fit used); elsewhere the result says OUTSIDE ("outside the measured
range") and carries no number. Intervals (on the log ratio, with the fits' t quantile) pair the i-th bootstrap sample of one
fit with the i-th of the other (the resamples are of independent runs, so the pairs are draws from the joint
sampling distribution).

Front against front (no law): `compare_fronts(rows_a, rows_b, x, loss)` is the loss ratio
L_a / L_b of the two measured Pareto fronts, interpolated linearly in log-log on a log grid over
the x range both fronts cover, summarised as its geometric mean over that range; its interval
(2.5th-97.5th percentiles) comes from resampling the runs of both families within each size
(analysis.bootstrap) and recomputing both fronts. With x = n_params or flops_forward it is the loss ratio at matched size
(claims 4 and 4f); with x = train_flops it is the loss at matched training work.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np
import pandas as pd

from analysis.bootstrap import runs_per_stratum, stratified_counts, stratum_column
from analysis.frontier import front_mask, usable
from analysis.laws import MIN_SIZES, FitResult, t_quantile
from analysis.metrics import loss_like

MEASURED, OUTSIDE, TOO_FEW = "measured", "outside the measured range", "too few sizes"
N_GRID = 50  # log-spaced x values at which two fronts are compared


@dataclass(frozen=True)
class ExchangeRate:
    quantity: str  # "x_ratio_at_loss" (X_ref / X_other) or "loss_ratio_at_x" (L_ref / L_other)
    at: float  # the target loss or the budget x
    reference: str  # family in the numerator, e.g. "mlp"
    other: str  # family in the denominator, e.g. "kan"
    estimate: float  # NaN when status is not MEASURED
    ci_low: float  # 95% interval from the bootstrap pairs (_interval; NaN: no interval)
    ci_high: float
    n_pairs: int  # bootstrap pairs with a finite ratio (a target below a floor E gives none)
    keys: Dict[str, Any]  # the other group keys (task, ...) and x
    x: str = ""
    status: str = MEASURED  # MEASURED or OUTSIDE ("outside the measured range")

    @property
    def straddles_one(self) -> bool:
        """True when the interval contains 1 or there is none: the data cannot say who is ahead."""
        return bool(self.ci_low <= 1.0 <= self.ci_high) or not np.isfinite(self.ci_low)

    def describe(self) -> str:
        if self.quantity == "x_ratio_at_loss":
            what = f"{self.x}_{self.reference}/{self.x}_{self.other} at loss {self.at:.3g}"
        else:
            what = f"loss_{self.reference}/loss_{self.other} at {self.x}={self.at:.3g}"
        if self.status != MEASURED:
            return f"{what}: {self.status}"
        verdict = "straddles 1: no clear winner" if self.straddles_one else (
            f"{self.other} ahead" if self.estimate > 1 else f"{self.reference} ahead")
        return (f"{what}: {self.estimate:.3g} [{self.ci_low:.3g}, {self.ci_high:.3g}] "
                f"({self.n_pairs} pairs; {verdict})")

    def to_dict(self) -> Dict[str, Any]:
        return {**self.keys, "x": self.x, "quantity": self.quantity, "at": self.at,
                "reference": self.reference, "other": self.other, "status": self.status,
                "estimate": self.estimate, "ci_low": self.ci_low, "ci_high": self.ci_high,
                "n_pairs": self.n_pairs, "straddles_one": self.straddles_one}


def _interval(ratios: np.ndarray, estimate: float, dof: int) -> Tuple[float, float, int]:
    """estimate */ exp(t_{0.975, dof} * sd of the log bootstrap ratios): the intervals of the fits
    themselves (analysis.laws._summarise) carried to the ratio."""
    finite = ratios[np.isfinite(ratios) & (ratios > 0)]
    q = t_quantile(dof)
    if len(finite) < 2 or not np.isfinite(q) or not (np.isfinite(estimate) and estimate > 0):
        return float("nan"), float("nan"), len(finite)
    spread = q * np.std(np.log(finite), ddof=1)
    return float(estimate * np.exp(-spread)), float(estimate * np.exp(spread)), len(finite)


def _paired(ref: FitResult, other: FitResult) -> Tuple[np.ndarray, np.ndarray]:
    m = min(len(ref.boot_theta), len(other.boot_theta))
    return ref.boot_theta[:m], other.boot_theta[:m]


def _inside(value: float, *spans: Optional[Tuple[float, float]]) -> bool:
    return all(span is None or (span[0] <= value <= span[1]) for span in spans)


def _outside(quantity, at, reference, other_name, keys, x) -> ExchangeRate:
    nan = float("nan")
    return ExchangeRate(quantity, float(at), reference, other_name, nan, nan, nan, 0,
                        dict(keys or {}), x, OUTSIDE)


def x_ratio_at_loss(ref: FitResult, other: FitResult, target_loss: float, reference: str = "mlp",
                    other_name: str = "kan", keys=None, x: str = "",
                    ref_span: Optional[Tuple[float, float]] = None,
                    other_span: Optional[Tuple[float, float]] = None) -> ExchangeRate:
    """X_ref / X_other needed to reach target_loss (>1: `other` needs less). ref_span/other_span:
    the (lowest, highest) loss each fit used; a target outside either gives an OUTSIDE result."""
    if not _inside(target_loss, ref_span, other_span):
        return _outside("x_ratio_at_loss", target_loss, reference, other_name, keys, x)
    estimate = float(ref.inverse(target_loss) / other.inverse(target_loss))
    ref_theta, other_theta = _paired(ref, other)
    ratios = ref.inverse(target_loss, theta=ref_theta) / other.inverse(target_loss, theta=other_theta)
    low, high, n = _interval(np.asarray(ratios).ravel(), estimate, min(ref.dof, other.dof))
    if not (ref.has_interval and other.has_interval):
        low, high = float("nan"), float("nan")
    return ExchangeRate("x_ratio_at_loss", float(target_loss), reference, other_name, estimate,
                        low, high, n, dict(keys or {}), x)


def loss_ratio_at_x(ref: FitResult, other: FitResult, budget: float, reference: str = "mlp",
                    other_name: str = "kan", keys=None, x: str = "",
                    ref_span: Optional[Tuple[float, float]] = None,
                    other_span: Optional[Tuple[float, float]] = None) -> ExchangeRate:
    """L_ref(budget) / L_other(budget) (>1: `other` reaches a lower loss). ref_span/other_span: the
    (x_min, x_max) each fit used; a budget outside either gives an OUTSIDE result."""
    if not _inside(budget, ref_span, other_span):
        return _outside("loss_ratio_at_x", budget, reference, other_name, keys, x)
    estimate = float(ref.predict([budget])[0] / other.predict([budget])[0])
    ref_theta, other_theta = _paired(ref, other)
    ratios = ref.predict([budget], theta=ref_theta)[:, 0] / other.predict([budget], theta=other_theta)[:, 0]
    low, high, n = _interval(ratios, estimate, min(ref.dof, other.dof))
    if not (ref.has_interval and other.has_interval):
        low, high = float("nan"), float("nan")
    return ExchangeRate("loss_ratio_at_x", float(budget), reference, other_name, estimate,
                        low, high, n, dict(keys or {}), x)


def default_targets(ref_x, ref_loss, other_x, other_loss) -> Tuple[float, float]:
    """A target loss both families reached (the larger of their best losses) and a budget both
    measured (the smaller of their largest x); either may still fall outside the other family's
    range (x_ratio_at_loss / loss_ratio_at_x then say so)."""
    return (float(max(np.min(ref_loss), np.min(other_loss))),
            float(min(np.max(ref_x), np.max(other_x))))


def _spans(group) -> Tuple[Tuple[float, float], Tuple[float, float]]:
    """(x span, loss span) of the points a GroupFit's fit used."""
    xs, ls = group.data[group.x].to_numpy(float), group.data[group.loss].to_numpy(float)
    return (float(xs.min()), float(xs.max())), (float(ls.min()), float(ls.max()))


def exchange_table(group_fits: Sequence, reference: str = "mlp") -> List[ExchangeRate]:
    """Both exchange rates for every fitted non-reference family against the reference family,
    matching groups (analysis.fit_table.GroupFit, or a FitSet) on their other keys and x, at
    default_targets, inside both fit ranges (OUTSIDE results otherwise)."""
    fitted = [g for g in group_fits if g.fit is not None and "family" in g.keys and len(g.data)]

    def match_key(g):
        return (g.x, tuple(sorted((k, str(v)) for k, v in g.keys.items() if k != "family")))

    refs = {match_key(g): g for g in fitted if g.keys["family"] == reference}
    out = []
    for group in fitted:
        ref = refs.get(match_key(group))
        if ref is None or group.keys["family"] == reference or ref.fit.form == "two_var":
            continue
        keys = {k: v for k, v in group.keys.items() if k != "family"}
        (ref_x, ref_l), (other_x, other_l) = _spans(ref), _spans(group)
        target_loss, budget = default_targets(ref.data[ref.x], ref.data[ref.loss],
                                              group.data[group.x], group.data[group.loss])
        common = dict(reference=reference, other_name=group.keys["family"], keys=keys, x=group.x)
        out.append(x_ratio_at_loss(ref.fit, group.fit, target_loss, ref_span=ref_l,
                                   other_span=other_l, **common))
        out.append(loss_ratio_at_x(ref.fit, group.fit, budget, ref_span=ref_x, other_span=other_x,
                                   **common))
    return out


@dataclass(frozen=True)
class FrontComparison:
    """L_a / L_b of two measured fronts over the x range both cover (module docstring).

    ratio < 1: family a's front lies below b's (a reaches lower loss at matched x). `status`
    MEASURED, OUTSIDE (the fronts share no x range) or TOO_FEW (a family has fewer than 2 sizes in
    the common range; then no number); the interval is NaN (and `reason` says why) when fewer than
    MIN_SIZES distinct x values (of either family) lie in the common range or no size has two runs.
    """
    x: str
    loss: str
    a: str  # numerator family, e.g. "kan"
    b: str  # denominator family, e.g. "mlp"
    status: str
    ratio: float  # geometric mean over the common range of L_a(x) / L_b(x)
    ci_low: float
    ci_high: float
    x_low: float  # the common range
    x_high: float
    n_sizes: Dict[str, int]  # distinct sizes of each family inside the common range
    n_boot: int
    reason: Optional[str] = None
    grid: np.ndarray = field(default=None, repr=False, compare=False)  # (G,) x values
    curve: np.ndarray = field(default=None, repr=False, compare=False)  # (G,) L_a / L_b at grid
    curve_low: np.ndarray = field(default=None, repr=False, compare=False)  # (G,) 2.5th pct
    curve_high: np.ndarray = field(default=None, repr=False, compare=False)  # (G,) 97.5th pct

    @property
    def has_interval(self) -> bool:
        return self.status == MEASURED and bool(np.isfinite(self.ci_low))

    @property
    def a_below(self) -> Optional[bool]:
        """True: a's front is below b's with the interval excluding 1; False: above, excluding 1;
        None: the interval contains 1 or there is none."""
        if not self.has_interval or self.ci_low <= 1.0 <= self.ci_high:
            return None
        return bool(self.ci_high < 1.0)

    def describe(self) -> str:
        what = f"loss_{self.a}/loss_{self.b} at matched {self.x}"
        if self.status != MEASURED:
            return f"{what}: {self.status}" + (f" ({self.reason})" if self.reason else "")
        ci = (f" [{self.ci_low:.3g}, {self.ci_high:.3g}]" if self.has_interval
              else f" (no interval: {self.reason})")
        return f"{what} over [{self.x_low:.3g}, {self.x_high:.3g}]: {self.ratio:.3g}{ci}"

    def to_dict(self) -> Dict[str, Any]:
        return {"x": self.x, "loss": self.loss, "a": self.a, "b": self.b, "status": self.status,
                "ratio": self.ratio, "ci_low": self.ci_low, "ci_high": self.ci_high,
                "x_low": self.x_low, "x_high": self.x_high, "n_sizes": dict(self.n_sizes),
                "n_boot": self.n_boot, "reason": self.reason, "a_below": self.a_below}


def _front_log_curves(x, loss, present: np.ndarray, log_grid: np.ndarray) -> np.ndarray:
    """log L of each resample's front (present (B, n)) at log_grid (G,), interpolated linearly in
    log-log; beyond the front's last point, its last (best) value -> (B, G)."""
    on = front_mask(x, loss, present)
    logx, logl = np.log(x), np.log(loss)
    out = np.empty((len(present), len(log_grid)))
    for b in range(len(present)):
        idx = np.flatnonzero(on[b])
        idx = idx[np.argsort(logx[idx])]
        out[b] = np.interp(log_grid, logx[idx], logl[idx])
    return out


def compare_fronts(rows_a: pd.DataFrame, rows_b: pd.DataFrame, x: str = "n_params",
                   loss: str = "test_rmse", a: str = "kan", b: str = "mlp", n_boot: int = 400,
                   seed: int = 0, strata: Optional[str] = None,
                   min_sizes: int = MIN_SIZES) -> FrontComparison:
    """Front of rows_a against front of rows_b (stage-table rows of one task; unfinished or
    non-finite rows are dropped): L_a / L_b at matched `x` (module docstring). strata: the column
    resampled within (default analysis.bootstrap.stratum_column(x), n_params for train_flops)."""
    strata = strata or stratum_column(x)
    loss = loss_like(loss)  # an accuracy is compared as its error rate (analysis.metrics)
    data = {}
    for name, rows in ((a, rows_a), (b, rows_b)):
        kept, _ = usable(rows, x, loss)
        data[name] = (kept[x].to_numpy(float), kept[loss].to_numpy(float),
                      kept[strata].to_numpy() if strata in kept.columns else kept[x].to_numpy(),
                      kept["run_id"].to_numpy() if "run_id" in kept.columns else None)
    nan = float("nan")
    empty = {name: 0 for name in (a, b)}
    if any(len(v[0]) == 0 for v in data.values()):
        return FrontComparison(x, loss, a, b, TOO_FEW, nan, nan, nan, nan, nan, empty, 0,
                               "a family has no usable runs")
    x_low = max(v[0].min() for v in data.values())
    x_high = min(v[0].max() for v in data.values())
    if not x_low < x_high:
        return FrontComparison(x, loss, a, b, OUTSIDE, nan, nan, nan, x_low, x_high, empty, 0,
                               "the fronts share no range of " + x)
    sizes = {name: len(np.unique(v[0][(v[0] >= x_low) & (v[0] <= x_high)])) for name, v in data.items()}
    if min(sizes.values()) < 2:
        return FrontComparison(x, loss, a, b, TOO_FEW, nan, nan, nan, x_low, x_high, sizes, 0,
                               f"fewer than 2 sizes of a family in the common range {sizes}")
    log_grid = np.linspace(np.log(x_low), np.log(x_high), N_GRID)
    point = {name: _front_log_curves(v[0], v[1], np.ones((1, len(v[0])), bool), log_grid)[0]
             for name, v in data.items()}
    curve = np.exp(point[a] - point[b])
    ratio = float(np.exp(np.mean(point[a] - point[b])))
    inside = np.concatenate([v[0] for v in data.values()])
    n_union = len(np.unique(inside[(inside >= x_low) & (inside <= x_high)]))
    reason = None
    if n_union < min_sizes:
        reason = f"too few sizes ({n_union} < {min_sizes})"
    elif all(runs_per_stratum(v[2], v[3]).max() < 2 for v in data.values()):
        reason = "one run per size: nothing to resample (add seeds)"
    low = high = nan
    curve_low = curve_high = np.full(N_GRID, nan)
    if reason is None and n_boot > 0:
        rng = np.random.default_rng(seed)
        boot = {name: _front_log_curves(v[0], v[1], stratified_counts(v[2], n_boot, rng, v[3]) > 0,
                                        log_grid) for name, v in data.items()}
        gaps = boot[a] - boot[b]  # (B, G) log L_a - log L_b
        low, high = (float(v) for v in np.exp(np.percentile(gaps.mean(axis=1), [2.5, 97.5])))
        curve_low, curve_high = np.exp(np.percentile(gaps, [2.5, 97.5], axis=0))
    return FrontComparison(x, loss, a, b, MEASURED, ratio, low, high, float(x_low), float(x_high),
                           sizes, n_boot if reason is None else 0, reason, np.exp(log_grid), curve,
                           curve_low, curve_high)
