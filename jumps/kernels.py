"""Numba kernels: exact quantum-jump trajectories of a Davies generator.

Pure functions over plain arrays (numpy and numba only: no MPI, no I/O, no package imports).
The Python layer (``unravel.py``) packs a generator into an :class:`Engine` and the running
sums into a :class:`Tally`, both namedtuples of arrays.

Algorithm (DESIGN.md section 3). ``H_eff = H + H_LS - (i/2) K`` is block diagonal over the
energy levels, so between jumps every level block evolves exactly as
``psi_B(t) = R_B exp(-i lambda_B t) R_B^-1 psi_B(0)`` (eigen-decomposition of the block).
The waiting time solves ``||psi(t)||^2 = r`` by safeguarded Newton/bisection: no time step.

- *Pure mode*: the state is one eigenstate of a non-degenerate level (always the case after the
  first jump when levels are non-degenerate). The trajectory is then a classical Markov chain:
  exponential waiting time with the level's total rate, target chosen by binary search in the
  level's cumulative rates: O(log d) per jump.
- *Amplitude mode*: the state spreads over one degenerate level or several levels. Jumps from a
  single level use its transition table (one small matrix per target); jumps from several levels
  use the channels' sparse operators (equally spaced spectra keep superpositions alive).

Random numbers: xoshiro256** seeded per trajectory by splitmix64 from ``(key, trajectory
index)``, so a trajectory's stream does not depend on how trajectories are split up.
"""

from __future__ import annotations

from collections import namedtuple

import numba
import numpy as np

Engine = namedtuple("Engine", [
    "level_ptr",        # (L+1,) int64: level k = eigen-indices level_ptr[k]:level_ptr[k+1]
    "level_of",         # (d,) int64
    "block_ptr",        # (L+1,) int64: offset of level k's b x b blocks in the flat arrays
    "heff_lambda",      # (d,) complex: eigenvalues of each block of H_eff (by eigen-index)
    "heff_right",       # (sum b^2,) complex: right eigenvectors R_B (row-major)
    "heff_left",        # (sum b^2,) complex: R_B^-1
    "decay",            # (sum b^2,) complex: K_B = sum gamma A^dag A
    "level_rate",       # (L,) float: total jump rate out of a non-degenerate level
    "trans_ptr",        # (L+1,) int64: transitions out of level k
    "trans_channel",    # (nt,) int64
    "trans_target",     # (nt,) int64: target level
    "trans_cumulative",  # (nt,) float: cumulative rates within a source level
    "trans_mat_ptr",    # (nt+1,) int64: offset of the b' x b matrix sqrt(gamma) A[B', B]
    "trans_mat",        # (sum b' b,) complex
    "chan_ptr",         # (C+1,) int64: sparse sqrt(gamma) A_c, entries sorted by row
    "chan_row",         # (nnz,) int64
    "chan_col",         # (nnz,) int64
    "chan_val",         # (nnz,) complex
    "chan_bath",        # (C,) int64
    "chan_frequency",   # (C,) float: energy handed to the bath per jump
])

Tally = namedtuple("Tally", [
    "times",            # (T,) float, ascending, times[0] >= 0
    "level_counts",     # (T, L) int64: trajectories in the eigenstate of non-degenerate level
    "pop_sum",          # (T, d) float: sums over amplitude-mode trajectories of |psi_m|^2
    "pop_sumsq",        # (T, d) float
    "observables",      # (nobs, d, d) complex, energy eigenbasis
    "obs_sum",          # (T, nobs) float (amplitude mode only)
    "obs_sumsq",        # (T, nobs) float
    "eigenvectors",     # (d, d) complex, columns = eigenstates in the user's basis
    "rho_sum",          # (T, d, d) complex or (0, 0, 0): sum of psi psi^dag, user's basis
    "rho_sumsq",        # (T, d, d) complex: sum Re^2 + 1j sum Im^2
    "rhodiag_sum",      # (T, d) float or (0, 0): sum |<i|psi>|^2, user's basis
    "rhodiag_sumsq",    # (T, d) float
    "jump_counts",      # (C,) int64
    "trans_counts",     # (nt,) int64: jumps taken through each transition-table entry
    "occupation_time",  # (L,) float: time spent in each level (single-level states)
    "heat",             # (ntraj, n_baths) float: per trajectory of this call
    "n_jumps",          # (ntraj,) int64
    "log_time",         # (capacity,) float: jump times, or (0,) for no jump list
    "log_channel",      # (capacity,) int64: jump channels
    "log_count",        # (1,) int64: jumps seen (may exceed capacity: then re-run larger)
])

Initial = namedtuple("Initial", [
    "psi",              # (d,) complex: initial state in the eigenbasis (used if not gibbs)
    "cumulative",       # (d,) float: cumulative Gibbs weights of eigenstates, or (0,)
])

_U53 = 1.0 / 9007199254740992.0  # 2^-53


@numba.njit(cache=True, nogil=True, inline="always")
def _rotl(x, k):
    return (x << np.uint64(k)) | (x >> np.uint64(64 - k))


@numba.njit(cache=True, nogil=True)
def _splitmix64(x):
    x = x + np.uint64(0x9E3779B97F4A7C15)
    z = x
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return x, z ^ (z >> np.uint64(31))


@numba.njit(cache=True, nogil=True)
def seed_trajectory(key, trajectory, state):
    """Fill ``state`` (4 uint64) with the xoshiro256** state of one trajectory.

    ``key`` is 2 uint64 derived from the user's seed; the state is a pure function of
    ``(key, trajectory)``.
    """
    x = key[0] ^ (np.uint64(trajectory) * np.uint64(0xD1B54A32D192ED03))
    x, first = _splitmix64(x)
    x = first ^ key[1]
    for i in range(4):
        x, state[i] = _splitmix64(x)


@numba.njit(cache=True, nogil=True)
def uniform(state):
    """A uniform double in [0, 1) from xoshiro256** (advances ``state``)."""
    s0, s1, s2, s3 = state[0], state[1], state[2], state[3]
    result = _rotl(s1 * np.uint64(5), 7) * np.uint64(9)
    t = s1 << np.uint64(17)
    s2 ^= s0
    s3 ^= s1
    s1 ^= s2
    s0 ^= s3
    s2 ^= t
    s3 = _rotl(s3, 45)
    state[0], state[1], state[2], state[3] = s0, s1, s2, s3
    return float(result >> np.uint64(11)) * _U53


# -- amplitude-mode helpers -----------------------------------------------------------------

@numba.njit(cache=True, nogil=True)
def _evolve(engine, levels, n_levels, coeff, tau, out):
    """``out = R exp(-i lambda tau) coeff`` on the listed levels (coeff in R-coordinates)."""
    for i in range(n_levels):
        k = levels[i]
        lo, hi = engine.level_ptr[k], engine.level_ptr[k + 1]
        b = hi - lo
        if b == 1:
            out[lo] = coeff[lo] * np.exp(-1j * engine.heff_lambda[lo] * tau)
            continue
        start = engine.block_ptr[k]
        for r in range(b):
            acc = 0j
            for c in range(b):
                acc += engine.heff_right[start + r * b + c] * coeff[lo + c] * np.exp(
                    -1j * engine.heff_lambda[lo + c] * tau)
            out[lo + r] = acc


@numba.njit(cache=True, nogil=True)
def _norm_and_slope(engine, levels, n_levels, psi):
    """``||psi||^2`` and its time derivative ``-psi^dag K psi`` on the listed levels."""
    norm = 0.0
    slope = 0.0
    for i in range(n_levels):
        k = levels[i]
        lo, hi = engine.level_ptr[k], engine.level_ptr[k + 1]
        b = hi - lo
        start = engine.block_ptr[k]
        for r in range(b):
            norm += psi[lo + r].real ** 2 + psi[lo + r].imag ** 2
            acc = 0j
            for c in range(b):
                acc += engine.decay[start + r * b + c] * psi[lo + c]
            slope -= (np.conj(psi[lo + r]) * acc).real
    return norm, slope


@numba.njit(cache=True, nogil=True)
def _to_right_coordinates(engine, levels, n_levels, psi, coeff):
    """``coeff = R^-1 psi`` on the listed levels."""
    for i in range(n_levels):
        k = levels[i]
        lo, hi = engine.level_ptr[k], engine.level_ptr[k + 1]
        b = hi - lo
        start = engine.block_ptr[k]
        for r in range(b):
            acc = 0j
            for c in range(b):
                acc += engine.heff_left[start + r * b + c] * psi[lo + c]
            coeff[lo + r] = acc


@numba.njit(cache=True, nogil=True)
def _waiting_time(engine, levels, n_levels, coeff, target, tau_max, work):
    """Smallest ``tau`` in [0, tau_max] with ``||psi(tau)||^2 = target``, or -1 if none.

    The norm decreases monotonically; Newton steps are kept inside a shrinking bracket and
    replaced by bisection when they leave it.
    """
    _evolve(engine, levels, n_levels, coeff, tau_max, work)
    norm, slope = _norm_and_slope(engine, levels, n_levels, work)
    if norm > target:
        return -1.0
    lo, hi = 0.0, tau_max
    tau = 0.0
    _evolve(engine, levels, n_levels, coeff, tau, work)
    norm, slope = _norm_and_slope(engine, levels, n_levels, work)
    for _ in range(200):
        f = norm - target
        if f > 0:
            lo = tau
        else:
            hi = tau
        if slope < 0:
            step = tau - f / slope
        else:
            step = -1.0
        if not (lo < step < hi):
            step = 0.5 * (lo + hi)
        if abs(step - tau) <= 1e-14 * max(1.0, tau) or hi - lo <= 1e-14 * max(1.0, hi):
            return step
        tau = step
        _evolve(engine, levels, n_levels, coeff, tau, work)
        norm, slope = _norm_and_slope(engine, levels, n_levels, work)
    return tau


@numba.njit(cache=True, nogil=True)
def _support(engine, psi, levels):
    """List the levels where ``psi`` has weight; returns their count."""
    n = 0
    for k in range(engine.level_ptr.size - 1):
        for m in range(engine.level_ptr[k], engine.level_ptr[k + 1]):
            if psi[m].real != 0.0 or psi[m].imag != 0.0:
                levels[n] = k
                n += 1
                break
    return n


@numba.njit(cache=True, nogil=True)
def _accumulate(tally, engine, levels, n_levels, psi, norm, k, user):
    """Add the normalised amplitude-mode state at output time ``k`` to the running sums."""
    scale = 1.0 / norm
    d = psi.size
    for i in range(n_levels):
        lv = levels[i]
        for m in range(engine.level_ptr[lv], engine.level_ptr[lv + 1]):
            p = (psi[m].real ** 2 + psi[m].imag ** 2) * scale
            tally.pop_sum[k, m] += p
            tally.pop_sumsq[k, m] += p * p
    for o in range(tally.observables.shape[0]):
        value = 0.0
        for i in range(n_levels):
            lv = levels[i]
            for m in range(engine.level_ptr[lv], engine.level_ptr[lv + 1]):
                acc = 0j
                for j in range(n_levels):
                    lw = levels[j]
                    for n in range(engine.level_ptr[lw], engine.level_ptr[lw + 1]):
                        acc += tally.observables[o, m, n] * psi[n]
                value += (np.conj(psi[m]) * acc).real
        value *= scale
        tally.obs_sum[k, o] += value
        tally.obs_sumsq[k, o] += value * value
    if tally.rho_sum.shape[0] == 0 and tally.rhodiag_sum.shape[0] == 0:
        return
    root = np.sqrt(scale)
    for r in range(d):
        acc = 0j
        for i in range(n_levels):
            lv = levels[i]
            for m in range(engine.level_ptr[lv], engine.level_ptr[lv + 1]):
                acc += tally.eigenvectors[r, m] * psi[m]
        user[r] = acc * root
    if tally.rho_sum.shape[0] > 0:
        for r in range(d):
            for c in range(d):
                value = user[r] * np.conj(user[c])
                tally.rho_sum[k, r, c] += value
                tally.rho_sumsq[k, r, c] += value.real ** 2 + 1j * value.imag ** 2
    else:
        for r in range(d):
            p = user[r].real ** 2 + user[r].imag ** 2
            tally.rhodiag_sum[k, r] += p
            tally.rhodiag_sumsq[k, r] += p * p


@numba.njit(cache=True, nogil=True)
def _jump_from_level(engine, level, psi, new, u):
    """Pick a transition out of a single (possibly degenerate) level with probability
    ``||M psi_B||^2``; write ``M psi_B`` (unnormalised) into ``new``. Returns the entry."""
    lo, hi = engine.level_ptr[level], engine.level_ptr[level + 1]
    b = hi - lo
    first, last = engine.trans_ptr[level], engine.trans_ptr[level + 1]
    total = 0.0
    for j in range(first, last):
        total += _transition_weight(engine, j, level, psi)
    x = u * total
    chosen = last - 1
    acc = 0.0
    for j in range(first, last):
        acc += _transition_weight(engine, j, level, psi)
        if acc > x:
            chosen = j
            break
    target = engine.trans_target[chosen]
    tlo, thi = engine.level_ptr[target], engine.level_ptr[target + 1]
    start = engine.trans_mat_ptr[chosen]
    for r in range(thi - tlo):
        value = 0j
        for c in range(b):
            value += engine.trans_mat[start + r * b + c] * psi[lo + c]
        new[tlo + r] = value
    return chosen


@numba.njit(cache=True, nogil=True)
def _transition_weight(engine, j, level, psi):
    lo, hi = engine.level_ptr[level], engine.level_ptr[level + 1]
    b = hi - lo
    target = engine.trans_target[j]
    rows = engine.level_ptr[target + 1] - engine.level_ptr[target]
    start = engine.trans_mat_ptr[j]
    weight = 0.0
    for r in range(rows):
        value = 0j
        for c in range(b):
            value += engine.trans_mat[start + r * b + c] * psi[lo + c]
        weight += value.real ** 2 + value.imag ** 2
    return weight


@numba.njit(cache=True, nogil=True)
def _channel_weight(engine, c, psi):
    """``||sqrt(gamma_c) A_c psi||^2`` from the channel's row-sorted sparse entries."""
    weight = 0.0
    j = engine.chan_ptr[c]
    end = engine.chan_ptr[c + 1]
    while j < end:
        row = engine.chan_row[j]
        acc = 0j
        while j < end and engine.chan_row[j] == row:
            acc += engine.chan_val[j] * psi[engine.chan_col[j]]
            j += 1
        weight += acc.real ** 2 + acc.imag ** 2
    return weight


@numba.njit(cache=True, nogil=True)
def _jump_general(engine, psi, new, u):
    """Pick a channel with probability ``||L_c psi||^2``; write ``L_c psi`` into ``new``."""
    n_channels = engine.chan_ptr.size - 1
    total = 0.0
    for c in range(n_channels):
        total += _channel_weight(engine, c, psi)
    x = u * total
    chosen = n_channels - 1
    acc = 0.0
    for c in range(n_channels):
        weight = _channel_weight(engine, c, psi)
        if weight == 0.0:
            continue
        acc += weight
        chosen = c
        if acc > x:
            break
    new[:] = 0.0
    for j in range(engine.chan_ptr[chosen], engine.chan_ptr[chosen + 1]):
        new[engine.chan_row[j]] += engine.chan_val[j] * psi[engine.chan_col[j]]
    return chosen


# -- one trajectory ------------------------------------------------------------------------

@numba.njit(cache=True, nogil=True)
def _pure_segment(engine, tally, level, t, k, rng):
    """Wait in the eigenstate of non-degenerate ``level`` from time ``t`` (next output ``k``).

    Returns ``(t_jump, k)``; ``t_jump > t_final`` means no further jump.
    """
    times = tally.times
    t_final = times[-1]
    rate = engine.level_rate[level]
    if rate > 0.0:
        t_jump = t - np.log(1.0 - uniform(rng)) / rate
    else:
        t_jump = np.inf
    while k < times.size and times[k] < t_jump:
        tally.level_counts[k, level] += 1
        k += 1
    tally.occupation_time[level] += min(t_jump, t_final) - t
    return t_jump, k


@numba.njit(cache=True, nogil=True)
def _pure_jump(engine, tally, level, rng):
    """Binary search in the level's cumulative rates; returns the transition entry."""
    first, last = engine.trans_ptr[level], engine.trans_ptr[level + 1]
    x = uniform(rng) * engine.trans_cumulative[last - 1]
    j = first + np.searchsorted(engine.trans_cumulative[first:last], x, side="right")
    return min(j, last - 1)


@numba.njit(cache=True, nogil=True)
def _record_jump(engine, tally, channel, traj, time):
    tally.jump_counts[channel] += 1
    tally.heat[traj, engine.chan_bath[channel]] += engine.chan_frequency[channel]
    tally.n_jumps[traj] += 1
    if tally.log_time.size > 0:
        n = tally.log_count[0]
        if n < tally.log_time.size:
            tally.log_time[n] = time
            tally.log_channel[n] = channel
        tally.log_count[0] = n + 1


@numba.njit(cache=True, nogil=True)
def _initial_state(engine, initial, rng, psi):
    """Write the initial state into ``psi``; returns the eigen-index for Gibbs sampling or -1."""
    if initial.cumulative.size > 0:
        x = uniform(rng) * initial.cumulative[-1]
        m = min(np.searchsorted(initial.cumulative, x, side="right"), psi.size - 1)
        psi[:] = 0.0
        psi[m] = 1.0
        return m
    psi[:] = initial.psi
    return -1


@numba.njit(cache=True, nogil=True)
def trajectory(engine, initial, tally, key, index, traj, work):
    """Run trajectory number ``index`` (global), tallying into row ``traj`` of the per-trajectory
    arrays. ``work`` is a (4, d) complex scratch array."""
    rng = np.empty(4, dtype=np.uint64)
    seed_trajectory(key, index, rng)
    times = tally.times
    t_final = times[-1]
    psi, coeff, new, user = work[0], work[1], work[2], work[3]
    levels = np.empty(engine.level_ptr.size - 1, dtype=np.int64)
    _initial_state(engine, initial, rng, psi)
    n_levels = _support(engine, psi, levels)
    t = 0.0
    k = 0
    while True:
        level = levels[0]
        if n_levels == 1 and engine.level_ptr[level + 1] - engine.level_ptr[level] == 1:
            # Pure mode: a classical Markov chain between non-degenerate eigenstates.
            while True:
                t, k = _pure_segment(engine, tally, level, t, k, rng)
                if t > t_final:
                    return
                j = _pure_jump(engine, tally, level, rng)
                _record_jump(engine, tally, engine.trans_channel[j], traj, t)
                tally.trans_counts[j] += 1
                level = engine.trans_target[j]
                if engine.level_ptr[level + 1] - engine.level_ptr[level] > 1:
                    break
            # Landed in a degenerate level: the state is the column M e_m, in amplitude mode.
            lo = engine.level_ptr[level]
            start = engine.trans_mat_ptr[j]
            psi[:] = 0.0
            for r in range(engine.level_ptr[level + 1] - lo):
                psi[lo + r] = engine.trans_mat[start + r]
            levels[0] = level
            n_levels = 1
            _normalise(engine, levels, n_levels, psi)
            continue
        # Amplitude mode: exact non-Hermitian evolution of the occupied level blocks.
        _to_right_coordinates(engine, levels, n_levels, psi, coeff)
        target = 1.0 - uniform(rng)
        tau = _waiting_time(engine, levels, n_levels, coeff, target, t_final - t, new)
        t_jump = t + tau if tau >= 0.0 else np.inf
        while k < times.size and times[k] < t_jump:
            _evolve(engine, levels, n_levels, coeff, times[k] - t, new)
            norm, _ = _norm_and_slope(engine, levels, n_levels, new)
            _accumulate(tally, engine, levels, n_levels, new, norm, k, user)
            k += 1
        if n_levels == 1:
            tally.occupation_time[levels[0]] += min(t_jump, t_final) - t
        if tau < 0.0:
            return
        _evolve(engine, levels, n_levels, coeff, tau, psi)
        new[:] = 0.0
        u = uniform(rng)
        if n_levels == 1:
            j = _jump_from_level(engine, levels[0], psi, new, u)
            channel = engine.trans_channel[j]
            tally.trans_counts[j] += 1
        else:
            channel = _jump_general(engine, psi, new, u)
        _record_jump(engine, tally, channel, traj, t_jump)
        psi[:] = new
        n_levels = _support(engine, psi, levels)
        _normalise(engine, levels, n_levels, psi)
        t = t_jump


@numba.njit(cache=True, nogil=True)
def _normalise(engine, levels, n_levels, psi):
    norm, _ = _norm_and_slope(engine, levels, n_levels, psi)
    scale = 1.0 / np.sqrt(norm)
    for i in range(n_levels):
        lv = levels[i]
        for m in range(engine.level_ptr[lv], engine.level_ptr[lv + 1]):
            psi[m] *= scale


@numba.njit(cache=True, nogil=True)
def run_chunk(engine, initial, tally, key, first, count):
    """Run trajectories ``first .. first+count-1`` (global indices) into ``tally``.

    Per-trajectory rows ``tally.heat[i]``, ``tally.n_jumps[i]`` belong to trajectory
    ``first + i``. Returns the total number of jumps.
    """
    d = engine.level_of.size
    work = np.zeros((4, d), dtype=np.complex128)
    for i in range(count):
        trajectory(engine, initial, tally, key, first + i, i, work)
    total = 0
    for i in range(count):
        total += tally.n_jumps[i]
    return total


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
