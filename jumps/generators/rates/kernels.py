"""Numba kernels of the rates generator: trajectories between eigenstates.

Pure functions over plain arrays (numpy, numba and the shared :mod:`jumps.core` pieces: no MPI,
no I/O). Each jump of a trajectory in eigenstate ``m``:

1. waiting time: exponential with the total rate ``level_rate[m]``; the output times it spans
   count ``m`` (:func:`jumps.core.lanes.pure_segment`);
2. target ``n``: Walker's alias method on row ``m`` (one slot and its alias: O(1));
3. bath ``a``: the bath set from the pair's rounded cumulative set fractions (16 bits), then
   the bath in the set from its rounded cumulative fractions (8 bits), each with its own
   uniform; when a uniform is within ``MARGIN`` quanta of a rounded boundary, the exact
   decision from the matrix elements ``<n|A_a|m>`` recomputed from the eigenvectors (all baths
   for the set, the set's baths for the bath in it: :func:`_exact_set`, :func:`_exact_in_set`);
4. record: the key ``(a d + m) d + n`` into the chunk's buffer of transitions (counted by the
   Python layer), heat ``E_m - E_n`` to bath ``a``.

As in the channel generator's kernel, up to ``lanes`` trajectories advance side by side with
prefetching, and each trajectory draws from its own stream in the same order whatever the
number of lanes.
"""

from __future__ import annotations

from collections import namedtuple

import numba
import numpy as np

from ...core.chebyshev import chebyshev
from ...core.lanes import LANES, lane_state, log_jump, next_trajectory, prefetch, pure_segment
from ...core.random import uniform

RateEngine = namedtuple("RateEngine", [
    "energies",         # (d,) float, ascending
    "level_rate",       # (d,) float: total rate out of each eigenstate
    "threshold",        # (d*d,) float: alias thresholds, row m = source m
    "alias",            # (d*d,) int32: alias targets
    "coarse_split",     # (d*d*(n_sets-1),) uint16: rounded cumulative fractions of bath sets
    "fine_split",       # (d*d*(n_baths-n_sets),) uint8: the same for the baths within a set
    "set_size",         # (1,) int64: baths per set
    "vectors",          # (d, d) float or complex: row m = eigenvector m (user's basis)
    "coupling_ptr",     # (n_baths, d+1) int64: CSR rows of each coupling, into col/val
    "coupling_col",     # (nnz,) int32
    "coupling_val",     # (nnz,) float or complex
    "rate_group",       # (n_baths,) int64: bath -> group (tables only with several groups)
    "rate_thermal",     # (G,) bool
    "rate_beta",        # (G,) float
    "rate_ptr",         # (G+1,) int64: panels of group g
    "rate_low",         # (P,) float
    "rate_high",        # (P,) float
    "rate_coefficients",  # (P, degree) float
])

RateTally = namedtuple("RateTally", [
    "times",            # (T,) float, ascending, from 0
    "level_counts",     # (d, T) int64: trajectories in eigenstate m at output time k
    "occupation_time",  # (d,) float: time spent in each eigenstate
    "taken",            # (capacity,) int64: keys (a d + m) d + n of the jumps, in order
    "n_taken",          # (1,) int64: jumps seen (more than capacity: re-run with more room)
    "exact_decisions",  # (1,) int64: bath choices that needed the exact matrix elements
    # Per trajectory of this call (jumps.core.records): heat, n_jumps, emissions, absorptions,
    # dephasings, first_jump_time, initial_level, final_level, final_energy.
    "heat", "n_jumps", "emissions", "absorptions", "dephasings", "first_jump_time",
    "initial_level", "final_level", "final_energy",
    # The jump log (jumps.core.records.new_log; code: the key (a d + m) d + n).
    "log_time", "log_code", "log_levels", "log_count",
])

# Rounded boundaries are within 0.5 quanta of the exact ones (plus rounding of the sums);
# a uniform at least MARGIN quanta away from both boundaries of its bath decides exactly.
MARGIN = 0.5 + 1e-6
COARSE_SCALE = 65535.0  # 16-bit cumulative fractions of the bath sets
FINE_SCALE = 255.0      # 8-bit cumulative fractions of the baths within a set


@numba.njit(cache=True, nogil=True)
def _group_rate(engine, group, w):
    """``gamma(w)`` of bath group ``group`` from its Chebyshev table (KMS for absorption)."""
    first, last = engine.rate_ptr[group], engine.rate_ptr[group + 1]
    if engine.rate_thermal[group]:
        x = abs(w)
        value = chebyshev(engine.rate_low, engine.rate_high, engine.rate_coefficients, first,
                          last, x)
        if w < 0.0:
            value *= np.exp(-engine.rate_beta[group] * x)
        return value
    return chebyshev(engine.rate_low, engine.rate_high, engine.rate_coefficients, first, last, w)


@numba.njit(cache=True, nogil=True)
def _exact_weights(engine, m, n, lo, hi, weights):
    """``weights[a] = gamma_a(E_m - E_n) |<n|A_a|m>|^2`` for baths ``lo <= a < hi`` (without
    the common ``gamma`` when all baths share one rate group), from the eigenvectors:
    ``O(sum_a nnz(A_a))`` over those baths."""
    d = engine.energies.size
    ptr, col, val = engine.coupling_ptr, engine.coupling_col, engine.coupling_val
    source, target = engine.vectors[m], engine.vectors[n]
    w = engine.energies[m] - engine.energies[n]
    several_groups = engine.rate_ptr.size > 2
    for a in range(lo, hi):
        element = 0.0 * source[0]
        for i in range(d):
            acc = 0.0 * source[0]
            for p in range(ptr[a, i], ptr[a, i + 1]):
                acc += val[p] * source[col[p]]
            element += np.conj(target[i]) * acc
        weight = element.real ** 2 + element.imag ** 2
        if several_groups:
            weight *= _group_rate(engine, engine.rate_group[a], w)
        weights[a] = weight


@numba.njit(cache=True, nogil=True)
def _pick(weights, lo, hi, step, fraction):
    """The group ``k`` of ``weights[lo + k*step : lo + (k+1)*step]`` (clipped to ``hi``) whose
    cumulative interval holds ``fraction`` of the total over ``lo:hi``; never an empty one."""
    total = 0.0
    for a in range(lo, hi):
        total += weights[a]
    y = fraction * total
    acc = 0.0
    groups = (hi - lo + step - 1) // step
    last = groups - 1
    for k in range(groups):
        mass = 0.0
        for a in range(lo + k * step, min(hi, lo + (k + 1) * step)):
            mass += weights[a]
        if mass > 0.0:
            last = k
            acc += mass
            if acc > y:
                return k
    return last


@numba.njit(cache=True, nogil=True)
def _exact_set(engine, m, n, u, weights, exact_decisions):
    """The bath set of the jump ``m -> n`` for the uniform ``u``, exactly (all the weights)."""
    exact_decisions[0] += 1
    n_baths = weights.size
    _exact_weights(engine, m, n, 0, n_baths, weights)
    return _pick(weights, 0, n_baths, engine.set_size[0], u)


@numba.njit(cache=True, nogil=True)
def _exact_in_set(engine, m, n, lo, hi, u, weights, exact_decisions, known):
    """The bath ``lo + j`` of set ``lo:hi`` for the uniform ``u``, exactly (the weights of the
    set, already in ``weights`` when ``known``)."""
    if not known:
        exact_decisions[0] += 1
        _exact_weights(engine, m, n, lo, hi, weights)
    return _pick(weights, lo, hi, 1, u)


@numba.njit(cache=True, nogil=True)
def _rounded_bath(bath_split, start, k, v):
    """The bath whose rounded interval holds ``v`` (quanta), or -1 when ``v`` lies within
    ``MARGIN`` of one of its boundaries (then only the exact weights decide)."""
    a = 0
    while a < k and v >= bath_split[start + a]:
        a += 1
    if a > 0 and v - bath_split[start + a - 1] < MARGIN:
        return -1
    if a < k and bath_split[start + a] - v < MARGIN:
        return -1
    return a


@numba.njit(cache=True, nogil=True)
def run_rate_chunk(engine, initial, tally, key, first, count, lanes=LANES):
    """Run trajectories ``first .. first+count-1`` (global indices) into ``tally``; returns
    the number of jumps, dephasing events (w = 0) included. Per-trajectory rows
    (``tally.heat[i]``, ...) belong to trajectory ``first + i``. Every trajectory starts in an
    eigenstate (``initial``: one, or drawn with weights)."""
    d = engine.energies.size
    n_baths = engine.rate_group.size
    times, level_counts = tally.times, tally.level_counts
    occupation_time, level_rate = tally.occupation_time, engine.level_rate
    threshold, alias = engine.threshold, engine.alias
    coarse_split, fine_split = engine.coarse_split, engine.fine_split
    size = engine.set_size[0]
    n_coarse = (n_baths + size - 1) // size - 1
    n_fine = n_baths - 1 - n_coarse
    energies, heat, n_jumps, taken = engine.energies, tally.heat, tally.n_jumps, tally.taken
    emissions, absorptions, dephasings = tally.emissions, tally.absorptions, tally.dephasings
    first_jump_time = tally.first_jump_time
    exact_decisions = tally.exact_decisions
    t_final = times[-1]
    weights = np.zeros(n_baths)
    n_lanes = max(1, min(lanes, count))
    row, level, t, k, rng, pick, draw = lane_state(n_lanes)
    next_row = 0
    while True:
        # Stage 1: every lane to its next jump; the alias slot among the targets.
        busy = 0
        for lane in range(n_lanes):
            while True:
                if row[lane] < 0:
                    if next_row >= count:
                        break
                    c = next_trajectory(row, lane, next_row, key, first, initial, rng)
                    level[lane] = initial.eigenstate[c]
                    tally.initial_level[row[lane]] = level[lane]
                    next_row += 1
                    t[lane], k[lane] = 0.0, 0
                t_jump, k[lane] = pure_segment(level_rate[level[lane]], times, level_counts,
                                                occupation_time, level[lane], t[lane], k[lane],
                                                rng[lane])
                if t_jump > t_final:
                    tally.final_level[row[lane]] = level[lane]
                    tally.final_energy[row[lane]] = energies[level[lane]]
                    row[lane] = -1
                    continue
                t[lane] = t_jump
                x = uniform(rng[lane]) * d
                slot = min(int(x), d - 1)
                pick[lane] = level[lane] * d + slot
                draw[lane] = x - slot
                prefetch(threshold, pick[lane])
                prefetch(alias, pick[lane])
                busy += 1
                break
        if busy == 0:
            break
        # Stage 2: the alias decision gives the target; prefetch the pair's bath split.
        for lane in range(n_lanes):
            if row[lane] >= 0:
                index = pick[lane]
                target = index - level[lane] * d
                if draw[lane] >= threshold[index]:
                    target = alias[index]
                pick[lane] = level[lane] * d + target
                if n_coarse > 0:
                    prefetch(coarse_split, pick[lane] * n_coarse)
                if n_fine > 0:
                    prefetch(fine_split, pick[lane] * n_fine)
        # Stage 3: the bath, and the jump's record.
        for lane in range(n_lanes):
            if row[lane] >= 0:
                m = level[lane]
                n = pick[lane] - m * d
                a = 0
                # The bath choice is written out here, not called: as a function (even
                # inline="always") it ran the 10-spin chain at 2.3-3.8 M jumps/s instead of
                # 5-8 M (medians of 5). Tests run this kernel, not a twin of it.
                if n_baths > 1:
                    g = 0
                    known = False
                    if n_coarse > 0:
                        u = uniform(rng[lane])
                        g = _rounded_bath(coarse_split, pick[lane] * n_coarse, n_coarse,
                                          u * COARSE_SCALE)
                        if g < 0:
                            g = _exact_set(engine, m, n, u, weights, exact_decisions)
                            known = True
                    lo = g * size
                    a = lo
                    if n_baths - lo > 1 and size > 1:
                        width = min(size, n_baths - lo)
                        u = uniform(rng[lane])
                        j = -1
                        if not known:
                            j = _rounded_bath(fine_split, pick[lane] * n_fine + g * (size - 1),
                                              width - 1, u * FINE_SCALE)
                        if j < 0:
                            j = _exact_in_set(engine, m, n, lo, lo + width, u, weights,
                                              exact_decisions, known)
                        a = lo + j
                jump = tally.n_taken[0]
                if jump < taken.size:
                    taken[jump] = (a * d + m) * d + n
                tally.n_taken[0] = jump + 1
                r, w = row[lane], energies[m] - energies[n]
                heat[r, a] += w
                if m != n:  # distinct levels of a non-degenerate spectrum: w != 0
                    n_jumps[r] += 1
                    if w > 0.0:
                        emissions[r, a] += 1
                    else:
                        absorptions[r, a] += 1
                    first_jump_time[r] = min(first_jump_time[r], t[lane])
                else:
                    dephasings[r, a] += 1
                if tally.log_time.size > 0:
                    log_jump(tally.log_time, tally.log_code, tally.log_levels, tally.log_count,
                             t[lane], (a * d + m) * d + n, m, n)
                level[lane] = n
    total = 0
    for i in range(count):
        total += n_jumps[i]
        for a in range(n_baths):
            total += dephasings[i, a]
    return total
