"""A run's progress where a notebook or a batch log can see it: tqdm's bar on a terminal, plain
lines when stderr is a pipe (``!python -m jumps run`` in a notebook: tqdm used to switch
itself off there), nothing with ``--quiet``."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path

import pytest
from tqdm import tqdm

from jumps.runtime import progress
from tests.helpers import QUBIT, config_toml

REPO = Path(__file__).resolve().parents[1]


class Clock:
    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now


@pytest.fixture
def clock(monkeypatch):
    clock = Clock()
    monkeypatch.setattr(progress.time, "perf_counter", clock)
    return clock


def test_lines_at_the_first_update_then_every_interval_and_at_the_end(clock):
    out = io.StringIO()
    bar = progress.progress_bar(1000, 0, quiet=False, file=out)
    assert isinstance(bar, progress.LineProgress)
    clock.now += 2.0
    bar.set_postfix_str("1.5e+06 jumps/s", refresh=False)
    bar.update(100)
    for seconds, count in [(3.0, 100), (3.0, 100), (5.0, 100), (1.0, 100)]:
        clock.now += seconds
        bar.update(count)
    clock.now += 1.0
    bar.update(500)
    bar.close()
    lines = out.getvalue().splitlines()
    rate = "1.5e+06 jumps/s"
    assert lines == [f"jumps: progress 100/1000 trajectories (10%), 2.0 s, ~18 s left, {rate}",
                     f"jumps: progress 400/1000 trajectories (40%), 13 s, ~20 s left, {rate}",
                     f"jumps: progress 1000/1000 trajectories (100%), 15 s, {rate}"]
    assert "\r" not in out.getvalue()


def test_resumed_run_counts_from_what_was_done(clock):
    out = io.StringIO()
    bar = progress.LineProgress(1000, 600, out)
    clock.now += 4.0
    bar.update(100)
    bar.close()  # nothing new since the last line
    assert out.getvalue() == "jumps: progress 700/1000 trajectories (70%), 4.0 s, ~12 s left\n"


def test_quiet_and_terminal():
    class Terminal(io.StringIO):
        def isatty(self):
            return True

    assert progress.progress_bar(10, 0, quiet=True, file=io.StringIO()) is None
    assert progress.progress_bar(10, 0, quiet=True, file=Terminal()) is None
    bar = progress.progress_bar(10, 0, quiet=False, file=Terminal())
    assert isinstance(bar, tqdm) and not bar.disable
    bar.close()


def run_cli(tmp_path: Path, *extra: str) -> subprocess.CompletedProcess:
    config = tmp_path / "qubit.toml"
    config.write_text(config_toml(QUBIT, run={"trajectories": 400, "seed": 3, "t_final": 2.0,
                                              "n_times": 5, "chunk_size": 100}))
    env = {**os.environ, "PYTHONPATH": str(REPO), "JUMPS_MPI": "0"}
    return subprocess.run([sys.executable, "-m", "jumps", "run", str(config), "--out",
                           str(tmp_path / "out"), "--force", *extra], env=env,
                          capture_output=True, text=True, timeout=300, check=False)


def test_piped_stderr_shows_progress_lines_unless_quiet(tmp_path):
    shown = run_cli(tmp_path)
    assert shown.returncode == 0, shown.stderr
    lines = [line for line in shown.stderr.splitlines() if line.startswith("jumps: progress")]
    assert lines and lines[-1].startswith("jumps: progress 400/400 trajectories (100%)"), (
        shown.stderr)
    assert "jumps/s" in lines[-1] and "\r" not in shown.stderr
    quiet = run_cli(tmp_path, "--quiet")
    assert quiet.returncode == 0, quiet.stderr
    assert "progress" not in quiet.stderr and "\r" not in quiet.stderr
