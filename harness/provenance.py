"""Where a result came from: code version, library versions, host, time."""
from __future__ import annotations

import datetime
import platform
import socket
import subprocess
from functools import lru_cache
from pathlib import Path
from typing import Dict, Optional

import torch


@lru_cache(maxsize=1)
def git_sha() -> Optional[str]:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=Path(__file__).resolve().parent,
                             capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None


def provenance() -> Dict[str, object]:
    return {"git_sha": git_sha(), "torch_version": torch.__version__,
            "python_version": platform.python_version(), "hostname": socket.gethostname(),
            "finished_at": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")}
