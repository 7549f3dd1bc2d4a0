"""The KAN paper's Feynman tasks: the 27 rows of Table 2 (Liu et al. 2024, §3.3) in the
"Dimensionless formula" form the paper trains on, with its variables and KAN shapes.

Formulas, variables (in the order of the table's "Variables" column) and the three KAN shapes are
the table's. Rows keep the Feynman dataset's ids (the table's "I.6.2", "I.6.2b" and "II.11.7" are
I.6.20, I.6.20b and II.11.17), so `feynman_<id>` names the same equation as `feynman_dim_<id>`.

The paper gives no sampling ranges for these forms; this module fixes them by three rules, and
each row says which one it uses:
- `pykan`: a variable that keeps its name from the dimensional formula (theta, sigma, n, n0, alpha,
  beta, delta) keeps pykan 0.2.8's range for it (`kan/feynman.py`, as in `feynman_table.py`);
- `paper`: a new dimensionless group (a, b, ...) is drawn from (-1, 1), the box §3.3 states for
  its worked example (u_i, v_i in (-1, 1) for (u + v) / (1 + u v), row I.16.6);
- `span`: where (-1, 1) would reach a pole, a log or sqrt of a negative number, or where the group
  is a phase omega t, the group takes the range it spans over pykan's dimensional box (e.g.
  a = V2/V1 with V1, V2 in [0.5, 2] spans [0.25, 4]); the row's note gives the reason.
Four rows coincide with their dimensional form: I.6.20, I.6.20b, I.26.2, III.17.37.
"""
from __future__ import annotations

from typing import Tuple

import numpy as np

from harness.tasks.feynman_table import (ANGLE, DENOMINATOR, PI, POSITIVE, UNIT, FeynmanEquation,
                                         sinc_squared, sqrt_nonnegative)

PAPER = UNIT  # §3.3: "randomly drawing u_i in (-1, 1)"


def _row(eq_id, variables, ranges, formula, fn, shapes, note=""):
    human, minimal, best = shapes
    return FeynmanEquation(eq_id, variables, ranges, formula, fn, note, task_prefix="feynman_",
                           human_shape=human, minimal_shape=minimal, best_shape=best)


# Each row: id, variables, ranges, formula, f, (human, minimal pruned, lowest-loss pruned) shapes.
FEYNMAN_DIMENSIONLESS_EQUATIONS: Tuple[FeynmanEquation, ...] = (
    _row("I.6.20", ("theta", "sigma"), (UNIT, DENOMINATOR),
         "exp(-theta^2 / (2 sigma^2)) / sqrt(2 pi sigma^2)",
         lambda theta, sigma: np.exp(-theta**2 / (2 * sigma**2)) / np.sqrt(2 * PI * sigma**2),
         ((2, 2, 1, 1), (2, 2, 1), (2, 2, 1, 1)), "pykan ranges; same as the dimensional form"),
    _row("I.6.20b", ("theta", "theta1", "sigma"), ((-1.5, 1.5), (-1.5, 1.5), DENOMINATOR),
         "exp(-(theta - theta1)^2 / (2 sigma^2)) / sqrt(2 pi sigma^2)",
         lambda theta, theta1, sigma:
             np.exp(-(theta - theta1)**2 / (2 * sigma**2)) / np.sqrt(2 * PI * sigma**2),
         ((3, 2, 2, 1, 1), (3, 4, 1), (3, 2, 2, 1, 1)), "pykan ranges; same as the dimensional form"),
    _row("I.9.18", ("a", "b", "c", "d", "e", "f"),
         (PAPER, PAPER, (-1.0, -0.5), (0.5, 1.0), (-1.0, -0.5), (0.5, 1.0)),
         "a / ((b - 1)^2 + (c - d)^2 + (e - f)^2)",
         lambda a, b, c, d, e, f: a / ((b - 1)**2 + (c - d)**2 + (e - f)**2),
         ((6, 4, 2, 1, 1), (6, 4, 1, 1), (6, 4, 1, 1)),
         "paper for a, b; c..f take pykan's boxes for y1, y2, z1, z2 (they keep the denominator "
         ">= 2, away from its pole)"),
    _row("I.12.11", ("a", "theta"), (PAPER, ANGLE), "1 + a sin(theta)",
         lambda a, theta: 1 + a * np.sin(theta),
         ((2, 2, 2, 1), (2, 2, 1), (2, 2, 1)), "paper for a, pykan for theta"),
    _row("I.13.12", ("a", "b"), (PAPER, (0.25, 4.0)), "a (1/b - 1)",
         lambda a, b: a * (1 / b - 1),
         ((2, 2, 1), (2, 2, 1), (2, 2, 1)),
         "span for b = r2/r1 (r1, r2 in [0.5, 2]; pole at b = 0)"),
    _row("I.15.3x", ("a", "b"), (PAPER, (-0.9, 0.9)), "(1 - a) / sqrt(1 - b^2)",
         lambda a, b: (1 - a) / np.sqrt(1 - b**2),
         ((2, 2, 1, 1), (2, 1, 1), (2, 2, 1, 1, 1)),
         "b = u/c: pole at |b| = 1, so pykan's [-0.9, 0.9] for v in the same sqrt(1 - v^2/c^2) "
         "(I.15.10)"),
    _row("I.16.6", ("a", "b"), (PAPER, PAPER), "(a + b) / (1 + a b)",
         lambda a, b: (a + b) / (1 + a * b),
         ((2, 2, 2, 2, 2, 1), (2, 2, 1), (2, 2, 1)), "paper: the box of §3.3's worked example"),
    _row("I.18.4", ("a", "b"), ((0.5, 2.0), PAPER), "(1 + a b) / (1 + a)",
         lambda a, b: (1 + a * b) / (1 + a),
         ((2, 2, 2, 1, 1), (2, 2, 1), (2, 2, 1)),
         "span for the mass ratio a = m2/m1 (m1, m2 in [0.5, 1]; pole at a = -1)"),
    _row("I.26.2", ("n", "theta2"), ((0.0, 0.99), ANGLE), "arcsin(n sin(theta2))",
         lambda n, theta2: np.arcsin(n * np.sin(theta2)),
         ((2, 2, 2, 1, 1), (2, 2, 1), (2, 2, 2, 1, 1)), "pykan ranges; same as the dimensional form"),
    _row("I.27.6", ("a", "b"), ((0.5, 2.0), (0.25, 2.0)), "1 / (1 + a b)",
         lambda a, b: 1 / (1 + a * b),
         ((2, 2, 1, 1), (2, 1, 1), (2, 1, 1)),
         "span for a = n (in [0.5, 2]) and b = d1/d2 (d1 in [0.5, 2], d2 in [1, 2]); on (-1, 1)^2 "
         "the pole a b = -1 sits at two corners"),
    _row("I.29.16", ("a", "theta1", "theta2"), (PAPER, ANGLE, ANGLE),
         "sqrt(1 + a^2 - 2 a cos(theta1 - theta2))",
         lambda a, theta1, theta2: sqrt_nonnegative(1 + a**2 - 2 * a * np.cos(theta1 - theta2)),
         ((3, 2, 2, 3, 2, 1, 1), (3, 2, 2, 1), (3, 2, 3, 1)), "paper for a, pykan for the angles"),
    _row("I.30.3", ("n", "theta"), ((0.0, 4.0), (0.4 * PI, 1.6 * PI)),
         "sin^2(n theta / 2) / sin^2(theta / 2)",
         lambda n, theta: np.sin(n * theta / 2)**2 / np.sin(theta / 2)**2,
         ((2, 3, 2, 2, 1, 1), (2, 4, 3, 1), (2, 3, 2, 3, 1, 1)), "pykan ranges"),
    _row("I.30.5", ("a", "n"), (PAPER, (1.0, 1.5)), "arcsin(a / n)",
         lambda a, n: np.arcsin(a / n),
         ((2, 1, 1), (2, 1, 1), (2, 1, 1, 1, 1, 1)), "paper for a, pykan for n (|a/n| <= 1)"),
    _row("I.37.4", ("a", "delta"), ((0.1, 10.0), ANGLE), "1 + a + 2 sqrt(a) cos(delta)",
         lambda a, delta: 1 + a + 2 * np.sqrt(a) * np.cos(delta),
         ((2, 3, 2, 1), (2, 2, 1), (2, 2, 1)),
         "span for the intensity ratio a = I2/I1 (I1, I2 in [0.1, 1]; sqrt(a) needs a >= 0)"),
    _row("I.40.1", ("n0", "a"), (POSITIVE, PAPER), "n0 exp(-a)",
         lambda n0, a: n0 * np.exp(-a),
         ((2, 1, 1), (2, 2, 1), (2, 2, 1, 1, 1, 2, 1)), "pykan for n0, paper for a"),
    _row("I.44.4", ("n", "a"), (POSITIVE, (0.25, 4.0)), "n ln(a)",
         lambda n, a: n * np.log(a),
         ((2, 2, 1), (2, 2, 1), (2, 2, 1)),
         "pykan for n; span for a = V2/V1 (V1, V2 in [0.5, 2]; log needs a > 0)"),
    _row("I.50.26", ("a", "alpha"), (ANGLE, POSITIVE), "cos(a) + alpha cos^2(a)",
         lambda a, alpha: np.cos(a) + alpha * np.cos(a)**2,
         ((2, 2, 3, 1), (2, 3, 1), (2, 3, 2, 1)),
         "span for the phase a = omega t (omega in [0, 2 pi], t in [0, 1]); pykan for alpha"),
    _row("II.2.42", ("a", "b"), (PAPER, PAPER), "(a - 1) b",
         lambda a, b: (a - 1) * b,
         ((2, 2, 1), (2, 2, 1), (2, 2, 2, 1)), "paper ranges"),
    _row("II.6.15a", ("a", "b", "c"), (PAPER, PAPER, PAPER), "c sqrt(a^2 + b^2) / (4 pi)",
         lambda a, b, c: c * np.sqrt(a**2 + b**2) / (4 * PI),
         ((3, 2, 2, 2, 1), (3, 2, 1, 1), (3, 2, 1, 1)),
         "paper ranges; the table writes 1/(4 pi), dropping the dimensional form's factor 3"),
    _row("II.11.17", ("n0", "a", "theta"), (POSITIVE, PAPER, ANGLE), "n0 (1 + a cos(theta))",
         lambda n0, a, theta: n0 * (1 + a * np.cos(theta)),
         ((3, 3, 3, 2, 2, 1), (3, 3, 1, 1), (3, 3, 1, 1)),
         "pykan for n0 and theta, paper for a; the table labels this row II.11.7"),
    _row("II.11.27", ("n", "alpha"), (POSITIVE, (0.0, 2.0)), "n alpha / (1 - n alpha / 3)",
         lambda n, alpha: n * alpha / (1 - n * alpha / 3),
         ((2, 2, 1, 2, 1), (2, 1, 1), (2, 2, 1)), "pykan ranges (n alpha <= 2, below the pole at 3)"),
    _row("II.35.18", ("n0", "a"), (POSITIVE, PAPER), "n0 / (exp(a) + exp(-a))",
         lambda n0, a: n0 / (np.exp(a) + np.exp(-a)),
         ((2, 1, 1), (2, 1, 1), (2, 1, 1, 1)), "pykan for n0, paper for a"),
    _row("II.36.38", ("a", "alpha", "b"), (PAPER, POSITIVE, PAPER), "a + alpha b",
         lambda a, alpha, b: a + alpha * b,
         ((3, 3, 1), (3, 2, 1), (3, 2, 1)), "paper for a, b; pykan for alpha"),
    _row("II.38.3", ("a", "b"), (PAPER, DENOMINATOR), "a / b",
         lambda a, b: a / b,
         ((2, 1, 1), (2, 1, 1), (2, 2, 1, 1, 1)),
         "paper for a; b divides (pole at 0), so pykan's [0.5, 2] for the divisor d"),
    _row("III.9.52", ("a", "b", "c"), (PAPER, (0.0, PI), (0.0, PI)),
         "a sin^2((b - c) / 2) / ((b - c) / 2)^2",
         lambda a, b, c: a * sinc_squared((b - c) / 2),
         ((3, 2, 3, 1, 1), (3, 3, 2, 1), (3, 3, 2, 1, 1, 1)),
         "paper for a; span for the phases b = omega t, c = omega0 t (omega, omega0 in [0, pi], "
         "t in [0, 1]); sin^2(z)/z^2 is 1 at z = 0"),
    _row("III.10.19", ("a", "b"), (PAPER, PAPER), "sqrt(1 + a^2 + b^2)",
         lambda a, b: np.sqrt(1 + a**2 + b**2),
         ((2, 1, 1), (2, 1, 1), (2, 1, 2, 1)), "paper ranges"),
    _row("III.17.37", ("alpha", "beta", "theta"), (POSITIVE, POSITIVE, ANGLE),
         "beta (1 + alpha cos(theta))",
         lambda alpha, beta, theta: beta * (1 + alpha * np.cos(theta)),
         ((3, 3, 3, 2, 2, 1), (3, 3, 1), (3, 3, 1)),
         "pykan ranges; same as the dimensional form (the table orders the variables alpha, beta)"),
)
