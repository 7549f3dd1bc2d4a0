"""wandb logging for one run: config at start, losses per step, the result record as summary.

The result record on disk is the source of truth; wandb mirrors it. Mode comes from the config
(offline by default, so no account is needed; `disabled` turns it off). One wandb run per record:
the wandb run id is derived from our run id (`wandb_id_of`) and opened with resume="allow", so a
run that resumes from its checkpoint continues the same wandb run (offline, each resume leaves
one more `offline-run-*-<id>` folder; `wandb sync` merges them into that one run).
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Dict, Optional


def wandb_id_of(run_id: str) -> str:
    """The wandb run id of our run `run_id` (same id every time the run starts or resumes)."""
    return f"ks-{run_id}"


class Tracker:
    def __init__(self, mode: str, project: str, entity: Optional[str], run_id: str, group: str,
                 run_dir: Path, config: Dict[str, Any]):
        self.run = None
        if mode == "disabled":
            return
        import wandb

        os.environ.setdefault("WANDB_SILENT", "true")
        self.run = wandb.init(project=project, entity=entity, group=group, name=run_id,
                              id=wandb_id_of(run_id), resume="allow",
                              job_type=str(config.get("model", {}).get("family", "")),
                              dir=str(run_dir), mode=mode, config=config,
                              reinit="finish_previous")

    def log(self, values: Dict[str, float], step: int) -> None:
        if self.run is not None:
            self.run.log(values, step=step)

    def finish(self, summary: Dict[str, Any], exit_code: int = 0) -> None:
        if self.run is None:
            return
        self.run.summary.update(summary)
        self.run.finish(exit_code=exit_code)
        self.run = None
