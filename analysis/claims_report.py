"""The claims report: a summary of verdict counts first, the budget per family, then per claim the
paper's sentence (once), its cases with per-parameter and per-FLOP verdicts, and its figures.

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

from analysis.claims import (CLAIMS, FLOP_CONVENTIONS, MIN_SIZES, NO_VIEW, SUMMARY_CASES,  # noqa: E402
                             TOY_TASKS, VERDICTS, Claim, ClaimFits, Finding, evaluate_all)
from analysis.metrics import primary_loss  # noqa: E402
from analysis.collect import load_records, runs_table, stages_table  # noqa: E402
from analysis.errors import AnalysisError, run_cli  # noqa: E402
from analysis.fit_table import N_BOOT, json_safe  # noqa: E402
from analysis.frontier import usable  # noqa: E402
from analysis.plots import (FORMATS, axis_label, family_colors, plot_fit_grid, plot_front_grid,  # noqa: E402
                            plot_ratio_grid, save)
from analysis.report import Table, budget_table, render  # noqa: E402


def regenerate(experiments, out: str = "docs/claims") -> str:
    """How to rebuild this report: the experiments its records come from, each run into one
    results folder (the records are committed for docs/claims: docs/claims/records), then this
    command."""
    names = " ".join(sorted(experiments))
    return (f"Regenerate: `for e in {names}; do python -m harness.run -m experiment=$e "
            f"results_root=claims_results num_threads=1 hydra.launcher.pack=8; done; "
            f"python -m analysis.claims claims_results --out {out}` (or unpack the committed "
            f"records, docs/claims/records/*.tar.gz, into claims_results and run the last command). "
            "The full sizes (drop `_quick`/`_medium`, add `launcher=slurm`) follow the paper's "
            "protocol.")


def verdict_cell(verdict: str, why: str) -> str:
    return NO_VIEW if verdict == NO_VIEW else f"**{verdict}**: {why}"


def case_table(findings: Sequence[Finding], with_flops: bool) -> Table:
    """A claim's cases: what was measured and the verdict, per parameter and (if the claim has
    one) per FLOP, with whether the per-FLOP verdict depends on the FLOP convention."""
    if not with_flops:
        return Table(("case", "measured", "verdict", "FLOPs and time"),
                     [(f.case, f.measured, verdict_cell(f.verdict, f.why), f.per_flop) for f in findings])
    rows = [(f.case, f.measured, verdict_cell(f.verdict, f.why), f.per_flop,
             verdict_cell(f.flop_verdict, f.flop_why), f.convention or NO_VIEW) for f in findings]
    return Table(("case", "per parameter", "verdict", "per FLOP (ours; Yu et al.)",
                  "verdict per FLOP (ours)", "FLOP conventions"), rows)


def summary_tables(findings: Sequence[Finding]) -> Tuple[Table, Table]:
    """Counts of verdicts over every case (per parameter; per FLOP under each convention), and one
    line per claim."""
    cases = [f for f in findings if f.case not in SUMMARY_CASES]
    views = (("per parameter", lambda f: f.verdict), ("per FLOP (ours)", lambda f: f.flop_verdict),
             ("per FLOP (Yu et al.)", lambda f: f.flop_verdict_yu))
    counts = Table(["verdict"] + [name for name, _ in views],
                   [[verdict] + [str(sum(get(f) == verdict for f in cases)) for _, get in views]
                    for verdict in VERDICTS])
    per_claim = []
    for claim in CLAIMS:
        mine = [f for f in findings if f.claim == claim.id]
        headline = [f for f in mine if f.case in SUMMARY_CASES]
        rows = headline or mine
        per_claim.append([claim.id, claim.paper_says,
                          "; ".join(f"**{f.verdict}**" if len(rows) == 1 else f"{f.case}: {f.verdict}"
                                    for f in rows),
                          "; ".join(f.flop_verdict if len(rows) == 1 else f"{f.case}: {f.flop_verdict}"
                                    for f in rows if f.flop_verdict != NO_VIEW) or NO_VIEW])
    return counts, Table(("claim", "paper says", "verdict per parameter", "verdict per FLOP (ours)"),
                         per_claim)


def _titled(case: str, verdict: str) -> str:
    return f"{case}: {verdict}"


def fit_figure(book: ClaimFits, findings: Sequence[Finding], claim_id: str, x: str, loss: str,
               out: Path, fmt: str, per_flop: bool) -> List[Path]:
    """Claims 1/1m/2: a panel per toy function, loss vs x, KAN and MLP fits with bootstrap bands;
    each panel titled with the verdict it shows."""
    claim = claim_by_id(claim_id)
    rows = book.rows(claim)
    panels = []
    for f in (f for f in findings if f.claim == claim_id and f.case in TOY_TASKS):
        task_rows = usable(rows[rows["task"] == f.case], x, loss)[0]
        fits = [book.fit(claim, family, f.case, x, loss) for family in ("kan", "mlp")]
        verdict = f.flop_verdict if per_flop else f.verdict
        if x == FLOP_CONVENTIONS["Yu et al."]:
            verdict = f.flop_verdict_yu
        panels.append((_titled(f.case, verdict), task_rows, fits))
    if not panels or all(p[1].empty for p in panels):
        return []
    title = f"claim {claim_id}: {axis_label(loss)} vs {axis_label(x)}"
    return [save(plot_fit_grid(panels, x, loss, title), out / f"claim{claim_id}_{loss}_vs_{x}.{fmt}")]


def front_panels(book: ClaimFits, findings: Sequence[Finding], claim_id: str, x: str,
                 which: str) -> List[Tuple[str, pd.DataFrame]]:
    """(panel title, rows) per function of a front claim: the title carries the finding's verdict
    (which: "verdict", "flop_verdict" or "flop_verdict_yu") and the front ratio it came from."""
    claim = claim_by_id(claim_id)
    rows = book.rows(claim)
    panels = []
    for f in (f for f in findings if f.claim == claim_id and f.case not in (*SUMMARY_CASES, "-")):
        ratio = book.front(claim, f.case, x).ratio
        shown = f"{ratio:.2g}" if ratio == ratio else "-"
        panels.append((f"{f.case}: {getattr(f, which)} (KAN/MLP {shown})", rows[rows["task"] == f.case]))
    return panels


def front_figure(book: ClaimFits, findings: Sequence[Finding], claim_id: str, x: str, out: Path,
                 fmt: str, which: str) -> List[Path]:
    """Claims 2w/4/4f: a panel per function with both Pareto fronts vs x (front_panels)."""
    panels = front_panels(book, findings, claim_id, x, which)
    if not panels:
        return []
    try:
        fig = plot_front_grid(panels, x, "test_rmse", f"claim {claim_id}: Pareto fronts vs {axis_label(x)}")
    except AnalysisError:
        return []
    paths = [save(fig, out / f"claim{claim_id}_fronts_vs_{x}.{fmt}")]
    claim = claim_by_id(claim_id)
    cases = [f.case for f in findings if f.claim == claim_id and f.case not in (*SUMMARY_CASES, "-")]
    ratios = [(title, book.front(claim, case, x)) for (title, _), case in zip(panels, cases)]
    try:
        paths.append(save(plot_ratio_grid(ratios, x, f"claim {claim_id}: front ratio KAN / MLP vs "
                                                     f"{axis_label(x)} (under 1: KAN front below)"),
                          out / f"claim{claim_id}_ratio_vs_{x}.{fmt}"))
    except AnalysisError:
        pass
    return paths


YU_FAMILIES = {"Y1": ("mlp", "kan"), "Y2": ("kan", "mlp"), "Y3": ("kan", "mlp", "spline_mlp")}


def yu_front_figures(book: ClaimFits, findings: Sequence[Finding], claim_id: str, x: str, out: Path,
                     fmt: str, which: str) -> List[Path]:
    """Yu et al.'s claims: a panel per task with the fronts of the claim's families vs x, titled
    with the task's verdict; one figure per loss (test error rate for classes, test RMSE)."""
    claim = claim_by_id(claim_id)
    rows = book.rows(claim)
    rows = rows[rows["family"].isin(YU_FAMILIES[claim_id])]
    by_loss = {}
    for f in (f for f in findings if f.claim == claim_id and f.case not in (*SUMMARY_CASES, "-")):
        task_rows = rows[rows["task"] == f.case]
        by_loss.setdefault(primary_loss(task_rows), []).append(
            (f"{f.case}: {getattr(f, which)}", task_rows))
    paths = []
    for loss, panels in sorted(by_loss.items()):
        try:
            fig = plot_front_grid(panels, x, loss, f"claim {claim_id}: Pareto fronts vs {axis_label(x)}")
        except AnalysisError:
            continue
        paths.append(save(fig, out / f"claim{claim_id}_{loss}_fronts_vs_{x}.{fmt}"))
    return paths


def claim_by_id(claim_id: str) -> Claim:
    return next(c for c in CLAIMS if c.id == claim_id)


def _experiments(stages: pd.DataFrame, claim_id: str) -> pd.DataFrame:
    claim = claim_by_id(claim_id)
    return stages[stages["experiment"].isin(list(claim.experiments))]


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
        ax.set(xscale="log", yscale="log", xlabel="parameters", ylabel="squared l2 error",
               title="Poisson PDE: error vs parameters (one point per stage)")
        ax.legend(fontsize=7)
        fig.tight_layout()
    return [save(fig, out / f"claim3_pde.{fmt}")]


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


def claim_figures(book: ClaimFits, findings: Sequence[Finding], claim_id: str, out: Path,
                  fmt: str) -> List[Path]:
    """The figures that sit beside a claim's verdicts."""
    stages = book.stages
    ours, yu = FLOP_CONVENTIONS["ours"], FLOP_CONVENTIONS["Yu et al."]
    if claim_id == "1":
        return (fit_figure(book, findings, "1", "n_params", "test_rmse", out, fmt, False)
                + fit_figure(book, findings, "1", ours, "test_rmse", out, fmt, True))
    if claim_id == "1m":
        return fit_figure(book, findings, "1m", "n_params", "test_median_abs_error", out, fmt, False)
    if claim_id == "2":
        return (fit_figure(book, findings, "2", ours, "test_rmse", out, fmt, True)
                + fit_figure(book, findings, "2", yu, "test_rmse", out, fmt, True))
    if claim_id == "2w":
        return (front_figure(book, findings, "2w", "n_params", out, fmt, "verdict")
                + front_figure(book, findings, "2w", "train_flops", out, fmt, "flop_verdict"))
    if claim_id in ("4", "4f"):
        return (front_figure(book, findings, claim_id, "n_params", out, fmt, "verdict")
                + front_figure(book, findings, claim_id, ours, out, fmt, "flop_verdict"))
    if claim_id in YU_FAMILIES:
        return (yu_front_figures(book, findings, claim_id, "n_params", out, fmt, "verdict")
                + yu_front_figures(book, findings, claim_id, ours, out, fmt, "flop_verdict"))
    if claim_id == "3":
        return pde_figure(stages, out, fmt)
    if claim_id == "5":
        return forgetting_figure(stages, out, fmt)
    return []


def build_claims_report(results_root: Path, out_dir: Path, n_boot: int = N_BOOT, seed: int = 0,
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

    book = ClaimFits(runs, stages, n_boot=n_boot, seed=seed)
    findings = evaluate_all(runs, stages, progress=progress, book=book)
    claim_sections = []
    n_figures = 0
    for claim in CLAIMS:
        mine = [f for f in findings if f.claim == claim.id]
        figures = claim_figures(book, findings, claim.id, figures_dir, fmt) if mine[0].case != "-" else []
        n_figures += len(figures)
        with_flops = any(f.flop_verdict != NO_VIEW for f in mine)
        claim_sections.append((f"Claim {claim.id}", [
            f"> {claim.paper_says}",
            f"Tested on {' / '.join(claim.experiments)}; metric: {claim.metric}. Rule: {claim.rule}.",
            case_table(mine, with_flops), *figures]))
    progress(f"{n_figures} figures")
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "claims.json").write_text(json.dumps(json_safe(
        {"findings": [asdict(f) for f in findings], "fits": book.all_fits(),
         "front_comparisons": book.all_fronts()}), indent=2, allow_nan=False))
    counts, per_claim = summary_tables(findings)
    budget, unequal = budget_table(runs)
    status_counts = runs.groupby(["experiment", "status"]).size().unstack(fill_value=0)
    status = Table(["experiment", *map(str, status_counts.columns)],
                   [[str(e), *map(str, row)] for e, row in status_counts.iterrows()])
    sections = [
        ("Summary", [
            "Verdicts over every case (a case is one function or one setting). Per parameter is the "
            "paper's axis; per FLOP is the same rule at matched forward FLOPs (training FLOPs for "
            "claim 2w), under our FLOP convention and under Yu et al.'s (2024). A verdict needs "
            f"at least {MIN_SIZES} sizes per fitted curve (else too few points). Claims 1-5 are "
            "the KAN paper's (Liu et al. 2024); Y1-Y3 are Yu et al. 2024's critique (\"KAN or MLP: "
            "A Fairer Comparison\"), tested by the fair_comparison experiments at matched "
            "parameters and forward FLOPs, each task on its own metric (test error rate for "
            "classification, test RMSE for regression).",
            counts, per_claim]),
        ("Setup", [regenerate(set(runs["experiment"].dropna()), str(out_dir)), f"Results: `{results_root}`; {len(runs)} runs, {len(stages)} stage rows; "
                   f"{n_boot} bootstrap resamples (runs resampled within each size), seed {seed}. "
                   "Quick-size experiments train far less than the paper: read their verdicts as "
                   "verdicts on the quick protocol.", status]),
        ("Budget per family", ["Seeds and optimizer steps each family got, from the records."]
         + [f"**{line}**" for line in unequal] + [budget]),
        *claim_sections,
    ]
    generated = datetime.datetime.now().strftime("%Y-%m-%d %H:%M")
    return render(sections, out_dir, f"kanscale claims report ({generated})")


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m analysis.claims",
                                     description="Check the KAN paper's claims against a results folder.")
    parser.add_argument("results_root", help="folder holding <run_id>/result.json")
    parser.add_argument("--out", required=True, help="folder for report.md, report.html, claims.json")
    parser.add_argument("--n-boot", type=int, default=N_BOOT,
                        help="bootstrap resamples of the runs (stratified by size) per fit")
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
