"""The full density matrix of amplitude-mode trajectories: their outer products, summed.

With ``density_matrix = "full"`` a trajectory in amplitude mode keeps its normalised state at
each output time (user's basis) as a row of the tally's buffer (:func:`.observe.segment_outputs`);
after the kernel call :func:`flush` adds each output time's rows U (n, d) to the (d, d) sums by
real matrix products. Per-state outer products touched the whole (T, d, d) sums, twice, for
every trajectory (memory-bound: ~2 trajectories/s at d = 256); in the kernel the products
took Numba minutes to compile.
"""

from __future__ import annotations

import numba
import numpy as np

# Sums of squares computed as differences of larger sums (outer_sums) are zero below this many
# n eps of those sums (as mean_stderr treats a spread lost in rounding).
SQUARES_FLOOR = 8.0
EPSILON = float(np.finfo(np.float64).eps)


def flush(tally) -> None:
    """Add the kept states of ``tally`` (user's basis; full density matrix only) to its
    running sums, one output time at a time (:func:`outer_sums`), and empty the buffer."""
    for k in np.flatnonzero(tally.fill):
        outer_sums(tally.buffer[k, :tally.fill[k]], tally.rho_sum[k], tally.rho_sumsq[k])
    tally.fill[:] = 0


def outer_sums(U: np.ndarray, total: np.ndarray, squares: np.ndarray) -> None:
    """``total += sum_r u_r u_r^dag`` and ``squares += sum_r (Re^2 + 1j Im^2)`` of its
    elements over the rows ``u_r = a_r + i b_r`` of ``U`` (n, d), by four real matrix products
    (three of them symmetric, ``S^T S``: numpy's BLAS ``syrk``, half the work of a general
    product):

    - ``sum_r u_i conj(u_j) = [A; B]^T [A; B] + i (M - M^T)`` with ``M = B^T A``;
    - with ``w = |u|^2``, ``p + iq = u^2``: ``Re^2 + Im^2 = w_i w_j`` and ``Re^2 - Im^2 =
      Re((u_i conj u_j)^2) = p_i p_j + q_i q_j``, so ``sum Re^2 = (W^T W + [P; Q]^T [P; Q]) / 2``
      and ``sum Im^2 = (W^T W - [P; Q]^T [P; Q]) / 2``.

    These sums of squares are differences of terms as large as ``(W^T W)_ij``, so they carry
    a rounding error of ``n eps`` times that: a value below ``SQUARES_FLOOR n eps`` of it
    cannot be told from zero and is zero (as an element that is zero in every state, such as
    the imaginary part of a real or a diagonal element, must be). Elsewhere the sums are
    exact to rounding, as per-state sums would be. The products' factors are made from ``U``
    in one jitted pass (:func:`_factors`; numpy's eight element-wise passes and copies took
    as long as two of the products), and their upper triangles are combined into both
    triangles of the sums in another (:func:`_combine`)."""
    n, d = U.shape
    stacked, waves, magnitudes = np.empty((2 * n, d)), np.empty((2 * n, d)), np.empty((n, d))
    _factors(U, stacked, waves, magnitudes)
    # numpy computes S.T @ S (one array and its transpose) by BLAS syrk. scipy.linalg.blas.dsyrk
    # would run in scipy's own OpenBLAS: with more than one BLAS thread, alternating its thread
    # pool with numpy's (the gemm) made a flush 3-4x slower than the products themselves.
    plain = stacked.T @ stacked
    phases = waves.T @ waves
    magnitude = magnitudes.T @ magnitudes
    mixed = stacked[n:].T @ stacked[:n]
    _combine(plain, mixed, magnitude, phases, SQUARES_FLOOR * n * EPSILON, total, squares)


@numba.njit(cache=True, nogil=True)
def _factors(U, stacked, waves, magnitudes):
    """The factors of :func:`outer_sums` from the rows ``a + ib`` of U (n, d): ``stacked =
    [A; B]``, ``waves = [P; Q]`` (``P = A^2 - B^2``, ``Q = 2AB``), ``magnitudes = A^2 + B^2``."""
    n, d = U.shape
    for r in range(n):
        for i in range(d):
            a, b = U[r, i].real, U[r, i].imag
            stacked[r, i] = a
            stacked[n + r, i] = b
            waves[r, i] = a * a - b * b
            waves[n + r, i] = 2.0 * a * b
            magnitudes[r, i] = a * a + b * b


@numba.njit(cache=True, nogil=True)
def _combine(plain, mixed, magnitude, phases, floor, total, squares):
    """Add the products' upper triangles (i <= j) of :func:`outer_sums` to both triangles of
    ``total`` (Hermitian) and ``squares`` (symmetric)."""
    d = plain.shape[0]
    for i in range(d):
        w = magnitude[i, i]
        re_sq = 0.5 * (w + phases[i, i])
        total[i, i] += plain[i, i]
        squares[i, i] += re_sq if re_sq > w * floor else 0.0
        for j in range(i + 1, d):
            w = magnitude[i, j]
            re_sq = 0.5 * (w + phases[i, j])
            im_sq = 0.5 * (w - phases[i, j])
            limit = w * floor
            square = complex(re_sq if re_sq > limit else 0.0, im_sq if im_sq > limit else 0.0)
            re, im = plain[i, j], mixed[i, j] - mixed[j, i]
            total[i, j] += complex(re, im)
            total[j, i] += complex(re, -im)
            squares[i, j] += square
            squares[j, i] += square
