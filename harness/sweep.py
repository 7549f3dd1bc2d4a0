"""What every kanscale launcher does around a sweep: check all points first, report at the end.

A sweep is a list of Hydra override lists. Before anything runs (or is submitted), every point's
config is composed and validated, so a bad value stops the sweep with one line naming the point.
"""
from __future__ import annotations

import math
import sys
from dataclasses import dataclass
from datetime import datetime
from functools import cached_property
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Sequence

from hydra.core.utils import JobReturn, JobStatus, filter_overrides
from omegaconf import DictConfig, OmegaConf, open_dict

from harness.config import ConfigError, resolve, validate
from harness import claim
from harness.results import Damaged, load_record, run_id_of, write_json_atomic


@dataclass
class SweepPoint:
    index: int
    overrides: List[str]
    config: DictConfig  # with its hydra node, as run_job wants it

    @property
    def label(self) -> str:
        return " ".join(filter_overrides(self.overrides)) or "(no overrides)"

    def job_config(self) -> DictConfig:
        """The run's resolved config, resolved once per point (read-only: it is shared)."""
        return self._resolved

    @cached_property
    def _resolved(self) -> DictConfig:
        from harness.run import job_config
        resolved = resolve(job_config(self.config))
        OmegaConf.set_readonly(resolved, True)
        return resolved

    @cached_property
    def run_id(self) -> str:
        return run_id_of(OmegaConf.to_container(self.job_config(), resolve=True))

    def finished(self) -> bool:
        """Its record is valid and done or diverged (a damaged one is redone: see run())."""
        from harness.train import FINISHED
        record = load_record(self.run_dir)
        return isinstance(record, dict) and record["status"] in FINISHED

    def claimed_by(self) -> Optional[str]:
        """"host:pid" of the live trainer holding this point's folder, else None."""
        holder = claim.holder_of(self.run_dir)
        return None if holder is None else claim.describe(holder)

    @property
    def run_dir(self):
        from harness.train import run_dir_of
        return run_dir_of(self.job_config())


def points_to_run(points: Sequence[SweepPoint], stream=sys.stderr) -> List[SweepPoint]:
    """The points a launcher runs: not finished and not claimed by another live trainer. Names
    every damaged record (it is moved aside and redone) and every claimed point (skipped)."""
    todo, n_finished, n_claimed = [], 0, 0
    for point in points:
        record = load_record(point.run_dir)
        if isinstance(record, Damaged):
            print(f"[kanscale] #{point.index} {record}; it is moved aside and the run redone",
                  file=stream)
        elif record is not None and point.finished():
            n_finished += 1
            claim.clear_stale(point.run_dir)  # left by a trainer killed after writing its record
            continue
        holder = point.claimed_by()
        if holder is not None:
            n_claimed += 1
            print(f"[kanscale] #{point.index} {point.run_id} claimed by {holder}: skipped "
                  f"(another launcher is training it)", file=stream)
            continue
        todo.append(point)
    print(f"[kanscale] sweep of {len(points)} runs: {n_finished} already finished, "
          f"{n_claimed} claimed by other launchers, {len(todo)} to run", file=stream)
    return todo


def compose_points(hydra_context, config: DictConfig, job_overrides: Sequence[Sequence[str]],
                   initial_job_idx: int) -> List[SweepPoint]:
    points = []
    for offset, overrides in enumerate(job_overrides):
        index = initial_job_idx + offset
        try:
            sweep_config = hydra_context.config_loader.load_sweep_config(config, list(overrides))
        except Exception as exc:  # a typo or wrong type in an override
            raise ConfigError(f"sweep point #{index} ({' '.join(overrides)}): "
                              f"{str(exc).splitlines()[0]}") from None
        with open_dict(sweep_config):
            sweep_config.hydra.job.id = index
            sweep_config.hydra.job.num = index
        points.append(SweepPoint(index, list(overrides), sweep_config))
    return points


def check_points(points: Sequence[SweepPoint]) -> None:
    """Validate every point; raise ConfigError naming the first bad point."""
    for point in points:
        try:
            validate(point.job_config())
        except ConfigError as exc:
            raise ConfigError(f"sweep point #{point.index} ({point.label}): {exc}") from None


# RESULTS_ROOT/.sweeps/<experiment>-<stamp>.json: the runs a sweep expects, so `python -m
# harness.status` can say which are missing (a run that never started leaves nothing else behind).
SWEEPS_DIR = ".sweeps"


def sweep_stamp() -> str:
    """A name for one launch of a sweep (local time, to the microsecond: relaunches do not clash)."""
    return datetime.now().strftime("%Y-%m-%d_%H-%M-%S-%f")


def write_manifests(points: Sequence[SweepPoint], launcher: str, stamp: str,
                    jobs: Optional[Mapping[int, Dict[str, str]]] = None) -> List[Path]:
    """Write each results root's manifest of this sweep's points (overrides, run id, experiment).

    Atomic; writing again with the same stamp (e.g. once the job ids are known) replaces the file.
    `jobs`: point index -> {"job_id", "stdout", "stderr"} of the cluster job that runs it.
    """
    by_root: Dict[str, List[Dict[str, Any]]] = {}
    for point in points:
        cfg = point.job_config()
        entry = {"index": point.index, "overrides": list(point.overrides), "run_id": point.run_id,
                 "experiment": cfg.experiment_name}
        if jobs and point.index in jobs:
            entry["job"] = dict(jobs[point.index])
        by_root.setdefault(str(cfg.results_root), []).append(entry)
    paths = []
    for root, entries in by_root.items():
        experiment = entries[0]["experiment"]
        path = Path(root) / SWEEPS_DIR / f"{experiment}-{stamp}.json"
        write_json_atomic(path, {"experiment": experiment, "launcher": launcher, "stamp": stamp,
                                 "points": entries})
        paths.append(path)
    return paths


def summarize(points: Sequence[SweepPoint], returns: Sequence[Optional[JobReturn]],
              stream=sys.stdout, jobs: Optional[Mapping[int, Dict[str, str]]] = None) -> Dict[str, int]:
    """Print one line per run that did not finish well and the counts by status.

    `jobs` (cluster launchers): point index -> {"job_id", "state", "stdout", "stderr"} of the job
    that ran it, so a run without a record is reported with its job's state and log.
    """
    counts: Dict[str, int] = {}
    lines = []
    for point, ret in zip(points, returns):
        info = _outcome(point, ret, (jobs or {}).get(point.index))
        counts[info["status"]] = counts.get(info["status"], 0) + 1
        if info["status"] != "done":
            lines.append(f"  #{point.index} {info['status']:<9} {point.label}\n"
                         f"      {info.get('error') or ''} -> {info['where']}")
    print_table(points, stream)
    print(f"[kanscale] sweep of {len(points)}: "
          + ", ".join(f"{n} {status}" for status, n in sorted(counts.items())), file=stream)
    for line in lines:
        print(line, file=stream)
    _OUTCOMES.append(counts)
    return counts


# Exit codes of a sweep (`python -m harness.run -m ...`); see README "Exit codes".
EXIT_SOME_FAILED = 4  # some point ended failed, damaged, missing, lost or cancelled
EXIT_SOME_CLAIMED = 5  # none failed, but some are still being trained by another launcher
_OUTCOMES: List[Dict[str, int]] = []  # counts of every summarize() in this process


def sweep_exit_code(outcomes: Optional[Sequence[Mapping[str, int]]] = None) -> int:
    """0 when every point of the sweep(s) summarized ended done or diverged; else 4 or 5."""
    statuses = {status for counts in (_OUTCOMES if outcomes is None else outcomes)
                for status, n in counts.items() if n}
    unwell = statuses - {"done", "diverged"}
    if not unwell:
        return 0
    return EXIT_SOME_CLAIMED if unwell == {"claimed"} else EXIT_SOME_FAILED


def print_table(points: Sequence[SweepPoint], stream=sys.stdout) -> None:
    """One line per point from its record: what ran, its size, its loss and time."""
    header = (f"{'run_id':<12} {'status':<8} {'family':<6} {'widths':<14} {'grid':>5} "
              f"{'n_params':>9} {'flops_fwd':>10} {'test_rmse':>10} {'time_s':>7}")
    print(header, file=stream)
    for point in points:
        loaded = load_record(point.run_dir)
        record = loaded if isinstance(loaded, dict) else {
            "status": "damaged" if isinstance(loaded, Damaged) else "missing"}
        widths = "-".join(str(w) for w in record.get("widths", [])) or "?"
        print(f"{record.get('run_id', point.run_id):<12} {record.get('status', 'missing'):<8} "
              f"{record.get('family', '?'):<6} {widths:<14} {str(record.get('grid') or '-'):>5} "
              f"{record.get('n_params', 0):>9} {record.get('flops_forward', 0):>10} "
              f"{format_metric(record.get('test_rmse')):>10} {record.get('wall_time_s', 0.0):>7.1f}",
              file=stream)


def _outcome(point: SweepPoint, ret: Optional[JobReturn],
             job: Optional[Dict[str, str]] = None) -> Dict[str, Any]:
    record = load_record(point.run_dir)
    log = f" | job {job['job_id']} log {job['stderr']}" if job else ""
    if isinstance(record, Damaged):
        return {"status": "damaged", "error": record.reason, "where": str(record.path)}
    if record is not None:
        return {"status": record["status"], "error": record.get("error"),
                "where": str(point.run_dir) + (log if record["status"] != "done" else "")}
    holder = point.claimed_by()
    if holder is not None:
        return {"status": "claimed", "error": f"claimed by {holder} (another launcher trains it)",
                "where": str(point.run_dir)}
    if job is not None and job.get("state"):
        # The job ended without writing this run's record: cancelled, killed, out of time/memory.
        state = job["state"].split()[0]  # "CANCELLED by 0" -> CANCELLED
        return {"status": "cancelled" if state == "CANCELLED" else "lost",
                "error": f"job {job['job_id']} {job['state']}, no result record",
                "where": f"{job['stderr']} (stdout {job['stdout']})"}
    if ret is not None and ret.status == JobStatus.FAILED:
        return {"status": "failed", "error": repr(job_error(ret)),
                "where": str(getattr(ret, "working_dir", "") or point.run_dir)}
    return {"status": "missing", "error": "no result record", "where": str(point.run_dir)}


def job_error(ret: JobReturn) -> Optional[BaseException]:
    """What a FAILED Hydra job raised, through JobReturn's public `return_value`, which re-raises
    it (hydra.core.utils.JobReturn); None for a job that did not fail."""
    try:
        ret.return_value
    except Exception as exc:  # noqa: BLE001 - the job's own exception, whatever it is
        return exc
    return None


def format_metric(value: Any) -> str:
    return "nan" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.3e}"
