"""The Feynman equations of the KAN paper's Table 2 (Liu et al. 2024, §3.3) in their dimensional form.

These are the dataset's formulas with all their variables (4-9 inputs), registered as
`feynman_dim_<id>`. The paper trains on the dimensionless forms of its "Dimensionless formula"
column instead (2-6 inputs): those are in `feynman_dimensionless.py` and are the claims' tasks.

Sources, each row checked against both:
- formulas: the Feynman_no_units dataset (Udrescu & Tegmark 2020, AI Feynman, FeynmanEquations.csv);
- variable order and ranges: pykan 0.2.8 `kan/feynman.py` (the paper gives no ranges; the dataset's
  own ranges, mostly [1, 5], are not what pykan samples).
Deliberate departures from pykan are marked `# != pykan` on the row.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Tuple

import numpy as np

PI = np.pi
UNIT = (-1.0, 1.0)
POSITIVE = (0.0, 1.0)
DENOMINATOR = (0.5, 2.0)  # pykan's range for variables that divide
ANGLE = (0.0, 2 * PI)


Shape = Tuple[int, ...]


@dataclass(frozen=True)
class FeynmanEquation:
    """One equation: f(*columns) on the box `ranges`, one (lo, hi) per name in `variables`.

    `task_prefix` names the task: "feynman_dim_" for the dimensional forms here, "feynman_" for
    the paper's dimensionless forms. The shapes are the paper's Table 2 KAN columns (dimensionless
    rows only): human-constructed, smallest pruned with test RMSE < 1e-2, pruned with lowest loss.
    """
    eq_id: str  # Feynman dataset id, e.g. "I.16.6"
    variables: Tuple[str, ...]
    ranges: Tuple[Tuple[float, float], ...]
    formula: str
    fn: Callable[..., np.ndarray]  # takes one (n,) column per variable, returns (n,)
    note: str = ""
    task_prefix: str = "feynman_dim_"
    human_shape: Shape = ()
    minimal_shape: Shape = ()
    best_shape: Shape = ()

    @property
    def task_name(self) -> str:
        return self.task_prefix + self.eq_id.replace(".", "_")


def sinc_squared(z: np.ndarray) -> np.ndarray:
    """sin(z)^2 / z^2, equal to 1 at z = 0 (np.sinc(t) = sin(pi t) / (pi t))."""
    return np.sinc(z / PI) ** 2


def sqrt_nonnegative(z: np.ndarray) -> np.ndarray:
    # For arguments that are a sum of squares in exact arithmetic; rounding can leave -1e-17.
    return np.sqrt(np.maximum(z, 0.0))


E = FeynmanEquation
FEYNMAN_DIMENSIONAL_EQUATIONS: Tuple[FeynmanEquation, ...] = (
    E("I.6.20", ("theta", "sigma"), (UNIT, DENOMINATOR),
      "exp(-theta^2 / (2 sigma^2)) / sqrt(2 pi sigma^2)",
      lambda theta, sigma: np.exp(-theta**2 / (2 * sigma**2)) / np.sqrt(2 * PI * sigma**2),
      "the dataset's csv spells it I.6.2 (trailing 0 lost)"),
    E("I.6.20b", ("theta", "theta1", "sigma"), ((-1.5, 1.5), (-1.5, 1.5), DENOMINATOR),
      "exp(-(theta - theta1)^2 / (2 sigma^2)) / sqrt(2 pi sigma^2)",
      lambda theta, theta1, sigma:
          np.exp(-(theta - theta1)**2 / (2 * sigma**2)) / np.sqrt(2 * PI * sigma**2)),
    E("I.9.18", ("G", "m1", "m2", "x1", "x2", "y1", "y2", "z1", "z2"),
      (UNIT, UNIT, UNIT) + ((-1.0, -0.5), (0.5, 1.0)) * 3,
      "G m1 m2 / ((x2 - x1)^2 + (y2 - y1)^2 + (z2 - z1)^2)",
      lambda G, m1, m2, x1, x2, y1, y2, z1, z2:
          G * m1 * m2 / ((x2 - x1)**2 + (y2 - y1)**2 + (z2 - z1)**2)),
    E("I.12.11", ("q", "Ef", "B", "v", "theta"), (UNIT, UNIT, UNIT, UNIT, ANGLE),
      "q (Ef + B v sin(theta))",
      lambda q, Ef, B, v, theta: q * (Ef + B * v * np.sin(theta))),
    E("I.13.12", ("G", "m1", "m2", "r1", "r2"), (POSITIVE,) * 3 + (DENOMINATOR,) * 2,
      "G m1 m2 (1/r2 - 1/r1)",
      lambda G, m1, m2, r1, r2: G * m1 * m2 * (1 / r2 - 1 / r1)),
    E("I.15.3x", ("x", "u", "t", "c"), (UNIT, UNIT, UNIT, (1.0, 2.0)),
      "(x - u t) / sqrt(1 - u^2 / c^2)",
      lambda x, u, t, c: (x - u * t) / np.sqrt(1 - u**2 / c**2),
      "pykan's box reaches u = c = 1, where the label diverges; finite but heavy-tailed"),
    E("I.16.6", ("u", "v", "c"), ((-0.8, 0.8), (-0.8, 0.8), (1.0, 2.0)),
      "(u + v) / (1 + u v / c^2)",
      lambda u, v, c: (u + v) / (1 + u * v / c**2),  # != pykan: its lambda has u v on top
      "pykan 0.2.8's lambda computes u v / (1 + u v / c^2); its sympy expr is right"),
    E("I.18.4", ("m1", "r1", "m2", "r2"), ((0.5, 1.0), UNIT, (0.5, 1.0), UNIT),
      "(m1 r1 + m2 r2) / (m1 + m2)",
      lambda m1, r1, m2, r2: (m1 * r1 + m2 * r2) / (m1 + m2),
      "pykan also names I.18.12 'I.18.4', so get_feynman_dataset('I.18.4') returns r F sin(theta)"),
    E("I.26.2", ("n", "theta2"), ((0.0, 0.99), ANGLE),
      "arcsin(n sin(theta2))",
      lambda n, theta2: np.arcsin(n * np.sin(theta2))),
    E("I.27.6", ("d1", "d2", "n"), (DENOMINATOR, (1.0, 2.0), DENOMINATOR),
      "1 / (1/d1 + n/d2)",
      lambda d1, d2, n: 1 / (1 / d1 + n / d2)),
    E("I.29.16", ("x1", "x2", "theta1", "theta2"), (UNIT, UNIT, ANGLE, ANGLE),
      "sqrt(x1^2 + x2^2 - 2 x1 x2 cos(theta1 - theta2))",
      lambda x1, x2, theta1, theta2:
          sqrt_nonnegative(x1**2 + x2**2 - 2 * x1 * x2 * np.cos(theta1 - theta2))),
    E("I.30.3", ("I0", "n", "theta"), (POSITIVE, (0.0, 4.0), (0.4 * PI, 1.6 * PI)),
      "I0 sin^2(n theta / 2) / sin^2(theta / 2)",
      lambda I0, n, theta: I0 * np.sin(n * theta / 2)**2 / np.sin(theta / 2)**2),
    E("I.30.5", ("lambd", "n", "d"), (UNIT, (1.0, 1.5), (1.0, 1.5)),
      "arcsin(lambd / (n d))",
      lambda lambd, n, d: np.arcsin(lambd / (n * d))),
    E("I.37.4", ("I1", "I2", "delta"), ((0.1, 1.0), (0.1, 1.0), ANGLE),
      "I1 + I2 + 2 sqrt(I1 I2) cos(delta)",
      lambda I1, I2, delta: I1 + I2 + 2 * np.sqrt(I1 * I2) * np.cos(delta)),
    E("I.40.1", ("n0", "m", "g", "x", "kb", "T"), (POSITIVE,) + (UNIT,) * 3 + ((1.0, 2.0),) * 2,
      "n0 exp(-m g x / (kb T))",
      lambda n0, m, g, x, kb, T: n0 * np.exp(-m * g * x / (kb * T))),
    E("I.44.4", ("n", "kb", "T", "V1", "V2"), (POSITIVE,) * 3 + (DENOMINATOR,) * 2,
      "n kb T ln(V2 / V1)",
      lambda n, kb, T, V1, V2: n * kb * T * np.log(V2 / V1)),
    E("I.50.26", ("x1", "alpha", "omega", "t"), (POSITIVE, POSITIVE, ANGLE, POSITIVE),
      "x1 (cos(omega t) + alpha cos^2(omega t))",
      lambda x1, alpha, omega, t: x1 * (np.cos(omega * t) + alpha * np.cos(omega * t)**2)),
    E("II.2.42", ("kappa", "T1", "T2", "A", "d"), (POSITIVE,) * 4 + (DENOMINATOR,),
      "kappa (T2 - T1) A / d",
      lambda kappa, T1, T2, A, d: kappa * (T2 - T1) * A / d),
    E("II.6.15a", ("epsilon", "p_d", "z", "x", "y", "r"),
      (DENOMINATOR, POSITIVE, POSITIVE, POSITIVE, POSITIVE, DENOMINATOR),
      "3 / (4 pi epsilon) p_d z / r^5 sqrt(x^2 + y^2)",
      lambda epsilon, p_d, z, x, y, r:
          3 / (4 * PI * epsilon) * p_d * z / r**5 * np.sqrt(x**2 + y**2),
      "r is sampled independently of x, y, z, as in the dataset"),
    E("II.11.17", ("n0", "p_d", "Ef", "theta", "kb", "T"),
      (POSITIVE, UNIT, UNIT, ANGLE, DENOMINATOR, DENOMINATOR),
      "n0 (1 + p_d Ef cos(theta) / (kb T))",
      lambda n0, p_d, Ef, theta, kb, T: n0 * (1 + p_d * Ef * np.cos(theta) / (kb * T)),
      "the KAN paper's Table 2 labels this row II.11.7; the dataset's id is II.11.17"),
    E("II.11.27", ("n", "alpha", "epsilon", "Ef"), (POSITIVE, (0.0, 2.0), POSITIVE, POSITIVE),
      "n alpha / (1 - n alpha / 3) epsilon Ef",
      lambda n, alpha, epsilon, Ef: n * alpha / (1 - n * alpha / 3) * epsilon * Ef),
    E("II.35.18", ("n0", "mu", "B", "kb", "T"), (POSITIVE,) * 3 + (DENOMINATOR,) * 2,
      "n0 / (exp(mu B / (kb T)) + exp(-mu B / (kb T)))",
      lambda n0, mu, B, kb, T: n0 / (np.exp(mu * B / (kb * T)) + np.exp(-mu * B / (kb * T)))),
    E("II.36.38", ("mu", "B", "kb", "T", "alpha", "M", "epsilon", "c"),
      (POSITIVE, POSITIVE, DENOMINATOR, DENOMINATOR, POSITIVE, POSITIVE, DENOMINATOR, DENOMINATOR),
      "mu B / (kb T) + mu alpha M / (epsilon c^2 kb T)",
      lambda mu, B, kb, T, alpha, M, epsilon, c:
          mu * B / (kb * T) + mu * alpha * M / (epsilon * c**2 * kb * T)),
    E("II.38.3", ("Y", "A", "x", "d"), (POSITIVE, POSITIVE, POSITIVE, DENOMINATOR),
      "Y A x / d",
      lambda Y, A, x, d: Y * A * x / d),
    E("III.9.52", ("p_d", "Ef", "t", "hbar", "omega", "omega0"),
      (POSITIVE, POSITIVE, POSITIVE, DENOMINATOR, (0.0, PI), (0.0, PI)),
      "p_d Ef t / hbar sin^2((omega - omega0) t / 2) / ((omega - omega0) t / 2)^2",
      lambda p_d, Ef, t, hbar, omega, omega0:
          p_d * Ef * t / hbar * sinc_squared((omega - omega0) * t / 2),
      "the dataset writes h / (2 pi) where pykan samples hbar; sin^2(z)/z^2 is 1 at z = 0"),
    E("III.10.19", ("mu", "Bx", "By", "Bz"), (POSITIVE, POSITIVE, POSITIVE, POSITIVE),
      "mu sqrt(Bx^2 + By^2 + Bz^2)",
      lambda mu, Bx, By, Bz: mu * np.sqrt(Bx**2 + By**2 + Bz**2)),
    E("III.17.37", ("beta", "alpha", "theta"), (POSITIVE, POSITIVE, ANGLE),
      "beta (1 + alpha cos(theta))",
      lambda beta, alpha, theta: beta * (1 + alpha * np.cos(theta))),
)
del E
