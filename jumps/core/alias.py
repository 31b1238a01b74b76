"""Walker alias tables (Vose's construction): O(1) draws from a discrete distribution."""

from __future__ import annotations

import numba
import numpy as np


@numba.njit(cache=True, nogil=True)
def _vose(weights, lo, hi, threshold, alias, offset, scaled, small, large):
    """Walker alias table of ``weights[lo:hi]`` (Vose's construction) into ``threshold[lo:hi]``
    and ``alias[lo:hi]`` (alias indices minus ``offset``); scratch arrays of size ``hi - lo``.

    Drawing slot ``i`` uniformly and keeping it when a uniform ``f`` is below ``threshold[i]``
    (else taking ``alias[i]``) samples ``j`` with probability ``weights[j] / sum``, exactly up
    to rounding of the thresholds. An all-zero segment gets threshold 1 everywhere.
    """
    total = 0.0
    for j in range(lo, hi):
        total += weights[j]
        threshold[j] = 1.0
        alias[j] = j - offset
    if hi == lo or total <= 0.0:
        return
    n_small = 0
    n_large = 0
    for j in range(lo, hi):
        scaled[j - lo] = weights[j] * (hi - lo) / total
        if scaled[j - lo] < 1.0:
            small[n_small] = j
            n_small += 1
        else:
            large[n_large] = j
            n_large += 1
    while n_small > 0 and n_large > 0:
        n_small -= 1
        s = small[n_small]
        g = large[n_large - 1]
        threshold[s] = scaled[s - lo]
        alias[s] = g - offset
        scaled[g - lo] = (scaled[g - lo] + scaled[s - lo]) - 1.0
        if scaled[g - lo] < 1.0:
            n_large -= 1
            small[n_small] = g
            n_small += 1
    # Leftovers hold probability 1 up to rounding: they keep threshold 1 (never aliased).


@numba.njit(cache=True, nogil=True)
def alias_tables(weights, ptr):
    """Walker alias tables for each segment ``ptr[k]:ptr[k+1]`` of ``weights``: thresholds
    and absolute alias indices (see :func:`_vose`)."""
    size = weights.size
    threshold = np.ones(size)
    alias = np.arange(size)
    longest = 0
    for k in range(ptr.size - 1):
        longest = max(longest, ptr[k + 1] - ptr[k])
    scaled = np.empty(longest)
    small = np.empty(longest, dtype=np.int64)
    large = np.empty(longest, dtype=np.int64)
    for k in range(ptr.size - 1):
        _vose(weights, ptr[k], ptr[k + 1], threshold, alias, 0, scaled, small, large)
    return threshold, alias


@numba.njit(cache=True, nogil=True, parallel=True)
def alias_rows(weights, threshold, alias):
    """Walker alias tables of each row of ``weights`` (rows, n) into ``threshold`` (float) and
    ``alias`` (any integer type: the column index of the alias) of the same shape."""
    rows, n = weights.shape
    flat_w, flat_t, flat_a = weights.reshape(-1), threshold.reshape(-1), alias.reshape(-1)
    for r in numba.prange(rows):  # rows are independent: one scratch set per row
        scaled = np.empty(n)
        small = np.empty(n, dtype=np.int64)
        large = np.empty(n, dtype=np.int64)
        _vose(flat_w, r * n, (r + 1) * n, flat_t, flat_a, r * n, scaled, small, large)
