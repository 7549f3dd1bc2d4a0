"""Results folder (and wandb summaries) -> run and stage tables."""
from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from analysis.collect import collect, collect_stages, load_records, main as collect_main, n_damaged
from analysis.errors import CollectError
from analysis_fixtures import (KAN_GRIDS, KAN_HIDDEN, MLP_HIDDEN, MLP_STAGE_FACTORS, record, stage,
                               synthetic_records, write_records, write_synthetic_results)

REPO = Path(__file__).resolve().parents[1]


def test_collect_one_row_per_run_with_flat_columns(tmp_path):
    runs = write_synthetic_results(tmp_path)
    table = collect(tmp_path)
    assert len(table) == len(KAN_HIDDEN) + len(MLP_HIDDEN) + 2
    assert table["status"].value_counts().to_dict() == {"done": 11, "failed": 1, "diverged": 1}
    row = table.set_index("run_id").loc[runs[0].run_id]
    assert row["widths"] == "2-2-1" and row["depth"] == 2 and row["family"] == "kan"
    assert json.loads(row["config"]) == runs[0].config
    assert row["test_rmse"] == runs[0].test_rmse and row["n_stages"] == len(KAN_GRIDS)
    assert "stages" not in table.columns and "metrics" not in table.columns
    assert row["metrics.max_error"] == runs[0].metrics["max_error"]


def test_collect_stages_one_row_per_stage_joined_with_run_columns(tmp_path):
    runs = write_synthetic_results(tmp_path)
    stages = collect_stages(tmp_path)
    # every stage of every run, plus one row for the failed run that recorded no stage
    assert len(stages) == len(KAN_HIDDEN) * len(KAN_GRIDS) + len(MLP_HIDDEN) * len(MLP_STAGE_FACTORS) + 2
    kan = stages[stages["run_id"] == runs[0].run_id].sort_values("stage")
    assert kan["grid"].tolist() == list(KAN_GRIDS)
    assert kan["test_rmse"].tolist() == [s["test_rmse"] for s in runs[0].stages]
    assert set(kan["widths"]) == {"2-2-1"} and set(kan["n_train"]) == {runs[0].n_train}
    assert kan["metrics.max_error"].tolist() == [s["metrics"]["max_error"] for s in runs[0].stages]
    failed = stages[stages["status"] == "failed"]
    assert len(failed) == 1 and np.isnan(failed["test_rmse"].iloc[0])


def test_invalid_json_is_warned_about_and_skipped(tmp_path):
    write_records(tmp_path, synthetic_records()[:2])
    bad = tmp_path / "broken" / "result.json"
    bad.parent.mkdir()
    bad.write_text("{not json")
    with pytest.warns(UserWarning, match="skipping damaged record .*broken/result.json: not JSON"):
        table = collect(tmp_path)
    assert len(table) == 2 and table.attrs["n_damaged"] == 1


@pytest.mark.parametrize("text, reason", [
    ('{"run_id": "x", "status": "do', "not JSON"),
    ("[1, 2]", "top level is a JSON list, not an object"),
    ("drop:family", "missing field(s) family"),
    ("drop:status", "missing field(s) status"),
])
def test_damaged_records_are_skipped_named_and_counted(tmp_path, text, reason):
    """Truncated JSON, an array, a record without family or status: skipped with path and reason,
    counted in attrs (the report's header: "N damaged records skipped"), never a crash."""
    write_records(tmp_path, synthetic_records()[:3])
    bad = tmp_path / "bad" / "result.json"
    bad.parent.mkdir()
    if text.startswith("drop:"):
        raw = json.loads(next(tmp_path.glob("[0-9a-f]*/result.json")).read_text())
        raw.pop(text[len("drop:"):])
        text = json.dumps(raw)
    bad.write_text(text)
    with pytest.warns(UserWarning, match=re.escape(f"skipping damaged record {bad}: {reason}")):
        runs = collect(tmp_path)
    with pytest.warns(UserWarning):
        stages = collect_stages(tmp_path)
    assert len(runs) == 3 and n_damaged(runs) == 1 and n_damaged(stages) == 1
    assert runs.attrs["damaged"][0].startswith(f"{bad}: {reason}")
    assert runs["family"].notna().all()
    assert len(load_records(tmp_path).damaged) == 1


def test_null_floats_of_strict_json_read_back_as_nan(tmp_path):
    write_records(tmp_path, synthetic_records()[:2])
    path = next(tmp_path.glob("*/result.json"))
    raw = json.loads(path.read_text())
    raw.update(test_rmse=None, status="diverged")
    path.write_text(json.dumps(raw))
    table = collect(tmp_path)
    assert np.isnan(table.set_index("run_id").loc[raw["run_id"], "test_rmse"])
    assert n_damaged(table) == 0


def test_missing_folder_is_a_one_line_error(tmp_path, capsys):
    with pytest.raises(CollectError, match="does not exist"):
        load_records(tmp_path / "nope")
    assert collect_main([str(tmp_path / "nope")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: results folder") and err.count("\n") == 1


def test_cli_missing_folder_exits_2_without_traceback(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "analysis.collect", str(tmp_path / "nope")],
                          cwd=REPO, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr and proc.stderr.count("\n") == 1


def test_cli_prints_counts_and_writes_tables(tmp_path, capsys):
    write_synthetic_results(tmp_path / "results")
    out, stages_out = tmp_path / "runs.parquet", tmp_path / "stages.csv"
    assert collect_main([str(tmp_path / "results"), "--out", str(out),
                         "--stages-out", str(stages_out)]) == 0
    printed = capsys.readouterr().out
    assert "13 runs" in printed and "by status: diverged=1, done=11, failed=1" in printed
    assert "by family: kan=6, mlp=7" in printed
    pd.testing.assert_frame_equal(pd.read_parquet(out), collect(tmp_path / "results"))
    assert len(pd.read_csv(stages_out)) == len(collect_stages(tmp_path / "results"))


def test_analysis_does_not_import_torch():
    code = ("import sys, analysis.collect, analysis.fit, analysis.fit_table, analysis.exchange, "
            "analysis.plots, analysis.report, analysis.wandb_source; "
            "sys.exit(int('torch' in sys.modules))")
    assert subprocess.run([sys.executable, "-c", code], cwd=REPO, timeout=120).returncode == 0


def _wandb_test_records():
    runs = synthetic_records()[:1] + synthetic_records()[-1:]  # a KAN and an MLP run
    bad = stage(0, 3, 60, 20, float("nan"), 10)
    return runs + [record("kan", [2, 21, 1], [bad], status="diverged", error="loss is nan")]


def _sorted(table):
    return table.drop(columns="source").sort_values("run_id").reset_index(drop=True)


def test_offline_wandb_runs_give_the_same_tables(tmp_path, monkeypatch):
    import wandb

    from analysis.wandb_source import collect_wandb_offline, collect_wandb_offline_stages

    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    runs = _wandb_test_records()
    for run in runs:
        # as the harness does: the RunResult dict as summary, the resolved config as config
        handle = wandb.init(dir=tmp_path, mode="offline", project="kanscale-test", config=run.config)
        handle.summary.update(run.to_dict())
        handle.finish()
    write_records(tmp_path / "results", runs)
    pd.testing.assert_frame_equal(_sorted(collect_wandb_offline(tmp_path / "wandb")),
                                  _sorted(collect(tmp_path / "results")))
    by_file = collect_stages(tmp_path / "results").sort_values(["run_id", "stage"])
    by_wandb = collect_wandb_offline_stages(tmp_path / "wandb").sort_values(["run_id", "stage"])
    pd.testing.assert_frame_equal(by_wandb.reset_index(drop=True), by_file.reset_index(drop=True))


class _Summary(dict):
    """Stands in for wandb's run summary: a mapping whose nested values are mapping objects."""

    @property
    def _json_dict(self):
        return json.loads(json.dumps(self, default=dict))


class _Run:
    def __init__(self, run_id, result):
        self.id = run_id
        record = {k: v for k, v in result.to_dict().items() if v is not None}  # wandb drops None
        self.summary = _Summary(record, _wandb={"runtime": 3})
        self.config = result.config


def test_wandb_api_summaries_give_the_same_table(tmp_path, monkeypatch):
    import wandb

    from analysis.wandb_source import collect_wandb

    runs = _wandb_test_records()
    asked = []

    class FakeApi:
        def runs(self, path):
            asked.append(path)
            return [_Run(f"w{i}", run) for i, run in enumerate(runs)]

    monkeypatch.setattr(wandb, "Api", FakeApi)
    write_records(tmp_path, runs)
    pd.testing.assert_frame_equal(_sorted(collect_wandb("me/kanscale")), _sorted(collect(tmp_path)))
    assert asked == ["me/kanscale"]
