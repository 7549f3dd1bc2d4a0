"""Figures of the scaling study (matplotlib Agg backend, seaborn styling); each function returns a Figure.

CLI: python -m analysis.plots RESULTS_ROOT --out DIR [--format png|svg|pdf] [--n-boot N]
"""
from __future__ import annotations

import argparse
from pathlib import Path
from typing import Dict, List, Optional, Sequence

import matplotlib
import matplotlib.ticker

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402

from analysis.errors import AnalysisError, run_cli  # noqa: E402
from analysis.frontier import usable  # noqa: E402
from analysis.metrics import WORDS, words  # noqa: E402

FORMATS = ("png", "svg", "pdf")
GRID_REFERENCE_EXPONENT = 4  # cubic splines: error ~ G^-(k+1) = G^-4 (Liu et al. 2024, Eq. 2.16)
X_LABELS = {"n_params": "parameters", "flops_forward": "forward FLOPs per example",
            "flops_forward_yu2024": "forward FLOPs per example (Yu et al. 2024)",
            "train_flops": "training FLOPs", "train_flops_yu2024": "training FLOPs (Yu et al. 2024)",
            "wall_time_s": "wall-clock training time (s)", "cpu_time_s": "CPU training time (s)",
            "grid": "grid intervals G"}
LOSS_LABELS = WORDS  # losses and metrics in words (analysis.metrics)
PANEL_SIZE = (4.2, 3.3)  # inches per facet


def axis_label(column: str) -> str:
    """Axis label in words for a table column ("test error rate", analysis.metrics.words)."""
    return X_LABELS.get(column) or LOSS_LABELS.get(column) or words(column)


def tidy_log_axes(ax) -> None:
    """Log axes whose tick labels do not overlap: labels on decades (at most 5 per axis, thinned by
    the locator), no minor labels; a span under 2 decades gets 1-2-5 labels, under 0.6 every digit."""
    for axis, (low, high) in ((ax.xaxis, ax.get_xlim()), (ax.yaxis, ax.get_ylim())):
        if axis.get_scale() != "log" or not (low > 0 and high > 0):
            continue
        span = np.log10(high / low)
        short = span < 2.0
        subs = np.arange(1.0, 10.0) if span < 0.6 else (1.0, 2.0, 5.0) if short else (1.0,)
        axis.set_major_locator(matplotlib.ticker.LogLocator(base=10, subs=subs, numticks=5))
        axis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda v, _: f"{v:g}") if short
                                 else matplotlib.ticker.LogFormatterSciNotation())
        axis.set_minor_formatter(matplotlib.ticker.NullFormatter())


def facet_axes(n: int, ncols: int = 3, sharey: bool = False):
    """A figure of n panels (ncols per row); unused panels hidden. Returns (fig, [ax] * n)."""
    ncols = max(1, min(ncols, n))
    nrows = -(-n // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(PANEL_SIZE[0] * ncols, PANEL_SIZE[1] * nrows + 0.6),
                             squeeze=False, sharey=sharey)
    flat = list(axes.ravel())
    for ax in flat[n:]:
        ax.set_visible(False)
    return fig, flat[:n]


def excluded_points(group_fit) -> List[tuple]:
    """(x, loss, reason) of the frontier points a fit left out of its range (analysis.fit_range)."""
    fit_range = getattr(group_fit, "fit_range", None) or getattr(group_fit, "range", None)
    if fit_range is None or not hasattr(fit_range, "excluded"):
        return []
    return [(p.x, p.loss, p.reason) for p in fit_range.excluded]


def fit_band(fit, grid: np.ndarray) -> Optional[tuple]:
    """2.5th and 97.5th percentiles of the bootstrap fits' predictions on grid (None: no interval)."""
    boot = getattr(fit, "boot_theta", None)
    if boot is None or len(boot) < 2 or getattr(fit, "ci_reason", None):
        return None
    predictions = fit.predict(grid, theta=boot)  # (n_boot, len(grid))
    return tuple(np.nanpercentile(predictions, [2.5, 97.5], axis=0))


def draw_group(ax, group_fit, color, family: str, seen_reasons: set) -> None:
    """A fit on ax: its fitted points filled, excluded ones hollow (the reason in the legend), the
    fitted line over the fit range with its 95% bootstrap band."""
    data = group_fit.data
    if not data.empty:
        ax.scatter(data[group_fit.x], data[group_fit.loss], color=color, s=24, zorder=3,
                   label=f"{family}: fitted points")
    for px, pl, reason in excluded_points(group_fit):
        label = None if reason in seen_reasons else f"excluded: {reason}"
        seen_reasons.add(reason)
        ax.scatter([px], [pl], facecolors="none", edgecolors=color, s=40, linewidths=1.4, zorder=3,
                   label=label)
    fit = group_fit.fit
    if fit is None or data.empty:
        return
    grid = np.geomspace(data[group_fit.x].min(), data[group_fit.x].max(), 80)
    alpha = fit.params["alpha"]
    interval = (f" [{alpha.ci_low:.2f}, {alpha.ci_high:.2f}]" if np.isfinite(alpha.ci_low)
                else " (no interval)")
    ax.plot(grid, fit.predict(grid), color=color, lw=2, label=f"{family}: α={alpha.estimate:.2f}{interval}")
    band = fit_band(fit, grid)
    if band is not None:
        ax.fill_between(grid, band[0], band[1], color=color, alpha=0.2, lw=0)


def plot_fit_grid(panels: Sequence[tuple], x: str, loss: str, title: str = ""):
    """Facet grid, one panel per (panel title, all rows of the panel, [GroupFit, ...]): every run
    faint, each family's fitted points, excluded points hollow, fitted lines with bootstrap bands."""
    panels = [p for p in panels if not p[1].empty]
    if not panels:
        raise AnalysisError(f"no points to plot against {x}")
    families = {f for _, rows, _ in panels for f in rows["family"].dropna()}
    families |= {g.keys.get("family") for _, _, fits in panels for g in fits if g is not None}
    colors = family_colors(sorted(families))
    with sns.axes_style("whitegrid"):
        fig, axes = facet_axes(len(panels))
        for ax, (panel_title, rows, fits) in zip(axes, panels):
            seen: set = set()
            for family, group in rows.groupby("family"):
                ax.scatter(group[x], group[loss], color=colors[family], s=8, alpha=0.25, lw=0,
                           label=f"{family}: all runs")
            for g in fits:
                if g is not None:
                    draw_group(ax, g, colors[g.keys.get("family")], g.keys.get("family", ""), seen)
            ax.set(xscale="log", yscale="log", title=panel_title)
            tidy_log_axes(ax)
            ax.legend(fontsize=6.5, loc="best")
        _label_grid(fig, axes, x, loss, title)
    return fig


def plot_front_grid(panels: Sequence[tuple], x: str, loss: str, title: str = ""):
    """Facet grid of Pareto fronts, one panel per (panel title, rows of the panel): every run
    faint, each family's front (best loss at each size, strictly improving) as a line."""
    from analysis.frontier import pareto_frontier

    panels = [(t, usable(rows, x, loss)[0]) for t, rows in panels]
    panels = [(t, rows) for t, rows in panels if not rows.empty]
    if not panels:
        raise AnalysisError(f"no points to plot against {x}")
    colors = family_colors(sorted({f for _, rows in panels for f in rows["family"].dropna()}))
    with sns.axes_style("whitegrid"):
        fig, axes = facet_axes(len(panels))
        for ax, (panel_title, rows) in zip(axes, panels):
            for family, group in rows.groupby("family"):
                front = pareto_frontier(group, x, loss).sort_values(x)
                ax.scatter(group[x], group[loss], color=colors[family], s=8, alpha=0.25, lw=0)
                ax.plot(front[x], front[loss], "o-", color=colors[family], ms=4, lw=1.6,
                        label=f"{family} front")
            ax.set(xscale="log", yscale="log", title=panel_title)
            tidy_log_axes(ax)
            ax.legend(fontsize=7, loc="best")
        _label_grid(fig, axes, x, loss, title)
    return fig


def plot_ratio_grid(panels: Sequence[tuple], x: str, title: str = ""):
    """Facet grid of front ratios, one panel per (panel title, analysis.exchange.FrontComparison):
    L_KAN / L_MLP along the common x range with its pointwise 95% bootstrap band, the geometric
    mean and its interval (what the verdict reads) as a horizontal line and band, and 1 dashed."""
    panels = [(t, c) for t, c in panels if c.curve is not None and len(c.curve)]
    if not panels:
        raise AnalysisError(f"no front comparison against {x} to plot")
    with sns.axes_style("whitegrid"):
        fig, axes = facet_axes(len(panels))
        for ax, (panel_title, c) in zip(axes, panels):
            ax.plot(c.grid, c.curve, color="C0", lw=1.8, label=f"{c.a}/{c.b} along the fronts")
            if np.isfinite(c.curve_low).any():
                ax.fill_between(c.grid, c.curve_low, c.curve_high, color="C0", alpha=0.2, lw=0,
                                label="95% band")
            ax.axhline(c.ratio, color="C3", lw=1.4, label=f"geometric mean {c.ratio:.3g}")
            if c.has_interval:
                ax.axhspan(c.ci_low, c.ci_high, color="C3", alpha=0.15, lw=0,
                           label=f"its 95% interval [{c.ci_low:.3g}, {c.ci_high:.3g}]")
            ax.axhline(1.0, color="k", ls="--", lw=1)
            ax.set(xscale="log", yscale="log", title=panel_title)
            low, high = ax.get_ylim()
            ax.set_ylim(min(low, 0.8), max(high, 1.25))  # 1 always in view
            tidy_log_axes(ax)
            ax.legend(fontsize=6.5, loc="best")
        for ax in axes:
            ax.title.set_fontsize(9)
            ax.set_xlabel(axis_label(x), fontsize=8)
            ax.set_ylabel("test RMSE ratio KAN / MLP", fontsize=8)
            ax.tick_params(labelsize=7)
        if title:
            fig.suptitle(title, fontsize=11)
        fig.tight_layout()
    return fig


def _label_grid(fig, axes, x: str, loss: str, title: str) -> None:
    for ax in axes:
        ax.title.set_fontsize(9)
        ax.set_xlabel(axis_label(x), fontsize=8)
        ax.set_ylabel(axis_label(loss), fontsize=8)
        ax.tick_params(labelsize=7)
    if title:
        fig.suptitle(title, fontsize=11)
    fig.tight_layout()


def family_colors(families: Sequence[str]) -> Dict[str, tuple]:
    palette = sns.color_palette("colorblind", max(len(families), 1))
    return {family: palette[i] for i, family in enumerate(sorted(set(families)))}


def plot_loss_vs_x(stages: pd.DataFrame, group_fits: Sequence, x: str, loss: str,
                   task: Optional[str] = None, title: str = ""):
    """One panel of plot_fit_grid: loss vs x per family for one task (or all rows)."""
    rows = usable(stages if task is None else stages[stages["task"] == task], x, loss)[0]
    fits = [g for g in group_fits if g.x == x and (task is None or g.keys.get("task") == task)]
    if rows.empty:
        raise AnalysisError(f"no finished points with a finite {loss} to plot for task {task}")
    return plot_fit_grid([(title or (task or ""), rows, fits)], x, loss)


def _kan_grid_rows(stages: pd.DataFrame, loss: str) -> pd.DataFrame:
    rows, _ = usable(stages, "grid", loss)
    return rows[rows["family"] == "kan"] if "family" in rows else rows


def _draw_grid_extension(ax, rows: pd.DataFrame, loss: str) -> None:
    best = rows.groupby(["widths", "grid"], as_index=False)[loss].min()  # best seed per point
    order = sorted(best["widths"].unique(), key=lambda w: [int(i) for i in str(w).split("-")])
    sns.lineplot(data=best, x="grid", y=loss, hue="widths", hue_order=order, marker="o", ax=ax)
    grid = np.geomspace(best["grid"].min(), best["grid"].max(), 50)
    first = best[best["grid"] == best["grid"].min()][loss].median()
    ax.plot(grid, first * (grid / grid[0]) ** -GRID_REFERENCE_EXPONENT, "k--", lw=1,
            label=f"G^-{GRID_REFERENCE_EXPONENT}")
    ax.set(xscale="log", yscale="log")
    tidy_log_axes(ax)
    ticks = sorted(best["grid"].unique())  # label the grids that were run (3, 5, 10, 20, ...)
    ax.set_xticks(ticks, [f"{t:g}" for t in ticks])
    ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    ax.legend(fontsize=6.5, title="KAN widths", title_fontsize=7)


def plot_grid_extension(stages: pd.DataFrame, loss: str, task: Optional[str] = None):
    """KAN loss vs grid size G, one line per shape (widths), with a G^-4 reference line; one panel
    per task (all tasks in stages, or just `task`)."""
    rows = _kan_grid_rows(stages, loss)
    if task is not None:
        rows = rows[rows["task"] == task]
    if rows.empty:
        raise AnalysisError("no KAN stages with a grid size and a finite loss to plot")
    tasks = sorted(rows["task"].dropna().unique()) if "task" in rows else [None]
    with sns.axes_style("whitegrid"):
        fig, axes = facet_axes(len(tasks))
        for ax, name in zip(axes, tasks):
            _draw_grid_extension(ax, rows if name is None else rows[rows["task"] == name], loss)
            ax.set_title(name or "")
        _label_grid(fig, axes, "grid", loss, "grid extension (KAN)")
    return fig


def plot_residuals(group_fits: Sequence, x: str):
    """log(loss) - log(fitted loss) vs x, one panel per fitted group."""
    fits = [g for g in group_fits if g.x == x and g.fit is not None]
    if not fits:
        raise AnalysisError(f"no fitted groups for x={x} to plot residuals of")
    with sns.axes_style("whitegrid"):
        fig, axes = facet_axes(len(fits), ncols=4, sharey=True)
        for ax, g in zip(axes, fits):
            resid = np.log(g.data[g.loss].to_numpy(float)) - np.log(g.fit.predict(g.data[x]))
            ax.scatter(g.data[x], resid, s=16)
            ax.axhline(0, color="k", lw=1)
            ax.set(xscale="log", title=g.label)
            tidy_log_axes(ax)
        for ax in axes:
            ax.title.set_fontsize(8)
            ax.set_xlabel(axis_label(x), fontsize=8)
            ax.set_ylabel("log(loss / fitted loss)", fontsize=8)
            ax.tick_params(labelsize=7)
        fig.suptitle(f"fit residuals vs {axis_label(x)}", fontsize=11)
        fig.tight_layout()
    return fig


def save(fig, path: Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def make_figures(stages: pd.DataFrame, group_fits: Sequence, out_dir: Path, loss: str,
                 fmt: str = "png") -> List[Path]:
    """The report's figures in out_dir: per x, one facet grid (a panel per task) of loss vs x with
    the fits; the KAN grid extension (a panel per task); residuals per x. Empty ones are skipped."""
    if fmt not in FORMATS:
        raise AnalysisError(f"--format {fmt}: use one of {', '.join(FORMATS)}")
    out_dir, paths = Path(out_dir), []
    tasks = sorted(stages["task"].dropna().unique())
    xs = list(dict.fromkeys(g.x for g in group_fits))
    for x in xs:
        panels = [(task, usable(stages[stages["task"] == task], x, loss)[0],
                   [g for g in group_fits if g.x == x and g.keys.get("task") == task]) for task in tasks]
        _try_save(lambda: plot_fit_grid(panels, x, loss, f"{axis_label(loss)} vs {axis_label(x)}"),
                  out_dir / f"loss_vs_{x}.{fmt}", paths)
    _try_save(lambda: plot_grid_extension(stages, loss), out_dir / f"grid_extension.{fmt}", paths)
    for x in xs:
        _try_save(lambda: plot_residuals(group_fits, x), out_dir / f"residuals_{x}.{fmt}", paths)
    return paths


def _try_save(make, path: Path, paths: List[Path]) -> None:
    """Save the figure `make()` returns; a figure without data (AnalysisError) is skipped."""
    try:
        paths.append(save(make(), path))
    except AnalysisError:
        pass


def main(argv: Optional[Sequence[str]] = None) -> int:
    from analysis.collect import collect_stages
    from analysis.fit_table import LOSS_COLUMNS, N_BOOT, X_COLUMNS, compute_fits, print_progress

    parser = argparse.ArgumentParser(prog="python -m analysis.plots", description=__doc__.split("\n")[0])
    parser.add_argument("results_root")
    parser.add_argument("--out", required=True, help="folder for the figures")
    parser.add_argument("--format", default="png", choices=FORMATS)
    parser.add_argument("--loss", default="test_rmse",
                        help=f"{', '.join(LOSS_COLUMNS)} or a metrics.<name> column")
    parser.add_argument("--x", default="n_params,flops_forward,cpu_time_s",
                        help=f"comma-separated, from {', '.join(X_COLUMNS)}")
    parser.add_argument("--form", default="power", choices=("power", "floor"))
    parser.add_argument("--points", default="frontier", choices=("frontier", "all"))
    parser.add_argument("--n-boot", type=int, default=N_BOOT)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    def action() -> None:
        stages = collect_stages(Path(args.results_root))
        if stages.empty:
            raise AnalysisError(f"no result.json under {args.results_root}: nothing to plot")
        fits = compute_fits(stages, xs=[x for x in args.x.split(",") if x], loss=args.loss,
                            form=args.form, points=args.points, n_boot=args.n_boot, seed=args.seed,
                            progress=print_progress)
        for path in make_figures(stages, list(fits), Path(args.out), args.loss, args.format):
            print(path)
    return run_cli(action)


if __name__ == "__main__":
    raise SystemExit(main())
