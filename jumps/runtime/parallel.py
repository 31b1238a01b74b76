"""MPI, in one place: a communicator wrapper, the chunk dispatcher, and failure handling.

Everything else takes a :class:`Comm` (or nothing) and never imports mpi4py. The serial path
is the MPI path with one rank: :func:`get_comm` returns a one-rank :class:`Comm` when the
process was not started by ``mpirun``/``mpiexec``/``srun``, and mpi4py is then never imported,
so serial runs need no MPI library.

Dynamic load balancing: rank 0 runs a light dispatcher thread that hands out chunk numbers on a
private communicator (it polls with ``Iprobe`` and sleeps 1 ms when idle, so it costs no core;
MPICH would need an async-progress thread, which spins, for one-sided counters). The kernels
release the GIL, so rank 0 computes while its dispatcher answers.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from ..errors import ConfigError, RunFailure

# Environment variables set by MPI launchers (MPICH/Hydra, Open MPI, PMIx, Intel MPI, Slurm PMI).
_LAUNCHER_VARIABLES = ("PMI_SIZE", "PMI_RANK", "OMPI_COMM_WORLD_SIZE", "PMIX_RANK",
                       "MPI_LOCALNRANKS", "HYDRA_CONTROL_FD", "I_MPI_HYDRA_HOST_FILE")

_REQUEST, _REPLY, _ARRAY = 11, 12, 13
_PIECE = 1 << 30  # bytes per MPI message: counts stay below 2^31 (MPI-3 libraries)


def launched_by_mpi() -> bool:
    """True when an MPI launcher started this process (``JUMPS_MPI=0/1`` overrides)."""
    forced = os.environ.get("JUMPS_MPI")
    if forced is not None:
        return forced not in ("0", "", "false", "no")
    return any(name in os.environ for name in _LAUNCHER_VARIABLES)


class Comm:
    """A communicator: one rank (serial) or an ``MPI.COMM_WORLD`` duplicate.

    Attributes
    ----------
    rank, size : int
    """

    def __init__(self, mpi_comm: Any = None):
        self._comm = mpi_comm
        self._windows: list = []
        self.rank = 0 if mpi_comm is None else mpi_comm.Get_rank()
        self.size = 1 if mpi_comm is None else mpi_comm.Get_size()

    @property
    def is_parallel(self) -> bool:
        return self._comm is not None and self.size > 1

    def barrier(self, poll: float = 0.005) -> None:
        """Wait for every rank, sleeping between tests: MPICH's blocking waits spin a core,
        which would take it from rank 0's multithreaded BLAS while it builds the generator
        (3x slower builds on 2 ranks)."""
        if self._comm is None:
            return
        request = self._comm.Ibarrier()
        while not request.Test():
            time.sleep(poll)

    def bcast(self, value: Any) -> Any:
        """Broadcast a Python object from rank 0."""
        return value if self._comm is None else self._comm.bcast(value, root=0)

    def allgather(self, value: Any) -> list:
        return [value] if self._comm is None else self._comm.allgather(value)

    def send_array(self, array: np.ndarray, dest: int) -> None:
        """Send a C-contiguous array to rank ``dest`` (as bytes, in pieces)."""
        data = _bytes(np.ascontiguousarray(array))
        for start in range(0, data.size, _PIECE):
            self._comm.Send(data[start:start + _PIECE], dest=dest, tag=_ARRAY)

    def receive_array(self, array: np.ndarray, source: int) -> None:
        """Receive :meth:`send_array`'s data into the C-contiguous view ``array``."""
        data = _bytes(array)
        for start in range(0, data.size, _PIECE):
            self._comm.Recv(data[start:start + _PIECE], source=source, tag=_ARRAY)

    def gather(self, value: Any) -> list | None:
        """Every rank's ``value`` on rank 0 (None elsewhere)."""
        return [value] if self._comm is None else self._comm.gather(value, root=0)

    def reduce_sum(self, array: np.ndarray) -> np.ndarray | None:
        """Element-wise sum over ranks, on rank 0 (None elsewhere)."""
        if self._comm is None:
            return array
        from mpi4py import MPI

        array = np.ascontiguousarray(array)
        out = np.empty_like(array) if self.rank == 0 else None
        self._comm.Reduce(array, out, op=MPI.SUM, root=0)
        return out

    def node_size(self) -> int:
        """The number of ranks on this rank's node (collective: call on every rank)."""
        if self._comm is None:
            return 1
        from mpi4py import MPI

        node = self._comm.Split_type(MPI.COMM_TYPE_SHARED, key=self.rank)
        size = node.Get_size()
        node.Free()
        return size

    def share(self, arrays: dict[str, np.ndarray] | None) -> dict[str, np.ndarray]:
        """Give every rank rank 0's read-only arrays (``arrays`` is ignored on other ranks).

        With MPI shared memory (the default) each node holds one copy, in windows allocated by
        its first rank and filled by a broadcast among the nodes' first ranks; the returned
        arrays are views of it and must not be written. ``JUMPS_SHARED_MEMORY=0`` broadcasts a
        private copy to every rank instead (for comparison).
        """
        if self._comm is None:
            return arrays
        from mpi4py import MPI

        layout = self.bcast({k: (v.shape, v.dtype) for k, v in arrays.items()}
                            if self.rank == 0 else None)
        if os.environ.get("JUMPS_SHARED_MEMORY", "1") in ("0", "false", "no"):
            out = {}
            for name, (shape, dtype) in layout.items():
                array = np.ascontiguousarray(arrays[name]) if self.rank == 0 else _aligned(
                    np.empty(int(np.prod(shape)) * dtype.itemsize + _ALIGN, np.uint8), shape, dtype)
                _broadcast(self._comm, _bytes(array))
                out[name] = array
            return out
        node = self._comm.Split_type(MPI.COMM_TYPE_SHARED, key=self.rank)
        leader = node.Get_rank() == 0
        leaders = self._comm.Split(0 if leader else MPI.UNDEFINED, key=self.rank)
        out = {}
        for name, (shape, dtype) in layout.items():
            dtype = np.dtype(dtype)
            count = int(np.prod(shape))
            if count == 0:
                out[name] = np.empty(shape, dtype=dtype)
                continue
            window = MPI.Win.Allocate_shared(count * dtype.itemsize + _ALIGN if leader else 0,
                                             1, comm=node)
            buffer, _ = window.Shared_query(0)
            array = _aligned(np.frombuffer(buffer, dtype=np.uint8), shape, dtype)
            if leader:
                if self.rank == 0:
                    array[...] = arrays[name]
                if leaders.Get_size() > 1:
                    _broadcast(leaders, _bytes(array))
            node.Barrier()
            self._windows.append(window)
            out[name] = array
        return out

    def free_shared(self) -> None:
        """Release the shared-memory windows (after the last use of shared arrays)."""
        for window in self._windows:
            window.Free()
        self._windows.clear()

    def dispatcher(self, next_chunk: Callable[[dict], int]) -> Dispatcher:
        """A chunk source. ``next_chunk(report)`` runs on rank 0 only and returns a chunk number
        (-1: no more work); ``report`` carries the asking rank's progress figures."""
        return Dispatcher(self, next_chunk)


_ALIGN = 64  # cache-line alignment of shared arrays (the kernels' 64-byte records)


def _aligned(raw: np.ndarray, shape: tuple, dtype: np.dtype) -> np.ndarray:
    """A ``shape``/``dtype`` view of the byte buffer ``raw``, starting on a cache line."""
    offset = -raw.ctypes.data % _ALIGN
    size = int(np.prod(shape)) * dtype.itemsize
    return raw[offset:offset + size].view(dtype).reshape(shape)


def _broadcast(comm, data: np.ndarray) -> None:
    """Bcast a byte array from rank 0 in pieces of ``_PIECE`` bytes."""
    for start in range(0, data.size, _PIECE):
        comm.Bcast(data[start:start + _PIECE], root=0)


def _bytes(array: np.ndarray) -> np.ndarray:
    """A contiguous array as bytes (MPI moves any dtype, structured ones included, this way)."""
    return array.reshape(-1).view(np.uint8)


class Dispatcher:
    """Hands out chunk numbers; rank 0 serves the other ranks from a thread."""

    def __init__(self, comm: Comm, next_chunk: Callable[[dict], int]):
        self.comm = comm
        self._next = next_chunk
        self._lock = threading.Lock()
        self._thread = None
        self._private = None
        if comm.is_parallel:
            self._private = comm._comm.Dup()
            if comm.rank == 0:
                self._running = comm.size - 1
                self._thread = threading.Thread(target=self._serve, daemon=True)
                self._thread.start()

    def request(self, report: dict) -> int:
        """The next chunk for this rank, or -1 when the work is done."""
        if self.comm.rank == 0:
            with self._lock:
                return self._next(report)
        self._private.send(report, dest=0, tag=_REQUEST)
        return self._private.recv(source=0, tag=_REPLY)

    def _serve(self) -> None:
        from mpi4py import MPI

        status = MPI.Status()
        while self._running > 0:
            if not self._private.Iprobe(source=MPI.ANY_SOURCE, tag=_REQUEST, status=status):
                time.sleep(0.001)
                continue
            source = status.Get_source()
            report = self._private.recv(source=source, tag=_REQUEST)
            with self._lock:
                chunk = self._next(report)
            if chunk < 0:
                self._running -= 1
            self._private.send(chunk, dest=source, tag=_REPLY)

    def close(self) -> None:
        """Wait until every rank has been told that the work is done."""
        if self._thread is not None:
            self._thread.join()
        if self._private is not None:
            self._private.Free()


# Called by abort_world before MPI_Abort, on the rank that aborts (the run's lock: rank 0 may be
# killed before its own cleanup runs).
ABORT_HOOKS: list[Callable[[], None]] = []


def abort_world(code: int) -> None:
    """End every rank of the MPI job now (used on an error only some ranks see)."""
    for hook in ABORT_HOOKS:
        try:
            hook()
        except Exception:  # noqa: BLE001, S110 - aborting anyway; a failed cleanup must not stop it
            pass
    sys.stdout.flush()
    sys.stderr.flush()
    try:
        from mpi4py import MPI
    except ImportError:
        raise SystemExit(code) from None
    MPI.COMM_WORLD.Abort(code)


def get_comm() -> Comm:
    """The world communicator when launched by MPI, else a one-rank Comm."""
    if not launched_by_mpi():
        return Comm(None)
    try:
        from mpi4py import MPI
    except ImportError as error:
        raise ConfigError("mpi", f"started by an MPI launcher but mpi4py is unavailable ({error}); "
                                 "install with: pip install '.[mpi]' (or build mpi4py against "
                                 "your cluster's MPI)") from None
    world = MPI.COMM_WORLD
    return Comm(world.Dup()) if world.Get_size() > 1 else Comm(None)


def agree_or_exit(comm: Comm, action: Callable[[], Any]) -> Any:
    """Run ``action`` on every rank; if it raises ConfigError (or RunFailure) anywhere, all
    ranks raise it (the first failing rank's) and leave with its exit status; rank 0 prints
    one line."""
    try:
        value, failure = action(), None
    except ConfigError as error:
        value, failure = None, (error.field, error.reason, type(error).__name__)
    comm.barrier()  # the others wait here, asleep, while rank 0 builds
    failures = [f for f in comm.allgather(failure) if f is not None]
    if failures:
        raise_agreed(failures[0])
    return value


def raise_agreed(failure: tuple[str, str, str]) -> None:
    """Raise ``(field, reason, class name)`` on this rank, marked as seen by every rank (no
    abort needed)."""
    field, reason, kind = failure
    error = (RunFailure if kind == "RunFailure" else ConfigError)(field, reason)
    error.agreed = True
    raise error


def inject_fault(rank: int, chunks_done: int) -> None:
    """Testing hook: ``JUMPS_INJECT_FAULT="R:N"`` raises on rank R after N chunks."""
    spec = os.environ.get("JUMPS_INJECT_FAULT")
    if spec:
        fault_rank, after = (int(x) for x in spec.split(":"))
        if rank == fault_rank and chunks_done >= after:
            raise RuntimeError(f"injected failure on rank {rank} after {chunks_done} chunks")
