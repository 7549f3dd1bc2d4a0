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

FORMATS = ("png", "svg", "pdf")
GRID_REFERENCE_EXPONENT = 4  # cubic splines: error ~ G^-(k+1) = G^-4 (Liu et al. 2024, Eq. 2.16)
X_LABELS = {"n_params": "parameters", "flops_forward": "forward FLOPs per example",
            "flops_forward_yu2024": "forward FLOPs per example (Yu et al. 2024)",
            "train_flops": "training FLOPs", "wall_time_s": "wall-clock training time (s)"}


def family_colors(families: Sequence[str]) -> Dict[str, tuple]:
    palette = sns.color_palette("colorblind", max(len(families), 1))
    return {family: palette[i] for i, family in enumerate(sorted(set(families)))}


def _fit_label(group_fit) -> str:
    alpha = group_fit.fit.params["alpha"]
    return (f"{group_fit.keys.get('family', '')}: α={alpha.estimate:.2f} "
            f"[{alpha.ci_low:.2f}, {alpha.ci_high:.2f}]")


def plot_loss_vs_x(stages: pd.DataFrame, group_fits: Sequence, x: str, loss: str,
                   task: Optional[str] = None, title: str = ""):
    """Log-log loss vs x per family: all points hollow, fitted points filled, fitted curve with
    alpha and its 95% CI in the legend."""
    points, _ = usable(stages if task is None else stages[stages["task"] == task], x, loss)
    fits = [g for g in group_fits if g.x == x and (task is None or g.keys.get("task") == task)]
    if points.empty:
        raise AnalysisError(f"no finished points with a finite {loss} to plot for task {task}")
    colors = family_colors(list(points["family"].unique()) + [g.keys.get("family") for g in fits])
    with sns.axes_style("whitegrid"):
        fig, ax = plt.subplots(figsize=(6.4, 4.6))
        for family, rows in points.groupby("family"):
            ax.scatter(rows[x], rows[loss], facecolors="none", edgecolors=colors[family],
                       s=18, alpha=0.5, label=f"{family}: all points")
        for g in fits:
            color = colors[g.keys.get("family")]
            ax.scatter(g.data[x], g.data[loss], color=color, s=26, zorder=3,
                       label=f"{g.keys.get('family', '')}: {g.points} points (fitted)")
            if g.fit is None:
                continue
            grid = np.geomspace(g.data[x].min(), g.data[x].max(), 100)
            ax.plot(grid, g.fit.predict(grid), color=color, lw=2, label=_fit_label(g))
        ax.set(xscale="log", yscale="log", xlabel=X_LABELS.get(x, x), ylabel=loss,
               title=title or f"{loss} vs {x}" + (f" ({task})" if task else ""))
        ax.legend(fontsize=8)
        fig.tight_layout()
    return fig


def plot_grid_extension(stages: pd.DataFrame, loss: str, task: Optional[str] = None):
    """KAN loss vs grid size G, one line per shape (widths), with a G^-4 reference line."""
    rows, _ = usable(stages, "grid", loss)
    rows = rows[rows["family"] == "kan"] if "family" in rows else rows
    if task is not None:
        rows = rows[rows["task"] == task]
    if rows.empty:
        raise AnalysisError("no KAN stages with a grid size and a finite loss to plot")
    with sns.axes_style("whitegrid"):
        fig, ax = plt.subplots(figsize=(6.4, 4.6))
        best = rows.groupby(["widths", "grid"], as_index=False)[loss].min()  # best seed per point
        order = sorted(best["widths"].unique(), key=lambda w: [int(i) for i in str(w).split("-")])
        sns.lineplot(data=best, x="grid", y=loss, hue="widths", hue_order=order, marker="o", ax=ax)
        grid = np.geomspace(best["grid"].min(), best["grid"].max(), 50)
        first = best[best["grid"] == best["grid"].min()][loss].median()
        ax.plot(grid, first * (grid / grid[0]) ** -GRID_REFERENCE_EXPONENT, "k--", lw=1,
                label=f"G^-{GRID_REFERENCE_EXPONENT}")
        ax.set(xscale="log", yscale="log", xlabel="grid intervals G", ylabel=loss,
               title="grid extension" + (f" ({task})" if task else ""))
        ticks = sorted(best["grid"].unique())
        ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
        ax.set_xticks(ticks, [f"{t:g}" for t in ticks])
        ax.legend(fontsize=8, title="widths")
        fig.tight_layout()
    return fig


def plot_residuals(group_fits: Sequence, x: str):
    """log(loss) - log(fitted loss) vs x, one panel per fitted group."""
    fits = [g for g in group_fits if g.x == x and g.fit is not None]
    if not fits:
        raise AnalysisError(f"no fitted groups for x={x} to plot residuals of")
    with sns.axes_style("whitegrid"):
        fig, axes = plt.subplots(1, len(fits), figsize=(3.6 * len(fits), 3.2), squeeze=False,
                                 sharey=True)
        for ax, g in zip(axes[0], fits):
            resid = np.log(g.data[g.loss].to_numpy(float)) - np.log(g.fit.predict(g.data[x]))
            ax.scatter(g.data[x], resid, s=16)
            ax.axhline(0, color="k", lw=1)
            ax.set(xscale="log", xlabel=X_LABELS.get(x, x), title=g.label)
        axes[0][0].set_ylabel("log residual")
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
    """Every figure of the report, one file each in out_dir; groups without data are skipped."""
    if fmt not in FORMATS:
        raise AnalysisError(f"--format {fmt}: use one of {', '.join(FORMATS)}")
    out_dir, paths = Path(out_dir), []
    tasks = sorted(stages["task"].dropna().unique())
    xs = list(dict.fromkeys(g.x for g in group_fits))
    for task in tasks:
        for x in xs:
            _try_save(lambda: plot_loss_vs_x(stages, group_fits, x, loss, task),
                      out_dir / f"loss_vs_{x}_{task}.{fmt}", paths)
        _try_save(lambda: plot_grid_extension(stages, loss, task),
                  out_dir / f"grid_extension_{task}.{fmt}", paths)
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
    from analysis.fit_table import LOSS_COLUMNS, X_COLUMNS, fit_groups, print_progress

    parser = argparse.ArgumentParser(prog="python -m analysis.plots", description=__doc__.split("\n")[0])
    parser.add_argument("results_root")
    parser.add_argument("--out", required=True, help="folder for the figures")
    parser.add_argument("--format", default="png", choices=FORMATS)
    parser.add_argument("--loss", default="test_rmse",
                        help=f"{', '.join(LOSS_COLUMNS)} or a metrics.<name> column")
    parser.add_argument("--x", default="n_params,flops_forward,wall_time_s",
                        help=f"comma-separated, from {', '.join(X_COLUMNS)}")
    parser.add_argument("--form", default="power", choices=("power", "floor"))
    parser.add_argument("--points", default="frontier", choices=("frontier", "all"))
    parser.add_argument("--n-boot", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    def action() -> None:
        stages = collect_stages(Path(args.results_root))
        if stages.empty:
            raise AnalysisError(f"no result.json under {args.results_root}: nothing to plot")
        fits = [g for x in args.x.split(",") for g in fit_groups(
            stages, x=x, loss=args.loss, form=args.form, points=args.points, n_boot=args.n_boot,
            seed=args.seed, progress=print_progress)]
        for path in make_figures(stages, fits, Path(args.out), args.loss, args.format):
            print(path)
    return run_cli(action)


if __name__ == "__main__":
    raise SystemExit(main())
