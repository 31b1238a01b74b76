"""BLAS threads set at run time (jumps/runtime/blas.py): one per MPI rank for the trajectories.

Oracle: the thread count OpenBLAS itself reports (its ``*_get_num_threads``), before, inside and
after the block. Under MPI the run records it (``blas_threads``: tests/integration/test_mpi.py).
"""

from __future__ import annotations

import helpers
import numpy as np
import pytest
import scipy.linalg  # noqa: F401  (loads scipy's own OpenBLAS)

from jumps.runtime import blas

OPENBLAS = helpers.NUMPY_OPENBLAS


@pytest.fixture
def two_threads(monkeypatch):
    """No OpenBLAS thread variable, and every OpenBLAS at 2 threads (as on a 2-core machine,
    whatever this one has: the test sees a change); the counts are restored after the test."""
    for name in blas.THREAD_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    controls = blas.openblas_controls()
    original = [get() for _, get, _ in controls]
    for _, _, set_ in controls:
        set_(2)
    yield len(controls)
    for (_, _, set_), value in zip(controls, original):
        set_(value)


def counts() -> list[int]:
    return [get() for _, get, _ in blas.openblas_controls()]


@pytest.mark.skipif(not OPENBLAS, reason="numpy is not built with OpenBLAS")
def test_numpy_and_scipy_openblas_are_found():
    paths = [path for path, _, _ in blas.openblas_controls()]
    assert any("numpy" in p for p in paths), paths
    assert any("scipy" in p for p in paths), paths


@pytest.mark.skipif(not OPENBLAS, reason="numpy is not built with OpenBLAS")
def test_one_thread_inside_the_block_and_restored_after(two_threads):
    assert blas.current() == 2
    with blas.one_thread_per_rank(True) as changed:
        assert len(changed) == two_threads >= 1
        assert counts() == [1] * two_threads and blas.current() == 1
        a = np.random.default_rng(0).standard_normal((300, 300))
        assert np.allclose(a.T @ a, (a.T @ a).T)  # the BLAS still works at one thread
    assert counts() == [2] * two_threads
    with pytest.raises(KeyboardInterrupt), blas.one_thread_per_rank(True):
        raise KeyboardInterrupt  # restored on the way out of an interrupted run too
    assert counts() == [2] * two_threads


@pytest.mark.skipif(not OPENBLAS, reason="numpy is not built with OpenBLAS")
def test_serial_and_user_choice_leave_the_count_alone(monkeypatch, two_threads):
    with blas.one_thread_per_rank(False) as changed:
        assert changed == [] and counts() == [2] * two_threads
    for name in blas.THREAD_VARIABLES:
        monkeypatch.setenv(name, "2")
        with blas.one_thread_per_rank(True) as changed:
            assert changed == [] and counts() == [2] * two_threads
        monkeypatch.delenv(name)


@pytest.mark.skipif(not OPENBLAS, reason="numpy is not built with OpenBLAS")
def test_other_blas_variables_and_empty_values_do_not_switch_it_off(monkeypatch, two_threads):
    """MKL_NUM_THREADS (which OpenBLAS ignores; clusters export it) and an empty
    OMP_NUM_THREADS (unset, for OpenBLAS) leave the one thread per rank in place."""
    monkeypatch.setenv("MKL_NUM_THREADS", "1")
    monkeypatch.setenv("BLIS_NUM_THREADS", "1")
    monkeypatch.setenv("OMP_NUM_THREADS", "")
    with blas.one_thread_per_rank(True) as changed:
        assert len(changed) == two_threads and counts() == [1] * two_threads
