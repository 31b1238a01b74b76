"""SIGTERM (Slurm's warning before it kills a job), SIGINT and kill -9 during a run, serial and
on 2 ranks, for both generators (docs/design.md, "The MPI model").

The runs are real processes (under mpiexec for 2 ranks) signalled as a process group once every
rank has checkpointed; ``JUMPS_INJECT=chunk=sleep0.1`` slows each chunk so that the signal
lands mid-run. Oracle: exit status 128 + signal, a final checkpoint on every rank, and a
``--resume`` (serial, or on 2 ranks) whose result equals the uninterrupted run's: integer
records identical, averages to 1e-12 (``fault_helpers.assert_same``).
"""

from __future__ import annotations

import signal

import numpy as np
import pytest
from fault_helpers import (
    CHANNELS,
    RATES,
    assert_same,
    kill_group,
    run_here,
    run_process,
    start_process,
    wait_for_checkpoints,
    write_config,
)

SLOW_CHUNKS = {"JUMPS_INJECT": "chunk=sleep0.1"}
BASES = {"channels": CHANNELS, "rates": RATES}


@pytest.fixture(scope="module")
def references(tmp_path_factory):
    """The uninterrupted run of each generator's config, made on first use."""
    made = {}

    def get(generator: str):
        if generator not in made:
            directory = tmp_path_factory.mktemp(generator)
            config = write_config(directory, BASES[generator])
            status, stderr = run_here(config, "--out", directory / "out")
            assert status == 0, stderr
            made[generator] = (config, directory / "out")
        return made[generator]

    return get


def _interrupt(config, out, ranks, signum):
    process = start_process([config, "--out", out], ranks, env=SLOW_CHUNKS)
    wait_for_checkpoints(process, out, ranks or 1)
    kill_group(process, signum)
    _, stderr = process.communicate(timeout=60)
    return process.returncode, stderr


def _resume(config, out, ranks):
    if ranks is None:
        return run_here(config, "--out", out, "--resume")
    done = run_process([config, "--out", out, "--resume"], ranks)
    return done.returncode, done.stderr


def _signal_case(generator, signum, ranks, slow=False):
    marks = [pytest.mark.slow] if slow or ranks or generator == "rates" else []
    name = f"{generator}-{signal.Signals(signum).name}-{ranks or 1}rank"
    return pytest.param(generator, signum, ranks, marks=marks, id=name)


@pytest.mark.parametrize("generator, signum, ranks", [
    _signal_case("channels", signal.SIGTERM, None), _signal_case("channels", signal.SIGINT, None),
    _signal_case("channels", signal.SIGTERM, 2), _signal_case("channels", signal.SIGINT, 2),
    _signal_case("rates", signal.SIGTERM, None), _signal_case("rates", signal.SIGTERM, 2),
])
def test_a_signal_checkpoints_every_rank_and_resume_finishes(tmp_path, references, generator,
                                                             signum, ranks):
    """SIGTERM/SIGINT: exit 143/130 after a final checkpoint on every rank (SIGTERM killed
    the process with no checkpoint since the last periodic one; SIGINT under MPI called
    MPI_Abort), the lock released; --resume gives the uninterrupted result."""
    config, reference = references(generator)
    out = tmp_path / "out"
    status, stderr = _interrupt(config, out, ranks, signum)
    assert status == 128 + signum, stderr
    name = signal.Signals(signum).name
    notes = [line for line in stderr.splitlines() if line.startswith("jumps:")]
    assert notes == [(f"jumps: interrupted by {name}: the finished chunks are saved in "
                     f"{out / 'checkpoint'}; continue with --resume")], stderr
    assert "Traceback" not in stderr
    for rank in range(ranks or 1):
        with np.load(out / "checkpoint" / f"a001-r{rank:04d}.npz") as data:
            assert data["chunks"].size > 0
    assert not (out / ".jumps-lock").exists() and not (out / "run.json").exists()
    status, stderr = _resume(config, out, ranks)
    assert status == 0, stderr
    assert_same(reference, out)


@pytest.mark.parametrize("generator, ranks", [
    ("channels", None),
    pytest.param("channels", 2, marks=pytest.mark.slow),
    pytest.param("rates", None, marks=pytest.mark.slow),
    pytest.param("rates", 2, marks=pytest.mark.slow),
])
def test_kill_9_and_resume(tmp_path, references, generator, ranks):
    """kill -9 of every process: the periodic checkpoints stay; the lock left behind is broken
    (its pid is gone) and --resume gives the uninterrupted result."""
    config, reference = references(generator)
    out = tmp_path / "out"
    status, _ = _interrupt(config, out, ranks, signal.SIGKILL)
    assert status != 0
    assert (out / ".jumps-lock").exists()
    status, stderr = _resume(config, out, ranks)
    assert status == 0, stderr
    assert "broke the stale lock" in stderr and "(the process is gone)" in stderr
    assert_same(reference, out)
