"""A stop request: the value that tells a training loop to checkpoint and stop.

`run(cfg, stop=...)` and `run_many(..., stop=...)` (one loop, harness.train.StackTrainer) check
`stop.requested` at the end of every step; when it is set they save a checkpoint and raise RunInterrupted (re-run to
resume). Whoever owns the process decides what sets it: the CLI entry (harness/run.py) and the
launchers install signal handlers (`on_signals`) that do nothing but `stop.request(...)`; a test
or another thread may call `request` directly. Training code installs no signal handlers.
"""
from __future__ import annotations

import signal
import threading
from contextlib import contextmanager
from typing import Iterator, Optional, Sequence


class StopRequest:
    """Set once (the first reason wins), read by the training loop; safe to set from a signal
    handler or another thread (a threading.Event; setting it takes no lock a handler could
    interrupt)."""

    def __init__(self) -> None:
        self._event = threading.Event()
        self._reason: Optional[str] = None

    def request(self, reason: str) -> None:
        if not self._event.is_set():
            self._reason = reason
            self._event.set()

    @property
    def requested(self) -> bool:
        return self._event.is_set()

    @property
    def reason(self) -> Optional[str]:
        return self._reason

    def wait(self, timeout: Optional[float] = None) -> bool:
        return self._event.wait(timeout)


@contextmanager
def on_signals(stop: StopRequest, signums: Sequence[int] = (signal.SIGTERM, signal.SIGUSR1)
               ) -> Iterator[StopRequest]:
    """While inside: each of `signums` only sets `stop` (reason "signal N"); the previous handlers
    are put back (not called) on exit. Outside the main thread nothing is installed (Python's rule
    for signal.signal), and the caller's stop request still works."""
    previous = {}
    if threading.current_thread() is threading.main_thread():
        for signum in signums:
            previous[signum] = signal.signal(signum, lambda n, _frame: stop.request(f"signal {n}"))
    try:
        yield stop
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
