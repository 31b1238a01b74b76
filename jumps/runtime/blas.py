"""The BLAS thread count, changed while a run goes: one thread per MPI rank for the trajectories.

Under ``mpirun -n K`` with K ranks on K cores, numpy's OpenBLAS starts a thread per core in
every rank, and the full density matrix's flush (``channels/output.py``: small matrix products
every few hundred trajectories) then oversubscribes the cores. Measured (TFIM N = 8, d = 256,
product state, ``density_matrix = "full"``, 2000 trajectories, ``mpirun -n 2`` on 2 cores):
100-105 trajectories/s with the default threads, 326-337 with one thread per rank. An
environment variable would also take the threads from rank 0's ``eigh`` during the build, while
the other ranks sleep (docs/design.md, "The MPI model"), so the count is set at run time for the
trajectory phase only (:func:`one_thread_per_rank`) and restored after it.

The OpenBLAS libraries are those loaded into the process (numpy's and scipy's wheels each bundle
one, ``libscipy_openblas*``; a system ``libopenblas`` too), found in ``/proc/self/maps`` and
driven through their ``*_set_num_threads*`` entry points, as threadpoolctl does. Elsewhere (no
``/proc``, MKL, Accelerate) nothing changes: set ``OPENBLAS_NUM_THREADS``/``MKL_NUM_THREADS``
to 1 in the job script (``mpi_runs/slurm_job.sh`` does). A user's own ``*_NUM_THREADS`` wins.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
from collections.abc import Iterator

# Any of these set means the user chose the BLAS threads.
THREAD_VARIABLES = ("OPENBLAS_NUM_THREADS", "GOTO_NUM_THREADS", "OMP_NUM_THREADS",
                    "MKL_NUM_THREADS", "BLIS_NUM_THREADS")

# Entry-point prefixes and suffixes of OpenBLAS builds (scipy-openblas wheels, plain, ILP64).
_PREFIXES = ("scipy_openblas", "openblas")
_SUFFIXES = ("64_", "_64", "")


def openblas_controls() -> list[tuple[str, object, object]]:
    """``(path, get_num_threads, set_num_threads)`` of every OpenBLAS loaded in this process."""
    try:
        with open("/proc/self/maps", encoding="utf-8", errors="replace") as maps:
            fields = [line.split(None, 5) for line in maps]  # address perms offset dev inode path
    except OSError:
        return []
    paths = {f[5].strip() for f in fields if len(f) == 6}
    paths = {p for p in paths if "openblas" in os.path.basename(p)}
    controls = []
    for path in sorted(p for p in paths if p.startswith("/") and ".so" in p):
        try:
            library = ctypes.CDLL(path)
        except OSError:
            continue
        for prefix in _PREFIXES:
            names = [(f"{prefix}_get_num_threads{s}", f"{prefix}_set_num_threads{s}")
                     for s in _SUFFIXES]
            found = next(((g, s) for g, s in names
                          if hasattr(library, g) and hasattr(library, s)), None)
            if found:
                get, set_ = getattr(library, found[0]), getattr(library, found[1])
                get.restype, get.argtypes = ctypes.c_int, []
                set_.restype, set_.argtypes = None, [ctypes.c_int]
                controls.append((path, get, set_))
                break
    return controls


@contextlib.contextmanager
def threads(count: int) -> Iterator[list[str]]:
    """Every loaded OpenBLAS at ``count`` threads inside the block, restored after it; yields
    the libraries changed (empty when none could be, or a ``*_NUM_THREADS`` variable is set)."""
    if any(name in os.environ for name in THREAD_VARIABLES):
        yield []
        return
    controls = openblas_controls()
    before = [get() for _, get, _ in controls]
    for _, _, set_ in controls:
        set_(count)
    try:
        yield [path for path, _, _ in controls]
    finally:
        for (_, _, set_), value in zip(controls, before):
            set_(value)


def one_thread_per_rank(parallel: bool) -> contextlib.AbstractContextManager:
    """:func:`threads` (1) for a run on several MPI ranks, else a block that changes nothing."""
    return threads(1) if parallel else contextlib.nullcontext([])
