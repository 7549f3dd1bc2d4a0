"""The fit table: one scaling-law fit per group of the stage table, computed ONCE and reused.

`compute_fits(stages, xs=...)` returns a FitSet: one GroupFit per (group keys, x), e.g.
(family, task, x). The report's table, its figures, fits.json and the claims all read the same
FitSet (`fits.get("n_params", family="kan", task="toy")`), so they show the same numbers; nothing
downstream should refit (that is what made a figure legend and a table disagree).

Per group: usable rows (analysis.frontier.usable) -> scaling-regime guard and fit range
(analysis.fit_range) -> analysis.laws.fit_runs on the rows (frontier in range, bootstrap of runs
stratified by size) -> GroupFit. The CLI over this module is `python -m analysis.fit`.
"""
from __future__ import annotations

import json
import math
import sys
import time
import zlib
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np
import pandas as pd

from analysis.bootstrap import stratum_column
from analysis.errors import AnalysisError, FitError
from analysis.fit_range import RANGE_RULES, FitRange, Regime, fit_range, regime_check
from analysis.frontier import POINTS, front_mask, usable
from analysis.laws import FitResult, fit_runs
from analysis.metrics import loss_like

X_COLUMNS = ("n_params", "flops_forward", "flops_forward_yu2024", "train_flops", "cpu_time_s",
             "wall_time_s")  # per second: CPU time (load-independent); wall time kept for reference
# test_error_rate / train_error_rate: 1 - accuracy (classification; analysis.metrics); a fit asked
# for an accuracy (metrics.test_accuracy) fits its error rate.
LOSS_COLUMNS = ("test_rmse", "test_mse", "test_median_abs_error", "train_rmse", "test_error_rate",
                "train_error_rate")
CLI_FORMS = ("power", "floor")
N_BOOT = 400  # default resamples: enough for a 95% percentile interval, fast enough for reports
FITTED, TOO_FEW, NOT_IN_REGIME, NOT_FITTED = ("fitted", "too few points",
                                              "not in the scaling regime", "not fitted")


@dataclass(frozen=True)
class GroupFit:
    """The fit of one group (or why it could not be made), the points it used and its range.

    `status` is FITTED (a fit with an interval: verdicts may use it), TOO_FEW (no fit, or a fit
    without an interval, e.g. fewer than 4 sizes), NOT_IN_REGIME (the regime guard failed: not
    fitted) or NOT_FITTED (no usable points); `reason` says why in words.
    """
    keys: Dict[str, Any]
    x: str
    loss: str
    form: str
    points: str  # "frontier" or "all"
    n_points: int
    excluded: Dict[str, int]  # rows left out: not_done (status != done), non_finite
    fit: Optional[FitResult]
    error: Optional[str]
    data: pd.DataFrame = field(repr=False, compare=False)  # the rows the point fit used
    fit_range: Optional[FitRange] = None  # frontier points in and out of the fit, with reasons
    regime: Optional[Regime] = None
    rows: Optional[pd.DataFrame] = field(default=None, repr=False, compare=False)  # all usable rows

    @property
    def label(self) -> str:
        return " ".join(f"{k}={v}" for k, v in self.keys.items())

    @property
    def status(self) -> str:
        if self.regime is not None and not self.regime.in_regime:
            return NOT_IN_REGIME
        if self.fit is not None and self.fit.has_interval:
            return FITTED
        return TOO_FEW if self.fit is not None or self.n_points > 0 else NOT_FITTED

    @property
    def verdict_ready(self) -> bool:
        """True when a claim may draw a verdict from this fit (status FITTED)."""
        return self.status == FITTED

    @property
    def reason(self) -> Optional[str]:
        """Why there is no verdict-ready fit (None when there is one)."""
        if self.status == NOT_IN_REGIME:
            return self.regime.reason
        if self.fit is None:
            return self.error
        return self.fit.ci_reason or (None if self.fit.has_interval else "no usable resamples")

    def to_dict(self) -> Dict[str, Any]:
        out = {**self.keys, "x": self.x, "loss": self.loss, "form": self.form,
               "points": self.points, "n_points": self.n_points, "excluded": dict(self.excluded),
               "fitted": self.fit is not None, "error": self.error, "status": self.status,
               "reason": self.reason,
               "range": None if self.fit_range is None else self.fit_range.to_dict(),
               "regime": None if self.regime is None else self.regime.to_dict()}
        if self.fit is not None:
            fit = self.fit.to_dict()
            out.update({k: fit[k] for k in ("n_sizes", "n_boot", "n_boot_failed", "seed",
                                            "resample", "has_interval", "ci_reason", "params")})
        return json_safe(out)


def json_safe(value: Any) -> Any:
    """NaN/inf -> None and numpy scalars -> Python, so json.dumps(allow_nan=False) works."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    return value.item() if hasattr(value, "item") else value


def group_seed(seed: int, keys: Dict[str, Any], x: str) -> int:
    """A per-group bootstrap seed: fixed by (seed, group, x), independent of row order."""
    return (seed * 1_000_003 + zlib.crc32(json.dumps([keys, x], sort_keys=True, default=str).encode())
            ) % 2 ** 32


def fit_groups(stages: pd.DataFrame, x: str = "n_params", loss: str = "test_rmse",
               by: Sequence[str] = ("family", "task"), form: str = "power",
               points: str = "frontier", n_boot: int = N_BOOT, seed: int = 0,
               progress: Optional[Callable[[GroupFit, float], None]] = None,
               fit_range_rule: str = "paper", **fit_kwargs) -> List[GroupFit]:
    """One GroupFit per group of `by` for one x (see compute_fits for a whole fit table).

    fit_range_rule "paper" applies analysis.fit_range's rules; "all" fits every frontier point.
    fit_kwargs go to analysis.laws.fit_runs (e.g. min_sizes, n_starts). A higher-is-better `loss`
    (an accuracy) is fitted as its error rate (analysis.metrics.loss_like).
    """
    loss = loss_like(loss)
    for column in list(by) + [x, loss]:
        if column not in stages.columns:
            raise AnalysisError(f"column {column!r} is not in the stage table: use one of "
                                f"{', '.join(map(str, stages.columns))}")
    if points not in POINTS:
        raise AnalysisError(f"--points {points}: use one of {', '.join(POINTS)}")
    if fit_range_rule not in RANGE_RULES:
        raise AnalysisError(f"--fit-range {fit_range_rule}: use one of {', '.join(RANGE_RULES)}")
    stratum = stratum_column(x)
    out = []
    for key, group in stages.groupby(list(by), sort=True, dropna=False):
        keys = {k: json_safe(v) for k, v in zip(by, key if isinstance(key, tuple) else (key,))}
        start = time.perf_counter()
        rows, excluded = usable(group, x, loss)
        regime = regime_check(rows, loss)
        span = fit_range(rows, x, loss, fit_range_rule)
        fit, error, used = None, None, rows.iloc[:0]
        if not regime.in_regime:
            error = regime.reason
        elif len(rows) and span.n_included == 0:
            reasons = sorted({p.reason for p in span.excluded})
            error = f"no frontier point inside the fit range (excluded: {', '.join(reasons)})"
        else:
            strata = rows[stratum].to_numpy() if stratum in rows.columns else None
            units = rows["run_id"].to_numpy() if "run_id" in rows.columns else None
            try:
                fit = fit_runs(rows[x].to_numpy(float), rows[loss].to_numpy(float), form=form,
                               n_boot=n_boot, seed=group_seed(seed, keys, x), strata=strata,
                               units=units,
                               in_range=span.in_range, points=points, **fit_kwargs)
            except FitError as err:
                error = str(err)
            used = _fitted_rows(rows, x, loss, points, span)
        result = GroupFit(keys=keys, x=x, loss=loss, form=form, points=points, n_points=len(used),
                          excluded=excluded, fit=fit, error=error, data=used, fit_range=span,
                          regime=regime, rows=rows)
        if progress is not None:
            progress(result, time.perf_counter() - start)
        out.append(result)
    return out


def _fitted_rows(rows: pd.DataFrame, x: str, loss: str, points: str, span: FitRange) -> pd.DataFrame:
    inside = span.in_range
    if points == "frontier":
        inside = inside & front_mask(rows[x].to_numpy(float), rows[loss].to_numpy(float),
                                     np.ones((1, len(rows)), bool))[0]
    return rows[inside]


@dataclass(frozen=True)
class FitSet:
    """Every fit of a results table, computed once (compute_fits). Read it, never refit:

        fits.get("n_params", family="kan", task="toy_bessel")  -> GroupFit or None
        fits.select(x="flops_forward", task="toy_xy")          -> [GroupFit, ...]
        fits.to_dict()                                         -> what fits.json holds
    """
    groups: Tuple[GroupFit, ...]
    settings: Dict[str, Any]  # loss, form, points, fit_range, n_boot, seed, by, xs

    def select(self, x: Optional[str] = None, **keys: Any) -> List[GroupFit]:
        return [g for g in self.groups if (x is None or g.x == x)
                and all(g.keys.get(k) == v for k, v in keys.items())]

    def get(self, x: str, **keys: Any) -> Optional[GroupFit]:
        found = self.select(x, **keys)
        if len(found) > 1:
            raise AnalysisError(f"{len(found)} fits match x={x} {keys}: give every group key "
                                f"({', '.join(self.settings.get('by', ()))})")
        return found[0] if found else None

    def __iter__(self):
        return iter(self.groups)

    def __len__(self) -> int:
        return len(self.groups)

    def to_dict(self) -> Dict[str, Any]:
        return json_safe({"settings": dict(self.settings), "fits": [g.to_dict() for g in self.groups]})


def compute_fits(stages: pd.DataFrame, xs: Sequence[str] = ("n_params",), loss: str = "test_rmse",
                 by: Sequence[str] = ("family", "task"), form: str = "power",
                 points: str = "frontier", fit_range_rule: str = "paper", n_boot: int = N_BOOT,
                 seed: int = 0, progress: Optional[Callable[[GroupFit, float], None]] = None,
                 **fit_kwargs) -> FitSet:
    """All fits of a stage table: per x in xs, per group of `by` (fit_groups). Each group's
    bootstrap seed is group_seed(seed, keys, x), so a group's numbers do not depend on the others."""
    loss = loss_like(loss)
    groups = tuple(g for x in xs for g in fit_groups(
        stages, x=x, loss=loss, by=by, form=form, points=points, n_boot=n_boot, seed=seed,
        progress=progress, fit_range_rule=fit_range_rule, **fit_kwargs))
    settings = {"xs": list(xs), "loss": loss, "by": list(by), "form": form, "points": points,
                "fit_range": fit_range_rule, "n_boot": n_boot, "seed": seed}
    return FitSet(groups, settings)


def describe(group_fit: GroupFit) -> str:
    """One line: the group, alpha with its 95% CI and points used, or why it was not fitted."""
    head = f"{group_fit.label} x={group_fit.x}"
    if group_fit.fit is None:
        return f"{head}: not fitted: {group_fit.error}"
    alpha = group_fit.fit.params["alpha"]
    if not group_fit.fit.has_interval:
        return (f"{head}: alpha={alpha.estimate:.3f}, no interval: {group_fit.reason} "
                f"({group_fit.n_points} {group_fit.points} points)")
    return (f"{head}: alpha={alpha.estimate:.3f} [{alpha.ci_low:.3f}, {alpha.ci_high:.3f}] "
            f"({group_fit.n_points} {group_fit.points} points, {group_fit.fit.n_boot} resamples)")


def print_progress(group_fit: GroupFit, elapsed: float) -> None:
    print(f"{describe(group_fit)} in {elapsed:.1f} s", file=sys.stderr, flush=True)
