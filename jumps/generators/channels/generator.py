"""The Davies generator: Bohr frequencies, sparse jump operators, rates and Lamb shift.

Conventions (hbar = k_B = 1; docs/design.md, "Conventions"). With ``H = sum_n E_n |n><n|``,

    A_a(w) = sum_{E_m - E_n = w} |n><n| A_a |m><m|

lowers the energy by ``w`` (``w > 0`` emission, ``w < 0`` absorption, ``w = 0`` dephasing).
All pairs with one gap (within ``degeneracy_tol``) form one channel, never split pair by pair
(partial secular treatment of degeneracies). The master equation is

    drho/dt = -i [H + H_LS, rho] + sum_{a,w} gamma_a(w) (A rho A^dag - 1/2 {A^dag A, rho})

with ``H_LS = sum_{a,w} S_a(w) A_a(w)^dag A_a(w)``.

Everything is stored in the energy eigenbasis (eigenvalues ascending). Degenerate eigenvalues
form *levels*: contiguous index ranges ``level_ptr[k]:level_ptr[k+1]``. ``H_LS`` and the decay
operator ``K = sum gamma A^dag A`` are block diagonal over levels; their blocks are stored flat.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp
from scipy.sparse.csgraph import connected_components

from ...errors import ConfigError
from ...physics.baths import Bath, check_bath_values
from ...physics.matrices import as_array, dense
from ...physics.spectrum import (
    cluster_frequencies,
    common_beta,
    default_degeneracy_tol,
    gibbs_populations,
    group_levels,
)
from ..base import (
    DamagedArrays,
    require_index,
    require_length,
    require_pointer,
    require_shape,
)


@dataclass(frozen=True)
class DaviesGenerator:
    """Arrays that define a Davies master equation in the energy eigenbasis.

    Attributes
    ----------
    energies : (d,) float
        Eigenvalues, ascending; members of a degenerate level share the level's mean energy.
    eigenvectors : (d, d) complex
        Columns are the eigenstates in the user's basis.
    level_ptr : (L+1,) int64
        Level ``k`` is eigen-indices ``level_ptr[k]:level_ptr[k+1]``.
    level_of : (d,) int64
        The level of each eigen-index.
    channel_bath, channel_frequency, channel_rate, channel_lamb_shift : (C,) arrays
        Per channel ``(a, w)``: bath index, Bohr frequency ``w`` (energy lost by the system),
        rate ``gamma_a(w)`` and Lamb shift ``S_a(w)`` (0 when the bath's shift is off).
    entry_ptr : (C+1,) int64
        Channel ``c`` owns entries ``entry_ptr[c]:entry_ptr[c+1]``, sorted by row.
    entry_row, entry_col : (nnz,) int64
        Matrix element ``<row| A_a(w) |col>``: ``col`` is the source eigenstate, ``row`` the
        target, ``E_col - E_row = w``.
    entry_value : (nnz,) complex
        ``<row| A_a |col>`` (without the rate).
    block_ptr : (L+1,) int64
        Level ``k``'s ``b x b`` blocks start at ``block_ptr[k]`` in the flat block arrays.
    decay_blocks, lamb_shift_blocks : (sum b^2,) complex
        Row-major blocks of ``K = sum gamma A^dag A`` and ``H_LS``.
    baths : tuple of Bath
    degeneracy_tol : float
    drop_tol : float
        Eigenbasis matrix elements below ``drop_tol * max|A_a|`` were dropped.
    dropped_weight : (n_baths,) float
        Dropped ``sum |A_nm|^2`` over the total, per bath.
    """

    energies: np.ndarray
    eigenvectors: np.ndarray
    level_ptr: np.ndarray
    level_of: np.ndarray
    channel_bath: np.ndarray
    channel_frequency: np.ndarray
    channel_rate: np.ndarray
    channel_lamb_shift: np.ndarray
    entry_ptr: np.ndarray
    entry_row: np.ndarray
    entry_col: np.ndarray
    entry_value: np.ndarray
    block_ptr: np.ndarray
    decay_blocks: np.ndarray
    lamb_shift_blocks: np.ndarray
    baths: tuple[Bath, ...] = field(default_factory=tuple)
    degeneracy_tol: float = 0.0
    drop_tol: float = 0.0
    dropped_weight: np.ndarray = field(default_factory=lambda: np.zeros(0))

    @property
    def dimension(self) -> int:
        return self.energies.size

    @property
    def n_levels(self) -> int:
        return self.level_ptr.size - 1

    @property
    def n_channels(self) -> int:
        return self.channel_rate.size

    @property
    def level_energies(self) -> np.ndarray:
        return self.energies[self.level_ptr[:-1]]

    @property
    def level_sizes(self) -> np.ndarray:
        return np.diff(self.level_ptr)

    @property
    def entry_channel(self) -> np.ndarray:
        """Channel index of each entry."""
        return np.repeat(np.arange(self.n_channels), np.diff(self.entry_ptr))

    @property
    def entry_rate(self) -> np.ndarray:
        """``gamma_c |<row|A|col>|^2``: the rate of the transition col -> row of each entry."""
        return self.channel_rate[self.entry_channel] * np.abs(self.entry_value) ** 2

    def block(self, flat: np.ndarray, level: int) -> np.ndarray:
        """Level ``level``'s block of a flat block array, as a ``b x b`` matrix."""
        size = self.level_ptr[level + 1] - self.level_ptr[level]
        start = self.block_ptr[level]
        return flat[start:start + size * size].reshape(size, size)

    def dense_blocks(self, flat: np.ndarray) -> np.ndarray:
        """A flat block array as a dense ``d x d`` matrix in the eigenbasis (small d only)."""
        out = np.zeros((self.dimension, self.dimension), dtype=complex)
        for level in range(self.n_levels):
            lo, hi = self.level_ptr[level], self.level_ptr[level + 1]
            out[lo:hi, lo:hi] = self.block(flat, level)
        return out

    def jump_operator(self, channel: int) -> sp.csr_matrix:
        """``A_a(w)`` of one channel in the eigenbasis, sparse (no rate)."""
        lo, hi = self.entry_ptr[channel], self.entry_ptr[channel + 1]
        d = self.dimension
        return sp.csr_matrix((self.entry_value[lo:hi], (self.entry_row[lo:hi], self.entry_col[lo:hi])),
                             shape=(d, d))

    def lindblad_operators(self, basis: str = "user") -> list[np.ndarray]:
        """Dense ``L = sqrt(gamma_a(w)) A_a(w)`` for every channel (small d only).

        ``basis`` is ``"user"`` (the basis the Hamiltonian was given in) or ``"energy"``.
        """
        V = self.eigenvectors
        out = []
        for c in range(self.n_channels):
            L = np.sqrt(self.channel_rate[c]) * self.jump_operator(c).toarray()
            out.append(V @ L @ V.conj().T if basis == "user" else L)
        return out

    def rate_matrix(self) -> sp.csr_matrix:
        """Classical rates between eigenstates, ``R[n, m] = sum_c gamma_c |<n|A_c|m>|^2`` (m -> n).

        The Pauli master equation ``dp/dt = R p - diag(sum_n R[n, m]) p`` is exact for the
        populations when the Bohr frequencies are non-degenerate.
        """
        d = self.dimension
        rates = sp.csr_matrix((self.entry_rate, (self.entry_row, self.entry_col)), shape=(d, d))
        rates.sum_duplicates()
        return rates

    def per_bath_rates(self) -> list[sp.csr_matrix]:
        """Classical rates between eigenstates per bath, ``R_a[n, m] = sum gamma_c
        |<n|A_c|m>|^2`` over the channels ``c`` of bath ``a`` (m -> n; the diagonal is
        dephasing). Exact for the populations of a non-degenerate spectrum."""
        d = self.dimension
        bath = self.channel_bath[self.entry_channel]
        return [sp.csr_matrix((self.entry_rate[bath == a], (self.entry_row[bath == a],
                                                            self.entry_col[bath == a])),
                              shape=(d, d)) for a in range(len(self.baths))]

    def common_beta(self) -> float | None:
        """The common inverse temperature of all baths, or None if they differ or are not thermal."""
        return common_beta(self.baths)

    def gibbs_populations(self, beta: float | None = None) -> np.ndarray:
        """Gibbs populations ``exp(-beta E_n)/Z`` of the eigenstates (at the baths' common beta)."""
        return gibbs_populations(self.energies, self.common_beta() if beta is None else beta)

    def gibbs_state(self, beta: float | None = None) -> np.ndarray:
        """Gibbs density matrix in the user's basis."""
        V = self.eigenvectors
        return (V * self.gibbs_populations(beta)) @ V.conj().T

    def to_energy_basis(self, operator: np.ndarray) -> np.ndarray:
        """``V^dag O V``: an operator from the user's basis to the eigenbasis."""
        V = self.eigenvectors
        return V.conj().T @ np.asarray(operator @ V)

    def diagonal_of(self, operator) -> np.ndarray:
        """``<m|O|m>`` (real part) for every eigenstate, for an operator in the user's basis."""
        V = self.eigenvectors
        return np.real(np.einsum("im,im->m", V.conj(), np.asarray(operator @ V)))

    def user_basis_populations(self, populations: np.ndarray, power: int = 1) -> np.ndarray:
        """``sum_m populations[t, m] |<i|m>|^(2 power)`` (T, d): the diagonal of the density
        matrix in the user's basis of a state diagonal in the eigenbasis."""
        return populations @ (np.abs(self.eigenvectors) ** (2 * power)).T

    def summary_arrays(self) -> dict[str, np.ndarray]:
        """The arrays every result file carries about its generator (see README, Results)."""
        return {
            "energies": self.energies,
            "level_energies": self.level_energies,
            "level_ptr": self.level_ptr,
            "channel_bath": self.channel_bath,
            "channel_frequency": self.channel_frequency,
            "channel_rate": self.channel_rate,
            "channel_lamb_shift": self.channel_lamb_shift,
            "bath_beta": np.array([b.beta for b in self.baths]),
        }

    def effective_hamiltonian_blocks(self) -> np.ndarray:
        """Flat blocks of ``H_eff = H + H_LS - (i/2) K`` (block diagonal over levels)."""
        blocks = self.lamb_shift_blocks - 0.5j * self.decay_blocks
        diagonal = np.zeros_like(blocks)
        for level in range(self.n_levels):
            size = self.level_ptr[level + 1] - self.level_ptr[level]
            start = self.block_ptr[level]
            diagonal[start:start + size * size:size + 1] = self.energies[self.level_ptr[level]]
        return blocks + diagonal


def build_generator(hamiltonian: np.ndarray, couplings: list[np.ndarray], baths: list[Bath],
                    degeneracy_tol: float | None = None, drop_tol: float = 1e-12,
                    lamb_shift: bool = True) -> DaviesGenerator:
    """Build the Davies generator of ``H`` coupled through ``A_a`` to independent baths.

    Parameters
    ----------
    hamiltonian : (d, d) array
        Hermitian system Hamiltonian, in the user's basis.
    couplings : list of (d, d) arrays
        Hermitian coupling operators ``A_a``, one per bath.
    baths : list of Bath
        ``baths[a]`` couples through ``couplings[a]``.
    degeneracy_tol : float, optional
        Two eigenvalues (and two Bohr frequencies) closer than this are equal. Default
        ``1e-9 * (1 + max|E|)``.
    drop_tol : float
        Eigenbasis matrix elements smaller than ``drop_tol * max|A_a|`` are dropped.
    lamb_shift : bool
        Global switch; each bath also has its own ``lamb_shift_enabled``.
    """
    H = dense(hamiltonian)
    if len(couplings) != len(baths):
        raise ConfigError("baths", f"{len(couplings)} coupling operators for {len(baths)} baths")
    # Real symmetric H: real eigenvectors, and real couplings then stay real in the eigenbasis
    # (a quarter of the complex matrix-product work, half the memory).
    energies, V = np.linalg.eigh(np.real(H) if not np.any(np.imag(H)) else H)
    real = not np.iscomplexobj(V)
    tol = default_degeneracy_tol(energies) if degeneracy_tol is None else float(degeneracy_tol)
    level_ptr, level_energy = group_levels(energies, tol)
    level_of = np.repeat(np.arange(level_ptr.size - 1), np.diff(level_ptr))
    energies = level_energy[level_of]

    rows, cols, values, bath_of, dropped = [], [], [], [], []
    for a, A in enumerate(couplings):
        A = as_array(A)
        if real and not np.any(np.imag(A)):
            A_eig = V.T @ (np.real(A) @ V)
        else:
            A_eig = V.conj().T @ (A.astype(complex) @ V)
        magnitude = np.abs(A_eig)
        threshold = drop_tol * max(magnitude.max(), 1e-300)
        keep = magnitude > threshold
        if not np.any(keep):  # no channel at all: an input mistake, not a closed system
            raise ConfigError(f"baths[{a}].coupling",
                              "the coupling operator is zero (or entirely below drop_tol)")
        total = np.sum(magnitude**2)
        dropped.append(float(np.sum(magnitude[~keep] ** 2) / total) if total > 0 else 0.0)
        n, m = np.nonzero(keep)
        rows.append(n)
        cols.append(m)
        values.append(A_eig[n, m])
        bath_of.append(np.full(n.size, a))
    row, col = np.concatenate(rows), np.concatenate(cols)
    value, bath = np.concatenate(values).astype(complex), np.concatenate(bath_of)
    V = V.astype(complex)

    gaps = energies[col] - energies[row]
    cluster, frequency = cluster_frequencies(gaps, tol)
    channel_key, channel_of = np.unique(bath * (frequency.size + 1) + cluster, return_inverse=True)
    channel_bath = channel_key // (frequency.size + 1)
    channel_frequency = frequency[channel_key % (frequency.size + 1)]
    channel_rate = np.zeros(channel_key.size)
    channel_shift = np.zeros(channel_key.size)
    # Baths with equal parameters (one per site, say) share one evaluation at the union of
    # their frequencies.
    groups: dict[tuple, list[int]] = {}
    for a, b in enumerate(baths):
        groups.setdefault(b.key, []).append(a)
    with np.errstate(over="ignore", invalid="ignore"):  # overflow is refused just below
        for members in groups.values():
            b = baths[members[0]]
            mine = np.isin(channel_bath, members)
            frequencies, inverse = np.unique(channel_frequency[mine], return_inverse=True)
            channel_rate[mine] = b.rates(frequencies)[inverse]
            if lamb_shift and b.lamb_shift_enabled and frequencies.size:
                channel_shift[mine] = b.lamb_shift(frequencies)[inverse]
    check_bath_values(channel_rate, channel_shift)

    order = np.lexsort((row, channel_of))
    row, col, value, channel_of = row[order], col[order], value[order], channel_of[order]
    entry_ptr = np.searchsorted(channel_of, np.arange(channel_key.size + 1)).astype(np.int64)
    sizes = np.diff(level_ptr)
    block_ptr = np.concatenate([[0], np.cumsum(sizes**2)]).astype(np.int64)
    decay, shift = _level_blocks(level_ptr, level_of, block_ptr, row, col, value,
                                 channel_of, channel_rate, channel_shift)
    return DaviesGenerator(
        energies=energies, eigenvectors=V, level_ptr=level_ptr, level_of=level_of,
        channel_bath=channel_bath.astype(np.int64), channel_frequency=channel_frequency,
        channel_rate=channel_rate, channel_lamb_shift=channel_shift,
        entry_ptr=entry_ptr, entry_row=row.astype(np.int64), entry_col=col.astype(np.int64),
        entry_value=value, block_ptr=block_ptr, decay_blocks=decay, lamb_shift_blocks=shift,
        baths=tuple(baths), degeneracy_tol=tol, drop_tol=drop_tol,
        dropped_weight=np.array(dropped),
    )


def _level_blocks(level_ptr, level_of, block_ptr, row, col, value, channel, rate, shift):
    """Flat blocks of ``K = sum gamma A^dag A`` and ``H_LS = sum S A^dag A``.

    ``(A^dag A)[m, m'] = sum_n conj(A[n, m]) A[n, m']`` with ``m, m'`` in one level (a channel
    maps a level into a single level). Non-degenerate levels need only column sums.
    """
    sizes = np.diff(level_ptr)
    d = level_of.size
    decay = np.zeros(block_ptr[-1], dtype=complex)
    lamb = np.zeros(block_ptr[-1], dtype=complex)
    weight = np.abs(value) ** 2
    single = sizes[level_of] == 1
    diag_pos = block_ptr[level_of]  # valid for single levels: the 1x1 block
    decay_diag = np.bincount(col, weights=rate[channel] * weight, minlength=d)
    lamb_diag = np.bincount(col, weights=shift[channel] * weight, minlength=d)
    decay[diag_pos[single]] = decay_diag[single]
    lamb[diag_pos[single]] = lamb_diag[single]
    degenerate = np.flatnonzero(sizes > 1)
    if degenerate.size:
        in_degenerate = sizes[level_of[col]] > 1
        sub = np.flatnonzero(in_degenerate)
        order = sub[np.argsort(level_of[col[sub]], kind="stable")]
        bounds = np.searchsorted(level_of[col[order]], np.concatenate([degenerate, [level_of.size]]))
        for k, level in enumerate(degenerate):
            idx = order[bounds[k]:bounds[k + 1]]
            b, lo = sizes[level], level_ptr[level]
            keys, key_of = np.unique(channel[idx] * d + row[idx], return_inverse=True)
            U = np.zeros((keys.size, b), dtype=complex)
            U[key_of, col[idx] - lo] = value[idx]
            key_channel = keys // d
            start = block_ptr[level]
            decay[start:start + b * b] = (U.conj().T @ (rate[key_channel][:, None] * U)).ravel()
            lamb[start:start + b * b] = (U.conj().T @ (shift[key_channel][:, None] * U)).ravel()
    return decay, lamb


@dataclass(frozen=True)
class Diagnostics:
    """Checks of the generator's assumptions.

    Attributes
    ----------
    min_frequency_spacing : float
        Smallest spacing between distinct Bohr frequencies with a non-zero rate.
    max_rate : float
        Largest channel rate.
    secular_margin : float
        ``min_frequency_spacing / max_rate``: the secular approximation wants this >> 1.
    steady_state_dimension : int or None
        Number of independent steady states (None when too large to decide).
    """

    min_frequency_spacing: float
    max_rate: float
    secular_margin: float
    steady_state_dimension: int | None


def diagnostics(generator: DaviesGenerator) -> Diagnostics:
    """Secular-approximation margin and uniqueness of the steady state."""
    active = generator.channel_rate > 0
    frequencies = np.unique(generator.channel_frequency[active])
    spacing = float(np.min(np.diff(frequencies))) if frequencies.size > 1 else float("inf")
    max_rate = float(generator.channel_rate.max()) if generator.n_channels else 0.0
    margin = spacing / max_rate if max_rate > 0 else float("inf")
    return Diagnostics(spacing, max_rate, margin, steady_state_dimension(generator))


# The steady states of a degenerate generator come from a dense SVD of the block-diagonal
# superoperator (cost ~ its size cubed): up to this size; singular values below NULL_TOLERANCE
# times the largest span the null space.
MAX_DENSE_BLOCK_SPACE = 2500
NULL_TOLERANCE = 1e-9


def steady_state_dimension(generator: DaviesGenerator,
                           max_dense: int = MAX_DENSE_BLOCK_SPACE) -> int | None:
    """Number of linearly independent steady states.

    Steady states commute with ``H`` (the generator commutes with ``[H, .]``), so they live in
    the block-diagonal operators, a space of dimension ``sum b^2``. Without degeneracies that is
    the Pauli rate equation, whose number of steady states is the number of closed classes of
    its jump graph; otherwise the restricted superoperator's null space is computed densely.
    """
    sizes = generator.level_sizes
    if np.all(sizes == 1):
        rates = generator.rate_matrix()
        graph = (rates.T > 0).astype(int)  # edge m -> n
        n_comp, label = connected_components(graph, directed=True, connection="strong")
        edges = graph.tocoo()
        leaves = label[edges.row] != label[edges.col]
        has_exit = np.zeros(n_comp, dtype=bool)
        has_exit[label[edges.row[leaves]]] = True
        return int(np.sum(~has_exit))
    if np.sum(sizes**2) > max_dense:
        return None
    superoperator = block_diagonal_superoperator(generator)
    singular = np.linalg.svd(superoperator, compute_uv=False)
    scale = max(singular.max(), 1e-300)
    return int(np.sum(singular < NULL_TOLERANCE * scale))


def block_diagonal_superoperator(generator: DaviesGenerator) -> np.ndarray:
    """The generator restricted to block-diagonal operators (dense, ``sum b^2`` square).

    Basis: the elements ``|m><m'|`` with ``m, m'`` in one level, ordered by level then
    row-major inside the block (the order of ``block_ptr``).
    """
    g = generator
    size = int(g.block_ptr[-1])
    out = np.zeros((size, size), dtype=complex)
    position = _block_position(g)
    # -i [H_LS, X] - 1/2 {K, X} = -i (H_e X - X H_e^dag) on each block, H_e = H_LS - i K / 2.
    for level in range(g.n_levels):
        b, start = g.level_sizes[level], g.block_ptr[level]
        effective = g.block(g.lamb_shift_blocks, level) - 0.5j * g.block(g.decay_blocks, level)
        eye = np.eye(b)
        out[start:start + b * b, start:start + b * b] += (
            -1j * np.kron(effective, eye) + 1j * np.kron(eye, effective.conj()))
    # gamma A X A^dag: pairs of entries of one channel whose sources share a level.
    for c in range(g.n_channels):
        lo, hi = g.entry_ptr[c], g.entry_ptr[c + 1]
        n, m, v = g.entry_row[lo:hi], g.entry_col[lo:hi], g.entry_value[lo:hi]
        same = g.level_of[m][:, None] == g.level_of[m][None, :]
        i, j = np.nonzero(same)
        target = position(n[i], n[j])
        source = position(m[i], m[j])
        np.add.at(out, (target, source), g.channel_rate[c] * v[i] * np.conj(v[j]))
    return out


def _block_position(g: DaviesGenerator):
    def position(m: np.ndarray, m2: np.ndarray) -> np.ndarray:
        level = g.level_of[m]
        lo = g.level_ptr[level]
        b = g.level_sizes[level]
        return g.block_ptr[level] + (m - lo) * b + (m2 - lo)
    return position


def check_cached_arrays(arrays: dict[str, np.ndarray], meta: dict, n_baths: int) -> None:
    """Raise :class:`~jumps.generators.base.DamagedArrays` unless cached arrays are a
    consistent DaviesGenerator: shapes, the levels (``level_ptr`` increasing from 0 to d,
    ``level_of`` and ``block_ptr`` matching it), channels of existing baths, and entries whose
    rows, columns and channel ranges stay inside the arrays the kernel tables are built from."""
    d = require_length(arrays, "energies", "f")
    require_shape(arrays, "eigenvectors", (d, d), "c")
    levels = require_length(arrays, "level_ptr", "i") - 1
    level_ptr = require_pointer(arrays, "level_ptr", levels + 1, d, strict=True)
    sizes = np.diff(level_ptr)
    require_shape(arrays, "level_of", (d,), "i")
    if not np.array_equal(arrays["level_of"], np.repeat(np.arange(levels), sizes)):
        raise DamagedArrays("level_of.npy: does not match level_ptr")
    channels = require_length(arrays, "channel_bath", "i")
    require_index(arrays, "channel_bath", n_baths)
    for name in ("channel_frequency", "channel_rate", "channel_lamb_shift"):
        require_shape(arrays, name, (channels,), "f")
    if not np.all(np.isfinite(arrays["channel_rate"])) or np.any(arrays["channel_rate"] < 0):
        raise DamagedArrays("channel_rate.npy: rates must be finite and >= 0")
    entries = require_length(arrays, "entry_row", "i")
    require_pointer(arrays, "entry_ptr", channels + 1, entries)
    require_shape(arrays, "entry_col", (entries,), "i")
    require_shape(arrays, "entry_value", (entries,), "c")
    require_index(arrays, "entry_row", d)
    require_index(arrays, "entry_col", d)
    require_shape(arrays, "block_ptr", (levels + 1,), "i")
    if not np.array_equal(arrays["block_ptr"], np.concatenate([[0], np.cumsum(sizes**2)])):
        raise DamagedArrays("block_ptr.npy: does not match level_ptr")
    for name in ("decay_blocks", "lamb_shift_blocks"):
        require_shape(arrays, name, (int(np.sum(sizes**2)),), "c")
    require_shape(arrays, "dropped_weight", (n_baths,), "f")


def max_escape_rate(generator: DaviesGenerator) -> float:
    """The largest total jump rate out of any state: the largest eigenvalue of the decay
    operator ``K`` over its level blocks (``K_mm`` for a non-degenerate level)."""
    g = generator
    sizes = g.level_sizes
    if g.dimension == 0:
        return 0.0
    single = sizes == 1
    largest = float(np.max(g.decay_blocks[g.block_ptr[:-1][single]].real, initial=0.0))
    for level in np.flatnonzero(~single):
        largest = max(largest, float(np.linalg.eigvalsh(g.block(g.decay_blocks, level))[-1]))
    return largest
