"""The spectrum of H as the generators see it: levels, Bohr-frequency clusters, Gibbs weights.

Conventions (docs/design.md, "Conventions"): eigenvalues ascending; two eigenvalues, or two Bohr
frequencies ``w = E_m - E_n``, closer than ``degeneracy_tol`` are equal.
"""

from __future__ import annotations

import numpy as np


def common_beta(baths) -> float | None:
    """The common inverse temperature of ``baths``, or None if they differ or are not thermal."""
    betas = {b.beta for b in baths if b.is_thermal}
    if len(betas) != 1 or any(not b.is_thermal for b in baths):
        return None
    return betas.pop()


def gibbs_populations(energies: np.ndarray, beta: float | None) -> np.ndarray:
    """``exp(-beta E_n) / Z`` for ascending ``energies`` (the ground level at ``beta = inf``)."""
    if beta is None:
        raise ValueError("the baths have no common temperature: no Gibbs state")
    if np.isinf(beta):
        p = (energies == energies[0]).astype(float)
    else:
        p = np.exp(-beta * (energies - energies[0]))
    return p / p.sum()


def group_levels(energies: np.ndarray, tol: float) -> tuple[np.ndarray, np.ndarray]:
    """Group sorted eigenvalues into levels: returns ``level_ptr`` and the level energies."""
    breaks = np.flatnonzero(np.diff(energies) > tol) + 1
    level_ptr = np.concatenate([[0], breaks, [energies.size]]).astype(np.int64)
    level_energy = np.add.reduceat(energies, level_ptr[:-1]) / np.diff(level_ptr)
    return level_ptr, level_energy


def cluster_frequencies(gaps: np.ndarray, tol: float) -> tuple[np.ndarray, np.ndarray]:
    """Cluster Bohr-frequency values that agree within ``tol`` (sorting, not pairwise loops).

    Returns the cluster index of each gap and the cluster frequencies (midpoints; exactly 0 for
    the cluster holding 0).
    """
    order = np.argsort(gaps, kind="stable")
    sorted_gaps = gaps[order]
    new = np.concatenate([[True], np.diff(sorted_gaps) > tol])
    cluster_sorted = np.cumsum(new) - 1
    cluster = np.empty_like(cluster_sorted)
    cluster[order] = cluster_sorted
    starts = np.flatnonzero(new)
    ends = np.concatenate([starts[1:], [sorted_gaps.size]]) - 1
    frequency = 0.5 * (sorted_gaps[starts] + sorted_gaps[ends])
    has_zero = (sorted_gaps[starts] <= 0) & (sorted_gaps[ends] >= 0)
    frequency[has_zero] = 0.0
    return cluster, frequency


def default_degeneracy_tol(energies: np.ndarray) -> float:
    """``1e-9 * (1 + max|E|)``: two eigenvalues (or Bohr frequencies) closer than this are one.

    Relative to the spectrum's scale, and far above the ~1e-15 relative rounding of ``eigh``,
    so that numerically split members of a symmetry-degenerate level are grouped."""
    return 1e-9 * (1.0 + float(np.max(np.abs(energies))))
