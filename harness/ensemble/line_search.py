"""One member's strong-Wolfe line search as a state machine, for `BatchedLBFGS`.

Nocedal & Wright 2006, Alg. 3.5 (bracketing) and Alg. 3.6 (zoom), with the cubic interpolation of
their eq. (3.59); constants, safeguards and termination follow torch.optim.LBFGS's strong-Wolfe
search, which pykan 0.2.8's `kan.LBFGS` copies unchanged (only the evaluation budget `max_ls` it
is given differs: see `batched_lbfgs.RULES`). The search
is a generator: it yields the step lengths it wants evaluated and receives (f, g'd) there, so that
the driver can evaluate all members of a stack in one batched pass.

Scalars are Python floats. torch's search mixes floats and 0-dim tensors, and divides a float by a
tensor as a multiplication by its reciprocal (and its CPU sqrt may be SLEEF's): its step lengths
can differ from ours in the last bit, which L-BFGS amplifies over many iterations.
"""
from __future__ import annotations

import math
from typing import Generator, Optional, Tuple

# Where a line-search point's gradient is kept (see `strong_wolfe`).
G0, PREV, LOW, NEW = "g0", "prev", "low", "new"


def cubic_minimizer(x1: float, f1: float, g1: float, x2: float, f2: float, g2: float,
                    bounds: Optional[Tuple[float, float]] = None) -> float:
    """Minimiser of the cubic through (x1, f1, g1), (x2, f2, g2), clamped to bounds (default the
    interval); N&W eq. (3.59) written from the larger abscissa; the bounds' midpoint if the cubic
    has no minimiser."""
    lo, hi = bounds if bounds is not None else ((x1, x2) if x1 <= x2 else (x2, x1))
    d1 = g1 + g2 - 3 * (f1 - f2) / (x1 - x2)
    d2_square = d1 * d1 - g1 * g2
    if not d2_square >= 0:
        return (lo + hi) / 2.0
    d2 = math.sqrt(d2_square)
    if x1 <= x2:
        min_pos = x2 - (x2 - x1) * ((g2 + d2 - d1) / (g2 - g1 + 2 * d2))
    else:
        min_pos = x1 - (x1 - x2) * ((g1 + d2 - d1) / (g1 - g2 + 2 * d2))
    return min(max(min_pos, lo), hi)


Search = Generator[Tuple[float, Optional[str]], Tuple[float, float], Tuple[float, float, str]]


def strong_wolfe(t: float, f: float, gtd: float, d_norm: float, c1: float = 1e-4, c2: float = 0.9,
                 tolerance_change: float = 1e-9, max_ls: int = 25) -> Search:
    """One member's strong-Wolfe line search along d from a point with loss f and slope gtd = g'd.

    Yields (t, store): evaluate at x + t d, and first keep the gradient evaluated last in buffer
    `store` (PREV or LOW; None = not needed). Receives (f(x + t d), g(x + t d)'d). Returns
    (t, f, where) of the accepted point, `where` naming the buffer holding its gradient: G0 (the
    starting point's), PREV, LOW, or NEW (the last evaluation). Only the gradient of the lowest
    point of the bracket is ever needed, so these three buffers suffice.
    """
    f_new, gtd_new = yield t, None
    t_prev, f_prev, gtd_prev, where_prev = 0.0, f, gtd, G0
    n_iter, done = 0, False
    while True:  # bracketing (N&W Alg. 3.5)
        if n_iter >= max_ls:  # budget spent: the bracket is [0, t]
            points = [[0.0, f, None, G0], [t, f_new, gtd_new, NEW]]
            break
        if f_new > f + c1 * t * gtd or (n_iter > 1 and f_new >= f_prev):  # no sufficient decrease
            points = [[t_prev, f_prev, gtd_prev, where_prev], [t, f_new, gtd_new, NEW]]
            break
        if abs(gtd_new) <= -c2 * gtd:  # strong Wolfe conditions hold
            points = [[t, f_new, gtd_new, NEW]]
            done = True
            break
        if gtd_new >= 0:  # the slope turned: a minimiser lies in [t_prev, t]
            points = [[t_prev, f_prev, gtd_prev, where_prev], [t, f_new, gtd_new, NEW]]
            break
        t_next = cubic_minimizer(t_prev, f_prev, gtd_prev, t, f_new, gtd_new,
                                 bounds=(t + 0.01 * (t - t_prev), t * 10))
        t_prev, f_prev, gtd_prev, where_prev = t, f_new, gtd_new, PREV
        t = t_next
        f_new, gtd_new = yield t, PREV
        n_iter += 1
    low, high = (0, 1) if points[0][1] <= points[-1][1] else (1, 0)
    insufficient = False
    while not done and n_iter < max_ls:  # zoom (N&W Alg. 3.6)
        (t_a, f_a, g_a, _), (t_b, f_b, g_b, _) = points
        if abs(t_b - t_a) * d_norm < tolerance_change:
            break
        t = cubic_minimizer(t_a, f_a, g_a, t_b, f_b, g_b)
        top, bottom = max(t_a, t_b), min(t_a, t_b)
        eps = 0.1 * (top - bottom)
        if min(top - t, t - bottom) < eps:  # too close to an end: move 0.1 of the bracket inside
            if insufficient or t >= top or t <= bottom:
                t = top - eps if abs(t - top) < abs(t - bottom) else bottom + eps
                insufficient = False
            else:
                insufficient = True
        else:
            insufficient = False
        store = None
        if points[low][3] == NEW:  # the next evaluation overwrites NEW: keep the low point's
            points[low][3], store = LOW, LOW
        points[high][3] = None  # never needed: a high point never becomes the low one
        f_new, gtd_new = yield t, store
        n_iter += 1
        if f_new > f + c1 * t * gtd or f_new >= points[low][1]:
            points[high] = [t, f_new, gtd_new, NEW]
            low, high = (0, 1) if points[0][1] <= points[1][1] else (1, 0)
        else:
            if abs(gtd_new) <= -c2 * gtd:
                done = True
            elif gtd_new * (points[high][0] - points[low][0]) >= 0:
                points[high] = list(points[low])
            points[low] = [t, f_new, gtd_new, NEW]
    t, f_low, _, where = points[low]
    assert where is not None
    return t, f_low, where
