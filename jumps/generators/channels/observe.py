"""The output times of amplitude mode: the state at every output time of a no-jump segment,
added to the running sums.

One call per segment (between two jumps), not per output time: every array is bound once
(Numba adds an atomic reference-count pair for each array it takes out of a namedtuple, and per
output time those pairs cost a fifth of the amplitude path), the occupied eigenstates are listed
once, and the per-output work is plain loops over them:

- the phases ``exp(-i lambda (t_k - t))`` by recurrence: on the grid's first interval ``dt0``
  with ``step0 = exp(-i lambda dt0)`` computed once per kernel call (an interval that differs
  from ``dt0`` by rounding only, as ``linspace`` grids do, counts as ``dt0``: the phase is then
  off by ``lambda`` times a few ulps of t, ~1e-14), other intervals with their own exponentials;
- the state ``psi(t_k) = R (phase * coeff)`` on the occupied level blocks, its norm;
- populations, observables given in the eigenbasis (a product over the occupied states, or
  within each occupied level for LEVEL_BLOCKS observables);
- the state in the user's basis, ``u = sum_m psi_m v_m`` over the occupied eigenstates ``m``
  (rows ``v_m`` of the basis), for the diagonal of rho, the observables diagonal in the user's
  basis and the full density matrix's buffer (:mod:`.output`). With a real basis, four
  eigenstates per pass over ``u``: eight multiply-adds per load and store of ``u`` instead of
  two (the loop is bound by memory operations, not arithmetic).
"""

from __future__ import annotations

from collections import namedtuple

import numba
import numpy as np

from ...core.vexp import phase_factor

# The arrays the output times read and write.
OutputSums = namedtuple("OutputSums", [
    "times", "level_ptr", "block_ptr", "lam", "right", "pop_sum", "pop_sumsq", "observables",
    "observable_mode", "user_diagonal", "obs_sum", "obs_sumsq", "basis", "real_basis",
    "rhodiag_sum", "rhodiag_sumsq", "buffer", "fill",
    "step0",            # (d,) complex: exp(-i lambda dt0) (uniform_steps)
    "dt0",              # float: the grid's first interval (0 with one output time)
    "norms",            # (T,) float: the squared norm at each output time is stored here
                        # (first-segment tables, first.first_segment_tables), or (0,)
    "first_norm",       # (n_vectors, T) float: the first segments' squared norms, or (0, T)
    "first_count"])     # (n_vectors, T + 1) int64: trajectories whose first segment ended
                        # at output time k (T: none), per initial vector

# Two output intervals differing by less than this many ulps of the time are one interval.
SAME_INTERVAL_ULPS = 16.0
EPSILON = float(np.finfo(np.float64).eps)

# Observable modes (Tally.observable_mode): a dense product over the occupied eigenstates;
# the diagonal in the user's basis, after the basis change the diagonal of rho needs anyway;
# blocks of the eigenbasis matrix within each occupied level (conserved quantities such as the
# energy: a single-level state costs b^2, not d^2).
DENSE, USER_DIAGONAL, LEVEL_BLOCKS = 0, 1, 2


# Work rows of segment_outputs (the kernel's (WORK_ROWS, d) complex array; rows 0 and 1 are the
# state and its R-coordinates, owned by the caller). NEW holds the state by eigen-index; the
# compact rows hold one entry per occupied eigenstate (index i of occ), so their loops are
# contiguous. They are indexed as work[ROW, i], not bound as row views: each view costs an
# atomic reference-count pair per call.
NEW, PHASE, STEP, COEFF, CURRENT, STEP0 = 2, 3, 4, 5, 6, 7
WORK_ROWS = 8


@numba.njit(cache=True, nogil=True)
def output_sums(engine, tally, step0, dt0, pop_sum, pop_sumsq, obs_sum, obs_sumsq, rhodiag_sum,
                rhodiag_sumsq, norms, first_norm, first_count):
    """The :data:`OutputSums` of a kernel call: the engine's and tally's arrays the output
    times read, and the sums they add to (the tally's, or a first-segment table's)."""
    return OutputSums(tally.times, engine.level_ptr, engine.block_ptr, engine.heff_lambda,
                      engine.heff_right, pop_sum, pop_sumsq, tally.observables,
                      tally.observable_mode, tally.user_diagonal, obs_sum, obs_sumsq,
                      tally.basis, tally.real_basis, rhodiag_sum, rhodiag_sumsq, tally.buffer,
                      tally.fill, step0, dt0, norms, first_norm, first_count)


@numba.njit(cache=True, nogil=True, fastmath={"contract"})
def segment_outputs(sums, levels, n_levels, coeff, t, target, k, work, parts, occ):
    """Add the state at the output times ``t_k`` (from ``k`` on) before the next jump to
    ``sums`` (:data:`OutputSums`); ``coeff``: the state at ``t`` in R-coordinates on the levels
    ``levels[:n_levels]``, ``target``: the squared norm at which it jumps. Returns ``(k,
    before, after)``: ``k`` the index of the first output time whose squared norm (``after``)
    is ``<= target`` (the jump is at or before it, after the output time before it or the
    segment's start, whose squared norm is ``before``: the bracket of
    :func:`.evolution.waiting_time`), or ``times.size`` (no jump up to the last output time,
    ``t_final``; ``after`` is then 0). The norms at the output times cost nothing extra: each
    state is normalised anyway.

    ``work``: the kernel's complex work rows (:data:`WORK_ROWS`; rows ``NEW`` ... ``STEP0``
    are this function's); ``parts``: float scratch, rows 0 and 1 (the state in the user's
    basis); ``occ``: (d,) int64.

    Compiled with floating-point contraction (``fastmath={"contract"}``: a multiply and an add
    may become one fused multiply-add, rounded once). The sums therefore differ from a
    contraction-free build by rounding only; a given build gives the same numbers on every
    rank, chunk and lane."""
    times = sums.times
    if k >= times.size:
        return k, 1.0, 0.0
    level_ptr, block_ptr, lam, right = sums.level_ptr, sums.block_ptr, sums.lam, sums.right
    pop_sum, pop_sumsq, obs_sum, obs_sumsq = (sums.pop_sum, sums.pop_sumsq, sums.obs_sum,
                                              sums.obs_sumsq)
    observables, modes, user_diagonal = sums.observables, sums.observable_mode, sums.user_diagonal
    basis, real_basis = sums.basis, sums.real_basis
    rhodiag_sum, rhodiag_sumsq, buffer, fill = (sums.rhodiag_sum, sums.rhodiag_sumsq,
                                                sums.buffer, sums.fill)
    re, im = parts[0], parts[1]
    d = re.size
    n_obs = observables.shape[0]
    n_occ = 0
    single = True
    for i in range(n_levels):
        lv = levels[i]
        single = single and level_ptr[lv + 1] - level_ptr[lv] == 1
        for m in range(level_ptr[lv], level_ptr[lv + 1]):
            occ[n_occ] = m
            n_occ += 1
    user_needed = rhodiag_sum.shape[0] > 0 or buffer.shape[0] > 0
    eigen_needed = not single  # the state by eigen-index, in work[NEW]
    for o in range(n_obs):
        user_needed = user_needed or modes[o] == USER_DIAGONAL
        eigen_needed = eigen_needed or modes[o] != USER_DIAGONAL
    real = real_basis.shape[0] > 0
    step0, dt0 = sums.step0, sums.dt0
    for i in range(n_occ):
        work[COEFF, i] = coeff[occ[i]]
        work[STEP0, i] = step0[occ[i]]
    interval = -1.0
    first = k
    before, after = 1.0, 0.0  # the state at t is normalised
    norms = sums.norms
    keep_norms = norms.shape[0] > 0
    while k < times.size:
        # Phases: exact at the first output time, then by recurrence.
        if k == first:
            for i in range(n_occ):
                work[PHASE, i] = phase_factor(lam[occ[i]], times[k] - t)
        elif abs(times[k] - times[k - 1] - dt0) <= SAME_INTERVAL_ULPS * EPSILON * times[k]:
            for i in range(n_occ):
                work[PHASE, i] *= work[STEP0, i]
        else:
            if times[k] - times[k - 1] != interval:
                interval = times[k] - times[k - 1]
                for i in range(n_occ):
                    work[STEP, i] = phase_factor(lam[occ[i]], interval)
            for i in range(n_occ):
                work[PHASE, i] *= work[STEP, i]
        # The state R (phase * coeff), compact in work[CURRENT] (and by eigen-index in
        # work[NEW] when something reads it so).
        if single:
            for i in range(n_occ):
                work[CURRENT, i] = work[COEFF, i] * work[PHASE, i]
            if eigen_needed:
                for i in range(n_occ):
                    work[NEW, occ[i]] = work[CURRENT, i]
        else:
            i0 = 0
            for i in range(n_levels):
                lv = levels[i]
                lo, hi = level_ptr[lv], level_ptr[lv + 1]
                b = hi - lo
                if b == 1:
                    work[NEW, lo] = work[COEFF, i0] * work[PHASE, i0]
                else:
                    start = block_ptr[lv]
                    for r in range(b):
                        work[NEW, lo + r] = 0.0
                    for c in range(b):
                        phased = work[COEFF, i0 + c] * work[PHASE, i0 + c]
                        for r in range(b):
                            work[NEW, lo + r] += right[start + r * b + c] * phased
                i0 += b
            for i in range(n_occ):
                work[CURRENT, i] = work[NEW, occ[i]]
        # Its squared norm, in four partial sums (independent additions).
        n0, n1, n2, n3 = 0.0, 0.0, 0.0, 0.0
        i = 0
        while i + 4 <= n_occ:
            n0 += work[CURRENT, i].real ** 2 + work[CURRENT, i].imag ** 2
            n1 += work[CURRENT, i + 1].real ** 2 + work[CURRENT, i + 1].imag ** 2
            n2 += work[CURRENT, i + 2].real ** 2 + work[CURRENT, i + 2].imag ** 2
            n3 += work[CURRENT, i + 3].real ** 2 + work[CURRENT, i + 3].imag ** 2
            i += 4
        while i < n_occ:
            n0 += work[CURRENT, i].real ** 2 + work[CURRENT, i].imag ** 2
            i += 1
        norm = (n0 + n1) + (n2 + n3)
        if keep_norms:
            norms[k] = norm
        if norm <= target:  # the jump comes first
            after = norm
            break
        before = norm
        scale = 1.0 / norm
        # Populations and the observables given in the eigenbasis.
        for i in range(n_occ):
            m = occ[i]
            p = (work[CURRENT, i].real ** 2 + work[CURRENT, i].imag ** 2) * scale
            pop_sum[k, m] += p
            pop_sumsq[k, m] += p * p
        for o in range(n_obs):
            mode = modes[o]
            if mode == USER_DIAGONAL:
                continue
            value = 0.0
            for i in range(n_levels):
                lv = levels[i]
                for m in range(level_ptr[lv], level_ptr[lv + 1]):
                    acc = 0j
                    if mode == LEVEL_BLOCKS:
                        for n in range(level_ptr[lv], level_ptr[lv + 1]):
                            acc += observables[o, m, n] * work[NEW, n]
                    else:
                        for j in range(n_occ):
                            acc += observables[o, m, occ[j]] * work[NEW, occ[j]]
                    value += (np.conj(work[NEW, m]) * acc).real
            value *= scale
            obs_sum[k, o] += value
            obs_sumsq[k, o] += value * value
        if user_needed:
            # u = sum_m psi_m v_m over the occupied eigenstates (rows v_m of the basis), written
            # out here: an inlined function would bind its six array arguments anew, an atomic
            # reference-count pair each per output time. With a real basis, four eigenstates
            # per pass over u (fused multiply-adds, eight per load and store of u); the first
            # pass writes u, the others add to it.
            root = np.sqrt(scale)
            if real:
                # The first pass takes the n_occ % 4 left over (or four) and writes u; the
                # others take four each and add: ceil(n_occ / 4) passes over u in all.
                first_pass = n_occ % 4
                if first_pass == 0:
                    first_pass = 4 if n_occ >= 4 else 0
                if first_pass == 0:
                    for r in range(d):
                        re[r] = 0.0
                        im[r] = 0.0
                elif first_pass == 1:
                    m0 = occ[0]
                    a0, b0 = work[CURRENT, 0].real * root, work[CURRENT, 0].imag * root
                    for r in range(d):
                        v0 = real_basis[m0, r]
                        re[r] = a0 * v0
                        im[r] = b0 * v0
                elif first_pass == 2:
                    m0, m1 = occ[0], occ[1]
                    a0, b0 = work[CURRENT, 0].real * root, work[CURRENT, 0].imag * root
                    a1, b1 = work[CURRENT, 1].real * root, work[CURRENT, 1].imag * root
                    for r in range(d):
                        v0, v1 = real_basis[m0, r], real_basis[m1, r]
                        re[r] = a0 * v0 + a1 * v1
                        im[r] = b0 * v0 + b1 * v1
                elif first_pass == 3:
                    m0, m1, m2 = occ[0], occ[1], occ[2]
                    a0, b0 = work[CURRENT, 0].real * root, work[CURRENT, 0].imag * root
                    a1, b1 = work[CURRENT, 1].real * root, work[CURRENT, 1].imag * root
                    a2, b2 = work[CURRENT, 2].real * root, work[CURRENT, 2].imag * root
                    for r in range(d):
                        v0, v1, v2 = real_basis[m0, r], real_basis[m1, r], real_basis[m2, r]
                        re[r] = a0 * v0 + a1 * v1 + a2 * v2
                        im[r] = b0 * v0 + b1 * v1 + b2 * v2
                else:
                    m0, m1, m2, m3 = occ[0], occ[1], occ[2], occ[3]
                    a0, b0 = work[CURRENT, 0].real * root, work[CURRENT, 0].imag * root
                    a1, b1 = work[CURRENT, 1].real * root, work[CURRENT, 1].imag * root
                    a2, b2 = work[CURRENT, 2].real * root, work[CURRENT, 2].imag * root
                    a3, b3 = work[CURRENT, 3].real * root, work[CURRENT, 3].imag * root
                    for r in range(d):
                        v0, v1 = real_basis[m0, r], real_basis[m1, r]
                        v2, v3 = real_basis[m2, r], real_basis[m3, r]
                        re[r] = a0 * v0 + a1 * v1 + a2 * v2 + a3 * v3
                        im[r] = b0 * v0 + b1 * v1 + b2 * v2 + b3 * v3
                i = first_pass
                while i < n_occ:
                    m0, m1, m2, m3 = occ[i], occ[i + 1], occ[i + 2], occ[i + 3]
                    a0, b0 = work[CURRENT, i].real * root, work[CURRENT, i].imag * root
                    a1, b1 = work[CURRENT, i + 1].real * root, work[CURRENT, i + 1].imag * root
                    a2, b2 = work[CURRENT, i + 2].real * root, work[CURRENT, i + 2].imag * root
                    a3, b3 = work[CURRENT, i + 3].real * root, work[CURRENT, i + 3].imag * root
                    for r in range(d):
                        v0, v1 = real_basis[m0, r], real_basis[m1, r]
                        v2, v3 = real_basis[m2, r], real_basis[m3, r]
                        re[r] = re[r] + a0 * v0 + a1 * v1 + a2 * v2 + a3 * v3
                        im[r] = im[r] + b0 * v0 + b1 * v1 + b2 * v2 + b3 * v3
                    i += 4
            else:
                for r in range(d):
                    re[r] = 0.0
                    im[r] = 0.0
                for i in range(n_occ):
                    m = occ[i]
                    a, b = work[CURRENT, i].real * root, work[CURRENT, i].imag * root
                    for r in range(d):
                        v = basis[m, r]
                        re[r] += a * v.real - b * v.imag
                        im[r] += a * v.imag + b * v.real
            if buffer.shape[0] > 0:
                row = fill[k]
                for r in range(d):
                    buffer[k, row, r] = complex(re[r], im[r])
                fill[k] += 1
            # From here on re[] holds |u_r|^2.
            for r in range(d):
                re[r] = re[r] * re[r] + im[r] * im[r]
            for o in range(n_obs):
                if modes[o] == USER_DIAGONAL:
                    s0, s1, s2, s3 = 0.0, 0.0, 0.0, 0.0
                    r = 0
                    while r + 4 <= d:
                        s0 += user_diagonal[o, r] * re[r]
                        s1 += user_diagonal[o, r + 1] * re[r + 1]
                        s2 += user_diagonal[o, r + 2] * re[r + 2]
                        s3 += user_diagonal[o, r + 3] * re[r + 3]
                        r += 4
                    while r < d:
                        s0 += user_diagonal[o, r] * re[r]
                        r += 1
                    value = (s0 + s1) + (s2 + s3)
                    obs_sum[k, o] += value
                    obs_sumsq[k, o] += value * value
            if rhodiag_sum.shape[0] > 0:
                for r in range(d):
                    p = re[r]
                    rhodiag_sum[k, r] += p
                    rhodiag_sumsq[k, r] += p * p
        k += 1
    return k, before, after


@numba.njit(cache=True, nogil=True, fastmath={"contract"})
def uniform_steps(lam, times):
    """``(step0, dt0)``: ``exp(-i lambda dt0)`` for every eigenstate, ``dt0`` the grid's first
    interval (once per kernel call: d exponentials)."""
    dt0 = times[1] - times[0] if times.size > 1 else 0.0
    step0 = np.empty(lam.size, dtype=np.complex128)
    for m in range(lam.size):
        step0[m] = phase_factor(lam[m], dt0)
    return step0, dt0
