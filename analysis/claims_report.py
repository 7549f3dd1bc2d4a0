"""The claims report: claim | paper says | measured | per-FLOP view | verdict, with figures.

CLI: python -m analysis.claims RESULTS_ROOT --out DIR [--n-boot N] [--seed S] [--format png|svg|pdf]
Writes DIR/report.md, DIR/report.html (figures embedded), DIR/claims.json and DIR/figures/.
"""
from __future__ import annotations

import argparse
import datetime
import json
import sys
import time
from dataclasses import asdict
from pathlib import Path
from typing import List, Optional, Sequence, Tuple

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402

from analysis.claims import CLAIMS, TOY_TASKS, Finding, evaluate_all  # noqa: E402
from analysis.collect import load_records, runs_table, stages_table  # noqa: E402
from analysis.errors import AnalysisError, run_cli  # noqa: E402
from analysis.fit_table import fit_groups, json_safe  # noqa: E402
from analysis.frontier import usable  # noqa: E402
from analysis.plots import FORMATS, family_colors, plot_loss_vs_x, save  # noqa: E402
from analysis.report import Table, render  # noqa: E402


QUICK_EXPERIMENTS = ("toy_scaling_quick", "special_functions_quick", "feynman_quick",
                     "pde_poisson_quick", "continual_quick")
REGENERATE = ("Regenerate (about 10 minutes on 2 CPU cores): `for e in "
              + " ".join(QUICK_EXPERIMENTS) + "; do python -m harness.run -m experiment=$e "
              "results_root=claims_results; done; python -m analysis.claims claims_results "
              "--out docs/claims`. The full sizes (drop `_quick`, add `launcher=slurm`) follow "
              "the paper's protocol.")


def claims_table(findings: Sequence[Finding]) -> Table:
    says = {c.id: c.paper_says for c in CLAIMS}
    rows = [(f.claim, f.case, says[f.claim], f.measured, f.per_flop, f"**{f.verdict}** ({f.why})")
            for f in findings]
    return Table(("claim", "case", "paper says", "measured", "per-FLOP view", "verdict"), rows)


def rules_table() -> Table:
    return Table(("claim", "experiments", "metric", "verdict rule"),
                 [(c.id, ", ".join(c.experiments), c.metric, c.rule) for c in CLAIMS])


def _experiments(stages: pd.DataFrame, claim_id: str) -> pd.DataFrame:
    claim = next(c for c in CLAIMS if c.id == claim_id)
    return stages[stages["experiment"].isin(list(claim.experiments))]


def scaling_figures(stages: pd.DataFrame, out: Path, fmt: str, n_boot: int, seed: int) -> List[Path]:
    """Claims 1-2: per toy function, loss vs parameters and vs FLOPs with frontier fits."""
    rows = _experiments(stages, "1")
    paths = []
    for task in [t for t in TOY_TASKS if t in set(rows["task"])]:
        task_rows = rows[rows["task"] == task]
        for x in ("n_params", "flops_forward"):
            fits = fit_groups(task_rows, x=x, by=("family", "task"), n_boot=n_boot, seed=seed)
            try:
                paths.append(save(plot_loss_vs_x(task_rows, fits, x, "test_rmse", task),
                                  out / f"claim1_{x}_{task}.{fmt}"))
            except AnalysisError:
                pass
    return paths


def pde_figure(stages: pd.DataFrame, out: Path, fmt: str) -> List[Path]:
    """Claim 3: l2 error vs parameters for every PDE stage, per family."""
    rows = _experiments(stages, "3")
    if "metrics.l2_sq" not in rows or rows.empty:
        return []
    rows = usable(rows, "n_params", "metrics.l2_sq")[0]
    colors = family_colors(list(rows["family"].unique()))
    with sns.axes_style("whitegrid"):
        fig, ax = plt.subplots(figsize=(6.4, 4.6))
        for (family, widths), group in rows.groupby(["family", "widths"]):
            ax.plot(group["n_params"], group["metrics.l2_sq"], "o-", color=colors[family],
                    alpha=0.8, label=f"{family} {widths}")
        ax.set(xscale="log", yscale="log", xlabel="parameters", ylabel="l2 squared error",
               title="Poisson PDE: error vs parameters (one point per stage)")
        ax.legend(fontsize=7)
        fig.tight_layout()
    return [save(fig, out / f"claim3_pde.{fmt}")]


def fronts_figure(stages: pd.DataFrame, claim_id: str, out: Path, fmt: str) -> List[Path]:
    """Claims 4/4f: best test RMSE per function, KAN vs MLP (points under the diagonal: KAN better)."""
    rows = usable(_experiments(stages, claim_id), "n_params", "test_rmse")[0]
    best = rows.groupby(["task", "family"])["test_rmse"].min().unstack()
    if rows.empty or not {"kan", "mlp"} <= set(best.columns):
        return []
    best = best.dropna()
    with sns.axes_style("whitegrid"):
        fig, ax = plt.subplots(figsize=(5.6, 5.2))
        ax.scatter(best["mlp"], best["kan"], color="C0")
        for task, row in best.iterrows():
            ax.annotate(task.split("_", 1)[-1], (row["mlp"], row["kan"]), fontsize=6)
        lo, hi = best.min().min() / 2, best.max().max() * 2
        ax.plot([lo, hi], [lo, hi], "k--", lw=1, label="equal")
        ax.set(xscale="log", yscale="log", xlabel="best MLP test RMSE", ylabel="best KAN test RMSE",
               title=f"claim {claim_id}: best RMSE per function")
        ax.legend(fontsize=8)
        fig.tight_layout()
    return [save(fig, out / f"claim{claim_id}_best_rmse.{fmt}")]


def forgetting_figure(stages: pd.DataFrame, out: Path, fmt: str) -> List[Path]:
    """Claim 5: RMSE on earlier regions after each stage, per run."""
    rows = _experiments(stages, "5")
    if "metrics.forgetting" not in rows or rows.empty:
        return []
    colors = family_colors(list(rows["family"].unique()))
    with sns.axes_style("whitegrid"):
        fig, ax = plt.subplots(figsize=(6.4, 4.6))
        for (family, widths, seed), group in rows.groupby(["family", "widths", "seed"]):
            ax.plot(group["stage"], group["metrics.forgetting"], "o-", color=colors[family],
                    label=f"{family} {widths} seed {seed}")
        ax.set(yscale="log", xlabel="stage (region learned)", ylabel="RMSE on earlier regions",
               title="continual learning: forgetting")
        ax.legend(fontsize=7)
        fig.tight_layout()
    return [save(fig, out / f"claim5_forgetting.{fmt}")]


def build_claims_report(results_root: Path, out_dir: Path, n_boot: int = 1000, seed: int = 0,
                        fmt: str = "png") -> Tuple[Path, Path]:
    records = load_records(results_root)
    if not records:
        raise AnalysisError(f"no result.json under {results_root}: run the experiments first")
    if fmt not in FORMATS:
        raise AnalysisError(f"--format {fmt}: use one of {', '.join(FORMATS)}")
    runs, stages = runs_table(records), stages_table(records)
    out_dir = Path(out_dir)
    figures_dir = out_dir / "figures"
    started = time.perf_counter()

    def progress(message: str) -> None:
        print(f"[claims] {message} ({time.perf_counter() - started:.0f}s)", file=sys.stderr, flush=True)

    findings = evaluate_all(runs, stages, n_boot=n_boot, seed=seed, progress=progress)
    figures = (scaling_figures(stages, figures_dir, fmt, n_boot, seed) + pde_figure(stages, figures_dir, fmt)
               + fronts_figure(stages, "4", figures_dir, fmt) + fronts_figure(stages, "4f", figures_dir, fmt)
               + forgetting_figure(stages, figures_dir, fmt))
    progress(f"{len(figures)} figures")
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "claims.json").write_text(json.dumps(json_safe([asdict(f) for f in findings]), indent=2))
    counts = runs.groupby(["experiment", "status"]).size().unstack(fill_value=0)
    status = Table(["experiment", *map(str, counts.columns)],
                   [[str(e), *map(str, row)] for e, row in counts.iterrows()])
    sections = [
        ("Setup", [REGENERATE, f"Results: `{results_root}`; {len(runs)} runs, {len(stages)} stage rows; "
                   f"fits: Huber power law on the frontier, {n_boot} bootstrap resamples, seed {seed}. "
                   "Verdicts come from the rules below applied to these results; quick-size "
                   "experiments train far less than the paper, so read their verdicts as verdicts on "
                   "the quick protocol.", status]),
        ("Claims", [claims_table(findings)]),
        ("Verdict rules", [rules_table()]),
        ("Figures", figures),
    ]
    generated = datetime.datetime.now().strftime("%Y-%m-%d %H:%M")
    return render(sections, out_dir, f"kanscale claims report ({generated})")


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m analysis.claims",
                                     description="Check the KAN paper's claims against a results folder.")
    parser.add_argument("results_root", help="folder holding <run_id>/result.json")
    parser.add_argument("--out", required=True, help="folder for report.md, report.html, claims.json")
    parser.add_argument("--n-boot", type=int, default=1000, help="bootstrap resamples per fit")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--format", default="png", choices=FORMATS)
    args = parser.parse_args(argv)
    def action() -> str:
        md_path, html_path = build_claims_report(Path(args.results_root), Path(args.out),
                                                 n_boot=args.n_boot, seed=args.seed, fmt=args.format)
        return f"wrote {md_path} and {html_path}"
    return run_cli(action)


if __name__ == "__main__":
    raise SystemExit(main())
