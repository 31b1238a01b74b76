"""The exact no-jump evolution of amplitude mode, and the waiting time to the next jump.

``H_eff = H + H_LS - (i/2) K`` is block diagonal over the energy levels; each level block is
diagonalised once (``R diag(lambda) R^-1``, :func:`jumps.generators.channels.unravel.pack_engine`),
so a state kept in R-coordinates ``c`` evolves as ``psi(tau) = R exp(-i lambda tau) c`` on the
levels where it has weight, with no time step. The waiting time solves ``||psi(tau)||^2 = r``
by safeguarded Newton/bisection; on non-degenerate levels the norm is a sum of real
exponentials (``exp_real``, a loop that vectorises), with no phases to compute.
"""

from __future__ import annotations

import numba
import numpy as np

from ...core.vexp import exp_real, phase_factor

# The waiting time's root search stops when a step or the bracket is below this, relative to
# the time (the norm it inverts is itself rounded at ~1e-16).
ROOT_TOLERANCE = 1e-14
# A cap that only rules out an endless loop: 200 bisections alone would shrink any bracket by
# 2^-200 ~ 1e-60, far past ROOT_TOLERANCE.
MAX_ROOT_STEPS = 200


@numba.njit(cache=True, nogil=True, fastmath={"contract"})
def evolve(level_ptr, block_ptr, lam, right, levels, n_levels, coeff, tau, out):
    """``out = R exp(-i lambda tau) coeff`` on the listed levels (coeff in R-coordinates).

    These functions run at every jump: they take the engine's arrays (``lam``:
    ``engine.heff_lambda``, ``right``: ``engine.heff_right``, ...), not the engine (Numba adds
    an atomic reference-count pair per array of a namedtuple argument per call: with the ~27
    arrays of the Engine, a tenth of the amplitude path's time)."""
    for i in range(n_levels):
        k = levels[i]
        lo, hi = level_ptr[k], level_ptr[k + 1]
        b = hi - lo
        if b == 1:
            out[lo] = coeff[lo] * phase_factor(lam[lo], tau)
            continue
        start = block_ptr[k]
        out[lo:hi] = 0.0
        for c in range(b):  # one exponential per component, then the block's column
            phased = coeff[lo + c] * phase_factor(lam[lo + c], tau)
            for r in range(b):
                out[lo + r] += right[start + r * b + c] * phased


@numba.njit(cache=True, nogil=True)
def block_norm(level_ptr, block_ptr, decay_blocks, levels, n_levels, psi):
    """``||psi||^2`` and its time derivative ``-psi^dag K psi`` on the listed levels."""
    norm = 0.0
    slope = 0.0
    for i in range(n_levels):
        k = levels[i]
        lo, hi = level_ptr[k], level_ptr[k + 1]
        b = hi - lo
        start = block_ptr[k]
        for r in range(b):
            norm += psi[lo + r].real ** 2 + psi[lo + r].imag ** 2
            acc = 0j
            for c in range(b):
                acc += decay_blocks[start + r * b + c] * psi[lo + c]
            slope -= (np.conj(psi[lo + r]) * acc).real
    return norm, slope


@numba.njit(cache=True, nogil=True)
def to_right_coordinates(level_ptr, block_ptr, left, levels, n_levels, psi, coeff):
    """``coeff = R^-1 psi`` on the listed levels (``left``: ``engine.heff_left``)."""
    for i in range(n_levels):
        k = levels[i]
        lo, hi = level_ptr[k], level_ptr[k + 1]
        b = hi - lo
        if b == 1:
            coeff[lo] = left[block_ptr[k]] * psi[lo]
            continue
        start = block_ptr[k]
        for r in range(b):
            acc = 0j
            for c in range(b):
                acc += left[start + r * b + c] * psi[lo + c]
            coeff[lo + r] = acc


@numba.njit(cache=True, nogil=True, fastmath={"contract"})
def waiting_time(level_ptr, block_ptr, lam, right, decay_blocks, levels, n_levels, coeff, target,
                 tau_lo, tau_hi, norm_lo, norm_hi, work, scratch):
    """The ``tau`` in the bracket ``[tau_lo, tau_hi]`` with ``||psi(tau)||^2 = target``, where
    ``norm_lo = ||psi(tau_lo)||^2 > target >= ||psi(tau_hi)||^2 = norm_hi`` (the caller found
    the bracket: the output times on either side of the jump,
    :func:`.observe.segment_outputs`). The search starts where the straight line through the
    ends' ``ln ||psi||^2`` crosses ``ln target`` (off by the curvature over one output
    interval only: about three Newton steps fewer than from ``tau_lo``).

    The norm decreases monotonically. Newton's method runs on ``ln ||psi(tau)||^2 - ln
    target``: on non-degenerate levels that is the logarithm of a sum of decaying exponentials,
    convex, so the iterates from ``tau_lo`` rise monotonically to the root without overshoot,
    exactly in one step for a single exponential and in a few for a mixture (Newton on the norm
    itself crawled). Within one output interval the logarithm is close to linear: about three
    norm evaluations per search (~6 from the segment's start with the old convergence test,
    docs/design.md). The steps are kept inside a shrinking bracket and
    replaced by bisection when they leave it (states on degenerate levels, whose norm need not
    be log-convex; or a norm that differs from the caller's by rounding at the bracket's
    ends). ``scratch``: (3, d) float (the decay rates, weights and terms of the levels).
    """
    single = True
    for i in range(n_levels):
        single = single and level_ptr[levels[i] + 1] - level_ptr[levels[i]] == 1
    rates, weights, terms = scratch[0], scratch[1], scratch[2]
    if single:
        for i in range(n_levels):
            m = level_ptr[levels[i]]
            rates[i] = -2.0 * lam[m].imag
            weights[i] = coeff[m].real ** 2 + coeff[m].imag ** 2
    lo, hi = tau_lo, tau_hi
    log_target = np.log(target)
    tau = tau_lo
    if norm_lo > target and norm_hi > 0.0:
        log_lo = np.log(norm_lo)
        fraction = (log_lo - log_target) / (log_lo - np.log(norm_hi))
        if 0.0 < fraction < 1.0:
            tau = tau_lo + fraction * (tau_hi - tau_lo)
    for attempt in range(MAX_ROOT_STEPS + 1):
        if single:
            # ||psi(tau)||^2 = sum_i w_i exp(-K_i tau) and its derivative: on non-degenerate
            # levels R = 1 and |exp(-i lambda tau)|^2 = exp(-K tau) with K = -2 Im lambda,
            # real exponentials (exp_real, in a loop of their own: it vectorises), summed in
            # two partial sums each. Written out, not called: a call would bind its three
            # arrays anew at every step, an atomic reference-count pair each.
            for i in range(n_levels):
                terms[i] = weights[i] * exp_real(-rates[i] * tau)
            n0, n1, s0, s1 = 0.0, 0.0, 0.0, 0.0
            i = 0
            while i + 2 <= n_levels:
                n0 += terms[i]
                n1 += terms[i + 1]
                s0 += rates[i] * terms[i]
                s1 += rates[i + 1] * terms[i + 1]
                i += 2
            if i < n_levels:
                n0 += terms[i]
                s0 += rates[i] * terms[i]
            norm, slope = n0 + n1, -(s0 + s1)
        else:  # the evolved state (into work), then its norm
            evolve(level_ptr, block_ptr, lam, right, levels, n_levels, coeff, tau, work)
            norm, slope = block_norm(level_ptr, block_ptr, decay_blocks, levels, n_levels, work)
        if norm > target:
            lo = tau
        else:
            hi = tau
        if slope < 0:  # Newton on ln ||psi||^2 - ln target (see above)
            step = tau - norm * (np.log(norm) - log_target) / slope
            # Converged: the step is within the tolerance. Tested before the bracket, which
            # may end at tau itself (an iterate whose norm rounds to <= target): a step there
            # is not "inside" it, and bisection would creep to the root in ~8 more steps.
            if abs(step - tau) <= ROOT_TOLERANCE * max(1.0, tau):
                return min(max(step, lo), hi)
        else:
            step = -1.0
        if not (lo < step < hi):
            step = 0.5 * (lo + hi)
        if hi - lo <= ROOT_TOLERANCE * max(1.0, hi) or attempt == MAX_ROOT_STEPS:
            return step
        tau = step
    return tau


@numba.njit(cache=True, nogil=True)
def support(level_ptr, psi, levels):
    """List the levels where ``psi`` has weight; returns their count."""
    n = 0
    for k in range(level_ptr.size - 1):
        for m in range(level_ptr[k], level_ptr[k + 1]):
            if psi[m].real != 0.0 or psi[m].imag != 0.0:
                levels[n] = k
                n += 1
                break
    return n
