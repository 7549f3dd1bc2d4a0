"""Test-only fault injection and training counts, switched on by environment variables.

Nothing here is part of a run's config (or its run id). Tests set:

    KANSCALE_FAULT="fail:step=2"               raise RuntimeError before optimizer step 2
    KANSCALE_FAULT="kill:checkpoint_write"     SIGKILL this process inside the next checkpoint write
                                               (temp file written, not yet renamed into place)
    KANSCALE_FAULT="kill:record_write#2"       ... inside the 2nd result/manifest write
    KANSCALE_FAULT="kill:step=3"               SIGKILL before optimizer step 3
    KANSCALE_FAULT="fail:step=1@seed=1"        only in runs whose resolved config has seed == 1

Several faults are separated by ";". `@key=value` (dotted key into the resolved config, compared
as text) limits a step fault to the matching runs. KANSCALE_TRAINING_LOG=FILE makes every
training start append "<run_id> <host>:<pid>" to FILE, so tests count how often a point trained.
"""
from __future__ import annotations

import os
import signal
import socket
from typing import Any, Dict, List, Optional, Tuple

FAULT_ENV = "KANSCALE_FAULT"
TRAINING_LOG_ENV = "KANSCALE_TRAINING_LOG"

_hits: Dict[str, int] = {}  # write site -> times reached in this process


def _faults() -> List[Tuple[str, str, Optional[str]]]:
    """(action, where, filter) per fault in KANSCALE_FAULT."""
    faults = []
    for spec in filter(None, (part.strip() for part in os.environ.get(FAULT_ENV, "").split(";"))):
        action, _, rest = spec.partition(":")
        where, _, condition = rest.partition("@")
        if action not in ("fail", "kill") or not where:
            raise ValueError(f"{FAULT_ENV}={spec!r}: use fail:step=N, kill:step=N or "
                             f"kill:checkpoint_write[#n] / kill:record_write[#n]")
        faults.append((action, where, condition or None))
    return faults


def _matches(condition: Optional[str], config: Optional[Dict[str, Any]]) -> bool:
    if condition is None:
        return True
    key, _, expected = condition.partition("=")
    node: Any = config or {}
    for part in key.split("."):
        node = node.get(part) if isinstance(node, dict) else None
    return str(node) == expected


def _kill() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def before_step(step: int, config: Optional[Dict[str, Any]] = None) -> None:
    """Called before each optimizer step (global step count) of a run with this resolved config;
    a `fail:` fault raises RuntimeError (recorded like any other failure)."""
    for action, where, condition in _faults():
        if where == f"step={step}" and _matches(condition, config):
            if action == "kill":
                _kill()
            raise RuntimeError(f"injected failure at step {step} ({FAULT_ENV})")


def hit(site: str) -> None:
    """Called inside a write (site: checkpoint_write or record_write), between write and rename."""
    _hits[site] = _hits.get(site, 0) + 1
    for action, where, _ in _faults():
        name, _, nth = where.partition("#")
        if action == "kill" and name == site and _hits[site] == int(nth or 1):
            _kill()


def note_training(run_id: str) -> None:
    """Append one line per training start to KANSCALE_TRAINING_LOG (if set)."""
    path = os.environ.get(TRAINING_LOG_ENV)
    if path:
        with open(path, "a") as handle:  # one short O_APPEND write: lines do not interleave
            handle.write(f"{run_id} {socket.gethostname()}:{os.getpid()}\n")
