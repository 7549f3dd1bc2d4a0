"""Fit a scaling law per group of the stage table (e.g. per family x task) and print the fit table.

CLI: python -m analysis.fit RESULTS_ROOT --x n_params --by family,task --json
         [--form power|floor] [--points frontier|all] [--n-boot N] [--seed S] [--loss test_rmse]
"""
from __future__ import annotations

import argparse
import json
import math
import sys
import time
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence

import pandas as pd

from analysis.collect import collect_stages
from analysis.errors import AnalysisError, FitError
from analysis.fit import FitResult, fit_scaling_law
from analysis.frontier import POINTS, select_points

X_COLUMNS = ("n_params", "flops_forward", "flops_forward_yu2024", "train_flops", "wall_time_s")
LOSS_COLUMNS = ("test_rmse", "test_mse", "test_median_abs_error", "train_rmse")
CLI_FORMS = ("power", "floor")


@dataclass(frozen=True)
class GroupFit:
    """The fit of one group (or why it could not be made) and the points it used."""
    keys: Dict[str, Any]
    x: str
    loss: str
    form: str
    points: str  # "frontier" or "all"
    n_points: int
    excluded: Dict[str, int]  # rows left out: not_done (status != done), non_finite
    fit: Optional[FitResult]
    error: Optional[str]
    data: pd.DataFrame = field(repr=False, compare=False)  # the rows given to the fit

    @property
    def label(self) -> str:
        return " ".join(f"{k}={v}" for k, v in self.keys.items())

    def to_dict(self) -> Dict[str, Any]:
        out = {**self.keys, "x": self.x, "loss": self.loss, "form": self.form,
               "points": self.points, "n_points": self.n_points, "excluded": dict(self.excluded),
               "fitted": self.fit is not None, "error": self.error}
        if self.fit is not None:
            fit = self.fit.to_dict()
            out.update(n_boot=fit["n_boot"], n_boot_failed=fit["n_boot_failed"], seed=fit["seed"],
                       params=fit["params"])
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
               points: str = "frontier", n_boot: int = 1000, seed: int = 0,
               progress: Optional[Callable[[GroupFit, float], None]] = None,
               **fit_kwargs) -> List[GroupFit]:
    """One GroupFit per group of `by` (groups with no fittable points carry `error` instead)."""
    for column in list(by) + [x, loss]:
        if column not in stages.columns:
            raise AnalysisError(f"column {column!r} is not in the stage table: use one of "
                                f"{', '.join(map(str, stages.columns))}")
    if points not in POINTS:
        raise AnalysisError(f"--points {points}: use one of {', '.join(POINTS)}")
    out = []
    for key, group in stages.groupby(list(by), sort=True, dropna=False):
        keys = {k: json_safe(v) for k, v in zip(by, key if isinstance(key, tuple) else (key,))}
        start = time.perf_counter()
        rows, excluded = select_points(group, x, loss, points)
        fit, error = None, None
        try:
            fit = fit_scaling_law(rows[x].to_numpy(float), rows[loss].to_numpy(float), form=form,
                                  n_boot=n_boot, seed=group_seed(seed, keys, x), **fit_kwargs)
        except FitError as err:
            error = str(err)
        result = GroupFit(keys=keys, x=x, loss=loss, form=form, points=points, n_points=len(rows),
                          excluded=excluded, fit=fit, error=error, data=rows)
        if progress is not None:
            progress(result, time.perf_counter() - start)
        out.append(result)
    return out


def describe(group_fit: GroupFit) -> str:
    """One line: the group, alpha with its 95% CI and points used, or why it was not fitted."""
    head = f"{group_fit.label} x={group_fit.x}"
    if group_fit.fit is None:
        return f"{head}: not fitted: {group_fit.error}"
    alpha = group_fit.fit.params["alpha"]
    return (f"{head}: alpha={alpha.estimate:.3f} [{alpha.ci_low:.3f}, {alpha.ci_high:.3f}] "
            f"({group_fit.n_points} {group_fit.points} points, {group_fit.fit.n_boot} resamples)")


def print_progress(group_fit: GroupFit, elapsed: float) -> None:
    print(f"{describe(group_fit)} in {elapsed:.1f} s", file=sys.stderr, flush=True)


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m analysis.fit",
                                     description="Fit a scaling law per group of a results folder.")
    parser.add_argument("results_root", help="folder holding <run_id>/result.json")
    parser.add_argument("--x", default="n_params", choices=X_COLUMNS)
    parser.add_argument("--loss", default="test_rmse",
                        help=f"{', '.join(LOSS_COLUMNS)} or a metrics.<name> column")
    parser.add_argument("--by", default="family,task", help="comma-separated group columns")
    parser.add_argument("--form", default="power", choices=CLI_FORMS)
    parser.add_argument("--points", default="frontier", choices=POINTS)
    parser.add_argument("--n-boot", type=int, default=1000, help="bootstrap resamples")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", action="store_true", help="print the fit table as JSON")
    args = parser.parse_args(argv)
    try:
        stages = collect_stages(Path(args.results_root))
        if stages.empty:
            raise AnalysisError(f"no result.json under {args.results_root}: nothing to fit")
        fits = fit_groups(stages, x=args.x, loss=args.loss, by=[b for b in args.by.split(",") if b],
                          form=args.form, points=args.points, n_boot=args.n_boot, seed=args.seed,
                          progress=None if args.json else print_progress)
    except AnalysisError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps([f.to_dict() for f in fits], indent=2, allow_nan=False))
    else:
        for group_fit in fits:
            print(describe(group_fit))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
