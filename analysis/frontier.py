"""Which points a fit uses: all usable points, or the Pareto frontier (loss vs x) of each group.

A point is on the frontier when no other point of its group has x <= its x and a lower loss: the
best loss reached at each size, kept only while it improves on every smaller size (the "compute
efficient frontier" of Kaplan et al. 2020, arXiv 2001.08361, Fig. 1/§6, applied to any x).
"""
from __future__ import annotations

from typing import Dict, Sequence, Tuple

import numpy as np
import pandas as pd

from analysis.errors import AnalysisError

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
    """Per group of `by`, the non-dominated points: best loss at each x, strictly improving with x."""
    if points.empty:
        return points
    groups = points.groupby(list(by), sort=False, dropna=False) if by else [((), points)]
    keep = []
    for _, group in groups:
        ordered = group.sort_values([x, loss], kind="stable")
        best_at_x = ordered.groupby(x, sort=True)[loss].idxmin()  # lowest loss at each size
        candidates = ordered.loc[best_at_x.values]
        running_best = candidates[loss].cummin().shift(fill_value=np.inf)
        keep.extend(candidates.index[candidates[loss] < running_best])
    return points[points.index.isin(keep)]


def select_points(stages: pd.DataFrame, x: str, loss: str, points: str = "frontier",
                  by: Sequence[str] = ()) -> Tuple[pd.DataFrame, Dict[str, int]]:
    """Usable rows (see `usable`), reduced to the frontier of each `by` group if points == "frontier"."""
    if points not in POINTS:
        raise AnalysisError(f"points={points!r}: use one of {', '.join(POINTS)}")
    rows, excluded = usable(stages, x, loss)
    if points == "frontier":
        rows = pareto_frontier(rows, x, loss, by)
    return rows, excluded
