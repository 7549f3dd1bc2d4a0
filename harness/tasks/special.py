"""The 15 special functions of the KAN paper (Liu et al. 2024, §3.2, Table 1 "Special functions").

Each is f(x, y) with the two inputs in the order of the paper's scipy call (e.g. `jv(x, y)`: x is
the order, y the argument). The paper names the scipy API but not the sampling box, so each domain
here is pykan's default box [-1, 1] per input (`kan.utils.create_dataset`) unless the function is
complex, undefined or singular there; every such change is stated with its reason.
"""
from __future__ import annotations

from typing import Callable

import numpy as np
from scipy import special as sp

from harness.tasks import register
from harness.tasks.base import Task

PI = np.pi
SYMMETRIC = (-1.0, 1.0)  # pykan create_dataset's default range
# Bessel argument: Y_nu, K_nu (and J_nu, I_nu for nu < 0) blow up as x -> 0+ (DLMF §10.7(i),
# §10.30(i)), and J_nu, Y_nu are complex for x < 0; [0.5, 2] keeps every label O(1) (|f| < 2.3).
BESSEL_ARGUMENT = (0.5, 2.0)
# Legendre degree nu in [0, 2] holds the integer degrees 0, 1, 2 (closed forms in the tests);
# argument in [-0.9, 0.9]: for non-integer nu, P_nu^m(x) is singular at x = -1 (DLMF §14.8(i):
# log for m = 0, (1 + x)^(-m/2) for m > 0); on [-1, 1] labels of m = 2 reach 1e5.
LEGENDRE_DEGREE = (0.0, 2.0)
LEGENDRE_ARGUMENT = (-0.9, 0.9)
# Spherical harmonics: (azimuth, polar) on scipy's documented box [0, 2 pi] x [0, pi]; scipy
# evaluates a negative polar angle as its absolute value (|sin|), which is not Y_n^m's formula.
AZIMUTH = (0.0, 2 * PI)
POLAR = (0.0, PI)


def _two_args(f: Callable[..., np.ndarray]) -> Callable[[np.ndarray], np.ndarray]:
    """Adapt a scipy ufunc f(x, y) to the Task convention: (n, 2) float64 -> (n,)."""
    def fn(inputs: np.ndarray) -> np.ndarray:
        return f(inputs[:, 0], inputs[:, 1])
    return fn


def sph_harm_real(m: int, n: int, azimuth: np.ndarray, polar: np.ndarray) -> np.ndarray:
    """Re Y_n^m(polar, azimuth), with the Condon-Shortley phase (scipy's convention).

    The paper's `sph_harm(m, n, x, y)` is scipy's pre-1.15 API: x azimuth, y polar, complex output.
    SciPy 1.15 deprecated it and 1.17 removed it in favour of `sph_harm_y(n, m, polar, azimuth)`
    (degree first, angles swapped). The real part keeps the azimuthal dependence (cos(m x)) that
    the paper's [2, 2, 1] shapes for m > 0 need; |Y| would depend on the polar angle only.
    """
    if hasattr(sp, "sph_harm_y"):
        value = sp.sph_harm_y(n, m, polar, azimuth)
    else:  # scipy < 1.15
        value = sp.sph_harm(m, n, azimuth, polar)
    return np.real(value)


def _sph_harm(m: int, n: int) -> Callable[[np.ndarray], np.ndarray]:
    def fn(inputs: np.ndarray) -> np.ndarray:
        return sph_harm_real(m, n, inputs[:, 0], inputs[:, 1])
    return fn


def _lpmv(m: int) -> Callable[[np.ndarray], np.ndarray]:
    def fn(inputs: np.ndarray) -> np.ndarray:
        return sp.lpmv(m, inputs[:, 0], inputs[:, 1])
    return fn


def _jacobi_sn(inputs: np.ndarray) -> np.ndarray:
    # ellipj returns (sn, cn, dn, ph); the paper's KAN has one output, so one component: sn.
    return sp.ellipj(inputs[:, 0], inputs[:, 1])[0]


_BESSEL_DOC = "order nu in [-1, 1], argument x in [0.5, 2] (avoids the x -> 0 singularity)"
_TABLE = [
    # (name, fn, domain, description); rows in the order of the paper's Table 1.
    ("special_ellipj", _jacobi_sn, (SYMMETRIC, (0.0, 1.0)),
     "Jacobi elliptic sn(u|m) = scipy ellipj(u, m)[0]; u in [-1, 1], m in [0, 1] "
     "(scipy returns NaN for m < 0)"),
    ("special_ellipkinc", _two_args(sp.ellipkinc), (SYMMETRIC, SYMMETRIC),
     "incomplete elliptic integral of the first kind F(phi|m) = ellipkinc(phi, m) on [-1, 1]^2"),
    ("special_ellipeinc", _two_args(sp.ellipeinc), (SYMMETRIC, SYMMETRIC),
     "incomplete elliptic integral of the second kind E(phi|m) = ellipeinc(phi, m) on [-1, 1]^2"),
    ("special_jv", _two_args(sp.jv), (SYMMETRIC, BESSEL_ARGUMENT),
     f"Bessel J_nu(x) = jv(nu, x); {_BESSEL_DOC}"),
    ("special_yv", _two_args(sp.yv), (SYMMETRIC, BESSEL_ARGUMENT),
     f"Bessel Y_nu(x) = yv(nu, x); {_BESSEL_DOC}"),
    ("special_kv", _two_args(sp.kv), (SYMMETRIC, BESSEL_ARGUMENT),
     f"modified Bessel K_nu(x) = kv(nu, x); {_BESSEL_DOC}"),
    ("special_iv", _two_args(sp.iv), (SYMMETRIC, BESSEL_ARGUMENT),
     f"modified Bessel I_nu(x) = iv(nu, x); {_BESSEL_DOC}"),
]
for _m in (0, 1, 2):
    _TABLE.append((f"special_lpmv_m{_m}", _lpmv(_m), (LEGENDRE_DEGREE, LEGENDRE_ARGUMENT),
                   f"associated Legendre P_nu^{_m}(x) = lpmv({_m}, nu, x); degree nu in [0, 2], "
                   f"x in [-0.9, 0.9] (P_nu^m is singular at x = -1 for non-integer nu)"))
for _m, _n in ((0, 1), (1, 1), (0, 2), (1, 2), (2, 2)):  # the paper's (m, n) pairs, m <= n
    _TABLE.append((f"special_sph_harm_m{_m}_n{_n}", _sph_harm(_m, _n), (AZIMUTH, POLAR),
                   f"Re Y_{_n}^{_m} = Re sph_harm({_m}, {_n}, azimuth, polar) (scipy < 1.15 API); "
                   f"azimuth in [0, 2 pi], polar in [0, pi]"))

for _name, _fn, _domain, _description in _TABLE:
    register(Task(_name, 2, 1, _fn, _domain, _description))

SPECIAL_TASK_NAMES = tuple(row[0] for row in _TABLE)

# The paper's Table 1 KAN shapes per function: (minimal shape with test RMSE < 1e-2, best shape).
# The sweeps in configs/experiment/special_functions*.yaml include them (tests/test_budgets.py).
PAPER_KAN_SHAPES = {
    "special_ellipj": ((2, 2, 1), (2, 3, 2, 1, 1, 1)),
    "special_ellipkinc": ((2, 2, 1, 1), (2, 2, 1, 1, 1)),
    "special_ellipeinc": ((2, 2, 1, 1), (2, 2, 1, 1)),
    "special_jv": ((2, 2, 1), (2, 3, 1, 1, 1)),
    "special_yv": ((2, 3, 1), (2, 2, 2, 1)),
    "special_kv": ((2, 1, 1), (2, 2, 1)),
    "special_iv": ((2, 4, 3, 2, 1, 1), (2, 4, 3, 2, 1, 1)),
    "special_lpmv_m0": ((2, 2, 1), (2, 2, 1)),
    "special_lpmv_m1": ((2, 4, 1), (2, 4, 1)),
    "special_lpmv_m2": ((2, 2, 1), (2, 3, 2, 1)),
    "special_sph_harm_m0_n1": ((2, 1, 1), (2, 1, 1)),
    "special_sph_harm_m1_n1": ((2, 2, 1), (2, 3, 2, 1)),
    "special_sph_harm_m0_n2": ((2, 1, 1), (2, 1, 1)),
    "special_sph_harm_m1_n2": ((2, 2, 1), (2, 2, 1, 1)),
    "special_sph_harm_m2_n2": ((2, 2, 1), (2, 2, 3, 2, 1)),
}
assert set(PAPER_KAN_SHAPES) == set(SPECIAL_TASK_NAMES)
