"""The report: files written, numbers equal to analysis.fit's, unfittable groups and out-of-range
exchange rates said in words, the budget per family, readable figures, CLI errors."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import matplotlib
import pytest

from analysis.fit import main as fit_main
from analysis.report import Table, build_report, budget_table, main as report_main, render
from analysis.collect import runs_table
from analysis_fixtures import front_runs, record, stage, write_records, write_synthetic_results

matplotlib.use("Agg")
REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def results(tmp_path):
    root = tmp_path / "results"
    write_synthetic_results(root)
    # a task where only a failed run exists, and one with a single size: neither can be fitted;
    # and a task with 3 seeds per size where the KAN front is 0.3x the MLP's
    write_records(root, [record("kan", [2, 3, 1], [], task="broken", status="failed", error="boom"),
                         record("mlp", [2, 8, 1], [stage(0, None, 33, 2, 0.1, 10)], task="single")]
                  + front_runs("seeded", "synthetic", kan_scale=0.3))
    return root


def test_report_holds_the_fit_cli_numbers(results, tmp_path, capsys):
    out = tmp_path / "report"
    assert report_main([str(results), "--out", str(out), "--n-boot", "30",
                        "--x", "n_params,flops_forward"]) == 0
    progress = capsys.readouterr().err.splitlines()
    # a line per fit: (kan, mlp) x (toy, seeded) + kan broken + mlp single, x 2 x-columns
    assert len(progress) == 2 * 6
    assert all(" in " in line and line.endswith(" s") for line in progress)

    md = (out / "report.md").read_text()
    for x in ("n_params", "flops_forward"):
        assert fit_main([str(results), "--x", x, "--json", "--n-boot", "30"]) == 0
        for entry in json.loads(capsys.readouterr().out):
            if entry["fitted"]:
                alpha = entry["params"]["alpha"]
                ci = (f"[{alpha['ci_low']:.3f}, {alpha['ci_high']:.3f}]" if entry["has_interval"]
                      else "no interval")
                assert f"| {entry['family']} | {entry['task']} | {x} | {alpha['estimate']:.3f} | {ci} |" in md
            else:
                assert f"{entry['status']}: {entry['reason']}" in md
    assert "not fitted: no points with finite positive x and loss to fit" in md
    assert "too few points: one run per size: nothing to resample (add seeds)" in md
    assert "| synthetic | kan | 1 | 19 | 2 | 22 |" in md  # diverged, done, failed, total
    # exchange rates: a number only inside both measured ranges
    assert "| outside the measured range | - | - | outside the measured range |" in md
    assert "| task=seeded | loss mlp/kan at n_params=640 |" in md and "kan ahead" in md
    saved = json.loads((out / "fits.json").read_text())
    assert len(saved["fits"]) == 12 and {r["status"] for r in saved["exchange"]} == {
        "measured", "outside the measured range"}
    figures = sorted(p.name for p in (out / "figures").iterdir())
    # facet grids: one figure per x (a panel per task), not one per task
    assert {"loss_vs_n_params.png", "loss_vs_flops_forward.png", "grid_extension.png"} <= set(figures)
    assert not any("_toy" in name for name in figures)
    assert md.index("## Summary") < md.index("## Setup") and "## Budget per family" in md
    page = (out / "report.html").read_text()
    assert page.count("data:image/png;base64,") == len(figures)
    assert 'src="figures/' not in page  # self-contained
    assert "**" not in page and "`" not in page and "| ---" not in page  # Markdown rendered


def test_report_in_svg_with_floor_form(results, tmp_path):
    md_path, html_path = build_report(results, tmp_path / "r", xs=["n_params"], n_boot=10,
                                      form="floor", fmt="svg", progress=None)
    assert (tmp_path / "r" / "figures" / "loss_vs_n_params.svg").exists()
    assert "data:image/svg+xml;base64," in html_path.read_text()
    assert "+ E" in md_path.read_text()


def test_budget_per_family_and_unequal_budgets():
    runs = [record("kan", [2, 5, 1], [stage(0, 3, 45, 20, 0.1, 200)], seed=s, experiment="e")
            for s in (0, 1, 2)]
    runs += [record("mlp", [2, 8, 1], [stage(0, None, 33, 2, 0.1, 100)], seed=0, experiment="e")]
    table, unequal = budget_table(runs_table([r.to_dict() for r in runs]))
    assert table.rows == [["e", "kan", "3", "3 (0, 1, 2)", "lbfgs", "200", "45"],
                          ["e", "mlp", "1", "1 (0)", "lbfgs", "100", "33"]]
    assert unequal == ["Unequal budgets in e: kan 3 seeds, 200 steps; mlp 1 seed, 100 steps. "
                       "The best-of-seeds front favours the family with more tries."]


def test_budget_names_the_tasks_with_other_seed_counts():
    runs = [record("kan", [2, 5, 1], [stage(0, 3, 45, 20, 0.1, 200)], seed=s, experiment="e",
                   task=task) for task, seeds in (("toy_a", range(8)), ("toy_b", range(3)),
                                                  ("toy_c", range(8))) for s in seeds]
    table, _ = budget_table(runs_table([r.to_dict() for r in runs]))
    assert table.rows[0][3] == "8 (0, 1, 2, 3, 4, 5, ...) per task; 3 on toy_b"


def test_markdown_is_rendered_not_shown(tmp_path):
    table = Table(["verdict", "why"], [["**reproduced**", "a | b"]])
    md_path, html_path = render([("Claims", ["Run `python -m x`.", table])], tmp_path, "t")
    page = html_path.read_text()
    assert '<strong class="v-reproduced">reproduced</strong>' in page
    assert "<code>python -m x</code>" in page and "<td>a | b</td>" in page
    assert "| a \\| b |" in md_path.read_text()


def test_tick_labels_do_not_overlap(results):
    from analysis.collect import collect_stages
    from analysis.fit_table import compute_fits
    from analysis.plots import plot_fit_grid, plot_grid_extension

    stages = collect_stages(results)
    fits = compute_fits(stages, xs=("n_params",), n_boot=10)
    panels = [(task, stages[stages["task"] == task], fits.select("n_params", task=task))
              for task in ("toy", "seeded")]
    grids = plot_grid_extension(stages[stages["task"] == "toy"], "test_rmse")  # grids 3..50
    for fig in (plot_fit_grid(panels, "n_params", "test_rmse", "t"), grids):
        fig.canvas.draw()
        renderer = fig.canvas.get_renderer()
        for ax in fig.axes:
            assert ax.get_xlabel() in ("parameters", "grid intervals G")
            assert ax.get_ylabel() == "test RMSE"
            for axis in (ax.xaxis, ax.yaxis):
                boxes = [t.get_window_extent(renderer) for t in axis.get_ticklabels()
                         if t.get_visible() and t.get_text()]
                assert len(boxes) >= 2  # something to read on every axis
                assert not any(a.overlaps(b) for i, a in enumerate(boxes) for b in boxes[i + 1:])


def test_report_cli_missing_folder_exits_2_with_one_line(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "analysis.report", str(tmp_path / "nope"),
                           "--out", str(tmp_path / "r")], cwd=REPO, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 2
    assert proc.stderr.startswith("error: results folder") and proc.stderr.count("\n") == 1
    assert not (tmp_path / "r").exists()


def test_fit_cli_missing_folder_exits_2_with_one_line(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "analysis.fit", str(tmp_path / "nope"), "--json"],
                          cwd=REPO, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr.startswith("error: results folder") and proc.stderr.count("\n") == 1


def test_fit_cli_on_a_task_metric(results, capsys):
    assert fit_main([str(results), "--loss", "metrics.max_error", "--json", "--n-boot", "0"]) == 0
    table = json.loads(capsys.readouterr().out)
    kan = next(e for e in table if (e["family"], e["task"]) == ("kan", "toy"))
    assert kan["loss"] == "metrics.max_error" and kan["fitted"]
    assert kan["params"]["alpha"]["estimate"] == pytest.approx(2.0, abs=0.1)
