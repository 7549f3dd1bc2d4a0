"""`python -m analysis.fit`: fit a scaling law per group of a results folder and print the table.

CLI: python -m analysis.fit RESULTS_ROOT --x n_params --by family,task --json
         [--form power|floor] [--points frontier|all] [--fit-range paper|all]
         [--n-boot N] [--seed S] [--loss test_rmse]

The library lives in analysis.laws (the law fits), analysis.fit_range (which points a fit uses),
analysis.bootstrap (resamples of runs) and analysis.fit_table (the fit table, FitSet); the names
below are re-exported so `from analysis.fit import fit_scaling_law` keeps working.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Optional, Sequence

from analysis.collect import collect_stages
from analysis.errors import AnalysisError, run_cli
from analysis.fit_range import RANGE_RULES
from analysis.fit_table import (CLI_FORMS, LOSS_COLUMNS, N_BOOT, X_COLUMNS, compute_fits, describe,
                                print_progress)
from analysis.frontier import POINTS
from analysis.laws import (FORMS, HUBER_DELTA, MIN_SIZES, FitResult, ParamEstimate,  # noqa: F401
                           fit_floor, fit_power, fit_runs, fit_scaling_law, fit_two_var,
                           natural_params)


def parser() -> argparse.ArgumentParser:
    out = argparse.ArgumentParser(prog="python -m analysis.fit",
                                  description="Fit a scaling law per group of a results folder.")
    out.add_argument("results_root", help="folder holding <run_id>/result.json")
    out.add_argument("--x", default="n_params", choices=X_COLUMNS)
    out.add_argument("--loss", default="test_rmse",
                     help=f"{', '.join(LOSS_COLUMNS)} or a metrics.<name> column")
    out.add_argument("--by", default="family,task", help="comma-separated group columns")
    out.add_argument("--form", default="power", choices=CLI_FORMS)
    out.add_argument("--points", default="frontier", choices=POINTS)
    out.add_argument("--fit-range", default="paper", choices=RANGE_RULES,
                     help="paper: drop the leading plateau and points from saturation (n_params >= "
                          "n_train*d_out) or the numerical floor on; all: every point")
    out.add_argument("--n-boot", type=int, default=N_BOOT,
                     help="bootstrap resamples of the runs (stratified by size)")
    out.add_argument("--seed", type=int, default=0)
    out.add_argument("--json", action="store_true", help="print the fit table as JSON")
    return out


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = parser().parse_args(argv)

    def action() -> str:
        stages = collect_stages(Path(args.results_root))
        if stages.empty:
            raise AnalysisError(f"no result.json under {args.results_root}: nothing to fit")
        fits = compute_fits(stages, xs=(args.x,), loss=args.loss,
                            by=[b for b in args.by.split(",") if b], form=args.form,
                            points=args.points, fit_range_rule=args.fit_range, n_boot=args.n_boot,
                            seed=args.seed, progress=None if args.json else print_progress)
        if args.json:
            return json.dumps([g.to_dict() for g in fits], indent=2, allow_nan=False)
        return "\n".join(describe(g) for g in fits)

    return run_cli(action)


if __name__ == "__main__":
    raise SystemExit(main())
