"""Numba kernels of the rates generator (:mod:`jumps.rates`): trajectories between eigenstates.

Pure functions over plain arrays (numpy, numba and :mod:`jumps.kernels`, no MPI, no I/O). Each
jump of a trajectory in eigenstate ``m``:

1. waiting time: exponential with the total rate ``level_rate[m]``; the output times it spans
   count ``m`` (as :func:`jumps.kernels._pure_segment`);
2. target ``n``: Walker's alias method on row ``m`` (one slot and its alias: O(1));
3. bath ``a``: from the rounded cumulative bath fractions of the pair; when the uniform is
   within ``MARGIN`` quanta of a rounded boundary, the exact decision from the matrix elements
   ``<n|A_a|m>`` recomputed from the eigenvectors (:func:`_exact_bath`);
4. record: the key ``(a d + m) d + n`` into the chunk's buffer of transitions (counted by the
   Python layer), heat ``E_m - E_n`` to bath ``a``.

As in :func:`jumps.kernels.run_chunk`, up to ``lanes`` trajectories advance side by side with
prefetching, and each trajectory draws from its own stream in the same order whatever the
number of lanes.
"""

from __future__ import annotations

from collections import namedtuple

import numba
import numpy as np

from .kernels import (
    LANES,
    _log,
    _pure_segment,
    chebyshev,
    lane_state,
    next_trajectory,
    prefetch,
    uniform,
)

RateEngine = namedtuple("RateEngine", [
    "energies",         # (d,) float, ascending
    "level_rate",       # (d,) float: total rate out of each eigenstate
    "threshold",        # (d*d,) float: alias thresholds, row m = source m
    "alias",            # (d*d,) int32: alias targets
    "bath_split",       # (d*d*(n_baths-1),) uint8/uint16: rounded cumulative bath fractions
    "split_scale",      # (1,) float: 255 or 65535
    "vectors",          # (d, d) float or complex: row m = eigenvector m (user's basis)
    "coupling_ptr",     # (n_baths, d+1) int64: CSR rows of each coupling, into col/val
    "coupling_col",     # (nnz,) int64
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
    "heat",             # (ntraj, n_baths) float: per trajectory of this call
    "n_jumps",          # (ntraj,) int64
    "taken",            # (capacity,) int64: keys (a d + m) d + n of the jumps, in order
    "n_taken",          # (1,) int64: jumps seen (more than capacity: re-run with more room)
    "exact_decisions",  # (1,) int64: bath choices that needed the exact matrix elements
    "log_time",         # (capacity,) float: jump times, or (0,) for no jump list
    "log_channel",      # (capacity,) int64: jump keys
    "log_count",        # (1,) int64
])

# Rounded boundaries are within 0.5 quanta of the exact ones (plus rounding of the sums);
# a uniform at least MARGIN quanta away from both boundaries of its bath decides exactly.
MARGIN = 0.5 + 1e-6


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
def _exact_bath(engine, m, n, fraction, weights):
    """The bath of the jump ``m -> n`` for the uniform ``fraction``, from the exact weights
    ``gamma_a(E_m - E_n) |<n|A_a|m>|^2`` (``O(sum_a nnz(A_a))``; ``weights`` is scratch)."""
    n_baths = engine.coupling_ptr.shape[0]
    d = engine.energies.size
    w = engine.energies[m] - engine.energies[n]
    several_groups = engine.rate_ptr.size > 2
    total = 0.0
    for a in range(n_baths):
        element = 0.0 * engine.vectors[0, 0]
        for i in range(d):
            acc = 0.0 * engine.vectors[0, 0]
            for p in range(engine.coupling_ptr[a, i], engine.coupling_ptr[a, i + 1]):
                acc += engine.coupling_val[p] * engine.vectors[m, engine.coupling_col[p]]
            element += np.conj(engine.vectors[n, i]) * acc
        weight = element.real ** 2 + element.imag ** 2
        if several_groups:
            weight *= _group_rate(engine, engine.rate_group[a], w)
        weights[a] = weight
        total += weight
    y = fraction * total
    acc = 0.0
    last = n_baths - 1
    for a in range(n_baths):
        if weights[a] > 0.0:
            last = a
            acc += weights[a]
            if acc > y:
                return a
    return last


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
    the total number of jumps. Rows ``tally.heat[i]``, ``tally.n_jumps[i]`` belong to
    trajectory ``first + i``. Every trajectory starts in an eigenstate (``initial``: a given
    one, or Gibbs-sampled)."""
    d = engine.energies.size
    n_baths = engine.coupling_ptr.shape[0]
    k_split = n_baths - 1
    times, level_counts = tally.times, tally.level_counts
    occupation_time, level_rate = tally.occupation_time, engine.level_rate
    threshold, alias, bath_split = engine.threshold, engine.alias, engine.bath_split
    energies, heat, n_jumps, taken = engine.energies, tally.heat, tally.n_jumps, tally.taken
    exact_decisions, scale = tally.exact_decisions, engine.split_scale[0]
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
                    level[lane] = next_trajectory(row, lane, next_row, key, first, initial, rng)
                    next_row += 1
                    t[lane], k[lane] = 0.0, 0
                t_jump, k[lane] = _pure_segment(level_rate[level[lane]], times, level_counts,
                                                occupation_time, level[lane], t[lane], k[lane],
                                                rng[lane])
                if t_jump > t_final:
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
                if k_split > 0:
                    prefetch(bath_split, pick[lane] * k_split)
        # Stage 3: the bath, and the jump's record.
        for lane in range(n_lanes):
            if row[lane] >= 0:
                m = level[lane]
                n = pick[lane] - m * d
                a = 0
                if k_split > 0:
                    u = uniform(rng[lane])
                    a = _rounded_bath(bath_split, pick[lane] * k_split, k_split, u * scale)
                    if a < 0:
                        exact_decisions[0] += 1
                        a = _exact_bath(engine, m, n, u, weights)
                jump = tally.n_taken[0]
                if jump < taken.size:
                    taken[jump] = (a * d + m) * d + n
                tally.n_taken[0] = jump + 1
                heat[row[lane], a] += energies[m] - energies[n]
                n_jumps[row[lane]] += 1
                if tally.log_time.size > 0:
                    _log(tally.log_time, tally.log_channel, tally.log_count, t[lane],
                         (a * d + m) * d + n)
                level[lane] = n
    total = 0
    for i in range(count):
        total += n_jumps[i]
    return total
