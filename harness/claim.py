"""One trainer per run folder: a claim file created atomically before training.

RUN_DIR/claim.json is created atomically and exclusively (written to a temp file, then hard-linked
to its name: link(2) fails if the name exists, like O_CREAT|O_EXCL, also on NFS, and a reader never
sees half a claim), holds {host, pid, started_at, heartbeat, token} and is refreshed every HEARTBEAT_S seconds while the run
trains. Another launcher (local or SLURM, any host) that finds a live claim skips the point. A
claim is stale, and taken over, when its pid is dead on this host or its heartbeat is older than
STALE_AFTER_S (a process killed on another node, a suspended job), or when it was taken by an
earlier incarnation of the same (requeued) SLURM job. The claim is released (deleted)
when the run ends, however it ends; a SIGKILL leaves it behind, stale at once on the same host.
Stdlib only (harness.status reads claims without torch).
"""
from __future__ import annotations

import json
import os
import socket
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, Iterable, Optional

CLAIM_FILE = "claim.json"
HEARTBEAT_S = 10.0  # how often a training run refreshes its claim's heartbeat
STALE_AFTER_S = 120.0  # a heartbeat older than this marks the claim stale (any host)
_TAKEOVER_STALE_S = 30.0  # a takeover lock older than this was left by a killed process


class RunClaimed(Exception):
    """The run folder is claimed by another live trainer; this launcher skips the point."""

    def __init__(self, run_dir: Path, holder: Dict[str, Any]):
        self.run_dir, self.holder = Path(run_dir), holder
        super().__init__(f"{Path(run_dir).name} claimed by {describe(holder)}")


def describe(holder: Dict[str, Any]) -> str:
    return f"{holder.get('host', '?')}:{holder.get('pid', '?')}"


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # exists, another user's
    return True


def _read(path: Path) -> Optional[Dict[str, Any]]:
    try:
        holder = json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError):
        holder = {}  # half-written by a killed process: judged by the file's age below
    if not isinstance(holder, dict):
        holder = {}
    holder.setdefault("heartbeat", path.stat().st_mtime if path.exists() else 0.0)
    return holder


def _this_job() -> str:
    """This process's SLURM job ("<array job>_<task>" or the job id); "" outside SLURM."""
    env = os.environ
    if env.get("SLURM_ARRAY_JOB_ID"):
        return f"{env['SLURM_ARRAY_JOB_ID']}_{env.get('SLURM_ARRAY_TASK_ID', '')}"
    return env.get("SLURM_JOB_ID", "")


def is_stale(holder: Dict[str, Any], now: Optional[float] = None) -> bool:
    now = time.time() if now is None else now
    if holder.get("job") and holder.get("job") == _this_job():
        return True  # an earlier incarnation of this requeued job: SLURM ended it before requeueing
    if holder.get("host") == socket.gethostname() and isinstance(holder.get("pid"), int):
        if not _pid_alive(holder["pid"]):
            return True
    heartbeat = holder.get("heartbeat")
    return not isinstance(heartbeat, (int, float)) or now - heartbeat > STALE_AFTER_S


def holder_of(run_dir: Path) -> Optional[Dict[str, Any]]:
    """The live claim on run_dir (host, pid, started_at, heartbeat), or None (none, or stale)."""
    holder = _read(Path(run_dir) / CLAIM_FILE)
    return None if holder is None or is_stale(holder) else holder


def clear_stale(run_dir: Path) -> None:
    """Delete run_dir's claim if it is stale (e.g. left by a run killed after its record)."""
    path = Path(run_dir) / CLAIM_FILE
    holder = _read(path)
    if holder is not None and is_stale(holder):
        _remove_stale(path, holder)


class Claim:
    """A held claim on one run folder; `release()` (or the context manager) gives it up."""

    def __init__(self, run_dir: Path, token: str):
        self.run_dir, self.token = Path(run_dir), token
        self.path = self.run_dir / CLAIM_FILE

    def _payload(self, started_at: float) -> Dict[str, Any]:
        return {"host": socket.gethostname(), "pid": os.getpid(), "started_at": started_at,
                "heartbeat": time.time(), "token": self.token, "job": _this_job()}

    def owned(self) -> bool:
        holder = _read(self.path)
        return holder is not None and holder.get("token") == self.token

    def refresh(self) -> None:
        """New heartbeat (temp file + rename, so readers never see half a claim)."""
        holder = _read(self.path)
        if holder is None or holder.get("token") != self.token:
            return  # taken over after we looked stale: the new holder's claim stays
        tmp = self.path.with_name(f".{CLAIM_FILE}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(self._payload(holder.get("started_at", time.time()))))
        os.replace(tmp, self.path)

    def release(self) -> None:
        if self.owned():
            try:
                self.path.unlink()
            except FileNotFoundError:
                pass

    def __enter__(self) -> "Claim":
        return self

    def __exit__(self, *exc) -> None:
        self.release()


def acquire(run_dir: Path) -> Claim:
    """Claim run_dir (created if needed) or raise RunClaimed naming the live holder."""
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    claim = Claim(run_dir, uuid.uuid4().hex)
    for _ in range(5):
        if _create(claim):
            return claim
        holder = _read(claim.path)
        if holder is not None and not is_stale(holder):
            raise RunClaimed(run_dir, holder)
        _remove_stale(claim.path, holder)
    holder = _read(claim.path) or {}
    raise RunClaimed(run_dir, holder)


def _create_exclusive(path: Path, payload: Dict[str, Any]) -> bool:
    """Create `path` holding `payload` unless it exists (temp file + link: all or nothing)."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")
    tmp.write_text(json.dumps(payload))
    try:
        os.link(tmp, path)
    except FileExistsError:
        return False
    finally:
        tmp.unlink()
    return True


def _create(claim: Claim) -> bool:
    return _create_exclusive(claim.path, claim._payload(time.time()))


def _remove_stale(path: Path, seen: Optional[Dict[str, Any]]) -> None:
    """Delete a stale claim, under a takeover lock so two takers cannot delete a fresh one."""
    lock = path.with_name(f".{CLAIM_FILE}.takeover")
    if not _create_exclusive(lock, {"host": socket.gethostname(), "pid": os.getpid(),
                                    "heartbeat": time.time()}):
        holder = _read(lock)
        if holder is not None and (is_stale(holder) or
                                   time.time() - holder["heartbeat"] > _TAKEOVER_STALE_S):
            try:
                lock.unlink()  # left by a killed taker
            except FileNotFoundError:
                pass
        time.sleep(0.05)
        return
    try:
        holder = _read(path)
        if holder is not None and is_stale(holder) and holder.get("token") == (seen or {}).get("token"):
            path.unlink()
    finally:
        lock.unlink()


class Heartbeat:
    """A daemon thread refreshing claims every HEARTBEAT_S seconds while the block runs."""

    def __init__(self, claims: Iterable[Claim], every_s: float = HEARTBEAT_S):
        self.claims, self.every_s = list(claims), every_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, daemon=True, name="kanscale-heartbeat")

    def _beat(self) -> None:
        while not self._stop.wait(self.every_s):
            for claim in self.claims:
                try:
                    claim.refresh()
                except OSError:
                    pass  # a full or vanished disk: the run's own writes will report it

    def __enter__(self) -> "Heartbeat":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
