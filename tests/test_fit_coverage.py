"""Coverage of the run bootstrap: on synthetic sweeps with a known exponent and seed-to-seed noise,
the 95% interval of alpha from analysis.laws.fit_runs covers the truth in 90-99% of 200 repeats."""
from __future__ import annotations

import numpy as np
import pytest

from analysis.laws import fit_runs

SIZES = np.geomspace(100, 1e4, 8)  # 8 model sizes, 2 decades
SEEDS = 4  # runs per size
NOISE = 0.1  # log-normal seed-to-seed noise of the test loss
TRUE_A, TRUE_ALPHA, TRUE_E = 3.0, 1.0, 2e-3
REPEATS = 200


def coverage(form: str) -> float:
    hits = 0
    for repeat in range(REPEATS):
        rng = np.random.default_rng(10_000 + repeat)
        x = np.repeat(SIZES, SEEDS)
        law = TRUE_A * x ** -TRUE_ALPHA + (TRUE_E if form == "floor" else 0.0)
        loss = law * np.exp(NOISE * rng.standard_normal(len(x)))
        alpha = fit_runs(x, loss, form=form, n_boot=300, seed=repeat).params["alpha"]
        hits += alpha.ci_low <= TRUE_ALPHA <= alpha.ci_high
    return hits / REPEATS


@pytest.mark.slow
@pytest.mark.parametrize("form", ["power", "floor"])
def test_run_bootstrap_intervals_cover_the_true_exponent(form):
    assert 0.90 <= coverage(form) <= 0.99
