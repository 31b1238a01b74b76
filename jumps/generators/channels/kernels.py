"""Numba kernels of the channel generator: exact quantum-jump trajectories of a Davies generator.

Pure functions over plain arrays (numpy, numba and the shared :mod:`jumps.core` pieces: no MPI,
no I/O). The Python layer (:mod:`jumps.generators.channels.unravel`) packs a generator into an
:class:`Engine` and the running sums into a :class:`Tally`, both namedtuples of arrays.

Algorithm (docs/design.md, "The channels generator"). ``H_eff = H + H_LS - (i/2) K`` is block diagonal over the
energy levels, so between jumps every level block evolves exactly as
``psi_B(t) = R_B exp(-i lambda_B t) R_B^-1 psi_B(0)`` (eigen-decomposition of the block).
The waiting time solves ``||psi(t)||^2 = r`` by safeguarded Newton/bisection: no time step.

- *Pure mode*: the state is one eigenstate of a non-degenerate level (always the case after the
  first jump when levels are non-degenerate). The trajectory is then a classical Markov chain:
  exponential waiting time with the level's total rate, target level drawn by Walker's alias
  method (O(1), two table reads), then the bath among the few of that pair: O(1) per jump.
- *Amplitude mode*: the state spreads over one degenerate level or several levels. Jumps from a
  single level use its transition table (one small matrix per target); jumps from several levels
  use the channels' sparse operators (equally spaced spectra keep superpositions alive).

Random numbers: one stream per trajectory (:mod:`jumps.core.random`), so a trajectory's
stream does not depend on how trajectories are split up.
"""

from __future__ import annotations

from collections import namedtuple

import numba
import numpy as np

from ...core.borrow import borrowed, keep_alive
from ...core.lanes import (
    LANES,
    lane_state,
    log_jump,
    next_trajectory,
    prefetch,
    pure_segment,
)
from ...core.random import uniform
from .evolution import evolve, support, to_right_coordinates, waiting_time
from .first import add_first_segments, first_segment_tables
from .observe import (  # noqa: F401 - the observable modes are this module's interface too
    DENSE,
    LEVEL_BLOCKS,
    USER_DIAGONAL,
    WORK_ROWS,
    output_sums,
    segment_outputs,
    uniform_steps,
)

Engine = namedtuple("Engine", [
    "level_ptr",        # (L+1,) int64: level k = eigen-indices level_ptr[k]:level_ptr[k+1]
    "level_of",         # (d,) int64
    "block_ptr",        # (L+1,) int64: offset of level k's b x b blocks in the flat arrays
    "heff_lambda",      # (d,) complex: eigenvalues of each block of H_eff (by eigen-index)
    "heff_right",       # (sum b^2,) complex: right eigenvectors R_B (row-major)
    "heff_left",        # (sum b^2,) complex: R_B^-1
    "decay",            # (sum b^2,) complex: K_B = sum gamma A^dag A
    "level_rate",       # (L,) float: total jump rate out of a non-degenerate level
    "trans_ptr",        # (L+1,) int64: transitions out of level k, sorted by (target, channel)
    "trans_channel",    # (nt,) int64
    "trans_target",     # (nt,) int64: target level
    "trans_bath",       # (nt,) int64: bath of the channel
    "trans_frequency",  # (nt,) float: Bohr frequency of the channel (energy handed to the bath)
    "trans_weight",     # (nt, 2) float: rate of the transition out of a non-degenerate level,
                        #   and its bath (a small integer, stored beside it for the scan)
    "pair_ptr",         # (L+1,) int64: pairs (source level k, target level) of level k
    "pairs",            # (np,) PAIR records, one cache line each (see PAIR)
    "trans_mat_ptr",    # (nt+1,) int64: offset of the b' x b matrix sqrt(gamma) A[B', B]
    "trans_mat",        # (sum b' b,) complex
    "chan_ptr",         # (C+1,) int64: sparse sqrt(gamma) A_c, entries sorted by row
    "chan_row",         # (nnz,) int64
    "chan_col",         # (nnz,) int64
    "chan_val",         # (nnz,) complex
    "chan_bath",        # (C,) int64
    "chan_frequency",   # (C,) float: energy handed to the bath per jump
    "level_energy",     # (L,) float: the eigenvalue of H of each level
])

# A pair (source level, target level): its transitions (one per bath) are entries
# first:end of the transition table. threshold/alias: Walker's alias table over the pairs of the
# source level (alias is an absolute pair index). weight: the pair's total rate. 64 bytes, so
# that a lookup touches one cache line (the array is allocated 64-byte aligned).
PAIR = np.dtype([("threshold", np.float64), ("weight", np.float64), ("frequency", np.float64),
                 ("alias", np.int64), ("first", np.int64), ("end", np.int64),
                 ("target", np.int64), ("unused", np.int64)])

# The engine arrays a jump out of a superposition reads (_jump_general, _jump_from_level),
# bound once per amplitude stretch: Numba adds an atomic reference-count pair per array of a
# namedtuple argument at every call, and Engine has ~30.
JumpTables = namedtuple("JumpTables", [
    "level_ptr", "block_ptr", "decay", "trans_ptr", "trans_target", "trans_mat_ptr",
    "trans_mat", "trans_channel", "chan_ptr", "chan_row", "chan_col", "chan_val",
    "trans_weight"])

# The Tally's arrays a jump writes (_record_jump), bound once per amplitude stretch likewise.
JumpRecords = namedtuple("JumpRecords", [
    "heat", "n_jumps", "emissions", "absorptions", "first_jump_time", "dephasings",
    "log_time", "log_code", "log_levels", "log_count"])

Tally = namedtuple("Tally", [
    "times",            # (T,) float, ascending, times[0] >= 0
    "level_counts",     # (L, T) int64: trajectories in the eigenstate of non-degenerate level
    "pop_sum",          # (T, d) float: sums over amplitude-mode trajectories of |psi_m|^2
    "pop_sumsq",        # (T, d) float
    "observables",      # (nobs, d, d) complex, energy eigenbasis
    "user_diagonal",    # (nobs, d) float: the observable's diagonal in the user's basis, used
                        #   for the observables of mode USER_DIAGONAL
    "observable_mode",  # (nobs,) int64: how the amplitude path evaluates each observable
                        #   (DENSE, USER_DIAGONAL, LEVEL_BLOCKS; unravel.observable_modes)
    "obs_sum",          # (T, nobs) float (amplitude mode only)
    "obs_sumsq",        # (T, nobs) float
    "basis",            # (d, d) complex: row m = eigenstate m in the user's basis (V^T)
    "real_basis",       # (d, d) float: the same when it is real, else (0, 0)
    "rho_sum",          # (T, d, d) complex or (0, 0, 0): sum of psi psi^dag, user's basis
    "rho_sumsq",        # (T, d, d) complex: sum Re^2 + 1j sum Im^2
    "rhodiag_sum",      # (T, d) float or (0, 0): sum |<i|psi>|^2, user's basis
    "rhodiag_sumsq",    # (T, d) float
    "jump_counts",      # (C,) int64: jumps from states spread over several levels, per channel
    "trans_counts",     # (nt,) int64: jumps through each transition-table entry (single level)
    "occupation_time",  # (L,) float: time spent in each level (single-level states)
    # With the full density matrix: amplitude-mode states at output times in the user's basis,
    # summed after the call by matrix products (output.flush): row j of block k is a
    # normalised state at output time k; fill[k] rows are in use. A trajectory stores at most
    # one row per output time: B = the call's trajectories.
    "buffer",           # (T, B, d) complex, or (0, B, d) without the full density matrix
    "fill",             # (T,) int64
    # Per trajectory of this call (row i is trajectory first + i):
    "heat",             # (ntraj, n_baths) float: energy given to each bath
    "n_jumps",          # (ntraj,) int64: jumps with w != 0
    "emissions",        # (ntraj, n_baths) int64: jumps with w > 0, per bath
    "absorptions",      # (ntraj, n_baths) int64: jumps with w < 0, per bath
    "dephasings",       # (ntraj, n_baths) int64: jumps with w = 0 (no population changes)
    "first_jump_time",  # (ntraj,) float: time of the first jump with w != 0 (inf: none)
    "initial_level",    # (ntraj,) int64: the level at t = 0 (-1: spread over several)
    "final_level",      # (ntraj,) int64: the level at t_final (-1: spread over several)
    "final_energy",     # (ntraj,) float: <H> at t_final
    # The jump list (first trajectories, replayed), or (0,) arrays:
    "log_time",         # (capacity,) float: jump times
    "log_code",         # (capacity,) int64: jump channels
    "log_levels",       # (capacity, 2) int64: source and target levels (-1: several)
    "log_count",        # (1,) int64: jumps seen (may exceed capacity: then re-run larger)
])
# The largest double below 1: the rescaled remainder of a uniform stays in [0, 1).
BELOW_ONE = float(np.nextafter(1.0, 0.0))
# Transitions taken by pure-mode jumps are buffered and counted in one loop (random increments
# of a large array are cheapest that way); 4096 int64 keys are 32 KiB, an L1 cache.
TAKEN_BUFFER = 4096


# -- amplitude-mode helpers -----------------------------------------------------------------

@numba.njit(cache=True, nogil=True)
def _take_normalised(level_ptr, new, psi, levels):
    """``psi = new / ||new||`` after a jump, listing the levels where it has weight; returns
    their count. One call, not a copy, :func:`.evolution.support` and a normalisation over
    the support (the same numbers: the norm is summed in the same order, the zeros outside the
    support adding nothing), with fewer arrays to bind per jump."""
    norm = 0.0
    for m in range(new.size):
        norm += new[m].real ** 2 + new[m].imag ** 2
    scale = 1.0 / np.sqrt(norm)
    n = 0
    for k in range(level_ptr.size - 1):
        occupied = False
        for m in range(level_ptr[k], level_ptr[k + 1]):
            value = new[m]
            occupied = occupied or value.real != 0.0 or value.imag != 0.0
            psi[m] = value * scale
        if occupied:
            levels[n] = k
            n += 1
    return n


@numba.njit(cache=True, nogil=True)
def _jump_from_level(tables, level, psi, new, u):
    """Pick a transition out of a single (possibly degenerate) level with probability
    ``||M psi_B||^2``; write ``M psi_B`` (unnormalised) into ``new``. Returns the entry.

    ``tables``: :data:`JumpTables`. Its arrays are bound once here and handed to
    :func:`_transition_weight` one by one."""
    level_ptr, trans_target = tables.level_ptr, tables.trans_target
    mat_ptr, mat = tables.trans_mat_ptr, tables.trans_mat
    lo = level_ptr[level]
    b = level_ptr[level + 1] - lo
    first, last = tables.trans_ptr[level], tables.trans_ptr[level + 1]
    chosen = last - 1
    acc = 0.0
    if b == 1:
        # A non-degenerate level: ||M_j psi_B||^2 = |psi_m|^2 rate_j, so the transition is
        # drawn from the rates of the pure-mode table (no matrix products).
        rates = tables.trans_weight
        total = 0.0
        for j in range(first, last):
            total += rates[j, 0]
        x = u * total
        for j in range(first, last):
            acc += rates[j, 0]
            if acc > x:
                chosen = j
                break
    else:
        total = 0.0
        for j in range(first, last):
            total += _transition_weight(level_ptr, trans_target, mat_ptr, mat, j, lo, b, psi)
        x = u * total
        for j in range(first, last):
            acc += _transition_weight(level_ptr, trans_target, mat_ptr, mat, j, lo, b, psi)
            if acc > x:
                chosen = j
                break
    target = trans_target[chosen]
    tlo, thi = level_ptr[target], level_ptr[target + 1]
    start = mat_ptr[chosen]
    for r in range(thi - tlo):
        value = 0j
        for c in range(b):
            value += mat[start + r * b + c] * psi[lo + c]
        new[tlo + r] = value
    return chosen


@numba.njit(cache=True, nogil=True)
def _transition_weight(level_ptr, trans_target, mat_ptr, mat, j, lo, b, psi):
    """``||M_j psi_B||^2`` of transition entry ``j`` out of the level at ``lo`` (size b)."""
    target = trans_target[j]
    rows = level_ptr[target + 1] - level_ptr[target]
    start = mat_ptr[j]
    weight = 0.0
    for r in range(rows):
        value = 0j
        for c in range(b):
            value += mat[start + r * b + c] * psi[lo + c]
        weight += value.real ** 2 + value.imag ** 2
    return weight


@numba.njit(cache=True, nogil=True)
def _level_decay(level_ptr, block_ptr, decay, level, psi):
    """``<psi_B| K_B |psi_B>`` of one level block: the jump rate out of level ``B``. Distinct
    source levels jump through one channel into distinct target levels, so this is exactly
    ``sum_c ||L_c psi_B||^2`` (``K_B`` is built from the same entries)."""
    lo, hi = level_ptr[level], level_ptr[level + 1]
    b = hi - lo
    start = block_ptr[level]
    value = 0.0
    for r in range(b):
        acc = 0j
        for c in range(b):
            acc += decay[start + r * b + c] * psi[lo + c]
        value += (np.conj(psi[lo + r]) * acc).real
    return max(value, 0.0)


@numba.njit(cache=True, nogil=True)
def _jump_general(tables, psi, new, u, levels, n_levels):
    """Pick a channel with probability ``||L_c psi||^2`` for a state spread over the levels
    ``levels[:n_levels]``; write ``L_c psi`` into ``new``. Returns the channel.

    Because one channel maps distinct source levels into distinct target levels,
    ``||L_c psi||^2 = sum_B ||L_c psi_B||^2``: the source level ``B`` is drawn with weight
    ``<psi_B|K_B|psi_B>``, then the transition out of it as in pure mode
    (:func:`_jump_from_level`, with the uniform's remainder), and the channel's full
    ``L_c psi`` is applied. Cost O(sum_B b^2 + transitions out of B + nnz(L_c)), not
    O(all channels)."""
    level_ptr, block_ptr, decay = tables.level_ptr, tables.block_ptr, tables.decay
    # The levels' weights, kept in new.real (overwritten below): on a non-degenerate level
    # <psi_B|K_B|psi_B> = |psi_m|^2 K_m, no call.
    total = 0.0
    for i in range(n_levels):
        lv = levels[i]
        lo = level_ptr[lv]
        if level_ptr[lv + 1] - lo == 1:
            w = (psi[lo].real ** 2 + psi[lo].imag ** 2) * max(decay[block_ptr[lv]].real, 0.0)
        else:
            w = _level_decay(level_ptr, block_ptr, decay, lv, psi)
        new[i] = w
        total += w
    x = u * total
    acc = 0.0
    chosen, below, weight = -1, 0.0, 0.0
    for i in range(n_levels):
        w = new[i].real
        if w <= 0.0:
            continue
        chosen, below, weight = levels[i], acc, w
        acc += w
        if acc > x:
            break
    rest = min(max((x - below) / weight, 0.0), BELOW_ONE)
    j = _jump_from_level(tables, chosen, psi, new, rest)
    channel = tables.trans_channel[j]
    ptr, rows, cols, values = tables.chan_ptr, tables.chan_row, tables.chan_col, tables.chan_val
    new[:] = 0.0
    for e in range(ptr[channel], ptr[channel + 1]):
        new[rows[e]] += values[e] * psi[cols[e]]
    return channel


# -- one trajectory ------------------------------------------------------------------------


@numba.njit(cache=True, nogil=True)
def _count(trans_counts, taken, n_taken):
    """Add the buffered transitions to their counts; returns 0 (the emptied buffer's size)."""
    for i in range(n_taken):
        trans_counts[taken[i]] += 1
    return 0


@numba.njit(cache=True, nogil=True)
def _record_jump(records, traj, bath, frequency, channel, time, source, target):
    """The per-trajectory records of a jump of trajectory row ``traj`` (as the pure-mode stage
    of :func:`run_chunk` writes them), and the jump list if one is kept. ``records``:
    :data:`JumpRecords` (the Tally's arrays a jump writes)."""
    records.heat[traj, bath] += frequency
    if frequency != 0.0:
        records.n_jumps[traj] += 1
        if frequency > 0.0:
            records.emissions[traj, bath] += 1
        else:
            records.absorptions[traj, bath] += 1
        records.first_jump_time[traj] = min(records.first_jump_time[traj], time)
    else:
        records.dephasings[traj, bath] += 1
    if records.log_time.size > 0:
        log_jump(records.log_time, records.log_code, records.log_levels, records.log_count,
                 time, channel, source, target)


@numba.njit(cache=True, nogil=True)
def _finish(engine, tally, traj, levels, n_levels, psi):
    """The final level of trajectory row ``traj`` and its ``<H>``, from the (unnormalised)
    state ``psi`` at ``t_final`` on the levels ``levels[:n_levels]``."""
    if n_levels == 1:
        tally.final_level[traj] = levels[0]
        tally.final_energy[traj] = engine.level_energy[levels[0]]
        return
    weight = 0.0
    energy = 0.0
    for i in range(n_levels):
        lv = levels[i]
        for m in range(engine.level_ptr[lv], engine.level_ptr[lv + 1]):
            p = psi[m].real ** 2 + psi[m].imag ** 2
            weight += p
            energy += p * engine.level_energy[lv]
    tally.final_level[traj] = -1
    tally.final_energy[traj] = energy / weight



@numba.njit(cache=True, nogil=True)
def _amplitude(engine, tally, sums, rng, traj, levels, n_levels, t, k, work, parts, occ,
               table):
    """Amplitude mode: exact non-Hermitian evolution of the occupied level blocks and jumps.

    Starts from the normalised state ``work[0]`` with support ``levels[:n_levels]`` at time
    ``t`` (next output time ``k``). ``table >= 0``: the state is the initial vector ``table``
    at t = 0, whose first segment (up to the first jump) is the same in every trajectory:
    its output times come from the chunk's tables (:func:`.first.first_segment_tables`),
    counted in ``sums.first_count``, not computed again. Returns ``(level, t, k)`` as soon as
    the state is the eigenstate of a non-degenerate level (pure mode takes over), or ``(-1, t,
    k)`` when the trajectory reaches ``t_final``.
    """
    psi, coeff, new = work[0], work[1], work[2]
    times = tally.times
    t_final = times[-1]
    # Every array is bound once, outside the loop (see evolution.evolve on reference counts).
    level_ptr, block_ptr, lam = engine.level_ptr, engine.block_ptr, engine.heff_lambda
    right, left, decay = engine.heff_right, engine.heff_left, engine.decay
    trans_bath, trans_frequency, trans_channel = (engine.trans_bath, engine.trans_frequency,
                                                  engine.trans_channel)
    chan_bath, chan_frequency = engine.chan_bath, engine.chan_frequency
    trans_counts, jump_counts = tally.trans_counts, tally.jump_counts
    occupation_time = tally.occupation_time
    tables = JumpTables(engine.level_ptr, engine.block_ptr, engine.decay, engine.trans_ptr,
                        engine.trans_target, engine.trans_mat_ptr, engine.trans_mat,
                        engine.trans_channel, engine.chan_ptr, engine.chan_row, engine.chan_col,
                        engine.chan_val, engine.trans_weight)
    records = JumpRecords(tally.heat, tally.n_jumps, tally.emissions, tally.absorptions,
                          tally.first_jump_time, tally.dephasings, tally.log_time,
                          tally.log_code, tally.log_levels, tally.log_count)
    while True:
        level = levels[0]
        if n_levels == 1 and level_ptr[level + 1] - level_ptr[level] == 1:
            return level, t, k
        to_right_coordinates(level_ptr, block_ptr, left, levels, n_levels, psi, coeff)
        target = 1.0 - uniform(rng)
        # The output times before the jump first: the first one past it brackets the jump
        # (t_final is an output time: none past it, no jump).
        k_start = k
        if table >= 0:
            # The first segment's squared norms at the output times are tabulated: the same
            # decision as segment_outputs' (the first output time with norm <= target), and
            # the same bracket; its outputs are added per chunk (first.add_first_segments).
            first_norm = sums.first_norm
            k = 0
            while k < times.size and first_norm[table, k] > target:
                k += 1
            sums.first_count[table, k] += 1
            norm_lo = first_norm[table, k - 1] if k > 0 else 1.0
            norm_hi = first_norm[table, k] if k < times.size else 0.0
            table = -1
        else:
            k, norm_lo, norm_hi = segment_outputs(sums, levels, n_levels, coeff, t, target, k,
                                                  work, parts, occ)
        tau = -1.0
        if k < times.size:
            tau_lo = times[k - 1] - t if k > k_start else 0.0
            tau = waiting_time(level_ptr, block_ptr, lam, right, decay, levels, n_levels, coeff,
                               target, tau_lo, times[k] - t, norm_lo, norm_hi, new, parts)
        t_jump = t + tau if tau >= 0.0 else np.inf
        if n_levels == 1:
            occupation_time[levels[0]] += min(t_jump, t_final) - t
        if tau < 0.0:  # no jump before t_final
            evolve(level_ptr, block_ptr, lam, right, levels, n_levels, coeff, t_final - t, new)
            _finish(engine, tally, traj, levels, n_levels, new)
            return -1, t_final, k
        evolve(level_ptr, block_ptr, lam, right, levels, n_levels, coeff, tau, psi)
        new[:] = 0.0
        u = uniform(rng)
        if n_levels == 1:
            source = levels[0]
            j = _jump_from_level(tables, source, psi, new, u)
            trans_counts[j] += 1
            bath, w, code = trans_bath[j], trans_frequency[j], trans_channel[j]
        else:
            source = -1
            code = _jump_general(tables, psi, new, u, levels, n_levels)
            jump_counts[code] += 1
            bath, w = chan_bath[code], chan_frequency[code]
        n_levels = _take_normalised(level_ptr, new, psi, levels)
        _record_jump(records, traj, bath, w, code, t_jump, source,
                     levels[0] if n_levels == 1 else -1)
        t = t_jump


@numba.njit(cache=True, nogil=True)
def _start(engine, initial, tally, sums, traj, rng, component, levels, work, parts, occ):
    """A trajectory that does not start in pure mode: from the initial ``component`` (an
    eigenstate of a degenerate level, or a superposition); runs :func:`_amplitude` from t = 0."""
    psi = work[0]
    eigenstate = initial.eigenstate[component]
    table = -1
    if eigenstate >= 0:
        psi[:] = 0.0
        psi[eigenstate] = 1.0
    else:
        psi[:] = initial.psi[initial.vector[component]]
        if sums.first_norm.shape[0] > 0:
            table = initial.vector[component]
    n_levels = support(engine.level_ptr, psi, levels)
    tally.initial_level[traj] = levels[0] if n_levels == 1 else -1
    return _amplitude(engine, tally, sums, rng, traj, levels, n_levels, 0.0, 0, work, parts,
                      occ, table)


@numba.njit(cache=True, nogil=True)
def _land(engine, tally, sums, rng, traj, j, t, k, levels, work, parts, occ):
    """After the pure-mode jump ``j`` at time ``t``: ``(level, t, k)`` of the new state.

    Into a non-degenerate level the state is its eigenstate; into a degenerate one it is the
    column ``sqrt(gamma) A[B', m]``, and amplitude mode runs until pure mode resumes."""
    level = engine.trans_target[j]
    lo, hi = engine.level_ptr[level], engine.level_ptr[level + 1]
    if hi - lo == 1:
        return level, t, k
    new = work[2]
    new[:] = 0.0
    start = engine.trans_mat_ptr[j]
    for r in range(hi - lo):
        new[lo + r] = engine.trans_mat[start + r]
    n_levels = _take_normalised(engine.level_ptr, new, work[0], levels)
    return _amplitude(engine, tally, sums, rng, traj, levels, n_levels, t, k, work, parts, occ,
                      -1)



@numba.njit(cache=True, nogil=True)
def run_chunk(engine, initial, tally, key, first, count, lanes=LANES, tables=True):
    """Run trajectories ``first .. first+count-1`` (global indices) into ``tally``.

    Per-trajectory rows (``tally.heat[i]``, ...) belong to trajectory ``first + i``. Returns
    the number of jumps, dephasing events (w = 0) included.

    Pure-mode jumps are table look-ups at random places in large arrays: one trajectory waits
    for memory at every step. So up to ``lanes`` trajectories advance side by side, one jump
    each per round, in stages that first prefetch what the next stage reads (the alias slot,
    the pair, its baths, the transition): the memory latency of one lane hides behind the work
    of the others. Each trajectory draws from its own stream in the same order whatever the
    number of lanes, so its jumps, heat and every integer count do not depend on ``lanes``;
    float sums over trajectories change only by rounding. Amplitude-mode stretches run at once,
    inside the lane. ``lanes=1`` is the plain one-trajectory-at-a-time algorithm.
    ``tables=False`` computes every trajectory's first segment itself (for tests: the same
    decisions as with the tables, sums equal to rounding; see :mod:`.first`).
    """
    # Every array below is borrowed (jumps.core.borrow): the same arrays without an owner, so
    # that passing them to the amplitude path's helpers costs no atomic reference counts. The
    # caller holds engine, initial and tally; the scratch arrays are held to the end.
    engine, initial, tally = borrowed(engine), borrowed(initial), borrowed(tally)
    d, n_level = engine.level_of.size, engine.level_ptr.size - 1
    times, level_counts, occupation_time = tally.times, tally.level_counts, tally.occupation_time
    level_rate, level_ptr, level_of = engine.level_rate, engine.level_ptr, engine.level_of
    trans_counts, heat, n_jumps = tally.trans_counts, tally.heat, tally.n_jumps
    emissions, absorptions, dephasings = tally.emissions, tally.absorptions, tally.dephasings
    first_jump_time, final_level = tally.first_jump_time, tally.final_level
    log_time = tally.log_time
    pairs, trans_weight, pair_ptr = engine.pairs, engine.trans_weight, engine.pair_ptr
    # Bound here, not read off the tuples in the loop (a read of a tuple's array in the loop
    # may cost an atomic reference-count pair each time).
    initial_level, final_energy, level_energy = (tally.initial_level, tally.final_energy,
                                                 engine.level_energy)
    t_final = times[-1]
    # psi, coeff, then segment_outputs' rows (observe.WORK_ROWS)
    work_owner = np.zeros((WORK_ROWS, d), dtype=np.complex128)
    # Float scratch: the real and imaginary parts of the state in the user's basis
    # (segment_outputs), the decay rates, weights and terms of the waiting time.
    parts_owner = np.zeros((3, d))
    levels_owner = np.empty(n_level, dtype=np.int64)
    occ_owner = np.empty(d, dtype=np.int64)  # the occupied eigenstates of an amplitude segment
    step0_owner, dt0 = uniform_steps(engine.heff_lambda, times)
    work, parts, levels = borrowed(work_owner), borrowed(parts_owner), borrowed(levels_owner)
    occ, step0 = borrowed(occ_owner), borrowed(step0_owner)
    # The first segments from the initial vectors, once per chunk (first_segment_tables).
    first_pop, first_obs, first_rho, first_norm_owner = first_segment_tables(
        engine, initial, tally, step0, dt0, levels, work, parts, occ, tables)
    first_count_owner = np.zeros((first_norm_owner.shape[0], times.size + 1), dtype=np.int64)
    no_norms_owner = np.zeros(0)
    first_norm, first_count = borrowed(first_norm_owner), borrowed(first_count_owner)
    no_norms = borrowed(no_norms_owner)
    sums = output_sums(engine, tally, step0, dt0, tally.pop_sum, tally.pop_sumsq,
                       tally.obs_sum, tally.obs_sumsq, tally.rhodiag_sum, tally.rhodiag_sumsq,
                       no_norms, first_norm, first_count)
    n_lanes = max(1, min(lanes, count))
    # pick: alias slot, then pair, then transition; row: the lane's chunk row (-1: idle)
    row, level, t, k, rng_owner, pick, draw = lane_state(n_lanes)
    rng = borrowed(rng_owner)  # a lane's stream goes to the amplitude path as a view
    end = np.zeros(n_lanes, dtype=np.int64)
    target = np.zeros(n_lanes, dtype=np.int64)
    frequency = np.zeros(n_lanes)
    taken = np.empty(TAKEN_BUFFER, dtype=np.int64)  # transitions taken, not yet counted
    n_taken = 0
    next_row = 0
    while True:
        # Stage 1: every lane to its next jump (new trajectories into lanes that finished);
        # draw the alias slot among the level's pairs.
        busy = 0
        for lane in range(n_lanes):
            while True:
                if row[lane] < 0:
                    if next_row >= count:
                        break
                    c = next_trajectory(row, lane, next_row, key, first, initial, rng)
                    next_row += 1
                    m = initial.eigenstate[c]
                    if m >= 0 and level_ptr[level_of[m] + 1] - level_ptr[level_of[m]] == 1:
                        level[lane], t[lane], k[lane] = level_of[m], 0.0, 0
                        initial_level[row[lane]] = level_of[m]
                    else:
                        level[lane], t[lane], k[lane] = _start(
                            engine, initial, tally, sums, row[lane], rng[lane], c, levels, work,
                            parts, occ)
                    if level[lane] < 0:
                        row[lane] = -1
                        continue
                # Written out, as in the rates kernel: the same stage as a shared function
                # (even inline="always") ran the 10-spin chain at ~4.0 M jumps/s instead of
                # ~4.8 M (alternating runs, medians of 5).
                t_jump, k[lane] = pure_segment(level_rate[level[lane]], times, level_counts,
                                               occupation_time, level[lane], t[lane], k[lane],
                                               rng[lane])
                if t_jump > t_final:
                    final_level[row[lane]] = level[lane]
                    final_energy[row[lane]] = level_energy[level[lane]]
                    row[lane] = -1
                    continue
                t[lane] = t_jump
                lo = pair_ptr[level[lane]]
                n = pair_ptr[level[lane] + 1] - lo
                x = uniform(rng[lane]) * n
                slot = min(int(x), n - 1)
                pick[lane] = lo + slot
                draw[lane] = x - slot
                prefetch(pairs, pick[lane])
                busy += 1
                break
        if busy == 0:
            break
        # Stage 2: Walker's alias decision gives the pair (source level, target level).
        for lane in range(n_lanes):
            if row[lane] >= 0:
                pair = pick[lane]
                if draw[lane] >= pairs[pair]["threshold"]:
                    pair = pairs[pair]["alias"]
                    prefetch(pairs, pair)
                pick[lane] = pair
        # Stage 3: the pair's transitions (one per bath) and the uniform for choosing one.
        for lane in range(n_lanes):
            if row[lane] >= 0:
                record = pairs[pick[lane]]
                pick[lane], end[lane] = record["first"], record["end"]
                target[lane], frequency[lane] = record["target"], record["frequency"]
                draw[lane] = uniform(rng[lane]) * record["weight"]
                for i in range(pick[lane], end[lane], 4):  # 4 entries of 16 bytes a line
                    prefetch(trans_weight, i)
                prefetch(trans_weight, end[lane] - 1)
        # Stage 4: the transition, by a scan of the pair's few rates.
        for lane in range(n_lanes):
            if row[lane] >= 0:
                j = end[lane] - 1
                acc = 0.0
                for i in range(pick[lane], end[lane] - 1):
                    acc += trans_weight[i, 0]
                    if acc > draw[lane]:
                        j = i
                        break
                pick[lane] = j
        # Stage 5: record the jump and move to the target (amplitude mode if degenerate).
        # Transition counts go through a buffer: random increments of a large array are
        # cheapest in one independent loop (see _count).
        for lane in range(n_lanes):
            if row[lane] >= 0:
                j = pick[lane]
                taken[n_taken] = j
                n_taken += 1
                if n_taken == taken.size:
                    n_taken = _count(trans_counts, taken, n_taken)
                # The records of _record_jump, written out (a call per jump costs).
                r, a, w = row[lane], int(trans_weight[j, 1]), frequency[lane]
                heat[r, a] += w
                if w != 0.0:
                    n_jumps[r] += 1
                    if w > 0.0:
                        emissions[r, a] += 1
                    else:
                        absorptions[r, a] += 1
                    first_jump_time[r] = min(first_jump_time[r], t[lane])
                else:
                    dephasings[r, a] += 1
                if log_time.size > 0:
                    log_jump(log_time, tally.log_code, tally.log_levels, tally.log_count,
                             t[lane], engine.trans_channel[j], level[lane], target[lane])
                if level_ptr[target[lane] + 1] - level_ptr[target[lane]] == 1:
                    level[lane] = target[lane]
                    continue
                level[lane], t[lane], k[lane] = _land(engine, tally, sums, rng[lane], row[lane],
                                                      j, t[lane], k[lane], levels, work, parts,
                                                      occ)
                if level[lane] < 0:
                    row[lane] = -1
    _count(trans_counts, taken, n_taken)
    add_first_segments(first_count, first_pop, first_obs, first_rho, tally)
    keep_alive(work_owner, parts_owner, levels_owner, occ_owner, step0_owner, rng_owner,
               first_norm_owner, first_count_owner, no_norms_owner)
    total = 0
    for i in range(count):
        total += n_jumps[i]
        for a in range(dephasings.shape[1]):
            total += dephasings[i, a]
    return total


