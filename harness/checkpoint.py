"""Checkpoints: everything a run needs to continue bit-for-bit (model, optimizer, RNG, counters)."""
from __future__ import annotations

import os
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Dict, List, Optional

import torch

from harness import faults

CHECKPOINT_FILE = "checkpoint.pt"


@dataclass
class Checkpoint:
    progress: Dict[str, Any]  # stage, step_in_stage, global_step, n_evals, train_flops, wall_time_s
    stages: List[Dict[str, Any]]  # records of finished stages
    model: Dict[str, torch.Tensor]
    optimizer: Optional[Dict[str, Any]]  # None at a stage boundary (a new optimizer per stage)
    torch_rng: torch.Tensor
    batch_rng: torch.Tensor


def save_checkpoint(run_dir: Path, checkpoint: Checkpoint) -> None:
    """Atomic: written to a temp file in the run folder, then renamed over the old one."""
    fd, tmp = tempfile.mkstemp(dir=run_dir, prefix=".checkpoint.", suffix=".tmp")
    os.close(fd)
    try:
        torch.save(asdict(checkpoint), tmp)
        faults.hit("checkpoint_write")  # tests only: a kill between write and rename
        os.replace(tmp, Path(run_dir) / CHECKPOINT_FILE)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def load_checkpoint(run_dir: Path) -> Optional[Checkpoint]:
    path = Path(run_dir) / CHECKPOINT_FILE
    if not path.exists():
        return None
    return Checkpoint(**torch.load(path, map_location="cpu", weights_only=False))
