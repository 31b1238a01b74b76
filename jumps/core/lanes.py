"""The interleaved-lane machinery both trajectory kernels share.

Pure-mode jumps are table look-ups at random places in large arrays, so a kernel advances up to
``LANES`` trajectories side by side, one jump each per round, prefetching what the next stage
reads (:func:`prefetch`). These are the pieces of that scheme that do not depend on the
generator: the per-lane state, handing the next trajectory to an idle lane (seeding its stream
and drawing its initial eigenstate), and the exponential wait in one eigenstate with the output
times it spans. Every trajectory draws from its own stream in the same order whatever the number
of lanes, so results do not depend on it.
"""

from __future__ import annotations

from collections import namedtuple

import numba
import numpy as np
from llvmlite import ir
from numba.core import cgutils
from numba.extending import intrinsic

from .random import seed_trajectory, uniform

# The initial state: one of n components, drawn with the cumulative weights (no draw when
# n = 1); a component is one eigenstate, or a superposition stored as a row of ``psi``.
Initial = namedtuple("Initial", [
    "psi",              # (K, d) complex: the superpositions (eigenbasis), normalised; K >= 0
    "cumulative",       # (n,) float: cumulative weights of the components, n >= 1
    "eigenstate",       # (n,) int64: the component's eigen-index, or -1 for a superposition
    "vector",           # (n,) int64: the component's row of psi (-1 for an eigenstate)
])

# Trajectories interleaved per kernel call: enough in-flight memory reads to hide the ~190 ns
# latency of a random table look-up behind the other lanes' work (1024-level chain: 0.9 M
# jumps/s one trajectory at a time, ~6 M with 16 lanes).
LANES = 16


if numba.config.DISABLE_JIT:
    def prefetch(array, index):
        """No-op without the JIT (``NUMBA_DISABLE_JIT=1``): a prefetch is only a hint."""
else:
    @intrinsic
    def prefetch(typingctx, array, index):
        """Hint the CPU to fetch ``array[index]`` into cache (LLVM ``llvm.prefetch``, read,
        high locality). No effect on results; lets other work hide the memory latency."""
        def codegen(context, builder, signature, args):
            array_type = signature.args[0]
            view = context.make_array(array_type)(context, builder, args[0])
            pointer = cgutils.get_item_pointer(context, builder, array_type, view, [args[1]])
            byte_pointer = ir.IntType(8).as_pointer()
            i32 = ir.IntType(32)
            function = cgutils.get_or_insert_function(
                builder.module, ir.FunctionType(ir.VoidType(), [byte_pointer, i32, i32, i32]),
                "llvm.prefetch.p0")
            builder.call(function, [builder.bitcast(pointer, byte_pointer), i32(0), i32(3), i32(1)])
            return context.get_dummy_value()
        return numba.types.void(array, index), codegen


@numba.njit(cache=True, nogil=True)
def next_trajectory(row, lane, next_row, key, first, initial, rng):
    """Put chunk row ``next_row`` (trajectory ``first + next_row``) into ``lane``: seed its
    stream; returns its initial component (:func:`initial_component`)."""
    row[lane] = next_row
    seed_trajectory(key, first + next_row, rng[lane])
    return initial_component(initial, rng[lane])


@numba.njit(cache=True, nogil=True)
def lane_state(n_lanes):
    """Per-lane state of the interleaved drivers: ``(row, level, t, k, rng, pick, draw)``;
    ``row = -1`` marks an idle lane."""
    return (np.full(n_lanes, -1, dtype=np.int64), np.zeros(n_lanes, dtype=np.int64),
            np.zeros(n_lanes), np.zeros(n_lanes, dtype=np.int64),
            np.zeros((n_lanes, 4), dtype=np.uint64), np.zeros(n_lanes, dtype=np.int64),
            np.zeros(n_lanes))


@numba.njit(cache=True, nogil=True)
def initial_component(initial, rng):
    """The component of ``initial`` a trajectory starts in: drawn with the components' weights
    (one uniform), or the only one (no draw)."""
    n = initial.cumulative.size
    if n == 1:
        return 0
    x = uniform(rng) * initial.cumulative[-1]
    return min(np.searchsorted(initial.cumulative, x, side="right"), n - 1)


@numba.njit(cache=True, nogil=True)
def pure_segment(rate, times, level_counts, occupation_time, level, t, k, rng):
    """Wait in the eigenstate of non-degenerate ``level`` (total jump rate ``rate``) from time
    ``t`` (next output time ``k``), counting it at the output times it spans.

    Plain arrays, not the Engine and Tally tuples: this runs once per jump, and passing ~50
    arrays to a call that is not inlined costs ~100 ns. Returns ``(t_jump, k)``;
    ``t_jump > t_final`` means no further jump.
    """
    if rate > 0.0:
        t_jump = t - np.log(1.0 - uniform(rng)) / rate
    else:
        t_jump = np.inf
    while k < times.size and times[k] < t_jump:
        level_counts[level, k] += 1
        k += 1
    occupation_time[level] += min(t_jump, times[-1]) - t
    return t_jump, k


@numba.njit(cache=True, nogil=True)
def log_jump(log_time, log_code, log_levels, log_count, time, code, source, target):
    """Append a jump to the jump list: its time, the generator's code for it (a channel, a
    transition key) and the source and target levels (-1: spread over several). The length is
    counted past the capacity (then the caller runs again with more room)."""
    n = log_count[0]
    if n < log_time.size:
        log_time[n] = time
        log_code[n] = code
        log_levels[n, 0] = source
        log_levels[n, 1] = target
    log_count[0] = n + 1


@numba.njit(cache=True, nogil=True)
def segmented_cumsum(values, ptr):
    """Cumulative sums restarting at each ``ptr[k]`` (no cancellation across segments)."""
    out = np.empty_like(values)
    for k in range(ptr.size - 1):
        acc = 0.0
        for j in range(ptr[k], ptr[k + 1]):
            acc += values[j]
            out[j] = acc
    return out
