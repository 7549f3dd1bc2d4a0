"""The Huber objective of a scaling-law fit in log space and its solvers.

Predicted log-loss = logsumexp_j(a_j - alpha_j log x_j [, e]) (Hoffmann et al. 2022, App. D.2);
the objective is sum_i w_i Huber_delta(pred_i - log L_i) / delta. One point set is solved by
L-BFGS (`lbfgs`); a batch of weightings of the same points (bootstrap resamples, frontier masks,
multi-start rows) by `solve_batch`: IRLS for the convex power form (Huber 1964; Holland & Welsch
1977), damped Gauss-Newton on the IRLS-weighted objective otherwise (Levenberg 1944, Marquardt 1963).
Forms are named as in analysis.laws: "power" (no floor term), "floor" and "two_var" (with one).
"""
from __future__ import annotations

from typing import Sequence, Tuple

import numpy as np
from scipy.optimize import minimize
from scipy.special import huber

HUBER_DELTA = 1e-3  # Hoffmann et al. 2022, App. D.2
GRID_CHUNK = 2_000_000  # starts x points x terms evaluated at once when ranking the grid


def predict_log_loss(theta: np.ndarray, logx: np.ndarray, has_floor: bool, jacobian: bool = True):
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


def huber_objective(theta: np.ndarray, logx: np.ndarray, log_loss: np.ndarray, has_floor: bool,
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


def grid_values(grid: np.ndarray, logx, log_loss, has_floor, delta) -> np.ndarray:
    """Objective at every starting point, vectorised in chunks."""
    chunk = max(1, GRID_CHUNK // (len(log_loss) * (logx.shape[1] + 1)))
    out = []
    for start in range(0, len(grid), chunk):
        pred, _ = predict_log_loss(grid[start:start + chunk], logx, has_floor, jacobian=False)
        out.append(huber(delta, pred - log_loss[None, :]).sum(axis=1) / delta)
    return np.concatenate(out)


def lbfgs(start, logx, log_loss, has_floor, delta):
    res = minimize(huber_objective, start, args=(logx, log_loss, has_floor, delta), jac=True,
                   method="L-BFGS-B", options={"maxiter": 2000, "ftol": 1e-13, "gtol": 1e-9})
    return float(res.fun), res.x


def refit_batch(form: str, logx: np.ndarray, log_loss: np.ndarray, weights: np.ndarray,
                starts: Sequence[np.ndarray], delta: float = HUBER_DELTA) -> np.ndarray:
    """Minimise sum_i w_bi Huber(pred_i - log L_i) for every row b of weights at once.

    logx (n, k), log_loss (n,), weights (B, n) >= 0 (bootstrap counts or frontier masks), starts:
    log-space thetas (P,) to start every row from -> theta (B, P), the best optimum over the starts.
    """
    best_value, best_theta = None, None
    for start in starts:
        theta0 = np.broadcast_to(np.asarray(start, float), (weights.shape[0], len(start)))
        theta = solve_batch(form, logx, log_loss, weights, theta0, delta)
        value = batch_objective(theta, logx, log_loss, weights, form != "power", delta)
        if best_value is None:
            best_value, best_theta = value, theta
        else:
            better = value < best_value
            best_value = np.where(better, value, best_value)
            best_theta = np.where(better[:, None], theta, best_theta)
    return best_theta


def solve_batch(form, logx, log_loss, weights, theta0, delta) -> np.ndarray:
    """Row b of weights (B, n) solved from row b of theta0 (B, P): IRLS for the convex power form,
    damped Gauss-Newton otherwise."""
    if form == "power":
        return irls_power(logx[:, 0], log_loss, weights, delta, theta0)
    return levenberg_marquardt(logx, log_loss, weights, True, delta, theta0)


def batch_objective(theta, logx, log_loss, weights, has_floor, delta) -> np.ndarray:
    pred, _ = predict_log_loss(theta, logx, has_floor, jacobian=False)  # (B, n)
    return (weights * huber(delta, pred - log_loss[None, :])).sum(axis=1) / delta


def irls_power(logx: np.ndarray, log_loss: np.ndarray, weights: np.ndarray, delta: float,
                theta0: np.ndarray, max_iter: int = 500, tol: float = 1e-10) -> np.ndarray:
    """Weighted Huber M-estimates of log L = a - alpha log x for a batch of weightings.

    logx, log_loss (n,), weights (B, n), theta0 (B, 2) -> theta (B, 2) = [a, alpha]. IRLS with
    weights w min(1, delta/|r|) (Huber 1964; Holland & Welsch 1977) decreases the convex Huber
    objective at every step, so it reaches the same minimiser as L-BFGS. The 2x2 normal equations
    are solved in closed form; rows stop once their step is below tol.
    """
    theta = np.array(theta0, float, copy=True)
    active = np.arange(len(theta))
    for _ in range(max_iter):
        a, alpha, wt = theta[active, 0:1], theta[active, 1:2], weights[active]
        residual = a - alpha * logx[None, :] - log_loss[None, :]  # (b, n)
        w = wt * np.minimum(1.0, delta / np.maximum(np.abs(residual), 1e-300))
        # minimise sum w (a - alpha u - y)^2 over (a, alpha): weighted least squares of y on u
        s0, su, sy = w.sum(1), (w * logx).sum(1), (w * log_loss).sum(1)
        suu, suy = (w * logx ** 2).sum(1), (w * logx * log_loss).sum(1)
        det = s0 * suu - su ** 2
        slope = (s0 * suy - su * sy) / np.where(det > 0, det, np.inf)  # d log L / d log x
        new = np.stack([(sy - slope * su) / np.where(s0 > 0, s0, np.inf), -slope], axis=1)
        step = np.abs(new - theta[active]).max(axis=1)
        theta[active] = new
        active = active[step >= tol]
        if len(active) == 0:
            break
    return theta


def levenberg_marquardt(logx: np.ndarray, log_loss: np.ndarray, weights: np.ndarray, has_floor: bool,
              delta: float, theta0: np.ndarray, max_iter: int = 200, tol: float = 1e-8) -> np.ndarray:
    """Damped Gauss-Newton (Levenberg-Marquardt) on the IRLS-weighted Huber objective, batched.

    logx (n, k), log_loss (n,), weights (B, n), theta0 (B, P) -> theta (B, P). A step is kept only
    where it lowers the Huber objective (the IRLS quadratic majorises Huber), so it never rises.
    """
    batch = weights.shape[0]
    theta = np.array(theta0, float, copy=True)
    value = batch_objective(theta, logx, log_loss, weights, has_floor, delta)
    damping = np.full(batch, 1e-3)
    active = np.ones(batch, bool)
    eye = np.eye(theta.shape[1])
    for _ in range(max_iter):
        idx = np.flatnonzero(active)
        if len(idx) == 0:
            break
        th, wt = theta[idx], weights[idx]
        pred, jac = predict_log_loss(th, logx, has_floor)  # (b, n), (b, n, P)
        resid = pred - log_loss[None, :]
        w = wt * np.minimum(1.0, delta / np.maximum(np.abs(resid), 1e-300))
        grad = np.einsum("bnp,bn->bp", jac, w * resid)
        hess = np.einsum("bnp,bn,bnq->bpq", jac, w, jac)
        scale = np.einsum("bpp->bp", hess)[:, :, None] * eye + 1e-12 * eye  # Marquardt's diag(H)
        step = np.linalg.solve(hess + damping[idx, None, None] * scale, -grad[..., None])[..., 0]
        candidate = th + step
        cand_value = batch_objective(candidate, logx, log_loss, wt, has_floor, delta)
        better = cand_value <= value[idx]
        moved = np.max(np.abs(step), axis=1)
        gain = value[idx] - cand_value
        theta[idx[better]] = candidate[better]
        value[idx[better]] = cand_value[better]
        damping[idx] = np.where(better, np.maximum(damping[idx] / 3, 1e-12), damping[idx] * 4)
        stalled = (better & ((moved < tol) | (gain <= 1e-12 * np.maximum(1.0, value[idx])))) | (
            damping[idx] > 1e12)
        active[idx[stalled]] = False
    return theta
