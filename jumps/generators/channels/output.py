"""The full density matrix of amplitude-mode trajectories: their outer products, summed.

With ``density_matrix = "full"`` a trajectory in amplitude mode keeps its normalised state at
each output time (user's basis) as a row of the tally's buffer (:func:`.observe.segment_outputs`);
after the kernel call :func:`flush` adds each output time's rows U (n, d) to the (d, d) sums by
real matrix products. Per-state outer products touched the whole (T, d, d) sums, twice, for
every trajectory (memory-bound: ~2 trajectories/s at d = 256); in the kernel the products
took Numba minutes to compile.
"""

from __future__ import annotations

import numpy as np

# Sums of squares computed as differences of larger sums (outer_sums) are zero below this many
# n eps of those sums (as mean_stderr treats a spread lost in rounding).
SQUARES_FLOOR = 8.0
EPSILON = float(np.finfo(np.float64).eps)


def flush(tally) -> None:
    """Add the kept states of ``tally`` (user's basis; full density matrix only) to its
    running sums, one output time at a time (:func:`outer_sums`), and empty the buffer."""
    for k in np.flatnonzero(tally.fill):
        U = tally.buffer[k, :tally.fill[k]]
        outer_sums(np.ascontiguousarray(U.real), np.ascontiguousarray(U.imag),
                   tally.rho_sum[k], tally.rho_sumsq[k])
    tally.fill[:] = 0


def outer_sums(A: np.ndarray, B: np.ndarray, total: np.ndarray, squares: np.ndarray) -> None:
    """``total += sum_r u_r u_r^dag`` and ``squares += sum_r (Re^2 + 1j Im^2)`` of its
    elements over the rows ``u_r = a_r + i b_r`` of A + iB, by six real matrix products:

    - ``sum_r u_i conj(u_j) = (A^T A + B^T B) + i (B^T A - (B^T A)^T)``;
    - with ``w = |u|^2``, ``p + iq = u^2``: ``Re^2 + Im^2 = w_i w_j`` and ``Re^2 - Im^2 =
      Re((u_i conj u_j)^2) = p_i p_j + q_i q_j``, so ``sum Re^2 = (W^T W + P^T P + Q^T Q) / 2``
      and ``sum Im^2 = (W^T W - P^T P - Q^T Q) / 2``.

    These sums of squares are differences of terms as large as ``(W^T W)_ij``, so they carry
    a rounding error of ``n eps`` times that: a value below ``SQUARES_FLOOR n eps`` of it
    cannot be told from zero and is zero (as an element that is zero in every state, such as
    the imaginary part of a real or a diagonal element, must be). Elsewhere the sums are
    exact to rounding, as per-state sums would be."""
    W = A * A + B * B
    P = A * A - B * B
    Q = 2.0 * A * B
    magnitude = W.T @ W
    phases = P.T @ P + Q.T @ Q
    mixed = B.T @ A
    imaginary = mixed - mixed.T
    real_squares = 0.5 * (magnitude + phases)
    imaginary_squares = 0.5 * (magnitude - phases)
    floor = magnitude * (SQUARES_FLOOR * A.shape[0] * EPSILON)
    real_squares[real_squares <= floor] = 0.0
    imaginary_squares[imaginary_squares <= floor] = 0.0
    np.fill_diagonal(imaginary, 0.0)  # u_i conj u_i is real
    np.fill_diagonal(imaginary_squares, 0.0)
    total += (A.T @ A + B.T @ B) + 1j * imaginary
    squares += real_squares + 1j * imaginary_squares
