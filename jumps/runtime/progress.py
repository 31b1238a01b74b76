"""A run's progress on stderr: tqdm's bar on a terminal, plain lines anywhere else.

tqdm redraws its bar with carriage returns, which only a terminal shows in place; and with
``disable=None`` (what the driver passed) tqdm switches itself off when stderr is not a
terminal, so a notebook's ``!python -m jumps run``, ``mpiexec``'s forwarded output or a batch
job's log showed no progress at all. Where stderr is not a terminal, :class:`LineProgress`
prints one plain line when the first chunk is done, then at most one every
:data:`LINE_SECONDS`, and one at the end. ``--quiet`` shows neither.
"""

from __future__ import annotations

import math
import sys
import time
from typing import TextIO

# Seconds between two progress lines when stderr is not a terminal.
LINE_SECONDS = 10.0


def progress_bar(total: int, initial: int, quiet: bool, file: TextIO | None = None):
    """The progress display of a run of ``total`` trajectories (``initial`` already done), or
    None when ``quiet``: tqdm on a terminal, :class:`LineProgress` elsewhere."""
    if quiet:
        return None
    file = file if file is not None else sys.stderr
    if not _is_terminal(file):
        return LineProgress(total, initial, file)
    from tqdm import tqdm

    return tqdm(total=total, initial=initial, unit="traj", dynamic_ncols=True, file=file)


def _is_terminal(file: TextIO) -> bool:
    try:
        return bool(file.isatty())
    except (AttributeError, ValueError, OSError):  # no isatty, or a closed stream
        return False


class LineProgress:
    """Progress as plain lines, with the part of tqdm's interface the driver uses (``n``,
    ``update``, ``set_postfix_str``, ``close``)::

        jumps: progress 1200/20000 trajectories (6%), 14 s, ~3.7 min left, 2.1e+06 jumps/s

    Parameters
    ----------
    total, initial : int
        Trajectories of the run, and those done before (a resumed run).
    file : text stream
    interval : float
        Seconds between two lines (the first comes with the first update, the last with
        :meth:`close`).
    """

    def __init__(self, total: int, initial: int, file: TextIO, interval: float = LINE_SECONDS):
        self.total, self.n, self.initial = int(total), int(initial), int(initial)
        self.file, self.interval = file, float(interval)
        self.start = time.perf_counter()
        self.last_time: float | None = None
        self.last_n: int | None = None
        self.postfix = ""

    def update(self, count: int) -> None:
        self.n += int(count)
        now = time.perf_counter()
        if self.last_time is None or now - self.last_time >= self.interval:
            self._line(now)

    def set_postfix_str(self, text: str, refresh: bool = True) -> None:
        self.postfix = text

    def close(self) -> None:
        if self.last_n != self.n and self.n > self.initial:
            self._line(time.perf_counter())

    def _line(self, now: float) -> None:
        elapsed = now - self.start
        done = self.n - self.initial
        left = (self.total - self.n) * elapsed / done if done > 0 else math.nan
        percent = 100.0 * self.n / max(self.total, 1)
        parts = [f"jumps: progress {self.n}/{self.total} trajectories ({percent:.0f}%)",
                 _duration(elapsed)]
        if self.n < self.total and math.isfinite(left):
            parts.append(f"~{_duration(left)} left")
        if self.postfix:
            parts.append(self.postfix)
        try:
            print(", ".join(parts), file=self.file, flush=True)
        except (OSError, ValueError):  # a closed or broken stderr must not end the run
            pass
        self.last_time, self.last_n = now, self.n


def _duration(seconds: float) -> str:
    if seconds < 10:
        return f"{seconds:.1f} s"
    if seconds < 100:
        return f"{seconds:.0f} s"
    if seconds < 6000:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"
