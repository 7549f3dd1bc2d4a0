"""Scaling-law fits in log space: Huber loss, multi-start L-BFGS, seeded bootstrap of runs.

Method of Hoffmann et al. 2022 (arXiv 2203.15556, App. D.2) as replicated by Besiroglu et al. 2024
(arXiv 2404.10102): with a = log A, b = log B, e = log E the predicted log-loss is
logsumexp(a - alpha log N, b - beta log D, e), and the sum of Huber(delta=1e-3) of
(predicted log L - log L) is minimised by L-BFGS from a grid of starting points.

Forms:  "power"   L = A X^-alpha
        "floor"   L = E + A X^-alpha
        "two_var" L(N, D) = E + A N^-alpha + B D^-beta

Two entry points:
- `fit_runs(x, loss, ...)`: the analysis's fit. Takes RUN rows (every seed and shape, several per
  size), fits the frontier (best loss per size) inside an optional fit range, and bootstraps by
  resampling the runs within each size (analysis.bootstrap), recomputing the frontier and refitting
  in every resample. No interval from fewer than MIN_SIZES sizes (`FitResult.ci_reason` says why).
- `fit_scaling_law(x, loss, ...)`: a fit of given points with the plain pairs bootstrap (used for
  the two-variable Chinchilla form and by callers that already hold one point per size).
Starts and resamples are solved all at once (analysis.huber.solve_batch: IRLS for the convex power
form, damped Gauss-Newton on the IRLS-weighted Huber objective for the floor and two_var forms).
"""
from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Dict, Optional, Sequence, Tuple

import numpy as np
from scipy.stats import t as student_t
from threadpoolctl import threadpool_limits

from analysis.bootstrap import point_counts, runs_per_stratum, stratified_counts
from analysis.errors import FitError
from analysis.frontier import front_mask
from analysis.huber import (HUBER_DELTA, batch_objective, grid_values, lbfgs, predict_log_loss, refit_batch,
                            solve_batch)

FORMS = ("power", "floor", "two_var")
# Internal vector theta = [a_1, alpha_1, (a_2, alpha_2), (e)]; reported names on the natural scale.
_LOG_NAMES = {"power": ("a", "alpha"), "floor": ("a", "alpha", "e"),
              "two_var": ("a", "alpha", "b", "beta", "e")}
_REPORTED = {"power": ("A", "alpha"), "floor": ("E", "A", "alpha"),
             "two_var": ("E", "A", "alpha", "B", "beta")}
# Fits are small (tens of points): a multi-threaded BLAS only adds overhead, 50x on a loaded machine.
_BLAS_THREADS = 1
MIN_SIZES = 4  # fewer distinct sizes than this: a point estimate but no interval and no verdict
RESAMPLES = ("runs", "points")


@dataclass(frozen=True)
class ParamEstimate:
    estimate: float
    stderr: float  # standard deviation of the bootstrap estimates
    ci_low: float  # 95% interval: estimate -+ t_{0.975, dof} bootstrap sd (see _summarise)
    ci_high: float


@dataclass(frozen=True)
class FitResult:
    """A fitted law. `params[name]` holds the estimate and its 95% interval; the interval is NaN
    (and `ci_reason` says why, e.g. "too few sizes (3 < 4)") when there is none to give."""
    form: str
    params: Dict[str, ParamEstimate]
    n_points: int  # points in the point fit (frontier points inside the fit range)
    n_boot: int  # resamples that gave a fit
    n_boot_failed: int  # resamples with too few distinct x values to fit
    seed: int
    objective: float  # sum of Huber losses at the optimum
    theta: np.ndarray = field(repr=False, compare=False)  # (P,) log-space optimum
    boot_theta: np.ndarray = field(repr=False, compare=False)  # (n_boot, P) successful resamples
    n_sizes: int = 0  # distinct x values in the point fit
    resample: str = "points"  # "runs" (stratified by size, frontier recomputed) or "points"
    ci_reason: Optional[str] = None  # why there is no interval; None when there is one

    @property
    def dof(self) -> int:
        """Degrees of freedom of the interval: sizes (runs) or points, less the parameters."""
        return (self.n_sizes if self.resample == "runs" else self.n_points) - len(self.theta)

    @property
    def has_interval(self) -> bool:
        """True when the bootstrap gave an interval a verdict may use."""
        return self.ci_reason is None and self.n_boot >= 2

    def predict(self, x, d=None, theta: Optional[np.ndarray] = None) -> np.ndarray:
        """Loss at x (and d for two_var); theta (S, P) gives (S, len(x)) predictions."""
        logx = _log_covariates(np.atleast_1d(np.asarray(x, float)),
                               None if d is None else np.atleast_1d(np.asarray(d, float)))
        th = self.theta[None, :] if theta is None else np.atleast_2d(theta)
        pred, _ = predict_log_loss(th, logx, self.form != "power", jacobian=False)
        return np.exp(pred[0] if theta is None else pred)

    def inverse(self, loss, theta: Optional[np.ndarray] = None) -> np.ndarray:
        """X at which the fitted curve reaches `loss` (NaN below the floor E); one-variable forms."""
        if self.form == "two_var":
            raise FitError("inverse is defined for the one-variable forms (power, floor) only")
        th = self.theta[None, :] if theta is None else np.atleast_2d(theta)
        loss = np.asarray(loss, float)
        flat = loss.reshape(1, -1)  # (1, m) against per-theta columns (S, 1)
        floor = np.exp(th[:, 2:3]) if self.form == "floor" else 0.0
        excess = flat - floor  # L - E = A X^-alpha  ->  X = ((L - E) / A)^(-1/alpha)
        with np.errstate(invalid="ignore", divide="ignore"):
            log_x = (th[:, 0:1] - np.log(np.where(excess > 0, excess, np.nan))) / th[:, 1:2]
        out = np.exp(log_x)  # (S, m)
        if theta is None:
            return out[0].reshape(loss.shape)
        return out[:, 0] if loss.ndim == 0 else out

    def to_dict(self) -> dict:
        return {"form": self.form, "n_points": self.n_points, "n_sizes": self.n_sizes,
                "n_boot": self.n_boot, "n_boot_failed": self.n_boot_failed, "seed": self.seed,
                "resample": self.resample, "has_interval": self.has_interval,
                "ci_reason": self.ci_reason,
                "params": {name: vars(p).copy() for name, p in self.params.items()}}


def _log_covariates(x: np.ndarray, d: Optional[np.ndarray]) -> np.ndarray:
    cols = [np.log(x)] if d is None else [np.log(x), np.log(d)]
    return np.stack(cols, axis=1)  # (n, k)


def besiroglu_grid() -> np.ndarray:
    """Besiroglu et al. 2024 starting grid for two_var: alpha, beta in {0,...,2}, e in {-1,...,1},
    a, b in {0, 5, ..., 25}; rows ordered as theta = [a, alpha, b, beta, e]."""
    ab, exps, es = np.arange(0, 26, 5.0), np.arange(0, 2.01, 0.5), np.arange(-1, 1.01, 0.5)
    return np.array(list(itertools.product(ab, exps, ab, exps, es)))


def auto_grid(form: str, logx: np.ndarray, log_loss: np.ndarray) -> np.ndarray:
    """Data-driven starts for power/floor: alpha in {0, 0.5, ..., 4}, E a fraction of the smallest
    loss, and for each the intercept a that puts the curve through the median point."""
    alphas = np.arange(0.0, 4.01, 0.5)
    if form == "power":
        return np.array([[np.median(log_loss + al * logx[:, 0]), al] for al in alphas])
    loss = np.exp(log_loss)
    rows = []
    for frac, al in itertools.product((1e-3, 0.1, 0.3, 0.6, 0.9), alphas):
        floor = frac * loss.min()
        rows.append([np.median(np.log(loss - floor) + al * logx[:, 0]), al, np.log(floor)])
    return np.array(rows)


def _clean(x, loss, d) -> Tuple[np.ndarray, np.ndarray, Optional[np.ndarray]]:
    x, loss = np.asarray(x, float).ravel(), np.asarray(loss, float).ravel()
    d = None if d is None else np.asarray(d, float).ravel()
    if len(x) != len(loss) or (d is not None and len(d) != len(x)):
        raise FitError(f"x, loss (and d) must have the same length, got {len(x)} and {len(loss)}")
    keep = np.isfinite(x) & np.isfinite(loss) & (x > 0) & (loss > 0)
    if d is not None:
        keep &= np.isfinite(d) & (d > 0)
    return x[keep], loss[keep], None if d is None else d[keep]


def _point_fit(form, logx, log_loss, grid, n_starts, boot_starts, delta):
    """Multi-start fit of the points: the grid is ranked by objective, the best `n_starts` are
    solved at once (solve_batch), the best optimum is polished by L-BFGS.
    Returns (objective, theta, distinct optima to warm-start the resamples from)."""
    n_params, has_floor = len(_LOG_NAMES[form]), form != "power"
    starts = np.asarray(grid, float) if grid is not None else (
        besiroglu_grid() if form == "two_var" else auto_grid(form, logx, log_loss))
    if starts.ndim != 2 or starts.shape[1] != n_params:
        raise FitError(f"grid must have shape (S, {n_params}) for form {form}")
    order = np.argsort(grid_values(starts, logx, log_loss, has_floor, delta), kind="stable")
    chosen = starts[order if n_starts is None else order[:n_starts]]
    if form == "power":
        chosen = chosen[:1]  # convex: every start reaches the same minimum
    weights = np.ones((len(chosen), len(log_loss)))
    solved = solve_batch(form, logx, log_loss, weights, chosen, delta)
    values = batch_objective(solved, logx, log_loss, weights, has_floor, delta)
    ranked = np.argsort(values, kind="stable")
    best_value, theta = lbfgs(solved[ranked[0]], logx, log_loss, has_floor, delta)
    if best_value > values[ranked[0]]:
        best_value, theta = float(values[ranked[0]]), solved[ranked[0]]
    return best_value, theta, _distinct([theta] + [solved[i] for i in ranked[1:]], boot_starts)


def _check_points(form: str, x: np.ndarray, d: Optional[np.ndarray]) -> None:
    n_params = len(_LOG_NAMES[form])
    if len(x) == 0:
        raise FitError("no points with finite positive x and loss to fit")
    if len(x) < n_params:
        raise FitError(f"only {len(x)} point{'s' * (len(x) != 1)} for the {n_params} parameters of "
                       f"form {form}: add runs of more sizes")
    if len(np.unique(x)) < 2 or (d is not None and len(np.unique(d)) < 2):
        raise FitError("only one distinct x value: a scaling law needs at least two sizes")


def _usable_resamples(form: str, logx: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """(B,) True where a resample has enough weighted points and distinct x values to fit."""
    on = weights > 0  # (B, n)
    enough = on.sum(axis=1) >= len(_LOG_NAMES[form])
    for j in range(logx.shape[1]):
        col = logx[None, :, j]
        enough &= np.where(on, col, -np.inf).max(axis=1) > np.where(on, col, np.inf).min(axis=1)
    return enough


@threadpool_limits.wrap(limits=_BLAS_THREADS, user_api="blas")
def fit_scaling_law(x, loss, form: str = "power", d=None, n_boot: int = 1000, seed: int = 0,
                    grid: Optional[np.ndarray] = None, n_starts: Optional[int] = 16,
                    boot_starts: int = 3, delta: float = HUBER_DELTA) -> FitResult:
    """Fit `form` to points (x, loss) [and d for two_var]; non-finite or non-positive points are dropped.

    The grid (default: besiroglu_grid for two_var, auto_grid otherwise) is ranked by its objective
    in one vectorised pass; L-BFGS runs from the best `n_starts` (None = every start). The bootstrap
    resamples the POINTS (pairs bootstrap, numpy Generator seeded by `seed`); each resample is
    refit (refit_batch) from the best `boot_starts` distinct optima of the point fit. For run rows
    with several seeds per size use fit_runs. Raises FitError when the fit cannot be made.
    """
    if form not in FORMS:
        raise FitError(f"unknown form {form!r}: use one of {', '.join(FORMS)}")
    if (form == "two_var") != (d is not None):
        raise FitError("give d (data size) for form two_var and only for it")
    x, loss, d = _clean(x, loss, d)
    _check_points(form, x, d)
    logx, log_loss = _log_covariates(x, d), np.log(loss)
    best_value, theta, warm = _point_fit(form, logx, log_loss, grid, n_starts, boot_starts, delta)
    counts = point_counts(len(x), n_boot, np.random.default_rng(seed)).astype(float)
    ok = _usable_resamples(form, logx, counts)
    boot_theta = (refit_batch(form, logx, log_loss, counts[ok], warm, delta) if ok.any()
                  else np.empty((0, len(theta))))
    n_sizes = len(np.unique(x))
    return FitResult(form=form, params=_summarise(form, theta, boot_theta, len(x) - len(theta)),
                     n_points=len(x),
                     n_boot=len(boot_theta), n_boot_failed=int((~ok).sum()), seed=seed,
                     objective=best_value * delta, theta=theta, boot_theta=boot_theta,
                     n_sizes=n_sizes, resample="points")


@threadpool_limits.wrap(limits=_BLAS_THREADS, user_api="blas")
def fit_runs(x, loss, form: str = "power", n_boot: int = 400, seed: int = 0, strata=None,
             units=None, in_range=None, points: str = "frontier", min_sizes: int = MIN_SIZES,
             grid: Optional[np.ndarray] = None, n_starts: Optional[int] = 16, boot_starts: int = 1,
             delta: float = HUBER_DELTA) -> FitResult:
    """Fit `form` (power or floor) to the frontier of run rows, with a bootstrap of the runs.

    x, loss (n,): one row per run (or per run stage): every seed and shape, several rows per size.
    points="frontier" fits the Pareto frontier (analysis.frontier.front_mask: best loss per size,
    strictly improving with size); "all" fits every row. in_range (n,) bool: rows the fit may use
    (analysis.fit_range.FitRange.in_range); the frontier is taken over all rows first, so an
    excluded row still dominates. strata (n,): the size of each row, resampled within (default x;
    give n_params when x is train_flops or wall time). units (n,): the run of each row (run_id;
    default: every row its own run). Each of `n_boot` resamples draws, within every size, as many
    runs as it has, with replacement (a run's rows at that size together); recomputes the frontier;
    refits.

    No interval (ci NaN, `ci_reason` set) when the point fit has fewer than `min_sizes` distinct
    sizes, or when every size has a single run (nothing varies between resamples).
    """
    if form not in ("power", "floor"):
        raise FitError(f"fit_runs fits the one-variable forms (power, floor), not {form!r}")
    if points not in ("frontier", "all"):
        raise FitError(f"points={points!r}: use frontier or all")
    x, loss = np.asarray(x, float).ravel(), np.asarray(loss, float).ravel()
    strata = x if strata is None else np.asarray(strata).ravel()
    units = np.arange(len(x)) if units is None else np.asarray(units).ravel()
    in_range = np.ones(len(x), bool) if in_range is None else np.asarray(in_range, bool).ravel()
    if not (len(x) == len(loss) == len(strata) == len(units) == len(in_range)):
        raise FitError("x, loss, strata, units and in_range must have the same length")
    keep = np.isfinite(x) & np.isfinite(loss) & (x > 0) & (loss > 0)
    x, loss, strata, units, in_range = x[keep], loss[keep], strata[keep], units[keep], in_range[keep]

    def chosen(present: np.ndarray) -> np.ndarray:  # (B, n) counts -> (B, n) fit weights
        if points == "all":
            return present * in_range[None, :]
        return (front_mask(x, loss, present > 0) & in_range[None, :]).astype(float)

    selected = chosen(np.ones((1, len(x))))[0] > 0
    _check_points(form, x[selected], None)
    logx, log_loss = _log_covariates(x, None), np.log(loss)
    best_value, theta, warm = _point_fit(form, logx[selected], log_loss[selected], grid, n_starts,
                                         boot_starts, delta)
    n_sizes = len(np.unique(x[selected]))
    reason = None
    if n_sizes < min_sizes:
        reason = f"too few sizes ({n_sizes} < {min_sizes})"
    elif n_boot > 0 and runs_per_stratum(strata[in_range], units[in_range]).max() < 2:
        reason = "one run per size: nothing to resample (add seeds)"
    boot_theta, failed = np.empty((0, len(theta))), 0
    if reason is None and n_boot > 0:
        weights = chosen(stratified_counts(strata, n_boot, np.random.default_rng(seed), units))
        ok = _usable_resamples(form, logx, weights)
        failed = int((~ok).sum())
        if ok.any():
            boot_theta = refit_batch(form, logx, log_loss, weights[ok], warm, delta)
    return FitResult(form=form, params=_summarise(form, theta, boot_theta, n_sizes - len(theta), reason),
                     n_points=int(selected.sum()), n_boot=len(boot_theta), n_boot_failed=failed,
                     seed=seed, objective=best_value * delta, theta=theta, boot_theta=boot_theta,
                     n_sizes=n_sizes, resample="runs", ci_reason=reason)


def _distinct(thetas: Sequence[np.ndarray], limit: int) -> list:
    kept: list = []
    for theta in thetas:
        if len(kept) < max(limit, 1) and not any(np.allclose(theta, k, atol=1e-4) for k in kept):
            kept.append(theta)
    return kept


def natural_params(form: str, theta: np.ndarray) -> Dict[str, np.ndarray]:
    """Log-space theta (..., P) -> reported parameters {A, alpha, E, B, beta} on the natural scale."""
    theta = np.asarray(theta, float)
    out = {}
    for i, name in enumerate(_LOG_NAMES[form]):
        out[name.upper() if name in ("a", "b", "e") else name] = (
            np.exp(theta[..., i]) if name in ("a", "b", "e") else theta[..., i])
    return {name: out[name] for name in _REPORTED[form]}


def t_quantile(dof: int) -> float:
    """97.5th percentile of Student's t with `dof` degrees of freedom (NaN below 1)."""
    return float(student_t.ppf(0.975, dof)) if dof >= 1 else float("nan")


def _summarise(form: str, theta: np.ndarray, boot_theta: np.ndarray, dof: int,
               reason: Optional[str] = None) -> Dict[str, ParamEstimate]:
    """Estimates with 95% intervals theta +- t_{0.975, dof} * (bootstrap sd of theta), in the
    log-space theta (so A, E, B get multiplicative intervals, alpha and beta additive).

    Why not percentiles: the frontier is a minimum over seeds, and the bootstrap of a minimum
    understates its spread; percentile intervals covered a known exponent in 83-92% of synthetic
    sweeps (2-4 seeds, 6-8 sizes), these in 93-94% (tests/test_fit_coverage.py). The t quantile
    with dof = sizes - parameters is the small-sample interval of a regression (Student 1908).
    """
    point, samples = natural_params(form, theta), natural_params(form, boot_theta)
    q = t_quantile(dof)
    usable = len(boot_theta) >= 2 and reason is None and np.isfinite(q)
    if usable:
        spread = q * np.std(boot_theta, axis=0, ddof=1)
        low, high = natural_params(form, theta - spread), natural_params(form, theta + spread)
    out = {}
    for name, value in point.items():
        if usable:
            out[name] = ParamEstimate(float(value), float(np.std(samples[name], ddof=1)),
                                      float(low[name]), float(high[name]))
        else:
            out[name] = ParamEstimate(float(value), float("nan"), float("nan"), float("nan"))
    return out


def fit_power(x, loss, **kwargs) -> FitResult:
    """L = A x^-alpha (see fit_scaling_law for options)."""
    return fit_scaling_law(x, loss, form="power", **kwargs)


def fit_floor(x, loss, **kwargs) -> FitResult:
    """L = E + A x^-alpha (see fit_scaling_law for options)."""
    return fit_scaling_law(x, loss, form="floor", **kwargs)


def fit_two_var(n, d, loss, **kwargs) -> FitResult:
    """L(N, D) = E + A N^-alpha + B D^-beta (see fit_scaling_law for options)."""
    return fit_scaling_law(n, loss, form="two_var", d=d, **kwargs)

