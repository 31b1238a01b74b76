"""Exact reference: the Davies master equation as a (sparse) Liouvillian, for small d.

Row-major vectorisation, ``vec(A rho B) = (A kron B^T) vec(rho)``, in the energy eigenbasis:

    L = -i (H_e kron 1) + i (1 kron conj(H_e)) + sum_c gamma_c (A_c kron conj(A_c)),
    H_e = H + H_LS - (i/2) sum_c gamma_c A_c^dag A_c.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from scipy.sparse.linalg import expm_multiply

from ..generators.channels.generator import (
    NULL_TOLERANCE,
    DaviesGenerator,
    block_diagonal_superoperator,
)

MAX_EXACT_DIMENSION = 128


def liouvillian(generator: DaviesGenerator) -> sp.csr_matrix:
    """The generator as a sparse ``d^2 x d^2`` matrix in the eigenbasis (row-major vec)."""
    g = generator
    d = g.dimension
    effective = sp.diags(g.energies.astype(complex)) + sp.csr_matrix(
        g.dense_blocks(g.lamb_shift_blocks - 0.5j * g.decay_blocks))
    eye = sp.identity(d, dtype=complex, format="csr")
    L = -1j * sp.kron(effective, eye) + 1j * sp.kron(eye, effective.conj())
    rows, cols, vals = [], [], []
    for c in range(g.n_channels):
        lo, hi = g.entry_ptr[c], g.entry_ptr[c + 1]
        n, m, v = g.entry_row[lo:hi], g.entry_col[lo:hi], g.entry_value[lo:hi]
        rows.append((n[:, None] * d + n[None, :]).ravel())
        cols.append((m[:, None] * d + m[None, :]).ravel())
        vals.append((g.channel_rate[c] * v[:, None] * v.conj()[None, :]).ravel())
    jumps = sp.csr_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))),
                          shape=(d * d, d * d))
    return (L + jumps).tocsr()


@dataclass(frozen=True)
class ExactSolution:
    """rho(t) of the master equation.

    Attributes
    ----------
    times : (T,) float
    rho_energy : (T, d, d) complex
        Density matrices in the energy eigenbasis.
    """

    times: np.ndarray
    rho_energy: np.ndarray

    @property
    def populations(self) -> np.ndarray:
        """(T, d) eigenstate populations."""
        return np.real(np.einsum("tii->ti", self.rho_energy))

    def rho_user(self, generator: DaviesGenerator) -> np.ndarray:
        """(T, d, d) density matrices in the user's basis."""
        V = generator.eigenvectors
        return np.einsum("ij,tjk,lk->til", V, self.rho_energy, V.conj())

    def expectation(self, generator: DaviesGenerator, operator: np.ndarray) -> np.ndarray:
        """(T,) ``Tr(O rho(t))`` for an operator in the user's basis."""
        O_eig = generator.to_energy_basis(operator)
        return np.einsum("ij,tji->t", O_eig, self.rho_energy)


def evolve(generator: DaviesGenerator, rho0: np.ndarray, times: np.ndarray) -> ExactSolution:
    """Solve the master equation from ``rho0`` (user's basis) at ``times``.

    ``times`` is any increasing grid from ``times[0] >= 0`` (``rho0`` is the state at 0).
    ``expm_multiply`` on the sparse Liouvillian (accurate to about 1e-13) propagates across
    each run of equal steps in one call (a uniform grid is one call) and from one run to the
    next.

    Parameters
    ----------
    generator : DaviesGenerator
    rho0 : (d, d) array
        The density matrix at ``t = 0``, user's basis.
    times : (T,) array
        Increasing output times, the first ``>= 0``.

    Returns
    -------
    ExactSolution

    Raises
    ------
    ValueError
        ``d > MAX_EXACT_DIMENSION``, or ``times`` not a 1-d increasing grid from ``>= 0``.
    """
    d = generator.dimension
    if d > MAX_EXACT_DIMENSION:
        raise ValueError(f"exact solver is for d <= {MAX_EXACT_DIMENSION}, got d = {d}")
    times = np.asarray(times, dtype=float)
    steps = np.diff(times)
    if (times.ndim != 1 or times.size < 1 or not np.all(np.isfinite(times)) or times[0] < 0
            or np.any(steps <= 0)):
        raise ValueError("exact solver needs a 1-d increasing time grid from t >= 0")
    L = liouvillian(generator)
    vector = generator.to_energy_basis(np.asarray(rho0, dtype=complex)).ravel()
    if times[0] > 0:
        vector = expm_multiply(L * times[0], vector)
    states = np.empty((times.size, d * d), dtype=complex)
    states[0] = vector
    first = 0
    while first < times.size - 1:  # times[first..last]: a run of equal steps
        last = first + 1
        while last < steps.size and np.isclose(steps[last], steps[first], rtol=1e-9, atol=0):
            last += 1
        if last == first + 1:
            states[last] = expm_multiply(L * steps[first], states[first])
        else:
            states[first + 1:last + 1] = expm_multiply(
                L, states[first], start=0.0, stop=times[last] - times[first],
                num=last - first + 1, endpoint=True)[1:]
        first = last
    return ExactSolution(times=times, rho_energy=states.reshape(times.size, d, d))


def steady_states(generator: DaviesGenerator, tol: float = NULL_TOLERANCE) -> list[np.ndarray]:
    """A basis of the steady states (Hermitian, unit trace where possible), eigenbasis.

    Computed in the block-diagonal operator space (steady states commute with H); the length
    of the list is the steady-state dimension.
    """
    g = generator
    superoperator = block_diagonal_superoperator(g)
    _, singular, vh = np.linalg.svd(superoperator)
    null = vh[singular < tol * max(singular.max(), 1e-300)].conj()
    matrices = []
    for vector in null:
        rho = np.zeros((g.dimension, g.dimension), dtype=complex)
        for level in range(g.n_levels):
            lo, hi = g.level_ptr[level], g.level_ptr[level + 1]
            start = g.block_ptr[level]
            rho[lo:hi, lo:hi] = vector[start:start + (hi - lo) ** 2].reshape(hi - lo, hi - lo)
        matrices.append(rho)
    if len(matrices) > 1:
        # SVD mixes the null vectors arbitrarily. The generator preserves Hermiticity, so the
        # Hermitian and anti-Hermitian parts of every null vector are in the null space too:
        # take a real orthonormal basis of their real span, which is made of Hermitian matrices.
        parts = [part for X in matrices
                 for part in ((X + X.conj().T) / 2, (X - X.conj().T) / 2j)]
        real = np.array([np.concatenate([part.real.ravel(), part.imag.ravel()]) for part in parts])
        basis = np.linalg.svd(real, full_matrices=False)[2][:len(matrices)]
        d2 = g.dimension**2
        matrices = [(b[:d2] + 1j * b[d2:]).reshape(g.dimension, g.dimension) for b in basis]
    states = []
    for rho in matrices:
        trace = np.trace(rho)
        states.append(rho / trace if abs(trace) > 1e-12 else rho)
    return states
