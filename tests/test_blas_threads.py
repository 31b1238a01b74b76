"""BLAS threads set at run time (jumps/runtime/blas.py): one per MPI rank for the trajectories.

Oracle: the thread count OpenBLAS itself reports (its ``*_get_num_threads``), before, inside and
after the block. Under MPI the run records it (``blas_threads``: tests/integration/test_mpi.py).
"""

from __future__ import annotations

import numpy as np
import pytest
import scipy.linalg  # noqa: F401  (loads scipy's own OpenBLAS)

from jumps.runtime import blas

OPENBLAS = "openblas" in str(np.show_config(mode="dicts")["Build Dependencies"]["blas"]).lower()


@pytest.fixture
def no_thread_variables(monkeypatch):
    for name in blas.THREAD_VARIABLES:
        monkeypatch.delenv(name, raising=False)


def counts() -> list[int]:
    return [get() for _, get, _ in blas.openblas_controls()]


@pytest.mark.skipif(not OPENBLAS, reason="numpy is not built with OpenBLAS")
def test_numpy_and_scipy_openblas_are_found():
    paths = [path for path, _, _ in blas.openblas_controls()]
    assert any("numpy" in p for p in paths), paths
    assert any("scipy" in p for p in paths), paths


@pytest.mark.skipif(not OPENBLAS, reason="numpy is not built with OpenBLAS")
def test_one_thread_inside_the_block_and_restored_after(no_thread_variables):
    controls = blas.openblas_controls()
    for _, _, set_ in controls:
        set_(2)  # as on a 2-core machine, whatever this one has
    with blas.one_thread_per_rank(True) as changed:
        assert len(changed) == len(controls) >= 1
        assert counts() == [1] * len(controls)
        a = np.random.default_rng(0).standard_normal((300, 300))
        assert np.allclose(a.T @ a, (a.T @ a).T)  # the BLAS still works at one thread
    assert counts() == [2] * len(controls)


def test_serial_and_user_choice_leave_the_count_alone(monkeypatch, no_thread_variables):
    before = counts()
    with blas.one_thread_per_rank(False) as changed:
        assert changed == [] and counts() == before
    monkeypatch.setenv("OMP_NUM_THREADS", "2")
    with blas.one_thread_per_rank(True) as changed:
        assert changed == [] and counts() == before
    assert counts() == before
