"""`hydra/launcher=kanscale_local`: sweep points one after another in this process.

(No `from __future__ import annotations` here: Hydra imports plugins outside sys.modules and
dataclasses then fail to resolve string annotations.)

Unlike Hydra's basic launcher it checks every point before running any, skips finished runs and
runs another launcher has claimed (harness.claim: several launchers on one sweep share the work),
redoes damaged records, prints progress, and ends with a summary of what failed and where its
record or log is. `python -m harness.run -m` then exits with harness.sweep.sweep_exit_code().
"""

import logging
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import List, Optional, Sequence

from hydra.core.config_store import ConfigStore
from hydra.core.utils import JobReturn, configure_log, run_job, setup_globals
from hydra.plugins.launcher import Launcher

from harness.config import ConfigError
from harness.progress import Meter
from harness.sweep import (check_points, compose_points, points_to_run, summarize, sweep_stamp,
                           write_manifests)

log = logging.getLogger(__name__)


@dataclass
class KanscaleLocalLauncherConf:
    _target_: str = "hydra_plugins.kanscale_launcher.local_launcher.KanscaleLocalLauncher"
    # > 0: points that differ only in seed, lr or init train together as stacked ensembles of at
    # most `pack` models (harness.ensemble.run_many); each still gets its own record, with the
    # numbers it would have alone (stack_size and time_measure say how it ran).
    pack: int = 0


ConfigStore.instance().store(group="hydra/launcher", name="kanscale_local",
                             node=KanscaleLocalLauncherConf, provider="kanscale")


class KanscaleLocalLauncher(Launcher):
    # It composes and validates every point before running any (harness.sweep), so the sweeper
    # need not compose each point a second time (Hydra's validate_batch_is_legal).
    checks_every_point = True

    def __init__(self, pack: int = 0) -> None:
        self.config = self.hydra_context = self.task_function = None
        self.pack = pack

    def setup(self, *, hydra_context, task_function, config) -> None:
        self.config, self.hydra_context, self.task_function = config, hydra_context, task_function

    def launch(self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int) -> Sequence[JobReturn]:
        setup_globals()
        configure_log(self.config.hydra.hydra_logging, self.config.hydra.verbose)
        try:
            if self.pack < 0:
                raise ConfigError(f"hydra.launcher.pack={self.pack} must be >= 0 (0 = no packing)")
            points = compose_points(self.hydra_context, self.config, job_overrides, initial_job_idx)
            check_points(points)
        except ConfigError as exc:
            print(f"kanscale: config error: {exc}", file=sys.stderr)
            sys.exit(2)
        Path(str(self.config.hydra.sweep.dir)).mkdir(parents=True, exist_ok=True)
        write_manifests(points, "kanscale_local", sweep_stamp())
        todo = points_to_run(points)
        if self.pack > 0 and todo:
            from harness.ensemble.run_many import run_many
            print(f"[kanscale] packing up to {self.pack} runs per stacked ensemble", file=sys.stderr)
            from harness.stop import StopRequest, on_signals
            from harness.train import RunInterrupted
            try:  # SIGTERM/SIGUSR1 only request a stop (harness.stop), as for a single run
                with on_signals(StopRequest()) as stop:
                    run_many([p.job_config() for p in todo], max_members=self.pack, stop=stop)
            except RunInterrupted as exc:
                print(f"kanscale: interrupted: {exc}", file=sys.stderr)
                sys.exit(3)
            summarize(points, [None] * len(points))
            return []
        returns: List[Optional[JobReturn]] = []
        meter = Meter(len(todo), "sweep:", "run")
        for point in points:
            if point not in todo:
                returns.append(None)
                continue
            holder = point.claimed_by()  # claimed since the sweep started: another launcher has it
            if holder is not None:
                print(f"[kanscale] #{point.index} {point.run_id} claimed by {holder}: skipped",
                      file=sys.stderr)
                returns.append(None)
                meter.advance()
                continue
            print(f"[kanscale] [{meter.n + 1}/{len(todo)}] {point.label}", file=sys.stderr)
            returns.append(run_job(hydra_context=self.hydra_context, task_function=self.task_function,
                                   config=point.config, job_dir_key="hydra.sweep.dir",
                                   job_subdir_key="hydra.sweep.subdir"))
            configure_log(self.config.hydra.hydra_logging, self.config.hydra.verbose)
            meter.advance()
        summarize(points, returns)
        return [r for r in returns if r is not None]
