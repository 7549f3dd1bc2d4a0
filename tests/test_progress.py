"""Progress lines with an ETA (harness/progress.py): the numbers a meter prints for known times."""
from __future__ import annotations

from harness.progress import Meter


def test_meter_line_gives_done_total_elapsed_and_eta():
    now = [0.0]
    lines = []
    meter = Meter(400, "sweep:", "run", log=lines.append, clock=lambda: now[0])
    now[0] = 120.0
    meter.advance(10)  # 10 runs in 2 minutes: 12 s a run, 390 left -> 78 minutes
    now[0] = 240.0
    meter.advance(30)  # 40 in 4 minutes: 6 s a run, 360 left -> 36 minutes
    assert lines == ["[kanscale] sweep: 10/400 runs [02:00 elapsed, ETA 1:18:00, 12.00s/run]",
                     "[kanscale] sweep: 40/400 runs [04:00 elapsed, ETA 36:00, 6.00s/run]"]
    assert meter.n == 40
