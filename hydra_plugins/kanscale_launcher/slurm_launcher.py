"""`hydra/launcher=kanscale_slurm`: a sweep as one SLURM job array, `runs_per_task` runs per task.

(No `from __future__ import annotations` here: Hydra imports plugins outside sys.modules and
dataclasses then fail to resolve string annotations.)

Before anything is submitted every point is composed and validated (a bad value: one line, exit
2) and a manifest of the points is written (RESULTS_ROOT/.sweeps/, read by `harness.status`).
Finished runs and runs another live trainer has claimed (harness.claim) are skipped; the rest
are packed `runs_per_task` per array task; a point claimed meanwhile (a relaunch while an array
still runs) is skipped by run() in the job, so every point trains once. Each point still
goes through `run()` with its own record and wandb run, and a failing point does not stop its
task. The launcher waits for the array and ends with the summary, naming the job state and log of
every run that has no record.

Preemption and time limits. submitit catches SIGUSR2 (sbatch `--signal=USR2@signal_delay_s`) and
calls the job callable's `checkpoint()`, then requeues the job. SweepChunk.checkpoint() sets the
chunk's stop request (harness.stop), which run() checks at the end of every step: it saves a
checkpoint and stops; only then does checkpoint() return and submitit requeue the same chunk:
finished runs are skipped, the interrupted one resumes from its checkpoint. SIGTERM (scancel,
`scontrol requeue`, preemption by SLURM itself) sets the same request: the run checkpoints and
the chunk exits without a result, so a requeued job resumes and a cancelled one is redone by the
next launch. Nothing here calls another library's signal handler.
"""

import signal
import sys
import threading
import time
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Sequence, Tuple

from hydra.core.config_store import ConfigStore
from hydra.core.singleton import Singleton
from hydra.core.utils import JobReturn, configure_log, run_job, setup_globals
from hydra_plugins.hydra_submitit_launcher.config import BaseQueueConf, SlurmQueueConf
from hydra_plugins.hydra_submitit_launcher.submitit_launcher import SlurmLauncher
from omegaconf import DictConfig, OmegaConf, open_dict, read_write

from harness.config import ConfigError
from harness.progress import Meter
from harness.stop import StopRequest, on_signals
from harness.sweep import (SweepPoint, check_points, compose_points, points_to_run, summarize,
                           sweep_stamp, write_manifests)

# Our own knobs; everything else in the config goes to submitit's SLURM executor.
_KANSCALE_KEYS = ("runs_per_task", "poll_interval_s", "requeue")


@dataclass
class KanscaleSlurmLauncherConf(SlurmQueueConf):
    """hydra-submitit-launcher's SLURM options (partition, account, timeout_min, mem_gb, setup,
    additional_parameters, ...) plus kanscale's. Cluster values go in configs/local/slurm.yaml."""
    _target_: str = "hydra_plugins.kanscale_launcher.slurm_launcher.KanscaleSlurmLauncher"
    name: str = "kanscale-${experiment_name}"
    cpus_per_task: Optional[int] = 1  # runs use num_threads (default 1) CPU threads
    # GPUs per array task; with gpus_per_task > 0 set device=auto (or cuda) so runs use them.
    gpus_per_task: Optional[int] = 0
    # Requeues after a time limit; runs resume from their checkpoints (tests/test_slurm_sweeps.py).
    max_num_timeout: int = 3
    runs_per_task: int = 1  # sweep points run one after another in each array task
    poll_interval_s: float = 10.0  # how often the launcher asks sacct about its jobs
    requeue: bool = True  # sbatch --requeue: preempted/requeued jobs restart and resume


ConfigStore.instance().store(group="hydra/launcher", name="kanscale_slurm",
                             node=KanscaleSlurmLauncherConf, provider="kanscale")


class SweepChunk:
    """The callable one array task runs: its sweep points one after another, each through run().

    Returns [(point index, JobReturn)]. A requeued copy (checkpoint()) runs the same points again:
    finished runs are skipped by run(), an interrupted one resumes from its checkpoint.

    Stopping (harness.stop). The chunk owns one StopRequest, passed to every run(). SIGTERM and
    SIGUSR1 only set it. submitit's preemption/timeout signal (USR2 from sbatch --signal) stays
    submitit's: its handler calls `checkpoint()` (submitit's Checkpointable contract), which sets
    the request, waits until the run has saved its checkpoint at the end of its step, and returns
    the resubmission that submitit requeues. So that the handler can wait for the run, the points
    train on a worker thread while the main thread, where Python runs signal handlers, waits.
    """

    def __init__(self, hydra_context, configs: Sequence[DictConfig], singleton_state=None):
        self.hydra_context = hydra_context
        self.configs = list(configs)  # composed point configs, with their hydra node
        self.singleton_state = singleton_state
        self._running: Optional[Tuple[StopRequest, threading.Thread]] = None  # during __call__

    def __getstate__(self) -> Dict[str, Any]:
        return {**self.__dict__, "_running": None}  # a thread and an Event do not pickle

    def __call__(self) -> List[Tuple[int, JobReturn]]:
        if self.singleton_state is not None:
            Singleton.set_state(self.singleton_state)
        setup_globals()
        returns: List[Tuple[int, JobReturn]] = []
        with on_signals(StopRequest(), (signal.SIGTERM, signal.SIGUSR1)) as stop:
            worker = threading.Thread(target=self._run_points, args=(stop, returns),
                                      name="kanscale-sweep-chunk")
            self._running = (stop, worker)
            worker.start()
            while worker.is_alive():  # a timed join: signal handlers run in between
                worker.join(0.5)
            self._running = None
        if stop.requested:
            # SIGTERM: SLURM is ending this job (scancel, requeue, preemption). No result file, so
            # the launcher reads the job's state; a requeued job resumes, a cancelled one is redone.
            sys.exit(3)
        return returns

    def _run_points(self, stop: StopRequest, returns: List[Tuple[int, JobReturn]]) -> None:
        from harness.run import run_and_summarize
        from harness.train import RunInterrupted

        def run_point(config: DictConfig) -> Dict[str, Any]:
            try:
                return run_and_summarize(config, stop)
            except RunInterrupted as exc:
                print(f"[kanscale] {exc}", flush=True)
                return {"status": "interrupted", "error": str(exc)}

        for config in self.configs:
            if stop.requested:
                return
            ret = run_job(hydra_context=self.hydra_context, task_function=run_point,
                          config=config, job_dir_key="hydra.sweep.dir",
                          job_subdir_key="hydra.sweep.subdir")
            if stop.requested:  # the point was interrupted (or had just finished): re-run it
                return
            returns.append((int(config.hydra.job.num), ret))

    def checkpoint(self, *args: Any, **kwargs: Any) -> Any:
        """submitit's preemption/timeout hook: stop the training run at the end of its step (it
        saves a checkpoint), then hand submitit this chunk to requeue."""
        import submitit
        running = self._running
        if running is not None:
            stop, worker = running
            stop.request("preempted or timed out (submitit checkpoint)")
            worker.join()
        return submitit.helpers.DelayedSubmission(self, *args, **kwargs)


class KanscaleSlurmLauncher(SlurmLauncher):
    # It composes and validates every point before running any (harness.sweep), so the sweeper
    # need not compose each point a second time (Hydra's validate_batch_is_legal).
    checks_every_point = True

    def __init__(self, runs_per_task: int = 1, poll_interval_s: float = 10.0,
                 requeue: bool = True, **params: Any) -> None:
        super().__init__(**params)
        self.runs_per_task, self.poll_interval_s, self.requeue = runs_per_task, poll_interval_s, requeue

    def launch(self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int) -> Sequence[JobReturn]:
        setup_globals()
        configure_log(self.config.hydra.hydra_logging, self.config.hydra.verbose)
        try:
            if self.runs_per_task < 1:
                raise ConfigError(f"hydra.launcher.runs_per_task={self.runs_per_task} must be >= 1")
            points = compose_points(self.hydra_context, self.config, job_overrides, initial_job_idx)
            check_points(points)
        except ConfigError as exc:
            print(f"kanscale: config error: {exc}", file=sys.stderr)
            sys.exit(2)
        self._warn_unused_gpus(points)
        sweep_dir = str(self.config.hydra.sweep.dir)  # resolved once: ${now:...} must not drift
        stamp = sweep_stamp()
        write_manifests(points, "kanscale_slurm", stamp)
        todo = points_to_run(points)
        chunks = [todo[i:i + self.runs_per_task] for i in range(0, len(todo), self.runs_per_task)]
        print(f"[kanscale] {len(todo)} to run in {len(chunks)} SLURM array task(s) of "
              f"<= {self.runs_per_task}", file=sys.stderr)
        by_index: Dict[int, JobReturn] = {}
        jobs_info: Dict[int, Dict[str, str]] = {}
        if chunks:
            jobs = self._submit(chunks, sweep_dir)
            for job, chunk in zip(jobs, chunks):
                for point in chunk:
                    jobs_info[point.index] = {"job_id": job.job_id, "stdout": str(job.paths.stdout),
                                              "stderr": str(job.paths.stderr)}
            write_manifests(points, "kanscale_slurm", stamp, jobs=jobs_info)
            print(f"[kanscale] submitted job {jobs[0].job_id.split('_')[0]} "
                  f"(logs: {jobs[0].paths.folder.parent})", file=sys.stderr)
            self._wait(jobs)
            for job, chunk in zip(jobs, chunks):
                returned, state = self._collect(job)
                by_index.update(returned)
                for point in chunk:
                    jobs_info[point.index]["state"] = state
        returns = [by_index.get(p.index) for p in points]
        summarize(points, returns, jobs=jobs_info)
        return [r for r in returns if r is not None]

    # ----- submission --------------------------------------------------------------------------
    def _executor(self):
        import submitit
        params = {k: v for k, v in self.params.items() if k not in _KANSCALE_KEYS}
        executor = submitit.AutoExecutor(folder=params.pop("submitit_folder"), cluster="slurm",
                                         slurm_max_num_timeout=params.pop("max_num_timeout"))
        if not params.get("gpus_per_task"):
            params.pop("gpus_per_task", None)  # 0: no --gpus-per-task line (some sites reject =0)
        extra = dict(params.pop("additional_parameters", None) or {})
        extra.setdefault("requeue" if self.requeue else "no-requeue", True)
        base = set(OmegaConf.structured(BaseQueueConf).keys())
        executor.update_parameters(slurm_additional_parameters=extra, **{
            k if k in base else f"slurm_{k}": v for k, v in params.items()})
        return executor

    def _submit(self, chunks: List[List[SweepPoint]], sweep_dir: str):
        executor = self._executor()
        state = Singleton.get_state()
        payloads = []
        for chunk in chunks:
            configs = []
            for point in chunk:
                config = point.config
                with read_write(config), open_dict(config):
                    config.hydra.sweep.dir = sweep_dir
                configs.append(config)
            payloads.append(SweepChunk(self.hydra_context, configs, state))
        with executor.batch():
            jobs = [executor.submit(payload) for payload in payloads]
        return jobs

    def _warn_unused_gpus(self, points: Sequence[SweepPoint]) -> None:
        if self.params.get("gpus_per_task") and any(p.job_config().device == "cpu" for p in points):
            print("kanscale: warning: hydra.launcher.gpus_per_task>0 but device=cpu; "
                  "set device=auto to train on the GPUs", file=sys.stderr)

    # ----- waiting -----------------------------------------------------------------------------
    def _wait(self, jobs) -> None:
        """Until every task has a result file or a final state in sacct (one sacct call per poll)."""
        watcher = jobs[0].watcher
        meter = Meter(len(jobs), "sweep:", "array task")
        try:
            while True:
                watcher.update()
                n_done = sum(job.paths.result_pickle.exists()
                             or watcher.is_done(job.job_id, mode="cache") for job in jobs)
                if n_done != meter.n:
                    meter.advance(n_done - meter.n)
                if n_done == len(jobs):
                    return
                time.sleep(self.poll_interval_s)
        except KeyboardInterrupt:
            array_id = jobs[0].job_id.split("_")[0]
            print(f"\n[kanscale] stopped waiting; the jobs keep running (scancel {array_id} stops "
                  f"them). Progress: python -m harness.status <results_root>", file=sys.stderr)
            sys.exit(130)

    def _collect(self, job) -> Tuple[Dict[int, JobReturn], str]:
        """The chunk's returns by point index, and the job's final state."""
        from submitit.core.utils import FailedJobError, UncompletedJobError
        state = job.watcher.get_state(job.job_id, mode="cache")
        if not job.paths.result_pickle.exists() and not state.startswith("COMPLETED"):
            return {}, state  # ended without a result (cancelled, killed): no need to wait for one
        try:
            return dict(job.result()), state
        except (FailedJobError, UncompletedJobError) as exc:
            first = next((line for line in reversed(str(exc).splitlines()) if line.strip()), "")
            print(f"[kanscale] job {job.job_id}: {first.strip()}", file=sys.stderr)
            return {}, f"{state} ({first.strip()[:120]})"
