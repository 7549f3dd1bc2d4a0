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
import re
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
