"""The report: files written, numbers equal to analysis.fit's, unfittable groups listed, CLI errors."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from analysis.fit import main as fit_main
from analysis.report import build_report, main as report_main
from analysis_fixtures import record, stage, write_records, write_synthetic_results

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def results(tmp_path):
    root = tmp_path / "results"
    write_synthetic_results(root)
    # a task where only a failed run exists, and one with a single size: neither can be fitted
    write_records(root, [record("kan", [2, 3, 1], [], task="broken", status="failed", error="boom"),
                         record("mlp", [2, 8, 1], [stage(0, None, 33, 2, 0.1, 10)], task="single")])
    return root


def test_report_holds_the_fit_cli_numbers(results, tmp_path, capsys):
    out = tmp_path / "report"
    assert report_main([str(results), "--out", str(out), "--n-boot", "30",
                        "--x", "n_params,flops_forward"]) == 0
    progress = capsys.readouterr().err.splitlines()
    assert len(progress) == 2 * 4  # a line per fit: (kan, mlp) x (toy, broken/single) x 2 x-columns
    assert all(" in " in line and line.endswith(" s") for line in progress)

    md = (out / "report.md").read_text()
    page = (out / "report.html").read_text()
    for x in ("n_params", "flops_forward"):
        assert fit_main([str(results), "--x", x, "--json", "--n-boot", "30"]) == 0
        for entry in json.loads(capsys.readouterr().out):
            if entry["fitted"]:
                alpha = entry["params"]["alpha"]
                row = (f"| {entry['family']} | {entry['task']} | {x} | {alpha['estimate']:.3f} | "
                       f"[{alpha['ci_low']:.3f}, {alpha['ci_high']:.3f}] |")
                assert row in md
            else:
                assert f"not fitted: {entry['error']}" in md
    assert "not fitted: no points with finite positive x and loss to fit" in md
    assert "not fitted: only 1 point for the 2 parameters of form power" in md
    assert "| synthetic | kan | 1 | 4 | 2 | 7 |" in md  # diverged, done, failed, total
    assert "kan ahead" in md
    saved = json.loads((out / "fits.json").read_text())
    assert len(saved["fits"]) == 8 and {r["quantity"] for r in saved["exchange"]} == {
        "x_ratio_at_loss", "loss_ratio_at_x"}
    figures = sorted(p.name for p in (out / "figures").iterdir())
    assert "loss_vs_n_params_toy.png" in figures and "grid_extension_toy.png" in figures
    assert f"![loss_vs_n_params_toy](figures/loss_vs_n_params_toy.png)" in md
    assert page.count("data:image/png;base64,") == len(figures)
    assert 'src="figures/' not in page  # self-contained


def test_report_in_svg_with_floor_form(results, tmp_path):
    md_path, html_path = build_report(results, tmp_path / "r", xs=["n_params"], n_boot=10,
                                      form="floor", fmt="svg", progress=None)
    assert (tmp_path / "r" / "figures" / "loss_vs_n_params_toy.svg").exists()
    assert "data:image/svg+xml;base64," in html_path.read_text()
    assert "+ E" in md_path.read_text()


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
