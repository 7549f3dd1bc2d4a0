"""Where a results folder stands: done / failed / diverged / running / missing runs per experiment.

    python -m harness.status results                      # exit 0; a missing folder: exit 2
    python -m harness.status results --running-within 1800

Expected runs come from the manifests the sweep launchers write (RESULTS_ROOT/.sweeps/*.json, one
per launch: each point's overrides, run id and, on SLURM, its job and log); records come from
RESULTS_ROOT/<run_id>/result.json, each validated against the schema (harness.results.load_record):
one that is not a valid record is `damaged`, named with its path and reason. A run is `running`
while a live trainer holds its claim (harness.claim: "claimed by host:pid"), or, without a claim,
when its folder changed in the last --running-within seconds; else `missing`. Re-launching the
sweep redoes the missing, damaged and failed ones. Reads JSON only (no torch).
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

from harness import claim
from harness.results import RESULT_FILE, Damaged, load_record
from harness.sweep import SWEEPS_DIR

CHECKPOINT_FILE = "checkpoint.pt"  # = harness.checkpoint.CHECKPOINT_FILE (that module imports torch)
STATUS_ORDER = ("done", "failed", "diverged", "damaged", "running", "missing")


@dataclass(frozen=True)
class RunStatus:
    run_id: str
    experiment: str
    status: str  # one of STATUS_ORDER
    label: str  # the overrides that tell this point from the others of its sweep
    error: Optional[str] = None
    logs: Sequence[str] = ()  # error.log of a failed run, the SLURM job's stderr
    note: str = ""


def _load_json(path: Path) -> Optional[Dict[str, Any]]:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None  # half-written by hand or unreadable: ignored, never fatal


def expected_runs(root: Path) -> Dict[str, Dict[str, Any]]:
    """run_id -> {experiment, label, job} over all manifests, later launches winning."""
    expected: Dict[str, Dict[str, Any]] = {}
    manifests = sorted((root / SWEEPS_DIR).glob("*.json"), key=lambda p: (p.stat().st_mtime, p.name))
    for path in manifests:
        manifest = _load_json(path)
        if not manifest:
            continue
        points = manifest.get("points", [])
        # Label a point by the overrides that vary within its sweep (what the sweep swept).
        shared = set.intersection(*(set(p.get("overrides", [])) for p in points)) if points else set()
        for point in points:
            label = " ".join(o for o in point.get("overrides", []) if o not in shared)
            expected[point["run_id"]] = {"experiment": point.get("experiment", "?"),
                                         "label": label, "job": point.get("job")}
    return expected


def _last_change(run_dir: Path) -> float:
    times = [run_dir.stat().st_mtime]
    times += [p.stat().st_mtime for p in run_dir.iterdir() if p.is_file()]
    return max(times)


def collect(root: Path, running_within_s: float = 600.0,
            now: Optional[float] = None) -> Dict[str, List[RunStatus]]:
    """experiment -> its runs' statuses (expected runs and any record found), sorted by run id."""
    now = time.time() if now is None else now
    expected = expected_runs(root)
    records = {p.parent.name: p for p in root.glob(f"*/{RESULT_FILE}") if not p.parent.name.startswith(".")}
    by_experiment: Dict[str, List[RunStatus]] = {}
    for run_id in sorted(set(expected) | set(records)):
        info = expected.get(run_id, {})
        run_dir = root / run_id
        job = info.get("job") or {}
        job_log = [f"job {job['job_id']}: {job['stderr']}"] if job.get("stderr") else []
        loaded = load_record(records[run_id]) if run_id in records else None
        damaged = loaded if isinstance(loaded, Damaged) else None
        record = loaded if isinstance(loaded, dict) else None
        holder = claim.holder_of(run_dir)
        fresh = run_dir.is_dir() and now - _last_change(run_dir) <= running_within_s
        experiment = (record or {}).get("experiment") or info.get("experiment", "?")
        label = info.get("label", "")
        # A failed run being redone keeps its old record until it finishes: its claim is live (or,
        # from launchers without claims, its checkpoint is newer).
        rerunning = run_id in records and (holder is not None or (
            fresh and _newer(run_dir / CHECKPOINT_FILE, records[run_id])))
        if holder is not None and (record is None or rerunning) and damaged is None:
            status = RunStatus(run_id, experiment, "running", label,
                               note=f"claimed by {claim.describe(holder)}, last change "
                                    f"{now - _last_change(run_dir):.0f} s ago")
        elif damaged is not None:
            status = RunStatus(run_id, experiment, "damaged", label, damaged.reason,
                               note=f"{damaged.path}: the next launch moves it aside and redoes the run")
        elif record is not None and not rerunning:
            error_log = run_dir / "error.log"
            logs = ([str(error_log)] if error_log.exists() else []) + job_log
            status = RunStatus(run_id, experiment, record["status"], label,
                               record.get("error"), logs if record["status"] != "done" else ())
        elif fresh:
            status = RunStatus(run_id, experiment, "running", label,
                               note=f"last change {now - _last_change(run_dir):.0f} s ago")
        else:
            resumes = (run_dir / CHECKPOINT_FILE).exists()
            status = RunStatus(run_id, experiment, "missing", label, logs=job_log,
                               note="has a checkpoint: resumes" if resumes else "")
        by_experiment.setdefault(experiment, []).append(status)
    return by_experiment


def _newer(path: Path, than: Path) -> bool:
    return path.exists() and path.stat().st_mtime > than.stat().st_mtime


def format_status(root: Path, by_experiment: Dict[str, List[RunStatus]]) -> str:
    n_runs = sum(len(runs) for runs in by_experiment.values())
    lines = [f"{root}: {n_runs} runs in {len(by_experiment)} experiment(s)",
             f"{'experiment':<24} {'runs':>5} " + " ".join(f"{s:>8}" for s in STATUS_ORDER)]
    for experiment, runs in sorted(by_experiment.items()):
        counts = {s: sum(r.status == s for r in runs) for s in STATUS_ORDER}
        lines.append(f"{experiment:<24} {len(runs):>5} "
                     + " ".join(f"{counts[s]:>8}" for s in STATUS_ORDER))
    for experiment, runs in sorted(by_experiment.items()):
        unwell = [r for r in runs if r.status != "done"]
        if unwell:
            lines.append(f"{experiment}:")
        for run in unwell:
            lines.append(f"  {run.status:<8} {run.run_id}  {run.label}".rstrip())
            if run.error:
                lines.append(f"           {run.error}")
            if run.note:
                lines.append(f"           ({run.note})")
            if run.logs:
                lines.append(f"           log: {'; '.join(run.logs)}")
    return "\n".join(lines)


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m harness.status", description=__doc__.split("\n")[0])
    parser.add_argument("results_root", type=Path)
    parser.add_argument("--running-within", type=float, default=600.0, metavar="S",
                        help="a run without a record whose folder changed in the last S seconds is "
                             "running (default 600)")
    args = parser.parse_args(argv)
    if not args.results_root.is_dir():
        print(f"kanscale: status: no results folder {args.results_root}", file=sys.stderr)
        return 2
    print(format_status(args.results_root, collect(args.results_root, args.running_within)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
