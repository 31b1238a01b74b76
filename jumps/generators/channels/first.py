"""The first segment of amplitude-mode trajectories from an initial vector, tabulated.

A trajectory that starts from a pure state that is not one eigenstate (a product state, a
superposition) evolves without a jump, the same in every trajectory, until its first jump: its
output times up to then need not be computed per trajectory. :func:`first_segment_tables`
computes them once per chunk (populations, observables, the rho diagonal and the squared norm
at every output time, by :func:`.observe.segment_outputs` itself); each trajectory finds where
its norm first reaches its jump target in the table and counts itself there; and
:func:`add_first_segments` adds ``count * value`` and ``count * value^2`` per output time.
"""

from __future__ import annotations

import numba
import numpy as np

from .evolution import support, to_right_coordinates
from .observe import output_sums, segment_outputs


@numba.njit(cache=True, nogil=True)
def first_segment_tables(engine, initial, tally, step0, dt0, levels, work, parts, occ,
                         enabled):
    """The first segment of a trajectory from each initial vector (a pure state that is not one
    eigenstate): until its first jump the state is the same in every trajectory, so its output
    times are computed once per chunk, here, not once per trajectory. Returns ``(pop, obs,
    rho, norm)``: for vector ``v`` and output time ``k`` what one trajectory adds to the
    populations', observables' and rho diagonal's sums (:func:`.observe.segment_outputs` on
    the no-jump evolution to t_final) and the squared norm. With the full density matrix
    (each trajectory's state goes to the buffer), no initial vector or ``enabled`` false: no
    tables (size 0).

    A trajectory then only finds where its norm first reaches its jump target (the same test,
    on the same numbers, as segment_outputs: the same decisions) and counts itself there
    (``first_count``); :func:`add_first_segments` adds ``count * value`` and ``count *
    value^2`` for each output time. The sums differ from per-trajectory additions by rounding
    only. For a product state on the 6-spin chain the first segment spans ~40 of 101 output
    times on 35 eigenstates: ~40% of the output work."""
    times = tally.times
    n_vec = initial.psi.shape[0] if enabled and tally.buffer.shape[0] == 0 else 0
    pop = np.zeros((n_vec, tally.pop_sum.shape[0], tally.pop_sum.shape[1]))
    obs = np.zeros((n_vec, tally.obs_sum.shape[0], tally.obs_sum.shape[1]))
    rho = np.zeros((n_vec, tally.rhodiag_sum.shape[0], tally.rhodiag_sum.shape[1]))
    norm = np.zeros((n_vec, times.size))
    pop_sq, obs_sq, rho_sq = np.zeros_like(tally.pop_sum), np.zeros_like(tally.obs_sum), \
        np.zeros_like(tally.rhodiag_sum)
    none = np.zeros((0, times.size))
    no_count = np.zeros((0, times.size + 1), dtype=np.int64)
    psi, coeff = work[0], work[1]
    for v in range(n_vec):
        psi[:] = initial.psi[v]
        n_levels = support(engine.level_ptr, psi, levels)
        to_right_coordinates(engine.level_ptr, engine.block_ptr, engine.heff_left, levels,
                             n_levels, psi, coeff)
        sums = output_sums(engine, tally, step0, dt0, pop[v], pop_sq, obs[v], obs_sq, rho[v],
                           rho_sq, norm[v], none, no_count)
        segment_outputs(sums, levels, n_levels, coeff, 0.0, 0.0, 0, work, parts, occ)
    return pop, obs, rho, norm


@numba.njit(cache=True, nogil=True)
def add_first_segments(first_count, pop, obs, rho, tally):
    """Add the first segments (:func:`first_segment_tables`) of the chunk's trajectories:
    output time ``k`` was passed by the trajectories whose first segment ended after it."""
    pop_sum, pop_sumsq, obs_sum, obs_sumsq = (tally.pop_sum, tally.pop_sumsq, tally.obs_sum,
                                              tally.obs_sumsq)
    rho_sum, rho_sumsq = tally.rhodiag_sum, tally.rhodiag_sumsq
    for v in range(first_count.shape[0]):
        passed = 0
        for k in range(first_count.shape[1] - 2, -1, -1):
            passed += first_count[v, k + 1]
            if passed == 0:
                continue
            c = float(passed)
            for m in range(pop.shape[2]):
                x = pop[v, k, m]
                pop_sum[k, m] += c * x
                pop_sumsq[k, m] += c * (x * x)
            for o in range(obs.shape[2]):
                x = obs[v, k, o]
                obs_sum[k, o] += c * x
                obs_sumsq[k, o] += c * (x * x)
            for r in range(rho.shape[2]):
                x = rho[v, k, r]
                rho_sum[k, r] += c * x
                rho_sumsq[k, r] += c * (x * x)
