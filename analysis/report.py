"""The study report: run counts, fit table, exchange rates and figures, as report.md and a
self-contained report.html (figures embedded as base64).

CLI: python -m analysis.report RESULTS_ROOT --out DIR [--n-boot N] [--loss test_rmse]
         [--form power|floor] [--points frontier|all] [--x n_params,...] [--format png|svg|pdf]
"""
from __future__ import annotations

import argparse
import base64
import datetime
import html
import json
from dataclasses import dataclass
from pathlib import Path
from typing import List, Optional, Sequence, Tuple

import pandas as pd

from analysis.collect import load_records, runs_table, stages_table
from analysis.errors import AnalysisError, run_cli
from analysis.exchange import exchange_table
from analysis.fit_table import LOSS_COLUMNS, X_COLUMNS, fit_groups, json_safe, print_progress
from analysis.frontier import POINTS, usable
from analysis.plots import FORMATS, make_figures

REPORT_X = ("n_params", "flops_forward", "train_flops", "wall_time_s")
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


def fit_rows(group_fits) -> Table:
    """family x task x X: alpha, its 95% CI, E (floor form) or A, points used, or why not fitted."""
    rows = []
    for g in group_fits:
        keys = [str(v) for v in g.keys.values()]
        excluded = f"{g.excluded['not_done']} not done, {g.excluded['non_finite']} non-finite"
        if g.fit is None:
            rows.append(keys + [g.x, "", "", "", "", str(g.n_points), g.points, excluded,
                                f"not fitted: {g.error}"])
            continue
        p = g.fit.params
        alpha = p["alpha"]
        rows.append(keys + [g.x, f"{alpha.estimate:.3f}", f"[{alpha.ci_low:.3f}, {alpha.ci_high:.3f}]",
                            f"{_num(p['A'].estimate)}", _num(p["E"].estimate) if "E" in p else "-",
                            str(g.n_points), g.points, excluded,
                            f"fitted ({g.fit.n_boot} resamples)"])
    header = list(group_fits[0].keys) if group_fits else []
    return Table(header + ["x", "alpha", "alpha 95% CI", "A", "E", "n points", "points",
                           "excluded rows", "status"], rows)


def exchange_rows(rates) -> Table:
    rows = []
    for r in rates:
        what = (f"{r.x} {r.reference}/{r.other} at loss {_num(r.at)}" if r.quantity == "x_ratio_at_loss"
                else f"loss {r.reference}/{r.other} at {r.x}={_num(r.at)}")
        verdict = "straddles 1" if r.straddles_one else (f"{r.other} ahead" if r.estimate > 1
                                                        else f"{r.reference} ahead")
        rows.append([", ".join(f"{k}={v}" for k, v in r.keys.items()), what, _num(r.estimate),
                     f"[{_num(r.ci_low)}, {_num(r.ci_high)}]", str(r.n_pairs), verdict])
    return Table(["group", "ratio", "estimate", "95% CI", "pairs", "verdict"], rows)


def _md_table(table: Table) -> str:
    if not table.rows:
        return "(none)\n"
    lines = ["| " + " | ".join(table.header) + " |", "|" + " --- |" * len(table.header)]
    lines += ["| " + " | ".join(c.replace("|", "\\|") for c in row) + " |" for row in table.rows]
    return "\n".join(lines) + "\n"


def _html_table(table: Table) -> str:
    if not table.rows:
        return "<p>(none)</p>"
    head = "".join(f"<th>{html.escape(h)}</th>" for h in table.header)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>"
                   for row in table.rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _html_figure(path: Path) -> str:
    data = base64.b64encode(path.read_bytes()).decode()
    mime = _MIME[path.suffix.lstrip(".")]
    tag = (f'<embed src="data:{mime};base64,{data}" width="640" height="480">' if mime.endswith("pdf")
           else f'<img alt="{html.escape(path.stem)}" src="data:{mime};base64,{data}">')
    return f"<figure>{tag}<figcaption>{html.escape(path.stem)}</figcaption></figure>"


def render(sections: List[Tuple[str, List]], out_dir: Path, title: str) -> Tuple[Path, Path]:
    """Write report.md (figures linked) and report.html (figures embedded) from the same sections;
    a section is (heading, [str paragraph | Table | Path figure])."""
    md, body = [f"# {title}\n"], []
    for heading, blocks in sections:
        md.append(f"## {heading}\n")
        body.append(f"<h2>{html.escape(heading)}</h2>")
        for block in blocks:
            if isinstance(block, Table):
                md.append(_md_table(block))
                body.append(_html_table(block))
            elif isinstance(block, Path):
                md.append(f"![{block.stem}]({block.relative_to(out_dir).as_posix()})\n")
                body.append(_html_figure(block))
            else:
                md.append(f"{block}\n")
                body.append(f"<p>{html.escape(block)}</p>")
    style = ("body{font-family:sans-serif;max-width:1100px;margin:auto}table{border-collapse:collapse}"
             "td,th{border:1px solid #ccc;padding:2px 6px;font-size:13px}img{max-width:100%}")
    page = (f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
            f"<style>{style}</style></head><body><h1>{html.escape(title)}</h1>{''.join(body)}"
            "</body></html>")
    md_path, html_path = out_dir / "report.md", out_dir / "report.html"
    md_path.write_text("\n".join(md))
    html_path.write_text(page)
    return md_path, html_path


def build_report(results_root: Path, out_dir: Path, loss: str = "test_rmse", form: str = "power",
                 points: str = "frontier", xs: Sequence[str] = REPORT_X, n_boot: int = 1000,
                 seed: int = 0, fmt: str = "png", reference: str = "mlp",
                 progress=print_progress) -> Tuple[Path, Path]:
    """Collect, fit (per family x task x X), compute exchange rates, plot, and write the report
    (plus fits.json: the fit table and exchange rates, machine-readable)."""
    records = load_records(results_root)
    if not records:
        raise AnalysisError(f"no result.json under {results_root}: nothing to report")
    runs, stages = runs_table(records), stages_table(records)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    fits = [g for x in xs for g in fit_groups(stages, x=x, loss=loss, form=form, points=points,
                                               n_boot=n_boot, seed=seed, progress=progress)]
    rates = exchange_table(fits, reference=reference)
    figures = make_figures(stages, fits, out_dir / "figures", loss, fmt)
    (out_dir / "fits.json").write_text(json.dumps(json_safe(
        {"fits": [g.to_dict() for g in fits], "exchange": [r.to_dict() for r in rates]}),
        indent=2, allow_nan=False))
    _, excluded = usable(stages, xs[0], loss)
    setup = (f"Results: `{results_root}`; {len(runs)} runs, {len(stages)} stage rows. Loss: {loss}; "
             f"form: {form}; points: {points}; {n_boot} bootstrap resamples, seed {seed}. "
             f"Excluded stage rows: {excluded['not_done']} of runs not done, "
             f"{excluded['non_finite']} with a non-finite or non-positive loss.")
    sections = [
        ("Setup", [setup]),
        ("Runs by status", [status_table(runs)]),
        ("Fits", ["alpha: exponent of L = A X^-alpha" + (" + E" if form == "floor" else "")
                  + "; Huber (delta 1e-3) on log L, L-BFGS from a grid of starts; percentile "
                  "bootstrap 95% CI (resamples refitted by IRLS for the power form).",
                  fit_rows(fits)]),
        ("Exchange rates", [f"Reference family: {reference}. Target loss = the larger of the two "
                            "families' best losses; budget = the smaller of their largest x. "
                            "A ratio above 1 favours the other family; 'straddles 1' means the "
                            "interval contains 1.", exchange_rows(rates)]),
        ("Figures", list(figures)),
    ]
    generated = datetime.datetime.now().strftime("%Y-%m-%d %H:%M")
    return render(sections, out_dir, f"kanscale report ({generated})")


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m analysis.report", description=__doc__.split("\n")[0])
    parser.add_argument("results_root", help="folder holding <run_id>/result.json")
    parser.add_argument("--out", required=True,
                        help="folder for report.md, report.html, fits.json, figures/")
    parser.add_argument("--n-boot", type=int, default=1000, help="bootstrap resamples per fit")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--loss", default="test_rmse",
                        help=f"{', '.join(LOSS_COLUMNS)} or a metrics.<name> column")
    parser.add_argument("--form", default="power", choices=("power", "floor"))
    parser.add_argument("--points", default="frontier", choices=POINTS)
    parser.add_argument("--x", default=",".join(REPORT_X),
                        help=f"comma-separated, from {', '.join(X_COLUMNS)}")
    parser.add_argument("--format", default="png", choices=FORMATS)
    parser.add_argument("--reference", default="mlp", help="family in the numerator of exchange rates")
    args = parser.parse_args(argv)
    def action() -> str:
        md_path, html_path = build_report(
            Path(args.results_root), Path(args.out), loss=args.loss, form=args.form,
            points=args.points, xs=[x for x in args.x.split(",") if x], n_boot=args.n_boot,
            seed=args.seed, fmt=args.format, reference=args.reference)
        return f"wrote {md_path} and {html_path}"
    return run_cli(action)


if __name__ == "__main__":
    raise SystemExit(main())
