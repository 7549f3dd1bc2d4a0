"""Scaling-law fits in log space: Huber loss, multi-start L-BFGS, seeded bootstrap.

Method of Hoffmann et al. 2022 (arXiv 2203.15556, App. D.2) as replicated by Besiroglu et al. 2024
(arXiv 2404.10102): with a = log A, b = log B, e = log E the predicted log-loss is
logsumexp(a - alpha log N, b - beta log D, e), and the sum of Huber(delta=1e-3) of
(predicted log L - log L) is minimised by L-BFGS from a grid of starting points.

Forms:  "power"   L = A X^-alpha
        "floor"   L = E + A X^-alpha
        "two_var" L(N, D) = E + A N^-alpha + B D^-beta

`python -m analysis.fit` (fits per group of a results folder) lives in analysis/fit_table.py.
"""
from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Dict, Optional, Sequence, Tuple

import numpy as np
from scipy.optimize import minimize
from scipy.special import huber

from analysis.errors import FitError

HUBER_DELTA = 1e-3  # Hoffmann et al. 2022, App. D.2
FORMS = ("power", "floor", "two_var")
# Internal vector theta = [a_1, alpha_1, (a_2, alpha_2), (e)]; reported names on the natural scale.
_LOG_NAMES = {"power": ("a", "alpha"), "floor": ("a", "alpha", "e"),
              "two_var": ("a", "alpha", "b", "beta", "e")}
_REPORTED = {"power": ("A", "alpha"), "floor": ("E", "A", "alpha"),
             "two_var": ("E", "A", "alpha", "B", "beta")}
_GRID_CHUNK = 2_000_000  # starts x points x terms evaluated at once when ranking the grid


@dataclass(frozen=True)
class ParamEstimate:
    estimate: float
    stderr: float  # standard deviation of the bootstrap estimates
    ci_low: float  # 2.5th percentile of the bootstrap estimates
    ci_high: float  # 97.5th percentile


@dataclass(frozen=True)
class FitResult:
    form: str
    params: Dict[str, ParamEstimate]
    n_points: int
    n_boot: int  # resamples that gave a fit
    n_boot_failed: int  # resamples with too few distinct x values to fit
    seed: int
    objective: float  # sum of Huber losses at the optimum
    theta: np.ndarray = field(repr=False, compare=False)  # (P,) log-space optimum
    boot_theta: np.ndarray = field(repr=False, compare=False)  # (n_boot, P) successful resamples

    def predict(self, x, d=None, theta: Optional[np.ndarray] = None) -> np.ndarray:
        """Loss at x (and d for two_var); theta (S, P) gives (S, len(x)) predictions."""
        logx = _log_covariates(np.atleast_1d(np.asarray(x, float)),
                               None if d is None else np.atleast_1d(np.asarray(d, float)))
        th = self.theta[None, :] if theta is None else np.atleast_2d(theta)
        pred, _ = _predict(th, logx, self.form != "power", jacobian=False)
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
        return {"form": self.form, "n_points": self.n_points, "n_boot": self.n_boot,
                "n_boot_failed": self.n_boot_failed, "seed": self.seed,
                "params": {name: vars(p).copy() for name, p in self.params.items()}}


def _log_covariates(x: np.ndarray, d: Optional[np.ndarray]) -> np.ndarray:
    cols = [np.log(x)] if d is None else [np.log(x), np.log(d)]
    return np.stack(cols, axis=1)  # (n, k)


def _predict(theta: np.ndarray, logx: np.ndarray, has_floor: bool, jacobian: bool = True):
    """Predicted log L (S, n) = logsumexp_j(a_j - alpha_j log x_j [, e]) and its Jacobian (S, n, P)."""
    k = logx.shape[1]
    a, alpha = theta[:, 0:2 * k:2], theta[:, 1:2 * k:2]  # (S, k)
    terms = a[:, None, :] - alpha[:, None, :] * logx[None, :, :]  # (S, n, k)
    if has_floor:
        e = np.broadcast_to(theta[:, None, 2 * k:2 * k + 1], terms.shape[:2] + (1,))
        terms = np.concatenate([terms, e], axis=2)  # (S, n, k+1)
    top = terms.max(axis=2, keepdims=True)
    weights = np.exp(terms - top)
    total = weights.sum(axis=2, keepdims=True)
    pred = (top + np.log(total))[..., 0]
    if not jacobian:
        return pred, None
    weights /= total  # softmax: d pred / d term_j
    jac = np.empty(terms.shape[:2] + (theta.shape[1],))
    jac[..., 0:2 * k:2] = weights[..., :k]
    jac[..., 1:2 * k:2] = -weights[..., :k] * logx[None, :, :]
    if has_floor:
        jac[..., 2 * k] = weights[..., k]
    return pred, jac


def _objective(theta: np.ndarray, logx: np.ndarray, log_loss: np.ndarray, has_floor: bool,
               delta: float) -> Tuple[float, np.ndarray]:
    """Sum of Huber(pred - log L) / delta and its gradient (scaled so L-BFGS tolerances bite).

    Written for one theta without the (S, n, P) Jacobian: this is the inner loop of every fit.
    """
    k = logx.shape[1]
    terms = theta[0:2 * k:2] - theta[1:2 * k:2] * logx  # (n, k)
    if has_floor:
        terms = np.concatenate([terms, np.full((len(terms), 1), theta[2 * k])], axis=1)
    if terms.shape[1] == 1:
        pred, weights = terms[:, 0], np.ones_like(terms)
    else:
        pred = np.logaddexp.reduce(terms, axis=1)
        weights = np.exp(terms - pred[:, None])  # softmax: d pred / d term_j
    resid = pred - log_loss
    value = huber(delta, resid).sum() / delta
    hw = (np.clip(resid, -delta, delta) / delta)[:, None] * weights  # Huber'(r) = clip(r, -d, d)
    grad = np.empty_like(theta)
    grad[0:2 * k:2] = hw[:, :k].sum(axis=0)
    grad[1:2 * k:2] = -(hw[:, :k] * logx).sum(axis=0)
    if has_floor:
        grad[2 * k] = hw[:, k].sum()
    return float(value), grad


def _grid_values(grid: np.ndarray, logx, log_loss, has_floor, delta) -> np.ndarray:
    """Objective at every starting point, vectorised in chunks."""
    chunk = max(1, _GRID_CHUNK // (len(log_loss) * (logx.shape[1] + 1)))
    out = []
    for start in range(0, len(grid), chunk):
        pred, _ = _predict(grid[start:start + chunk], logx, has_floor, jacobian=False)
        out.append(huber(delta, pred - log_loss[None, :]).sum(axis=1) / delta)
    return np.concatenate(out)


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


def _lbfgs(start, logx, log_loss, has_floor, delta):
    res = minimize(_objective, start, args=(logx, log_loss, has_floor, delta), jac=True,
                   method="L-BFGS-B", options={"maxiter": 2000, "ftol": 1e-13, "gtol": 1e-9})
    return float(res.fun), res.x


def _clean(x, loss, d) -> Tuple[np.ndarray, np.ndarray, Optional[np.ndarray]]:
    x, loss = np.asarray(x, float).ravel(), np.asarray(loss, float).ravel()
    d = None if d is None else np.asarray(d, float).ravel()
    if len(x) != len(loss) or (d is not None and len(d) != len(x)):
        raise FitError(f"x, loss (and d) must have the same length, got {len(x)} and {len(loss)}")
    keep = np.isfinite(x) & np.isfinite(loss) & (x > 0) & (loss > 0)
    if d is not None:
        keep &= np.isfinite(d) & (d > 0)
    return x[keep], loss[keep], None if d is None else d[keep]


def fit_scaling_law(x, loss, form: str = "power", d=None, n_boot: int = 1000, seed: int = 0,
                    grid: Optional[np.ndarray] = None, n_starts: Optional[int] = 16,
                    boot_starts: int = 3, delta: float = HUBER_DELTA) -> FitResult:
    """Fit `form` to points (x, loss) [and d for two_var]; non-finite or non-positive points are dropped.

    The grid (default: besiroglu_grid for two_var, auto_grid otherwise) is ranked by its objective
    in one vectorised pass; L-BFGS runs from the best `n_starts` (None = every start). Each bootstrap
    resample (points drawn with replacement, numpy Generator seeded by `seed`) is refit from the best
    `boot_starts` distinct optima of the point fit. Raises FitError when the fit cannot be made.
    """
    if form not in FORMS:
        raise FitError(f"unknown form {form!r}: use one of {', '.join(FORMS)}")
    if (form == "two_var") != (d is not None):
        raise FitError("give d (data size) for form two_var and only for it")
    x, loss, d = _clean(x, loss, d)
    n_params = len(_LOG_NAMES[form])
    if len(x) == 0:
        raise FitError("no points with finite positive x and loss to fit")
    if len(x) < n_params:
        raise FitError(f"only {len(x)} point{'s' * (len(x) != 1)} for the {n_params} parameters of "
                       f"form {form}: add runs of more sizes")
    if len(np.unique(x)) < 2 or (d is not None and len(np.unique(d)) < 2):
        raise FitError("only one distinct x value: a scaling law needs at least two sizes")
    logx, log_loss, has_floor = _log_covariates(x, d), np.log(loss), form != "power"
    starts = np.asarray(grid, float) if grid is not None else (
        besiroglu_grid() if form == "two_var" else auto_grid(form, logx, log_loss))
    if starts.ndim != 2 or starts.shape[1] != n_params:
        raise FitError(f"grid must have shape (S, {n_params}) for form {form}")
    order = np.argsort(_grid_values(starts, logx, log_loss, has_floor, delta), kind="stable")
    chosen = starts[order if n_starts is None else order[:n_starts]]
    optima = sorted((_lbfgs(s, logx, log_loss, has_floor, delta) for s in chosen),
                    key=lambda pair: pair[0])
    best_value, theta = optima[0]
    warm = _distinct([t for _, t in optima], boot_starts)

    rng = np.random.default_rng(seed)
    samples = [rng.integers(0, len(x), len(x)) for _ in range(n_boot)]
    usable = [idx for idx in samples
              if len(np.unique(x[idx])) >= 2 and (d is None or len(np.unique(d[idx])) >= 2)]
    failed = n_boot - len(usable)
    if form == "power" and usable:
        # log L = a - alpha log x is linear in theta: Huber regression is convex, so all resamples
        # are solved at once by iteratively reweighted least squares (same minimiser as L-BFGS).
        idx = np.array(usable)  # (n_boot, n)
        boot = list(_huber_irls(logx[idx, 0], log_loss[idx], delta, theta))
    else:
        boot = []
        for idx in usable:
            fits = [_lbfgs(s, logx[idx], log_loss[idx], has_floor, delta) for s in warm]
            boot.append(min(fits, key=lambda pair: pair[0])[1])
    boot_theta = np.array(boot).reshape(-1, n_params)
    return FitResult(form=form, params=_summarise(form, theta, boot_theta), n_points=len(x),
                     n_boot=len(boot_theta), n_boot_failed=failed, seed=seed,
                     objective=best_value * delta, theta=theta, boot_theta=boot_theta)


def _huber_irls(logx: np.ndarray, log_loss: np.ndarray, delta: float, theta0: np.ndarray,
                max_iter: int = 500, tol: float = 1e-12) -> np.ndarray:
    """Huber M-estimates of log L = a - alpha log x for a batch of resamples.

    logx, log_loss (B, n) -> theta (B, 2) = [a, alpha]. IRLS with weights min(1, delta/|r|)
    (Huber 1964; Holland & Welsch 1977) decreases the convex Huber objective at every step.
    """
    design = np.stack([np.ones_like(logx), -logx], axis=-1)  # (B, n, 2)
    theta = np.broadcast_to(np.asarray(theta0, float), (logx.shape[0], 2)).copy()
    for _ in range(max_iter):
        residual = np.einsum("bnp,bp->bn", design, theta) - log_loss  # (B, n)
        weights = np.minimum(1.0, delta / np.maximum(np.abs(residual), 1e-300))
        gram = np.einsum("bnp,bn,bnq->bpq", design, weights, design)  # (B, 2, 2)
        rhs = np.einsum("bnp,bn,bn->bp", design, weights, log_loss)
        new = np.linalg.solve(gram, rhs[..., None])[..., 0]
        done = np.max(np.abs(new - theta)) < tol
        theta = new
        if done:
            break
    return theta


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


def _summarise(form: str, theta: np.ndarray, boot_theta: np.ndarray) -> Dict[str, ParamEstimate]:
    point, samples = natural_params(form, theta), natural_params(form, boot_theta)
    out = {}
    for name, value in point.items():
        s = samples[name]
        if len(s) >= 2:
            low, high = np.percentile(s, [2.5, 97.5])
            out[name] = ParamEstimate(float(value), float(np.std(s, ddof=1)), float(low), float(high))
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


if __name__ == "__main__":
    from analysis.fit_table import main

    raise SystemExit(main())
