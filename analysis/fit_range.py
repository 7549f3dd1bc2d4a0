"""Which frontier points a scaling law is fitted to (the fit range), and the scaling-regime guard.

The paper's laws (Liu et al. 2024, arXiv 2404.19756, §2.3 and Fig. 3.1) describe the power-law
descent of the test RMSE: after a pre-asymptotic plateau and before the model can interpolate its
training set or the loss reaches round-off. The default rule ("paper") keeps the frontier points
between those ends; "all" keeps every frontier point. Rules, in the order they apply:

1. End of the range (saturation). Scanning the frontier from small to large x, the first point that
   is SATURATED (its model has n_params >= n_train * d_out parameters, one per training target:
   from there on it can interpolate the training set, the "interpolation threshold") or at the
   FLOOR (test RMSE / target std below NUMERICAL_FLOOR[dtype]) ends the range: it and every larger
   point are excluded (points with no rule of their own get PAST_END).
2. Start of the range (plateau). While at least MIN_DESCENT_POINTS points would remain, the first
   point is dropped as PLATEAU when the log-log slope from it to the next point is below
   PLATEAU_SLOPE_FRACTION of the least-squares slope of the points after it: the loss barely moves
   from it to the next size compared with the descent that follows.

The regime guard (issue 9 item 8): a curve whose best test RMSE never falls under REGIME_FRACTION of
the target's standard deviation (`test_target_std`) is "not in the scaling regime" and gets no
verdict; with no `test_target_std` (older records) the guard does not apply, and neither does the
floor rule.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Tuple

import numpy as np
import pandas as pd

from analysis.errors import AnalysisError
from analysis.frontier import front_mask

RANGE_RULES = ("paper", "all")
PLATEAU, SATURATED, FLOOR, PAST_END = ("plateau", "n_params >= n_train*d_out", "numerical floor",
                                       "past the end of the range")
REASONS = (PLATEAU, SATURATED, FLOOR, PAST_END)  # every excluded point carries one of these
PLATEAU_SLOPE_FRACTION = 1.0 / 3.0
MIN_DESCENT_POINTS = 3
# Test RMSE relative to the target std below which round-off, not the model, sets the loss:
# float32: sqrt(eps32) = 3.5e-4 (an MSE of eps relative to the target's energy); float64: 1e-7,
# under the paper's best float64 RMSE (2.2e-7, sph_harm, Table 2) and where L-BFGS in float64 stalls.
NUMERICAL_FLOOR = {"float64": 1e-7, "float32": float(np.sqrt(np.finfo(np.float32).eps))}
REGIME_FRACTION = 0.1  # issue 9 item 8: best test RMSE under 10% of the target std
RMSE_LOSSES = ("test_rmse", "train_rmse")  # losses the floor rule and the regime guard read


@dataclass(frozen=True)
class RangePoint:
    """One frontier point and whether the fit uses it (reason: one of REASONS when excluded)."""
    x: float
    loss: float
    included: bool
    reason: Optional[str] = None


@dataclass(frozen=True)
class FitRange:
    """The fit range of one group: frontier points in [x_min, x_max] are fitted; `points` lists
    every frontier point (x order) with its reason when excluded; `in_range` (n,) marks the rows
    (of the table given to `fit_range`) with x inside [x_min, x_max]."""
    rule: str
    x_min: float  # NaN when no point is in range
    x_max: float
    points: Tuple[RangePoint, ...]
    in_range: np.ndarray = field(repr=False, compare=False)

    @property
    def excluded(self) -> List[RangePoint]:
        return [p for p in self.points if not p.included]

    @property
    def n_included(self) -> int:
        return sum(p.included for p in self.points)

    def to_dict(self) -> Dict[str, Any]:
        return {"rule": self.rule, "x_min": self.x_min, "x_max": self.x_max,
                "included": [{"x": p.x, "loss": p.loss} for p in self.points if p.included],
                "excluded": [{"x": p.x, "loss": p.loss, "reason": p.reason} for p in self.excluded]}


@dataclass(frozen=True)
class Regime:
    """The scaling-regime guard of one group: `in_regime` False means no verdict (reason says why);
    not `applicable` (no target std recorded, or a loss that is not an RMSE) counts as in regime."""
    applicable: bool
    in_regime: bool
    best_relative: float  # best loss / test_target_std (NaN when not applicable)
    reason: Optional[str] = None

    def to_dict(self) -> Dict[str, Any]:
        return dict(vars(self))


def output_width(widths: Any) -> float:
    """d_out from a widths value: "2-5-1" (the stage table) or [2, 5, 1] -> 1; NaN if unknown."""
    if isinstance(widths, str) and widths:
        return float(widths.split("-")[-1])
    if isinstance(widths, (list, tuple, np.ndarray)) and len(widths):
        return float(widths[-1])
    return float("nan")


def _column(rows: pd.DataFrame, name: str, default: float = float("nan")) -> np.ndarray:
    if name not in rows.columns:
        return np.full(len(rows), default)
    return pd.to_numeric(rows[name], errors="coerce").to_numpy(float)


def saturated_rows(rows: pd.DataFrame) -> np.ndarray:
    """(n,) True where n_params >= n_train * d_out (unknown counts: False)."""
    d_out = (np.array([output_width(w) for w in rows["widths"]]) if "widths" in rows.columns
             else np.full(len(rows), np.nan))
    with np.errstate(invalid="ignore"):
        return _column(rows, "n_params") >= _column(rows, "n_train") * d_out


def floor_rows(rows: pd.DataFrame, loss: str) -> np.ndarray:
    """(n,) True where an RMSE loss relative to test_target_std is below the dtype's floor
    (dtype column, default float64; no target std or not an RMSE: False)."""
    if loss not in RMSE_LOSSES:
        return np.zeros(len(rows), bool)
    dtypes = rows["dtype"].astype(str) if "dtype" in rows.columns else pd.Series(["float64"] * len(rows))
    floor = np.array([NUMERICAL_FLOOR.get(d, NUMERICAL_FLOOR["float64"]) for d in dtypes])
    with np.errstate(invalid="ignore", divide="ignore"):
        return _column(rows, loss) / _column(rows, "test_target_std") < floor


def fit_range(rows: pd.DataFrame, x: str, loss: str, rule: str = "paper") -> FitRange:
    """The fit range of one group's usable rows (analysis.frontier.usable) under `rule`."""
    if rule not in RANGE_RULES:
        raise AnalysisError(f"fit range {rule!r}: use one of {', '.join(RANGE_RULES)}")
    xs, ls = rows[x].to_numpy(float), rows[loss].to_numpy(float)
    on_front = front_mask(xs, ls, np.ones((1, len(rows)), bool))[0]
    order = [i for i in np.argsort(xs, kind="stable") if on_front[i]]
    reasons: List[Optional[str]] = [None] * len(order)
    if rule == "paper":
        saturated, at_floor = saturated_rows(rows), floor_rows(rows, loss)
        end = next((j for j, i in enumerate(order) if saturated[i] or at_floor[i]), len(order))
        for j in range(end, len(order)):
            i = order[j]
            reasons[j] = SATURATED if saturated[i] else FLOOR if at_floor[i] else PAST_END
        start = _plateau_end([xs[i] for i in order[:end]], [ls[i] for i in order[:end]])
        for j in range(start):
            reasons[j] = PLATEAU
    points = tuple(RangePoint(float(xs[i]), float(ls[i]), r is None, r) for i, r in zip(order, reasons))
    kept = [p.x for p in points if p.included]
    x_min, x_max = (min(kept), max(kept)) if kept else (float("nan"), float("nan"))
    in_range = (xs >= x_min) & (xs <= x_max) if kept else np.zeros(len(rows), bool)
    return FitRange(rule, x_min, x_max, points, in_range)


def _plateau_end(x: List[float], loss: List[float]) -> int:
    """How many leading points are plateau (module docstring, rule 2)."""
    logx, logl = np.log(np.asarray(x, float)), np.log(np.asarray(loss, float))
    start = 0
    while len(logx) - start > MIN_DESCENT_POINTS:
        local = (logl[start] - logl[start + 1]) / (logx[start + 1] - logx[start])
        rest = -np.polyfit(logx[start + 1:], logl[start + 1:], 1)[0]  # descent slope after it
        if not (rest > 0 and local < PLATEAU_SLOPE_FRACTION * rest):
            break
        start += 1
    return start


def regime_check(rows: pd.DataFrame, loss: str) -> Regime:
    """The scaling-regime guard (module docstring) on one group's usable rows."""
    if loss not in RMSE_LOSSES:
        return Regime(False, True, float("nan"))
    with np.errstate(invalid="ignore", divide="ignore"):
        relative = _column(rows, loss) / _column(rows, "test_target_std")
    relative = relative[np.isfinite(relative) & (relative > 0)]
    if len(relative) == 0:
        return Regime(False, True, float("nan"))
    best = float(relative.min())
    if best < REGIME_FRACTION:
        return Regime(True, True, best)
    return Regime(True, False, best,
                  f"not in the scaling regime: best {loss} is {best:.2g} of the target std "
                  f"(needs < {REGIME_FRACTION:g})")
