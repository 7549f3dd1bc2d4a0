"""Which points a fit uses: all usable points, or the Pareto frontier (loss vs x) of each group.

A point is on the frontier when no other point of its group has x <= its x and a lower loss: the
best loss reached at each size, kept only while it improves on every smaller size (the "compute
efficient frontier" of Kaplan et al. 2020, arXiv 2001.08361, Fig. 1/§6, applied to any x). For a
higher-is-better column (an accuracy, analysis.metrics) the front keeps the highest value instead.
"""
from __future__ import annotations

from typing import Dict, Sequence, Tuple

import numpy as np
import pandas as pd

from analysis.errors import AnalysisError
from analysis.metrics import HIGHER, better

POINTS = ("frontier", "all")


def usable(stages: pd.DataFrame, x: str, loss: str) -> Tuple[pd.DataFrame, Dict[str, int]]:
    """Rows of finished runs with finite positive x and loss, and counts of what was excluded."""
    for column in (x, loss, "status"):
        if column not in stages.columns:
            raise AnalysisError(f"column {column!r} is not in the stage table: use one of "
                           f"{', '.join(map(str, stages.columns))}")
    done = stages["status"] == "done"
    xs = pd.to_numeric(stages[x], errors="coerce")
    ls = pd.to_numeric(stages[loss], errors="coerce")
    finite = np.isfinite(xs) & np.isfinite(ls) & (xs > 0) & (ls > 0)
    excluded = {"not_done": int((~done).sum()), "non_finite": int((done & ~finite).sum())}
    return stages[done & finite], excluded


def pareto_frontier(points: pd.DataFrame, x: str, loss: str, by: Sequence[str] = ()) -> pd.DataFrame:
    """Per group of `by`, the non-dominated points: best loss at each x, strictly improving with x
    (best = highest for a higher-is-better column such as an accuracy)."""
    if points.empty:
        return points
    groups = points.groupby(list(by), sort=False, dropna=False) if by else [((), points)]
    sign = -1.0 if better(loss) == HIGHER else 1.0
    keep = []
    for _, group in groups:
        xs, ls = group[x].to_numpy(float), sign * group[loss].to_numpy(float)
        keep.extend(group.index[front_mask(xs, ls, np.ones((1, len(group)), bool))[0]])
    return points[points.index.isin(keep)]


def front_mask(x, loss, present: np.ndarray) -> np.ndarray:
    """The frontier of every resample at once: x, loss (n,) of the rows; present (B, n) bool (rows
    drawn in resample b) -> (B, n) bool, True for the rows on resample b's frontier (the first row
    of lowest loss at each x, kept while strictly below every smaller x's best)."""
    x, loss = np.asarray(x, float), np.asarray(loss, float)
    present = np.atleast_2d(np.asarray(present, bool))
    order = np.lexsort((np.arange(len(x)), loss, x))  # x ascending, then loss, then row order
    ordered = np.where(present[:, order], loss[order][None, :], np.inf)  # (B, n)
    before = np.minimum.accumulate(ordered, axis=1)
    before = np.concatenate([np.full((len(ordered), 1), np.inf), before[:, :-1]], axis=1)
    out = np.zeros_like(present)
    out[:, order] = present[:, order] & (ordered < before)
    return out


def select_points(stages: pd.DataFrame, x: str, loss: str, points: str = "frontier",
                  by: Sequence[str] = ()) -> Tuple[pd.DataFrame, Dict[str, int]]:
    """Usable rows (see `usable`), reduced to the frontier of each `by` group if points == "frontier"."""
    if points not in POINTS:
        raise AnalysisError(f"points={points!r}: use one of {', '.join(POINTS)}")
    rows, excluded = usable(stages, x, loss)
    if points == "frontier":
        rows = pareto_frontier(rows, x, loss, by)
    return rows, excluded
