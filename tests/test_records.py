"""Issue 12's probes: damaged records, exit codes, wandb errors and strict JSON (one test a row)."""
from __future__ import annotations

import json
import math
import shutil
import subprocess
import time
from pathlib import Path

import pandas as pd
import pytest

from harness import status
from harness.results import Damaged, load_record, run_id_of
from harness.train import resolved_dict, run
from tests.helpers import TINY, compose_config, run_cli, valid_record

QUIET = {"log": lambda *_: None}
MLP = ["model=mlp", "model.widths=[2,2,1]"]


def _strict(text: str):
    def refuse(token):
        raise ValueError(f"non-JSON token {token}")
    return json.loads(text, parse_constant=refuse)


def _run_dir(cfg) -> Path:
    return Path(cfg.results_root) / run_id_of(resolved_dict(cfg))


def _damage(path: Path, how: str) -> None:
    raw = json.loads(path.read_text())
    if how == "truncated":
        path.write_text(path.read_text()[:200])
    elif how == "array":
        path.write_text(json.dumps([raw]))
    else:  # drop a field
        raw.pop(how)
        path.write_text(json.dumps(raw))


@pytest.mark.parametrize("how, reason", [
    ("truncated", "not JSON"), ("family", "missing field(s) family"),
    ("array", "top level is a JSON list, not an object"), ("status", "missing field(s) status")])
def test_damaged_record_is_named_counted_and_redone_by_a_single_run(tmp_path, how, reason):
    """Rows 1-4 for status and a single run: `damaged` with path and reason (never "missing",
    "?" or a crash); run() on that id moves the file aside and redoes the run."""
    cfg = compose_config(MLP, tmp_path)
    first = run(cfg, **QUIET)
    path = _run_dir(cfg) / "result.json"
    _damage(path, how)
    verdict = load_record(path)
    assert isinstance(verdict, Damaged) and verdict.path == path and verdict.reason.startswith(reason)

    runs = status.collect(tmp_path)["?"]
    assert [(r.status, r.error) for r in runs] == [("damaged", verdict.reason)]
    assert str(path) in runs[0].note
    table = status.format_status(tmp_path, {"?": runs})
    assert table.splitlines()[2].split() == ["?", "1", "0", "0", "0", "1", "0", "0"]

    messages = []
    again = run(cfg, log=messages.append)
    assert again.status == "done" and again.test_rmse == first.test_rmse
    assert any(f"damaged record {path}: {reason}" in m and "moved aside" in m for m in messages)
    kept = list(path.parent.glob("result.damaged-*.json"))
    assert len(kept) == 1  # kept, never deleted
    assert load_record(path)["family"] == "mlp"


def test_a_sweep_relaunch_names_a_truncated_record_and_redoes_it(tmp_path):
    args = ["-m", *TINY, *MLP, f"results_root={tmp_path}", "seed=0,1"]
    assert run_cli(args).returncode == 0
    victim = sorted(tmp_path.glob("*/result.json"))[0]
    _damage(victim, "truncated")
    again = run_cli(args)
    assert again.returncode == 0, again.stderr
    named = [line for line in again.stderr.splitlines() if "damaged record" in line]
    assert len(named) == 1 and str(victim) in named[0] and "not JSON" in named[0]
    assert "1 already finished, 0 claimed by other launchers, 1 to run" in again.stderr
    assert load_record(victim)["status"] == "done"
    assert len(list(victim.parent.glob("result.damaged-*.json"))) == 1


def test_a_record_without_family_is_not_a_finished_sweep_point(tmp_path):
    from harness.sweep import SweepPoint
    cfg = compose_config(MLP, tmp_path)
    run(cfg, **QUIET)
    _damage(_run_dir(cfg) / "result.json", "family")
    point = SweepPoint(0, [], cfg)
    assert not point.finished()  # a relaunch redoes it (it used to count as done, n_params 0)


def test_a_failed_single_run_exits_1_naming_its_record(tmp_path):
    result = run_cli([*TINY, *MLP, f"results_root={tmp_path}"],
                     env={"KANSCALE_FAULT": "fail:step=1"})
    assert result.returncode == 1
    last = result.stderr.strip().splitlines()[-1]
    run_dir = next(tmp_path.glob("*/result.json")).parent
    assert last == (f"kanscale: run {run_dir.name} failed: RuntimeError: injected failure at step 1 "
                    f"(KANSCALE_FAULT) (record and error.log in {run_dir})")
    assert (run_dir / "error.log").exists()


def test_a_sweep_with_a_failed_point_runs_every_point_then_exits_4(tmp_path):
    result = run_cli(["-m", *TINY, *MLP, f"results_root={tmp_path}", "seed=0,1,2"],
                     env={"KANSCALE_FAULT": "fail:step=1@seed=1"})
    assert result.returncode == 4, result.stderr
    assert "sweep of 3: 2 done, 1 failed" in result.stdout
    statuses = sorted(load_record(p)["status"] for p in tmp_path.glob("*/result.json"))
    assert statuses == ["done", "done", "failed"]


def test_sweep_exit_code_rules():
    from harness.sweep import sweep_exit_code
    assert sweep_exit_code([{"done": 2, "diverged": 1}]) == 0
    assert sweep_exit_code([{"done": 2}, {"failed": 1}]) == 4
    assert sweep_exit_code([{"done": 1, "claimed": 2}]) == 5
    assert sweep_exit_code([{"claimed": 1, "damaged": 1}]) == 4


def test_wandb_online_without_credentials_is_one_line_exit_2(tmp_path):
    env = {"HOME": str(tmp_path / "home"), "WANDB_API_KEY": "", "NETRC": str(tmp_path / "none"),
           "WANDB_MODE": "disabled"}
    result = run_cli([*TINY, *MLP, f"results_root={tmp_path / 'r'}", "wandb.mode=online"], env=env)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "kanscale: config error: wandb.mode=online but no wandb credentials: run `wandb login`, "
        "set WANDB_API_KEY, or use wandb.mode=offline"]
    assert not (tmp_path / "r").exists()  # nothing ran: validation comes before Hydra's folders


def test_wandb_credentials_are_found_without_the_network(tmp_path, monkeypatch):
    from harness.config import wandb_credentials
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    monkeypatch.delenv("WANDB_BASE_URL", raising=False)
    monkeypatch.setenv("NETRC", str(tmp_path / "netrc"))
    assert not wandb_credentials()
    (tmp_path / "netrc").write_text("machine api.wandb.ai\n  login user\n  password abc123\n")
    (tmp_path / "netrc").chmod(0o600)
    assert wandb_credentials()
    monkeypatch.setenv("NETRC", str(tmp_path / "none"))
    monkeypatch.setenv("WANDB_API_KEY", "abc")
    assert wandb_credentials()


def test_a_wandb_initialisation_error_is_a_failed_record_with_its_log(tmp_path, monkeypatch):
    import harness.member

    class Broken:
        def __init__(self, *args, **kwargs):
            raise ConnectionError("wandb: network is unreachable")

    monkeypatch.setattr(harness.member, "Tracker", Broken)
    monkeypatch.chdir(tmp_path)
    cfg = compose_config(MLP, tmp_path / "r")
    result = run(cfg, **QUIET)
    assert result.status == "failed" and result.error == "ConnectionError: wandb: network is unreachable"
    run_dir = _run_dir(cfg)
    assert load_record(run_dir)["status"] == "failed"
    assert "ConnectionError" in (run_dir / "error.log").read_text()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r"]  # nothing in the working directory


def test_diverged_records_are_strict_json(tmp_path):
    cfg = compose_config(["optim=adam", "optim.lr=1e30", *MLP, "train.steps_per_stage=20"], tmp_path)
    result = run(cfg, **QUIET)
    assert result.status == "diverged" and math.isnan(result.test_rmse)
    path = _run_dir(cfg) / "result.json"
    text = path.read_text()
    raw = _strict(text)  # JavaScript's JSON.parse semantics: no NaN / Infinity tokens
    assert raw["test_rmse"] is None and raw["status"] == "diverged" and "loss" in raw["error"]
    if shutil.which("jq"):
        jq = subprocess.run(["jq", "-r", ".status, .test_rmse", str(path)], capture_output=True,
                            text=True, timeout=60)
        assert jq.returncode == 0 and jq.stdout.split() == ["diverged", "null"], jq.stderr
    frame = pd.read_json(path, typ="series")
    assert frame["status"] == "diverged" and frame["test_rmse"] is None
    assert math.isnan(load_record(path)["test_rmse"])  # the schema says float: NaN again
    assert math.isnan(run(cfg, **QUIET).test_rmse)  # a relaunch returns it from disk


def test_records_written_before_strict_json_still_read(tmp_path):
    path = tmp_path / "r" / "result.json"
    path.parent.mkdir()
    path.write_text(json.dumps(valid_record(status="diverged", test_rmse=float("nan"))))
    assert "NaN" in path.read_text()
    assert math.isnan(load_record(path)["test_rmse"])


def test_an_ill_typed_or_unknown_status_record_is_damaged(tmp_path):
    path = tmp_path / "r" / "result.json"
    path.parent.mkdir()
    path.write_text(json.dumps(valid_record(status="finished")))
    assert load_record(path).reason == "status 'finished' is not one of done, failed, diverged"
    path.write_text(json.dumps(valid_record(n_params="9")))
    assert load_record(path).reason == "field n_params='9' is not int"
    path.write_text(json.dumps(valid_record()))
    assert load_record(path)["n_params"] == 9
