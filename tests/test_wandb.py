"""wandb really receives what the record says: read back from the offline run files."""
from __future__ import annotations

import json
import subprocess

import pytest

from tests.helpers import TINY, run_cli


def inspect(run_dir, *flags):
    wandb_dir = next((run_dir / "wandb").glob("offline-run-*"))
    out = subprocess.run(["wandb", "leet", "inspect", *flags, "--json", str(wandb_dir)],
                         stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    return out.stdout


@pytest.mark.slow
def test_offline_run_logs_config_history_and_record(tmp_path):
    result = run_cli([*TINY, f"results_root={tmp_path}", "wandb.mode=offline", "experiment_name=wb",
                      "train.steps_per_stage=4", "train.log_every=2"], env={"WANDB_MODE": "offline"})
    assert result.returncode == 0, result.stderr
    run_dir = next(p.parent for p in tmp_path.glob("*/result.json"))
    record = json.loads((run_dir / "result.json").read_text())

    summary = json.loads(inspect(run_dir, "--summary"))
    assert summary["state"] == "finished" and summary["name"] == record["run_id"]
    assert summary["config"]["model"]["widths"] == record["widths"] == [2, 5, 1]
    for key in ("test_rmse", "test_mse", "train_flops", "n_evals", "n_params", "status"):
        assert summary["summary"][key] == record[key], key
    assert summary["summary"]["stages"][0]["test_rmse"] == record["stages"][0]["test_rmse"]

    history = [json.loads(line)["history"]["item"] for line in inspect(run_dir).splitlines()
               if '"type":"history"' in line]
    assert [row["_step"] for row in history] == [2, 4]
    # the last logged test loss is the final test MSE of the record
    assert history[-1]["test_loss"] == pytest.approx(record["test_mse"], rel=1e-12)
    assert history[-1]["train_flops"] == record["train_flops"]
