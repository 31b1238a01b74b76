"""Operators as dense or sparse matrices, and the checks every operator from a user passes.

Spin models build their Hamiltonian and operators as scipy sparse matrices (a 14-spin Pauli
operator has 16384 non-zeros; dense it would take 4.3 GB). Code that needs a dense matrix (the
channel generator, the exact solver, small systems) asks for one with :func:`dense`; the
large-system path (:mod:`jumps.generators.rates`) keeps them sparse.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import scipy.sparse as sp

from ..errors import ConfigError


def is_sparse(matrix: Any) -> bool:
    return sp.issparse(matrix)


def as_array(value: Any) -> np.ndarray:
    """A numpy array from an array-like, a scipy sparse matrix or a ``qutip.Qobj``
    (duck-typed: anything with ``.full()``)."""
    if sp.issparse(value):
        return value.toarray()
    if hasattr(value, "full") and callable(value.full):
        value = value.full()
    return np.asarray(value)


def dense(matrix: Any) -> np.ndarray:
    """The matrix as a dense complex array."""
    return np.asarray(as_array(matrix), dtype=complex)


def sparse(matrix: Any) -> sp.csr_matrix:
    """The matrix as a complex CSR matrix."""
    return sp.csr_matrix(matrix if sp.issparse(matrix) else as_array(matrix), dtype=complex)


def is_real(matrix: Any) -> bool:
    """True when every element has zero imaginary part."""
    values = matrix.data if sp.issparse(matrix) else np.asarray(matrix)
    return not np.iscomplexobj(values) or not np.any(np.imag(values))


# Up to this dimension (or for a dense matrix) the norm comes from a dense eigvalsh, above it
# from Lanczos on the sparse matrix (a 14-spin operator dense would take 4.3 GB).
DENSE_EIGVALS_DIMENSION = 2048


def operator_norm(matrix: Any) -> float:
    """Largest ``|eigenvalue|`` of a Hermitian matrix (Lanczos when large and sparse)."""
    d = matrix.shape[0]
    if d <= DENSE_EIGVALS_DIMENSION or not sp.issparse(matrix):
        return float(np.max(np.abs(np.linalg.eigvalsh(dense(matrix)))))
    from scipy.sparse.linalg import eigsh

    return float(np.max(np.abs(eigsh(matrix, k=1, which="LM", return_eigenvectors=False))))


def check_hermitian(matrix: Any, field_name: str, rtol: float = 1e-10):
    """The matrix as a complex Hermitian matrix (dense stays dense, sparse stays CSR), or a
    ConfigError naming ``field_name``: not numeric, not square, NaN/inf, not Hermitian."""
    if sp.issparse(matrix):
        matrix = sp.csr_matrix(matrix, dtype=complex)
        values = matrix.data
    else:
        matrix = np.asarray(matrix)
        if matrix.dtype == object or not np.issubdtype(matrix.dtype, np.number):
            raise ConfigError(field_name, "must be a numeric matrix")
        matrix = matrix.astype(complex)
        values = matrix
    if matrix.ndim != 2 or matrix.shape[0] != matrix.shape[1] or matrix.shape[0] == 0:
        raise ConfigError(field_name, f"must be a square matrix, got shape {matrix.shape}")
    if not np.all(np.isfinite(values)):
        raise ConfigError(field_name, "contains NaN or inf")
    scale = max(float(np.max(np.abs(values))) if values.size else 0.0, 1e-300)
    asymmetry = matrix - matrix.conj().T
    worst = abs(asymmetry).max() if sp.issparse(asymmetry) else np.max(np.abs(asymmetry))
    if worst > rtol * scale:
        raise ConfigError(field_name, "must be Hermitian")
    return 0.5 * (matrix + matrix.conj().T)
