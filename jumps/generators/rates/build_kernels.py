"""Numba kernels of the rates generator's build (:mod:`jumps.generators.rates.generator`).

Pure functions over plain arrays (numpy and numba only), parallel over source states: the
sparse rows ``A|m>``, the rates and Lamb-shift sums of a block of sources, the two-level bath
split, and the union-find that counts the classes of eigenstates joined by non-zero rates.
The trajectory kernel is :mod:`jumps.generators.rates.kernels`.
"""

from __future__ import annotations

import numba
import numpy as np


@numba.njit(cache=True, nogil=True, parallel=True)
def apply_rows(ptr, col, val, vectors, lo, out, conjugate):
    """Rows ``out[r] = A |v_{lo+r}>`` (conjugated if ``conjugate``) for the CSR matrix
    ``(ptr, col, val)`` and the eigenvector rows ``vectors[lo + r]``: the sparse product of the
    rates build without the transposed copies scipy would make (each row reads one
    eigenvector, which stays in cache)."""
    rows, d = out.shape
    for r in numba.prange(rows):
        v = vectors[lo + r]
        for i in range(d):
            acc = 0.0 * v[0]
            for p in range(ptr[i], ptr[i + 1]):
                acc += val[p] * v[col[p]]
            out[r, i] = np.conj(acc) if conjugate else acc


@numba.njit(cache=True, nogil=True, parallel=True)
def rate_weights(elements, rate, shift, weights, lamb):
    """One bath on a block of sources: ``weights = rate |elements|^2`` and the Lamb-shift sum
    ``lamb[r] += sum_n shift[r, n] |elements[r, n]|^2`` (``shift`` of shape (0, 0): none)."""
    rows, n = elements.shape
    with_shift = shift.shape[0] > 0
    for r in numba.prange(rows):
        acc = 0.0
        for c in range(n):
            x = elements[r, c]
            magnitude = x.real * x.real + x.imag * x.imag
            weights[r, c] = rate[r, c] * magnitude
            if with_shift:
                acc += shift[r, c] * magnitude
        lamb[r] += acc


@numba.njit(cache=True, nogil=True, parallel=True)
def rate_split(weights, set_size, coarse_scale, fine_scale, total, level_rate, coarse, fine):
    """Total rate per pair, per source, and the two-level bath split (:mod:`jumps.generators.rates.generator`):
    for pair ``(r, n)``, ``coarse[r, n, g]`` is the rounded ``coarse_scale`` times the fraction
    of ``total[r, n]`` in bath sets ``0..g``, and ``fine[r, n, g*(set_size-1) + j]`` the
    rounded ``fine_scale`` times the fraction of set ``g``'s rate in its baths ``0..j``."""
    n_baths, rows, n = weights.shape
    sets = (n_baths + set_size - 1) // set_size
    for r in numba.prange(rows):
        level = 0.0
        for c in range(n):
            acc = 0.0
            for a in range(n_baths):
                acc += weights[a, r, c]
            total[r, c] = acc
            level += acc
            running = 0.0
            for g in range(sets):
                lo = g * set_size
                hi = min(n_baths, lo + set_size)
                in_set = 0.0
                for a in range(lo, hi):
                    in_set += weights[a, r, c]
                partial = 0.0
                for j in range(hi - lo - 1):
                    partial += weights[lo + j, r, c]
                    fraction = partial / in_set if in_set > 0.0 else 0.0
                    fine[r, c, g * (set_size - 1) + j] = np.rint(
                        min(max(fraction, 0.0), 1.0) * fine_scale)
                if g < sets - 1:
                    running += in_set
                    fraction = running / acc if acc > 0.0 else 0.0
                    coarse[r, c, g] = np.rint(min(max(fraction, 0.0), 1.0) * coarse_scale)
        level_rate[r] = level


@numba.njit(cache=True, nogil=True)
def _root(parent, i):
    while parent[i] != i:
        parent[i] = parent[parent[i]]
        i = parent[i]
    return i


@numba.njit(cache=True, nogil=True)
def union_rows(parent, weights, first):
    """Union-find: join row state ``first + r`` with every column ``n`` of ``weights[r, n] > 0``."""
    for r in range(weights.shape[0]):
        for n in range(weights.shape[1]):
            if weights[r, n] > 0.0:
                a, b = _root(parent, first + r), _root(parent, n)
                if a != b:
                    parent[max(a, b)] = min(a, b)


@numba.njit(cache=True, nogil=True)
def union_labels(parent, labels):
    """Union-find: join every element ``i`` with ``labels[i]`` (another forest's roots)."""
    for i in range(parent.size):
        a, b = _root(parent, i), _root(parent, labels[i])
        if a != b:
            parent[max(a, b)] = min(a, b)


@numba.njit(cache=True, nogil=True)
def union_roots(parent):
    """The root (component label) of every element of a union-find forest."""
    out = np.empty_like(parent)
    for i in range(parent.size):
        out[i] = _root(parent, i)
    return out
