"""A plan of trajectories: what every rank (or the Python API) needs to run chunks of a run.

The plan is generic: its :attr:`Plan.arrays` are whatever the generator's
:meth:`~jumps.generators.base.Unravelling.pack` made, and everything generator-specific goes
through the unravelling that :attr:`Plan.unravelling` names.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from .. import generators
from ..core.random import seed_key
from ..core.records import trajectory_tables
from ..errors import ConfigError
from ..generators.base import InitialState
from .statistics import steady_start

# A chunk costs ~0.2 ms of Python and dispatch, as much as 100 fast pure-mode trajectories:
# runs are cut into about TARGET_CHUNKS chunks (load balance, progress, checkpoints) of at
# most MAX_CHUNK trajectories, and at least MIN_CHUNK (or an eighth of the run).
TARGET_CHUNKS = 200
MAX_CHUNK = 1000
MIN_CHUNK = 250


def default_chunk_size(trajectories: int) -> int:
    """Trajectories per chunk (see :data:`TARGET_CHUNKS`)."""
    return int(min(MAX_CHUNK, max(-(-trajectories // TARGET_CHUNKS),
                                  min(MIN_CHUNK, -(-trajectories // 8)), 1)))


@dataclass
class Plan:
    """Trajectories ``0 .. ntraj-1`` of one generator, cut into chunks.

    Attributes
    ----------
    kind : str
        The generator's registry name.
    times : (T,) float
        Output times, ascending from >= 0; the last ends the trajectories.
    ntraj, chunk : int
        Trajectories, and trajectories per chunk.
    key : (2,) uint64
        The random key (:func:`jumps.core.random.seed_key`); trajectory ``i`` draws from the
        stream of ``(key, i)``.
    names : list of str
        Observable names, in order.
    density : str
        ``full``, ``diagonal`` or ``none``: what is stored of the density matrix.
    n_baths : int
    arrays : namedtuple
        The kernel's input (:meth:`~jumps.generators.base.Unravelling.pack`); under MPI its
        arrays live in shared memory.
    state : InitialState
        The initial state, resolved (:func:`resolve_start`); on rank 0 only.
    """

    kind: str
    times: np.ndarray
    ntraj: int
    chunk: int
    key: np.ndarray
    names: list[str]
    density: str
    n_baths: int
    arrays: Any = None
    state: InitialState | None = None  # as resolved (rank 0; not shared)

    @classmethod
    def create(cls, generator, state: InitialState, times: np.ndarray, ntraj: int, seed: int,
               observables: dict[str, Any], density: str, chunk: int = 0,
               n_baths: int | None = None) -> Plan:
        """The plan of ``ntraj`` trajectories of ``generator`` from ``state``.

        ``density`` is as asked (``auto`` allowed); the generator refuses what it cannot run
        (:meth:`~jumps.generators.base.Unravelling.check`)."""
        unravelling = generators.of(generator)
        unravelling.check(state, density)
        stored = unravelling.stored_density(density, generator.dimension)
        times = np.ascontiguousarray(times, dtype=float)
        state = resolve_start(generator, state)
        arrays = unravelling.pack(generator, state, times, observables, stored)
        return cls(kind=unravelling.name, times=times, ntraj=ntraj,
                   chunk=chunk or default_chunk_size(ntraj), key=seed_key(seed),
                   names=list(observables), density=stored,
                   n_baths=len(generator.baths) if n_baths is None else n_baths, arrays=arrays,
                   state=state)

    @property
    def unravelling(self):
        return generators.get(self.kind)

    @property
    def n_chunks(self) -> int:
        return -(-self.ntraj // self.chunk)

    def chunk_range(self, chunk: int) -> tuple[int, int]:
        """``(first trajectory, count)`` of a chunk."""
        first = chunk * self.chunk
        return first, min(self.chunk, self.ntraj - first)

    def rows(self, chunks) -> np.ndarray:
        """Global trajectory indices of a set of chunks, ascending."""
        ranges = [self.chunk_range(c) for c in sorted(chunks)]
        if not ranges:
            return np.zeros(0, dtype=np.int64)
        return np.concatenate([np.arange(first, first + n) for first, n in ranges]).astype(np.int64)

    def runner(self):
        return self.unravelling.runner(self)

    def warm_up(self) -> None:
        self.unravelling.warm_up(self)

    def finalize(self, generator, sums: dict[str, np.ndarray], n: int) -> dict[str, np.ndarray]:
        return self.unravelling.finalize(generator, self, sums, n)

    def observable_moments(self, sums: dict[str, np.ndarray]):
        return self.unravelling.observable_moments(self, sums)

    @classmethod
    def share(cls, root_plan: Plan | None, comm) -> Plan:
        """Rank 0's plan on every rank (call on all ranks; ``root_plan`` is None elsewhere):
        the arrays through :meth:`jumps.runtime.parallel.Comm.share` (MPI shared memory), the
        rest, with the layout of the arrays, by a small broadcast."""
        layout, arrays, light = None, None, None
        if comm.rank == 0:
            layout, arrays = split_arrays(root_plan.arrays)
            light = replace(root_plan, arrays=None, state=None)
        light, layout = comm.bcast((light, layout))
        state = root_plan.state if comm.rank == 0 else None  # rank 0's business only
        return replace(light, arrays=join_arrays(layout, comm.share(arrays)), state=state)


def resolve_start(generator, state: InitialState) -> InitialState:
    """``state`` with the weights of the eigenstates to draw from filled in (``populations``):
    for ``gibbs`` the Gibbs state at the baths' common temperature, for ``populations`` the
    given level weights spread evenly over each level's eigenstates, for ``steady_state`` the
    generator's stationary state (:func:`jumps.runtime.statistics.steady_start`)."""
    if state.kind == "gibbs":
        try:
            return replace(state, populations=generator.gibbs_populations())
        except ValueError:
            raise ConfigError("initial_state.kind", "gibbs needs all baths thermal and at one "
                                                    "temperature (for baths at several "
                                                    "temperatures start in 'steady_state')") from None
    if state.kind == "populations":
        return replace(state, populations=level_weights(generator.level_ptr,
                                                        state.level_populations))
    if state.kind == "steady_state":
        return steady_start(generator, state)
    return state


def level_weights(level_ptr: np.ndarray, populations: np.ndarray) -> np.ndarray:
    """Per-eigenstate weights from per-level ``populations`` (a level's weight spread evenly
    over its eigenstates: the state is diagonal and invariant inside degenerate levels)."""
    sizes = np.diff(level_ptr)
    if populations.size != sizes.size:
        raise ConfigError("initial_state.populations",
                          f"{populations.size} values for the {sizes.size} levels of this "
                          f"spectrum (ascending energies; degenerate eigenvalues form one level)")
    return np.repeat(populations / sizes, sizes)


def recorded_trajectories(plan: Plan, runner, records: dict[str, np.ndarray], rows: np.ndarray,
                          record_jumps: int, record_trajectories: int) -> dict[str, np.ndarray]:
    """The jump list of the first ``record_jumps`` trajectories and the level and heat tables
    (:func:`jumps.core.records.trajectory_tables`) of the first ``record_trajectories``, from
    one replay of the trajectories both need (trajectories ``0 .. K-1`` of the run: those of
    the first chunks, always finished)."""
    count = min(max(record_jumps, record_trajectories), rows.size)
    if count == 0:
        return {}
    jumps = runner.jump_list(count)
    out = {}
    if record_jumps:
        keep = jumps["jump_trajectory"] < record_jumps
        out.update({name: value[keep] for name, value in jumps.items()})
    if record_trajectories:
        out.update(trajectory_tables(jumps, records["initial_level"], plan.times, plan.n_baths,
                                     min(record_trajectories, rows.size)))
    return out


def split_arrays(tree, prefix: str = "") -> tuple[Any, dict[str, np.ndarray]]:
    """A namedtuple of arrays (or of such namedtuples) as a layout, the same tuple with each
    array replaced by its name, and a flat ``{name: array}``."""
    flat: dict[str, np.ndarray] = {}
    values = {}
    for name, value in tree._asdict().items():
        if isinstance(value, tuple) and hasattr(value, "_asdict"):
            values[name], inner = split_arrays(value, f"{prefix}{name}.")
            flat.update(inner)
        else:
            values[name] = f"{prefix}{name}"
            flat[f"{prefix}{name}"] = value
    return tree._replace(**values), flat


def join_arrays(layout, flat: dict[str, np.ndarray]):
    """Inverse of :func:`split_arrays`."""
    values = {}
    for name, value in layout._asdict().items():
        values[name] = join_arrays(value, flat) if isinstance(value, tuple) else flat[value]
    return layout._replace(**values)
