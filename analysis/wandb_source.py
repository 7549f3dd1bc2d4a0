"""Run records from wandb instead of result.json: runs log the RunResult dict as their summary and
the resolved config as their config, so a summary is a record (wandb drops None values; they come
back as None, "NaN" strings as floats, through analysis.collect.normalize_record).
"""
from __future__ import annotations

import json
import subprocess
import sys
import warnings
from pathlib import Path
from typing import Any, Dict, List, Mapping

import pandas as pd

from analysis.collect import normalize_record, plain, runs_table, stages_table
from analysis.errors import CollectError


def record_from_summary(summary: Mapping[str, Any], config: Mapping[str, Any], source: str
                        ) -> Dict[str, Any]:
    """A wandb summary (+ config) -> a normalised run record; wandb's own `_` keys are dropped."""
    raw = {k: v for k, v in plain(summary).items() if not str(k).startswith("_")}
    if not raw.get("config"):
        raw["config"] = plain(config)
    record = normalize_record(raw)
    record["source"] = source
    return record


def _offline_run_dirs(wandb_dir: Path) -> List[Path]:
    """Folders holding a .wandb transaction log (the latest-run link is resolved and deduplicated)."""
    return sorted({path.parent.resolve() for path in wandb_dir.rglob("*.wandb")})


def _inspect_summary(run_dir: Path) -> Dict[str, Any]:
    # wandb 0.31: `wandb leet inspect --summary --json` prints the run's state, summary and config.
    proc = subprocess.run([sys.executable, "-m", "wandb", "leet", "inspect", "--summary", "--json",
                           str(run_dir)], stdin=subprocess.DEVNULL, capture_output=True, text=True,
                          timeout=120)
    if proc.returncode != 0:
        raise ValueError(proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else
                         f"exit code {proc.returncode}")
    return json.loads(proc.stdout)


def records_from_wandb_offline(wandb_dir: Path) -> List[Dict[str, Any]]:
    """Records of every offline run under wandb_dir (e.g. ./wandb); unreadable runs warn and are skipped."""
    wandb_dir = Path(wandb_dir)
    if not wandb_dir.is_dir():
        raise CollectError(f"wandb folder {wandb_dir} does not exist: pass the folder holding "
                           "offline-run-* folders (the `dir` given to wandb.init, plus /wandb)")
    records = []
    for run_dir in _offline_run_dirs(wandb_dir):
        try:
            state = _inspect_summary(run_dir)
        except (ValueError, OSError, subprocess.SubprocessError) as err:
            warnings.warn(f"skipping {run_dir}: cannot read its .wandb log ({err})", stacklevel=2)
            continue
        summary = state.get("summary") or {}
        if "run_id" not in summary:
            warnings.warn(f"skipping {run_dir}: its summary holds no run record", stacklevel=2)
            continue
        records.append(record_from_summary(summary, state.get("config") or {}, str(run_dir)))
    return records


def records_from_wandb_api(path: str) -> List[Dict[str, Any]]:
    """Records of every run of ENTITY/PROJECT through wandb's public API (needs network and login)."""
    import wandb

    try:
        runs = list(wandb.Api().runs(path))
    except Exception as err:  # wandb raises many kinds (network, auth, missing project)
        raise CollectError(f"wandb could not list runs of {path}: {str(err).splitlines()[0]} "
                           "(check `wandb login` and the ENTITY/PROJECT name)") from err
    records = []
    for run in runs:
        summary = getattr(run.summary, "_json_dict", None) or dict(run.summary)
        if "run_id" not in summary:
            warnings.warn(f"skipping wandb run {run.id}: its summary holds no run record", stacklevel=2)
            continue
        records.append(record_from_summary(summary, dict(run.config), f"wandb:{path}/{run.id}"))
    return records


def collect_wandb_offline(wandb_dir: Path) -> pd.DataFrame:
    """The run table (as analysis.collect.collect) built from offline wandb run folders."""
    return runs_table(records_from_wandb_offline(wandb_dir))


def collect_wandb_offline_stages(wandb_dir: Path) -> pd.DataFrame:
    """The stage table (as analysis.collect.collect_stages) built from offline wandb run folders."""
    return stages_table(records_from_wandb_offline(wandb_dir))


def collect_wandb(path: str) -> pd.DataFrame:
    """The run table built from the wandb project ENTITY/PROJECT."""
    return runs_table(records_from_wandb_api(path))
