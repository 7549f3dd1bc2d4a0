"""The KAN paper's special-function (§3.2) and Feynman (§3.3) tasks: data, values, configs."""
from __future__ import annotations

import inspect
from pathlib import Path

import numpy as np
import pytest
from scipy import special as sp

from harness.tasks import TASK_REGISTRY, make_dataset
from harness.tasks import special as special_module
from harness.tasks.feynman_dimensionless import FEYNMAN_DIMENSIONLESS_EQUATIONS
from harness.tasks.feynman_table import FEYNMAN_DIMENSIONAL_EQUATIONS

PI = np.pi
CONFIGS = Path(__file__).resolve().parents[1] / "configs"

SPECIAL_NAMES = [
    "special_ellipj", "special_ellipkinc", "special_ellipeinc",
    "special_jv", "special_yv", "special_kv", "special_iv",
    "special_lpmv_m0", "special_lpmv_m1", "special_lpmv_m2",
    "special_sph_harm_m0_n1", "special_sph_harm_m1_n1", "special_sph_harm_m0_n2",
    "special_sph_harm_m1_n2", "special_sph_harm_m2_n2",
]
# The 27 rows of the paper's Table 2 (its "II.11.7" is the dataset's II.11.17), with the d_in of
# the dimensional form (feynman_dim_*) ...
FEYNMAN_DIM_D_IN = {
    "I_6_20": 2, "I_6_20b": 3, "I_9_18": 9, "I_12_11": 5, "I_13_12": 5, "I_15_3x": 4, "I_16_6": 3,
    "I_18_4": 4, "I_26_2": 2, "I_27_6": 3, "I_29_16": 4, "I_30_3": 3, "I_30_5": 3, "I_37_4": 3,
    "I_40_1": 6, "I_44_4": 5, "I_50_26": 4, "II_2_42": 5, "II_6_15a": 6, "II_11_17": 6,
    "II_11_27": 4, "II_35_18": 5, "II_36_38": 8, "II_38_3": 4, "III_9_52": 6, "III_10_19": 4,
    "III_17_37": 3,
}
# ... and of the paper's dimensionless form (feynman_*), its "Variables" column.
FEYNMAN_D_IN = {
    "I_6_20": 2, "I_6_20b": 3, "I_9_18": 6, "I_12_11": 2, "I_13_12": 2, "I_15_3x": 2, "I_16_6": 2,
    "I_18_4": 2, "I_26_2": 2, "I_27_6": 2, "I_29_16": 3, "I_30_3": 2, "I_30_5": 2, "I_37_4": 2,
    "I_40_1": 2, "I_44_4": 2, "I_50_26": 2, "II_2_42": 2, "II_6_15a": 3, "II_11_17": 3,
    "II_11_27": 2, "II_35_18": 2, "II_36_38": 3, "II_38_3": 2, "III_9_52": 3, "III_10_19": 2,
    "III_17_37": 3,
}
FEYNMAN_NAMES = ["feynman_" + key for key in FEYNMAN_D_IN]
FEYNMAN_DIM_NAMES = ["feynman_dim_" + key for key in FEYNMAN_DIM_D_IN]
PAPER_NAMES = SPECIAL_NAMES + FEYNMAN_NAMES + FEYNMAN_DIM_NAMES


def evaluate(name: str, *columns) -> np.ndarray:
    """The task's label at points given as one array (or scalar) per input."""
    arrays = np.broadcast_arrays(*[np.asarray(c, dtype=np.float64) for c in columns])
    inputs = np.stack([a.ravel() for a in arrays], axis=1)  # (n, d_in)
    return TASK_REGISTRY[name].labels(inputs)[:, 0]


def test_registry_holds_exactly_the_paper_tasks():
    registered = {n for n in TASK_REGISTRY if n.startswith(("special_", "feynman_"))}
    assert registered == set(PAPER_NAMES)
    for name in SPECIAL_NAMES:
        assert (TASK_REGISTRY[name].d_in, TASK_REGISTRY[name].d_out) == (2, 1)
    for name in FEYNMAN_NAMES:
        assert TASK_REGISTRY[name].d_in == FEYNMAN_D_IN[name[len("feynman_"):]]
    for name in FEYNMAN_DIM_NAMES:
        assert TASK_REGISTRY[name].d_in == FEYNMAN_DIM_D_IN[name[len("feynman_dim_"):]]


@pytest.mark.parametrize("name", PAPER_NAMES)
def test_dataset_is_finite_nonconstant_and_in_domain(name):
    task = TASK_REGISTRY[name]
    data = make_dataset(task, n_train=10_000, n_test=100, seed=0)
    assert data.train_input.shape == (10_000, task.d_in)
    assert data.train_label.shape == (10_000, task.d_out)
    assert data.test_input.shape == (100, task.d_in) and data.test_label.shape == (100, task.d_out)
    x, y = data.train_input.numpy(), data.train_label.numpy()
    assert np.isfinite(y).all(), f"{name}: {np.sum(~np.isfinite(y))} non-finite labels"
    assert y.std() > 1e-3, f"{name}: labels are (nearly) constant"
    lo, hi = np.array(task.domain).T
    assert ((x >= lo) & (x <= hi)).all()
    assert task.description


# ---- special functions against independent closed forms -------------------------------------

def test_jacobi_sn_limits():
    u = np.linspace(-1, 1, 9)
    # DLMF §22.5(ii): sn(u|0) = sin u, sn(u|1) = tanh u.
    np.testing.assert_allclose(evaluate("special_ellipj", u, 0.0), np.sin(u), atol=1e-14)
    np.testing.assert_allclose(evaluate("special_ellipj", u, 1.0), np.tanh(u), atol=1e-14)


def test_incomplete_elliptic_integral_limits():
    phi = np.linspace(-1, 1, 9)
    # DLMF §19.6(ii): F(phi|0) = E(phi|0) = phi; F(phi|1) = artanh(sin phi); E(phi|1) = sin phi.
    np.testing.assert_allclose(evaluate("special_ellipkinc", phi, 0.0), phi, atol=1e-14)
    np.testing.assert_allclose(evaluate("special_ellipeinc", phi, 0.0), phi, atol=1e-14)
    np.testing.assert_allclose(evaluate("special_ellipkinc", phi, 1.0), np.arctanh(np.sin(phi)),
                               rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(evaluate("special_ellipeinc", phi, 1.0), np.sin(phi), atol=1e-14)


def test_bessel_functions_of_half_order():
    x = np.linspace(0.5, 2.0, 7)
    s = np.sqrt(2 / (PI * x))
    # DLMF 10.16.1: J_{1/2} = s sin x, Y_{1/2} = -s cos x, J_{-1/2} = s cos x, Y_{-1/2} = s sin x.
    np.testing.assert_allclose(evaluate("special_jv", 0.5, x), s * np.sin(x), rtol=1e-12)
    np.testing.assert_allclose(evaluate("special_jv", -0.5, x), s * np.cos(x), rtol=1e-12)
    np.testing.assert_allclose(evaluate("special_yv", 0.5, x), -s * np.cos(x), rtol=1e-12)
    np.testing.assert_allclose(evaluate("special_yv", -0.5, x), s * np.sin(x), rtol=1e-12)
    # DLMF 10.39.1: I_{1/2} = s sinh x, I_{-1/2} = s cosh x, K_{+-1/2} = sqrt(pi / (2x)) e^-x.
    np.testing.assert_allclose(evaluate("special_iv", 0.5, x), s * np.sinh(x), rtol=1e-12)
    np.testing.assert_allclose(evaluate("special_iv", -0.5, x), s * np.cosh(x), rtol=1e-12)
    for nu in (0.5, -0.5):
        np.testing.assert_allclose(evaluate("special_kv", nu, x),
                                   np.sqrt(PI / (2 * x)) * np.exp(-x), rtol=1e-12)


def test_associated_legendre_at_integer_and_half_degree():
    x = np.linspace(-0.9, 0.9, 7)
    root = np.sqrt(1 - x**2)
    # Legendre polynomials (DLMF Table 18.3.1 / 18.5.5): P_0 = 1, P_1 = x, P_2 = (3x^2 - 1)/2.
    np.testing.assert_allclose(evaluate("special_lpmv_m0", 0.0, x), 1.0, atol=1e-14)
    np.testing.assert_allclose(evaluate("special_lpmv_m0", 1.0, x), x, atol=1e-14)
    np.testing.assert_allclose(evaluate("special_lpmv_m0", 2.0, x), (3 * x**2 - 1) / 2, atol=1e-14)
    # DLMF 14.6.1 with the Condon-Shortley phase (-1)^m: P_n^m = (-1)^m (1-x^2)^(m/2) d^m P_n/dx^m.
    np.testing.assert_allclose(evaluate("special_lpmv_m1", 1.0, x), -root, atol=1e-14)
    np.testing.assert_allclose(evaluate("special_lpmv_m1", 2.0, x), -3 * x * root, atol=1e-14)
    np.testing.assert_allclose(evaluate("special_lpmv_m2", 1.0, x), 0.0, atol=1e-14)
    np.testing.assert_allclose(evaluate("special_lpmv_m2", 2.0, x), 3 * (1 - x**2), atol=1e-13)
    # Non-integer degree, DLMF §14.5(v): P_{-1/2}(x) = (2/pi) K(m = (1 - x)/2), K from ellipk.
    np.testing.assert_allclose(evaluate("special_lpmv_m0", -0.5, x),
                               2 / PI * sp.ellipk((1 - x) / 2), rtol=1e-12)


# Re Y_n^m(polar t, azimuth p) with the Condon-Shortley phase: DLMF 14.30.1 with DLMF 14.6.1.
SPH_HARM_CLOSED_FORMS = {
    "special_sph_harm_m0_n1": lambda p, t: 0.5 * np.sqrt(3 / PI) * np.cos(t),
    "special_sph_harm_m1_n1": lambda p, t: -0.5 * np.sqrt(3 / (2 * PI)) * np.sin(t) * np.cos(p),
    "special_sph_harm_m0_n2": lambda p, t: 0.25 * np.sqrt(5 / PI) * (3 * np.cos(t)**2 - 1),
    "special_sph_harm_m1_n2":
        lambda p, t: -0.5 * np.sqrt(15 / (2 * PI)) * np.sin(t) * np.cos(t) * np.cos(p),
    "special_sph_harm_m2_n2":
        lambda p, t: 0.25 * np.sqrt(15 / (2 * PI)) * np.sin(t)**2 * np.cos(2 * p),
}


@pytest.mark.parametrize("name", sorted(SPH_HARM_CLOSED_FORMS))
def test_spherical_harmonics_real_part(name):
    azimuth, polar = np.meshgrid(np.linspace(0, 2 * PI, 7), np.linspace(0, PI, 5))
    azimuth, polar = azimuth.ravel(), polar.ravel()
    np.testing.assert_allclose(evaluate(name, azimuth, polar),
                               SPH_HARM_CLOSED_FORMS[name](azimuth, polar), atol=1e-14)


def test_spherical_harmonics_legacy_scipy_argument_order(monkeypatch):
    # scipy < 1.15 has only sph_harm(m, n, azimuth, polar); emulate it from the closed form.
    monkeypatch.delattr(special_module.sp, "sph_harm_y", raising=False)
    legacy = lambda m, n, azimuth, polar: (  # noqa: E731
        SPH_HARM_CLOSED_FORMS[f"special_sph_harm_m{m}_n{n}"](azimuth, polar) + 0j)
    monkeypatch.setattr(special_module.sp, "sph_harm", legacy, raising=False)
    azimuth, polar = np.array([0.3, 2.0, 5.0]), np.array([0.2, 1.5, 3.0])
    for name, closed_form in SPH_HARM_CLOSED_FORMS.items():
        np.testing.assert_allclose(evaluate(name, azimuth, polar), closed_form(azimuth, polar))


# ---- Feynman equations (dimensional form) at hand-computed points ----------------------------

# (task suffix, inputs in the table's variable order, the value worked out by hand)
FEYNMAN_POINTS = [
    ("I_6_20", (0.0, 1.0), 1 / np.sqrt(2 * PI)),
    ("I_6_20", (1.0, 1.0), np.exp(-0.5) / np.sqrt(2 * PI)),
    ("I_6_20b", (0.7, 0.7, 2.0), 1 / np.sqrt(8 * PI)),
    ("I_9_18", (1, 1, 1, -1, 1, -0.5, 0.5, -0.5, 0.5), 1 / 6),  # 1 / (2^2 + 1 + 1)
    ("I_12_11", (1.0, 0.5, 1.0, 1.0, PI / 2), 1.5),
    ("I_13_12", (1.0, 1.0, 1.0, 2.0, 1.0), 0.5),  # 1/r2 - 1/r1 = 1 - 1/2
    ("I_15_3x", (1.0, 0.6, 1.0, 1.0), 0.5),  # 0.4 / sqrt(1 - 0.36)
    ("I_16_6", (0.5, 0.5, 1.0), 0.8),  # 1 / (1 + 0.25)
    ("I_18_4", (1.0, 1.0, 0.5, -1.0), 1 / 3),  # (1 - 0.5) / 1.5
    ("I_26_2", (0.5, PI / 2), PI / 6),
    ("I_27_6", (1.0, 1.0, 1.0), 0.5),
    ("I_29_16", (1.0, 1.0, PI / 2, 0.0), np.sqrt(2)),
    ("I_29_16", (0.3, 0.3, 1.0, 1.0), 0.0),  # coincident points: exact zero, not NaN
    ("I_30_3", (1.0, 2.0, PI), 0.0),
    ("I_30_3", (0.5, 1.0, 1.3), 0.5),  # n = 1: the ratio is 1
    ("I_30_5", (0.5, 1.0, 1.0), PI / 6),
    ("I_37_4", (0.25, 0.25, 0.0), 1.0),
    ("I_40_1", (1.0, 1.0, 1.0, 1.0, 1.0, 1.0), np.exp(-1)),
    ("I_44_4", (1.0, 1.0, 1.0, 0.5, 1.0), np.log(2)),
    ("I_50_26", (1.0, 1.0, PI, 1.0), 0.0),  # cos(pi) + cos(pi)^2
    ("I_50_26", (1.0, 1.0, 0.0, 0.5), 2.0),
    ("II_2_42", (1.0, 0.0, 1.0, 1.0, 0.5), 2.0),
    ("II_6_15a", (1.0, 1.0, 1.0, 1.0, 0.0, 1.0), 3 / (4 * PI)),
    ("II_11_17", (1.0, 1.0, 1.0, 0.0, 1.0, 1.0), 2.0),
    ("II_11_27", (1.0, 1.5, 1.0, 1.0), 3.0),  # 1.5 / (1 - 0.5)
    ("II_35_18", (1.0, 0.0, 0.0, 1.0, 1.0), 0.5),
    ("II_35_18", (1.0, 1.0, 1.0, 1.0, 1.0), 1 / (2 * np.cosh(1.0))),
    ("II_36_38", (1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0), 2.0),
    ("II_38_3", (1.0, 1.0, 1.0, 0.5), 2.0),
    ("III_9_52", (1.0, 1.0, 1.0, 1.0, 2.0, 2.0), 1.0),  # omega = omega0: sin^2(z)/z^2 -> 1
    ("III_9_52", (1.0, 1.0, 1.0, 1.0, PI, 0.0), 4 / PI**2),  # z = pi/2
    ("III_10_19", (1.0, 1.0, 1.0, 1.0), np.sqrt(3)),
    ("III_17_37", (1.0, 0.5, 0.0), 1.5),
]


@pytest.mark.parametrize("suffix, point, expected", FEYNMAN_POINTS)
def test_feynman_dim_value_at_hand_computed_point(suffix, point, expected):
    value = evaluate("feynman_dim_" + suffix, *point)[0]
    assert value == pytest.approx(expected, rel=1e-12, abs=1e-14)


def test_every_feynman_dim_equation_has_a_hand_computed_point():
    assert {suffix for suffix, _, _ in FEYNMAN_POINTS} == set(FEYNMAN_DIM_D_IN)


@pytest.mark.parametrize("equation", FEYNMAN_DIMENSIONAL_EQUATIONS + FEYNMAN_DIMENSIONLESS_EQUATIONS,
                         ids=lambda e: e.task_name)
def test_feynman_row_is_consistent(equation):
    # The formula's arguments are the named variables, in order; every range is a proper interval.
    assert tuple(inspect.signature(equation.fn).parameters) == equation.variables
    assert len(equation.ranges) == len(equation.variables)
    assert all(lo < hi for lo, hi in equation.ranges)
    assert TASK_REGISTRY[equation.task_name].domain == equation.ranges


# ---- the paper's dimensionless Feynman forms (the claims' tasks) ------------------------------

# (task suffix, inputs in the order of Table 2's "Variables" column, the value worked out by hand)
DIMENSIONLESS_POINTS = [
    ("I_6_20", (0.0, 1.0), 1 / np.sqrt(2 * PI)),
    ("I_6_20", (1.0, 1.0), np.exp(-0.5) / np.sqrt(2 * PI)),
    ("I_6_20b", (0.7, 0.7, 2.0), 1 / np.sqrt(8 * PI)),
    ("I_9_18", (1.0, 0.0, -1.0, 1.0, -1.0, 1.0), 1 / 9),  # 1 / (1 + 4 + 4)
    ("I_12_11", (0.5, PI / 2), 1.5),  # 1 + a sin(theta)
    ("I_12_11", (1.0, 3 * PI / 2), 0.0),
    ("I_13_12", (2.0, 0.5), 2.0),  # a (1/b - 1) = 2 (2 - 1)
    ("I_15_3x", (0.5, 0.6), 0.625),  # (1 - a) / sqrt(1 - b^2) = 0.5 / 0.8
    ("I_16_6", (0.5, 0.5), 0.8),  # 1 / 1.25
    ("I_18_4", (1.0, 0.5), 0.75),  # (1 + 0.5) / 2
    ("I_26_2", (0.5, PI / 2), PI / 6),
    ("I_27_6", (1.0, 1.0), 0.5),  # 1 / (1 + a b)
    ("I_29_16", (1.0, PI / 2, 0.0), np.sqrt(2)),
    ("I_29_16", (1.0, 0.3, 0.3), 0.0),  # coincident angles, a = 1: exact zero, not NaN
    ("I_30_3", (2.0, PI), 0.0),  # sin^2(pi) / sin^2(pi/2)
    ("I_30_3", (1.0, 1.3), 1.0),  # n = 1: the ratio is 1
    ("I_30_5", (0.5, 1.0), PI / 6),  # arcsin(a / n)
    ("I_37_4", (1.0, 0.0), 4.0),  # 1 + a + 2 sqrt(a) cos(delta)
    ("I_37_4", (4.0, PI), 1.0),  # 1 + 4 - 4
    ("I_40_1", (1.0, 1.0), np.exp(-1)),
    ("I_44_4", (0.5, 4.0), np.log(2)),  # n ln(a) = 0.5 ln 4
    ("I_50_26", (PI, 1.0), 0.0),  # cos(pi) + cos(pi)^2
    ("I_50_26", (0.0, 1.0), 2.0),
    ("II_2_42", (0.5, -1.0), 0.5),  # (a - 1) b
    ("II_6_15a", (0.6, 0.8, 1.0), 1 / (4 * PI)),  # c sqrt(a^2 + b^2) / (4 pi)
    ("II_11_17", (1.0, 1.0, 0.0), 2.0),  # n0 (1 + a cos(theta))
    ("II_11_27", (1.0, 1.5), 3.0),  # 1.5 / (1 - 0.5)
    ("II_35_18", (1.0, 0.0), 0.5),
    ("II_35_18", (1.0, 1.0), 1 / (2 * np.cosh(1.0))),
    ("II_36_38", (1.0, 0.5, -1.0), 0.5),  # a + alpha b
    ("II_38_3", (1.0, 0.5), 2.0),
    ("III_9_52", (1.0, 1.0, 1.0), 1.0),  # b = c: sin^2(z)/z^2 -> 1
    ("III_9_52", (1.0, PI, 0.0), 4 / PI**2),  # z = pi/2
    ("III_10_19", (1.0, 1.0), np.sqrt(3)),
    ("III_17_37", (0.5, 1.0, 0.0), 1.5),  # beta (1 + alpha cos(theta)), variables alpha, beta, theta
]


@pytest.mark.parametrize("suffix, point, expected", DIMENSIONLESS_POINTS)
def test_feynman_value_at_hand_computed_point(suffix, point, expected):
    value = evaluate("feynman_" + suffix, *point)[0]
    assert value == pytest.approx(expected, rel=1e-12, abs=1e-14)


def test_every_feynman_equation_has_a_hand_computed_point():
    assert {suffix for suffix, _, _ in DIMENSIONLESS_POINTS} == set(FEYNMAN_D_IN)


# Table 2's "Variables" column, in its order.
PAPER_VARIABLES = {
    "I.6.20": "theta sigma", "I.6.20b": "theta theta1 sigma", "I.9.18": "a b c d e f",
    "I.12.11": "a theta", "I.13.12": "a b", "I.15.3x": "a b", "I.16.6": "a b", "I.18.4": "a b",
    "I.26.2": "n theta2", "I.27.6": "a b", "I.29.16": "a theta1 theta2", "I.30.3": "n theta",
    "I.30.5": "a n", "I.37.4": "a delta", "I.40.1": "n0 a", "I.44.4": "n a", "I.50.26": "a alpha",
    "II.2.42": "a b", "II.6.15a": "a b c", "II.11.17": "n0 a theta", "II.11.27": "n alpha",
    "II.35.18": "n0 a", "II.36.38": "a alpha b", "II.38.3": "a b", "III.9.52": "a b c",
    "III.10.19": "a b", "III.17.37": "alpha beta theta",
}
# Dimensionless groups not drawn from the paper's (-1, 1): the range the group spans over pykan's
# dimensional box (worked out by hand from feynman_table.py), or the stated box near a pole.
NON_PAPER_GROUP_RANGES = {
    ("I.9.18", "c"): (-1.0, -0.5), ("I.9.18", "d"): (0.5, 1.0),  # pykan's y1, y2 boxes
    ("I.9.18", "e"): (-1.0, -0.5), ("I.9.18", "f"): (0.5, 1.0),  # pykan's z1, z2 boxes
    ("I.13.12", "b"): (0.25, 4.0),  # r2/r1, r in [0.5, 2]
    ("I.15.3x", "b"): (-0.9, 0.9),  # pykan's v box in I.15.10's sqrt(1 - v^2/c^2)
    ("I.18.4", "a"): (0.5, 2.0),  # m2/m1, m in [0.5, 1]
    ("I.27.6", "a"): (0.5, 2.0), ("I.27.6", "b"): (0.25, 2.0),  # n; d1/d2, d1 in [0.5, 2], d2 in [1, 2]
    ("I.37.4", "a"): (0.1, 10.0),  # I2/I1, I in [0.1, 1]
    ("I.44.4", "a"): (0.25, 4.0),  # V2/V1, V in [0.5, 2]
    ("I.50.26", "a"): (0.0, 2 * PI),  # omega t, omega in [0, 2 pi], t in [0, 1]
    ("II.38.3", "b"): (0.5, 2.0),  # pykan's box for the divisor d
    ("III.9.52", "b"): (0.0, PI), ("III.9.52", "c"): (0.0, PI),  # omega t, omega0 t
}
DIMENSIONAL = {equation.eq_id: equation for equation in FEYNMAN_DIMENSIONAL_EQUATIONS}


@pytest.mark.parametrize("equation", FEYNMAN_DIMENSIONLESS_EQUATIONS, ids=lambda e: e.eq_id)
def test_feynman_variables_ranges_and_shapes_follow_the_paper(equation):
    assert equation.variables == tuple(PAPER_VARIABLES[equation.eq_id].split())
    dimensional = DIMENSIONAL[equation.eq_id]
    named = dict(zip(dimensional.variables, dimensional.ranges))
    for name, box in zip(equation.variables, equation.ranges):
        if name in named:  # keeps its name: pykan's range for it
            assert box == pytest.approx(named[name]), name
        else:  # a dimensionless group: the paper's (-1, 1) unless listed
            assert box == pytest.approx(NON_PAPER_GROUP_RANGES.get((equation.eq_id, name), (-1, 1)))
    d_in = len(equation.variables)
    for shape in (equation.human_shape, equation.minimal_shape, equation.best_shape):
        assert shape[0] == d_in and shape[-1] == 1 and len(shape) >= 3
    assert equation.note


def test_feynman_named_ranges_cover_every_listed_exception():
    rows = {e.eq_id: e for e in FEYNMAN_DIMENSIONLESS_EQUATIONS}
    for (eq_id, name), box in NON_PAPER_GROUP_RANGES.items():
        assert dict(zip(rows[eq_id].variables, rows[eq_id].ranges))[name] == pytest.approx(box)


@pytest.mark.parametrize("suffix", ["I_6_20", "I_6_20b", "I_26_2", "III_17_37"])
def test_rows_where_the_paper_keeps_the_dimensional_formula(suffix):
    dimensionless, dimensional = TASK_REGISTRY["feynman_" + suffix], TASK_REGISTRY["feynman_dim_" + suffix]
    x = dimensional.sample_inputs(64, torch_generator(3))
    if suffix == "III_17_37":  # the table orders (alpha, beta, theta); the dataset (beta, alpha, theta)
        x_dimensionless = x[:, [1, 0, 2]]
    else:
        x_dimensionless = x
    np.testing.assert_allclose(dimensionless.labels(x_dimensionless), dimensional.labels(x), rtol=1e-14)


def torch_generator(seed: int):
    torch = pytest.importorskip("torch")
    return torch.Generator().manual_seed(seed)


# ---- cross-check against pykan 0.2.8 (the fidelity reference) --------------------------------

# pykan keys by name, except I.18.4: pykan also labels I.18.12 'I.18.4', so only its number works.
PYKAN_KEY = {"I.18.4": 21}
PYKAN_LAMBDA_BUGS = {"I.16.6"}  # pykan's torch lambda disagrees with its own sympy expression
PYKAN_NAME_ALIASES = {"lambda": "lambd"}


def _normalised(name: str) -> str:
    name = PYKAN_NAME_ALIASES.get(name, name)
    return name.replace("_", "").lower()


@pytest.mark.parametrize("equation", FEYNMAN_DIMENSIONAL_EQUATIONS, ids=lambda e: e.eq_id)
def test_feynman_dim_matches_pykan_expression_variables_and_ranges(equation):
    feynman = pytest.importorskip("kan.feynman")
    sympy = pytest.importorskip("sympy")
    torch = pytest.importorskip("torch")
    symbols, expr, torch_fn, ranges = feynman.get_feynman_dataset(PYKAN_KEY.get(equation.eq_id,
                                                                                equation.eq_id))
    symbols = list(symbols)
    assert [_normalised(str(s)) for s in symbols] == [_normalised(v) for v in equation.variables]
    np.testing.assert_allclose(np.array([[float(lo), float(hi)] for lo, hi in ranges]),
                               np.array(equation.ranges), rtol=1e-6)  # pykan's pi is float32

    task = TASK_REGISTRY[equation.task_name]
    x = task.sample_inputs(256, torch.Generator().manual_seed(1))
    ours = task.labels(x)[:, 0]
    reference = sympy.lambdify(symbols, expr, "numpy")(*x.T)
    np.testing.assert_allclose(ours, reference, rtol=1e-10, atol=1e-12)
    pykan_lambda = torch_fn(torch.as_tensor(x)).numpy()[:, 0]
    agrees = np.allclose(pykan_lambda, ours, rtol=1e-5, atol=1e-6)
    assert agrees == (equation.eq_id not in PYKAN_LAMBDA_BUGS)


# ---- configs ---------------------------------------------------------------------------------

def test_task_configs_compose_and_validate():
    hydra = pytest.importorskip("hydra")
    from harness.config import register_configs, validate

    register_configs()
    with hydra.initialize_config_dir(config_dir=str(CONFIGS), version_base="1.3"):
        for name in ("special_sph_harm_m1_n2", "feynman_II_36_38", "feynman_dim_II_36_38"):
            d_in = TASK_REGISTRY[name].d_in
            cfg = hydra.compose(config_name="config",
                                overrides=[f"task={name}", f"model.widths=[{d_in},3,1]"])
            assert cfg.task.name == name
            validate(cfg)
