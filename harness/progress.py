"""Progress lines with an ETA, for sweeps (runs done of the runs to do) and for stacks of runs
(stages done of the stages): one plain line per step of progress, on a terminal or in a log file.

The meter (elapsed, remaining, rate) is tqdm's `format_meter`; the remaining time assumes the
rest goes at the average rate so far (later grid-extension stages cost more, so read it as a
lower bound early in a run).
"""
from __future__ import annotations

import sys
import time
from typing import Callable, Optional, TextIO

from tqdm import tqdm

_BAR = "{n_fmt}/{total_fmt} {unit}s [{elapsed} elapsed, ETA {remaining}, {rate_fmt}]"


class Meter:
    """Counts `unit`s (singular: "run", "stage") done out of `total` and prints
    "[kanscale] <what> n/total <unit>s [elapsed, ETA, rate]" through `log` (default: a line on
    stderr) each time `advance` is called."""

    def __init__(self, total: int, what: str, unit: str, log: Optional[Callable[[str], None]] = None,
                 stream: TextIO = sys.stderr, clock: Callable[[], float] = time.monotonic):
        self.total, self.what, self.unit, self.n = total, what, unit, 0
        self.clock = clock
        self.started = clock()
        self.log = log if log is not None else (lambda line: print(line, file=stream, flush=True))

    def line(self) -> str:
        meter = tqdm.format_meter(self.n, self.total, self.clock() - self.started, unit=self.unit,
                                  bar_format=_BAR)
        return f"[kanscale] {self.what} {' '.join(meter.split())}"

    def advance(self, n: int = 1) -> None:
        self.n += n
        self.log(self.line())
