"""Piecewise-Chebyshev tables evaluated in Numba (built by :class:`jumps.physics.baths.LambShiftTable`)."""

from __future__ import annotations

import numba


@numba.njit(cache=True, nogil=True)
def chebyshev(low, high, coefficients, first, last, x):
    """A piecewise-Chebyshev table at ``x``: panels ``first:last`` (sorted, ``[low, high]``
    each, degree ``coefficients.shape[1] - 1``); beyond the ends, the end panels."""
    lo, hi = first, last - 1
    while lo < hi:  # the last panel whose low edge is <= x
        mid = (lo + hi + 1) // 2
        if low[mid] <= x:
            lo = mid
        else:
            hi = mid - 1
    a, b = low[lo], high[lo]
    t = (2.0 * x - (a + b)) / (b - a)
    b1 = 0.0
    b2 = 0.0
    for k in range(coefficients.shape[1] - 1, 0, -1):
        b1, b2 = 2.0 * t * b1 - b2 + coefficients[lo, k], b1
    return t * b1 - b2 + coefficients[lo, 0]


@numba.njit(cache=True, nogil=True, parallel=True)
def chebyshev_many(low, high, coefficients, x, out):
    """:func:`chebyshev` of one table at every element of ``x`` (flat) into ``out``."""
    for i in numba.prange(x.size):
        out[i] = chebyshev(low, high, coefficients, 0, low.size, x[i])
