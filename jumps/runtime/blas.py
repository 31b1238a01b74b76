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
driven through their ``*_set_num_threads*`` entry points (threadpoolctl's approach, for
OpenBLAS only). Elsewhere (no ``/proc``, MKL, Accelerate) nothing changes: set
``MKL_NUM_THREADS`` etc. to 1 in the job script (``mpi_runs/slurm_job.sh`` does). A user's own
``OPENBLAS_NUM_THREADS``, ``GOTO_NUM_THREADS`` or ``OMP_NUM_THREADS`` wins.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
from collections.abc import Iterator

# The variables OpenBLAS reads for its thread count (in this order): any of them set to a
# non-empty value means the user chose it. (MKL_NUM_THREADS and BLIS_NUM_THREADS are not read by
# OpenBLAS, and clusters often export them: they must not switch this off.)
THREAD_VARIABLES = ("OPENBLAS_NUM_THREADS", "GOTO_NUM_THREADS", "OMP_NUM_THREADS")

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
    # Anywhere in the path: Debian's OpenBLAS is .../openblas-pthread/libblas.so.3.
    paths = {p for p in paths if "openblas" in p.lower()}
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
    """Every loaded OpenBLAS at ``count`` threads inside the block, restored after it (also
    on an exception); yields the libraries changed (empty when none could be, or the user set
    one of :data:`THREAD_VARIABLES`)."""
    if user_choice():
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


def user_choice() -> bool:
    """Whether the user set OpenBLAS's thread count (a non-empty :data:`THREAD_VARIABLES`)."""
    return any(os.environ.get(name, "").strip() for name in THREAD_VARIABLES)


def current() -> int | None:
    """The largest thread count of the loaded OpenBLAS libraries (None: none found)."""
    return max((get() for _, get, _ in openblas_controls()), default=None)


def one_thread_per_rank(parallel: bool) -> contextlib.AbstractContextManager:
    """:func:`threads` (1) for a run on several MPI ranks, else a block that changes nothing."""
    return threads(1) if parallel else contextlib.nullcontext([])
