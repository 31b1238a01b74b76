"""Shared pieces of the run-integrity tests (tests/faults): configs, running ``jumps run`` in
this process or in a subprocess (serial or under mpiexec), waiting for checkpoints, and the
oracle: the uninterrupted run of the same config, whose integer records (jump counts,
transitions, per-trajectory jumps and heat) a resumed run must reproduce exactly, and whose
averages it must reproduce to 1e-12 (compensated sums: ~1e-16 in practice).
"""

from __future__ import annotations

import contextlib
import io
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import helpers
import numpy as np
import pytest

from jumps.runtime import cli
from jumps.runtime.io import read_results

ROOT = Path(__file__).resolve().parents[2]
MPIEXEC = Path(sys.executable).parent / "mpiexec"
ENV = {**os.environ, "PYTHONPATH": str(ROOT), "JUMPS_BUILD_BLOCK": "128"}
EXACT_KEYS = ("jump_counts", "transition_from", "transition_to", "transition_count",
              "n_jumps", "heat", "trajectory_index", "emissions", "absorptions", "dephasings",
              "first_jump_time", "initial_level", "final_level", "final_energy")
FLOAT_KEYS = ("populations", "rho", "rho_diagonal", "expect_sz_0", "expect_P",
              "occupation_time")

# A 3-spin chain from a product state (the channels generator); "P.npy" is an observable read
# from a file beside the config (the fingerprint hashes its bytes).
CHANNELS = {
    "system": {"model": "tfim_chain", "params": {"n": 3, "h": 1.1, "hz": 0.3}},
    "baths": [helpers.ohmic_bath("sx:*", eta=0.02)],
    "initial_state": {"kind": "product", "state": "+dd"},
    "run": {"t_final": 30.0, "n_times": 31, "seed": 7, "checkpoint_seconds": 0.001,
            "observables": {"sz_0": "sz:0", "P": "P.npy"}, "trajectories": 2000,
            "chunk_size": 100},
}
# The rates generator: an 8-spin chain (256 levels) from the Gibbs state.
RATES = helpers.changed_config(
    CHANNELS, system={"params": {"n": 8, "h": 1.05, "hz": 0.5}},
    initial_state={"kind": "gibbs", "state": None},
    run={"t_final": 50.0, "n_times": 26, "generator": "rates", "cache": False,
         "observables": ["sz:0"], "trajectories": 20000, "chunk_size": 500})


def write_config(directory: Path, base: dict = CHANNELS, **run) -> Path:
    """``directory/config.toml`` of ``base`` with ``[run]`` changes, and its ``P.npy``."""
    directory.mkdir(parents=True, exist_ok=True)
    d = 2 ** base["system"]["params"]["n"]
    if not (directory / "P.npy").exists():
        np.save(directory / "P.npy", np.diag(np.arange(d, dtype=float)))
    path = directory / "config.toml"
    path.write_text(helpers.config_toml(base, run=run))
    return path


def run_here(*args, env: dict | None = None) -> tuple[int, str]:
    """``python -m jumps run ARGS --quiet`` in this process (serial): (exit status, stderr)."""
    saved = {key: os.environ.get(key) for key in ("JUMPS_MPI", *(env or {}))}
    os.environ.update({"JUMPS_MPI": "0", **(env or {})})
    stderr = io.StringIO()
    try:
        with contextlib.redirect_stderr(stderr), contextlib.redirect_stdout(io.StringIO()):
            status = cli.main(["run", *map(str, args), "--quiet"])
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    return status, stderr.getvalue()


def mpiexec() -> Path:
    if not MPIEXEC.exists():
        pytest.skip("mpiexec not found beside the Python executable (install the 'mpi' extra)")
    return MPIEXEC


def command(args, ranks: int | None) -> list[str]:
    prefix = [] if ranks is None else [str(mpiexec()), "-n", str(ranks)]
    return prefix + [sys.executable, "-m", "jumps", "run", *map(str, args), "--quiet"]


def run_process(args, ranks: int | None = None, env: dict | None = None,
                timeout: float = 120) -> subprocess.CompletedProcess:
    """``python -m jumps run ARGS`` in a subprocess, serial (``ranks`` None) or under mpiexec."""
    environment = {**ENV, **(env or {})}
    if ranks is None:
        environment["JUMPS_MPI"] = "0"
    return subprocess.run(command(args, ranks), env=environment, capture_output=True,
                          text=True, timeout=timeout, check=False)


def start_process(args, ranks: int | None = None, env: dict | None = None) -> subprocess.Popen:
    """The same, started in a process group of its own (to signal it and all its ranks)."""
    environment = {**ENV, **(env or {})}
    if ranks is None:
        environment["JUMPS_MPI"] = "0"
    return subprocess.Popen(command(args, ranks), env=environment, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)


def wait_for_checkpoints(process: subprocess.Popen, out: Path, count: int,
                         timeout: float = 120) -> None:
    """Until ``count`` checkpoint files exist (the run has finished chunks on every rank)."""
    deadline = time.monotonic() + timeout
    while len(list((out / "checkpoint").glob("a*-r*.npz"))) < count:
        if process.poll() is not None:
            raise AssertionError(f"the run ended ({process.returncode}) before its checkpoints: "
                                 f"{process.stderr.read()}")
        if time.monotonic() > deadline:
            kill_group(process)
            raise AssertionError("no checkpoint in time")
        time.sleep(0.02)


def kill_group(process: subprocess.Popen, signum: int = signal.SIGKILL) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signum)


def assert_same(reference: Path, other: Path, trajectories: int | None = None) -> None:
    """``other`` holds the uninterrupted result ``reference``: integer records identical,
    averages to 1e-12, standard errors to 1e-12 of their largest value."""
    a, _ = read_results(reference)
    b, meta = read_results(other)
    if trajectories is not None:
        assert meta["trajectories"] == trajectories
    for key in EXACT_KEYS:
        assert np.array_equal(a[key], b[key]), f"{key} differs"
    for key in FLOAT_KEYS:
        if key in a:
            scale = np.maximum(np.abs(a[key]), 1e-300)
            assert np.max(np.abs(a[key] - b[key]) / scale) < 1e-12, f"{key} differs"
            stderr = f"{key}_stderr"
            if stderr in a:
                bound = 1e-12 * max(np.max(np.abs(a[stderr])), 1e-300)
                assert np.max(np.abs(a[stderr] - b[stderr])) <= bound, f"{stderr} differs"


def consistent(out: Path) -> dict:
    """The visible result of ``out`` (through the names readers use) is one commit: run.json
    and results.npz agree on the run (trajectory count, run id). Returns run.json."""
    import json

    meta = json.loads((out / "run.json").read_text())
    with np.load(out / "results.npz") as data:
        rows = data["trajectory_index"].size
    assert rows == meta["trajectories"], "results.npz and run.json are of different runs"
    return meta


def one_line_error(stderr: str) -> str:
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("jumps: error: "), stderr
    assert "Traceback" not in stderr
    return lines[0]


def run_forked(*args, env: dict | None = None, timeout: float = 120) -> tuple[int, str]:
    """``run_here`` in a forked child, for faults that end the process (``kill`` injected: the
    child ends at once, as under ``kill -9``, with no cleanup). (exit status, stderr)."""
    import tempfile

    with tempfile.TemporaryFile("w+") as log:
        pid = os.fork()
        if pid == 0:  # the child: never returns into pytest
            status = 99
            try:
                sys.stderr = open(log.fileno(), "w", buffering=1, closefd=False)  # noqa: SIM115
                sys.stdout = open(os.devnull, "w")  # noqa: SIM115
                os.environ.update({"JUMPS_MPI": "0", **(env or {})})
                status = cli.main(["run", *map(str, args), "--quiet"])
            finally:
                sys.stderr.flush()
                os._exit(status)
        deadline = time.monotonic() + timeout
        while True:
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                break
            if time.monotonic() > deadline:
                os.kill(pid, signal.SIGKILL)
                raise AssertionError("the forked run did not end")
            time.sleep(0.01)
        log.seek(0)
        return os.waitstatus_to_exitcode(status), log.read()
