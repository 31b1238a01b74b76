"""MPI runs under the mpiexec of the MPICH wheel (the ``mpi`` extra): results independent of
the rank count, prompt failure on one rank, resume after kill -9.

Oracle: the serial run of the same config and seed. Integer counts (jumps per channel,
transitions, per-trajectory jumps and heat) must be identical; float averages agree to 1e-12
relative (compensated summation makes them order-independent to ~1e-16); standard errors,
differences of sums, to 1e-12 of their largest value.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import helpers
import numpy as np
import pytest

from jumps.runtime import blas
from jumps.runtime.io import read_results

pytestmark = pytest.mark.mpi

ROOT = Path(__file__).resolve().parents[2]
MPIEXEC = Path(sys.executable).parent / "mpiexec"
OPENBLAS = helpers.NUMPY_OPENBLAS
# No *_NUM_THREADS: the run chooses the BLAS threads (one per rank under MPI, blas_threads).
ENV = {**{k: v for k, v in os.environ.items() if k not in blas.THREAD_VARIABLES},
       "PYTHONPATH": str(ROOT)}
EXACT_KEYS = ("jump_counts", "transition_from", "transition_to", "transition_count",
              "n_jumps", "heat", "trajectory_index", "emissions", "absorptions", "dephasings",
              "first_jump_time", "initial_level", "final_level", "final_energy")
FLOAT_KEYS = ("populations", "rho", "expect_sz_0", "expect_sx_0", "occupation_time")
# Standard errors are derived from differences of sums: compared relative to their largest value.
STDERR_KEYS = ("populations_stderr", "rho_stderr", "expect_sz_0_stderr")

# A 3-spin chain from a product state (the channels generator); each test sets the trajectories
# and the chunk size.
CONFIG = {
    "system": {"model": "tfim_chain", "params": {"n": 3, "h": 1.1, "hz": 0.3}},
    "baths": [helpers.ohmic_bath("sx:*", eta=0.02)],
    "initial_state": {"kind": "product", "state": "+dd"},
    "run": {"t_final": 30.0, "n_times": 31, "seed": 5, "checkpoint_seconds": 0.2,
            "observables": ["sz:0", "sx:0"]},
}

# The rates generator (a 256-level chain from the Gibbs state): sparse transition counts.
RATES_CONFIG = helpers.changed_config(
    CONFIG, system={"params": {"n": 8, "h": 1.05, "hz": 0.5}},
    initial_state={"kind": "gibbs", "state": None},
    run={"t_final": 50.0, "n_times": 26, "generator": "rates", "cache": False})


def _mpiexec() -> Path:
    if not MPIEXEC.exists():
        pytest.skip("mpiexec not found beside the Python executable (install the 'mpi' extra)")
    return MPIEXEC


def _config(tmp_path: Path, trajectories: int = 3000, chunk: int = 50,
            base: dict = CONFIG) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(helpers.config_toml(base, run={"trajectories": trajectories,
                                                   "chunk_size": chunk}))
    return path


def _run(args: list[str], ranks: int | None, timeout: float = 120) -> subprocess.CompletedProcess:
    prefix = [] if ranks is None else [str(_mpiexec()), "-n", str(ranks)]
    return subprocess.run(prefix + [sys.executable, "-m", "jumps", "run", *args, "--quiet"], check=False,
                          env=ENV, capture_output=True, text=True, timeout=timeout)


# The rates generator is built by all ranks together, in blocks of source states dealt out
# round-robin: 128 of the 256, so that 2 ranks get one each and of 3 ranks one gets none.
ENV["JUMPS_BUILD_BLOCK"] = "128"


def _assert_same(reference: Path, other: Path) -> None:
    a, _ = read_results(reference)
    b, meta = read_results(other)
    for key in EXACT_KEYS:
        assert np.array_equal(a[key], b[key]), f"{key} differs ({meta['ranks']} ranks)"
    for key in FLOAT_KEYS:
        if key not in a:
            continue
        scale = np.maximum(np.abs(a[key]), 1e-300)
        assert np.max(np.abs(a[key] - b[key]) / scale) < 1e-12, f"{key} differs"
    for key in STDERR_KEYS:
        if key not in a:
            continue
        assert np.max(np.abs(a[key] - b[key])) < 1e-12 * np.max(np.abs(a[key])), f"{key} differs"


@pytest.mark.parametrize("generator", ["channels", "rates"])
def test_results_independent_of_rank_count(tmp_path, generator):
    """Serial, and 1, 2, 3 ranks (rates: 2 and 3, each building the generator together):
    identical counts, averages to 1e-12."""
    config = (_config(tmp_path) if generator == "channels"
              else _config(tmp_path, 20000, 500, RATES_CONFIG))
    serial = _run([str(config), "--out", str(tmp_path / "serial")], None)
    assert serial.returncode == 0, serial.stderr
    assert read_results(tmp_path / "serial")[1]["generator"] == generator
    serial_threads = read_results(tmp_path / "serial")[1]["blas_threads"]
    if OPENBLAS and len(os.sched_getaffinity(0)) > 1:  # serial runs keep OpenBLAS's default
        assert serial_threads > 1
    for ranks in ((1, 2, 3) if generator == "channels" else (2, 3)):
        out = tmp_path / f"n{ranks}"
        result = _run([str(config), "--out", str(out)], ranks)
        assert result.returncode == 0, result.stderr
        meta = read_results(out)[1]
        assert meta["ranks"] == ranks
        # One OpenBLAS thread per rank for the trajectories, as OpenBLAS reports it there.
        assert meta["blas_threads"] == (1 if ranks > 1 else serial_threads)
        _assert_same(tmp_path / "serial", out)


def test_failure_on_one_rank_ends_all_promptly(tmp_path):
    config = _config(tmp_path, trajectories=200000)
    start = time.monotonic()
    result = subprocess.run(
        [str(_mpiexec()), "-n", "2", sys.executable, "-m", "jumps", "run", str(config),
         "--out", str(tmp_path / "out"), "--quiet"],
        env={**ENV, "JUMPS_INJECT_FAULT": "1:2"}, capture_output=True, text=True, timeout=60,
        check=False)
    elapsed = time.monotonic() - start
    assert result.returncode != 0
    assert "injected failure on rank 1" in result.stderr
    assert elapsed < 30, f"took {elapsed:.1f} s to end"
    assert not (tmp_path / "out" / "run.json").exists()


def test_bad_input_under_mpi_is_one_line_exit_2(tmp_path):
    config = tmp_path / "bad.toml"
    config.write_text(_config(tmp_path).read_text().replace("temperature = 1.0", "temperature = -1.0"))
    result = _run([str(config), "--out", str(tmp_path / "out")], 2, timeout=60)
    assert result.returncode == 2
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert lines == ["jumps: error: baths[0].temperature: must be positive, got -1.0"], result.stderr


def _kill_matching(marker: str) -> None:
    """SIGKILL every process whose command line mentions ``marker`` (mpiexec and all ranks)."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if marker in command:
            try:
                os.kill(int(entry.name), signal.SIGKILL)
            except ProcessLookupError:
                pass


@pytest.mark.parametrize("generator", ["channels", "rates"])
def test_kill_and_resume_gives_the_uninterrupted_result(tmp_path, generator):
    """kill -9 of mpiexec and every rank mid-run, then --resume on another rank count."""
    config = (_config(tmp_path, trajectories=40000, chunk=100) if generator == "channels"
              else _config(tmp_path, 300000, 500, RATES_CONFIG))
    out = tmp_path / "killed"
    process = subprocess.Popen(
        [str(_mpiexec()), "-n", "2", sys.executable, "-m", "jumps", "run", str(config),
         "--out", str(out), "--quiet"], env=ENV, stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL, start_new_session=True)
    checkpoint = out / "checkpoint"
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline and len(list(checkpoint.glob("a*-r*.npz"))) < 2:
        time.sleep(0.05)
    _kill_matching(str(out))
    process.wait(timeout=30)
    assert not (out / "run.json").exists(), "the run finished before it could be killed"
    assert list(checkpoint.glob("a001-r*.npz")), "no checkpoint was written"
    resumed = _run([str(config), "--out", str(out), "--resume"], 3)
    assert resumed.returncode == 0, resumed.stderr
    assert read_results(out)[1]["attempts"] == 2
    reference = _run([str(config), "--out", str(tmp_path / "reference")], None)
    assert reference.returncode == 0, reference.stderr
    _assert_same(tmp_path / "reference", out)
    assert not checkpoint.exists()
