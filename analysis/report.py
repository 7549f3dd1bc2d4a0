"""The study report: a summary, the budget per family, run counts, the fit table (with fit ranges),
exchange rates (only inside the measured ranges) and facet-grid figures, as report.md and a
self-contained report.html (the same Markdown rendered by markdown-it-py, figures embedded).

CLI: python -m analysis.report RESULTS_ROOT --out DIR [--n-boot N] [--loss auto|test_rmse|...]
         [--form power|floor] [--points frontier|all] [--fit-range paper|all] [--x n_params,...]
         [--format png|svg|pdf]
"""
from __future__ import annotations

import argparse
import base64
import datetime
import html
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import pandas as pd

from analysis.collect import load_records, runs_table, stages_table
from analysis.errors import AnalysisError, run_cli
from analysis.exchange import MEASURED, exchange_table
from analysis.fit_range import RANGE_RULES
from analysis.fit_table import (LOSS_COLUMNS, N_BOOT, X_COLUMNS, FitSet, compute_fits, json_safe,
                                print_progress)
from analysis.frontier import POINTS, usable
from analysis.metrics import loss_like, losses_by_task, words
from analysis.plots import FORMATS, make_figures

REPORT_X = ("n_params", "flops_forward", "train_flops", "cpu_time_s")  # per second = CPU time
_MIME = {"png": "image/png", "svg": "image/svg+xml", "pdf": "application/pdf"}


@dataclass(frozen=True)
class Table:
    header: Sequence[str]
    rows: Sequence[Sequence[str]]


def _num(value: float) -> str:
    return "nan" if value != value else f"{value:.4g}"


def status_table(runs: pd.DataFrame) -> Table:
    """Runs by status, per experiment and family."""
    counts = (runs.assign(status=runs["status"].fillna("?"))
              .groupby(["experiment", "family", "status"], dropna=False).size().unstack(fill_value=0))
    statuses = list(counts.columns)
    rows = [[str(e), str(f)] + [str(int(counts.loc[(e, f), s])) for s in statuses]
            + [str(int(counts.loc[(e, f)].sum()))] for e, f in counts.index]
    return Table(["experiment", "family"] + statuses + ["total"], rows)


def _span(values) -> str:
    values = sorted({int(v) for v in values if v == v})
    if not values:
        return "?"
    return str(values[0]) if len(values) == 1 else f"{values[0]}-{values[-1]}"


def budget_table(runs: pd.DataFrame) -> Tuple[Table, List[str]]:
    """The training budget each family got, per experiment, from the records: runs, seeds,
    optimizer and optimizer steps per run (all stages); plus one line per experiment whose
    families got different seeds or steps (a frontier favours the family with more tries)."""
    done = runs[runs["status"] == "done"] if "status" in runs else runs
    rows, unequal = [], []
    for experiment, by_experiment in done.groupby("experiment", sort=True):
        budgets = {}
        for family, group in by_experiment.groupby("family", sort=True):
            seeds = sorted({int(s) for s in group["seed"].dropna()})
            steps = _span(group["steps"])
            budgets[family] = (tuple(seeds), steps)
            rows.append([str(experiment), str(family), str(len(group)), _seeds_text(group),
                         ", ".join(sorted(group["optimizer"].dropna().astype(str).unique())), steps,
                         _span(group["n_params"])])
        if len(set(budgets.values())) > 1:
            unequal.append(f"Unequal budgets in {experiment}: " + "; ".join(
                f"{f} {len(seeds)} seed{'s' * (len(seeds) != 1)}, {steps} steps"
                for f, (seeds, steps) in budgets.items())
                + ". The best-of-seeds front favours the family with more tries.")
    header = ["experiment", "family", "runs", "seeds", "optimizer", "optimizer steps per run",
              "parameters (last stage)"]
    return Table(header, rows), unequal


def _seeds_text(group: pd.DataFrame) -> str:
    """Seeds per task of one family's runs: "8 (0, 1, ...)" when every task got the same number,
    else the most common number and the tasks that got another ("8 per task; 3 on toy_x")."""
    per_task = {str(task): sorted({int(s) for s in rows["seed"].dropna()})
                for task, rows in group.groupby("task", sort=True)}
    counts = [len(seeds) for seeds in per_task.values()]
    usual = max(set(counts), key=counts.count)
    seeds = next(s for s in per_task.values() if len(s) == usual)
    text = f"{usual} ({', '.join(map(str, seeds[:6]))}{', ...' if len(seeds) > 6 else ''})"
    others = [f"{len(s)} on {task}" for task, s in per_task.items() if len(s) != usual]
    return text + (f" per task; {', '.join(others)}" if others else "")


def _range_text(g) -> str:
    span = g.fit_range
    if span is None or not span.points:
        return "-"
    reasons = {}
    for point in span.excluded:
        reasons[point.reason] = reasons.get(point.reason, 0) + 1
    inside = f"{_num(span.x_min)}..{_num(span.x_max)}" if span.n_included else "none"
    left_out = "; ".join(f"{n} {reason}" for reason, n in reasons.items())
    return inside + (f" (left out: {left_out})" if left_out else "")


def fit_rows(group_fits) -> Table:
    """family x task x X: alpha, its 95% CI (none from fewer than 4 sizes), E (floor form) and A,
    the fit range with the points left out and why, the fit's status, and the loss L in words."""
    rows = []
    for g in group_fits:
        keys = [str(v) for v in g.keys.values()]
        status = g.status if g.reason is None else f"{g.status}: {g.reason}"
        if g.fit is None:
            rows.append(keys + [g.x, "", "", "", "", str(g.n_points), _range_text(g), status,
                                words(g.loss)])
            continue
        p = g.fit.params
        alpha = p["alpha"]
        ci = (f"[{alpha.ci_low:.3f}, {alpha.ci_high:.3f}]" if g.fit.has_interval else "no interval")
        rows.append(keys + [g.x, f"{alpha.estimate:.3f}", ci, f"{_num(p['A'].estimate)}",
                            _num(p["E"].estimate) if "E" in p else "-", str(g.n_points),
                            _range_text(g), status, words(g.loss)])
    header = list(group_fits[0].keys) if len(group_fits) else []
    return Table(header + ["x", "alpha", "alpha 95% CI", "A", "E", "points fitted", "fit range",
                           "status", "L"], rows)


def exchange_rows(rates) -> Table:
    """Exchange rates; outside either family's measured range the row says so, with no number."""
    rows = []
    for r in rates:
        what = (f"{r.x} {r.reference}/{r.other} at loss {_num(r.at)}" if r.quantity == "x_ratio_at_loss"
                else f"loss {r.reference}/{r.other} at {r.x}={_num(r.at)}")
        if r.status != MEASURED:
            rows.append([", ".join(f"{k}={v}" for k, v in r.keys.items()), what, r.status, "-", "-",
                         r.status])
            continue
        verdict = "no interval: no verdict" if not np.isfinite(r.ci_low) else (
            "interval contains 1: no clear winner") if r.straddles_one else (
            f"{r.other} ahead" if r.estimate > 1 else f"{r.reference} ahead")
        ci = f"[{_num(r.ci_low)}, {_num(r.ci_high)}]" if np.isfinite(r.ci_low) else "no interval"
        rows.append([", ".join(f"{k}={v}" for k, v in r.keys.items()), what, _num(r.estimate), ci,
                     str(r.n_pairs), verdict])
    return Table(["group", "ratio", "estimate", "95% CI", "pairs", "verdict"], rows)


def fit_summary(group_fits, rates) -> str:
    """One paragraph: how many fits have an interval, how many have too few points or are not in
    the scaling regime, and how many exchange rates were measured."""
    statuses = [g.status for g in group_fits]
    parts = [f"{statuses.count(s)} {s}" for s in dict.fromkeys(statuses)]
    measured = sum(r.status == MEASURED for r in rates)
    return (f"Fits: {len(statuses)} ({', '.join(parts) or 'none'}). Exchange rates: {measured} "
            f"measured, {len(rates) - measured} outside the measured range (no number given).")


def _cell(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _md_table(table: Table) -> str:
    if not table.rows:
        return "(none)\n"
    lines = ["| " + " | ".join(map(_cell, table.header)) + " |", "|" + " --- |" * len(table.header)]
    lines += ["| " + " | ".join(map(_cell, row)) + " |" for row in table.rows]
    return "\n".join(lines) + "\n"


def _md_figure(path: Path, out_dir: Path) -> str:
    rel = path.relative_to(out_dir).as_posix()
    if path.suffix == ".pdf":  # a browser shows no PDF in <img>: a link instead
        return f"[{path.stem} (PDF)]({rel})\n"
    return f"![{path.stem}]({rel})\n"


def to_markdown(sections: List[Tuple[str, List]], out_dir: Path, title: str) -> str:
    """Sections (heading, [str Markdown paragraph | Table | Path figure]) as one Markdown page,
    figures linked relative to out_dir."""
    md = [f"# {title}\n"]
    for heading, blocks in sections:
        md.append(f"## {heading}\n")
        for block in blocks:
            if isinstance(block, Table):
                md.append(_md_table(block))
            elif isinstance(block, Path):
                md.append(_md_figure(block, out_dir))
            else:
                md.append(f"{block}\n")
    return "\n".join(md)


_STYLE = """
body{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;max-width:1200px;margin:2em auto;
     padding:0 1em;color:#222;line-height:1.45}
h1{font-size:1.6em}h2{border-bottom:1px solid #ddd;padding-bottom:.2em;margin-top:1.8em}
h3{margin-top:1.4em}
table{border-collapse:collapse;margin:.6em 0;font-size:13px}
td,th{border:1px solid #d0d0d0;padding:3px 8px;vertical-align:top;text-align:left}
th{background:#f3f3f3}tr:nth-child(even) td{background:#fafafa}
img{max-width:100%;height:auto;display:block;margin:.6em 0}
code{background:#f3f3f3;padding:0 3px;border-radius:3px}
blockquote{margin:.6em 0;padding:.2em 1em;border-left:4px solid #bbb;color:#444;background:#f8f8f8}
.v-reproduced{color:#1a7f37}.v-not-reproduced{color:#b42318}.v-inconclusive{color:#9a6700}
.v-too-few-points,.v-not-in-the-scaling-regime{color:#666}
"""


def markdown_to_html(markdown_text: str, out_dir: Path, title: str) -> str:
    """One self-contained HTML page from the report's Markdown (rendered by markdown-it-py, the
    CommonMark reference port, with GFM tables); png/svg figures embedded as base64."""
    from markdown_it import MarkdownIt

    body = MarkdownIt("commonmark", {"html": False}).enable("table").render(markdown_text)

    def embed(match: "re.Match") -> str:
        path = Path(out_dir) / html.unescape(match.group(1))
        mime = _MIME.get(path.suffix.lstrip("."))
        if mime is None or mime.endswith("pdf") or not path.is_file():
            return match.group(0)
        return f'src="data:{mime};base64,{base64.b64encode(path.read_bytes()).decode()}"'

    body = re.sub(r'src="([^":]+)"', embed, body)
    # verdict words in bold get a colour: <strong>not reproduced</strong> -> class v-not-reproduced
    body = re.sub(r"<strong>(reproduced|not reproduced|inconclusive|too few points|"
                  r"not in the scaling regime)</strong>",
                  lambda m: f'<strong class="v-{m.group(1).replace(" ", "-")}">{m.group(1)}</strong>',
                  body)
    return (f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
            f"<style>{_STYLE}</style></head><body>{body}</body></html>")


def render(sections: List[Tuple[str, List]], out_dir: Path, title: str) -> Tuple[Path, Path]:
    """Write report.md (figures linked) and report.html (the same Markdown rendered, figures
    embedded); a section is (heading, [str Markdown paragraph | Table | Path figure])."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    text = to_markdown(sections, out_dir, title)
    md_path, html_path = out_dir / "report.md", out_dir / "report.html"
    md_path.write_text(text)
    html_path.write_text(markdown_to_html(text, out_dir, title))
    return md_path, html_path


def loss_parts(stages: pd.DataFrame, loss: str) -> Dict[str, pd.DataFrame]:
    """loss column -> the stage rows fitted on it. `auto`: each task's primary loss
    (analysis.metrics: the test error rate on classification tasks, else the test RMSE); any other
    value: its loss-like form (an accuracy's error rate) on every row."""
    if loss != "auto":
        return {loss_like(loss): stages}
    by_task = losses_by_task(stages)
    names = sorted(set(by_task.values())) or ["test_rmse"]
    return {name: stages[stages["task"].map(by_task) == name] if len(names) > 1 else stages
            for name in names}


def build_report(results_root: Path, out_dir: Path, loss: str = "auto", form: str = "power",
                 points: str = "frontier", xs: Sequence[str] = REPORT_X, n_boot: int = N_BOOT,
                 seed: int = 0, fmt: str = "png", reference: str = "mlp",
                 progress=print_progress, fit_range_rule: str = "paper") -> Tuple[Path, Path]:
    """Collect, fit once (per family x task x X, analysis.fit_table.compute_fits), compute exchange
    rates inside the measured ranges, plot, and write the report (plus fits.json: the same fit
    table and exchange rates, machine-readable)."""
    records = load_records(results_root)
    if not records:
        raise AnalysisError(f"no result.json under {results_root}: nothing to report")
    runs, stages = runs_table(records), stages_table(records)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    parts = loss_parts(stages, loss)
    groups, figures, excluded = [], [], {"not_done": 0, "non_finite": 0}
    for part_loss, rows in parts.items():
        part = compute_fits(rows, xs=xs, loss=part_loss, form=form, points=points,
                            fit_range_rule=fit_range_rule, n_boot=n_boot, seed=seed, progress=progress)
        groups += list(part)
        # one loss: figures/ as before; several (regression and classification tasks): a folder each
        folder = out_dir / "figures" / (part_loss if len(parts) > 1 else "")
        figures += make_figures(rows, list(part), folder, part_loss, fmt)
        for key, n in usable(rows, xs[0], part_loss)[1].items():
            excluded[key] += n
    fits = FitSet(tuple(groups), {**part.settings, "loss": loss if len(parts) > 1 else part_loss})
    rates = exchange_table(fits, reference=reference)
    (out_dir / "fits.json").write_text(json.dumps(json_safe(
        {**fits.to_dict(), "exchange": [r.to_dict() for r in rates]}), indent=2, allow_nan=False))
    budget, unequal = budget_table(runs)
    loss_text = ", ".join(f"{words(name)} ({name}) on {', '.join(sorted(rows['task'].dropna().unique())) or 'no task'}"
                          for name, rows in parts.items()) if len(parts) > 1 else words(next(iter(parts)))
    setup = (f"Results: `{results_root}`; {len(runs)} runs, {len(stages)} stage rows. Loss: {loss_text}; "
             f"form: {form}; points: {points}; fit range: {fit_range_rule}; {n_boot} bootstrap "
             f"resamples of the runs (within each size), seed {seed}. Excluded stage rows: "
             f"{excluded['not_done']} of runs not done, {excluded['non_finite']} with a non-finite "
             "or non-positive loss.")
    sections = [
        ("Summary", [fit_summary(list(fits), rates)] + [f"**{line}**" for line in unequal]),
        ("Setup", [setup]),
        ("Budget per family", [budget]),
        ("Runs by status", [status_table(runs)]),
        ("Fits", ["alpha: exponent of L = A X^-alpha" + (" + E" if form == "floor" else "")
                  + "; Huber (delta 1e-3) on log L of the frontier points inside the fit range; "
                  "95% percentile interval from resampling the runs within each size and refitting "
                  "(no interval from fewer than 4 sizes: too few points). In the figures, points "
                  "left out of a fit are hollow, with the reason in the legend; shaded bands are "
                  "the bootstrap's 95% band of the fitted line.", fit_rows(list(fits))]),
        ("Exchange rates", [f"Reference family: {reference}. Target loss = the larger of the two "
                            "families' best losses; budget = the smaller of their largest x. A "
                            "ratio is given only inside both families' measured ranges; a ratio "
                            "above 1 favours the other family.", exchange_rows(rates)]),
        ("Figures", list(figures)),
    ]
    generated = datetime.datetime.now().strftime("%Y-%m-%d %H:%M")
    return render(sections, out_dir, f"kanscale report ({generated})")


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m analysis.report", description=__doc__.split("\n")[0])
    parser.add_argument("results_root", help="folder holding <run_id>/result.json")
    parser.add_argument("--out", required=True,
                        help="folder for report.md, report.html, fits.json, figures/")
    parser.add_argument("--n-boot", type=int, default=N_BOOT,
                        help="bootstrap resamples of the runs (stratified by size) per fit")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--loss", default="auto",
                        help=f"auto (per task: test error rate for classification, else test RMSE), "
                             f"{', '.join(LOSS_COLUMNS)} or a metrics.<name> column (an accuracy is "
                             f"fitted as its error rate)")
    parser.add_argument("--form", default="power", choices=("power", "floor"))
    parser.add_argument("--points", default="frontier", choices=POINTS)
    parser.add_argument("--fit-range", default="paper", choices=RANGE_RULES,
                        help="paper: leave out the leading plateau and points from saturation or the "
                             "numerical floor on; all: fit every point")
    parser.add_argument("--x", default=",".join(REPORT_X),
                        help=f"comma-separated, from {', '.join(X_COLUMNS)}")
    parser.add_argument("--format", default="png", choices=FORMATS)
    parser.add_argument("--reference", default="mlp", help="family in the numerator of exchange rates")
    args = parser.parse_args(argv)
    def action() -> str:
        md_path, html_path = build_report(
            Path(args.results_root), Path(args.out), loss=args.loss, form=args.form,
            points=args.points, xs=[x for x in args.x.split(",") if x], n_boot=args.n_boot,
            seed=args.seed, fmt=args.format, reference=args.reference, fit_range_rule=args.fit_range)
        return f"wrote {md_path} and {html_path}"
    return run_cli(action)


if __name__ == "__main__":
    raise SystemExit(main())
