"""Results folder -> tables: one row per run (`collect`) and one row per (run, stage) (`collect_stages`).

Reads only `RESULTS_ROOT/**/result.json` (records of harness/results.py's RunResult). The same
tables can be built from wandb run summaries (analysis/wandb_source.py).

CLI: python -m analysis.collect RESULTS_ROOT [--out table.parquet|.csv] [--stages-out FILE]
     python -m analysis.collect --wandb ENTITY/PROJECT [--out ...]
     python -m analysis.collect --wandb-dir ./wandb [--out ...]
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Dict, Iterable, List, Optional, Sequence

import pandas as pd

from analysis.errors import CollectError, run_cli
from analysis.metrics import with_error_rates
from harness.results import (RESULT_FILE, Damaged, RunResult, StageResult,  # stdlib only, no torch
                             load_record)

RUN_FIELDS = tuple(f.name for f in dataclasses.fields(RunResult))
STAGE_FIELDS = tuple(f.name for f in dataclasses.fields(StageResult))
# Run-level columns repeated on every stage row; stack_size and time_measure say how the run was
# executed (packed with how many; "own" or "share" wall time), None in records older than them.
STAGE_RUN_COLUMNS = ("run_id", "status", "experiment", "family", "task", "seed", "widths", "depth",
                     "optimizer", "lr", "n_train", "dtype", "test_target_std", "stack_size",
                     "time_measure")
# JSON (and wandb) lose int/float distinctions and non-finite floats ("NaN" strings in wandb):
# values are coerced back to the types the dataclasses declare.
_NON_FINITE = {"NaN": float("nan"), "Infinity": float("inf"), "-Infinity": float("-inf")}


def _declared(cls) -> Dict[str, str]:
    """Field -> "int", "float" (None becomes NaN: wandb drops NaN) or "float?" (Optional: None stays)."""
    out = {}
    for f in dataclasses.fields(cls):
        kind = str(f.type)
        if kind in ("int", "Optional[int]"):
            out[f.name] = "int"
        elif kind in ("float", "Optional[float]"):
            out[f.name] = "float?" if kind.startswith("Optional") else "float"
    return out


_RUN_TYPES = _declared(RunResult)
_STAGE_TYPES = _declared(StageResult)
# Dict-valued fields (e.g. task `metrics`) become one column per key: "metrics.<key>".
_RUN_DICTS = {f.name: "float" if "float" in str(f.type) else None for f in dataclasses.fields(RunResult)
              if str(f.type).startswith("Dict") and f.name != "config"}
_STAGE_DICTS = {f.name: "float" if "float" in str(f.type) else None
                for f in dataclasses.fields(StageResult) if str(f.type).startswith("Dict")}


def plain(value: Any) -> Any:
    """Nested mappings/sequences (e.g. wandb summary objects) -> plain dicts and lists."""
    if isinstance(value, Mapping):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    return value


def _coerce(value: Any, kind: Optional[str]) -> Any:
    if kind in ("float", "float?"):
        if value is None and kind == "float":
            return float("nan")
        if isinstance(value, str):
            return _NON_FINITE.get(value, value)
        if isinstance(value, int) and not isinstance(value, bool):
            return float(value)
    if kind == "int" and isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def _typed(part: Mapping[str, Any], names: Sequence[str], types: Dict[str, str]) -> Dict[str, Any]:
    return {name: _coerce(part.get(name), types.get(name)) for name in names}


def normalize_record(raw: Mapping[str, Any]) -> Dict[str, Any]:
    """A RunResult-shaped dict: known fields only, declared types restored, missing ones None
    (wandb drops None values and top-level NaN)."""
    raw = plain(raw)
    record = _typed(raw, RUN_FIELDS, _RUN_TYPES)
    record["stages"] = [{**stage, **_typed(stage, STAGE_FIELDS, _STAGE_TYPES)}
                        for stage in record["stages"] or []]
    record["config"] = record["config"] or {}
    if isinstance(record["config"], str):
        record["config"] = json.loads(record["config"])
    return record


class RecordList(list):
    """The records found, plus `damaged`: the files skipped as not valid records (harness.results.
    Damaged: path and reason)."""
    damaged: List[Damaged]


def load_records(results_root: Path) -> RecordList:
    """Every valid result.json under results_root (sorted by path). Damaged records (not JSON, not
    an object, missing or ill-typed fields, unknown status) warn with path and reason and are
    skipped; they are listed in the result's `.damaged`."""
    root = Path(results_root)
    if not root.is_dir():
        raise CollectError(f"results folder {root} does not exist: run an experiment first "
                           "or pass the folder that holds <run_id>/result.json")
    records = RecordList()
    records.damaged = []
    for path in sorted(root.rglob(RESULT_FILE)):
        loaded = load_record(path)
        if isinstance(loaded, Damaged) or loaded is None:
            if loaded is not None:
                warnings.warn(f"skipping {loaded}", stacklevel=2)
                records.damaged.append(loaded)
            continue
        record = normalize_record(loaded)
        record["source"] = str(path)
        records.append(record)
    return records


def n_damaged(table: pd.DataFrame) -> int:
    """How many damaged records were skipped to build `table` (0 for tables from wandb)."""
    return int(table.attrs.get("n_damaged", 0))


def widths_str(widths: Optional[Sequence[int]]) -> Optional[str]:
    return None if widths is None else "-".join(str(int(w)) for w in widths)


def _flatten(part: Mapping[str, Any], dict_fields: Dict[str, Optional[str]]) -> Dict[str, Any]:
    return {f"{name}.{key}": _coerce(value, kind) for name, kind in dict_fields.items()
            for key, value in sorted((part.get(name) or {}).items())}


def _frame(rows: List[Dict[str, Any]], columns: List[str]) -> pd.DataFrame:
    extra = sorted({key for row in rows for key in row} - set(columns))
    return pd.DataFrame(rows, columns=columns + extra)


def matched_columns(record: Mapping[str, Any]) -> Dict[str, Any]:
    """The record's `matched` field (harness/matching.py) as columns: matched_by (params, flops,
    flops_yu2024; None when not matched), matched_ratio and matched_reference_value."""
    matched = record.get("matched") or {}
    return {"matched_by": matched.get("by"), "matched_ratio": matched.get("ratio"),
            "matched_reference_value": matched.get("reference_value")}


def runs_table(records: Iterable[Dict[str, Any]]) -> pd.DataFrame:
    """One row per run: RunResult fields flat, config as JSON, widths as "2-5-1", depth, n_stages;
    dict fields (metrics) as one column per key, "metrics.<key>"; test_error_rate and
    train_error_rate (1 - accuracy, classification: analysis.metrics); matched_* (matched_columns)."""
    skip = ("stages", "config", "matched", *_RUN_DICTS)
    rows = []
    for record in records:
        row = {name: record.get(name) for name in RUN_FIELDS if name not in skip}
        row.update(matched_columns(record))
        widths = record.get("widths")
        row["widths"] = widths_str(widths)
        row["depth"] = None if widths is None else len(widths) - 1
        row["n_stages"] = len(record.get("stages") or [])
        row["config"] = json.dumps(record.get("config") or {}, sort_keys=True)
        row["source"] = record.get("source")
        rows.append({**row, **_flatten(record, _RUN_DICTS)})
    columns = [c for c in RUN_FIELDS if c not in ("stages", "matched", *_RUN_DICTS)]
    return with_error_rates(_frame(rows, columns + ["depth", "n_stages", "source", "matched_by",
                                                    "matched_ratio", "matched_reference_value"]))


def stages_table(records: Iterable[Dict[str, Any]]) -> pd.DataFrame:
    """One row per (run, stage); a run without stages contributes one row of its final values.
    Error rates and matched_by as in runs_table."""
    stage_columns = [name for name in STAGE_FIELDS if name not in _STAGE_DICTS]
    rows = []
    for record in records:
        widths = record.get("widths")
        run_cols = {name: record.get(name) for name in STAGE_RUN_COLUMNS}
        run_cols["widths"] = widths_str(widths)
        run_cols["depth"] = None if widths is None else len(widths) - 1
        run_cols["matched_by"] = matched_columns(record)["matched_by"]
        stages = record.get("stages") or [
            {**{name: record.get(name) for name in STAGE_FIELDS}, "stage": 0,
             "step": record.get("steps")}]
        for stage in stages:
            rows.append({**run_cols, **{name: stage.get(name) for name in stage_columns},
                         **_flatten(stage, _STAGE_DICTS)})
    return with_error_rates(_frame(rows, list(STAGE_RUN_COLUMNS) + ["matched_by"] + stage_columns))


def _with_damaged(table: pd.DataFrame, records: Iterable[Dict[str, Any]]) -> pd.DataFrame:
    damaged = getattr(records, "damaged", [])
    table.attrs["n_damaged"] = len(damaged)
    table.attrs["damaged"] = [f"{d.path}: {d.reason}" for d in damaged]
    return table


def collect(results_root: Path) -> pd.DataFrame:
    """One row per valid run record under results_root; `n_damaged(table)` (= table.attrs
    ["n_damaged"]) counts the damaged records skipped, table.attrs["damaged"] names them."""
    records = load_records(results_root)
    return _with_damaged(runs_table(records), records)


def collect_stages(results_root: Path) -> pd.DataFrame:
    """One row per (run, stage) found under results_root: the points of the scaling curves
    (attrs as `collect`)."""
    records = load_records(results_root)
    return _with_damaged(stages_table(records), records)


def summary_text(runs: pd.DataFrame) -> str:
    """Counts by status, family and task, as printed by the CLI."""
    if runs.empty:
        return "0 runs"
    lines = [f"{len(runs)} runs"]
    for column in ("status", "family", "task"):
        counts = runs[column].fillna("?").value_counts().sort_index()
        lines.append(f"by {column}: " + ", ".join(f"{k}={v}" for k, v in counts.items()))
    return "\n".join(lines)


def write_table(table: pd.DataFrame, out: Path) -> None:
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    if out.suffix == ".parquet":
        table.to_parquet(out, index=False)
    elif out.suffix == ".csv":
        table.to_csv(out, index=False)
    else:
        raise CollectError(f"--out {out}: use a .parquet or .csv file name")


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m analysis.collect", description=__doc__.split("\n")[0])
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("results_root", nargs="?", help="folder holding <run_id>/result.json")
    source.add_argument("--wandb", metavar="ENTITY/PROJECT", help="read run summaries from wandb")
    source.add_argument("--wandb-dir", help="read offline wandb run folders under this folder")
    parser.add_argument("--out", help="write the run table (.parquet or .csv)")
    parser.add_argument("--stages-out", help="write the stage table (.parquet or .csv)")
    args = parser.parse_args(argv)

    def action() -> None:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            if args.results_root:
                records = load_records(Path(args.results_root))
            else:
                from analysis import wandb_source

                records = (wandb_source.records_from_wandb_api(args.wandb) if args.wandb
                           else wandb_source.records_from_wandb_offline(Path(args.wandb_dir)))
        for warning in caught:
            print(f"warning: {warning.message}", file=sys.stderr)
        runs = _with_damaged(runs_table(records), records)
        print(summary_text(runs))
        if n_damaged(runs):
            print(f"{n_damaged(runs)} damaged records skipped")
        if args.out:
            write_table(runs, Path(args.out))
            print(f"wrote {args.out}")
        if args.stages_out:
            write_table(stages_table(records), Path(args.stages_out))
            print(f"wrote {args.stages_out}")
    return run_cli(action)


if __name__ == "__main__":
    raise SystemExit(main())
