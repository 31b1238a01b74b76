"""Unravelling the rates generator: pack, run chunks, count transitions, average.

The Python layer around :mod:`jumps.generators.rates.kernels`. Transitions are counted sparsely, per ``(bath, from, to)`` key: a 14-spin chain
has 3.8e9 possible transitions, of which a run visits a few million at most.
"""

from __future__ import annotations

import numpy as np

from ...core.lanes import Initial, segmented_cumsum
from ...core.records import new_log, new_records
from ...core.sums import Accumulator, mean_stderr, sum_counts
from ...physics.spectrum import cluster_frequencies
from ..base import InitialState, replay_jumps
from . import kernels as rate_kernels
from .generator import RateGenerator


def pack_rate_engine(g: RateGenerator) -> rate_kernels.RateEngine:
    """The kernel's view of a rates generator (see :class:`~jumps.generators.rates.kernels.RateEngine`)."""
    d, n_baths = g.dimension, g.n_baths
    ptr = np.zeros((n_baths, d + 1), dtype=np.int64)
    cols, vals, offset = [], [], 0
    for a, A in enumerate(g.couplings):
        ptr[a] = A.indptr + offset
        cols.append(A.indices.astype(np.int32))
        vals.append(A.data)
        offset += A.nnz
    values = np.concatenate(vals)
    if np.iscomplexobj(values) and not np.iscomplexobj(g.vectors):
        raise ValueError("complex couplings with real eigenvectors: build_rate_generator "
                         "should have worked in complex arithmetic")
    values = values.astype(np.result_type(values, g.vectors))
    t = g.rate_tables
    return rate_kernels.RateEngine(
        energies=g.energies, level_rate=g.level_rate, threshold=g.threshold, alias=g.alias,
        coarse_split=g.coarse_split, fine_split=g.fine_split,
        set_size=np.array([g.set_size], dtype=np.int64), vectors=g.vectors,
        coupling_ptr=ptr, coupling_col=np.concatenate(cols), coupling_val=values,
        rate_group=t.group, rate_thermal=t.thermal, rate_beta=t.beta, rate_ptr=t.ptr,
        rate_low=t.low, rate_high=t.high, rate_coefficients=t.coefficients)


def make_rate_initial(g: RateGenerator, state: InitialState) -> Initial:
    """Initial eigenstate ``state.index``, or eigenstates drawn with ``state.populations``
    (one per eigenstate: levels are eigenstates here); the states :meth:`Rates.refusal`
    accepts."""
    d = g.dimension
    if state.kind == "eigenstate":
        return Initial(psi=np.zeros((0, d), dtype=complex), cumulative=np.ones(1),
                       eigenstate=np.array([state.index % d]), vector=np.full(1, -1))
    return Initial(psi=np.zeros((0, d), dtype=complex),
                   cumulative=segmented_cumsum(state.populations, np.array([0, d])),
                   eigenstate=np.arange(d), vector=np.full(d, -1))


def new_rate_tally(d: int, times: np.ndarray, n_baths: int, count: int, capacity: int,
                   log: int = 0) -> rate_kernels.RateTally:
    """A zeroed tally for ``count`` trajectories, room for ``capacity`` transition keys, and a
    jump log of ``log`` entries."""
    return rate_kernels.RateTally(
        times=times, level_counts=np.zeros((d, times.size), dtype=np.int64),
        occupation_time=np.zeros(d), taken=np.empty(capacity, dtype=np.int64),
        n_taken=np.zeros(1, dtype=np.int64), exact_decisions=np.zeros(1, dtype=np.int64),
        **new_records(count, n_baths), **new_log(log))


# The kernel writes each jump's transition key into a buffer sized, before a chunk, for twice
# the most jumps per trajectory seen so far (first guess below) plus some slack; a chunk that
# overflows it is run again with room for all (chunks are deterministic). The sparse counts of
# this many chunks are merged in one sort.
FIRST_JUMPS_PER_TRAJECTORY = 64.0
BUFFER_SLACK = 4096
CHUNKS_PER_MERGE = 32


class RateChunkRunner:
    """Runs chunks of trajectories of a rates generator and keeps their sums
    (a :class:`jumps.generators.base.ChunkRunner`)."""

    def __init__(self, engine: rate_kernels.RateEngine, initial: Initial, times: np.ndarray,
                 key: np.ndarray, ntraj: int):
        self.engine, self.initial, self.times, self.key = engine, initial, times, key
        d, n_baths = engine.energies.size, engine.rate_group.size
        self.d, self.n_baths = d, n_baths
        self.level_counts = np.zeros((d, times.size), dtype=np.int64)
        self.occupation = Accumulator()
        self.occupation.add({"occupation_time": np.zeros(d)})
        self.records = new_records(ntraj, n_baths)
        self.exact_decisions = 0
        self._pending: list[tuple[np.ndarray, np.ndarray]] = []
        self._keys = np.zeros(0, dtype=np.int64)
        self._counts = np.zeros(0, dtype=np.int64)
        self._jumps_per_trajectory = FIRST_JUMPS_PER_TRAJECTORY

    def run(self, first: int, count: int) -> int:
        """Run trajectories ``first .. first+count-1``; returns their number of jumps."""
        capacity = int(2 * self._jumps_per_trajectory * count) + BUFFER_SLACK
        while True:
            tally = new_rate_tally(self.d, self.times, self.n_baths, count, capacity)
            jumps = int(rate_kernels.run_rate_chunk(self.engine, self.initial, tally, self.key,
                                                    first, count))
            if tally.n_taken[0] <= capacity:
                break
            capacity = int(tally.n_taken[0])  # the chunk is deterministic: run it again
        self._jumps_per_trajectory = max(self._jumps_per_trajectory, jumps / max(count, 1))
        self.level_counts += tally.level_counts
        self.occupation.add({"occupation_time": tally.occupation_time})
        for name, values in self.records.items():
            values[first:first + count] = getattr(tally, name)
        self.exact_decisions += int(tally.exact_decisions[0])
        self._pending.append(np.unique(tally.taken[:jumps], return_counts=True))
        if len(self._pending) >= CHUNKS_PER_MERGE:
            self._compact()
        return jumps

    def _compact(self) -> None:
        """Merge the chunks' counts into the running ones, in one sort."""
        if self._pending:
            keys = np.concatenate([self._keys, *(k for k, _ in self._pending)])
            counts = np.concatenate([self._counts, *(c for _, c in self._pending)])
            self._keys, self._counts = sum_counts(keys, counts)
            self._pending.clear()

    def sums(self, transitions: bool = True) -> dict[str, np.ndarray]:
        """The running sums; ``transitions=False`` leaves out the sparse transition counts
        (what the early stop needs, every chunk, without merging them)."""
        out = {"level_counts": self.level_counts.copy(),
               **self.occupation.sums(),
               "exact_decisions": np.array([self.exact_decisions])}
        if transitions:
            self._compact()
            out.update(transition_keys=self._keys.copy(), transition_counts=self._counts.copy())
        return out

    def jump_list(self, trajectories: int) -> dict[str, np.ndarray]:
        """Every jump of trajectories ``0..K-1``, replayed from their own streams
        (:func:`jumps.generators.base.replay_jumps`): trajectory, time, bath, Bohr frequency,
        source and target eigenstates."""
        def replay(index: int, capacity: int) -> dict[str, np.ndarray]:
            tally = new_rate_tally(self.d, self.times, self.n_baths, 1, capacity, log=capacity)
            rate_kernels.run_rate_chunk(self.engine, self.initial, tally, self.key, index, 1)
            return tally._asdict()

        jumps = replay_jumps(replay, trajectories)
        key = jumps.pop("jump_code")
        energies = self.engine.energies
        return {**jumps, "jump_bath": key // (self.d * self.d),
                "jump_frequency": energies[jumps["jump_from"]] - energies[jumps["jump_to"]]}


def finalize_rates(g: RateGenerator, sums: dict[str, np.ndarray], n: int,
                   observable_names: list[str], observable_diagonals: np.ndarray,
                   density: str) -> dict[str, np.ndarray]:
    """Means with standard errors, and the sparse transition and channel counts.

    Every trajectory is in one eigenstate at every output time, so a population is a mean of
    0/1 values and ``<O>`` one of ``O_mm`` values (no coherences in this unravelling).
    """
    counts = sums["level_counts"].T.astype(float)                  # (T, d)
    out: dict[str, np.ndarray] = {}
    out["populations"], out["populations_stderr"] = mean_stderr(counts, counts, n)
    for o, name in enumerate(observable_names):
        diagonal = observable_diagonals[o]
        out[f"expect_{name}"], out[f"expect_{name}_stderr"] = mean_stderr(
            counts @ diagonal, counts @ diagonal**2, n)
    if density == "diagonal":
        total, total_sq = g.user_basis_populations(counts), g.user_basis_populations(counts, 2)
        out["rho_diagonal"], out["rho_diagonal_stderr"] = mean_stderr(total, total_sq, n)
    out.update(transitions_and_channels(g, sums["transition_keys"], sums["transition_counts"]))
    out["occupation_time"] = sums["occupation_time"]
    return out


def transitions_and_channels(g: RateGenerator, keys: np.ndarray,
                             counts: np.ndarray) -> dict[str, np.ndarray]:
    """Transition counts per (bath, from, to) and jump counts per channel (bath, Bohr
    frequency), both only for what occurred: channels are the transitions' frequencies
    ``E_m - E_n`` grouped per bath within ``degeneracy_tol`` (by sorting)."""
    d = g.dimension
    bath, source, target = keys // (d * d), (keys // d) % d, keys % d
    out = {"transition_bath": bath, "transition_from": source, "transition_to": target,
           "transition_count": counts}
    frequency = g.energies[source] - g.energies[target]
    channel_bath, channel_frequency, jump_counts = [], [], []
    for a in range(g.n_baths):
        mine = bath == a
        if not np.any(mine):
            continue
        cluster, centres = cluster_frequencies(frequency[mine], g.degeneracy_tol)
        channel_bath.append(np.full(centres.size, a))
        channel_frequency.append(centres)
        jump_counts.append(np.bincount(cluster, weights=counts[mine], minlength=centres.size))
    if channel_bath:
        channel_bath = np.concatenate(channel_bath)
        channel_frequency = np.concatenate(channel_frequency)
        jump_counts = np.rint(np.concatenate(jump_counts)).astype(np.int64)
    else:
        channel_bath, channel_frequency = np.zeros(0, dtype=np.int64), np.zeros(0)
        jump_counts = np.zeros(0, dtype=np.int64)
    rate = np.zeros(channel_frequency.size)
    shift = np.zeros(channel_frequency.size)
    for a, b in enumerate(g.baths):
        mine = channel_bath == a
        if np.any(mine):
            rate[mine] = b.rates(channel_frequency[mine])
            if b.lamb_shift_enabled:
                shift[mine] = b.lamb_shift(channel_frequency[mine])
    out.update(channel_bath=channel_bath.astype(np.int64), channel_frequency=channel_frequency,
               channel_rate=rate, channel_lamb_shift=shift, jump_counts=jump_counts)
    return out
